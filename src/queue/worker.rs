//! Workers: claim a job from the database under a lease, fetch its input, render it on a
//! blocking thread, keep the lease and the stored progress fresh meanwhile, and record how it
//! ended. Several replicas on one PostgreSQL share the queue through the leases alone.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::{watch, Notify};
use tokio::task::JoinHandle;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::hub::{without_scenario, StatusHub};
use super::WorkerConfig;
use crate::config::OutputRequest;
use crate::domain::job::{
    EncoderPreference, Job, JobFailure, JobId, JobOptions, JobOutcome, JobOutput, JobState, Stage,
};
use crate::engine::{Engine, RenderRequest};
use crate::media::{InputResolver, OutputStore};
use crate::pipeline::{EncoderChoice, RenderReport};
use crate::progress::{CancelToken, Progress, RenderStage};
use crate::store::{JobStore, ProgressUpdate, StoreError, StoreErrorKind};
use crate::telemetry::{context_from_traceparent, metrics};

/// Called with a job's final record after a worker of this replica ended it (the quota cache
/// forgets the owner's usage).
pub type FinishedHook = Arc<dyn Fn(&Job) + Send + Sync>;

/// Everything a worker pool needs.
pub struct WorkerPoolParts {
    pub store: JobStore,
    pub hub: StatusHub,
    pub engine: Arc<Engine>,
    pub inputs: Arc<InputResolver>,
    pub outputs: Arc<OutputStore>,
    pub config: WorkerConfig,
    pub on_finished: FinishedHook,
}

/// Why a running render was asked to stop.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
enum StopReason {
    None = 0,
    /// The owner cancelled the job.
    Cancelled = 1,
    /// This replica is shutting down: the job goes back to the queue.
    Shutdown = 2,
    /// The lease is gone (expired and taken by another replica): not ours to record.
    LeaseLost = 3,
    Timeout = 4,
}

impl StopReason {
    fn from_u8(v: u8) -> StopReason {
        match v {
            1 => StopReason::Cancelled,
            2 => StopReason::Shutdown,
            3 => StopReason::LeaseLost,
            4 => StopReason::Timeout,
            _ => StopReason::None,
        }
    }
}

/// A render in progress on this replica and how to stop it.
#[derive(Clone)]
struct Running {
    cancel: CancelToken,
    reason: Arc<AtomicU8>,
}

impl Running {
    /// Asks the render to stop; the first reason given wins.
    fn stop(&self, reason: StopReason) {
        let _ = self.reason.compare_exchange(
            StopReason::None as u8,
            reason as u8,
            Ordering::SeqCst,
            Ordering::SeqCst,
        );
        self.cancel.cancel();
    }

    fn reason(&self) -> StopReason {
        StopReason::from_u8(self.reason.load(Ordering::SeqCst))
    }
}

/// How a worker leaves a job.
enum Ending {
    Outcome(JobOutcome),
    Requeue,
    /// The job is no longer ours (lease lost, or cancelled with the lease dropped).
    Abandon,
}

/// The workers of this replica. Dropping it does not stop them: call [`WorkerPool::shutdown`].
pub struct WorkerPool {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

struct Shared {
    parts: WorkerPoolParts,
    worker_id: String,
    wake: Notify,
    stopping: watch::Sender<bool>,
    running: Mutex<HashMap<JobId, Running>>,
    idle: Notify,
}

impl Shared {
    fn running(&self) -> MutexGuard<'_, HashMap<JobId, Running>> {
        // Each critical section is one insert, remove or lookup: a poisoned map is consistent.
        self.running
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl WorkerPool {
    /// Starts `config.concurrency` workers, named `worker_id` in the leases they take (unique
    /// per process, so a restarted replica never mistakes an old lease for its own).
    pub fn start(parts: WorkerPoolParts, worker_id: String) -> WorkerPool {
        let concurrency = parts.config.concurrency;
        let (stopping, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            parts,
            worker_id,
            wake: Notify::new(),
            stopping,
            running: Mutex::new(HashMap::new()),
            idle: Notify::new(),
        });
        let tasks = (0..concurrency)
            .map(|_| tokio::spawn(claim_loop(Arc::clone(&shared))))
            .collect();
        WorkerPool {
            shared,
            tasks: Mutex::new(tasks),
        }
    }

    pub fn worker_id(&self) -> &str {
        &self.shared.worker_id
    }

    /// A job was just queued here: an idle worker takes it without waiting for its next poll.
    pub fn wake(&self) {
        self.shared.wake.notify_one();
    }

    /// Stops the render of `id` if it runs on this replica (the caller already marked the job
    /// CANCELLED in the database). Returns whether it was running here.
    pub fn cancel_local(&self, id: &JobId) -> bool {
        match self.shared.running().get(id) {
            Some(running) => {
                running.stop(StopReason::Cancelled);
                true
            }
            None => false,
        }
    }

    /// Jobs rendering on this replica now.
    pub fn running_jobs(&self) -> usize {
        self.shared.running().len()
    }

    /// Stops claiming, lets running renders finish for up to `grace`, then stops the rest and
    /// puts them back to QUEUED, and waits for the workers to end.
    pub async fn shutdown(&self, grace: Duration) {
        self.shared.stopping.send_replace(true);
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            let idle = self.shared.idle.notified();
            if self.shared.running().is_empty() {
                break;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                let running: Vec<Running> = self.shared.running().values().cloned().collect();
                tracing::info!(
                    jobs = running.len(),
                    "shutdown grace over: handing running jobs back to the queue"
                );
                for r in running {
                    r.stop(StopReason::Shutdown);
                }
                break;
            }
        }
        let tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        for task in tasks {
            if let Err(err) = task.await {
                tracing::error!(error = %err, "a worker task failed");
            }
        }
    }
}

async fn claim_loop(shared: Arc<Shared>) {
    let mut stopping = shared.stopping.subscribe();
    let config = &shared.parts.config;
    loop {
        if *stopping.borrow_and_update() {
            return;
        }
        let pause = match shared
            .parts
            .store
            .claim_next(&shared.worker_id, config.lease, config.max_attempts)
            .await
        {
            Ok(Some(job)) => {
                run_job(&shared, job).await;
                continue;
            }
            Ok(None) => config.poll_interval,
            Err(err) => {
                tracing::warn!(error = %err, "claiming a job failed; retrying");
                config.poll_interval.max(Duration::from_secs(1))
            }
        };
        tokio::select! {
            _ = shared.wake.notified() => {}
            _ = tokio::time::sleep(pause) => {}
            _ = stopping.changed() => {}
        }
    }
}

/// Runs `job` in a job span that continues the trace of the request that created it.
async fn run_job(shared: &Arc<Shared>, job: Job) {
    let span = job_span(&shared.parts.store, &job).await;
    run_claimed_job(shared, job).instrument(span).await;
}

/// The job's span: a root of its own in this task, child of the creating request's span
/// (stored with the job) when that request was traced.
async fn job_span(store: &JobStore, job: &Job) -> tracing::Span {
    let span = tracing::info_span!(
        parent: None,
        "job",
        otel.name = "job",
        job.id = %job.id,
        job.attempt = job.attempts,
        job.state = tracing::field::Empty,
    );
    match store.trace_context(&job.id).await {
        Ok(Some(traceparent)) => match context_from_traceparent(&traceparent) {
            Some(parent) => {
                // Fails only when no OpenTelemetry layer is installed: nothing is exported then.
                let _ = span.set_parent(parent);
            }
            None => tracing::warn!(job = %job.id, "the job's stored trace context is malformed"),
        },
        Ok(None) => {}
        Err(err) => {
            tracing::warn!(job = %job.id, error = %err, "reading the job's trace context failed")
        }
    }
    span
}

async fn run_claimed_job(shared: &Arc<Shared>, job: Job) {
    let id = job.id.clone();
    let running = Running {
        cancel: CancelToken::new(),
        reason: Arc::new(AtomicU8::new(StopReason::None as u8)),
    };
    shared.running().insert(id.clone(), running.clone());
    tracing::info!(job = %id, owner = %job.owner, attempt = job.attempts, "job claimed");
    let hub = &shared.parts.hub;
    hub.start_local(job.clone());
    let tracker = Arc::new(Tracker::new(without_scenario(job.clone()), hub.clone()));
    let ending = supervise(shared, &job, &running, &tracker).await;
    let store = &shared.parts.store;
    let worker = shared.worker_id.as_str();
    let recorded = match ending {
        Ending::Outcome(outcome) => {
            if matches!(outcome, JobOutcome::Succeeded(_)) {
                // The last numbers (frames, encoder) may be newer than the last periodic write.
                let mut last = tracker.update();
                last.stage = Stage::Finalizing;
                let _ = store.update_progress(&id, worker, &last).await;
            }
            let output = match &outcome {
                JobOutcome::Succeeded(out) => Some(out.path.clone()),
                _ => None,
            };
            match store.finish(&id, worker, outcome).await {
                Ok(done) => Ok(done),
                Err(err) => {
                    // Cancelled (or taken over) while the last frames were written: the
                    // output is nobody's now.
                    if let Some(path) = output {
                        let _ = shared.parts.outputs.delete_output(&path).await;
                    }
                    Err(err)
                }
            }
        }
        Ending::Requeue => store.requeue(&id, worker).await,
        Ending::Abandon => store.get(&id).await,
    };
    let final_job = match recorded {
        Ok(done) => {
            if done.state.is_terminal() {
                metrics().job_finished(done.state);
            }
            Some(done)
        }
        Err(err) => {
            if err.kind() != StoreErrorKind::LeaseLost {
                tracing::error!(job = %id, error = %err, "recording the end of a job failed");
            }
            store.get(&id).await.ok()
        }
    };
    if let Some(done) = &final_job {
        tracing::Span::current().record("job.state", done.state.as_str());
        tracing::info!(job = %id, state = %done.state, "job ended here");
        hub.publish(Arc::new(without_scenario(done.clone())));
        (shared.parts.on_finished)(done);
    }
    hub.end_local(&id);
    shared.running().remove(&id);
    shared.idle.notify_waiters();
}

/// Runs the job's work while renewing its lease, persisting its progress and watching for
/// cancellation, a lost lease and the render timeout.
async fn supervise(
    shared: &Arc<Shared>,
    job: &Job,
    running: &Running,
    tracker: &Arc<Tracker>,
) -> Ending {
    let config = &shared.parts.config;
    let work = execute(shared, job, running, tracker);
    tokio::pin!(work);
    let mut persist = tokio::time::interval(config.persist_every);
    let mut renew = tokio::time::interval(config.renew_every);
    for timer in [&mut persist, &mut renew] {
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    let deadline = tokio::time::sleep(config.render_timeout);
    tokio::pin!(deadline);
    let mut timed_out = false;
    let mut last_persisted: Option<ProgressUpdate> = None;
    let result = loop {
        tokio::select! {
            result = &mut work => break result,
            _ = persist.tick() => {
                let update = tracker.update();
                if last_persisted.as_ref() != Some(&update) {
                    let res = shared.parts.store.update_progress(&job.id, &shared.worker_id, &update).await;
                    if check_lease(res, running, &job.id) {
                        last_persisted = Some(update);
                    }
                }
            }
            _ = renew.tick() => {
                let res = shared.parts.store.renew_lease(&job.id, &shared.worker_id, config.lease).await;
                check_lease(res, running, &job.id);
            }
            _ = &mut deadline, if !timed_out => {
                timed_out = true;
                tracing::warn!(job = %job.id, "render timeout reached; stopping");
                running.stop(StopReason::Timeout);
            }
        }
    };
    match (running.reason(), result) {
        (StopReason::LeaseLost, _) => Ending::Abandon,
        (StopReason::Shutdown, Err(_)) => Ending::Requeue,
        (StopReason::Cancelled, _) => Ending::Outcome(JobOutcome::Cancelled),
        (StopReason::Timeout, Err(_)) => Ending::Outcome(JobOutcome::Failed(JobFailure {
            code: "RENDERING_TIMEOUT".into(),
            message: format!(
                "the render did not finish within {}",
                humantime_serde::re::humantime::format_duration(config.render_timeout)
            ),
        })),
        (_, Ok(output)) => Ending::Outcome(JobOutcome::Succeeded(output)),
        (StopReason::None, Err(failure)) => Ending::Outcome(JobOutcome::Failed(failure)),
    }
}

/// Whether a lease-guarded write went through; a lost lease stops the render with the reason.
fn check_lease(result: Result<Job, StoreError>, running: &Running, id: &JobId) -> bool {
    match result {
        Ok(_) => true,
        Err(StoreError::LeaseLost { state, .. }) => {
            let reason = if state == JobState::Cancelled {
                StopReason::Cancelled
            } else {
                StopReason::LeaseLost
            };
            tracing::info!(job = %id, ?reason, "lease gone; stopping the render");
            running.stop(reason);
            false
        }
        Err(err) => {
            // The database is briefly unreachable: keep rendering; the lease outlives
            // several renewals.
            tracing::warn!(job = %id, error = %err, "lease renewal or progress write failed");
            false
        }
    }
}

/// Fetch, parse and render: the job's work, as a failure code and message when it fails.
async fn execute(
    shared: &Arc<Shared>,
    job: &Job,
    running: &Running,
    tracker: &Arc<Tracker>,
) -> Result<JobOutput, JobFailure> {
    let parts = &shared.parts;
    let options = JobOptions::from_json(&job.options).map_err(|e| JobFailure {
        code: "INVALID_RENDER_OPTIONS".into(),
        message: format!("stored render options are unreadable: {e}"),
    })?;
    tracker.set_stage(Stage::Fetching);
    let engine = Arc::clone(&parts.engine);
    let scenario = job.scenario_json.clone();
    let scene = tokio::task::spawn_blocking(move || engine.parse_scene(scenario.as_bytes()))
        .await
        .map_err(join_failure)?
        .map_err(failed)?;
    let url = parts.inputs.check(&job.video_url).map_err(failed)?;
    let fetched = parts
        .inputs
        .fetch(&url, job.id.as_str(), &running.cancel)
        .instrument(tracing::info_span!("fetch_input"))
        .await
        .map_err(failed)?;
    tracker.set_stage(Stage::Rendering);
    let output = parts.outputs.final_path(job.id.as_str(), options.format);
    let request = RenderRequest {
        input: fetched.path().to_path_buf(),
        output: output.clone(),
        options: OutputRequest {
            width: options.width,
            height: options.height,
            fps: options.fps,
            quality: options.quality,
        },
        encoder: Some(match options.encoder {
            EncoderPreference::Auto | EncoderPreference::Nvenc => EncoderChoice::Auto,
            EncoderPreference::X264 => EncoderChoice::X264,
            EncoderPreference::Vp9 => EncoderChoice::Vp9,
        }),
        format: options.format,
    };
    let engine = Arc::clone(&parts.engine);
    let cancel = running.cancel.clone();
    let sink_tracker = Arc::clone(tracker);
    // A child of the job span (the current one); entered on the blocking thread.
    let render_span = tracing::info_span!(
        "render",
        otel.name = "render",
        frames = tracing::field::Empty,
        fps = tracing::field::Empty,
        encoder = tracing::field::Empty,
    );
    let report: RenderReport = tokio::task::spawn_blocking(move || {
        let _span = render_span.enter();
        // The input (a download) is deleted when `fetched` drops, after the render.
        let _input = fetched;
        let sink = move |p: &Progress| sink_tracker.on_progress(p);
        let report = engine.render(Arc::new(scene), &request, &sink, &cancel);
        if let Ok(report) = &report {
            let span = tracing::Span::current();
            span.record("frames", report.frames);
            span.record("fps", report.fps);
            span.record("encoder", report.encoder.short_name());
            metrics().render_finished(report.fps, report.encoder.short_name());
        }
        report
    })
    .await
    .map_err(join_failure)?
    .map_err(failed)?;
    tracker.set_stage(Stage::Finalizing);
    let size_bytes = tokio::fs::metadata(&output)
        .await
        .map_err(|e| JobFailure {
            code: "STORAGE_ACCESS_ERROR".into(),
            message: format!("the finished render is missing: {e}"),
        })?
        .len();
    // Storage: a bucket output is uploaded here and its local file removed.
    let stored = match parts.outputs.publish(&output).await {
        Ok(stored) => stored,
        Err(err) => {
            let _ = tokio::fs::remove_file(&output).await;
            return Err(failed(err));
        }
    };
    Ok(JobOutput {
        path: stored,
        size_bytes,
        duration_seconds: report.duration_s,
        expires_at: Some(parts.outputs.output_expiry(chrono::Utc::now())),
        expired_at: None,
    })
}

/// Errors that carry a contract job failure code.
trait FailureCode: std::fmt::Display {
    fn failure_code(&self) -> &'static str;
}

impl FailureCode for crate::engine::EngineError {
    fn failure_code(&self) -> &'static str {
        self.code()
    }
}

impl FailureCode for crate::media::output::PublishError {
    fn failure_code(&self) -> &'static str {
        self.code()
    }
}

impl FailureCode for crate::media::InputError {
    fn failure_code(&self) -> &'static str {
        self.code()
    }
}

fn failed(err: impl FailureCode) -> JobFailure {
    JobFailure {
        code: err.failure_code().into(),
        message: err.to_string(),
    }
}

fn join_failure(err: tokio::task::JoinError) -> JobFailure {
    tracing::error!(error = %err, "a render thread panicked");
    JobFailure {
        code: "RENDER_INTERNAL_ERROR".into(),
        message: "the render stopped unexpectedly".into(),
    }
}

/// Frames completed in the last few seconds, for an ETA that follows the current speed.
const ETA_WINDOW: Duration = Duration::from_secs(4);
/// Progress while frames render tops out here; the rest is muxing and the final rename.
const RENDERING_SHARE: f64 = 99.0;

/// The live numbers of the running job: updated from the render threads on every progress
/// report, published to this replica's streams at once, read by the persist timer.
struct Tracker {
    hub: StatusHub,
    state: Mutex<TrackerState>,
}

struct TrackerState {
    job: Job,
    samples: VecDeque<(Instant, u64)>,
}

impl Tracker {
    fn new(job: Job, hub: StatusHub) -> Tracker {
        Tracker {
            hub,
            state: Mutex::new(TrackerState {
                job,
                samples: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TrackerState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn set_stage(&self, stage: Stage) {
        let snapshot = {
            let mut state = self.lock();
            state.job.progress.stage = Some(stage);
            state.job.updated_at = chrono::Utc::now();
            Arc::new(state.job.clone())
        };
        self.hub.publish(snapshot);
    }

    fn on_progress(&self, p: &Progress) {
        let now = Instant::now();
        let snapshot = {
            let mut state = self.lock();
            state.samples.push_back((now, p.frames_done));
            while state
                .samples
                .front()
                .is_some_and(|(t, _)| now.duration_since(*t) > ETA_WINDOW)
                && state.samples.len() > 2
            {
                state.samples.pop_front();
            }
            let rate = match (state.samples.front(), state.samples.back()) {
                (Some((t0, f0)), Some((t1, f1))) if t1 > t0 && f1 > f0 => {
                    (f1 - f0) as f64 / t1.duration_since(*t0).as_secs_f64()
                }
                _ => p.fps,
            };
            let progress = &mut state.job.progress;
            metrics().frames_rendered(p.frames_done.saturating_sub(progress.frames_done));
            let total = p.frames_total.max(p.frames_done);
            progress.stage = Some(match p.stage {
                RenderStage::Probing | RenderStage::Rendering => Stage::Rendering,
                RenderStage::Finalizing => Stage::Encoding,
            });
            progress.frames_done = progress.frames_done.max(p.frames_done);
            progress.frames_total = (total > 0).then_some(total);
            progress.fps = (p.fps.is_finite() && p.fps > 0.0).then_some(p.fps);
            let share = match p.stage {
                RenderStage::Finalizing => RENDERING_SHARE,
                _ if total > 0 => RENDERING_SHARE * p.frames_done as f64 / total as f64,
                _ => 0.0,
            };
            progress.percent = progress.percent.max(share.min(RENDERING_SHARE));
            progress.eta_seconds = (rate > 0.0 && rate.is_finite())
                .then(|| total.saturating_sub(p.frames_done) as f64 / rate);
            if let Some(encoder) = p.encoder {
                progress.encoder = Some(encoder.short_name().to_owned());
            }
            state.job.updated_at = chrono::Utc::now();
            Arc::new(state.job.clone())
        };
        self.hub.publish(snapshot);
    }

    fn update(&self) -> ProgressUpdate {
        let state = self.lock();
        let p = &state.job.progress;
        ProgressUpdate {
            stage: p.stage.unwrap_or(Stage::Fetching),
            percent: p.percent,
            frames_done: p.frames_done,
            frames_total: p.frames_total,
            fps: p.fps,
            eta_seconds: p.eta_seconds,
            encoder: p.encoder.clone(),
        }
    }
}
