//! `AuthStore` on SQLite and Postgres: shared secrets, credentials, sessions with single-use
//! refresh tokens, API tokens, and living beside the log in one database.

mod common;

use chrono::TimeDelta;
use common::t0;
use marquee_auth::tokens::{
    hash_secret, new_api_token, new_refresh_token, parse_api_token, secret_matches,
};
use marquee_auth::{AuthError, AuthStore, NewApiToken, REFRESH_TTL, Role};
use uuid::Uuid;

on_every_backend!(
    secrets_are_created_once_and_shared_by_every_store_on_one_database,
    the_auth_tables_live_beside_the_log_in_one_database,
    an_email_address_belongs_to_one_account_whatever_its_case,
    a_password_can_be_replaced_and_credentials_deleted,
    a_refresh_token_works_once_and_its_reuse_revokes_the_session,
    two_concurrent_exchanges_of_one_refresh_token_let_at_most_one_through_and_end_the_session,
    a_refresh_token_of_an_expired_or_revoked_session_is_refused,
    an_unknown_refresh_token_is_refused_and_revokes_nothing,
    signing_out_everywhere_revokes_only_that_users_sessions,
    expired_sessions_are_purged_with_their_spent_tokens,
    an_api_token_is_found_by_its_id_and_matched_by_its_secret,
    an_api_token_records_its_last_use_at_most_once_a_minute,
    a_revoked_api_token_keeps_its_first_revocation_time,
    an_organization_lists_only_its_own_api_tokens,
);

async fn connect(url: &str) -> AuthStore {
    AuthStore::connect(url).await.expect("connect")
}

async fn secrets_are_created_once_and_shared_by_every_store_on_one_database(url: &str) {
    let first = connect(url).await;
    let second = connect(url).await;
    let jwt = first.secret("jwt").await.expect("secret");
    assert_eq!(jwt.len(), 32);
    assert_eq!(second.secret("jwt").await.expect("secret"), jwt);
    assert_eq!(first.secret("jwt").await.expect("secret"), jwt);
    let pepper = second.secret("vault_pepper").await.expect("secret");
    assert_eq!(pepper.len(), 32);
    assert_ne!(pepper, jwt);
    assert_eq!(first.secret("vault_pepper").await.expect("secret"), pepper);
}

async fn the_auth_tables_live_beside_the_log_in_one_database(url: &str) {
    // Either order, and again: each side's migrations ignore the other's.
    let auth = connect(url).await;
    let log = marquee_store::connect(url).await.expect("log after auth");
    let again = connect(url).await;
    drop(log);
    let log = marquee_store::connect(url).await.expect("log again");
    drop(log);
    assert_eq!(
        auth.secret("jwt").await.expect("secret"),
        again.secret("jwt").await.expect("secret")
    );
}

async fn an_email_address_belongs_to_one_account_whatever_its_case(url: &str) {
    let store = connect(url).await;
    let (ada, eve) = (Uuid::now_v7(), Uuid::now_v7());
    store
        .create_credentials(ada, "Ada@Example.com", "$argon2id$ada", t0())
        .await
        .expect("sign up");
    assert_eq!(
        store
            .create_credentials(eve, "  ada@example.COM ", "$argon2id$eve", t0())
            .await,
        Err(AuthError::EmailTaken)
    );
    assert_eq!(
        store
            .create_credentials(ada, "ada@elsewhere.org", "$argon2id$ada2", t0())
            .await,
        Err(AuthError::CredentialsExist)
    );
    assert_eq!(
        store
            .credentials_by_email("ADA@EXAMPLE.COM")
            .await
            .expect("read"),
        Some((ada, "$argon2id$ada".to_owned()))
    );
    assert_eq!(
        store
            .credentials_by_email("eve@example.com")
            .await
            .expect("read"),
        None
    );
}

async fn a_password_can_be_replaced_and_credentials_deleted(url: &str) {
    let store = connect(url).await;
    let (ada, eve) = (Uuid::now_v7(), Uuid::now_v7());
    store
        .create_credentials(ada, "ada@example.com", "$argon2id$old", t0())
        .await
        .expect("sign up");
    store
        .set_password(ada, "$argon2id$new", t0() + TimeDelta::days(1))
        .await
        .expect("change password");
    assert_eq!(
        store
            .credentials_by_email("ada@example.com")
            .await
            .expect("read"),
        Some((ada, "$argon2id$new".to_owned()))
    );
    assert_eq!(
        store.set_password(eve, "$argon2id$x", t0()).await,
        Err(AuthError::NotFound)
    );

    store.delete_credentials(ada).await.expect("delete");
    store.delete_credentials(ada).await.expect("delete again");
    assert_eq!(
        store
            .credentials_by_email("ada@example.com")
            .await
            .expect("read"),
        None
    );
    store
        .create_credentials(eve, "ada@example.com", "$argon2id$eve", t0())
        .await
        .expect("the address is free again");
}

async fn a_refresh_token_works_once_and_its_reuse_revokes_the_session(url: &str) {
    let store = connect(url).await;
    let user = Uuid::now_v7();
    let (first, first_hash) = new_refresh_token();
    let session = store
        .create_session(user, &first_hash, t0(), REFRESH_TTL)
        .await
        .expect("sign in");
    assert!(store.session_active(session, t0()).await.expect("active"));

    let (second, second_hash) = new_refresh_token();
    let later = t0() + TimeDelta::minutes(20);
    assert_eq!(
        store
            .rotate_session(&hash_secret(&first), &second_hash, later)
            .await,
        Ok((session, user))
    );
    assert!(store.session_active(session, later).await.expect("active"));

    // The first token comes back (a thief's copy, or the client's stale one): the session ends.
    let (_, third_hash) = new_refresh_token();
    assert_eq!(
        store.rotate_session(&first_hash, &third_hash, later).await,
        Err(AuthError::RefreshReused)
    );
    assert!(!store.session_active(session, later).await.expect("read"));
    // ... and the current token of that session is worthless too.
    assert_eq!(
        store
            .rotate_session(&hash_secret(&second), &third_hash, later)
            .await,
        Err(AuthError::InvalidRefresh)
    );
}

async fn two_concurrent_exchanges_of_one_refresh_token_let_at_most_one_through_and_end_the_session(
    url: &str,
) {
    // Two pools, as two processes (or a client racing itself) would have.
    let (one, two) = (connect(url).await, connect(url).await);
    for round in 0..5 {
        let user = Uuid::now_v7();
        let (_, hash) = new_refresh_token();
        let session = one
            .create_session(user, &hash, t0(), REFRESH_TTL)
            .await
            .expect("sign in");
        let ((_, next_one), (_, next_two)) = (new_refresh_token(), new_refresh_token());
        let (a, b) = tokio::join!(
            one.rotate_session(&hash, &next_one, t0()),
            two.rotate_session(&hash, &next_two, t0()),
        );
        let mut outcomes = [a, b];
        outcomes.sort_by_key(|outcome| outcome.is_err());
        assert_eq!(
            outcomes,
            [Ok((session, user)), Err(AuthError::RefreshReused)],
            "round {round}"
        );
        assert!(!one.session_active(session, t0()).await.expect("read"));
    }
}

async fn a_refresh_token_of_an_expired_or_revoked_session_is_refused(url: &str) {
    let store = connect(url).await;
    let user = Uuid::now_v7();
    let (_, short_hash) = new_refresh_token();
    let short = store
        .create_session(user, &short_hash, t0(), TimeDelta::hours(1))
        .await
        .expect("sign in");
    let expiry = t0() + TimeDelta::hours(1);
    assert!(
        store
            .session_active(short, expiry - TimeDelta::seconds(1))
            .await
            .expect("read")
    );
    assert!(!store.session_active(short, expiry).await.expect("read"));
    let (_, next_hash) = new_refresh_token();
    assert_eq!(
        store.rotate_session(&short_hash, &next_hash, expiry).await,
        Err(AuthError::InvalidRefresh)
    );

    let (_, revoked_hash) = new_refresh_token();
    let revoked = store
        .create_session(user, &revoked_hash, t0(), REFRESH_TTL)
        .await
        .expect("sign in");
    store.revoke_session(revoked, t0()).await.expect("sign out");
    store
        .revoke_session(revoked, t0())
        .await
        .expect("sign out again");
    assert!(!store.session_active(revoked, t0()).await.expect("read"));
    assert_eq!(
        store.rotate_session(&revoked_hash, &next_hash, t0()).await,
        Err(AuthError::InvalidRefresh)
    );
}

async fn an_unknown_refresh_token_is_refused_and_revokes_nothing(url: &str) {
    let store = connect(url).await;
    let (_, hash) = new_refresh_token();
    let session = store
        .create_session(Uuid::now_v7(), &hash, t0(), REFRESH_TTL)
        .await
        .expect("sign in");
    let (_, unknown) = new_refresh_token();
    let (_, next) = new_refresh_token();
    assert_eq!(
        store.rotate_session(&unknown, &next, t0()).await,
        Err(AuthError::InvalidRefresh)
    );
    assert!(store.session_active(session, t0()).await.expect("read"));
    assert!(
        !store
            .session_active(Uuid::now_v7(), t0())
            .await
            .expect("read")
    );
}

async fn signing_out_everywhere_revokes_only_that_users_sessions(url: &str) {
    let store = connect(url).await;
    let (ada, eve) = (Uuid::now_v7(), Uuid::now_v7());
    let mut adas = Vec::new();
    for _ in 0..2 {
        let (_, hash) = new_refresh_token();
        adas.push(
            store
                .create_session(ada, &hash, t0(), REFRESH_TTL)
                .await
                .expect("sign in"),
        );
    }
    let (_, hash) = new_refresh_token();
    let eves = store
        .create_session(eve, &hash, t0(), REFRESH_TTL)
        .await
        .expect("sign in");
    store.revoke_session(adas[0], t0()).await.expect("sign out");

    assert_eq!(store.revoke_user_sessions(ada, t0()).await, Ok(1));
    for session in adas {
        assert!(!store.session_active(session, t0()).await.expect("read"));
    }
    assert!(store.session_active(eves, t0()).await.expect("read"));
}

async fn expired_sessions_are_purged_with_their_spent_tokens(url: &str) {
    let store = connect(url).await;
    let user = Uuid::now_v7();
    let (old, old_hash) = new_refresh_token();
    let short = store
        .create_session(user, &old_hash, t0(), TimeDelta::hours(1))
        .await
        .expect("sign in");
    let (_, new_hash) = new_refresh_token();
    store
        .rotate_session(&hash_secret(&old), &new_hash, t0())
        .await
        .expect("rotate");
    let (_, long_hash) = new_refresh_token();
    let long = store
        .create_session(user, &long_hash, t0(), REFRESH_TTL)
        .await
        .expect("sign in");

    let later = t0() + TimeDelta::days(1);
    assert_eq!(store.purge_expired_sessions(later).await, Ok(1));
    assert!(!store.session_active(short, t0()).await.expect("read"));
    assert!(store.session_active(long, later).await.expect("read"));
    // The spent token of a purged session is merely unknown now, and revokes nothing.
    let (_, next) = new_refresh_token();
    assert_eq!(
        store.rotate_session(&old_hash, &next, later).await,
        Err(AuthError::InvalidRefresh)
    );
    assert!(store.session_active(long, later).await.expect("read"));
}

fn new_token(organization_id: Uuid, name: &str, roles: Vec<Role>) -> (String, NewApiToken) {
    let token_id = Uuid::now_v7();
    let (token, secret_hash) = new_api_token(token_id);
    let row = NewApiToken {
        token_id,
        organization_id,
        name: name.to_owned(),
        roles,
        secret_hash,
        created_by: Uuid::now_v7(),
        created_at: t0(),
    };
    (token, row)
}

async fn an_api_token_is_found_by_its_id_and_matched_by_its_secret(url: &str) {
    let store = connect(url).await;
    let organization = Uuid::now_v7();
    let (token, row) = new_token(
        organization,
        "box office sync",
        vec![Role::Organizer, Role::DoorStaff],
    );
    store.create_api_token(&row).await.expect("create");

    let (token_id, secret) = parse_api_token(&token).expect("parse");
    let found = store
        .api_token(token_id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(found.token_id, row.token_id);
    assert_eq!(found.organization_id, organization);
    assert_eq!(found.name, "box office sync");
    assert_eq!(found.roles, vec![Role::Organizer, Role::DoorStaff]);
    assert_eq!(found.created_by, row.created_by);
    assert_eq!(found.created_at, t0());
    assert_eq!(found.last_used_at, None);
    assert!(found.is_active());
    assert!(secret_matches(&secret, &found.secret_hash));

    // Another token's secret under this id does not match.
    let (other, _) = new_token(organization, "other", vec![Role::Analyst]);
    let (_, other_secret) = parse_api_token(&other).expect("parse");
    assert!(!secret_matches(&other_secret, &found.secret_hash));
    assert_eq!(store.api_token(Uuid::now_v7()).await, Ok(None));
}

async fn an_api_token_records_its_last_use_at_most_once_a_minute(url: &str) {
    let store = connect(url).await;
    let (_, row) = new_token(Uuid::now_v7(), "ci", vec![Role::Auditor]);
    store.create_api_token(&row).await.expect("create");
    let last_used = |store: AuthStore, id: Uuid| async move {
        store
            .api_token(id)
            .await
            .expect("read")
            .expect("found")
            .last_used_at
    };

    let first = t0() + TimeDelta::hours(1);
    store
        .touch_api_token(row.token_id, first)
        .await
        .expect("touch");
    assert_eq!(last_used(store.clone(), row.token_id).await, Some(first));
    let soon = first + TimeDelta::seconds(59);
    store
        .touch_api_token(row.token_id, soon)
        .await
        .expect("touch");
    assert_eq!(last_used(store.clone(), row.token_id).await, Some(first));
    let minute = first + TimeDelta::minutes(1);
    store
        .touch_api_token(row.token_id, minute)
        .await
        .expect("touch");
    assert_eq!(last_used(store.clone(), row.token_id).await, Some(minute));
    store
        .touch_api_token(Uuid::now_v7(), minute)
        .await
        .expect("touching an unknown token does nothing");
}

async fn a_revoked_api_token_keeps_its_first_revocation_time(url: &str) {
    let store = connect(url).await;
    let (_, row) = new_token(Uuid::now_v7(), "ci", vec![Role::Owner]);
    store.create_api_token(&row).await.expect("create");
    let first = t0() + TimeDelta::hours(1);
    store
        .revoke_api_token(row.token_id, first)
        .await
        .expect("revoke");
    store
        .revoke_api_token(row.token_id, first + TimeDelta::hours(1))
        .await
        .expect("revoke again");
    let found = store
        .api_token(row.token_id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!(found.revoked_at, Some(first));
    assert!(!found.is_active());
    assert_eq!(
        store.revoke_api_token(Uuid::now_v7(), first).await,
        Err(AuthError::NotFound)
    );
}

async fn an_organization_lists_only_its_own_api_tokens(url: &str) {
    let store = connect(url).await;
    let (mine, theirs) = (Uuid::now_v7(), Uuid::now_v7());
    let (_, a) = new_token(mine, "a", vec![Role::Analyst]);
    let (_, b) = new_token(mine, "b", vec![]);
    let (_, c) = new_token(theirs, "c", vec![Role::Owner]);
    for row in [&a, &b, &c] {
        store.create_api_token(row).await.expect("create");
    }
    store
        .revoke_api_token(b.token_id, t0())
        .await
        .expect("revoke");

    let listed = store.api_tokens_of(mine).await.expect("list");
    let ids: Vec<Uuid> = listed.iter().map(|t| t.token_id).collect();
    assert_eq!(ids, vec![a.token_id, b.token_id]);
    assert!(listed[0].is_active() && !listed[1].is_active());
    assert_eq!(listed[1].roles, Vec::<Role>::new());
    assert_eq!(store.api_tokens_of(Uuid::now_v7()).await, Ok(vec![]));
}

#[tokio::test]
async fn an_in_memory_store_works_for_embedded_tests() {
    let store = connect("memory:").await;
    let secret = store.secret("jwt").await.expect("secret");
    assert_eq!(store.secret("jwt").await.expect("secret"), secret);
    let (_, hash) = new_refresh_token();
    let session = store
        .create_session(Uuid::now_v7(), &hash, t0(), REFRESH_TTL)
        .await
        .expect("sign in");
    assert!(store.session_active(session, t0()).await.expect("read"));
}
