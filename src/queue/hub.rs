//! Status fan-out: every StreamStatus stream watches one job through a `watch` channel.
//!
//! A job rendering on this replica is published by its worker as frames complete, so streams
//! see progress within milliseconds. Any other job (queued, or running on another replica) is
//! refreshed from the database by one poller for all of them, a batch query per interval, so
//! ten thousand streams cost a handful of queries a second, not ten thousand.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::watch;

use crate::domain::job::{Job, JobId};
use crate::store::JobStore;

/// Jobs fetched per database query by the poller.
const POLL_BATCH: usize = 500;

struct Channel {
    tx: watch::Sender<Arc<Job>>,
    /// A worker of this replica is rendering the job and publishes it; the poller leaves it be.
    local: bool,
}

/// The fan-out of job snapshots to status streams. Cheap to clone.
#[derive(Clone)]
pub struct StatusHub {
    inner: Arc<Inner>,
}

struct Inner {
    store: JobStore,
    channels: Mutex<HashMap<JobId, Channel>>,
    poll_interval: Duration,
    /// Jobs read recently by unary calls and not watched, kept for `poll_interval`: the
    /// staleness streams of jobs rendered elsewhere have anyway.
    recent: moka::sync::Cache<JobId, Arc<Job>>,
}

/// Jobs the read cache holds at most.
const RECENT_CAPACITY: u64 = 100_000;

impl StatusHub {
    pub fn new(store: JobStore, poll_interval: Duration) -> Self {
        StatusHub {
            inner: Arc::new(Inner {
                store,
                channels: Mutex::new(HashMap::new()),
                poll_interval,
                recent: moka::sync::Cache::builder()
                    .max_capacity(RECENT_CAPACITY)
                    .time_to_live(poll_interval)
                    .build(),
            }),
        }
    }

    fn channels(&self) -> MutexGuard<'_, HashMap<JobId, Channel>> {
        // A panic while holding this lock cannot leave the map half-updated (each operation
        // is a single insert, remove or send), so a poisoned lock is still usable.
        self.inner
            .channels
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The newest record of a job this replica has (a local worker's snapshot, a watched job's,
    /// or one read within the last poll interval), else the stored one; without the scenario.
    pub async fn current(&self, id: &JobId) -> Result<Arc<Job>, crate::store::StoreError> {
        if let Some(channel) = self.channels().get(id) {
            return Ok(Arc::clone(&channel.tx.borrow()));
        }
        if let Some(job) = self.inner.recent.get(id) {
            return Ok(job);
        }
        let job = Arc::new(self.inner.store.get_status(id).await?);
        self.inner.recent.insert(id.clone(), Arc::clone(&job));
        Ok(job)
    }

    /// Watches `job` (as just read by the caller). The receiver's current value is the newest
    /// snapshot this replica knows: `job` itself, or a fresher one a local worker published.
    pub fn subscribe(&self, job: Job) -> watch::Receiver<Arc<Job>> {
        let job = without_scenario(job);
        let mut channels = self.channels();
        match channels.get(&job.id) {
            Some(channel) => {
                let rx = channel.tx.subscribe();
                if !channel.local {
                    channel
                        .tx
                        .send_if_modified(|current| newer_from_db(current, job));
                }
                rx
            }
            None => {
                let id = job.id.clone();
                let (tx, rx) = watch::channel(Arc::new(job));
                channels.insert(id, Channel { tx, local: false });
                rx
            }
        }
    }

    /// A worker of this replica starts rendering `job`: from now on it publishes the job.
    pub fn start_local(&self, job: Job) {
        let job = without_scenario(job);
        self.inner.recent.invalidate(&job.id);
        let mut channels = self.channels();
        match channels.get_mut(&job.id) {
            Some(channel) => {
                channel.local = true;
                channel.tx.send_replace(Arc::new(job));
            }
            None => {
                let id = job.id.clone();
                let (tx, _) = watch::channel(Arc::new(job));
                channels.insert(id, Channel { tx, local: true });
            }
        }
    }

    /// A new snapshot of a job a local worker renders (progress, stage, the final state).
    pub fn publish(&self, job: Arc<Job>) {
        if let Some(channel) = self.channels().get(&job.id) {
            channel.tx.send_replace(job);
        }
    }

    /// The local worker is done with the job (its final snapshot published): the poller takes
    /// over, or the entry goes once nobody watches.
    pub fn end_local(&self, id: &JobId) {
        self.inner.recent.invalidate(id);
        let mut channels = self.channels();
        if let Some(channel) = channels.get_mut(id) {
            channel.local = false;
            if channel.tx.receiver_count() == 0 {
                channels.remove(id);
            }
        }
    }

    /// A job changed outside any local worker (cancelled while queued, say): streams watching
    /// it get the new record now instead of at the next poll.
    pub fn observe(&self, job: Job) {
        let job = without_scenario(job);
        self.inner
            .recent
            .insert(job.id.clone(), Arc::new(job.clone()));
        if let Some(channel) = self.channels().get(&job.id).filter(|c| !c.local) {
            channel
                .tx
                .send_if_modified(|current| newer_from_db(current, job));
        }
    }

    /// How many jobs have a channel (for tests and metrics).
    pub fn watched_jobs(&self) -> usize {
        self.channels().len()
    }

    /// One poll: drops channels nobody watches, then re-reads from the database the watched
    /// jobs that no local worker publishes and that have not ended yet.
    pub async fn refresh(&self) -> Result<(), crate::store::StoreError> {
        let ids: Vec<JobId> = {
            let mut channels = self.channels();
            channels.retain(|_, c| c.local || c.tx.receiver_count() > 0);
            channels
                .iter()
                .filter(|(_, c)| !c.local && !c.tx.borrow().state.is_terminal())
                .map(|(id, _)| id.clone())
                .collect()
        };
        for batch in ids.chunks(POLL_BATCH) {
            let jobs = self.inner.store.statuses(batch).await?;
            let channels = self.channels();
            for job in jobs {
                if let Some(channel) = channels.get(&job.id).filter(|c| !c.local) {
                    channel
                        .tx
                        .send_if_modified(|current| newer_from_db(current, job));
                }
            }
        }
        Ok(())
    }

    /// Polls until `stop` resolves.
    pub async fn run_poller(self, stop: impl std::future::Future<Output = ()>) {
        let mut tick = tokio::time::interval(self.inner.poll_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tick.tick() => {
                    if let Err(err) = self.refresh().await {
                        tracing::warn!(error = %err, "refreshing watched jobs failed");
                    }
                }
            }
        }
    }
}

/// Snapshots leave out the scenario (up to 5 MB): streams never send it.
pub(crate) fn without_scenario(job: Job) -> Job {
    Job {
        scenario_json: String::new(),
        ..job
    }
}

/// Replaces `current` with `fresh` from the database when it differs. Progress in the stored
/// row never goes backwards, but a row read before a local worker's last snapshot may be older
/// than what streams already saw: never replace a terminal snapshot, and never lower progress.
fn newer_from_db(current: &mut Arc<Job>, mut fresh: Job) -> bool {
    if current.state.is_terminal() || **current == fresh {
        return false;
    }
    if current.state == fresh.state {
        fresh.progress.percent = fresh.progress.percent.max(current.progress.percent);
        fresh.progress.frames_done = fresh.progress.frames_done.max(current.progress.frames_done);
        if **current == fresh {
            return false;
        }
    }
    *current = Arc::new(fresh);
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::job::{JobOutcome, JobState, Stage};
    use crate::store::{NewJob, ProgressUpdate};

    async fn store() -> JobStore {
        let store = JobStore::connect("sqlite::memory:").await.expect("open");
        store.migrate().await.expect("migrate");
        store
    }

    fn new_job(owner: &str) -> NewJob {
        NewJob {
            owner: owner.into(),
            request_id: None,
            video_url: "file:///clip.mp4".into(),
            video_name: None,
            scenario_json: "{}".into(),
            options: serde_json::json!({}),
            callback_url: None,
            trace_context: None,
        }
    }

    fn update(percent: f64, frames: u64) -> ProgressUpdate {
        ProgressUpdate {
            stage: Stage::Rendering,
            percent,
            frames_done: frames,
            frames_total: Some(100),
            fps: Some(30.0),
            eta_seconds: Some(1.0),
            encoder: Some("x264".into()),
        }
    }

    #[tokio::test]
    async fn poller_delivers_database_changes_and_forgets_unwatched_jobs() {
        let store = store().await;
        let hub = StatusHub::new(store.clone(), Duration::from_millis(10));
        let (job, _) = store.create(new_job("alice")).await.expect("create");
        let mut rx = hub.subscribe(job.clone());
        assert_eq!(rx.borrow_and_update().state, JobState::Queued);

        let claimed = store
            .claim_next("w1", Duration::from_secs(30), 3)
            .await
            .expect("claim")
            .expect("a job");
        store
            .update_progress(&claimed.id, "w1", &update(40.0, 40))
            .await
            .expect("progress");
        hub.refresh().await.expect("refresh");
        assert!(rx.has_changed().expect("open"));
        let seen = rx.borrow_and_update().clone();
        assert_eq!(seen.state, JobState::Running);
        assert_eq!(seen.progress.frames_done, 40);

        hub.refresh().await.expect("refresh");
        assert!(!rx.has_changed().expect("open"), "no change, no message");

        drop(rx);
        hub.refresh().await.expect("refresh");
        assert_eq!(hub.watched_jobs(), 0, "nobody watches: the channel is gone");
    }

    #[tokio::test]
    async fn local_snapshots_win_over_older_database_rows() {
        let store = store().await;
        let hub = StatusHub::new(store.clone(), Duration::from_millis(10));
        let (job, _) = store.create(new_job("alice")).await.expect("create");
        let mut rx = hub.subscribe(job.clone());
        let claimed = store
            .claim_next("w1", Duration::from_secs(30), 3)
            .await
            .expect("claim")
            .expect("a job");
        hub.start_local(claimed.clone());
        let mut ahead = claimed.clone();
        ahead.progress.percent = 75.0;
        ahead.progress.frames_done = 75;
        hub.publish(Arc::new(ahead));
        // The stored row lags behind (persisted at 10 %): the poller must not step back.
        store
            .update_progress(&claimed.id, "w1", &update(10.0, 10))
            .await
            .expect("progress");
        hub.refresh().await.expect("refresh");
        assert_eq!(rx.borrow_and_update().progress.percent, 75.0);

        // After the worker ends, a stale row still cannot lower what streams saw.
        hub.end_local(&claimed.id);
        hub.refresh().await.expect("refresh");
        assert_eq!(rx.borrow_and_update().progress.frames_done, 75);

        let done = store
            .finish(&claimed.id, "w1", JobOutcome::Cancelled)
            .await
            .expect("finish");
        hub.refresh().await.expect("refresh");
        assert_eq!(rx.borrow_and_update().state, JobState::Cancelled);
        assert_eq!(done.state, JobState::Cancelled);
    }

    #[tokio::test]
    async fn a_late_subscriber_sees_the_local_snapshot() {
        let store = store().await;
        let hub = StatusHub::new(store.clone(), Duration::from_millis(10));
        let (job, _) = store.create(new_job("alice")).await.expect("create");
        let mut running = job.clone();
        running.state = JobState::Running;
        running.progress.percent = 50.0;
        hub.start_local(running);
        // The subscriber read the row before the worker persisted anything.
        let rx = hub.subscribe(job);
        assert_eq!(rx.borrow().state, JobState::Running);
        assert_eq!(rx.borrow().progress.percent, 50.0);
    }
}
