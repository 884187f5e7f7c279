//! Accounts: sign-up, sign-in (a short-lived access token plus a refresh token), refresh,
//! sign-out, the profile, password change and erasure.
//!
//! Passwords are hashed with argon2id (`marquee_auth::password`) and stored in the credentials
//! table, never in a fact and never in a log line (request bodies are not logged, and the
//! password types print `***`). Sign-in says the same thing for an unknown address and a wrong
//! password, and takes as long in both cases.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use marquee_auth::password::{
    check_password_policy, hash_password, verify_nothing, verify_password,
};
use marquee_auth::{AuthError, Password, REFRESH_TTL, tokens};
use marquee_domain::user::UserCommand;
use marquee_domain::{OrganizationId, UserId};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use crate::CommandState;
use crate::access::Caller;
use crate::engine::{Answer, CommandContext, OrganizationAggregate, UserAggregate};
use crate::error::ApiError;
use crate::extract::{JsonBody, OptionalJsonBody, RequestMeta};
use crate::idempotency::{answer_response, respond};

/// The account routes.
pub fn router() -> Router<CommandState> {
    Router::new()
        .route("/v1/auth/signup", post(sign_up))
        .route("/v1/auth/login", post(sign_in))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(sign_out))
        .route("/v1/me", get(me).patch(change_profile))
        .route("/v1/me/password", post(change_password))
        .route("/v1/me/erase", post(erase))
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignUpBody {
    email: String,
    password: Password,
    name: String,
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
            |_, _| Answer {
                status: StatusCode::CREATED,
                body: json!({}),
            },
        )
        .await;
    if let Err(e) = registered {
        // No account without its profile: take the credentials back.
        if let Err(cleanup) = state.auth.store().delete_credentials(user_id.0).await {
            tracing::error!(error = %cleanup, "could not remove the credentials of a failed sign-up");
        }
        return Err(e);
    }
    Ok(user_id)
}

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
            let user_id =
                open_account(&state, &context, &b.email, &b.password, &b.name, b.locale).await?;
            Ok(Answer {
                status: StatusCode::CREATED,
                body: json!({ "user_id": user_id }),
            })
        },
    )
    .await
}

/// Body of `POST /v1/auth/login`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignInBody {
    email: String,
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
    Ok(json!({
        "token_type": "Bearer",
        "access_token": access_token,
        "expires_in": tokens::ACCESS_TTL.num_seconds(),
        "refresh_token": refresh_token,
        "user_id": user_id,
    }))
}

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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefreshBody {
    refresh_token: String,
}

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
        Ok::<_, ApiError>(json!({
            "token_type": "Bearer",
            "access_token": access_token,
            "expires_in": tokens::ACCESS_TTL.num_seconds(),
            "refresh_token": refresh_token,
            "user_id": user_id,
        }))
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::OK, body),
        Err(error) => axum::response::IntoResponse::into_response(error),
    }
}

/// Body of the commands without a body: empty or `{}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct EmptyBody {}

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
        Ok(json!({ "signed_out": true }))
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::OK, body),
        Err(error) => axum::response::IntoResponse::into_response(error),
    }
}

/// `GET /v1/me`: the profile and the organizations the account belongs to.
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileBody {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    locale: Option<String>,
}

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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordBody {
    current_password: Password,
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
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EraseBody {
    password: Password,
}

/// Erases an account: deletes the key of its personal data (everything sealed with it, in
/// facts and snapshots, becomes unreadable), records `UserErased`, deletes its credentials and
/// ends its sessions. Read models show the person as erased after they next apply (or are
/// rebuilt).
#[tracing::instrument(skip_all, fields(correlation_id = %meta.correlation_id))]
async fn erase(
    State(state): State<CommandState>,
    caller: Caller,
    meta: RequestMeta,
    body: JsonBody<EraseBody>,
) -> Response {
    let outcome = async {
        let user_id = caller.user()?;
        let email = confirm_password(&state, user_id, &body.value.password).await?;
        let context = CommandContext {
            correlation_id: meta.correlation_id,
            actor: caller.actor(),
            organization: None,
            idempotency: None,
        };
        erase_account(&state, &context, user_id, &email).await?;
        Ok::<_, ApiError>(json!({ "erased": true, "user_id": user_id }))
    }
    .await;
    match outcome {
        Ok(body) => answer_response(StatusCode::OK, body),
        Err(error) => axum::response::IntoResponse::into_response(error),
    }
}

/// The erasure itself (also used by operators' tools).
pub async fn erase_account(
    state: &CommandState,
    context: &CommandContext,
    user_id: UserId,
    email: &str,
) -> Result<(), ApiError> {
    let now = state.engine.now();
    state
        .engine
        .execute::<UserAggregate>(
            &user_id.stream(),
            vec![UserCommand::Erase],
            context,
            |_, _| Answer {
                status: StatusCode::OK,
                body: json!({}),
            },
        )
        .await?;
    let store = state.auth.store();
    store
        .revoke_user_sessions(user_id.0, now)
        .await
        .map_err(auth_error)?;
    store
        .delete_credentials(user_id.0)
        .await
        .map_err(auth_error)?;
    let person = state.auth.vault.person_id(email);
    state.auth.vault.erase(&person).await.map_err(auth_error)?;
    state.engine.forget_personal_data().await;
    Ok(())
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
