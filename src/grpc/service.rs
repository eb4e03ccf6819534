//! `render.v1.RenderService`: thin handlers. Each one identifies the caller, checks the rate
//! limit, validates and converts the request, calls one piece of the queue, quota or store,
//! and converts back; every error leaves through [`ApiError`].

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::convert::{self, encoder_preference_from_pb, format_from_pb, render_job, render_status};
use super::pb::{self, render_service_server::RenderService};
use super::status::{scenario_field, ApiError, Lang};
use crate::auth::Principal;
use crate::config::{OutputLimits, OutputRequest};
use crate::domain::job::{Job, JobId, JobOptions, JobState};
use crate::media::{InputResolver, OutputStore};
use crate::queue::{StatusHub, WorkerPool};
use crate::quota::{Counter, QuotaService, RateLimiter, RpcClass};
use crate::scene::{parse_scenario, ParseOptions};
use crate::store::{JobStore, NewJob};

/// At most this many status messages a second per stream.
const STREAM_MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Messages a stream buffers for a slow client before it waits (it then sends the latest).
const STREAM_BUFFER: usize = 2;
const MAX_REQUEST_ID_CHARS: usize = 128;
const MAX_VIDEO_NAME_CHARS: usize = 256;

/// Defaults for options a request leaves at 0 (the editor's contract).
const DEFAULT_WIDTH: u32 = 1920;
const DEFAULT_HEIGHT: u32 = 1080;
const DEFAULT_FPS: u32 = 30;

/// What the handlers share.
pub struct RenderApi {
    pub store: JobStore,
    pub quota: QuotaService,
    pub limiter: Arc<RateLimiter>,
    pub hub: StatusHub,
    pub workers: Arc<WorkerPool>,
    pub inputs: Arc<InputResolver>,
    pub outputs: Arc<OutputStore>,
    pub parse_options: ParseOptions,
    pub output_limits: OutputLimits,
    pub default_quality: u8,
    /// Open StatusStream slots on this replica.
    pub streams: Arc<Semaphore>,
    /// Becomes true when the server shuts down: streams end with UNAVAILABLE so clients
    /// reconnect to another replica.
    pub shutdown: watch::Receiver<bool>,
}

/// The verified caller and the language of their messages.
struct Caller {
    principal: Principal,
    lang: Lang,
}

impl RenderApi {
    fn caller<T>(&self, request: &Request<T>, class: RpcClass) -> Result<Caller, Status> {
        let lang = Lang::from_metadata(request.metadata());
        let Some(principal) = request.extensions().get::<Principal>().cloned() else {
            return Err(ApiError::Unauthenticated {
                detail: "no verified bearer token".into(),
            }
            .into_status(lang));
        };
        self.limiter
            .check(&principal.user_id, class)
            .map_err(|limited| ApiError::from(limited).into_status(lang))?;
        Ok(Caller { principal, lang })
    }

    /// The job (without its scenario), if the caller may see it: their own, or any for an
    /// admin. Another user's job is reported exactly like a missing one. Reads go through the
    /// status hub: live for jobs rendering here, at most one status poll old otherwise.
    async fn visible_job(&self, caller: &Caller, job_id: &str) -> Result<Arc<Job>, Status> {
        let not_found = || {
            ApiError::JobNotFound {
                job_id: job_id.to_owned(),
            }
            .into_status(caller.lang)
        };
        let Ok(id) = JobId::parse(job_id) else {
            return Err(ApiError::validation([(
                "job_id".to_owned(),
                format!("{job_id:?} is not a job id (a UUID)"),
            )])
            .into_status(caller.lang));
        };
        let job = self
            .hub
            .current(&id)
            .await
            .map_err(|e| self.fail(caller, ApiError::from(e)))?;
        if job.owner == caller.principal.user_id || caller.principal.is_admin() {
            Ok(job)
        } else {
            Err(not_found())
        }
    }

    fn fail(&self, caller: &Caller, err: ApiError) -> Status {
        if matches!(
            err,
            ApiError::Internal { .. } | ApiError::Unavailable { .. }
        ) {
            tracing::error!(user = %caller.principal.user_id, error = %err, "request failed");
        }
        let err = err.with_quota_context(&caller.principal.user_id, &self.quota.windows_now());
        err.into_status(caller.lang)
    }

    fn download_url(&self, job: &Job) -> Option<String> {
        download_url(&self.outputs, job)
    }

    /// Checks a CreateRender request; every problem is reported at once, each under the
    /// request field it concerns.
    async fn validate_create(
        &self,
        request: &pb::CreateRenderRequest,
    ) -> Result<JobOptions, ApiError> {
        let pb::CreateRenderRequest {
            request_id,
            video_url,
            scenario_json,
            options,
            video_name,
        } = request;
        let mut problems: Vec<(String, String)> = Vec::new();
        if request_id.chars().count() > MAX_REQUEST_ID_CHARS
            || request_id.chars().any(|c| c.is_control())
        {
            problems.push((
                "request_id".into(),
                format!("at most {MAX_REQUEST_ID_CHARS} printable characters (a UUID is best)"),
            ));
        }
        if video_url.is_empty() {
            problems.push(("video_url".into(), "required".into()));
        } else if let Err(err) = self.inputs.check(video_url) {
            problems.push(("video_url".into(), err.to_string()));
        }
        if video_name.chars().count() > MAX_VIDEO_NAME_CHARS
            || video_name.chars().any(|c| c.is_control())
        {
            problems.push((
                "video_name".into(),
                format!("at most {MAX_VIDEO_NAME_CHARS} printable characters"),
            ));
        }
        let options = self.validate_options(options.as_ref(), &mut problems);
        if scenario_json.is_empty() {
            problems.push(("scenario_json".into(), "required".into()));
        } else {
            let json = scenario_json.clone();
            let parse_options = self.parse_options.clone();
            // Parsing a large scenario takes milliseconds of CPU: off the async executor.
            let parsed = tokio::task::spawn_blocking(move || {
                parse_scenario(json.as_bytes(), &parse_options)
            })
            .await
            .map_err(|e| ApiError::Internal {
                detail: format!("scenario validation stopped: {e}"),
            })?;
            if let Err(err) = parsed {
                problems.extend(
                    err.problems()
                        .iter()
                        .map(|p| (scenario_field(&p.path), p.message.clone())),
                );
            }
        }
        if problems.is_empty() {
            Ok(options)
        } else {
            Err(ApiError::validation(problems))
        }
    }

    fn validate_options(
        &self,
        options: Option<&pb::RenderOptions>,
        problems: &mut Vec<(String, String)>,
    ) -> JobOptions {
        let pb::RenderOptions {
            width,
            height,
            fps,
            quality,
            encoder_preference,
            format,
        } = options.cloned().unwrap_or_default();
        let mut field = |name: &str, value: i32, default: u32| -> u32 {
            match u32::try_from(value) {
                Ok(0) => default,
                Ok(v) => v,
                Err(_) => {
                    problems.push((format!("options.{name}"), format!("{value} is negative")));
                    default
                }
            }
        };
        let width = field("width", width, DEFAULT_WIDTH);
        let height = field("height", height, DEFAULT_HEIGHT);
        let fps = field("fps", fps, DEFAULT_FPS);
        let quality = field("quality", quality, u32::from(self.default_quality));
        let quality = u8::try_from(quality).unwrap_or(u8::MAX);
        if let Err(err) = self.output_limits.check(&OutputRequest {
            width: Some(width),
            height: Some(height),
            fps: Some(fps),
            quality: Some(quality),
        }) {
            let name = match &err {
                crate::config::OptionsError::OutOfRange { field, .. }
                | crate::config::OptionsError::Odd { field, .. } => *field,
            };
            problems.push((format!("options.{name}"), err.to_string()));
        }
        let encoder = match pb::Encoder::try_from(encoder_preference) {
            Ok(e) => encoder_preference_from_pb(e),
            Err(_) => {
                problems.push((
                    "options.encoder_preference".into(),
                    format!("{encoder_preference} is not an Encoder value"),
                ));
                Default::default()
            }
        };
        let format = match pb::OutputFormat::try_from(format) {
            Ok(f) => format_from_pb(f),
            Err(_) => {
                problems.push((
                    "options.format".into(),
                    format!("{format} is not an OutputFormat value"),
                ));
                Default::default()
            }
        };
        if !encoder.fits(format) {
            problems.push((
                "options.encoder_preference".into(),
                format!(
                    "{} cannot write {format}: mp4 and mov take NVENC or x264, webm takes VP9",
                    pb::Encoder::try_from(encoder_preference)
                        .map_or("this encoder", |e| e.as_str_name())
                ),
            ));
        }
        JobOptions {
            width: Some(width),
            height: Some(height),
            fps: Some(fps),
            quality: Some(quality),
            encoder,
            format,
        }
    }
}

/// A fresh signed link to a succeeded job's video (`None` for any other job).
fn download_url(outputs: &OutputStore, job: &Job) -> Option<String> {
    let format = JobOptions::from_json(&job.options)
        .unwrap_or_default()
        .format;
    (job.state == JobState::Succeeded && job.output.is_some())
        .then(|| outputs.download_url(job.id.as_str(), format, Utc::now()))
}

/// Resolves once the server starts shutting down.
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    // The borrow `wait_for` returns is dropped at once: it must not live across an await.
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

type StatusStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::RenderStatus, Status>> + Send>>;

#[tonic::async_trait]
impl RenderService for RenderApi {
    async fn create_render(
        &self,
        request: Request<pb::CreateRenderRequest>,
    ) -> Result<Response<pb::RenderJob>, Status> {
        let caller = self.caller(&request, RpcClass::Create)?;
        let body = request.into_inner();
        let options = self
            .validate_create(&body)
            .await
            .map_err(|e| self.fail(&caller, e))?;
        let pb::CreateRenderRequest {
            request_id,
            video_url,
            scenario_json,
            options: _,
            video_name,
        } = body;
        let new = NewJob {
            owner: caller.principal.user_id.clone(),
            request_id: (!request_id.is_empty()).then_some(request_id),
            video_url,
            video_name: (!video_name.is_empty()).then_some(video_name),
            scenario_json,
            options: options.to_json(),
        };
        let (job, created) = self
            .quota
            .create(&caller.principal.plan, new)
            .await
            .map_err(|e| self.fail(&caller, ApiError::from(e)))?;
        if created {
            tracing::info!(job = %job.id, user = %job.owner, "job queued");
            self.workers.wake();
        }
        Ok(Response::new(render_job(&job, self.download_url(&job))))
    }

    async fn get_render(
        &self,
        request: Request<pb::GetRenderRequest>,
    ) -> Result<Response<pb::RenderJob>, Status> {
        let caller = self.caller(&request, RpcClass::Other)?;
        let pb::GetRenderRequest { job_id } = request.get_ref();
        let job = self.visible_job(&caller, job_id).await?;
        Ok(Response::new(render_job(&job, self.download_url(&job))))
    }

    type StreamStatusStream = StatusStream;

    async fn stream_status(
        &self,
        request: Request<pb::StreamStatusRequest>,
    ) -> Result<Response<Self::StreamStatusStream>, Status> {
        let caller = self.caller(&request, RpcClass::Other)?;
        let pb::StreamStatusRequest { job_id } = request.get_ref();
        let job = self.visible_job(&caller, job_id).await?;
        let Ok(permit) = Arc::clone(&self.streams).try_acquire_owned() else {
            return Err(self.fail(
                &caller,
                ApiError::Unavailable {
                    detail: "this replica holds its maximum of open status streams".into(),
                },
            ));
        };
        let mut updates = self.hub.subscribe(Job::clone(&job));
        let mut shutdown = self.shutdown.clone();
        let outputs = Arc::clone(&self.outputs);
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            let _permit = permit;
            let mut highest = 0.0_f32;
            loop {
                let job = Arc::clone(&updates.borrow_and_update());
                let mut status = render_status(&job, download_url(&outputs, &job));
                // A retried job restarts its frames; what clients saw never goes back.
                highest = highest.max(status.progress);
                status.progress = highest;
                if tx.send(Ok(status)).await.is_err() {
                    return; // the client left
                }
                if job.state.is_terminal() {
                    return; // the stream ends with OK after the terminal state
                }
                tokio::select! {
                    _ = tokio::time::sleep(STREAM_MIN_INTERVAL) => {}
                    _ = tx.closed() => return,
                }
                tokio::select! {
                    changed = updates.changed() => {
                        if changed.is_err() {
                            return;
                        }
                    }
                    _ = stopping(&mut shutdown) => {
                        let _ = tx
                            .send(Err(Status::unavailable(
                                "the server is shutting down; reconnect to resume the stream",
                            )))
                            .await;
                        return;
                    }
                    _ = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(Box::pin(ReceiverStream::new(rx))))
    }

    async fn cancel(
        &self,
        request: Request<pb::CancelRequest>,
    ) -> Result<Response<pb::RenderJob>, Status> {
        let caller = self.caller(&request, RpcClass::Other)?;
        let pb::CancelRequest { job_id } = request.get_ref();
        let job = self.visible_job(&caller, job_id).await?;
        let cancelled = self
            .store
            .cancel(&job.id)
            .await
            .map_err(|e| self.fail(&caller, ApiError::from(e)))?;
        if !self.workers.cancel_local(&cancelled.id) {
            // Queued, or rendering on another replica (whose worker sees the lost lease at
            // its next progress write): tell this replica's streams now.
            self.hub.observe(cancelled.clone());
        }
        self.quota.invalidate(&cancelled.owner).await;
        tracing::info!(job = %cancelled.id, user = %caller.principal.user_id, "job cancelled");
        Ok(Response::new(render_job(&cancelled, None)))
    }

    async fn history(
        &self,
        request: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        let caller = self.caller(&request, RpcClass::Other)?;
        let pb::HistoryRequest {
            page_size,
            page_token,
            states,
        } = request.get_ref();
        let mut problems = Vec::new();
        let page_size = u32::try_from(*page_size).unwrap_or_else(|_| {
            problems.push(("page_size".to_owned(), "must not be negative".to_owned()));
            0
        });
        let mut filter = Vec::with_capacity(states.len());
        for (i, raw) in states.iter().enumerate() {
            match pb::JobState::try_from(*raw)
                .ok()
                .and_then(convert::state_from_pb)
            {
                Some(state) => filter.push(state),
                None => {
                    problems.push((format!("states[{i}]"), format!("{raw} is not a job state")))
                }
            }
        }
        if !problems.is_empty() {
            return Err(self.fail(&caller, ApiError::validation(problems)));
        }
        let owner = (!caller.principal.is_admin()).then_some(caller.principal.user_id.as_str());
        let (jobs, next) = self
            .store
            .list(owner, &filter, page_size, Some(page_token.as_str()))
            .await
            .map_err(|e| self.fail(&caller, ApiError::from(e)))?;
        Ok(Response::new(pb::HistoryResponse {
            jobs: jobs
                .iter()
                .map(|job| render_job(job, self.download_url(job)))
                .collect(),
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn get_quota(
        &self,
        request: Request<pb::GetQuotaRequest>,
    ) -> Result<Response<pb::QuotaUsage>, Status> {
        let caller = self.caller(&request, RpcClass::Other)?;
        let pb::GetQuotaRequest {} = request.get_ref();
        let report = self
            .quota
            .report(&caller.principal.user_id, &caller.principal.plan)
            .await
            .map_err(|e| self.fail(&caller, ApiError::from(e)))?;
        let counter = |c: Counter| pb::QuotaCounter {
            used: i32::try_from(c.used).unwrap_or(i32::MAX),
            limit: i32::try_from(c.limit).unwrap_or(i32::MAX),
            resets_at: c.resets_at.map(convert::timestamp),
        };
        Ok(Response::new(pb::QuotaUsage {
            user_id: caller.principal.user_id.clone(),
            plan: report.plan,
            daily: Some(counter(report.daily)),
            monthly: Some(counter(report.monthly)),
            concurrent: Some(counter(report.concurrent)),
        }))
    }
}
