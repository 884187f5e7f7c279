//! Accounts: sign-up, sign-in (a short-lived access token plus a refresh token), refresh,
//! sign-out, the profile, password change, the personal-data export and erasure.
//!
//! **Erasure** (`POST /v1/me/erase`, with the password) deletes the key the account's personal
//! data is sealed with (see [`crate::personal`]) — its profile, and every attendee name, e-mail
//! address and answer sealed for its address, whoever entered them — then records `UserErased`
//! (naming the person's key id, so that read models replace that person's data at once),
//! deletes the credentials and ends every session. From then on everything sealed for the
//! person reads as `[erased]`, in the log, in its exports and in every rebuild; nothing new can
//! be recorded for that address (`409 person_erased`).
//!
//! **Export** (`GET /v1/me/export`) returns what Marquee holds on the signed-in account: the
//! profile, the organizations it belongs to, and the registrations and waitlist places it
//! holds or that are in its name (its e-mail address), across events.
//!
//! Passwords are hashed with argon2id (`marquee_auth::password`) and stored in the credentials
//! table, never in a fact and never in a log line (request bodies are not logged, and the
//! password types print `***`). Sign-in says the same thing for an unknown address and a wrong
//! password, and takes as long in both cases.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use marquee_auth::password::{
    check_password_policy, hash_password, verify_nothing, verify_password,
};
use marquee_auth::{AuthError, Password, REFRESH_TTL, tokens};
use marquee_domain::event::Event;
use marquee_domain::user::UserCommand;
use marquee_domain::{ERASED, OrganizationId, UserId};
use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use crate::CommandState;
use crate::access::Caller;
use crate::engine::{Answer, CommandContext, EventAggregate, OrganizationAggregate, UserAggregate};
use crate::error::ApiError;
use crate::extract::{JsonBody, OptionalJsonBody, RequestMeta};
use crate::idempotency::{answer_response, respond};
use crate::openapi::schemas::{
    Answers as AnswersSchema, Attendee as AttendeeSchema, Money as MoneySchema,
    RegistrationStatus as RegistrationStatusSchema, Role as RoleSchema,
    WaitlistStatus as WaitlistStatusSchema,
};
use crate::openapi::{BodyErrors, CallerErrors, Conflict, IdempotencyKey, NotFound, Unauthorized};
use chrono::{DateTime, Utc};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The account routes.
pub fn router() -> OpenApiRouter<CommandState> {
    OpenApiRouter::new()
        .routes(routes!(sign_up))
        .routes(routes!(sign_in))
        .routes(routes!(refresh))
        .routes(routes!(sign_out))
        .routes(routes!(me, change_profile))
        .routes(routes!(change_password))
        .routes(routes!(erase))
        .routes(routes!(export))
}

/// Maps the auth tables' errors to answers.
pub(crate) fn auth_error(error: AuthError) -> ApiError {
    match error {
        AuthError::EmailTaken | AuthError::CredentialsExist => ApiError::EmailTaken,
        other => ApiError::Internal(format!("auth: {other}")),
    }
}

/// Runs a CPU-heavy password hash or check off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::Internal(format!("password task: {e}")))
}

/// Body of `POST /v1/auth/signup`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignUpBody {
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[schema(value_type = String, format = Password, min_length = 10, max_length = 256)]
    password: Password,
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    /// Language of the account's e-mails, like `en` or `de-AT` (default `en`).
    #[serde(default)]
    locale: Option<String>,
}

/// Opens an account: checks the password policy and the profile, stores the password hash,
/// then records `UserRegistered`. Returns the new account's id.
pub async fn open_account(
    state: &CommandState,
    context: &CommandContext,
    email: &str,
    password: &Password,
    name: &str,
    locale: Option<String>,
) -> Result<UserId, ApiError> {
    open_account_answering(state, context, email, password, name, locale)
        .await
        .map(|(user_id, _)| user_id)
}

/// [`open_account`], with the answer to the sign-up: the one remembered under the request's
/// idempotency key, so that a replay answers the same.
async fn open_account_answering(
    state: &CommandState,
    context: &CommandContext,
    email: &str,
    password: &Password,
    name: &str,
    locale: Option<String>,
) -> Result<(UserId, Answer), ApiError> {
    let email = email.trim().to_owned();
    if !marquee_domain::event::looks_like_email(&email) {
        return Err(ApiError::Validation(
            "email: must be an e-mail address".into(),
        ));
    }
    if name.trim().is_empty() {
        return Err(ApiError::Validation("name: must not be blank".into()));
    }
    check_password_policy(password.expose(), &email)
        .map_err(|e| ApiError::Validation(format!("password: {e}")))?;
    let secret = password.expose().to_owned();
    let phc = blocking(move || hash_password(&secret))
        .await?
        .map_err(auth_error)?;
    let user_id = UserId(Uuid::now_v7());
    let now = state.engine.now();
    state
        .auth
        .store()
        .create_credentials(user_id.0, &email, &phc, now)
        .await
        .map_err(auth_error)?;
    let registered = state
        .engine
        .execute::<UserAggregate>(
            &user_id.stream(),
            vec![UserCommand::Register {
                user_id,
                name: name.to_owned(),
                email,
                locale,
            }],
            context,
            move |_, _| Answer {
                status: StatusCode::CREATED,
                body: json!({ "user_id": user_id }),
            },
        )
        .await;
    let answer = match registered {
        Ok((_, answer)) => answer,
        Err(e) => {
            // No account without its profile: take the credentials back.
            if let Err(cleanup) = state.auth.store().delete_credentials(user_id.0).await {
                tracing::error!(error = %cleanup, "could not remove the credentials of a failed sign-up");
            }
            return Err(e);
        }
    };
    Ok((user_id, answer))
}

/// Opens an account (and signs nobody in: sign in next).
///
/// The password must be 10 to 256 characters and pass the policy; `409 email_taken` when the
/// address has an account, `409 person_erased` when the person behind it was erased. Rate-limited
/// per client address.
#[utoipa::path(
    post,
    path = "/v1/auth/signup",
    tag = "accounts",
    params(IdempotencyKey),
    request_body = SignUpBody,
    responses((status = 201, description = "The account was opened.", body = SignedUp), BodyErrors, CallerErrors, Conflict),
    security((), ("bearer" = [])),
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn sign_up(
    State(state): State<CommandState>,
    caller: Caller,
    meta: RequestMeta,
    body: JsonBody<SignUpBody>,
) -> Response {
    let b = body.value;
    respond(
        &state.clone(),
        &caller.clone(),
        &meta,
        &body.raw,
        |context| async move {
            if let Some(address) = caller.address {
                state.auth.count_sign_in(&address.to_string())?;
            }
            let (_, answer) =
                open_account_answering(&state, &context, &b.email, &b.password, &b.name, b.locale)
                    .await?;
            Ok(answer)
        },
    )
    .await
}

/// Body of `POST /v1/auth/login`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct SignInBody {
    email: String,
    #[schema(value_type = String, format = Password)]
    password: Password,
}

/// A new session's tokens, as the client gets them.
async fn session_answer(
    state: &CommandState,
    user_id: UserId,
) -> Result<serde_json::Value, ApiError> {
    let now = state.engine.now();
    let (refresh_token, refresh_hash) = tokens::new_refresh_token();
    let session_id = state
        .auth
        .store()
        .create_session(user_id.0, &refresh_hash, now, REFRESH_TTL)
        .await
        .map_err(auth_error)?;
    let access_token = state
        .auth
        .authenticator
        .issue_access(user_id, session_id, now)
        .map_err(auth_error)?;
    Session::new(access_token, refresh_token, user_id).into_json()
}

/// Signs in with e-mail address and password: a 15-minute access token and a refresh token.
///
/// A wrong password and an unknown address both answer `401 invalid_credentials`. Rate-limited
/// per client address and per e-mail address.
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "accounts",
    request_body = SignInBody,
    responses((status = 200, description = "A new session.", body = Session), BodyErrors, CallerErrors),
    security((), ("bearer" = [])),
)]
#[tracing::instrument(skip_all)]
async fn sign_in(
    State(state): State<CommandState>,
    caller: Caller,
    body: JsonBody<SignInBody>,
) -> Response {
    let outcome = async {
        let b = body.value;
        if let Some(address) = caller.address {
            state.auth.count_sign_in(&address.to_string())?;
        }
        state
            .auth
            .count_sign_in(&format!("email:{}", marquee_auth::email_key(&b.email)))?;
        let found = state
            .auth
            .store()
            .credentials_by_email(&b.email)
            .await
            .map_err(auth_error)?;
        let candidate = b.password.expose().to_owned();
        let user_id = match found {
            Some((user_id, phc)) => {
                let ok = blocking(move || verify_password(&phc, &candidate)).await?;
                ok.then_some(UserId(user_id))
            }
            None => {
                blocking(move || verify_nothing(&candidate)).await?;
                None
            }
        };
        let user_id = user_id.ok_or(ApiError::BadCredentials)?;
        let user = state
            .engine
            .load::<UserAggregate>(&user_id.stream())
            .await?
            .state;
        if !user.exists() || user.erased {
            return Err(ApiError::BadCredentials);
        }
        session_answer(&state, user_id).await
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::OK, body),
        Err(error) => axum::response::IntoResponse::into_response(error),
    }
}

/// Body of `POST /v1/auth/refresh`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

/// Trades a refresh token for a new access token and a new refresh token (the old one stops
/// working).
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "accounts",
    request_body = RefreshBody,
    responses((status = 200, description = "The session, renewed.", body = Session), BodyErrors, Unauthorized),
)]
#[tracing::instrument(skip_all)]
async fn refresh(State(state): State<CommandState>, body: JsonBody<RefreshBody>) -> Response {
    let outcome = async {
        let now = state.engine.now();
        let (refresh_token, refresh_hash) = tokens::new_refresh_token();
        let (session_id, user_id) = state
            .auth
            .store()
            .rotate_session(
                &tokens::hash_secret(&body.value.refresh_token),
                &refresh_hash,
                now,
            )
            .await
            .map_err(|e| match e {
                AuthError::Database(_) | AuthError::Corrupt(_) => auth_error(e),
                _ => ApiError::Unauthorized("the refresh token is not valid"),
            })?;
        let user_id = UserId(user_id);
        let access_token = state
            .auth
            .authenticator
            .issue_access(user_id, session_id, now)
            .map_err(auth_error)?;
        Session::new(access_token, refresh_token, user_id).into_json()
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::OK, body),
        Err(error) => axum::response::IntoResponse::into_response(error),
    }
}

/// Body of the commands without a body: empty or `{}`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

/// Ends the signed-in session: its refresh token and access token stop working.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "accounts",
    request_body = Option<EmptyBody>,
    responses((status = 200, description = "Signed out.", body = SignedOut), BodyErrors, CallerErrors),
    security(("bearer" = [])),
)]
#[tracing::instrument(skip_all)]
async fn sign_out(
    State(state): State<CommandState>,
    caller: Caller,
    _body: OptionalJsonBody<EmptyBody>,
) -> Response {
    let outcome = async {
        let marquee_auth::Principal::User { session_id, .. } = caller.principal else {
            caller.user()?;
            return Err(ApiError::Unauthorized("sign in first"));
        };
        state
            .auth
            .store()
            .revoke_session(session_id, state.engine.now())
            .await
            .map_err(auth_error)?;
        state.auth.authenticator.forget_session(session_id);
        Ok(json!(SignedOut { signed_out: true }))
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::OK, body),
        Err(error) => axum::response::IntoResponse::into_response(error),
    }
}

/// `GET /v1/me`: the profile and the organizations the account belongs to.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "accounts",
    responses((status = 200, description = "The signed-in account.", body = Me), CallerErrors),
    security(("bearer" = [])),
)]
#[tracing::instrument(skip_all)]
async fn me(State(state): State<CommandState>, caller: Caller) -> Response {
    let outcome = async {
        let user_id = caller.user()?;
        let user = state
            .engine
            .load::<UserAggregate>(&user_id.stream())
            .await?
            .state;
        if !user.exists() || user.erased {
            return Err(ApiError::Unauthorized("the account no longer exists"));
        }
        let mut organizations = Vec::new();
        for (organization_id, role) in &user.organizations {
            let organization = state
                .engine
                .load::<OrganizationAggregate>(&organization_id.stream())
                .await?
                .state;
            organizations.push(json!({
                "organization_id": organization_id,
                "name": organization.name,
                "role": role,
            }));
        }
        Ok(json!({
            "user_id": user_id,
            "name": user.name,
            "email": user.email,
            "locale": user.locale,
            "registered_at": user.registered_at,
            "organizations": organizations,
        }))
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::OK, body),
        Err(error) => axum::response::IntoResponse::into_response(error),
    }
}

/// Body of `PATCH /v1/me`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    #[serde(default)]
    #[schema(min_length = 1, max_length = 200)]
    name: Option<String>,
    /// Like `en` or `de-AT`.
    #[serde(default)]
    locale: Option<String>,
}

/// Changes the signed-in account's name or locale.
#[utoipa::path(
    patch,
    path = "/v1/me",
    tag = "accounts",
    params(IdempotencyKey),
    request_body = ProfileBody,
    responses((status = 200, description = "The profile as it is now.", body = ProfileChanged), BodyErrors, CallerErrors, NotFound, Conflict),
    security(("bearer" = [])),
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn change_profile(
    State(state): State<CommandState>,
    caller: Caller,
    meta: RequestMeta,
    body: JsonBody<ProfileBody>,
) -> Response {
    let b = body.value;
    respond(
        &state.clone(),
        &caller.clone(),
        &meta,
        &body.raw,
        |mut context| async move {
            let user_id = caller.user()?;
            context.actor = caller.actor();
            let (_, answer) = state
            .engine
            .execute::<UserAggregate>(
                &user_id.stream(),
                vec![UserCommand::ChangeProfile {
                    name: b.name,
                    locale: b.locale,
                }],
                &context,
                move |_, user| Answer {
                    status: StatusCode::OK,
                    body: json!({ "user_id": user_id, "name": user.name, "locale": user.locale }),
                },
            )
            .await?;
            Ok(answer)
        },
    )
    .await
}

/// Body of `POST /v1/me/password`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    #[schema(value_type = String, format = Password)]
    current_password: Password,
    #[schema(value_type = String, format = Password, min_length = 10, max_length = 256)]
    new_password: Password,
}

/// Checks `password` against the signed-in account's; the account's e-mail address.
async fn confirm_password(
    state: &CommandState,
    user_id: UserId,
    password: &Password,
) -> Result<String, ApiError> {
    let user = state
        .engine
        .load::<UserAggregate>(&user_id.stream())
        .await?
        .state;
    if !user.exists() || user.erased {
        return Err(ApiError::Unauthorized("the account no longer exists"));
    }
    let Some((owner, phc)) = state
        .auth
        .store()
        .credentials_by_email(&user.email)
        .await
        .map_err(auth_error)?
    else {
        return Err(ApiError::Unauthorized("the account no longer exists"));
    };
    let candidate = password.expose().to_owned();
    let ok = blocking(move || verify_password(&phc, &candidate)).await?;
    if owner != user_id.0 || !ok {
        return Err(ApiError::BadCredentials);
    }
    Ok(user.email)
}

/// Changes the signed-in account's password (the current one is required) and signs it out
/// everywhere.
#[utoipa::path(
    post,
    path = "/v1/me/password",
    tag = "accounts",
    request_body = PasswordBody,
    responses((status = 200, description = "The password was changed.", body = PasswordChanged), BodyErrors, CallerErrors, NotFound, Conflict),
    security(("bearer" = [])),
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn change_password(
    State(state): State<CommandState>,
    caller: Caller,
    meta: RequestMeta,
    body: JsonBody<PasswordBody>,
) -> Response {
    let b = body.value;
    let outcome = async {
        let user_id = caller.user()?;
        let email = confirm_password(&state, user_id, &b.current_password).await?;
        check_password_policy(b.new_password.expose(), &email)
            .map_err(|e| ApiError::Validation(format!("new_password: {e}")))?;
        let secret = b.new_password.expose().to_owned();
        let phc = blocking(move || hash_password(&secret))
            .await?
            .map_err(auth_error)?;
        let now = state.engine.now();
        state
            .auth
            .store()
            .set_password(user_id.0, &phc, now)
            .await
            .map_err(auth_error)?;
        // Every session ends, this one included: whoever knew the old password is out.
        state
            .auth
            .store()
            .revoke_user_sessions(user_id.0, now)
            .await
            .map_err(auth_error)?;
        if let marquee_auth::Principal::User { session_id, .. } = caller.principal {
            state.auth.authenticator.forget_session(session_id);
        }
        let context = CommandContext {
            correlation_id: meta.correlation_id,
            actor: caller.actor(),
            organization: None,
            idempotency: None,
        };
        let (_, answer) = state
            .engine
            .execute::<UserAggregate>(
                &user_id.stream(),
                vec![UserCommand::RecordPasswordChange],
                &context,
                |_, _| Answer {
                    status: StatusCode::OK,
                    body: json!({ "password_changed": true, "signed_out_everywhere": true }),
                },
            )
            .await?;
        Ok::<_, ApiError>(answer)
    }
    .await;
    match outcome {
        Ok(answer) => answer_response(answer.status, answer.body),
        Err(error) => axum::response::IntoResponse::into_response(error),
    }
}

/// Body of `POST /v1/me/erase`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct EraseBody {
    #[schema(value_type = String, format = Password)]
    password: Password,
}

/// Erases the signed-in account (see the [module docs](self)); answers with the position of
/// `UserErased`. Should an earlier erasure have stopped after deleting the key, this finishes
/// it without the password, which can no longer be checked: nobody can read the address it
/// belongs to any more, and the caller is signed in as the account.
#[utoipa::path(
    post,
    path = "/v1/me/erase",
    tag = "accounts",
    request_body = EraseBody,
    responses((status = 200, description = "The account is erased.", body = Erased), BodyErrors, CallerErrors, NotFound, Conflict),
    security(("bearer" = [])),
)]
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn erase(
    State(state): State<CommandState>,
    caller: Caller,
    meta: RequestMeta,
    body: JsonBody<EraseBody>,
) -> Response {
    let outcome = async {
        let user_id = caller.user()?;
        let user = state
            .engine
            .load::<UserAggregate>(&user_id.stream())
            .await?
            .state;
        if !user.exists() || user.erased {
            return Err(ApiError::Unauthorized("the account no longer exists"));
        }
        let person_id = if user.email == ERASED {
            person_of_account(&state, user_id).await?.ok_or_else(|| {
                ApiError::Internal("an unreadable account without a sealed address".into())
            })?
        } else {
            let email = confirm_password(&state, user_id, &body.value.password).await?;
            state.auth.vault.person_id(&email)
        };
        let context = CommandContext {
            correlation_id: meta.correlation_id,
            actor: caller.actor(),
            organization: None,
            idempotency: None,
        };
        let position = erase_person(&state, &context, user_id, &person_id).await?;
        Ok::<_, ApiError>(json!({ "erased": true, "user_id": user_id, "position": position }))
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::OK, body),
        Err(error) => axum::response::IntoResponse::into_response(error),
    }
}

/// The erasure itself, for the account whose address is `email` (also used by operators'
/// tools); the position of `UserErased`.
pub async fn erase_account(
    state: &CommandState,
    context: &CommandContext,
    user_id: UserId,
    email: &str,
) -> Result<u64, ApiError> {
    let person_id = state.auth.vault.person_id(email);
    erase_person(state, context, user_id, &person_id).await
}

/// Erases the account `user_id` whose personal data is sealed for `person_id`.
///
/// The key goes first. From then on nothing new can be sealed for the person and every reader
/// opens their data as erased, so `UserErased` — on which the projector replaces the person's
/// data in the read models — lands in the log after the last value that could still be opened
/// (the projector reads keys without a cache). Should recording it fail, the account keeps
/// working with unreadable data until it is erased again.
async fn erase_person(
    state: &CommandState,
    context: &CommandContext,
    user_id: UserId,
    person_id: &str,
) -> Result<u64, ApiError> {
    state
        .auth
        .vault
        .erase(person_id)
        .await
        .map_err(auth_error)?;
    // Copies of the data held in this process go too: aggregates in memory are read again
    // (their data unreadable) when next needed.
    state.engine.forget_personal_data().await;
    let (accepted, _) = state
        .engine
        .execute::<UserAggregate>(
            &user_id.stream(),
            vec![UserCommand::Erase {
                person_id: person_id.to_owned(),
            }],
            context,
            |_, _| Answer {
                status: StatusCode::OK,
                body: json!({}),
            },
        )
        .await?;
    let now = state.engine.now();
    let store = state.auth.store();
    store
        .revoke_user_sessions(user_id.0, now)
        .await
        .map_err(auth_error)?;
    store
        .delete_credentials(user_id.0)
        .await
        .map_err(auth_error)?;
    Ok(accepted.position)
}

/// The person id the account's address was sealed under, read from its first fact as stored
/// (for an account whose address can no longer be opened).
async fn person_of_account(
    state: &CommandState,
    user_id: UserId,
) -> Result<Option<String>, ApiError> {
    let facts = state
        .engine
        .store()
        .read_stream(&user_id.stream(), 0, 1)
        .await?;
    Ok(facts.first().and_then(|fact| {
        fact.data
            .get("email")
            .and_then(serde_json::Value::as_str)
            .and_then(crate::personal::sealed_person)
            .map(str::to_owned)
    }))
}

/// `GET /v1/me/export`: everything Marquee holds on the signed-in account, as JSON: the
/// profile, its organizations with its role in each, and its registrations and waitlist places
/// across events — those it holds (made while signed in) and those in its name (entered with
/// its e-mail address by anyone) — with attendee, answers, status and, for those it holds, the
/// ticket codes. Found by reading the whole log once, so it takes a while on a large log.
#[utoipa::path(
    get,
    path = "/v1/me/export",
    tag = "accounts",
    responses((status = 200, description = "Everything Marquee holds on the account.", body = Export), CallerErrors),
    security(("bearer" = [])),
)]
#[tracing::instrument(skip_all)]
async fn export(State(state): State<CommandState>, caller: Caller) -> Response {
    let outcome = async {
        let user_id = caller.user()?;
        let user = state
            .engine
            .load::<UserAggregate>(&user_id.stream())
            .await?
            .state;
        if !user.exists() || user.erased {
            return Err(ApiError::Unauthorized("the account no longer exists"));
        }
        let mut organizations = Vec::new();
        for (organization_id, role) in &user.organizations {
            let organization = state
                .engine
                .load::<OrganizationAggregate>(&organization_id.stream())
                .await?
                .state;
            organizations.push(json!({
                "organization_id": organization_id,
                "name": organization.name,
                "role": role,
            }));
        }
        let person_id = state.auth.vault.person_id(&user.email);
        let holdings = holdings(&state, user_id, &user.email, &person_id).await?;
        let mut registrations = Vec::new();
        let mut waitlist = Vec::new();
        for (stream, held) in holdings {
            let event = state.engine.load::<EventAggregate>(&stream).await?.state;
            export_event(&event, user_id, &held, &mut registrations, &mut waitlist);
        }
        Ok(json!({
            "exported_at": state.engine.now(),
            "account": {
                "user_id": user_id,
                "name": user.name,
                "email": user.email,
                "locale": user.locale,
                "registered_at": user.registered_at,
            },
            "organizations": organizations,
            "registrations": registrations,
            "waitlist": waitlist,
        }))
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::OK, body),
        Err(error) => axum::response::IntoResponse::into_response(error),
    }
}

/// The registrations and waitlist entries of one event that an export covers, by id text.
#[derive(Default)]
struct Held {
    registrations: std::collections::BTreeSet<String>,
    entries: std::collections::BTreeSet<String>,
}

/// Every event stream with registrations or waitlist entries that `user_id` holds or that are
/// in the name of `email` (sealed for `person_id`, or plaintext from before sealing), read
/// from the log as stored.
async fn holdings(
    state: &CommandState,
    user_id: UserId,
    email: &str,
    person_id: &str,
) -> Result<std::collections::BTreeMap<String, Held>, ApiError> {
    const PAGE: usize = 1000;
    let holder = user_id.0.to_string();
    let sealed_for = format!("{}{person_id}:", marquee_auth::vault::SEALED_PREFIX);
    let email = email.to_lowercase();
    let in_their_name = |data: &serde_json::Value| {
        data.get("attendee")
            .and_then(|attendee| attendee.get("email"))
            .and_then(serde_json::Value::as_str)
            .is_some_and(|address| {
                address.starts_with(&sealed_for) || address.to_lowercase() == email
            })
    };
    let text = |data: &serde_json::Value, field: &str| {
        data.get(field)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let mut found: std::collections::BTreeMap<String, Held> = Default::default();
    let mut after = 0;
    loop {
        let page = state.engine.store().read_all(after, PAGE).await?;
        let full = page.len() == PAGE;
        for fact in &page {
            after = fact.position;
            if !fact.stream.starts_with("event-") {
                continue;
            }
            let data = &fact.data;
            let held_by_them = text(data, "holder").as_deref() == Some(holder.as_str());
            let (registration, entry) = match fact.fact_type.as_str() {
                "RegistrationConfirmed" | "SeatsHeld" if in_their_name(data) => {
                    (text(data, "registration_id"), None)
                }
                "RegistrationHolderRecorded" if held_by_them => {
                    (text(data, "registration_id"), None)
                }
                "WaitlistJoined" if in_their_name(data) => (None, text(data, "entry_id")),
                "WaitlistHolderRecorded" if held_by_them => (None, text(data, "entry_id")),
                _ => continue,
            };
            let held = found.entry(fact.stream.clone()).or_default();
            held.registrations.extend(registration);
            held.entries.extend(entry);
        }
        if !full {
            return Ok(found);
        }
    }
}

/// Adds the registrations and waitlist entries of `event` named in `held` to the export.
fn export_event(
    event: &Event,
    user_id: UserId,
    held: &Held,
    registrations: &mut Vec<serde_json::Value>,
    waitlist: &mut Vec<serde_json::Value>,
) {
    let ticket_type_name = |id| event.ticket_types.get(id).map(|t| t.name.clone());
    for registration in event.registrations.values() {
        if !held.registrations.contains(&registration.id.0.to_string()) {
            continue;
        }
        let holds_it = registration.holder == Some(user_id);
        let mut item = json!({
            "event_id": event.id,
            "event_title": event.title,
            "event_starts_at": event.starts_at,
            "registration_id": registration.id,
            "ticket_type_id": registration.ticket_type_id,
            "ticket_type_name": ticket_type_name(&registration.ticket_type_id),
            "quantity": registration.quantity,
            "status": registration.status,
            "attendee": registration.attendee,
            "answers": registration.answers,
            "price": registration.price,
            "payment_id": registration.payment_id,
            "held_by_you": holds_it,
        });
        if holds_it {
            item["ticket_codes"] = json!(registration.ticket_codes);
        }
        registrations.push(item);
    }
    for entry in event.waitlist.values() {
        if !held.entries.contains(&entry.id.0.to_string()) {
            continue;
        }
        waitlist.push(json!({
            "event_id": event.id,
            "event_title": event.title,
            "entry_id": entry.id,
            "ticket_type_id": entry.ticket_type_id,
            "ticket_type_name": ticket_type_name(&entry.ticket_type_id),
            "quantity": entry.quantity,
            "status": entry.status,
            "attendee": entry.attendee,
            "answers": entry.answers,
            "offer_expires_at": entry.offer_expires_at,
            "registration_id": entry.registration_id,
            "held_by_you": entry.holder == Some(user_id),
        }));
    }
}

/// Opens the first owner's account and organization on an empty installation. `None` when an
/// account with `email` exists already (a restart).
pub async fn bootstrap_owner(
    state: &CommandState,
    email: &str,
    password: &Password,
    organization_name: &str,
) -> Result<Option<(UserId, OrganizationId)>, ApiError> {
    if state
        .auth
        .store()
        .credentials_by_email(email)
        .await
        .map_err(auth_error)?
        .is_some()
    {
        return Ok(None);
    }
    let context = CommandContext {
        correlation_id: Uuid::now_v7(),
        actor: Some("system:bootstrap".into()),
        organization: None,
        idempotency: None,
    };
    let user_id = match open_account(state, &context, email, password, "Owner", None).await {
        Ok(user_id) => user_id,
        // Another process opened it first (replicas starting together).
        Err(ApiError::EmailTaken) => return Ok(None),
        Err(e) => return Err(e),
    };
    let organization_id =
        crate::organizations::found(state, &context, user_id, organization_name).await?;
    Ok(Some((user_id, organization_id)))
}

/// Answer of `POST /v1/auth/signup`.
#[derive(ToSchema)]
pub struct SignedUp {
    pub user_id: Uuid,
    /// Log position of `UserRegistered`.
    pub position: u64,
}

/// A session's tokens, as `POST /v1/auth/login` and `/v1/auth/refresh` answer them.
#[derive(Serialize, ToSchema)]
pub struct Session {
    /// Always `Bearer`.
    pub token_type: String,
    /// Send as `Authorization: Bearer …`.
    pub access_token: String,
    /// Seconds the access token is valid.
    pub expires_in: i64,
    /// Trade it for new tokens at `/v1/auth/refresh`; it works once.
    pub refresh_token: String,
    pub user_id: Uuid,
}

impl Session {
    fn new(access_token: String, refresh_token: String, user_id: UserId) -> Self {
        Self {
            token_type: "Bearer".to_owned(),
            access_token,
            expires_in: tokens::ACCESS_TTL.num_seconds(),
            refresh_token,
            user_id: user_id.0,
        }
    }

    fn into_json(self) -> Result<serde_json::Value, ApiError> {
        serde_json::to_value(self).map_err(|e| ApiError::Internal(format!("session: {e}")))
    }
}

/// Answer of `POST /v1/auth/logout`.
#[derive(Serialize, ToSchema)]
pub struct SignedOut {
    pub signed_out: bool,
}

/// An organization the account belongs to, with its role there.
#[derive(ToSchema)]
pub struct Membership {
    pub organization_id: Uuid,
    pub name: String,
    pub role: RoleSchema,
}

/// Answer of `GET /v1/me`.
#[derive(ToSchema)]
pub struct Me {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    pub locale: String,
    pub registered_at: Option<DateTime<Utc>>,
    pub organizations: Vec<Membership>,
}

/// Answer of `PATCH /v1/me`.
#[derive(ToSchema)]
pub struct ProfileChanged {
    pub user_id: Uuid,
    pub name: String,
    pub locale: String,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// Answer of `POST /v1/me/password`.
#[derive(ToSchema)]
pub struct PasswordChanged {
    pub password_changed: bool,
    pub signed_out_everywhere: bool,
    /// Log position of the command's last fact.
    pub position: u64,
}

/// Answer of `POST /v1/me/erase`.
#[derive(ToSchema)]
pub struct Erased {
    pub erased: bool,
    pub user_id: Uuid,
    /// Log position of `UserErased`.
    pub position: u64,
}

/// The profile in an export.
#[derive(ToSchema)]
pub struct ExportedAccount {
    pub user_id: Uuid,
    pub name: String,
    pub email: String,
    pub locale: String,
    pub registered_at: Option<DateTime<Utc>>,
}

/// A registration in an export.
#[derive(ToSchema)]
pub struct ExportedRegistration {
    pub event_id: Option<Uuid>,
    pub event_title: String,
    pub event_starts_at: Option<DateTime<Utc>>,
    pub registration_id: Uuid,
    pub ticket_type_id: Uuid,
    pub ticket_type_name: Option<String>,
    pub quantity: u32,
    pub status: RegistrationStatusSchema,
    pub attendee: AttendeeSchema,
    pub answers: AnswersSchema,
    pub price: Option<MoneySchema>,
    pub payment_id: Option<String>,
    /// Whether the account holds it (made it while signed in).
    pub held_by_you: bool,
    /// Only for registrations the account holds.
    pub ticket_codes: Option<Vec<String>>,
}

/// A waitlist place in an export.
#[derive(ToSchema)]
pub struct ExportedWaitlistEntry {
    pub event_id: Option<Uuid>,
    pub event_title: String,
    pub entry_id: Uuid,
    pub ticket_type_id: Uuid,
    pub ticket_type_name: Option<String>,
    pub quantity: u32,
    pub status: WaitlistStatusSchema,
    pub attendee: AttendeeSchema,
    pub answers: AnswersSchema,
    pub offer_expires_at: Option<DateTime<Utc>>,
    pub registration_id: Option<Uuid>,
    pub held_by_you: bool,
}

/// Answer of `GET /v1/me/export`.
#[derive(ToSchema)]
pub struct Export {
    pub exported_at: DateTime<Utc>,
    pub account: ExportedAccount,
    pub organizations: Vec<Membership>,
    pub registrations: Vec<ExportedRegistration>,
    pub waitlist: Vec<ExportedWaitlistEntry>,
}
