//! Login throttling that slows guessing without locking the owner out.
//!
//! Every attempt is counted before its password is checked (so parallel
//! guesses cannot slip past the count), and its wait runs from its answer,
//! against three keys:
//!
//! - the username from this client network: after 5 attempts in a row
//!   without success, each next one waits 1 s, 2 s, 4 s, ... up to 15 min;
//! - the client network, whatever the username: the same after 20;
//! - the username from anywhere: the same after 100, up to 5 min, so an
//!   attacker spread over many networks gets a few guesses an hour. A network
//!   this username logged in from before (in the last 30 days) is not held
//!   back by this key: the owner at home gets in during such an attack.
//!
//! A client network is an IPv4 address or an IPv6 /64 (one subscriber's
//! allocation). A success forgives the username on its network and takes
//! its own attempt back from the other keys. A key idle for an hour starts
//! over. In memory, per instance, at most [`MAX_ENTRIES`] keys: the oldest
//! go first.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// How a kind of key is throttled.
#[derive(Debug, Clone, Copy)]
struct Policy {
    /// Attempts in a row that never wait.
    free: u32,
    /// The wait after `free` attempts; it doubles with each further one.
    first_wait: Duration,
    max_wait: Duration,
}

impl Policy {
    /// The wait after `attempts` attempts in a row.
    fn wait(&self, attempts: u32) -> Duration {
        let Some(beyond) = attempts.checked_sub(self.free) else {
            return Duration::ZERO;
        };
        self.first_wait
            .checked_mul(1 << beyond.min(30))
            .map_or(self.max_wait, |wait| wait.min(self.max_wait))
    }
}

const PER_USER_AND_NETWORK: Policy = Policy {
    free: 5,
    first_wait: Duration::from_secs(1),
    max_wait: Duration::from_secs(15 * 60),
};
const PER_NETWORK: Policy = Policy {
    free: 20,
    first_wait: Duration::from_secs(1),
    max_wait: Duration::from_secs(15 * 60),
};
const PER_USER: Policy = Policy {
    free: 100,
    first_wait: Duration::from_secs(1),
    max_wait: Duration::from_secs(5 * 60),
};
/// A key without an attempt for this long starts over.
const FORGET_AFTER: Duration = Duration::from_secs(60 * 60);
/// How long a network where the username logged in is known to be theirs.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Bounds memory (about 100 bytes a key) under a flood of made-up names.
pub const MAX_ENTRIES: usize = 100_000;

/// A client network: an IPv4 address, or the /64 of an IPv6 address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Network {
    V4(u32),
    V6(u64),
}

impl From<IpAddr> for Network {
    fn from(address: IpAddr) -> Self {
        match address.to_canonical() {
            IpAddr::V4(v4) => Self::V4(v4.to_bits()),
            IpAddr::V6(v6) => Self::V6((v6.to_bits() >> 64) as u64),
        }
    }
}

/// A username as a fixed-size digest of its lower-cased form: a key costs the
/// same whatever length an attacker sends.
type UserKey = [u8; 16];

fn user_key(username: &str) -> UserKey {
    let digest = Sha256::digest(username.to_lowercase().as_bytes());
    let mut key = [0; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Key {
    UserOnNetwork(UserKey, Network),
    Network(Network),
    User(UserKey),
}

impl Key {
    fn policy(&self) -> Policy {
        match self {
            Self::UserOnNetwork(..) => PER_USER_AND_NETWORK,
            Self::Network(_) => PER_NETWORK,
            Self::User(_) => PER_USER,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Attempts in a row without success (as counted when `last` was).
    attempts: u32,
    /// The last attempt, or the last success.
    last: Instant,
    /// `UserOnNetwork` only: the username logged in from here until then.
    known_until: Option<Instant>,
}

impl Entry {
    fn new(now: Instant) -> Self {
        Self {
            attempts: 0,
            last: now,
            known_until: None,
        }
    }

    /// Attempts that still count at `now`.
    fn attempts(&self, now: Instant) -> u32 {
        if now.saturating_duration_since(self.last) >= FORGET_AFTER {
            0
        } else {
            self.attempts
        }
    }

    /// How long an attempt at `now` must still wait.
    fn wait(&self, policy: Policy, now: Instant) -> Duration {
        let ready = self.last + policy.wait(self.attempts(now));
        ready.saturating_duration_since(now)
    }

    fn is_known(&self, now: Instant) -> bool {
        self.known_until.is_some_and(|until| now < until)
    }

    /// Whether dropping it changes nothing.
    fn is_stale(&self, now: Instant) -> bool {
        self.attempts(now) == 0 && !self.is_known(now)
    }
}

/// Counts login attempts; shared by every request of an instance.
pub struct LoginLimiter {
    entries: Mutex<HashMap<Key, Entry>>,
    max_entries: usize,
}

impl Default for LoginLimiter {
    fn default() -> Self {
        Self::with_capacity(MAX_ENTRIES)
    }
}

impl LoginLimiter {
    /// A limiter that keeps at most `max_entries` keys.
    pub fn with_capacity(max_entries: usize) -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(16),
        }
    }

    /// Counts an attempt to log in as `username` from `client`, before the
    /// password is checked; `Err(wait)` when it comes too soon (then it does
    /// not count, and the password must not be checked). Follow a correct
    /// password with [`Self::succeeded`].
    pub fn attempt(&self, username: &str, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let Ok(mut entries) = self.entries.lock() else {
            return Ok(());
        };
        let (user, network) = (user_key(username), Network::from(client));
        let pair = Key::UserOnNetwork(user, network);
        let known = entries.get(&pair).is_some_and(|e| e.is_known(now));
        let keys = [pair, Key::Network(network), Key::User(user)];
        let wait = keys
            .iter()
            .filter(|key| !(known && matches!(key, Key::User(_))))
            .filter_map(|key| Some(entries.get(key)?.wait(key.policy(), now)))
            .max()
            .unwrap_or_default();
        if !wait.is_zero() {
            return Err(wait);
        }
        for key in keys {
            if !entries.contains_key(&key) && entries.len() >= self.max_entries {
                evict(&mut entries, self.max_entries, now);
            }
            let entry = entries.entry(key).or_insert_with(|| Entry::new(now));
            entry.attempts = entry.attempts(now).saturating_add(1);
            entry.last = entry.last.max(now);
        }
        Ok(())
    }

    /// The attempt just counted had a wrong password: its waits run from
    /// now, when the client hears the answer, not from when it asked.
    pub fn failed(&self, username: &str, client: IpAddr, now: Instant) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let (user, network) = (user_key(username), Network::from(client));
        for key in [
            Key::UserOnNetwork(user, network),
            Key::Network(network),
            Key::User(user),
        ] {
            if let Some(entry) = entries.get_mut(&key) {
                entry.last = entry.last.max(now);
            }
        }
    }

    /// The attempt just counted had the right password: the username's
    /// count on this network starts over and the network is known to be
    /// theirs; the other keys get that attempt back.
    pub fn succeeded(&self, username: &str, client: IpAddr, now: Instant) {
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        let (user, network) = (user_key(username), Network::from(client));
        if !entries.contains_key(&Key::UserOnNetwork(user, network))
            && entries.len() >= self.max_entries
        {
            evict(&mut entries, self.max_entries, now);
        }
        let pair = entries
            .entry(Key::UserOnNetwork(user, network))
            .or_insert_with(|| Entry::new(now));
        *pair = Entry {
            attempts: 0,
            last: now,
            known_until: Some(now + KNOWN_FOR),
        };
        for key in [Key::Network(network), Key::User(user)] {
            if let Some(entry) = entries.get_mut(&key) {
                entry.attempts = entry.attempts.saturating_sub(1);
            }
        }
    }

    /// Keys held (for tests of the bound).
    pub fn len(&self) -> usize {
        self.entries.lock().map_or(0, |entries| entries.len())
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Makes room when the map is full: drops what no longer matters, then the
/// keys with the oldest activity until a quarter is free (so this runs once
/// per many new keys, and a flood pushes out the oldest keys first, not the
/// ones slowing it down now).
fn evict(entries: &mut HashMap<Key, Entry>, max_entries: usize, now: Instant) {
    entries.retain(|_, entry| !entry.is_stale(now));
    let target = max_entries - max_entries / 4;
    let Some(excess) = entries.len().checked_sub(target).filter(|n| *n > 0) else {
        return;
    };
    let mut by_age: Vec<(Instant, Key)> = entries.iter().map(|(k, e)| (e.last, *k)).collect();
    by_age.select_nth_unstable_by_key(excess - 1, |(last, _)| *last);
    for (_, key) in &by_age[..excess] {
        entries.remove(key);
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    /// Attempts from `client` until one must wait; returns how many passed
    /// and the wait.
    fn until_throttled(
        limiter: &LoginLimiter,
        user: &str,
        client: IpAddr,
        now: Instant,
    ) -> (u32, Duration) {
        for passed in 0..10_000 {
            if let Err(wait) = limiter.attempt(user, client, now) {
                return (passed, wait);
            }
        }
        panic!("never throttled");
    }

    #[test]
    fn waits_double_after_five_failures_and_are_capped() {
        let limiter = LoginLimiter::default();
        let (home, t0) = (ip("192.0.2.1"), Instant::now());
        assert_eq!(until_throttled(&limiter, "alice", home, t0), (5, SECOND));
        let mut now = t0;
        for expected in [2, 4, 8, 16, 32] {
            now += limiter.attempt("alice", home, now).unwrap_err();
            limiter.attempt("alice", home, now).unwrap();
            assert_eq!(
                limiter.attempt("ALICE", home, now),
                Err(expected * SECOND),
                "usernames count without case"
            );
        }
        assert_eq!(PER_USER_AND_NETWORK.wait(40), 15 * 60 * SECOND);
        assert_eq!(PER_USER_AND_NETWORK.wait(u32::MAX), 15 * 60 * SECOND);
        assert_eq!(PER_USER.wait(u32::MAX), 5 * 60 * SECOND);
        // An hour of quiet and it starts over.
        let later = now + FORGET_AFTER;
        assert_eq!(until_throttled(&limiter, "alice", home, later), (5, SECOND));
    }

    #[test]
    fn a_throttled_attacker_does_not_hold_back_the_owner_elsewhere() {
        let limiter = LoginLimiter::default();
        let (attacker, owner, t0) = (ip("203.0.113.9"), ip("192.0.2.1"), Instant::now());
        assert_eq!(until_throttled(&limiter, "alice", attacker, t0).0, 5);
        for _ in 0..50 {
            assert!(limiter.attempt("alice", attacker, t0).is_err());
        }
        assert!(limiter.attempt("alice", owner, t0).is_ok());
        limiter.succeeded("alice", owner, t0);
        assert!(limiter.attempt("bob", attacker, t0).is_ok(), "other users");
    }

    #[test]
    fn one_ipv6_64_is_one_network_and_ipv4_mapped_is_ipv4() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        for i in 1..=5 {
            limiter
                .attempt("alice", ip(&format!("2001:db8:1:2::{i:x}")), t0)
                .unwrap();
        }
        assert!(limiter
            .attempt("alice", ip("2001:db8:1:2:ffff:1:2:3"), t0)
            .is_err());
        assert!(limiter.attempt("alice", ip("2001:db8:1:3::1"), t0).is_ok());

        for _ in 0..5 {
            limiter.attempt("bob", ip("::ffff:192.0.2.7"), t0).unwrap();
        }
        assert!(limiter.attempt("bob", ip("192.0.2.7"), t0).is_err());
    }

    #[test]
    fn one_network_trying_many_usernames_is_slowed() {
        let limiter = LoginLimiter::default();
        let (attacker, t0) = (ip("203.0.113.9"), Instant::now());
        for i in 0..PER_NETWORK.free {
            limiter.attempt(&format!("user{i}"), attacker, t0).unwrap();
        }
        assert_eq!(limiter.attempt("someone", attacker, t0), Err(SECOND));
        assert!(limiter.attempt("someone", ip("192.0.2.1"), t0).is_ok());
    }

    #[test]
    fn a_spread_attack_is_slowed_but_the_owner_at_home_gets_in() {
        let limiter = LoginLimiter::default();
        let (home, t0) = (ip("192.0.2.1"), Instant::now());
        limiter.attempt("alice", home, t0).unwrap();
        limiter.succeeded("alice", home, t0);
        // 100 attempts from 50 networks, two each: no network is throttled.
        for i in 0..50u32 {
            let attacker = IpAddr::from((0xCB00_7100 + i).to_be_bytes());
            for _ in 0..2 {
                limiter.attempt("alice", attacker, t0).unwrap();
            }
        }
        // Now every new network waits for the username, at a bounded rate...
        let fresh = ip("198.51.100.1");
        let wait = limiter.attempt("alice", fresh, t0).unwrap_err();
        assert_eq!(wait, SECOND);
        limiter.attempt("alice", fresh, t0 + wait).unwrap();
        assert_eq!(
            limiter.attempt("alice", ip("198.51.100.2"), t0 + wait),
            Err(2 * SECOND)
        );
        // ...while the owner's own network is not held back by it.
        limiter.attempt("alice", home, t0).unwrap();
        limiter.succeeded("alice", home, t0);
        // A success takes its attempt back from the username's count only.
        assert!(limiter.attempt("alice", fresh, t0 + wait).is_err());
    }

    #[test]
    fn the_wait_runs_from_the_answer() {
        let limiter = LoginLimiter::default();
        let (home, t0) = (ip("192.0.2.1"), Instant::now());
        for _ in 0..5 {
            limiter.attempt("alice", home, t0).unwrap();
        }
        // The fifth password check took 700 ms.
        let answered = t0 + Duration::from_millis(700);
        limiter.failed("alice", home, answered);
        assert_eq!(limiter.attempt("alice", home, answered), Err(SECOND));
        assert!(limiter.attempt("alice", home, answered + SECOND).is_ok());
    }

    #[test]
    fn a_success_forgives_the_username_on_that_network() {
        let limiter = LoginLimiter::default();
        let (home, t0) = (ip("192.0.2.1"), Instant::now());
        for _ in 0..4 {
            limiter.attempt("alice", home, t0).unwrap();
        }
        limiter.attempt("alice", home, t0).unwrap();
        limiter.succeeded("alice", home, t0);
        assert_eq!(until_throttled(&limiter, "alice", home, t0).0, 5);
    }

    #[test]
    fn memory_is_bounded_and_the_newest_keys_stay() {
        let limiter = LoginLimiter::with_capacity(1_000);
        let t0 = Instant::now();
        let (attacker, mut now) = (ip("203.0.113.9"), t0);
        assert_eq!(until_throttled(&limiter, "alice", attacker, t0).0, 5);
        for i in 0..5_000u32 {
            now = t0 + Duration::from_millis(u64::from(i));
            let client = IpAddr::from((0x0A00_0000 + i).to_be_bytes());
            let _ = limiter.attempt(&format!("made-up-{i}"), client, now);
            assert!(limiter.len() <= 1_000);
        }
        // The newest keys are kept: the latest made-up name is still counted.
        let last = IpAddr::from((0x0A00_0000u32 + 4_999).to_be_bytes());
        for _ in 0..4 {
            limiter.attempt("made-up-4999", last, now).unwrap();
        }
        assert!(limiter.attempt("made-up-4999", last, now).is_err());
    }
}
