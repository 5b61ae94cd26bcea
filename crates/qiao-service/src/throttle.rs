//! Brute-force protection for sign-in: failures are counted per account and per client
//! address in a sliding window; past the limit, that key is locked for a while and every
//! attempt is refused with a retry-after, without checking the password.
//!
//! Counters live in memory on each node (a cluster multiplies the allowance by its node
//! count, which still bounds guessing to a few attempts per minute).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use qiao_domain::Millis;

#[derive(Clone, Debug)]
pub struct ThrottleConfig {
    /// Failed sign-ins for one account within `window` before it is locked.
    pub account_failures: u32,
    /// Failed sign-ins from one address within `window` before it is locked.
    pub address_failures: u32,
    pub window: Duration,
    pub lockout: Duration,
    /// Most keys tracked per kind; beyond it, keys with a single failure are forgotten.
    pub max_keys: usize,
}

impl Default for ThrottleConfig {
    fn default() -> Self {
        ThrottleConfig {
            account_failures: 5,
            address_failures: 20,
            window: Duration::from_secs(15 * 60),
            lockout: Duration::from_secs(15 * 60),
            max_keys: 100_000,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    failures: u32,
    window_start: Millis,
    locked_until: Millis,
}

pub struct LoginThrottle {
    config: ThrottleConfig,
    accounts: Mutex<HashMap<String, Entry>>,
    addresses: Mutex<HashMap<String, Entry>>,
}

impl LoginThrottle {
    pub fn new(config: ThrottleConfig) -> LoginThrottle {
        LoginThrottle { config, accounts: Mutex::default(), addresses: Mutex::default() }
    }

    /// `Err(seconds)` if either key is locked at `now`.
    pub fn check(&self, account: &str, address: &str, now: Millis) -> Result<(), u64> {
        let wait = |map: &Mutex<HashMap<String, Entry>>, key: &str| -> Millis {
            let map = map.lock().unwrap_or_else(|p| p.into_inner());
            map.get(key).map_or(0, |e| e.locked_until - now)
        };
        let longest = wait(&self.accounts, account).max(wait(&self.addresses, address));
        if longest > 0 { Err(u64::try_from(longest).unwrap_or(0).div_ceil(1000)) } else { Ok(()) }
    }

    /// Counts a failed attempt against both keys.
    pub fn failure(&self, account: &str, address: &str, now: Millis) {
        self.bump(&self.accounts, account, self.config.account_failures, now);
        self.bump(&self.addresses, address, self.config.address_failures, now);
    }

    /// A successful sign-in clears the account's count (not the address's).
    pub fn success(&self, account: &str) {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner()).remove(account);
    }

    fn bump(&self, map: &Mutex<HashMap<String, Entry>>, key: &str, limit: u32, now: Millis) {
        let window = crate::millis(self.config.window);
        let lockout = crate::millis(self.config.lockout);
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= self.config.max_keys {
            map.retain(|_, e| e.locked_until > now || (now - e.window_start < window && e.failures > 1));
        }
        let e = map.entry(key.to_owned()).or_insert(Entry { failures: 0, window_start: now, locked_until: 0 });
        if now - e.window_start >= window || (e.locked_until != 0 && e.locked_until <= now) {
            *e = Entry { failures: 0, window_start: now, locked_until: 0 };
        }
        e.failures += 1;
        if e.failures >= limit.max(1) {
            e.locked_until = now + lockout;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> LoginThrottle {
        LoginThrottle::new(ThrottleConfig {
            account_failures: 3,
            address_failures: 5,
            window: Duration::from_secs(60),
            lockout: Duration::from_secs(120),
            max_keys: 100,
        })
    }

    #[test]
    fn locks_an_account_after_repeated_failures() {
        let t = throttle();
        for i in 0..2 {
            t.failure("alice", "1.1.1.1", i);
            assert!(t.check("alice", "1.1.1.1", i).is_ok());
        }
        t.failure("alice", "1.1.1.1", 2);
        assert_eq!(t.check("alice", "9.9.9.9", 2), Err(120), "locked whatever the address");
        assert!(t.check("bob", "9.9.9.9", 2).is_ok(), "other accounts are unaffected");
        assert_eq!(t.check("alice", "9.9.9.9", 60_002), Err(60));
        assert!(t.check("alice", "9.9.9.9", 120_002).is_ok(), "the lock expires");
        // After expiry the count starts over.
        t.failure("alice", "1.1.1.1", 120_003);
        assert!(t.check("alice", "2.2.2.2", 120_003).is_ok());
    }

    #[test]
    fn locks_an_address_spraying_many_accounts() {
        let t = throttle();
        for i in 0..5 {
            t.failure(&format!("user{i}"), "6.6.6.6", i);
        }
        assert!(t.check("someone", "6.6.6.6", 10).is_err());
        assert!(t.check("someone", "7.7.7.7", 10).is_ok());
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let t = throttle();
        t.failure("alice", "a", 0);
        t.failure("alice", "b", 1);
        t.failure("alice", "c", 61_000);
        assert!(t.check("alice", "d", 61_000).is_ok());
    }

    #[test]
    fn success_clears_the_account_count() {
        let t = throttle();
        t.failure("alice", "a", 0);
        t.failure("alice", "a", 1);
        t.success("alice");
        t.failure("alice", "a", 2);
        assert!(t.check("alice", "z", 2).is_ok());
    }

    #[test]
    fn memory_is_bounded() {
        let t = throttle();
        for i in 0..1000 {
            t.failure(&format!("u{i}"), &format!("ip{i}"), 0);
        }
        assert!(t.accounts.lock().unwrap().len() <= 100);
    }
}
