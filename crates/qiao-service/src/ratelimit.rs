//! Per-person rate limits (token buckets) for actions anyone can repeat quickly, such as
//! sending messages. Buckets live in memory on each node.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
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

/// Sign-in attempts from one network address, whatever the names: an office behind one NAT
/// signing in at nine stays well within it; a script trying new names is held to ten
/// password hashes a second.
pub const SIGN_INS_PER_ADDRESS: RateConfig = RateConfig { per_second: 10.0, burst: 200.0 };

/// The key of a client address for per-address budgets: an IPv4 address, or an IPv6
/// address's /64 (one subscriber's prefix: they have all its addresses).
pub fn address_key(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        _ => ip.to_owned(),
    }
}

/// How many of one key's operations may run at once (a person's uploads, say): a slot is
/// held by the guard `try_start` returns.
pub struct InFlight<K> {
    max: u32,
    running: Arc<Mutex<HashMap<K, u32>>>,
}

/// A running operation's slot, given back when dropped.
pub struct Slot<K: Eq + Hash + Clone> {
    key: K,
    running: Arc<Mutex<HashMap<K, u32>>>,
}

impl<K: Eq + Hash + Clone> InFlight<K> {
    pub fn new(max: u32) -> Self {
        InFlight { max, running: Arc::default() }
    }

    /// A slot for `key`, or `None` when it runs `max` already.
    pub fn try_start(&self, key: K) -> Option<Slot<K>> {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        let n = running.entry(key.clone()).or_insert(0);
        if *n >= self.max {
            return None;
        }
        *n += 1;
        Some(Slot { key, running: self.running.clone() })
    }
}

impl<K: Eq + Hash + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = running.get_mut(&self.key) {
            *n -= 1;
            if *n == 0 {
                running.remove(&self.key);
            }
        }
    }
}

/// A turn at work that runs a bounded number at a time (`slots`), waited for at most `wait`:
/// past it, 503 saying `message` (counted in the `refused` metric) rather than a queue that
/// grows without bound while the requests behind it time out.
pub(crate) async fn turn<'a>(
    slots: &'a tokio::sync::Semaphore,
    wait: std::time::Duration,
    refused: &'static str,
    message: &'static str,
) -> Result<tokio::sync::SemaphorePermit<'a>, Error> {
    match tokio::time::timeout(wait, slots.acquire()).await {
        Ok(permit) => permit.map_err(Error::internal),
        Err(_) => {
            metrics::counter!(refused).increment(1);
            Err(Error::unavailable("no slot free in time").with_message(message))
        }
    }
}

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
    fn in_flight_slots_are_given_back() {
        let uploads = InFlight::new(2);
        let a = uploads.try_start(1);
        let b = uploads.try_start(1);
        assert!(a.is_some() && b.is_some());
        assert!(uploads.try_start(1).is_none(), "a third at once");
        assert!(uploads.try_start(2).is_some(), "others are not held up");
        drop(a);
        assert!(uploads.try_start(1).is_some());
    }

    #[test]
    fn addresses_are_kept_per_ipv4_address_or_ipv6_prefix() {
        assert_eq!(address_key("203.0.113.7"), "203.0.113.7");
        assert_eq!(address_key("2001:db8:1:2:aaaa::1"), address_key("2001:db8:1:2:bbbb::9"));
        assert_ne!(address_key("2001:db8:1:2::1"), address_key("2001:db8:1:3::1"));
        assert_eq!(address_key("::ffff:203.0.113.7"), "203.0.113.7");
        assert_eq!(address_key("unknown"), "unknown");
    }

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
