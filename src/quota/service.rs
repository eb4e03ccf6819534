//! Quota-checked job creation and the usage report, over the job store.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use moka::future::Cache;

use super::{QuotaConfig, Windows};
use crate::domain::job::Job;
use crate::store::{JobStore, NewJob, QuotaKind, StoreError, Usage};

/// At most this many owners' usage is cached at once.
pub const USAGE_CACHE_CAPACITY: u64 = 100_000;

/// One allowance as the caller sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    pub used: u64,
    pub limit: u64,
    /// When the allowance is renewed; `None` for the concurrent slots, which free up as jobs end.
    pub resets_at: Option<DateTime<Utc>>,
}

/// An owner's usage against their plan, for `GetQuota`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuotaReport {
    /// The plan whose limits apply (the default plan when the principal's is not configured).
    pub plan: String,
    pub daily: Counter,
    pub monthly: Counter,
    pub concurrent: Counter,
}

/// A usage read and the windows it was counted in, so a read from yesterday is never reused.
#[derive(Clone, Copy, Debug)]
struct CachedUsage {
    day_start: DateTime<Utc>,
    month_start: DateTime<Utc>,
    usage: Usage,
}

/// Admits jobs within their owner's quota and reports usage. Cheap to clone.
///
/// The database transaction in [`JobStore::create_within_quota`] is the only admission check;
/// the moka cache only serves [`QuotaService::report`], and entries are dropped whenever this
/// process creates or finishes a job for the owner.
#[derive(Clone)]
pub struct QuotaService {
    store: JobStore,
    config: Arc<QuotaConfig>,
    usage: Cache<String, CachedUsage>,
    /// Bumped by every invalidation, so a usage read that raced with one is not cached.
    generation: Arc<AtomicU64>,
}

impl std::fmt::Debug for QuotaService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QuotaService")
            .field("config", &self.config)
            .field("cached_owners", &self.usage.entry_count())
            .finish_non_exhaustive()
    }
}

impl QuotaService {
    pub fn new(store: JobStore, config: QuotaConfig) -> Self {
        let usage = Cache::builder()
            .max_capacity(USAGE_CACHE_CAPACITY)
            .time_to_live(config.usage_cache_ttl)
            .build();
        Self {
            store,
            config: Arc::new(config),
            usage,
            generation: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn config(&self) -> &QuotaConfig {
        &self.config
    }

    /// The quota windows containing the present moment (e.g. for `resets_at` in an error).
    pub fn windows_now(&self) -> Windows {
        self.config.windows_at(Utc::now())
    }

    /// Stores a new job for `new.owner` if the allowances of `plan` permit it, in one database
    /// transaction ([`StoreError::QuotaExceeded`] otherwise). A replayed `request_id` returns
    /// the original job and `false` without counting it again.
    pub async fn create(&self, plan: &str, new: NewJob) -> Result<(Job, bool), StoreError> {
        let limits = self.config.limits_for(plan, Utc::now());
        let owner = new.owner.clone();
        let result = self.store.create_within_quota(new, &limits).await;
        if let Err(StoreError::QuotaExceeded { kind, .. }) = &result {
            crate::telemetry::metrics().quota_rejected(match kind {
                QuotaKind::Daily => crate::telemetry::QuotaRejection::Daily,
                QuotaKind::Monthly => crate::telemetry::QuotaRejection::Monthly,
                QuotaKind::Concurrent => crate::telemetry::QuotaRejection::Concurrent,
            });
        }
        self.invalidate(&owner).await;
        result
    }

    /// Forgets `owner`'s cached usage; the worker pool calls it when a job ends.
    pub async fn invalidate(&self, owner: &str) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.usage.invalidate(owner).await;
    }

    /// `owner`'s usage against the limits of `plan`. Usage is read from the database at most
    /// once per `usage_cache_ttl` per owner, and afresh after every [`QuotaService::invalidate`].
    pub async fn report(&self, owner: &str, plan: &str) -> Result<QuotaReport, StoreError> {
        let windows = self.windows_now();
        let usage = self.usage_in(owner, &windows).await?;
        let (plan, limits) = self.config.effective_plan(plan);
        Ok(QuotaReport {
            plan: plan.to_owned(),
            daily: Counter {
                used: usage.daily,
                limit: u64::from(limits.daily),
                resets_at: Some(windows.day_end),
            },
            monthly: Counter {
                used: usage.monthly,
                limit: u64::from(limits.monthly),
                resets_at: Some(windows.month_end),
            },
            concurrent: Counter {
                used: usage.concurrent,
                limit: u64::from(limits.concurrent),
                resets_at: None,
            },
        })
    }

    async fn usage_in(&self, owner: &str, windows: &Windows) -> Result<Usage, StoreError> {
        if let Some(cached) = self.usage.get(owner).await {
            if cached.day_start == windows.day_start && cached.month_start == windows.month_start {
                return Ok(cached.usage);
            }
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let usage = self
            .store
            .usage(owner, windows.day_start, windows.month_start)
            .await?;
        if self.config.usage_cache_ttl.is_zero() {
            return Ok(usage);
        }
        let entry = CachedUsage {
            day_start: windows.day_start,
            month_start: windows.month_start,
            usage,
        };
        self.usage.insert(owner.to_owned(), entry).await;
        // An invalidation between the read and the insert may have missed the entry: drop it,
        // since the read may predate the change that invalidation announced.
        if self.generation.load(Ordering::SeqCst) != generation {
            self.usage.invalidate(owner).await;
        }
        Ok(usage)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use super::*;
    use crate::domain::job::JobState;
    use crate::quota::PlanLimits;
    use crate::store::{QuotaKind, StoreErrorKind};

    async fn file_store() -> (JobStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temporary folder");
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("jobs.db").display());
        let store = JobStore::connect(&url).await.expect("open SQLite file");
        store.migrate().await.expect("migrate");
        (store, dir)
    }

    fn new_job(owner: &str, request_id: Option<String>) -> NewJob {
        NewJob {
            owner: owner.to_owned(),
            request_id,
            video_url: "file:///media/clip.mp4".to_owned(),
            video_name: Some("clip.mp4".to_owned()),
            scenario_json: r#"{"version":"1.3","cues":[]}"#.to_owned(),
            options: serde_json::json!({"width": 1280, "height": 720, "fps": 30, "quality": 80}),
            callback_url: None,
            trace_context: None,
        }
    }

    fn config(daily: u32, monthly: u32, concurrent: u32, ttl: Duration) -> QuotaConfig {
        let mut config = QuotaConfig {
            usage_cache_ttl: ttl,
            ..QuotaConfig::default()
        };
        config.plans.insert(
            "test".to_owned(),
            PlanLimits {
                daily,
                monthly,
                concurrent,
            },
        );
        config
    }

    fn quota_kind(err: &StoreError) -> Option<QuotaKind> {
        match err.kind() {
            StoreErrorKind::QuotaExceeded(kind) => Some(kind),
            _ => None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn fifty_simultaneous_creates_admit_exactly_the_concurrent_limit() {
        let (store, _dir) = file_store().await;
        let service = QuotaService::new(store.clone(), config(100, 100, 2, Duration::from_secs(2)));
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let service = service.clone();
                tokio::spawn(async move {
                    service
                        .create("test", new_job("racer", Some(format!("race-{i}"))))
                        .await
                })
            })
            .collect();
        let mut admitted = HashSet::new();
        let mut refused = 0;
        for task in tasks {
            match task.await.expect("create task finished") {
                Ok((job, created)) => {
                    assert!(created);
                    assert_eq!(job.state, JobState::Queued);
                    admitted.insert(job.id);
                }
                Err(err) => {
                    assert_eq!(quota_kind(&err), Some(QuotaKind::Concurrent), "{err}");
                    refused += 1;
                }
            }
        }
        assert_eq!(admitted.len(), 2);
        assert_eq!(refused, 48);
        let report = service.report("racer", "test").await.expect("report");
        assert_eq!(report.concurrent.used, 2);
        assert_eq!(report.daily.used, 2);
    }

    #[tokio::test]
    async fn daily_limit_refuses_and_cancelled_jobs_do_not_count() {
        let (store, _dir) = file_store().await;
        let service = QuotaService::new(store.clone(), config(3, 100, 10, Duration::from_secs(60)));
        let mut ids = Vec::new();
        for _ in 0..3 {
            let (job, created) = service
                .create("test", new_job("alice", None))
                .await
                .expect("within the daily limit");
            assert!(created);
            ids.push(job.id);
        }
        let err = service
            .create("test", new_job("alice", None))
            .await
            .expect_err("fourth job of the day");
        assert_eq!(quota_kind(&err), Some(QuotaKind::Daily));
        assert_eq!(err.to_string(), "daily quota exceeded: 3 of 3 used");

        // A cancelled job gives its daily slot back.
        store.cancel(&ids[0]).await.expect("cancel");
        service.invalidate("alice").await;
        let report = service.report("alice", "test").await.expect("report");
        assert_eq!(report.daily.used, 2);
        assert_eq!(report.monthly.used, 2);
        assert_eq!(report.concurrent.used, 2);
        service
            .create("test", new_job("alice", None))
            .await
            .expect("the cancelled job's slot is free again");

        // Another owner is unaffected.
        service
            .create("test", new_job("bob", None))
            .await
            .expect("bob has his own allowance");
    }

    #[tokio::test]
    async fn report_shows_usage_limits_and_resets() {
        let (store, _dir) = file_store().await;
        let service = QuotaService::new(store.clone(), config(5, 50, 2, Duration::from_secs(60)));
        let empty = service.report("carol", "test").await.expect("report");
        assert_eq!(empty.plan, "test");
        assert_eq!(
            (empty.daily.used, empty.monthly.used, empty.concurrent.used),
            (0, 0, 0)
        );
        assert_eq!(
            (
                empty.daily.limit,
                empty.monthly.limit,
                empty.concurrent.limit
            ),
            (5, 50, 2)
        );
        let windows = service.windows_now();
        assert_eq!(empty.daily.resets_at, Some(windows.day_end));
        assert_eq!(empty.monthly.resets_at, Some(windows.month_end));
        assert_eq!(empty.concurrent.resets_at, None);

        // create() invalidates, so the next report sees the new job at once.
        let (first, _) = service
            .create("test", new_job("carol", Some("r1".to_owned())))
            .await
            .expect("create");
        let report = service.report("carol", "test").await.expect("report");
        assert_eq!(
            (
                report.daily.used,
                report.monthly.used,
                report.concurrent.used
            ),
            (1, 1, 1)
        );

        // A replayed request id returns the original job and does not count twice.
        let (again, created) = service
            .create("test", new_job("carol", Some("r1".to_owned())))
            .await
            .expect("replay");
        assert!(!created);
        assert_eq!(again.id, first.id);
        assert_eq!(service.report("carol", "test").await.unwrap().daily.used, 1);

        // A job stored behind the service's back is not seen until the cache is invalidated.
        store
            .create(new_job("carol", None))
            .await
            .expect("direct create");
        assert_eq!(service.report("carol", "test").await.unwrap().daily.used, 1);
        service.invalidate("carol").await;
        let report = service.report("carol", "test").await.expect("report");
        assert_eq!(
            (
                report.daily.used,
                report.monthly.used,
                report.concurrent.used
            ),
            (2, 2, 2)
        );

        // An unconfigured plan reports the default plan's limits under its name.
        let fallback = service.report("carol", "platinum").await.expect("report");
        assert_eq!(fallback.plan, "free");
        assert_eq!(
            (
                fallback.daily.limit,
                fallback.monthly.limit,
                fallback.concurrent.limit
            ),
            (10, 100, 2)
        );
    }

    #[tokio::test]
    async fn the_cache_never_admits_what_the_database_refuses() {
        let (store, _dir) = file_store().await;
        let service =
            QuotaService::new(store.clone(), config(100, 100, 1, Duration::from_secs(60)));
        // Cache an empty usage, then fill the only slot behind the service's back.
        assert_eq!(
            service
                .report("dave", "test")
                .await
                .unwrap()
                .concurrent
                .used,
            0
        );
        store
            .create(new_job("dave", None))
            .await
            .expect("direct create");
        let err = service
            .create("test", new_job("dave", None))
            .await
            .expect_err("the database sees the slot taken");
        assert_eq!(quota_kind(&err), Some(QuotaKind::Concurrent));
    }

    #[tokio::test]
    async fn zero_ttl_reads_usage_every_time() {
        let (store, _dir) = file_store().await;
        let service = QuotaService::new(store.clone(), config(10, 10, 10, Duration::ZERO));
        assert_eq!(service.report("erin", "test").await.unwrap().daily.used, 0);
        store
            .create(new_job("erin", None))
            .await
            .expect("direct create");
        assert_eq!(service.report("erin", "test").await.unwrap().daily.used, 1);
    }
}
