//! Quotas and rate limits.
//!
//! Quota policy is pure arithmetic ([`Windows`], [`QuotaConfig::limits_for`]); the database
//! decides admission ([`QuotaService::create`] always goes through
//! [`JobStore::create_within_quota`](crate::store::JobStore::create_within_quota)), and moka only
//! caches usage *reads* for the usage display. Rate limits are per user and in memory
//! ([`RateLimiter`], on governor).

mod rate_limit;
mod service;
mod windows;

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::store::QuotaLimits;

pub use rate_limit::{
    RateLimitConfig, RateLimitConfigError, RateLimited, RateLimiter, RpcClass,
    HOUSEKEEPING_INTERVAL,
};
pub use service::{Counter, QuotaReport, QuotaService, USAGE_CACHE_CAPACITY};
pub use windows::{Windows, MAX_UTC_OFFSET_MINUTES};

/// One plan's allowances.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PlanLimits {
    /// Jobs created per day (cancelled ones not counted).
    pub daily: u32,
    /// Jobs created per month (cancelled ones not counted).
    pub monthly: u32,
    /// Jobs queued or running at once.
    pub concurrent: u32,
}

impl Default for PlanLimits {
    /// The old back end's allowances: 10 a day, 100 a month, 2 at once.
    fn default() -> Self {
        Self {
            daily: 10,
            monthly: 100,
            concurrent: 2,
        }
    }
}

/// The `[quota]` config section.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// Limits by plan name (the `plan` claim of a principal).
    pub plans: BTreeMap<String, PlanLimits>,
    /// The plan whose limits apply to a principal whose plan is not in `plans`.
    pub default_plan: String,
    /// Where days and months start, in minutes east of UTC (540 = Korea). 0 = UTC.
    pub utc_offset_minutes: i32,
    /// How long a usage read is reused for `GetQuota`. Admission never uses the cache.
    #[serde(with = "humantime_serde")]
    pub usage_cache_ttl: Duration,
}

/// The plan every default config has.
pub const DEFAULT_PLAN: &str = "free";

impl Default for QuotaConfig {
    fn default() -> Self {
        Self {
            plans: BTreeMap::from([(DEFAULT_PLAN.to_owned(), PlanLimits::default())]),
            default_plan: DEFAULT_PLAN.to_owned(),
            utc_offset_minutes: 0,
            usage_cache_ttl: Duration::from_secs(2),
        }
    }
}

/// A `[quota]` section that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuotaConfigError {
    #[error("quota.default_plan '{plan}' is not one of the configured plans ({known})")]
    UnknownDefaultPlan { plan: String, known: String },
    #[error(
        "quota.utc_offset_minutes = {0} is outside -{max}..={max} (a UTC offset under 24 hours)",
        max = MAX_UTC_OFFSET_MINUTES
    )]
    OffsetOutOfRange(i32),
}

impl QuotaConfig {
    /// Checks what serde cannot: the default plan exists and the offset is a real UTC offset.
    pub fn validate(&self) -> Result<(), QuotaConfigError> {
        if !self.plans.contains_key(&self.default_plan) {
            return Err(QuotaConfigError::UnknownDefaultPlan {
                plan: self.default_plan.clone(),
                known: self.plans.keys().cloned().collect::<Vec<_>>().join(", "),
            });
        }
        if self.utc_offset_minutes.unsigned_abs() > MAX_UTC_OFFSET_MINUTES.unsigned_abs() {
            return Err(QuotaConfigError::OffsetOutOfRange(self.utc_offset_minutes));
        }
        Ok(())
    }

    /// The plan whose limits apply to a principal of `plan`, and those limits: the plan itself
    /// when configured, else `default_plan` (else, in a config that skipped
    /// [`QuotaConfig::validate`], the built-in defaults under the default plan's name).
    pub fn effective_plan<'a>(&'a self, plan: &'a str) -> (&'a str, PlanLimits) {
        match self.plans.get(plan) {
            Some(limits) => (plan, *limits),
            None => (
                self.default_plan.as_str(),
                self.plans
                    .get(&self.default_plan)
                    .copied()
                    .unwrap_or_default(),
            ),
        }
    }

    /// The quota windows that contain `now`.
    pub fn windows_at(&self, now: DateTime<Utc>) -> Windows {
        Windows::at(now, self.utc_offset_minutes)
    }

    /// The allowances of `plan` counted in the windows that contain `now`, as the store
    /// checks them.
    pub fn limits_for(&self, plan: &str, now: DateTime<Utc>) -> QuotaLimits {
        let (_, limits) = self.effective_plan(plan);
        let windows = self.windows_at(now);
        QuotaLimits {
            daily: u64::from(limits.daily),
            monthly: u64::from(limits.monthly),
            concurrent: u64::from(limits.concurrent),
            day_start: windows.day_start,
            month_start: windows.month_start,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn config_with_pro() -> QuotaConfig {
        let mut config = QuotaConfig::default();
        config.plans.insert(
            "pro".to_owned(),
            PlanLimits {
                daily: 50,
                monthly: 1000,
                concurrent: 4,
            },
        );
        config
    }

    #[test]
    fn defaults_are_the_old_back_ends_allowances() {
        let config = QuotaConfig::default();
        assert_eq!(config.default_plan, "free");
        assert_eq!(
            config.plans.get("free"),
            Some(&PlanLimits {
                daily: 10,
                monthly: 100,
                concurrent: 2
            })
        );
        assert_eq!(config.utc_offset_minutes, 0);
        assert_eq!(config.usage_cache_ttl, Duration::from_secs(2));
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn limits_come_from_the_plan_or_the_default_plan() {
        let config = config_with_pro();
        let now = Utc.with_ymd_and_hms(2025, 3, 15, 10, 30, 0).unwrap();
        let pro = config.limits_for("pro", now);
        assert_eq!((pro.daily, pro.monthly, pro.concurrent), (50, 1000, 4));
        assert_eq!(
            pro.day_start,
            Utc.with_ymd_and_hms(2025, 3, 15, 0, 0, 0).unwrap()
        );
        assert_eq!(
            pro.month_start,
            Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap()
        );
        let unknown = config.limits_for("platinum", now);
        assert_eq!(
            (unknown.daily, unknown.monthly, unknown.concurrent),
            (10, 100, 2)
        );
        assert_eq!(config.effective_plan("platinum").0, "free");
        assert_eq!(config.effective_plan("pro").0, "pro");
    }

    #[test]
    fn limits_follow_the_configured_offset() {
        let config = QuotaConfig {
            utc_offset_minutes: 540,
            ..QuotaConfig::default()
        };
        // 16:00 UTC on 31 March is already 1 April in Korea.
        let now = Utc.with_ymd_and_hms(2025, 3, 31, 16, 0, 0).unwrap();
        let limits = config.limits_for("free", now);
        assert_eq!(
            limits.day_start,
            Utc.with_ymd_and_hms(2025, 3, 31, 15, 0, 0).unwrap()
        );
        assert_eq!(limits.month_start, limits.day_start);
    }

    #[test]
    fn validation_names_the_problem() {
        let config = QuotaConfig {
            default_plan: "gold".to_owned(),
            ..config_with_pro()
        };
        let err = config.validate().unwrap_err();
        assert_eq!(
            err.to_string(),
            "quota.default_plan 'gold' is not one of the configured plans (free, pro)"
        );
        // Without a usable default plan the built-in limits still apply, under its name.
        assert_eq!(
            config.effective_plan("nobody"),
            ("gold", PlanLimits::default())
        );

        for bad in [1440, -1440, i32::MIN, i32::MAX] {
            let config = QuotaConfig {
                utc_offset_minutes: bad,
                ..QuotaConfig::default()
            };
            assert_eq!(
                config.validate(),
                Err(QuotaConfigError::OffsetOutOfRange(bad))
            );
        }
        for good in [1439, -1439, 840, -720] {
            let config = QuotaConfig {
                utc_offset_minutes: good,
                ..QuotaConfig::default()
            };
            assert_eq!(config.validate(), Ok(()));
        }
    }

    #[test]
    fn config_deserializes_with_humantime_and_rejects_unknown_keys() {
        let config: QuotaConfig = serde_json::from_value(serde_json::json!({
            "plans": {"team": {"daily": 30, "monthly": 300, "concurrent": 3}},
            "default_plan": "team",
            "usage_cache_ttl": "500ms"
        }))
        .expect("quota section parses");
        assert_eq!(config.usage_cache_ttl, Duration::from_millis(500));
        assert_eq!(config.utc_offset_minutes, 0);
        assert_eq!(config.plans.len(), 1);
        assert_eq!(config.validate(), Ok(()));

        let round_trip: QuotaConfig =
            serde_json::from_value(serde_json::to_value(&config).expect("serializes"))
                .expect("parses back");
        assert_eq!(round_trip, config);

        assert!(serde_json::from_value::<QuotaConfig>(serde_json::json!({"daily": 3})).is_err());
        assert!(serde_json::from_value::<QuotaConfig>(serde_json::json!({
            "plans": {"x": {"daily": 1, "monthly": 1}}
        }))
        .is_err());
    }
}
