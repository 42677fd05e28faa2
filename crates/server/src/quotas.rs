//! Per-user quotas on requests that cost more than a read: "Sync now"
//! (each round spends the shared Google/Microsoft quota), connecting an
//! account or subscribing to a feed (the server fetches up to tens of
//! megabytes for it), and range queries (beyond the stored horizon they
//! expand every series of the user). A loop against one of them is
//! answered 429 with `Retry-After`; ordinary use never meets them.
//!
//! Keyed GCRA limiters from `governor`: a burst, then a steady rate.

use std::num::NonZeroU32;
use std::time::Duration;

use calsync_core::model::UserId;
use governor::clock::{Clock as _, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};

/// The user used up their quota of an action for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many requests of this kind; try again in {retry_after_secs} seconds")]
pub struct QuotaExceeded {
    pub retry_after_secs: u64,
}

/// Something a user may do a limited number of times.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ManualSync,
    Connect,
    RangeQuery,
}

impl Action {
    /// (burst, one more every `period`).
    fn quota(self) -> (u32, Duration) {
        match self {
            Self::ManualSync => (30, Duration::from_secs(2)),
            Self::Connect => (10, Duration::from_secs(10)),
            Self::RangeQuery => (120, Duration::from_millis(250)),
        }
    }
}

type Limiter = RateLimiter<UserId, DefaultKeyedStateStore<UserId>, DefaultClock>;

/// Users' quotas, one limiter per action.
pub struct Quotas {
    sync: Limiter,
    connect: Limiter,
    range: Limiter,
}

/// Forget users that have been idle long enough to be back at a full burst
/// once the limiter holds this many.
const TIDY_ABOVE: usize = 10_000;

fn limiter(action: Action) -> Limiter {
    let (burst, period) = action.quota();
    let burst = NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period)
        .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
        .allow_burst(burst);
    RateLimiter::keyed(quota)
}

impl Default for Quotas {
    fn default() -> Self {
        Self {
            sync: limiter(Action::ManualSync),
            connect: limiter(Action::Connect),
            range: limiter(Action::RangeQuery),
        }
    }
}

impl Quotas {
    /// Takes one of the user's `action`s, or says when to come back.
    pub fn take(&self, user: UserId, action: Action) -> Result<(), QuotaExceeded> {
        let limiter = match action {
            Action::ManualSync => &self.sync,
            Action::Connect => &self.connect,
            Action::RangeQuery => &self.range,
        };
        if limiter.len() > TIDY_ABOVE {
            limiter.retain_recent();
        }
        limiter.check_key(&user).map_err(|not_until| {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            QuotaExceeded {
                retry_after_secs: wait.as_secs().max(1),
            }
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_429_with_a_wait_and_users_apart() {
        let quotas = Quotas::default();
        let (alice, bob) = (UserId(1), UserId(2));
        for _ in 0..10 {
            assert!(quotas.take(alice, Action::Connect).is_ok());
        }
        let refused = quotas.take(alice, Action::Connect).unwrap_err();
        assert!((1..=10).contains(&refused.retry_after_secs), "{refused}");
        assert!(quotas.take(bob, Action::Connect).is_ok(), "bob has his own");
        assert!(
            quotas.take(alice, Action::ManualSync).is_ok(),
            "each action has its own"
        );
    }
}
