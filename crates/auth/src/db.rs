//! [`AuthStore`]: the auth tables on SQLite or Postgres through one sqlx `Any` pool — shared
//! secrets, credentials, sessions with single-use refresh tokens, API tokens, and the
//! per-person keys the [`crate::Vault`] uses.
//!
//! This is state, not history: none of it is in the log, and none of it may be (a password hash
//! or a key in a fact could never be deleted). Users, organizations and memberships are
//! event-sourced elsewhere; these rows only hold the secrets that go with them.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Executor, Row, Transaction};
use uuid::Uuid;

use crate::{AuthError, Role};

/// How long SQLite waits for the file's write lock (shared with the log's writer) before failing.
const SQLITE_BUSY_TIMEOUT_MS: u32 = 10_000;
/// Bytes of every secret [`AuthStore::secret`] creates.
const SECRET_BYTES: usize = 32;
/// [`AuthStore::touch_api_token`] writes at most once per this interval per token.
const TOUCH_EVERY: TimeDelta = TimeDelta::minutes(1);
/// Most person ids looked up in one statement (well under SQLite's bound-parameter limit).
const KEYS_PER_QUERY: usize = 500;

/// The table that records which of this crate's migrations ran: its own, so that the log's and
/// the read models' migrations (in `_sqlx_migrations`) and ours never see each other's versions.
const MIGRATIONS_TABLE: &str = "_marquee_auth_migrations";

/// Which database engine sits behind the `Any` pool; only transaction start and migrations differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Sqlite,
    Postgres,
}

/// The trimmed, lower-case form of an e-mail address under which credentials are unique and
/// found: `" Ada@Example.COM "` and `"ada@example.com"` are one account.
pub fn email_key(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Handle on the auth tables. Cheap to clone (clones share the pool). Every method returns its
/// database errors as [`AuthError::Database`]; none panics.
#[derive(Clone)]
pub struct AuthStore {
    pool: AnyPool,
    backend: Backend,
}

impl fmt::Debug for AuthStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthStore")
            .field("backend", &self.backend)
            .finish_non_exhaustive()
    }
}

/// A new API token's row, for [`AuthStore::create_api_token`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiToken {
    /// The token's id, the one inside the token (see [`crate::tokens::new_api_token`]).
    pub token_id: Uuid,
    /// The organization the token acts in; it can act in no other.
    pub organization_id: Uuid,
    /// What the token is for, as its creator named it.
    pub name: String,
    /// The roles the token holds in its organization.
    pub roles: Vec<Role>,
    /// The hash of the token's secret part (never the token itself).
    pub secret_hash: String,
    /// The user who created it.
    pub created_by: Uuid,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// An API token as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiTokenRecord {
    /// The token's id.
    pub token_id: Uuid,
    /// The organization the token acts in.
    pub organization_id: Uuid,
    /// What the token is for.
    pub name: String,
    /// The roles the token holds in its organization.
    pub roles: Vec<Role>,
    /// The hash of the token's secret part, for [`crate::tokens::secret_matches`].
    pub secret_hash: String,
    /// The user who created it.
    pub created_by: Uuid,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// When it was last used, to within [`AuthStore::touch_api_token`]'s minute.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When it was revoked; a revoked token must be refused.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiTokenRecord {
    /// Whether the token may still be used (it is not revoked).
    pub fn is_active(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// A person's key as stored: the key, or the mark that it was erased.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PersonKey {
    /// The AES-256 key.
    Live([u8; 32]),
    /// The key was erased; it never comes back.
    Erased,
}

impl AuthStore {
    /// Connects and applies this crate's migrations. Same URL forms as the rest of Marquee:
    /// `sqlite://PATH` (created if missing; the same file as the log in embedded mode),
    /// `postgres://…` / `postgresql://…`, and `memory:` (a private in-memory SQLite on one
    /// connection that lives as long as the pool).
    pub async fn connect(url: &str) -> Result<Self, AuthError> {
        sqlx::any::install_default_drivers();
        let (backend, db_url, pool_options) = if url == "memory:" {
            let options = AnyPoolOptions::new()
                .max_connections(1)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None);
            (Backend::Sqlite, "sqlite::memory:".to_owned(), options)
        } else if url.starts_with("sqlite:") {
            let db_url = if url.contains("mode=") {
                url.to_owned()
            } else if url.contains('?') {
                format!("{url}&mode=rwc")
            } else {
                format!("{url}?mode=rwc")
            };
            (
                Backend::Sqlite,
                db_url,
                AnyPoolOptions::new().max_connections(4),
            )
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (
                Backend::Postgres,
                url.to_owned(),
                AnyPoolOptions::new().max_connections(8),
            )
        } else {
            let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
            return Err(AuthError::UnsupportedUrl(scheme.to_owned()));
        };

        let pool_options = match backend {
            Backend::Sqlite => pool_options.after_connect(|conn, _meta| {
                Box::pin(async move {
                    let pragma = format!("PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}");
                    conn.execute(sqlx::AssertSqlSafe(pragma)).await?;
                    Ok(())
                })
            }),
            Backend::Postgres => pool_options,
        };
        let options: AnyConnectOptions = db_url.parse()?;
        let pool = pool_options.connect_with(options).await?;

        let mut migrator = match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
            Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
        };
        migrator.dangerous_set_table_name(MIGRATIONS_TABLE);
        migrator.run(&pool).await?;

        Ok(AuthStore { pool, backend })
    }

    /// Closes the pool; later calls fail.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Starts a transaction that will read and then write. On SQLite it takes the write lock up
    /// front (`BEGIN IMMEDIATE`): a deferred transaction that upgrades later fails with "database
    /// is locked" whatever the busy timeout.
    async fn begin_write(&self) -> Result<Transaction<'static, Any>, AuthError> {
        let tx = match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        };
        Ok(tx)
    }

    // ----- shared secrets -------------------------------------------------------------------

    /// The 32 random bytes stored under `name`, created on first use. Every process on this
    /// database gets the same bytes, so one signs what another verifies. Names in use: `"jwt"`
    /// (access tokens), `"vault_pepper"` (the [`crate::Vault`]'s person ids).
    ///
    /// Each call reads the database: call it at start-up and keep the bytes.
    pub async fn secret(&self, name: &str) -> Result<Vec<u8>, AuthError> {
        let read = |pool: AnyPool| async move {
            sqlx::query("SELECT value FROM auth_secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(&pool)
                .await
        };
        let row = match read(self.pool.clone()).await? {
            Some(row) => row,
            None => {
                // Whoever inserts first wins; everyone then reads the winner's bytes.
                let fresh = hex::encode(rand::random::<[u8; SECRET_BYTES]>());
                sqlx::query(
                    "INSERT INTO auth_secrets (name, value) VALUES ($1, $2) \
                     ON CONFLICT (name) DO NOTHING",
                )
                .bind(name)
                .bind(fresh)
                .execute(&self.pool)
                .await?;
                read(self.pool.clone())
                    .await?
                    .ok_or_else(|| AuthError::Database(format!("secret `{name}` vanished")))?
            }
        };
        let value: String = row.try_get("value")?;
        hex::decode(&value).map_err(|_| AuthError::Corrupt(format!("secret `{name}` is not hex")))
    }

    // ----- credentials ----------------------------------------------------------------------

    /// Stores `user_id`'s sign-in credentials: the e-mail address (unique, compared as
    /// [`email_key`]) and a PHC password hash from [`crate::password::hash_password`].
    /// [`AuthError::EmailTaken`] if another account has the address,
    /// [`AuthError::CredentialsExist`] if this user already has credentials.
    pub async fn create_credentials(
        &self,
        user_id: Uuid,
        email: &str,
        phc: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let key = email_key(email);
        let inserted = sqlx::query(
            "INSERT INTO credentials (user_id, email_key, password_hash, updated_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(user_id.to_string())
        .bind(&key)
        .bind(phc)
        .bind(time_text(now))
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 1 {
            return Ok(());
        }
        let holder = sqlx::query("SELECT user_id FROM credentials WHERE email_key = $1")
            .bind(&key)
            .fetch_optional(&self.pool)
            .await?;
        match holder {
            Some(row) if row.try_get::<String, _>("user_id")? != user_id.to_string() => {
                Err(AuthError::EmailTaken)
            }
            _ => Err(AuthError::CredentialsExist),
        }
    }

    /// The user and PHC password hash registered under `email` (trimmed, case-insensitive).
    pub async fn credentials_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(Uuid, String)>, AuthError> {
        let row =
            sqlx::query("SELECT user_id, password_hash FROM credentials WHERE email_key = $1")
                .bind(email_key(email))
                .fetch_optional(&self.pool)
                .await?;
        row.map(|row| {
            Ok((
                uuid_col(&row, "user_id")?,
                row.try_get::<String, _>("password_hash")?,
            ))
        })
        .transpose()
    }

    /// Replaces `user_id`'s password hash. [`AuthError::NotFound`] if the user has no
    /// credentials. Existing sessions stay: revoke them with [`Self::revoke_user_sessions`]
    /// where the change should sign everyone else out.
    pub async fn set_password(
        &self,
        user_id: Uuid,
        phc: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let updated = sqlx::query(
            "UPDATE credentials SET password_hash = $1, updated_at = $2 WHERE user_id = $3",
        )
        .bind(phc)
        .bind(time_text(now))
        .bind(user_id.to_string())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if updated == 0 {
            return Err(AuthError::NotFound);
        }
        Ok(())
    }

    /// Whether any account has credentials: `false` on a fresh installation (the first owner
    /// is then created).
    pub async fn has_accounts(&self) -> Result<bool, AuthError> {
        let row = sqlx::query("SELECT 1 AS one FROM credentials LIMIT 1")
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.is_some())
    }

    /// Deletes `user_id`'s credentials (the address becomes free); nothing happens if there are
    /// none. Sessions are not touched.
    pub async fn delete_credentials(&self, user_id: Uuid) -> Result<(), AuthError> {
        sqlx::query("DELETE FROM credentials WHERE user_id = $1")
            .bind(user_id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    // ----- sessions -------------------------------------------------------------------------

    /// Starts a session for `user_id` whose first refresh token hashes to `refresh_hash`
    /// (from [`crate::tokens::new_refresh_token`]), ending at `now + ttl` (usually
    /// [`crate::REFRESH_TTL`]) whatever happens in between. Returns the new session's id.
    pub async fn create_session(
        &self,
        user_id: Uuid,
        refresh_hash: &str,
        now: DateTime<Utc>,
        ttl: TimeDelta,
    ) -> Result<Uuid, AuthError> {
        let session_id = Uuid::now_v7();
        sqlx::query(
            "INSERT INTO sessions (session_id, user_id, refresh_hash, created_at, expires_at) \
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(session_id.to_string())
        .bind(user_id.to_string())
        .bind(refresh_hash)
        .bind(time_text(now))
        .bind(time_text(now + ttl))
        .execute(&self.pool)
        .await?;
        Ok(session_id)
    }

    /// Exchanges a refresh token: the session whose current refresh token hashes to
    /// `refresh_hash` now expects `new_refresh_hash` instead. Returns `(session, user)`.
    ///
    /// A refresh token works once. [`AuthError::InvalidRefresh`] if it is unknown or its
    /// session is expired or revoked. [`AuthError::RefreshReused`] if it was already exchanged
    /// (or is being exchanged concurrently): either the client raced itself or someone else
    /// holds a copy, and as the two cannot be told apart the whole session is revoked — the
    /// user signs in again, and the thief's copy is worthless.
    pub async fn rotate_session(
        &self,
        refresh_hash: &str,
        new_refresh_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<(Uuid, Uuid), AuthError> {
        let now_text = time_text(now);
        let mut tx = self.begin_write().await?;
        let current = sqlx::query(
            "SELECT session_id, user_id, expires_at, revoked_at FROM sessions \
             WHERE refresh_hash = $1",
        )
        .bind(refresh_hash)
        .fetch_optional(&mut *tx)
        .await?;

        let Some(current) = current else {
            let spent =
                sqlx::query("SELECT session_id FROM spent_refresh_tokens WHERE refresh_hash = $1")
                    .bind(refresh_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
            let Some(spent) = spent else {
                return Err(AuthError::InvalidRefresh);
            };
            let session_id: String = spent.try_get("session_id")?;
            revoke_in(&mut tx, &session_id, &now_text).await?;
            tx.commit().await?;
            return Err(AuthError::RefreshReused);
        };

        let session_text: String = current.try_get("session_id")?;
        let session_id = parse_uuid(&session_text, "session_id")?;
        let user_id = uuid_col(&current, "user_id")?;
        let expires_at: String = current.try_get("expires_at")?;
        let revoked_at: Option<String> = current.try_get("revoked_at")?;
        if revoked_at.is_some() || expires_at <= now_text {
            return Err(AuthError::InvalidRefresh);
        }

        // Conditional on the hash still being current: on Postgres a concurrent exchange of the
        // same token may have committed since the read above.
        let swapped = sqlx::query(
            "UPDATE sessions SET refresh_hash = $1 \
             WHERE session_id = $2 AND refresh_hash = $3 AND revoked_at IS NULL",
        )
        .bind(new_refresh_hash)
        .bind(&session_text)
        .bind(refresh_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if swapped == 0 {
            revoke_in(&mut tx, &session_text, &now_text).await?;
            tx.commit().await?;
            return Err(AuthError::RefreshReused);
        }
        sqlx::query(
            "INSERT INTO spent_refresh_tokens (refresh_hash, session_id, spent_at) \
             VALUES ($1, $2, $3)",
        )
        .bind(refresh_hash)
        .bind(&session_text)
        .bind(&now_text)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok((session_id, user_id))
    }

    /// Whether the session exists, is not revoked and has not expired at `now`.
    pub async fn session_active(
        &self,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let row = sqlx::query(
            "SELECT 1 AS active FROM sessions \
             WHERE session_id = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(session_id.to_string())
        .bind(time_text(now))
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.is_some())
    }

    /// Revokes one session (sign-out); its refresh token stops working at once and
    /// [`Self::session_active`] turns false. Revoking an unknown or revoked session does nothing.
    pub async fn revoke_session(
        &self,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE session_id = $2 AND revoked_at IS NULL",
        )
        .bind(time_text(now))
        .bind(session_id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Revokes every session of `user_id` (sign out everywhere, password change, erasure).
    /// Returns how many were still unrevoked.
    pub async fn revoke_user_sessions(
        &self,
        user_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<u64, AuthError> {
        let revoked = sqlx::query(
            "UPDATE sessions SET revoked_at = $1 WHERE user_id = $2 AND revoked_at IS NULL",
        )
        .bind(time_text(now))
        .bind(user_id.to_string())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(revoked)
    }

    /// Deletes sessions that expired before `now`, with their spent refresh tokens, so the
    /// tables do not grow forever. Returns how many sessions went. A refresh token of a
    /// deleted session is simply [`AuthError::InvalidRefresh`] afterwards.
    pub async fn purge_expired_sessions(&self, now: DateTime<Utc>) -> Result<u64, AuthError> {
        let now_text = time_text(now);
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "DELETE FROM spent_refresh_tokens WHERE session_id IN \
             (SELECT session_id FROM sessions WHERE expires_at <= $1)",
        )
        .bind(&now_text)
        .execute(&mut *tx)
        .await?;
        let purged = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1")
            .bind(&now_text)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(purged)
    }

    // ----- API tokens -----------------------------------------------------------------------

    /// Stores a new API token (see [`crate::tokens::new_api_token`] for the token and its hash).
    pub async fn create_api_token(&self, token: &NewApiToken) -> Result<(), AuthError> {
        let roles = serde_json::to_string(&token.roles)
            .map_err(|e| AuthError::Corrupt(format!("roles: {e}")))?;
        sqlx::query(
            "INSERT INTO api_tokens (token_id, organization_id, name, roles, secret_hash, \
             created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token.token_id.to_string())
        .bind(token.organization_id.to_string())
        .bind(&token.name)
        .bind(roles)
        .bind(&token.secret_hash)
        .bind(token.created_by.to_string())
        .bind(time_text(token.created_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The API token `token_id`, revoked or not.
    pub async fn api_token(&self, token_id: Uuid) -> Result<Option<ApiTokenRecord>, AuthError> {
        let row = sqlx::query(
            "SELECT token_id, organization_id, name, roles, secret_hash, created_by, created_at, \
             last_used_at, revoked_at FROM api_tokens WHERE token_id = $1",
        )
        .bind(token_id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(api_token_record).transpose()
    }

    /// Records that the token was used at `now`. Writes at most once a minute per token, so
    /// a busy integration does not turn every request into a write.
    pub async fn touch_api_token(
        &self,
        token_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        sqlx::query(
            "UPDATE api_tokens SET last_used_at = $1 \
             WHERE token_id = $2 AND (last_used_at IS NULL OR last_used_at <= $3)",
        )
        .bind(time_text(now))
        .bind(token_id.to_string())
        .bind(time_text(now - TOUCH_EVERY))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Revokes the API token at `now`; revoking it again keeps the first time.
    /// [`AuthError::NotFound`] if there is no such token.
    pub async fn revoke_api_token(
        &self,
        token_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let found = sqlx::query(
            "UPDATE api_tokens SET revoked_at = COALESCE(revoked_at, $1) WHERE token_id = $2",
        )
        .bind(time_text(now))
        .bind(token_id.to_string())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if found == 0 {
            return Err(AuthError::NotFound);
        }
        Ok(())
    }

    /// Every API token of the organization, revoked ones included, oldest first.
    pub async fn api_tokens_of(
        &self,
        organization_id: Uuid,
    ) -> Result<Vec<ApiTokenRecord>, AuthError> {
        let rows = sqlx::query(
            "SELECT token_id, organization_id, name, roles, secret_hash, created_by, created_at, \
             last_used_at, revoked_at FROM api_tokens WHERE organization_id = $1 \
             ORDER BY created_at, token_id",
        )
        .bind(organization_id.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(api_token_record).collect()
    }

    // ----- person keys (for the vault) ------------------------------------------------------

    /// The stored keys of these persons, in as few statements as possible; persons without a
    /// row are absent from the map.
    pub(crate) async fn person_keys(
        &self,
        person_ids: &[&str],
    ) -> Result<HashMap<String, PersonKey>, AuthError> {
        let mut keys = HashMap::with_capacity(person_ids.len());
        for chunk in person_ids.chunks(KEYS_PER_QUERY) {
            let placeholders: Vec<String> = (1..=chunk.len()).map(|i| format!("${i}")).collect();
            // Only placeholders are spliced in; every value is bound.
            let sql = format!(
                "SELECT person_id, key FROM person_keys WHERE person_id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for person_id in chunk {
                query = query.bind(*person_id);
            }
            for row in query.fetch_all(&self.pool).await? {
                let person_id: String = row.try_get("person_id")?;
                let key = person_key_col(&row, &person_id)?;
                keys.insert(person_id, key);
            }
        }
        Ok(keys)
    }

    /// Stores a key for each of these persons that has no row yet, in one statement per few
    /// hundred (so one commit for a whole batch of new attendees, not one each). Rows that
    /// exist (a key another process made first, or an erasure mark) are left alone: read the
    /// keys back with [`AuthStore::person_keys`] to learn what is stored.
    pub(crate) async fn create_person_keys(
        &self,
        keys: &[(&str, [u8; 32])],
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        let now = time_text(now);
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            let rows: Vec<String> = (0..chunk.len())
                .map(|i| format!("(${}, ${}, ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
                .collect();
            // Only placeholders are spliced in; every value is bound.
            let sql = format!(
                "INSERT INTO person_keys (person_id, key, created_at) VALUES {} \
                 ON CONFLICT (person_id) DO NOTHING",
                rows.join(", ")
            );
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for (person_id, key) in chunk {
                query = query
                    .bind(*person_id)
                    .bind(hex::encode(key))
                    .bind(now.clone());
            }
            query.execute(&self.pool).await?;
        }
        Ok(())
    }

    /// Deletes the person's key for good, leaving the mark that it was erased (so no new key is
    /// ever made for this person id). Erasing a person who has no key yet marks them too.
    pub(crate) async fn erase_person_key(
        &self,
        person_id: &str,
        now: DateTime<Utc>,
    ) -> Result<(), AuthError> {
        sqlx::query(
            "INSERT INTO person_keys (person_id, key, created_at, erased_at) \
             VALUES ($1, NULL, $2, $2) \
             ON CONFLICT (person_id) DO UPDATE \
             SET key = NULL, erased_at = COALESCE(person_keys.erased_at, excluded.erased_at)",
        )
        .bind(person_id)
        .bind(time_text(now))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}

/// Revokes a session inside a transaction (token reuse).
async fn revoke_in(
    tx: &mut Transaction<'static, Any>,
    session_id: &str,
    now_text: &str,
) -> Result<(), AuthError> {
    sqlx::query("UPDATE sessions SET revoked_at = $1 WHERE session_id = $2 AND revoked_at IS NULL")
        .bind(now_text)
        .bind(session_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A time in the tables' fixed-width text, e.g. `2026-06-01T18:00:00.000000Z`.
fn time_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Reads back a time written by [`time_text`].
fn parse_time(text: &str, column: &str) -> Result<DateTime<Utc>, AuthError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| AuthError::Corrupt(format!("{column} `{text}` is not a time")))
}

fn parse_uuid(text: &str, column: &str) -> Result<Uuid, AuthError> {
    Uuid::try_parse(text)
        .map_err(|_| AuthError::Corrupt(format!("{column} `{text}` is not a UUID")))
}

fn uuid_col(row: &AnyRow, column: &str) -> Result<Uuid, AuthError> {
    parse_uuid(&row.try_get::<String, _>(column)?, column)
}

fn time_col(row: &AnyRow, column: &str) -> Result<DateTime<Utc>, AuthError> {
    parse_time(&row.try_get::<String, _>(column)?, column)
}

fn opt_time_col(row: &AnyRow, column: &str) -> Result<Option<DateTime<Utc>>, AuthError> {
    row.try_get::<Option<String>, _>(column)?
        .map(|text| parse_time(&text, column))
        .transpose()
}

/// The `key` column of a `person_keys` row. The error names the person, never the key.
fn person_key_col(row: &AnyRow, person_id: &str) -> Result<PersonKey, AuthError> {
    let Some(text) = row.try_get::<Option<String>, _>("key")? else {
        return Ok(PersonKey::Erased);
    };
    let mut key = [0u8; 32];
    hex::decode_to_slice(&text, &mut key)
        .map_err(|_| AuthError::Corrupt(format!("the key of person {person_id} is malformed")))?;
    Ok(PersonKey::Live(key))
}

fn api_token_record(row: &AnyRow) -> Result<ApiTokenRecord, AuthError> {
    let roles: String = row.try_get("roles")?;
    let roles: Vec<Role> = serde_json::from_str(&roles)
        .map_err(|e| AuthError::Corrupt(format!("api_tokens.roles `{roles}`: {e}")))?;
    Ok(ApiTokenRecord {
        token_id: uuid_col(row, "token_id")?,
        organization_id: uuid_col(row, "organization_id")?,
        name: row.try_get("name")?,
        roles,
        secret_hash: row.try_get("secret_hash")?,
        created_by: uuid_col(row, "created_by")?,
        created_at: time_col(row, "created_at")?,
        last_used_at: opt_time_col(row, "last_used_at")?,
        revoked_at: opt_time_col(row, "revoked_at")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_key_is_trimmed_and_lower_case() {
        assert_eq!(
            email_key("  Ada.Lovelace@Example.COM\n"),
            "ada.lovelace@example.com"
        );
    }

    #[test]
    fn time_text_is_fixed_width_so_text_order_is_time_order() {
        let a: DateTime<Utc> = "2026-06-01T09:00:00Z".parse().expect("time");
        let b: DateTime<Utc> = "2026-06-01T09:00:00.5Z".parse().expect("time");
        assert_eq!(time_text(a), "2026-06-01T09:00:00.000000Z");
        assert!(time_text(a) < time_text(b));
        assert_eq!(parse_time(&time_text(b), "t").expect("parse"), b);
    }

    #[tokio::test]
    async fn an_unsupported_url_is_refused_without_echoing_it() {
        let refused = AuthStore::connect("mysql://root:hunter2@db/marquee").await;
        assert_eq!(
            refused.map(|_| ()),
            Err(AuthError::UnsupportedUrl("mysql".into()))
        );
    }
}
