//! Crypto-shredding of personal data: names, e-mail addresses and answers go into facts sealed
//! under a key of their own person; erasing the person deletes the key, and every copy of the
//! data, in the log, in exports and in backups, becomes unreadable while the log stays intact
//! and replayable.
//!
//! A sealed value is text, `sealed:v1:<person id>:<base64url nonce>:<base64url ciphertext>`:
//! AES-256-GCM under the person's key with a random 96-bit nonce, and the person id as
//! associated data (so a value cannot be passed off as another person's). It names its person so
//! a reader knows whose key opens it. [`Vault::open`] returns [`Opened::Erased`] once the key is
//! gone, and any text that is not sealed as [`Opened::Plain`] unchanged, so facts written
//! before sealing existed still read.
//!
//! **Key cache.** Keys are cached in memory for a short TTL ([`DEFAULT_KEY_CACHE_TTL`],
//! [`Vault::with_key_cache_ttl`]) so a projector does not query the database per fact. So a key
//! erased by another process may keep opening data in this process for at most that TTL;
//! [`Vault::erase`] in this process drops the key from this process's cache at once. A rebuild
//! after an erasure, which is what makes the read models forget a person, starts long after.
//!
//! Erasure is forever for a person id: sealing for it again is [`AuthError::PersonErased`]
//! (a new key would make the old values look tampered with rather than erased).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::Utc;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::db::PersonKey;
use crate::{AuthError, AuthStore};

/// How long a key (or the fact that it was erased) is trusted from memory by default.
pub const DEFAULT_KEY_CACHE_TTL: Duration = Duration::from_secs(10);
/// What every sealed value starts with.
pub const SEALED_PREFIX: &str = "sealed:v1:";
/// The [`AuthStore::secret`] the person ids are derived with.
pub const PEPPER_SECRET: &str = "vault_pepper";

/// Most keys held in memory at once: beyond it, stale entries go, then all.
const MAX_CACHED_KEYS: usize = 100_000;
/// Longest person id accepted.
const MAX_PERSON_ID_LEN: usize = 64;
/// Bytes of an AES-GCM nonce.
const NONCE_BYTES: usize = 12;
/// Bytes of an AES-GCM tag, the least any ciphertext has.
const TAG_BYTES: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// What a stored value turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opened {
    /// The plain text: unsealed with a live key, or never sealed at all.
    Plain(String),
    /// Sealed for a person whose key is erased (or not in this database): gone for good.
    Erased,
}

/// Seals and opens personal data with per-person keys kept by an [`AuthStore`]. Cheap to
/// clone; clones share the key cache.
#[derive(Clone)]
pub struct Vault {
    inner: Arc<Inner>,
}

struct Inner {
    store: AuthStore,
    /// HMAC keyed with the `vault_pepper` secret, for [`Vault::person_id`].
    pepper: HmacSha256,
    /// How long a cached key is trusted.
    ttl: Duration,
    /// Keys (and erasure marks) with when they were read.
    cache: Mutex<HashMap<String, (PersonKey, Instant)>>,
}

impl fmt::Debug for Vault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Vault")
            .field("key_cache_ttl", &self.inner.ttl)
            .finish_non_exhaustive()
    }
}

/// A sealed value taken apart.
struct Sealed<'a> {
    person_id: &'a str,
    nonce: [u8; NONCE_BYTES],
    ciphertext: Vec<u8>,
}

impl Vault {
    /// A vault over `store`'s person keys, with the database's `vault_pepper` secret (created on
    /// first use) and a key cache of [`DEFAULT_KEY_CACHE_TTL`].
    pub async fn new(store: AuthStore) -> Result<Vault, AuthError> {
        let pepper = store.secret(PEPPER_SECRET).await?;
        let pepper = HmacSha256::new_from_slice(&pepper)
            .map_err(|e| AuthError::Crypto(format!("vault pepper: {e}")))?;
        Ok(Vault {
            inner: Arc::new(Inner {
                store,
                pepper,
                ttl: DEFAULT_KEY_CACHE_TTL,
                cache: Mutex::new(HashMap::new()),
            }),
        })
    }

    /// The same vault trusting cached keys for `ttl` instead (zero: always ask the database).
    /// Clones made before this call keep their own cache and TTL.
    pub fn with_key_cache_ttl(self, ttl: Duration) -> Vault {
        Vault {
            inner: Arc::new(Inner {
                store: self.inner.store.clone(),
                pepper: self.inner.pepper.clone(),
                ttl,
                cache: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// A stable id for the person with this e-mail address that does not reveal it: the first
    /// 32 hex digits of HMAC-SHA256(pepper, trimmed lower-case address). The same on every
    /// process of one database; meaningless without its pepper.
    pub fn person_id(&self, email: &str) -> String {
        let mut mac = self.inner.pepper.clone();
        mac.update(crate::email_key(email).as_bytes());
        let mut id = hex::encode(mac.finalize().into_bytes());
        id.truncate(32);
        id
    }

    /// Whether `value` is in the sealed format (whatever its key's state).
    pub fn is_sealed(value: &str) -> bool {
        value.starts_with(SEALED_PREFIX)
    }

    /// Seals `plaintext` for `person_id` (any id of up to 64 ASCII letters, digits, `-`, `_`,
    /// e.g. from [`Vault::person_id`]), creating the person's key on first use. Sealing the same
    /// text twice gives different values. [`AuthError::PersonErased`] once the person is erased.
    pub async fn seal(&self, person_id: &str, plaintext: &str) -> Result<String, AuthError> {
        check_person_id(person_id)?;
        let key = match self.cached(person_id) {
            Some(key) => key,
            None => {
                let key = self
                    .load_or_create(&[person_id])
                    .await?
                    .remove(person_id)
                    .ok_or(sqlx::Error::RowNotFound)?;
                self.remember(person_id, key);
                key
            }
        };
        let PersonKey::Live(key) = key else {
            return Err(AuthError::PersonErased);
        };
        let nonce = rand::random::<[u8; NONCE_BYTES]>();
        let cipher = Aes256Gcm::new(&key.into());
        let ciphertext = cipher
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: person_id.as_bytes(),
                },
            )
            .map_err(|_| AuthError::Crypto("AES-GCM encryption failed".to_owned()))?;
        Ok(format!(
            "{SEALED_PREFIX}{person_id}:{}:{}",
            URL_SAFE_NO_PAD.encode(nonce),
            URL_SAFE_NO_PAD.encode(ciphertext)
        ))
    }

    /// Makes sure each of these persons has a key, ready in this vault's cache: keys not cached
    /// are read with one query, and the persons without one get theirs in one more statement
    /// (one commit for all of them). Sealing for them afterwards asks the database nothing
    /// while the cache holds the keys. Erased persons stay erased; invalid person ids are
    /// refused before anything is written.
    pub async fn prepare(&self, person_ids: &[&str]) -> Result<(), AuthError> {
        for person_id in person_ids {
            check_person_id(person_id)?;
        }
        let mut missing: Vec<&str> = Vec::new();
        for person_id in person_ids {
            if self.cached(person_id).is_none() && !missing.contains(person_id) {
                missing.push(person_id);
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        for (person_id, key) in self.load_or_create(&missing).await? {
            self.remember(&person_id, key);
        }
        Ok(())
    }

    /// The stored keys of these persons, storing a fresh one first for each that has none: one
    /// query, plus one statement and one more query when someone is new. A key another process
    /// stored first, or an erasure mark, is what comes back for its person.
    async fn load_or_create(
        &self,
        person_ids: &[&str],
    ) -> Result<HashMap<String, PersonKey>, AuthError> {
        let mut stored = self.inner.store.person_keys(person_ids).await?;
        let fresh: Vec<(&str, [u8; 32])> = person_ids
            .iter()
            .filter(|person_id| !stored.contains_key(**person_id))
            .map(|person_id| (*person_id, rand::random::<[u8; 32]>()))
            .collect();
        if fresh.is_empty() {
            return Ok(stored);
        }
        self.inner
            .store
            .create_person_keys(&fresh, Utc::now())
            .await?;
        let created: Vec<&str> = fresh.iter().map(|(person_id, _)| *person_id).collect();
        stored.extend(self.inner.store.person_keys(&created).await?);
        Ok(stored)
    }

    /// Opens one stored value: [`Opened::Plain`] with the text (or the value itself if it was
    /// never sealed), [`Opened::Erased`] if its person's key is gone. A value in the sealed
    /// format that is malformed or does not decrypt (tampered with) is [`AuthError::BadSeal`].
    pub async fn open(&self, value: &str) -> Result<Opened, AuthError> {
        self.open_many(&[value])
            .await?
            .pop()
            .unwrap_or(Err(AuthError::BadSeal("nothing to open")))
    }

    /// Opens many values with at most one database query for all the keys not cached: one
    /// result per value, in order, each as [`Vault::open`] would give it. The outer error is
    /// the database's.
    pub async fn open_many<S: AsRef<str>>(
        &self,
        values: &[S],
    ) -> Result<Vec<Result<Opened, AuthError>>, AuthError> {
        let parsed: Vec<Option<Result<Sealed<'_>, AuthError>>> = values
            .iter()
            .map(|value| {
                let value = value.as_ref();
                Vault::is_sealed(value).then(|| parse_sealed(value))
            })
            .collect();

        let mut keys: HashMap<&str, PersonKey> = HashMap::new();
        let mut missing: Vec<&str> = Vec::new();
        for sealed in parsed.iter().flatten().flatten() {
            if keys.contains_key(sealed.person_id) || missing.contains(&sealed.person_id) {
                continue;
            }
            match self.cached(sealed.person_id) {
                Some(key) => {
                    keys.insert(sealed.person_id, key);
                }
                None => missing.push(sealed.person_id),
            }
        }
        if !missing.is_empty() {
            let stored = self.inner.store.person_keys(&missing).await?;
            for person_id in missing {
                match stored.get(person_id) {
                    Some(key) => {
                        self.remember(person_id, *key);
                        keys.insert(person_id, *key);
                    }
                    // Never had a key here: unreadable, but not remembered, since another
                    // process may be creating it right now.
                    None => {
                        keys.insert(person_id, PersonKey::Erased);
                    }
                }
            }
        }

        Ok(values
            .iter()
            .zip(parsed)
            .map(|(value, parsed)| match parsed {
                None => Ok(Opened::Plain(value.as_ref().to_owned())),
                Some(Err(e)) => Err(e),
                Some(Ok(sealed)) => match keys.get(sealed.person_id) {
                    Some(PersonKey::Live(key)) => decrypt(key, &sealed),
                    Some(PersonKey::Erased) | None => Ok(Opened::Erased),
                },
            })
            .collect())
    }

    /// Erases the person: deletes their key in the database, so everything sealed for them
    /// reads as [`Opened::Erased`] — at once in this process, and in others once their cached
    /// copy expires. Nothing can be sealed for this person id afterwards.
    pub async fn erase(&self, person_id: &str) -> Result<(), AuthError> {
        check_person_id(person_id)?;
        self.inner
            .store
            .erase_person_key(person_id, Utc::now())
            .await?;
        self.remember(person_id, PersonKey::Erased);
        Ok(())
    }

    /// The cached key of the person, if read less than the TTL ago.
    fn cached(&self, person_id: &str) -> Option<PersonKey> {
        let cache = self
            .inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        cache
            .get(person_id)
            .filter(|(_, read_at)| read_at.elapsed() < self.inner.ttl)
            .map(|(key, _)| *key)
    }

    /// Caches the person's key as read now, keeping the cache bounded.
    fn remember(&self, person_id: &str, key: PersonKey) {
        if self.inner.ttl.is_zero() {
            return;
        }
        let mut cache = self
            .inner
            .cache
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= MAX_CACHED_KEYS && !cache.contains_key(person_id) {
            let ttl = self.inner.ttl;
            cache.retain(|_, (_, read_at)| read_at.elapsed() < ttl);
            if cache.len() >= MAX_CACHED_KEYS {
                cache.clear();
            }
        }
        cache.insert(person_id.to_owned(), (key, Instant::now()));
    }
}

/// Refuses person ids that could not round-trip through the sealed format.
fn check_person_id(person_id: &str) -> Result<(), AuthError> {
    let valid = !person_id.is_empty()
        && person_id.len() <= MAX_PERSON_ID_LEN
        && person_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if valid {
        Ok(())
    } else {
        Err(AuthError::InvalidPersonId)
    }
}

/// Takes a value that starts with [`SEALED_PREFIX`] apart.
fn parse_sealed(value: &str) -> Result<Sealed<'_>, AuthError> {
    let rest = value
        .strip_prefix(SEALED_PREFIX)
        .ok_or(AuthError::BadSeal("not a sealed value"))?;
    let mut parts = rest.split(':');
    let (Some(person_id), Some(nonce), Some(ciphertext), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::BadSeal("not three fields"));
    };
    check_person_id(person_id).map_err(|_| AuthError::BadSeal("malformed person id"))?;
    let nonce: [u8; NONCE_BYTES] = URL_SAFE_NO_PAD
        .decode(nonce)
        .ok()
        .and_then(|nonce| nonce.try_into().ok())
        .ok_or(AuthError::BadSeal("malformed nonce"))?;
    let ciphertext = URL_SAFE_NO_PAD
        .decode(ciphertext)
        .map_err(|_| AuthError::BadSeal("malformed ciphertext"))?;
    if ciphertext.len() < TAG_BYTES {
        return Err(AuthError::BadSeal("ciphertext too short"));
    }
    Ok(Sealed {
        person_id,
        nonce,
        ciphertext,
    })
}

/// Decrypts a sealed value with its person's key.
fn decrypt(key: &[u8; 32], sealed: &Sealed<'_>) -> Result<Opened, AuthError> {
    let cipher = Aes256Gcm::new(&(*key).into());
    let plaintext = cipher
        .decrypt(
            &Nonce::from(sealed.nonce),
            Payload {
                msg: &sealed.ciphertext,
                aad: sealed.person_id.as_bytes(),
            },
        )
        .map_err(|_| AuthError::BadSeal("does not decrypt: tampered with or sealed elsewhere"))?;
    String::from_utf8(plaintext)
        .map(Opened::Plain)
        .map_err(|_| AuthError::BadSeal("plaintext is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn person_ids_must_fit_the_sealed_format() {
        assert_eq!(check_person_id("0123abcdef-_XYZ"), Ok(()));
        assert_eq!(check_person_id(&"a".repeat(64)), Ok(()));
        for bad in ["", "a:b", "a b", "é", &"a".repeat(65)] {
            assert_eq!(
                check_person_id(bad),
                Err(AuthError::InvalidPersonId),
                "{bad}"
            );
        }
    }

    #[test]
    fn malformed_sealed_values_are_errors_not_panics() {
        let nonce = URL_SAFE_NO_PAD.encode([0u8; 12]);
        let tag = URL_SAFE_NO_PAD.encode([0u8; 16]);
        for bad in [
            "sealed:v1:".to_owned(),
            "sealed:v1:p".to_owned(),
            "sealed:v1:p:n".to_owned(),
            format!("sealed:v1::{nonce}:{tag}"),
            format!("sealed:v1:p:{nonce}:{tag}:extra"),
            format!("sealed:v1:p q:{nonce}:{tag}"),
            format!("sealed:v1:p:AAAA:{tag}"),
            format!("sealed:v1:p:{nonce}:AAAA"),
            format!("sealed:v1:p:{nonce}:!!!!"),
            format!("sealed:v1:p:{nonce}=:{tag}"),
        ] {
            assert!(
                matches!(parse_sealed(&bad), Err(AuthError::BadSeal(_))),
                "{bad}"
            );
        }
        assert!(parse_sealed(&format!("sealed:v1:p:{nonce}:{tag}")).is_ok());
    }
}
