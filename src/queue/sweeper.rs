//! Output retention: every `sweep_interval` each replica deletes the outputs whose retention
//! ran out and marks their jobs expired. Several replicas sweep the same database safely: each
//! output is claimed by one conditional UPDATE before its file or object is deleted, and a
//! claim whose sweeper died is taken again after [`CLAIM_HOLD`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use crate::media::OutputStore;
use crate::store::{JobStore, StoreError};

/// How long a claimed output is left to its sweeper before another may retry it.
pub const CLAIM_HOLD: Duration = Duration::from_secs(5 * 60);

/// Deletes expired outputs; see the module documentation.
#[derive(Debug, Clone)]
pub struct OutputSweeper {
    store: JobStore,
    outputs: Arc<OutputStore>,
    interval: Duration,
    batch: u64,
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SweepReport {
    /// Outputs deleted and marked expired by this sweep.
    pub expired: usize,
    /// Outputs whose deletion failed (retried after [`CLAIM_HOLD`]).
    pub failed: usize,
}

impl OutputSweeper {
    pub fn new(store: JobStore, outputs: Arc<OutputStore>, interval: Duration, batch: u64) -> Self {
        OutputSweeper {
            store,
            outputs,
            interval,
            batch: batch.max(1),
        }
    }

    /// Deletes up to `batch` due outputs.
    pub async fn sweep_once(&self) -> Result<SweepReport, StoreError> {
        let mut report = SweepReport::default();
        for job in self.store.outputs_due(self.batch).await? {
            let Some(output) = &job.output else { continue };
            if !self.store.claim_output_expiry(&job.id, CLAIM_HOLD).await? {
                continue; // another replica took it
            }
            if let Err(err) = self.outputs.delete_output(&output.path).await {
                tracing::warn!(job = %job.id, error = %err, "cannot delete an expired output; retrying later");
                report.failed += 1;
                continue;
            }
            self.store.mark_output_expired(&job.id).await?;
            tracing::info!(job = %job.id, path = %output.path, "expired output deleted");
            report.expired += 1;
        }
        Ok(report)
    }

    /// Sweeps every interval until `stop` resolves.
    pub async fn run(self, stop: impl Future<Output = ()>) {
        tokio::pin!(stop);
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = &mut stop => return,
                _ = ticks.tick() => {}
            }
            // A full batch means more may be due: keep going without waiting for the next tick.
            loop {
                match self.sweep_once().await {
                    Ok(report) if report.expired + report.failed >= self.batch as usize => {}
                    Ok(_) => break,
                    Err(err) => {
                        tracing::warn!(error = %err, "output sweep failed; retrying at the next interval");
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeDelta, Utc};

    use super::*;
    use crate::domain::job::{JobOutcome, JobOutput};
    use crate::media::OutputConfig;
    use crate::store::NewJob;

    async fn fixture() -> (tempfile::TempDir, JobStore, Arc<OutputStore>) {
        let tmp = tempfile::tempdir().expect("tmp");
        let url = format!("sqlite://{}?mode=rwc", tmp.path().join("jobs.db").display());
        let store = JobStore::connect(&url).await.expect("open");
        store.migrate().await.expect("migrate");
        let config = OutputConfig {
            dir: tmp.path().join("outputs"),
            ..OutputConfig::default()
        };
        let outputs =
            OutputStore::new(&config, "http://127.0.0.1:1".into(), b"k".to_vec()).expect("outputs");
        (tmp, store, Arc::new(outputs))
    }

    async fn finished(
        store: &JobStore,
        path: String,
        expires_in: TimeDelta,
    ) -> crate::domain::job::Job {
        let (job, _) = store
            .create(NewJob {
                owner: "alice".into(),
                request_id: None,
                video_url: "file:///m/a.mp4".into(),
                video_name: None,
                scenario_json: "{}".into(),
                options: serde_json::json!({}),
                callback_url: None,
                trace_context: None,
            })
            .await
            .expect("create");
        store
            .claim_next("w", Duration::from_secs(60), 3)
            .await
            .expect("claim")
            .expect("job");
        store
            .finish(
                &job.id,
                "w",
                JobOutcome::Succeeded(JobOutput {
                    path,
                    size_bytes: 3,
                    duration_seconds: 1.0,
                    expires_at: Some(Utc::now() + expires_in),
                    expired_at: None,
                }),
            )
            .await
            .expect("finish")
    }

    #[tokio::test]
    async fn due_outputs_are_deleted_and_marked_and_others_kept() {
        let (_tmp, store, outputs) = fixture().await;
        let old = outputs.dir().join("old.mp4");
        let fresh = outputs.dir().join("fresh.mp4");
        std::fs::write(&old, b"old").expect("write");
        std::fs::write(&fresh, b"new").expect("write");
        let old_job = finished(&store, old.display().to_string(), TimeDelta::seconds(-1)).await;
        let fresh_job = finished(&store, fresh.display().to_string(), TimeDelta::hours(1)).await;
        // Outside the output folder: never deleted, the row stays due and is retried.
        let foreign = finished(&store, "/etc/hostname".into(), TimeDelta::seconds(-1)).await;

        let sweeper = OutputSweeper::new(
            store.clone(),
            Arc::clone(&outputs),
            Duration::from_secs(1),
            10,
        );
        let report = sweeper.sweep_once().await.expect("sweep");
        assert_eq!(
            report,
            SweepReport {
                expired: 1,
                failed: 1
            }
        );
        assert!(!old.exists());
        assert!(fresh.exists());
        let old_job = store.get(&old_job.id).await.expect("get");
        assert!(old_job
            .output
            .as_ref()
            .expect("output")
            .expired_at
            .is_some());
        assert!(store
            .get(&fresh_job.id)
            .await
            .expect("get")
            .output
            .expect("output")
            .expired_at
            .is_none());
        assert!(store
            .get(&foreign.id)
            .await
            .expect("get")
            .output
            .expect("output")
            .expired_at
            .is_none());
        // Nothing left that is due and unclaimed.
        assert_eq!(
            sweeper.sweep_once().await.expect("sweep"),
            SweepReport::default()
        );
        assert_eq!(
            outputs.link(&old_job).await,
            None,
            "an expired job has no download link"
        );
        let fresh_job = store.get(&fresh_job.id).await.expect("get");
        assert!(outputs.link(&fresh_job).await.is_some());
    }

    #[tokio::test]
    async fn a_file_already_gone_still_expires_the_job() {
        let (_tmp, store, outputs) = fixture().await;
        let missing = outputs.dir().join("never-written.mp4");
        let job = finished(
            &store,
            missing.display().to_string(),
            TimeDelta::seconds(-1),
        )
        .await;
        let sweeper = OutputSweeper::new(store.clone(), outputs, Duration::from_secs(1), 10);
        let report = sweeper.sweep_once().await.expect("sweep");
        assert_eq!(report.expired, 1);
        assert!(store
            .get(&job.id)
            .await
            .expect("get")
            .output
            .expect("output")
            .expired_at
            .is_some());
    }
}
