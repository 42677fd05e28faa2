//! Login throttling: a fixed window of failed attempts per username and per
//! client address. In memory, per instance: it slows guessing, it is not a
//! lockout (a successful login clears the username's count).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(15 * 60);
const MAX_PER_USERNAME: u32 = 5;
const MAX_PER_ADDRESS: u32 = 20;
/// Bounds memory under a flood of made-up usernames.
const MAX_ENTRIES: usize = 100_000;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    Username(String),
    Address(IpAddr),
}

/// Counts failed logins.
#[derive(Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<Key, (u32, Instant)>>,
}

impl LoginLimiter {
    /// `Err(seconds to wait)` when either the username or the address has
    /// failed too often in the current window.
    pub fn check(&self, username: &str, address: IpAddr, now: Instant) -> Result<(), u64> {
        let Ok(map) = self.failures.lock() else {
            return Ok(());
        };
        let blocked = |key: Key, max: u32| {
            map.get(&key)
                .filter(|(count, start)| *count >= max && now.duration_since(*start) < WINDOW)
                .map(|(_, start)| (WINDOW - now.duration_since(*start)).as_secs().max(1))
        };
        match blocked(Key::Username(username.to_lowercase()), MAX_PER_USERNAME)
            .or_else(|| blocked(Key::Address(address), MAX_PER_ADDRESS))
        {
            Some(wait) => Err(wait),
            None => Ok(()),
        }
    }

    /// Records a failed attempt.
    pub fn failed(&self, username: &str, address: IpAddr, now: Instant) {
        let Ok(mut map) = self.failures.lock() else {
            return;
        };
        if map.len() >= MAX_ENTRIES {
            map.retain(|_, (_, start)| now.duration_since(*start) < WINDOW);
        }
        for key in [
            Key::Username(username.to_lowercase()),
            Key::Address(address),
        ] {
            let entry = map.entry(key).or_insert((0, now));
            if now.duration_since(entry.1) >= WINDOW {
                *entry = (0, now);
            }
            entry.0 += 1;
        }
    }

    /// Clears the username's failures after a successful login.
    pub fn succeeded(&self, username: &str) {
        if let Ok(mut map) = self.failures.lock() {
            map.remove(&Key::Username(username.to_lowercase()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_five_failures_until_the_window_passes() {
        let limiter = LoginLimiter::default();
        let (ip, t0) = (IpAddr::from([10, 0, 0, 1]), Instant::now());
        for _ in 0..MAX_PER_USERNAME {
            assert!(limiter.check("Alice", ip, t0).is_ok());
            limiter.failed("Alice", ip, t0);
        }
        assert!(limiter.check("alice", ip, t0).is_err());
        assert!(limiter.check("bob", ip, t0).is_ok());
        assert!(limiter.check("alice", ip, t0 + WINDOW).is_ok());
        limiter.succeeded("alice");
        assert!(limiter.check("alice", ip, t0).is_ok());
    }
}
