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

pub struct RateLimiter {
    config: RateConfig,
    buckets: Mutex<HashMap<UserId, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(config: RateConfig) -> RateLimiter {
        RateLimiter { config, buckets: Mutex::default() }
    }

    /// Takes one token for `user` at `now`, or says how many seconds until one is free.
    pub fn check_at(&self, user: UserId, now: Instant) -> Result<(), Error> {
        let RateConfig { per_second, burst } = self.config;
        let mut buckets = self.buckets.lock().unwrap_or_else(|p| p.into_inner());
        if buckets.len() > 100_000 {
            // Forget people whose buckets have refilled.
            buckets.retain(|_, (tokens, at)| *tokens + now.duration_since(*at).as_secs_f64() * per_second < burst);
        }
        let (tokens, at) = buckets.entry(user).or_insert((burst, now));
        *tokens = (*tokens + now.duration_since(*at).as_secs_f64() * per_second).min(burst);
        *at = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            let wait = ((1.0 - *tokens) / per_second.max(f64::MIN_POSITIVE)).ceil();
            Err(Error::rate_limited(wait as u64).with_message("You are sending too fast; slow down a little."))
        }
    }

    pub fn check(&self, user: UserId) -> Result<(), Error> {
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
