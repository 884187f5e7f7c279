//! In-memory token-bucket rate limits, one bucket per key (a token id, a client address, an
//! e-mail address being signed in to).
//!
//! Limits are **per process**: with N replicas behind a load balancer a client may get up to N
//! times the rate. That is the intent — a cheap first line against floods and password
//! guessing, not an exact quota (which would need a shared store on every request).
//!
//! ```
//! use std::time::{Duration, Instant};
//! use marquee_auth::RateLimiter;
//!
//! let limiter = RateLimiter::new(1.0, 2);
//! let now = Instant::now();
//! assert_eq!(limiter.check("203.0.113.9", now), Ok(()));
//! assert_eq!(limiter.check("203.0.113.9", now), Ok(()));
//! assert_eq!(limiter.check("203.0.113.9", now), Err(Duration::from_secs(1)));
//! assert_eq!(limiter.check("203.0.113.9", now + Duration::from_secs(1)), Ok(()));
//! ```

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Default most keys remembered at once; see [`RateLimiter::with_max_keys`].
pub const DEFAULT_MAX_KEYS: usize = 100_000;

/// One key's bucket: `tokens` as of `updated`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    updated: Instant,
}

/// Token buckets per key: each key may spend `burst` requests at once, refilled at
/// `per_second`. Thread-safe (one `Mutex`, held only for arithmetic); memory is bounded by
/// [`RateLimiter::with_max_keys`].
#[derive(Debug)]
pub struct RateLimiter {
    per_second: f64,
    burst: f64,
    max_keys: usize,
    buckets: Mutex<HashMap<String, Bucket>>,
}

impl RateLimiter {
    /// A limiter allowing `burst` requests at once per key, refilled at `per_second` requests
    /// per second, remembering at most [`DEFAULT_MAX_KEYS`] keys.
    ///
    /// # Panics
    /// If `per_second` is not a finite positive number or `burst` is 0: such a limiter would
    /// refuse everything forever, which is a configuration mistake to catch at start-up.
    pub fn new(per_second: f64, burst: u32) -> Self {
        assert!(
            per_second.is_finite() && per_second > 0.0,
            "rate limit must be a positive number per second, got {per_second}"
        );
        assert!(burst > 0, "rate-limit burst must be at least 1");
        RateLimiter {
            per_second,
            burst: f64::from(burst),
            max_keys: DEFAULT_MAX_KEYS,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Remembers at most `max_keys` keys (at least 1). When a new key arrives and the table is
    /// full, idle keys (whose bucket has refilled, so forgetting them changes nothing) are
    /// dropped first, then the least recently seen ones.
    pub fn with_max_keys(mut self, max_keys: usize) -> Self {
        self.max_keys = max_keys.max(1);
        self
    }

    /// Spends one request of `key`'s bucket at time `now`: `Ok(())` if it had one, else
    /// `Err(retry_after)`, how long until it will. A refused request spends nothing.
    pub fn check(&self, key: &str, now: Instant) -> Result<(), Duration> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        if !buckets.contains_key(key) && buckets.len() >= self.max_keys {
            self.evict(&mut buckets, now);
        }
        let bucket = buckets.entry(key.to_owned()).or_insert(Bucket {
            tokens: self.burst,
            updated: now,
        });
        // A `now` earlier than the last one (callers racing) refills nothing, never negative.
        let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * self.per_second).min(self.burst);
        bucket.updated = bucket.updated.max(now);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64(
                (1.0 - bucket.tokens) / self.per_second,
            ))
        }
    }

    /// How many keys are remembered now.
    pub fn len(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Whether no key is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes room for one more key: drops every bucket that is full again at `now`, and if
    /// none was, the least recently seen one.
    fn evict(&self, buckets: &mut HashMap<String, Bucket>, now: Instant) {
        buckets.retain(|_, bucket| {
            let elapsed = now.saturating_duration_since(bucket.updated).as_secs_f64();
            // A bucket full again at `now` is indistinguishable from a key never seen.
            bucket.tokens + elapsed * self.per_second < self.burst
        });
        if buckets.len() >= self.max_keys
            && let Some(oldest) = buckets
                .iter()
                .min_by_key(|(_, bucket)| bucket.updated)
                .map(|(key, _)| key.clone())
        {
            buckets.remove(&oldest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_burst_is_allowed_then_the_next_request_waits_for_one_refill() {
        let limiter = RateLimiter::new(2.0, 3);
        let now = Instant::now();
        for _ in 0..3 {
            assert_eq!(limiter.check("k", now), Ok(()));
        }
        assert_eq!(limiter.check("k", now), Err(Duration::from_millis(500)));
        // Halfway there, half the wait is left.
        let later = now + Duration::from_millis(250);
        assert_eq!(limiter.check("k", later), Err(Duration::from_millis(250)));
        let refilled = now + Duration::from_millis(500);
        assert_eq!(limiter.check("k", refilled), Ok(()));
        assert_eq!(
            limiter.check("k", refilled),
            Err(Duration::from_millis(500))
        );
    }

    #[test]
    fn a_slow_rate_asks_to_retry_after_the_whole_interval() {
        let limiter = RateLimiter::new(0.1, 1);
        let now = Instant::now();
        assert_eq!(limiter.check("k", now), Ok(()));
        assert_eq!(limiter.check("k", now), Err(Duration::from_secs(10)));
    }

    #[test]
    fn refusals_spend_nothing() {
        let limiter = RateLimiter::new(1.0, 1);
        let now = Instant::now();
        assert_eq!(limiter.check("k", now), Ok(()));
        for _ in 0..10 {
            assert_eq!(limiter.check("k", now), Err(Duration::from_secs(1)));
        }
        assert_eq!(limiter.check("k", now + Duration::from_secs(1)), Ok(()));
    }

    #[test]
    fn a_bucket_never_holds_more_than_the_burst() {
        let limiter = RateLimiter::new(1.0, 2);
        let now = Instant::now();
        assert_eq!(limiter.check("k", now), Ok(()));
        let much_later = now + Duration::from_secs(3600);
        assert_eq!(limiter.check("k", much_later), Ok(()));
        assert_eq!(limiter.check("k", much_later), Ok(()));
        assert_eq!(limiter.check("k", much_later), Err(Duration::from_secs(1)));
    }

    #[test]
    fn keys_have_their_own_buckets() {
        let limiter = RateLimiter::new(1.0, 1);
        let now = Instant::now();
        assert_eq!(limiter.check("a", now), Ok(()));
        assert!(limiter.check("a", now).is_err());
        assert_eq!(limiter.check("b", now), Ok(()));
    }

    #[test]
    fn a_time_earlier_than_the_last_refills_nothing() {
        let limiter = RateLimiter::new(1.0, 1);
        let now = Instant::now() + Duration::from_secs(10);
        assert_eq!(limiter.check("k", now), Ok(()));
        assert_eq!(
            limiter.check("k", now - Duration::from_secs(5)),
            Err(Duration::from_secs(1))
        );
    }

    #[test]
    fn the_table_stays_bounded_and_forgets_idle_keys_first() {
        let limiter = RateLimiter::new(1.0, 2).with_max_keys(3);
        let now = Instant::now();
        assert_eq!(limiter.check("idle", now), Ok(()));
        let later = now + Duration::from_secs(10);
        assert_eq!(limiter.check("busy-1", later), Ok(()));
        assert_eq!(limiter.check("busy-1", later), Ok(()));
        assert_eq!(limiter.check("busy-2", later), Ok(()));
        assert_eq!(limiter.len(), 3);
        // The idle key has refilled: forgetting it loses nothing; the busy one stays limited.
        assert_eq!(limiter.check("new", later), Ok(()));
        assert_eq!(limiter.len(), 3);
        assert_eq!(limiter.check("busy-1", later), Err(Duration::from_secs(1)));
        // No idle key left: the least recently seen goes.
        for i in 0..20 {
            assert_eq!(limiter.check(&format!("flood-{i}"), later), Ok(()));
            assert!(limiter.len() <= 3);
        }
    }

    #[test]
    #[should_panic(expected = "positive")]
    fn a_zero_rate_is_a_configuration_mistake() {
        let _ = RateLimiter::new(0.0, 1);
    }
}
