//! The job queue's moving parts: workers that claim jobs from the database under a lease and
//! render them, and the status fan-out that streams watch.

mod hub;
mod sweeper;
mod worker;

use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use hub::StatusHub;
pub use sweeper::{OutputSweeper, SweepReport, CLAIM_HOLD};
pub use worker::{FinishedHook, WorkerPool, WorkerPoolParts};

/// `[worker]`: how this replica takes and renders jobs.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorkerConfig {
    /// Renders at once on this replica (one GPU: 1). 0 serves the API without rendering.
    pub concurrency: usize,
    /// How long a claim lasts without renewal; a dead replica's jobs are taken again after it.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
    /// How often a running job's lease is renewed (well under `lease`).
    #[serde(with = "humantime_serde")]
    pub renew_every: Duration,
    /// Claims of one job before it is FAILED (a job whose renders keep killing the process).
    pub max_attempts: u32,
    /// How often idle workers look for jobs queued on other replicas (local creates wake them
    /// at once).
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// How often a running job's progress is written to the database (streams on other
    /// replicas see it at this rate; this replica's streams get every frame).
    #[serde(with = "humantime_serde")]
    pub persist_every: Duration,
    /// How often status streams re-read jobs rendered elsewhere.
    #[serde(with = "humantime_serde")]
    pub status_poll: Duration,
    /// On shutdown, running renders may finish for this long; the rest go back to QUEUED.
    #[serde(with = "humantime_serde")]
    pub shutdown_grace: Duration,
    /// Longest render; a job still running after it fails with RENDERING_TIMEOUT.
    #[serde(with = "humantime_serde")]
    pub render_timeout: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            concurrency: 1,
            lease: Duration::from_secs(30),
            renew_every: Duration::from_secs(5),
            max_attempts: 3,
            poll_interval: Duration::from_secs(1),
            persist_every: Duration::from_millis(500),
            status_poll: Duration::from_millis(500),
            shutdown_grace: Duration::from_secs(30),
            render_timeout: Duration::from_secs(30 * 60),
        }
    }
}

impl WorkerConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.concurrency > 64 {
            return Err("worker.concurrency: at most 64".into());
        }
        if self.renew_every.is_zero() || self.renew_every * 2 > self.lease {
            return Err(
                "worker.renew_every: must be positive and at most half of worker.lease".into(),
            );
        }
        if self.max_attempts == 0 {
            return Err("worker.max_attempts: must be at least 1".into());
        }
        for (field, d) in [
            ("worker.poll_interval", self.poll_interval),
            ("worker.persist_every", self.persist_every),
            ("worker.status_poll", self.status_poll),
            ("worker.render_timeout", self.render_timeout),
        ] {
            if d.is_zero() {
                return Err(format!("{field}: must be positive"));
            }
        }
        Ok(())
    }
}
