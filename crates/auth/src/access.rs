//! Who is asking, and what they are to an organization: what both HTTP APIs need before they
//! decide whether a request may go ahead.
//!
//! - [`Authenticator`] turns an `Authorization` header into a [`Principal`]: nobody, a signed-in
//!   user (a short-lived access token whose session is still active), or an organization's API
//!   token.
//! - [`Directory`] says which organization owns a venue or event (the `organization` in the
//!   metadata of its stream's first fact) and which roles a principal holds there (folded from
//!   the organization's stream in the log, so a member added a moment ago is a member now).
//!
//! What each role may do is each API's policy, not this module's.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use marquee_domain::organization::{self, Organization, OrganizationFact, Role};
use marquee_domain::{ApiTokenId, FactCodec, OrganizationId, UserId};
use marquee_store::{EventStore, StoreError};
use uuid::Uuid;

use crate::tokens::{self, TokenError};
use crate::{AuthError, AuthStore};

/// Who is asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// No credentials.
    Anonymous,
    /// A signed-in account.
    User {
        /// The account.
        user_id: UserId,
        /// The sign-in session the access token belongs to.
        session_id: Uuid,
    },
    /// An organization's API token.
    Token {
        /// The token.
        token_id: ApiTokenId,
        /// The only organization it acts in.
        organization_id: OrganizationId,
        /// What it may do there.
        roles: BTreeSet<Role>,
    },
}

impl Principal {
    /// The `actor` recorded in the metadata of the facts it causes: `user:<id>` or
    /// `token:<id>`.
    pub fn actor(&self) -> Option<String> {
        match self {
            Principal::Anonymous => None,
            Principal::User { user_id, .. } => Some(format!("user:{user_id}")),
            Principal::Token { token_id, .. } => Some(format!("token:{token_id}")),
        }
    }

    /// The account, for a signed-in user.
    pub fn user_id(&self) -> Option<UserId> {
        match self {
            Principal::User { user_id, .. } => Some(*user_id),
            _ => None,
        }
    }

    /// What rate limits are counted against: the account or the token.
    pub fn rate_key(&self) -> Option<String> {
        self.actor()
    }
}

/// Why credentials were refused, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// The credentials are not valid (malformed, tampered, expired, revoked); the message says
    /// which, for the client.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// The auth tables failed.
    #[error(transparent)]
    Auth(#[from] AuthError),
}

/// How long a session found active is trusted without asking the database again. A session
/// revoked by another process stays usable here for at most this long; one revoked through
/// this process's [`Authenticator::forget_session`] not at all.
const SESSION_CACHE: Duration = Duration::from_secs(1);

/// Most sessions remembered as active at once.
const MAX_CACHED_SESSIONS: usize = 100_000;

/// Checks credentials; see the [module docs](self).
pub struct Authenticator {
    store: AuthStore,
    signing_key: Vec<u8>,
    /// Sessions recently found active, and until when that is trusted.
    active_sessions: Mutex<HashMap<Uuid, Instant>>,
}

impl Authenticator {
    /// Checks against `store`, signing access tokens with its shared `jwt` secret.
    pub async fn new(store: AuthStore) -> Result<Self, AuthError> {
        let signing_key = store.secret("jwt").await?;
        Ok(Self {
            store,
            signing_key,
            active_sessions: Mutex::new(HashMap::new()),
        })
    }

    /// The auth tables.
    pub fn store(&self) -> &AuthStore {
        &self.store
    }

    /// A fresh access token for a session.
    pub fn issue_access(
        &self,
        user_id: UserId,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<String, AuthError> {
        tokens::issue_access(
            &self.signing_key,
            user_id.0,
            session_id,
            now,
            tokens::ACCESS_TTL,
        )
    }

    /// Stops trusting a session at once in this process (after a sign-out).
    pub fn forget_session(&self, session_id: Uuid) {
        self.sessions().remove(&session_id);
    }

    fn sessions(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Instant>> {
        self.active_sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The principal behind an `Authorization` header (`None`: anonymous).
    pub async fn authenticate(
        &self,
        authorization: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Principal, AccessError> {
        let Some(header) = authorization else {
            return Ok(Principal::Anonymous);
        };
        let Some(token) = header
            .strip_prefix("Bearer ")
            .or_else(|| header.strip_prefix("bearer "))
            .map(str::trim)
        else {
            return Err(AccessError::Unauthorized(
                "the Authorization header must be `Bearer <token>`",
            ));
        };
        if token.starts_with(tokens::API_TOKEN_PREFIX) {
            return self.api_token(token, now).await;
        }
        let claims = tokens::verify_access(&self.signing_key, token, now).map_err(|e| {
            AccessError::Unauthorized(match e {
                TokenError::Expired => "the access token has expired",
                TokenError::NotYetValid => "the access token is not valid yet",
                TokenError::BadSignature | TokenError::Malformed => "the access token is not valid",
            })
        })?;
        if !self.session_active(claims.sid, now).await? {
            return Err(AccessError::Unauthorized("the session has ended"));
        }
        Ok(Principal::User {
            user_id: UserId(claims.sub),
            session_id: claims.sid,
        })
    }

    async fn session_active(
        &self,
        session_id: Uuid,
        now: DateTime<Utc>,
    ) -> Result<bool, AuthError> {
        let clock = Instant::now();
        if self
            .sessions()
            .get(&session_id)
            .is_some_and(|until| *until > clock)
        {
            return Ok(true);
        }
        let active = self.store.session_active(session_id, now).await?;
        let mut sessions = self.sessions();
        if active {
            if sessions.len() >= MAX_CACHED_SESSIONS {
                sessions.retain(|_, until| *until > clock);
                if sessions.len() >= MAX_CACHED_SESSIONS {
                    sessions.clear();
                }
            }
            sessions.insert(session_id, clock + SESSION_CACHE);
        } else {
            sessions.remove(&session_id);
        }
        Ok(active)
    }

    async fn api_token(&self, token: &str, now: DateTime<Utc>) -> Result<Principal, AccessError> {
        let refused = AccessError::Unauthorized("the API token is not valid");
        let Some((token_id, secret)) = tokens::parse_api_token(token) else {
            return Err(refused);
        };
        let Some(record) = self.store.api_token(token_id).await? else {
            return Err(refused);
        };
        if !tokens::secret_matches(&secret, &record.secret_hash) {
            return Err(refused);
        }
        if !record.is_active() {
            return Err(AccessError::Unauthorized("the API token was revoked"));
        }
        if let Err(e) = self.store.touch_api_token(token_id, now).await {
            tracing::warn!(error = %e, "could not record an API token's last use");
        }
        Ok(Principal::Token {
            token_id: ApiTokenId(token_id),
            organization_id: OrganizationId(record.organization_id),
            roles: record.roles.into_iter().collect(),
        })
    }
}

/// Most stream owners remembered.
const MAX_CACHED_OWNERS: usize = 200_000;

/// Who owns what, and who is who in an organization; see the [module docs](self).
pub struct Directory {
    log: Arc<dyn EventStore>,
    /// Owners found so far, by stream; an owner never changes.
    owners: Mutex<HashMap<String, OrganizationId>>,
}

impl Directory {
    /// A directory reading `log`.
    pub fn new(log: Arc<dyn EventStore>) -> Self {
        Self {
            log,
            owners: Mutex::new(HashMap::new()),
        }
    }

    /// The organization that owns a venue or event stream: the `organization` in its first
    /// fact's metadata. `None` for a stream that does not exist or was written without one.
    pub async fn owner(&self, stream: &str) -> Result<Option<OrganizationId>, StoreError> {
        if let Some(owner) = self
            .owners
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(stream)
        {
            return Ok(Some(*owner));
        }
        let first = self.log.read_stream(stream, 0, 1).await?;
        let owner = first
            .first()
            .and_then(|fact| fact.metadata.organization.as_deref())
            .and_then(|id| Uuid::parse_str(id).ok())
            .map(OrganizationId);
        if let Some(owner) = owner {
            let mut owners = self.owners.lock().unwrap_or_else(PoisonError::into_inner);
            if owners.len() >= MAX_CACHED_OWNERS {
                owners.clear();
            }
            owners.insert(stream.to_owned(), owner);
        }
        Ok(owner)
    }

    /// The organization as its stream has it now.
    pub async fn organization(&self, id: OrganizationId) -> Result<Organization, StoreError> {
        let stream = id.stream();
        let mut state = Organization::default();
        let mut from = 0;
        loop {
            let page = self.log.read_stream(&stream, from, 500).await?;
            let full = page.len() == 500;
            for recorded in page {
                from = recorded.revision + 1;
                match OrganizationFact::decode(
                    &recorded.fact_type,
                    recorded.schema_version,
                    recorded.data,
                ) {
                    Ok(fact) => state = organization::evolve(state, &fact),
                    Err(e) => return Err(StoreError::Corrupt(e.to_string())),
                }
            }
            if !full {
                return Ok(state);
            }
        }
    }

    /// The roles `principal` holds in `organization_id`: a member's role, or a token's roles
    /// in its own organization; empty for anyone else.
    pub async fn roles(
        &self,
        principal: &Principal,
        organization_id: OrganizationId,
    ) -> Result<BTreeSet<Role>, StoreError> {
        match principal {
            Principal::Anonymous => Ok(BTreeSet::new()),
            Principal::Token {
                organization_id: own,
                roles,
                ..
            } => Ok(if *own == organization_id {
                roles.clone()
            } else {
                BTreeSet::new()
            }),
            Principal::User { user_id, .. } => Ok(self
                .organization(organization_id)
                .await?
                .role_of(*user_id)
                .into_iter()
                .collect()),
        }
    }
}
