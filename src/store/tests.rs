//! Store tests: every scenario runs on a fresh SQLite file after migrations, and again on
//! PostgreSQL (each test in its own schema) when `DATABASE_URL` is set.

use std::collections::HashSet;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use sea_orm::{ConnectOptions, ConnectionTrait, Database};

use super::*;
use crate::domain::job::{Job, JobFailure, JobId, JobOutcome, JobOutput, JobState, Stage};

const LEASE: Duration = Duration::from_secs(60);

fn new_job(owner: &str, request_id: Option<&str>) -> NewJob {
    NewJob {
        owner: owner.to_owned(),
        request_id: request_id.map(str::to_owned),
        video_url: "file:///media/clip.mp4".to_owned(),
        video_name: Some("clip.mp4".to_owned()),
        scenario_json: r#"{"version":"1.3","cues":[]}"#.to_owned(),
        options: serde_json::json!({"width": 1280, "height": 720, "fps": 30, "quality": 80}),
        callback_url: None,
        trace_context: None,
    }
}

fn limits(daily: u64, monthly: u64, concurrent: u64) -> QuotaLimits {
    let day_start = Utc::now() - TimeDelta::hours(1);
    QuotaLimits {
        daily,
        monthly,
        concurrent,
        day_start,
        month_start: day_start - TimeDelta::days(3),
    }
}

fn progress(percent: f64, frames_done: u64) -> ProgressUpdate {
    ProgressUpdate {
        stage: Stage::Rendering,
        percent,
        frames_done,
        frames_total: Some(300),
        fps: Some(120.0),
        eta_seconds: Some(2.5),
        encoder: Some("x264".to_owned()),
    }
}

/// Lets a zero-length lease run out: stored times have microsecond precision.
async fn let_lease_expire() {
    tokio::time::sleep(Duration::from_millis(5)).await;
}

async fn sqlite_store() -> (JobStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary folder");
    let url = format!(
        "sqlite://{}?mode=rwc",
        dir.path().join("nested").join("jobs.db").display()
    );
    let store = JobStore::connect(&url).await.expect("open SQLite file");
    store.migrate().await.expect("migrate");
    (store, dir)
}

/// A store in a schema of its own on the server named by `DATABASE_URL`, so tests that run at
/// the same time do not see each other's queue. `None` (after saying why) when it is unset.
async fn postgres_store(test: &str) -> Option<(JobStore, String, String)> {
    let Ok(url) = std::env::var("DATABASE_URL") else {
        eprintln!("skipping the PostgreSQL run of {test}: DATABASE_URL is not set");
        return None;
    };
    let schema = format!(
        "renderd_test_{}",
        JobId::generate().as_str().replace('-', "")
    );
    let admin = Database::connect(&url)
        .await
        .expect("connect to DATABASE_URL");
    admin
        .execute_unprepared(&format!("CREATE SCHEMA {schema}"))
        .await
        .expect("create test schema");
    let mut options = ConnectOptions::new(url.clone());
    options
        .max_connections(16)
        .sqlx_logging(false)
        .set_schema_search_path(schema.clone());
    let store = JobStore::connect_with(options)
        .await
        .expect("connect to schema");
    store.migrate().await.expect("migrate");
    Some((store, url, schema))
}

async fn drop_schema(url: &str, schema: &str) {
    if let Ok(admin) = Database::connect(url).await {
        // Best effort: a left-over schema only costs space on a test server.
        let _ = admin
            .execute_unprepared(&format!("DROP SCHEMA {schema} CASCADE"))
            .await;
    }
}

macro_rules! store_tests {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let (store, _dir) = super::sqlite_store().await;
                    super::$name(&store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $name() {
                    let Some((store, url, schema)) = super::postgres_store(stringify!($name)).await
                    else {
                        return;
                    };
                    super::$name(&store).await;
                    super::drop_schema(&url, &schema).await;
                }
            )*
        }
    };
}

store_tests!(
    create_is_idempotent_per_owner_and_request_id,
    get_returns_the_stored_job_or_not_found,
    list_pages_newest_first_with_opaque_tokens,
    claim_takes_the_oldest_queued_job_once,
    expired_leases_are_reclaimed_until_attempts_run_out,
    progress_never_goes_backwards,
    finish_and_cancel_follow_the_legal_transitions,
    requeue_hands_a_job_back_without_spending_an_attempt,
    usage_skips_cancelled_jobs_and_counts_live_ones,
    create_within_quota_refuses_over_limit_and_replays_request_ids,
    concurrent_creates_never_exceed_the_concurrent_limit,
    jobs_are_counted_by_state,
    terminal_transitions_write_one_webhook_event_each,
    webhook_events_are_leased_once_retried_and_delivered,
    webhook_events_past_their_deadline_fail,
    expired_outputs_are_claimed_once_and_marked,
);

async fn create_is_idempotent_per_owner_and_request_id(store: &JobStore) {
    let (first, created) = store
        .create(new_job("alice", Some("req-1")))
        .await
        .expect("create");
    assert!(created);
    assert_eq!(first.state, JobState::Queued);
    assert_eq!(first.attempts, 0);
    assert_eq!(first.progress.percent, 0.0);
    assert_eq!(first.options["width"], 1280);

    let mut replay = new_job("alice", Some("req-1"));
    replay.video_url = "file:///media/other.mp4".to_owned();
    let (again, created) = store.create(replay).await.expect("replay");
    assert!(!created);
    assert_eq!(
        again, first,
        "the original job comes back, untouched by the replay"
    );

    let (bobs, created) = store
        .create(new_job("bob", Some("req-1")))
        .await
        .expect("bob");
    assert!(created);
    assert_ne!(bobs.id, first.id);

    let (a, _) = store.create(new_job("alice", None)).await.expect("no id 1");
    let (b, created) = store.create(new_job("alice", None)).await.expect("no id 2");
    assert!(created);
    assert_ne!(a.id, b.id, "jobs without a request id are never merged");
}

async fn get_returns_the_stored_job_or_not_found(store: &JobStore) {
    let (job, _) = store.create(new_job("alice", None)).await.expect("create");
    assert_eq!(store.get(&job.id).await.expect("get"), job);
    let missing = JobId::generate();
    let err = store.get(&missing).await.expect_err("missing job");
    assert_eq!(err.kind(), StoreErrorKind::NotFound);
    let (other, _) = store.create(new_job("bob", None)).await.expect("create");
    let mut many = store
        .statuses(&[job.id.clone(), missing, other.id.clone()])
        .await
        .expect("statuses");
    many.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    let mut expected: Vec<Job> = [job, other.clone()]
        .into_iter()
        .map(|j| Job {
            scenario_json: String::new(),
            ..j
        })
        .collect();
    expected.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
    assert_eq!(many, expected, "existing jobs only, scenarios left out");
    assert!(store.statuses(&[]).await.expect("empty").is_empty());
    let status = store.get_status(&other.id).await.expect("get_status");
    assert_eq!(status.id, other.id);
    assert!(status.scenario_json.is_empty());
    assert_eq!(
        store
            .get_status(&JobId::generate())
            .await
            .expect_err("missing")
            .kind(),
        StoreErrorKind::NotFound
    );
}

async fn list_pages_newest_first_with_opaque_tokens(store: &JobStore) {
    let mut alice = Vec::new();
    for i in 0..7 {
        let (job, _) = store
            .create(new_job("alice", Some(&format!("a{i}"))))
            .await
            .expect("create");
        alice.push(job.id);
    }
    for i in 0..2 {
        store
            .create(new_job("bob", Some(&format!("b{i}"))))
            .await
            .expect("create");
    }
    alice.reverse();

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut sizes = Vec::new();
    loop {
        let (page, next) = store
            .list(Some("alice"), &[], 3, token.as_deref())
            .await
            .expect("page");
        sizes.push(page.len());
        assert!(page.iter().all(|job| job.owner == "alice"));
        seen.extend(page.into_iter().map(|job| job.id));
        match next {
            Some(next) => token = Some(next),
            None => break,
        }
    }
    assert_eq!(sizes, vec![3, 3, 1]);
    assert_eq!(seen, alice, "newest first, each job exactly once");

    let (everyone, next) = store.list(None, &[], 0, None).await.expect("admin");
    assert_eq!(everyone.len(), 9);
    assert_eq!(next, None);
    let times: Vec<DateTime<Utc>> = everyone.iter().map(|job| job.created_at).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]));

    store.cancel(&alice[0]).await.expect("cancel newest");
    let (cancelled, _) = store
        .list(Some("alice"), &[JobState::Cancelled], 10, None)
        .await
        .expect("filter");
    assert_eq!(
        cancelled.iter().map(|j| &j.id).collect::<Vec<_>>(),
        vec![&alice[0]]
    );

    let (_, alice_token) = store.list(Some("alice"), &[], 2, None).await.expect("page");
    let alice_token = alice_token.expect("more pages");
    for (owner, state, token) in [
        (Some("bob"), &[][..], alice_token.as_str()),
        (Some("alice"), &[JobState::Queued][..], alice_token.as_str()),
        (Some("alice"), &[][..], "bm90LWEtdG9rZW4"),
    ] {
        let err = store
            .list(owner, state, 2, Some(token))
            .await
            .expect_err("foreign token");
        assert_eq!(err.kind(), StoreErrorKind::InvalidArgument);
    }
    let (first_page, _) = store
        .list(Some("alice"), &[], 2, Some(""))
        .await
        .expect("empty");
    assert_eq!(first_page.len(), 2, "an empty token is the first page");
    // Several states at once; the token binds the set, not its order.
    let states = [JobState::Queued, JobState::Cancelled];
    let (page, token) = store
        .list(Some("alice"), &states, 2, None)
        .await
        .expect("two states");
    assert_eq!(page.len(), 2);
    let reversed = [JobState::Cancelled, JobState::Queued];
    let (rest, _) = store
        .list(Some("alice"), &reversed, 100, token.as_deref())
        .await
        .expect("same set, other order");
    assert_eq!(
        page.len() + rest.len(),
        7,
        "alice's seven jobs, queued or cancelled"
    );
}

async fn claim_takes_the_oldest_queued_job_once(store: &JobStore) {
    let (a, _) = store.create(new_job("alice", None)).await.expect("a");
    let (b, _) = store.create(new_job("bob", None)).await.expect("b");

    let first = store
        .claim_next("w1", LEASE, 3)
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(first.id, a.id);
    assert_eq!(first.state, JobState::Running);
    assert_eq!(first.attempts, 1);
    let lease = first.lease.clone().expect("leased");
    assert_eq!(lease.owner, "w1");
    assert!(lease.expires_at > Utc::now() + TimeDelta::seconds(50));
    assert!(first.started_at.is_some());

    let second = store
        .claim_next("w2", LEASE, 3)
        .await
        .expect("claim")
        .expect("b");
    assert_eq!(second.id, b.id);
    assert!(store
        .claim_next("w3", LEASE, 3)
        .await
        .expect("claim")
        .is_none());

    let renewed = store
        .renew_lease(&a.id, "w1", LEASE * 2)
        .await
        .expect("renew");
    assert!(renewed.lease.expect("leased").expires_at > lease.expires_at);
    let err = store
        .renew_lease(&a.id, "w2", LEASE)
        .await
        .expect_err("not w2's");
    assert_eq!(err.kind(), StoreErrorKind::LeaseLost);
}

async fn expired_leases_are_reclaimed_until_attempts_run_out(store: &JobStore) {
    let (job, _) = store.create(new_job("alice", None)).await.expect("create");
    let taken = store
        .claim_next("w1", Duration::ZERO, 2)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(taken.attempts, 1);
    let_lease_expire().await;

    let retaken = store
        .claim_next("w2", Duration::ZERO, 2)
        .await
        .expect("claim")
        .expect("again");
    assert_eq!(retaken.id, job.id);
    assert_eq!(retaken.attempts, 2);
    assert_eq!(retaken.lease.expect("leased").owner, "w2");
    let err = store
        .update_progress(&job.id, "w1", &progress(10.0, 30))
        .await
        .expect_err("w1 lost it");
    assert!(
        matches!(
            err,
            StoreError::LeaseLost {
                state: JobState::Running,
                ..
            }
        ),
        "{err}"
    );
    let_lease_expire().await;

    assert!(store
        .claim_next("w3", LEASE, 2)
        .await
        .expect("claim")
        .is_none());
    let failed = store.get(&job.id).await.expect("get");
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(
        failed.failure.expect("failure").code,
        ATTEMPTS_EXHAUSTED_CODE
    );
    assert!(failed.lease.is_none());
    assert!(failed.finished_at.is_some());
}

async fn progress_never_goes_backwards(store: &JobStore) {
    let (job, _) = store.create(new_job("alice", None)).await.expect("create");
    store
        .claim_next("w1", LEASE, 3)
        .await
        .expect("claim")
        .expect("job");

    let at_40 = store
        .update_progress(&job.id, "w1", &progress(40.0, 120))
        .await
        .expect("40");
    assert_eq!(at_40.progress.percent, 40.0);
    assert!(
        at_40.updated_at > job.updated_at,
        "a progress write is a change"
    );
    assert_eq!(job.updated_at, job.created_at);
    assert_eq!(at_40.progress.stage, Some(Stage::Rendering));
    assert_eq!(at_40.progress.encoder.as_deref(), Some("x264"));

    let mut behind = progress(30.0, 90);
    behind.stage = Stage::Encoding;
    let still_40 = store
        .update_progress(&job.id, "w1", &behind)
        .await
        .expect("30");
    assert_eq!(still_40.progress.percent, 40.0);
    assert_eq!(still_40.progress.frames_done, 120);
    assert_eq!(still_40.progress.stage, Some(Stage::Encoding));

    let over = store
        .update_progress(&job.id, "w1", &progress(250.0, 300))
        .await
        .expect("over");
    assert_eq!(over.progress.percent, 100.0, "clamped to 100");
    let nan = store
        .update_progress(&job.id, "w1", &progress(f64::NAN, 0))
        .await
        .expect("nan");
    assert_eq!(nan.progress.percent, 100.0);
    assert_eq!(nan.progress.frames_done, 300);
    assert_eq!(
        store.get(&job.id).await.expect("get").progress.percent,
        100.0
    );
}

async fn finish_and_cancel_follow_the_legal_transitions(store: &JobStore) {
    let output = JobOutput {
        path: "/data/outputs/x.mp4".to_owned(),
        size_bytes: 1_234_567,
        duration_seconds: 10.0,
        expires_at: Some(DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(30_000)),
        expired_at: None,
    };
    let (queued, _) = store.create(new_job("alice", None)).await.expect("create");
    let err = store
        .finish(&queued.id, "w1", JobOutcome::Succeeded(output.clone()))
        .await
        .expect_err("queued cannot succeed");
    assert!(matches!(
        err,
        StoreError::IllegalTransition {
            from: JobState::Queued,
            to: JobState::Succeeded,
            ..
        }
    ));

    store
        .claim_next("w1", LEASE, 3)
        .await
        .expect("claim")
        .expect("job");
    let done = store
        .finish(&queued.id, "w1", JobOutcome::Succeeded(output.clone()))
        .await
        .expect("succeed");
    assert_eq!(done.state, JobState::Succeeded);
    assert_eq!(done.output, Some(output.clone()));
    assert_eq!(done.progress.percent, 100.0);
    assert!(done.lease.is_none() && done.finished_at.is_some());

    for outcome in [
        JobOutcome::Succeeded(output.clone()),
        JobOutcome::Failed(JobFailure {
            code: "FFMPEG_ERROR".into(),
            message: "x".into(),
        }),
        JobOutcome::Cancelled,
    ] {
        let err = store
            .finish(&queued.id, "w1", outcome)
            .await
            .expect_err("terminal");
        assert_eq!(err.kind(), StoreErrorKind::FailedPrecondition, "{err}");
    }
    let err = store
        .cancel(&queued.id)
        .await
        .expect_err("cancel succeeded");
    assert!(matches!(
        err,
        StoreError::IllegalTransition {
            from: JobState::Succeeded,
            to: JobState::Cancelled,
            ..
        }
    ));

    let (to_fail, _) = store.create(new_job("alice", None)).await.expect("create");
    store
        .claim_next("w1", LEASE, 3)
        .await
        .expect("claim")
        .expect("job");
    let failure = JobFailure {
        code: "INVALID_VIDEO_FORMAT".into(),
        message: "not a video".into(),
    };
    let err = store
        .finish(&to_fail.id, "w2", JobOutcome::Failed(failure.clone()))
        .await
        .expect_err("w2 holds no lease");
    assert_eq!(err.kind(), StoreErrorKind::LeaseLost);
    let failed = store
        .finish(&to_fail.id, "w1", JobOutcome::Failed(failure.clone()))
        .await
        .expect("fail");
    assert_eq!(failed.state, JobState::Failed);
    assert_eq!(failed.failure, Some(failure));

    let (to_cancel, _) = store.create(new_job("alice", None)).await.expect("create");
    let cancelled = store.cancel(&to_cancel.id).await.expect("cancel queued");
    assert_eq!(cancelled.state, JobState::Cancelled);
    assert!(cancelled.finished_at.is_some());
    assert_eq!(store.cancel(&to_cancel.id).await.expect("again"), cancelled);

    let (running, _) = store.create(new_job("alice", None)).await.expect("create");
    store
        .claim_next("w1", LEASE, 3)
        .await
        .expect("claim")
        .expect("job");
    let stopped = store.cancel(&running.id).await.expect("cancel running");
    assert_eq!(stopped.state, JobState::Cancelled);
    assert!(stopped.lease.is_none());
    let err = store
        .renew_lease(&running.id, "w1", LEASE)
        .await
        .expect_err("cancelled");
    assert!(
        matches!(
            err,
            StoreError::LeaseLost {
                state: JobState::Cancelled,
                ..
            }
        ),
        "{err}"
    );
    let acknowledged = store
        .finish(&running.id, "w1", JobOutcome::Cancelled)
        .await
        .expect("worker acknowledges the cancel");
    assert_eq!(acknowledged.state, JobState::Cancelled);
    let err = store
        .finish(&running.id, "w1", JobOutcome::Succeeded(output))
        .await
        .expect_err("cancelled is final");
    assert_eq!(err.kind(), StoreErrorKind::FailedPrecondition);

    let err = store.cancel(&JobId::generate()).await.expect_err("missing");
    assert_eq!(err.kind(), StoreErrorKind::NotFound);
}

async fn requeue_hands_a_job_back_without_spending_an_attempt(store: &JobStore) {
    let (job, _) = store.create(new_job("alice", None)).await.expect("create");
    store
        .claim_next("w1", LEASE, 3)
        .await
        .expect("claim")
        .expect("job");
    let back = store.requeue(&job.id, "w1").await.expect("requeue");
    assert_eq!(back.state, JobState::Queued);
    assert_eq!(back.attempts, 0);
    assert!(back.lease.is_none());
    let err = store.requeue(&job.id, "w1").await.expect_err("not running");
    assert_eq!(err.kind(), StoreErrorKind::LeaseLost);
    let again = store
        .claim_next("w2", LEASE, 3)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!((again.id, again.attempts), (job.id, 1));
}

async fn usage_skips_cancelled_jobs_and_counts_live_ones(store: &JobStore) {
    let month_start = Utc::now() - TimeDelta::days(1);
    let (old, _) = store.create(new_job("alice", None)).await.expect("old");
    store
        .claim_next("w1", LEASE, 3)
        .await
        .expect("claim")
        .expect("job");
    store
        .finish(
            &old.id,
            "w1",
            JobOutcome::Failed(JobFailure {
                code: "FFMPEG_ERROR".into(),
                message: "broken".into(),
            }),
        )
        .await
        .expect("fail");
    tokio::time::sleep(Duration::from_millis(2)).await;
    let day_start = Utc::now();
    tokio::time::sleep(Duration::from_millis(2)).await;
    let (_running, _) = store.create(new_job("alice", None)).await.expect("running");
    store
        .claim_next("w1", LEASE, 3)
        .await
        .expect("claim")
        .expect("job");
    store.create(new_job("alice", None)).await.expect("queued");
    let (cancelled, _) = store
        .create(new_job("alice", None))
        .await
        .expect("cancelled");
    store.cancel(&cancelled.id).await.expect("cancel");
    store.create(new_job("bob", None)).await.expect("bob's");

    let usage = store
        .usage("alice", day_start, month_start)
        .await
        .expect("usage");
    assert_eq!(
        usage,
        Usage {
            daily: 2,
            monthly: 3,
            concurrent: 2
        }
    );
    let nobody = store
        .usage("carol", day_start, month_start)
        .await
        .expect("usage");
    assert_eq!(nobody, Usage::default());
}

async fn create_within_quota_refuses_over_limit_and_replays_request_ids(store: &JobStore) {
    let two_at_once = limits(10, 100, 2);
    let (first, created) = store
        .create_within_quota(new_job("alice", Some("r1")), &two_at_once)
        .await
        .expect("first");
    assert!(created);
    store
        .create_within_quota(new_job("alice", Some("r2")), &two_at_once)
        .await
        .expect("second");
    let err = store
        .create_within_quota(new_job("alice", Some("r3")), &two_at_once)
        .await
        .expect_err("third");
    assert!(
        matches!(
            err,
            StoreError::QuotaExceeded {
                kind: QuotaKind::Concurrent,
                used: 2,
                limit: 2
            }
        ),
        "{err}"
    );
    let (replayed, created) = store
        .create_within_quota(new_job("alice", Some("r1")), &two_at_once)
        .await
        .expect("a replay is not a new job");
    assert!(!created);
    assert_eq!(replayed.id, first.id);

    store.cancel(&first.id).await.expect("cancel");
    let (_, created) = store
        .create_within_quota(new_job("alice", Some("r3")), &two_at_once)
        .await
        .expect("a slot is free again");
    assert!(created);

    // r2 and r3 count today (r1 was cancelled): a daily limit of 2 is used up.
    let err = store
        .create_within_quota(new_job("alice", None), &limits(2, 100, 10))
        .await
        .expect_err("daily");
    assert_eq!(err.kind(), StoreErrorKind::QuotaExceeded(QuotaKind::Daily));
    let err = store
        .create_within_quota(new_job("alice", None), &limits(10, 2, 10))
        .await
        .expect_err("monthly");
    assert_eq!(
        err.kind(),
        StoreErrorKind::QuotaExceeded(QuotaKind::Monthly)
    );
    store
        .create_within_quota(new_job("bob", None), &limits(1, 1, 1))
        .await
        .expect("bob has his own allowance");
}

async fn concurrent_creates_never_exceed_the_concurrent_limit(store: &JobStore) {
    let two_at_once = limits(1000, 1000, 2);
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50 {
        let store = store.clone();
        tasks.spawn(async move {
            store
                .create_within_quota(new_job("racer", Some(&format!("race-{i}"))), &two_at_once)
                .await
        });
    }
    let mut admitted = HashSet::new();
    let mut refused = 0;
    while let Some(result) = tasks.join_next().await {
        match result.expect("task") {
            Ok((job, created)) => {
                assert!(created);
                admitted.insert(job.id);
            }
            Err(StoreError::QuotaExceeded {
                kind: QuotaKind::Concurrent,
                ..
            }) => refused += 1,
            Err(other) => panic!("unexpected error under contention: {other}"),
        }
    }
    assert_eq!(admitted.len(), 2);
    assert_eq!(refused, 48);
    let (stored, _) = store
        .list(Some("racer"), &[], 100, None)
        .await
        .expect("list");
    assert_eq!(stored.len(), 2);
}

#[tokio::test]
async fn in_memory_sqlite_keeps_its_data_across_calls() {
    let store = JobStore::connect("sqlite::memory:").await.expect("open");
    store.migrate().await.expect("migrate");
    store.migrate().await.expect("migrating twice is a no-op");
    let (job, _) = store.create(new_job("alice", None)).await.expect("create");
    assert_eq!(store.get(&job.id).await.expect("get").id, job.id);
}

#[tokio::test]
async fn connect_reports_an_unreachable_database() {
    let mut options = ConnectOptions::new("postgres://renderd:pw@127.0.0.1:1/renderd");
    options
        .connect_timeout(Duration::from_millis(500))
        .acquire_timeout(Duration::from_millis(500));
    let err = JobStore::connect_with(options)
        .await
        .expect_err("nothing listens on port 1");
    assert_eq!(err.kind(), StoreErrorKind::Unavailable);
    assert!(!err.to_string().contains("pw@"), "password masked: {err}");
}

async fn jobs_are_counted_by_state(store: &JobStore) {
    assert_eq!(store.count_by_state().await.expect("count"), Vec::new());
    for owner in ["a", "b", "c"] {
        store.create(new_job(owner, None)).await.expect("create");
    }
    let claimed = store
        .claim_next("w1", LEASE, 3)
        .await
        .expect("claim")
        .expect("a queued job");
    let mut counts = store.count_by_state().await.expect("count");
    counts.sort_by_key(|(state, _)| state.as_str());
    assert_eq!(
        counts,
        vec![(JobState::Queued, 2), (JobState::Running, 1)],
        "claimed {}",
        claimed.id
    );
}

/// The creating request's `traceparent` is kept with the job for the worker's job span; a job
/// created outside any trace has none. (Taking it from the current span is the telemetry
/// module's `current_traceparent`, checked end to end by tests/observability.rs; the core
/// passes it in.)
#[tokio::test]
async fn create_keeps_the_creating_request_trace_context() {
    let (store, _dir) = sqlite_store().await;
    let (untraced, _) = store.create(new_job("alice", None)).await.expect("create");
    assert_eq!(store.trace_context(&untraced.id).await.expect("read"), None);
    let caller = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let traced = NewJob {
        trace_context: Some(caller.to_owned()),
        ..new_job("alice", None)
    };
    let (traced, _) = store.create(traced).await.expect("create");
    assert_eq!(
        store
            .trace_context(&traced.id)
            .await
            .expect("read")
            .as_deref(),
        Some(caller)
    );
    assert!(matches!(
        store.trace_context(&JobId::generate()).await,
        Err(StoreError::NotFound(_))
    ));
}

const HOOK: &str = "https://hooks.example.com/renderd";

fn hooked_job(owner: &str) -> NewJob {
    NewJob {
        callback_url: Some(HOOK.to_owned()),
        trace_context: None,
        ..new_job(owner, None)
    }
}

/// Claims the oldest queued job as `worker`, asserting it is `id`.
async fn claim_exactly(store: &JobStore, worker: &str, id: &JobId) {
    let job = store
        .claim_next(worker, LEASE, 3)
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(&job.id, id);
}

async fn terminal_transitions_write_one_webhook_event_each(store: &JobStore) {
    let output = JobOutput {
        path: "/data/outputs/x.mp4".to_owned(),
        size_bytes: 4_321,
        duration_seconds: 1.5,
        expires_at: None,
        expired_at: None,
    };
    // Succeeded: one event carrying the job, the output (its link added at delivery).
    let (ok, _) = store.create(hooked_job("alice")).await.expect("create");
    assert_eq!(ok.callback_url.as_deref(), Some(HOOK));
    assert!(store
        .webhook_deliveries(&ok.id)
        .await
        .expect("none yet")
        .is_empty());
    claim_exactly(store, "w1", &ok.id).await;
    assert!(
        store
            .webhook_deliveries(&ok.id)
            .await
            .expect("running")
            .is_empty(),
        "only terminal states are announced"
    );
    store
        .finish(&ok.id, "w1", JobOutcome::Succeeded(output.clone()))
        .await
        .expect("succeed");
    let events = store.webhook_deliveries(&ok.id).await.expect("events");
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(event.event_type, "render.succeeded");
    assert_eq!(event.url, HOOK);
    assert_eq!(event.state, DeliveryState::Pending);
    assert_eq!(event.attempts, 0);
    assert!(uuid::Uuid::parse_str(&event.event_id).is_ok_and(|u| u.get_version_num() == 7));
    assert!(event.deadline > event.created_at);
    let p = &event.payload;
    assert_eq!(p["id"], event.event_id.as_str());
    assert_eq!(p["type"], "render.succeeded");
    assert_eq!(p["job"]["id"], ok.id.as_str());
    assert_eq!(p["job"]["owner"], "alice");
    assert_eq!(p["job"]["state"], "SUCCEEDED");
    assert_eq!(p["job"]["output"]["size_bytes"], 4_321);
    assert_eq!(p["job"]["output"]["duration_seconds"], 1.5);
    assert!(p["job"]["output"]["download_url"].is_null());
    assert!(p["job"]["failure"].is_null());
    // A rejected second transition writes nothing.
    store.cancel(&ok.id).await.expect_err("already succeeded");
    assert_eq!(
        store
            .webhook_deliveries(&ok.id)
            .await
            .expect("events")
            .len(),
        1
    );

    // Failed, with its code and message.
    let (bad, _) = store.create(hooked_job("alice")).await.expect("create");
    claim_exactly(store, "w1", &bad.id).await;
    store
        .finish(
            &bad.id,
            "w1",
            JobOutcome::Failed(JobFailure {
                code: "FFMPEG_ERROR".into(),
                message: "the decoder gave up".into(),
            }),
        )
        .await
        .expect("fail");
    let events = store.webhook_deliveries(&bad.id).await.expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "render.failed");
    assert_eq!(events[0].payload["job"]["failure"]["code"], "FFMPEG_ERROR");
    assert_eq!(
        events[0].payload["job"]["failure"]["message"],
        "the decoder gave up"
    );
    assert!(events[0].payload["job"]["output"].is_null());

    // Cancelled while queued, cancelled again (idempotent): one event.
    let (cancelled, _) = store.create(hooked_job("bob")).await.expect("create");
    store.cancel(&cancelled.id).await.expect("cancel");
    store.cancel(&cancelled.id).await.expect("cancel again");
    let events = store
        .webhook_deliveries(&cancelled.id)
        .await
        .expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "render.cancelled");
    assert_eq!(events[0].payload["job"]["state"], "CANCELLED");

    // A job without a callback never has events.
    let (plain, _) = store.create(new_job("carol", None)).await.expect("create");
    store.cancel(&plain.id).await.expect("cancel");
    assert!(store
        .webhook_deliveries(&plain.id)
        .await
        .expect("none")
        .is_empty());

    // A job whose workers kept dying fails at a claim: that is announced too.
    let (dying, _) = store.create(hooked_job("dave")).await.expect("create");
    let taken = store
        .claim_next("w1", Duration::ZERO, 1)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!(taken.id, dying.id);
    let_lease_expire().await;
    assert!(store
        .claim_next("w2", LEASE, 1)
        .await
        .expect("claim")
        .is_none());
    let events = store.webhook_deliveries(&dying.id).await.expect("events");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].event_type, "render.failed");
    assert_eq!(
        events[0].payload["job"]["failure"]["code"],
        ATTEMPTS_EXHAUSTED_CODE
    );
}

async fn webhook_events_are_leased_once_retried_and_delivered(store: &JobStore) {
    let (job, _) = store.create(hooked_job("alice")).await.expect("create");
    store.cancel(&job.id).await.expect("cancel");
    let event_id = store.webhook_deliveries(&job.id).await.expect("events")[0]
        .event_id
        .clone();

    // Two replicas claim at once: exactly one gets the event.
    let (a, b) = tokio::join!(
        store.claim_webhook_events("r1", LEASE, 10),
        store.claim_webhook_events("r2", LEASE, 10)
    );
    let (a, b) = (a.expect("r1 claims"), b.expect("r2 claims"));
    assert_eq!(a.len() + b.len(), 1, "{a:?} {b:?}");
    let (holder, other) = if a.is_empty() {
        ("r2", "r1")
    } else {
        ("r1", "r2")
    };
    let claimed = a.into_iter().chain(b).next().expect("one");
    assert_eq!(claimed.event_id, event_id);
    assert_eq!(claimed.attempts, 1);
    assert!(store
        .claim_webhook_events(other, LEASE, 10)
        .await
        .expect("claim")
        .is_empty());
    assert!(!store
        .webhook_delivered(&event_id, other)
        .await
        .expect("not the holder"));

    // A failed attempt waits until its retry time, keeping its event id.
    let later = Utc::now() + TimeDelta::hours(1);
    assert!(store
        .webhook_attempt_failed(
            &event_id,
            holder,
            "HTTP 500 Internal Server Error",
            Some(later)
        )
        .await
        .expect("record"));
    assert!(store
        .claim_webhook_events(holder, LEASE, 10)
        .await
        .expect("claim")
        .is_empty());
    let pending = &store.webhook_deliveries(&job.id).await.expect("events")[0];
    assert_eq!(pending.state, DeliveryState::Pending);
    assert_eq!(
        pending.last_error.as_deref(),
        Some("HTTP 500 Internal Server Error")
    );
    assert!(pending.next_attempt_at > Utc::now());

    // Recording released the lease: the same holder cannot record twice.
    assert!(!store
        .webhook_attempt_failed(&event_id, holder, "again", Some(Utc::now()))
        .await
        .expect("record"));

    // A lease that runs out (its replica died mid-attempt) is taken over.
    let (job2, _) = store.create(hooked_job("bob")).await.expect("create");
    store.cancel(&job2.id).await.expect("cancel");
    let first = store
        .claim_webhook_events("dying", Duration::ZERO, 10)
        .await
        .expect("claim");
    assert_eq!(first.len(), 1);
    let_lease_expire().await;
    let retaken = store
        .claim_webhook_events("r3", LEASE, 10)
        .await
        .expect("claim");
    assert_eq!(retaken.len(), 1);
    assert_eq!(retaken[0].event_id, first[0].event_id);
    assert_eq!(retaken[0].attempts, 2, "the lost attempt counts");
    assert!(!store
        .webhook_delivered(&first[0].event_id, "dying")
        .await
        .expect("stale holder"));
    assert!(store
        .webhook_delivered(&first[0].event_id, "r3")
        .await
        .expect("holder"));
    let done = &store.webhook_deliveries(&job2.id).await.expect("events")[0];
    assert_eq!(done.state, DeliveryState::Delivered);
    assert!(done.delivered_at.is_some() && done.last_error.is_none());
    assert!(store
        .claim_webhook_events("r3", LEASE, 10)
        .await
        .expect("claim")
        .iter()
        .all(|e| e.event_id != done.event_id));

    // Shutdown releases held leases without counting a failure.
    let (job3, _) = store.create(hooked_job("carol")).await.expect("create");
    store.cancel(&job3.id).await.expect("cancel");
    let held = store
        .claim_webhook_events("r4", LEASE, 10)
        .await
        .expect("claim");
    assert!(held.iter().any(|e| e.job_id == job3.id));
    assert!(store.release_webhook_leases("r4").await.expect("release") >= 1);
    let again = store
        .claim_webhook_events("r5", LEASE, 10)
        .await
        .expect("claim");
    assert!(again.iter().any(|e| e.job_id == job3.id));
    assert_eq!(
        store
            .claim_webhook_events("r5", LEASE, 0)
            .await
            .expect("limit 0")
            .len(),
        0
    );
}

async fn webhook_events_past_their_deadline_fail(store: &JobStore) {
    let store = store.clone().with_webhook_deadline(Duration::ZERO);
    let (job, _) = store.create(hooked_job("alice")).await.expect("create");
    store.cancel(&job.id).await.expect("cancel");
    let_lease_expire().await;
    assert!(store
        .claim_webhook_events("r1", LEASE, 10)
        .await
        .expect("claim")
        .is_empty());
    let event = &store.webhook_deliveries(&job.id).await.expect("events")[0];
    assert_eq!(event.state, DeliveryState::Failed);
    assert_eq!(event.attempts, 0);
    assert!(event
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("deadline")));

    // A final failed attempt (no retry time) fails the event for good.
    let store = store.with_webhook_deadline(Duration::from_secs(3600));
    let (job, _) = store.create(hooked_job("bob")).await.expect("create");
    store.cancel(&job.id).await.expect("cancel");
    let claimed = store
        .claim_webhook_events("r1", LEASE, 10)
        .await
        .expect("claim");
    assert_eq!(claimed.len(), 1);
    assert!(store
        .webhook_attempt_failed(&claimed[0].event_id, "r1", "HTTP 503", None)
        .await
        .expect("record"));
    let event = &store.webhook_deliveries(&job.id).await.expect("events")[0];
    assert_eq!(event.state, DeliveryState::Failed);
    assert_eq!(event.attempts, 1);
    assert!(store
        .claim_webhook_events("r1", LEASE, 10)
        .await
        .expect("claim")
        .is_empty());
}

/// A succeeded job whose output expires at `expires_at`.
async fn succeeded_job(store: &JobStore, expires_at: Option<DateTime<Utc>>) -> Job {
    let (job, _) = store.create(new_job("alice", None)).await.expect("create");
    let claimed = store
        .claim_next("w1", LEASE, 3)
        .await
        .expect("claim")
        .expect("a job");
    assert_eq!(claimed.id, job.id);
    let output = JobOutput {
        path: format!("/data/outputs/{}.mp4", job.id),
        size_bytes: 10,
        duration_seconds: 1.0,
        expires_at,
        expired_at: None,
    };
    store
        .finish(&job.id, "w1", JobOutcome::Succeeded(output))
        .await
        .expect("succeed")
}

async fn expired_outputs_are_claimed_once_and_marked(store: &JobStore) {
    let past = Utc::now() - TimeDelta::seconds(5);
    let due = succeeded_job(store, Some(past)).await;
    let kept = succeeded_job(store, Some(Utc::now() + TimeDelta::hours(1))).await;
    let forever = succeeded_job(store, None).await;
    let stored = due.output.clone().expect("output");
    assert_eq!(
        stored.expires_at.map(|t| t.timestamp_micros()),
        Some(past.timestamp_micros())
    );
    assert_eq!(stored.expired_at, None);

    let listed = store.outputs_due(10).await.expect("due");
    assert_eq!(
        listed.iter().map(|j| j.id.clone()).collect::<Vec<_>>(),
        vec![due.id.clone()]
    );
    assert!(listed[0].scenario_json.is_empty(), "scenarios are not read");

    // Eight sweepers race for the same row: exactly one wins.
    let racers = (0..8).map(|_| {
        let store = store.clone();
        let id = due.id.clone();
        tokio::spawn(async move {
            store
                .claim_output_expiry(&id, Duration::from_secs(60))
                .await
                .expect("claim")
        })
    });
    let mut won = 0;
    for racer in racers {
        if racer.await.expect("task") {
            won += 1;
        }
    }
    assert_eq!(won, 1);
    // Claimed: no longer due (held for a minute), so nobody lists it.
    assert!(store.outputs_due(10).await.expect("due").is_empty());
    for other in [&kept.id, &forever.id] {
        assert!(!store
            .claim_output_expiry(other, Duration::from_secs(60))
            .await
            .expect("claim"));
    }

    let marked = store.mark_output_expired(&due.id).await.expect("mark");
    let output = marked.output.expect("the row keeps its output record");
    assert!(output.expired_at.is_some());
    assert_eq!(marked.state, JobState::Succeeded);
    assert!(marked.updated_at >= due.updated_at);
    // Marking twice keeps the first time.
    let again = store.mark_output_expired(&due.id).await.expect("again");
    assert_eq!(again.output.expect("output").expired_at, output.expired_at);

    // A claim that was never completed (the sweeper died) is retried after its hold.
    let stale = succeeded_job(store, Some(past)).await;
    assert!(store
        .claim_output_expiry(&stale.id, Duration::ZERO)
        .await
        .expect("claim"));
    let_lease_expire().await;
    assert_eq!(
        store
            .outputs_due(10)
            .await
            .expect("due")
            .into_iter()
            .map(|j| j.id)
            .collect::<Vec<_>>(),
        vec![stale.id.clone()]
    );
    // An expired output is never due again.
    assert!(!store
        .claim_output_expiry(&due.id, Duration::ZERO)
        .await
        .expect("claim"));
}
