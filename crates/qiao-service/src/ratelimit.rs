//! Per-person rate limits (token buckets) for actions anyone can repeat quickly, such as
//! sending messages. Buckets live in memory on each node.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use qiao_domain::{Error, UserId};

#[derive(Clone, Copy, Debug)]
pub struct RateConfig {
    /// Sustained actions per second.
    pub per_second: f64,
    /// Actions allowed in a burst.
    pub burst: f64,
}

/// One token bucket: up to `burst` tokens, refilled at `per_second`. Kept per person by
/// [`RateLimiter`], or by whoever owns one alone (a realtime connection for its frames).
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn full(config: RateConfig, now: Instant) -> Bucket {
        Bucket { tokens: config.burst, at: now }
    }

    /// The tokens there would be at `now`.
    fn level(&self, config: RateConfig, now: Instant) -> f64 {
        (self.tokens + now.duration_since(self.at).as_secs_f64() * config.per_second).min(config.burst)
    }

    /// Takes one token at `now`, or says how many seconds until one is free.
    pub fn take(&mut self, config: RateConfig, now: Instant) -> Result<(), f64> {
        self.tokens = self.level(config, now);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - self.tokens) / config.per_second.max(f64::MIN_POSITIVE))
        }
    }
}

/// Repeatable writes that have no budget of their own (creating, changing, archiving,
/// joining and leaving conversations, adding and removing members and their roles, linking
/// departments, pinning, uploading, editing one's profile, following threads, marking
/// unread, ending one's other sessions): generous bursts for people, a bound for scripts. The default of `action_rate` in the service configuration.
pub const ACTIONS: RateConfig = RateConfig { per_second: 5.0, burst: 100.0 };

/// Password checks of one account (signing in, changing the password), each a password hash:
/// plenty for people, a bound for a loop. Failed ones are also locked out by the sign-in
/// throttle.
pub const PASSWORD_CHECKS: RateConfig = RateConfig { per_second: 0.5, burst: 60.0 };

/// Searches: each one reads the index over everything the person may see. The default of
/// `search_rate` in the service configuration.
pub const SEARCHES: RateConfig = RateConfig { per_second: 50.0, burst: 1000.0 };

/// Token buckets per key: a person (the default) or anything else a budget is kept for (a
/// sign-in name, say).
pub struct RateLimiter<K = UserId> {
    config: RateConfig,
    buckets: Mutex<HashMap<K, Bucket>>,
    /// What a refusal tells the person.
    message: &'static str,
}

impl<K: std::hash::Hash + Eq> RateLimiter<K> {
    pub fn new(config: RateConfig) -> RateLimiter<K> {
        RateLimiter::saying(config, "You are sending too fast; slow down a little.")
    }

    /// A limiter whose refusals say `message`.
    pub fn saying(config: RateConfig, message: &'static str) -> RateLimiter<K> {
        RateLimiter { config, buckets: Mutex::default(), message }
    }

    /// Takes one token for `user` at `now`, or says how many seconds until one is free.
    pub fn check_at(&self, user: K, now: Instant) -> Result<(), Error> {
        let config = self.config;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 100_000 {
            // Forget people whose buckets have refilled.
            buckets.retain(|_, b| b.level(config, now) < config.burst);
        }
        buckets
            .entry(user)
            .or_insert_with(|| Bucket::full(config, now))
            .take(config, now)
            .map_err(|wait| Error::rate_limited(wait.ceil() as u64).with_message(self.message))
    }

    pub fn check(&self, user: K) -> Result<(), Error> {
        self.check_at(user, Instant::now())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn bursts_then_refills() {
        let l = RateLimiter::new(RateConfig { per_second: 2.0, burst: 3.0 });
        let (u, t0) = (UserId::new(), Instant::now());
        for _ in 0..3 {
            assert!(l.check_at(u, t0).is_ok());
        }
        let e = l.check_at(u, t0).unwrap_err();
        assert_eq!(e.retry_after_secs, Some(1));
        assert!(l.check_at(UserId::new(), t0).is_ok(), "others have their own bucket");
        assert!(l.check_at(u, t0 + Duration::from_millis(500)).is_ok(), "half a second refills one");
        assert!(l.check_at(u, t0 + Duration::from_millis(500)).is_err());
    }
}
