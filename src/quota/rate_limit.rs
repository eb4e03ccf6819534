//! Per-user request rate limits, one GCRA bucket per user and RPC class (governor).

use std::num::NonZeroU32;
use std::sync::{Arc, Weak};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DefaultKeyedStateStore;
use serde::{Deserialize, Serialize};

/// How often [`RateLimiter::spawn_housekeeping`] forgets users whose buckets are full again.
pub const HOUSEKEEPING_INTERVAL: Duration = Duration::from_secs(60);

/// The `[rate_limit]` config section.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateLimitConfig {
    /// CreateRender calls per user per minute (also the burst: a fresh user may send them at once).
    pub create_per_minute: u32,
    /// Every other RPC, per user per second, sustained.
    pub other_per_second: u32,
    /// Every other RPC, per user, at once.
    pub other_burst: u32,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self {
            create_per_minute: 20,
            other_per_second: 50,
            other_burst: 100,
        }
    }
}

/// A `[rate_limit]` section that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RateLimitConfigError {
    #[error("rate_limit.{key} must be at least 1")]
    Zero { key: &'static str },
}

/// Which bucket an RPC draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RpcClass {
    Create,
    Other,
}

/// A request refused by the rate limiter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("rate limit exceeded; retry in {:.1} s", retry_after.as_secs_f64())]
pub struct RateLimited {
    /// How long until the same request would be allowed.
    pub retry_after: Duration,
}

type KeyedLimiter<C> = governor::RateLimiter<
    String,
    DefaultKeyedStateStore<String>,
    C,
    NoOpMiddleware<<C as Clock>::Instant>,
>;

/// Per-user rate limits for the two RPC classes. Memory grows with the number of users seen;
/// [`RateLimiter::housekeep`] (every [`HOUSEKEEPING_INTERVAL`] via
/// [`RateLimiter::spawn_housekeeping`]) drops users whose buckets have refilled.
#[derive(Debug)]
pub struct RateLimiter<C: Clock = DefaultClock> {
    create: KeyedLimiter<C>,
    other: KeyedLimiter<C>,
}

fn non_zero(value: u32, key: &'static str) -> Result<NonZeroU32, RateLimitConfigError> {
    NonZeroU32::new(value).ok_or(RateLimitConfigError::Zero { key })
}

impl RateLimiter<DefaultClock> {
    pub fn new(config: &RateLimitConfig) -> Result<Self, RateLimitConfigError> {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> RateLimiter<C> {
    /// A limiter on `clock` (tests use governor's `FakeRelativeClock`).
    pub fn with_clock(config: &RateLimitConfig, clock: C) -> Result<Self, RateLimitConfigError> {
        let create =
            governor::Quota::per_minute(non_zero(config.create_per_minute, "create_per_minute")?);
        let other =
            governor::Quota::per_second(non_zero(config.other_per_second, "other_per_second")?)
                .allow_burst(non_zero(config.other_burst, "other_burst")?);
        Ok(Self {
            create: governor::RateLimiter::dashmap_with_clock(create, clock.clone()),
            other: governor::RateLimiter::dashmap_with_clock(other, clock),
        })
    }

    /// Takes one request of `class` from `user`'s allowance, or says how long to wait.
    pub fn check(&self, user: &str, class: RpcClass) -> Result<(), RateLimited> {
        let limiter = self.limiter(class);
        limiter.check_key(&user.to_owned()).map_err(|not_until| {
            crate::telemetry::metrics().quota_rejected(crate::telemetry::QuotaRejection::Rate);
            RateLimited {
                retry_after: not_until.wait_time_from(limiter.clock().now()),
            }
        })
    }

    /// Forgets users whose buckets are full again, and returns the memory.
    pub fn housekeep(&self) {
        for limiter in [&self.create, &self.other] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    /// Users currently remembered for `class`.
    pub fn tracked_users(&self, class: RpcClass) -> usize {
        self.limiter(class).len()
    }

    fn limiter(&self, class: RpcClass) -> &KeyedLimiter<C> {
        match class {
            RpcClass::Create => &self.create,
            RpcClass::Other => &self.other,
        }
    }
}

impl<C: Clock + Clone + Send + Sync + 'static> RateLimiter<C> {
    /// Runs [`RateLimiter::housekeep`] every [`HOUSEKEEPING_INTERVAL`] until the limiter is
    /// dropped (or the task aborted).
    pub fn spawn_housekeeping(self: &Arc<Self>) -> tokio::task::JoinHandle<()>
    where
        C::Instant: Send + Sync,
    {
        self.spawn_housekeeping_every(HOUSEKEEPING_INTERVAL)
    }

    fn spawn_housekeeping_every(self: &Arc<Self>, period: Duration) -> tokio::task::JoinHandle<()>
    where
        C::Instant: Send + Sync,
    {
        let limiter: Weak<Self> = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(period);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            // The first tick completes at once; nothing is stale yet.
            ticks.tick().await;
            loop {
                ticks.tick().await;
                match limiter.upgrade() {
                    Some(limiter) => limiter.housekeep(),
                    None => return,
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use governor::clock::FakeRelativeClock;

    fn fake() -> (RateLimiter<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let limiter = RateLimiter::with_clock(&RateLimitConfig::default(), clock.clone())
            .expect("default config is valid");
        (limiter, clock)
    }

    #[test]
    fn twenty_creates_pass_and_the_twenty_first_waits_for_a_cell() {
        // The real clock, as served.
        let limiter = RateLimiter::new(&RateLimitConfig::default()).expect("valid config");
        for i in 0..20 {
            assert_eq!(
                limiter.check("alice", RpcClass::Create),
                Ok(()),
                "create {i}"
            );
        }
        let refused = limiter
            .check("alice", RpcClass::Create)
            .expect_err("21st create in a minute");
        assert!(refused.retry_after > Duration::ZERO, "{refused:?}");
        assert!(refused.retry_after <= Duration::from_secs(3), "{refused:?}");
        // Users and classes are independent.
        assert_eq!(limiter.check("bob", RpcClass::Create), Ok(()));
        assert_eq!(limiter.check("alice", RpcClass::Other), Ok(()));
    }

    #[test]
    fn create_cells_refill_one_every_three_seconds() {
        let (limiter, clock) = fake();
        for _ in 0..20 {
            limiter.check("alice", RpcClass::Create).expect("burst");
        }
        let refused = limiter.check("alice", RpcClass::Create).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(3));
        clock.advance(Duration::from_secs(1));
        let refused = limiter.check("alice", RpcClass::Create).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_secs(2));
        clock.advance(Duration::from_secs(2));
        assert_eq!(limiter.check("alice", RpcClass::Create), Ok(()));
        assert!(limiter.check("alice", RpcClass::Create).is_err());
        assert_eq!(
            RateLimited {
                retry_after: Duration::from_millis(2500)
            }
            .to_string(),
            "rate limit exceeded; retry in 2.5 s"
        );
    }

    #[test]
    fn other_rpcs_allow_a_burst_then_the_sustained_rate() {
        let (limiter, clock) = fake();
        for i in 0..100 {
            assert_eq!(limiter.check("alice", RpcClass::Other), Ok(()), "call {i}");
        }
        let refused = limiter.check("alice", RpcClass::Other).unwrap_err();
        assert_eq!(refused.retry_after, Duration::from_millis(20));
        clock.advance(Duration::from_millis(20));
        assert_eq!(limiter.check("alice", RpcClass::Other), Ok(()));
        // The create bucket is untouched by the other class.
        for _ in 0..20 {
            limiter
                .check("alice", RpcClass::Create)
                .expect("create burst");
        }
    }

    #[test]
    fn housekeeping_forgets_users_whose_buckets_refilled() {
        let (limiter, clock) = fake();
        for user in ["a", "b", "c"] {
            limiter.check(user, RpcClass::Create).expect("first call");
            limiter.check(user, RpcClass::Other).expect("first call");
        }
        assert_eq!(limiter.tracked_users(RpcClass::Create), 3);
        limiter.housekeep();
        assert_eq!(limiter.tracked_users(RpcClass::Create), 3, "still recent");
        clock.advance(Duration::from_secs(61));
        limiter.housekeep();
        assert_eq!(limiter.tracked_users(RpcClass::Create), 0);
        assert_eq!(limiter.tracked_users(RpcClass::Other), 0);
        // A forgotten user starts with a full bucket.
        for _ in 0..20 {
            limiter.check("a", RpcClass::Create).expect("fresh bucket");
        }
    }

    #[tokio::test]
    async fn housekeeping_task_cleans_up_and_ends_with_the_limiter() {
        let (limiter, clock) = fake();
        let limiter = Arc::new(limiter);
        limiter.check("a", RpcClass::Create).expect("first call");
        clock.advance(Duration::from_secs(61));
        let task = limiter.spawn_housekeeping_every(Duration::from_millis(5));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while limiter.tracked_users(RpcClass::Create) > 0 {
            assert!(tokio::time::Instant::now() < deadline, "never housekept");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        assert!(!task.is_finished());
        drop(limiter);
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("the task ends once the limiter is gone")
            .expect("housekeeping ended cleanly");
    }

    #[test]
    fn zero_limits_are_rejected_by_name() {
        for (config, key) in [
            (
                RateLimitConfig {
                    create_per_minute: 0,
                    ..RateLimitConfig::default()
                },
                "create_per_minute",
            ),
            (
                RateLimitConfig {
                    other_per_second: 0,
                    ..RateLimitConfig::default()
                },
                "other_per_second",
            ),
            (
                RateLimitConfig {
                    other_burst: 0,
                    ..RateLimitConfig::default()
                },
                "other_burst",
            ),
        ] {
            let err = RateLimiter::new(&config).unwrap_err();
            assert_eq!(err, RateLimitConfigError::Zero { key });
            assert_eq!(
                err.to_string(),
                format!("rate_limit.{key} must be at least 1")
            );
        }
    }

    #[test]
    fn config_section_parses_and_rejects_unknown_keys() {
        let config: RateLimitConfig =
            serde_json::from_value(serde_json::json!({"create_per_minute": 5})).unwrap();
        assert_eq!(
            config,
            RateLimitConfig {
                create_per_minute: 5,
                ..RateLimitConfig::default()
            }
        );
        assert!(
            serde_json::from_value::<RateLimitConfig>(serde_json::json!({"per_hour": 5})).is_err()
        );
    }
}
