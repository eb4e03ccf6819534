//! `render.v1.RenderService`: thin handlers over [`RenderCore`]. Each one identifies the
//! caller, converts the request, calls the core once and converts back; every error leaves
//! through [`ApiError::into_status`] in the caller's language.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::convert::{self, encoder_preference_from_pb, format_from_pb, render_job, render_status};
use super::pb::{self, render_service_server::RenderService};
use super::status::{lang_from_metadata, ApiError, Lang};
use crate::api::{CreateInput, HistoryQuery, OptionsInput, RenderCore};
use crate::auth::Principal;
use crate::domain::job::Job;
use crate::quota::Counter;

/// At most this many status messages a second per stream.
const STREAM_MIN_INTERVAL: Duration = Duration::from_millis(100);
/// Messages a stream buffers for a slow client before it waits (it then sends the latest).
const STREAM_BUFFER: usize = 2;

/// What the handlers share.
pub struct RenderApi {
    pub core: Arc<RenderCore>,
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

impl Caller {
    fn of<T>(request: &Request<T>) -> Result<Caller, Status> {
        let lang = lang_from_metadata(request.metadata());
        let Some(principal) = request.extensions().get::<Principal>().cloned() else {
            return Err(ApiError::Unauthenticated {
                detail: "no verified bearer token".into(),
            }
            .into_status(lang));
        };
        Ok(Caller { principal, lang })
    }

    fn fail(&self, err: ApiError) -> Status {
        err.into_status(self.lang)
    }
}

/// The face-neutral create input of a CreateRender request. Empty strings and zero options
/// are "not given"; an unknown encoder value is a field problem.
fn create_input(request: pb::CreateRenderRequest) -> CreateInput {
    let pb::CreateRenderRequest {
        request_id,
        video_url,
        scenario_json,
        options,
        video_name,
        callback_url,
    } = request;
    let pb::RenderOptions {
        width,
        height,
        fps,
        quality,
        encoder_preference,
        format,
    } = options.unwrap_or_default();
    let mut wire_problems = Vec::new();
    let output_format = match pb::OutputFormat::try_from(format) {
        Ok(f) => format_from_pb(f),
        Err(_) => {
            wire_problems.push((
                "options.format".into(),
                format!("{format} is not an OutputFormat value"),
            ));
            Default::default()
        }
    };
    let encoder = match pb::Encoder::try_from(encoder_preference) {
        Ok(e) => encoder_preference_from_pb(e),
        Err(_) => {
            wire_problems.push((
                "options.encoder_preference".into(),
                format!("{encoder_preference} is not an Encoder value"),
            ));
            Default::default()
        }
    };
    let given = |v: i32| (v != 0).then_some(i64::from(v));
    CreateInput {
        request_id: (!request_id.is_empty()).then_some(request_id),
        video_url,
        video_name: (!video_name.is_empty()).then_some(video_name),
        scenario_json,
        options: OptionsInput {
            width: given(width),
            height: given(height),
            fps: given(fps),
            quality: given(quality),
            encoder,
            output_format,
        },
        callback_url: (!callback_url.is_empty()).then_some(callback_url),
        wire_problems,
    }
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
        let caller = Caller::of(&request)?;
        let created = self
            .core
            .create(&caller.principal, create_input(request.into_inner()))
            .await
            .map_err(|e| caller.fail(e))?;
        let job = created.job;
        Ok(Response::new(render_job(
            &job,
            self.core.download_url(&job).await,
        )))
    }

    async fn get_render(
        &self,
        request: Request<pb::GetRenderRequest>,
    ) -> Result<Response<pb::RenderJob>, Status> {
        let caller = Caller::of(&request)?;
        let pb::GetRenderRequest { job_id } = request.get_ref();
        let job = self
            .core
            .get(&caller.principal, job_id)
            .await
            .map_err(|e| caller.fail(e))?;
        Ok(Response::new(render_job(
            &job,
            self.core.download_url(&job).await,
        )))
    }

    type StreamStatusStream = StatusStream;

    async fn stream_status(
        &self,
        request: Request<pb::StreamStatusRequest>,
    ) -> Result<Response<Self::StreamStatusStream>, Status> {
        let caller = Caller::of(&request)?;
        let pb::StreamStatusRequest { job_id } = request.get_ref();
        let job = self
            .core
            .get(&caller.principal, job_id)
            .await
            .map_err(|e| caller.fail(e))?;
        let Ok(permit) = Arc::clone(&self.streams).try_acquire_owned() else {
            tracing::error!(
                user = %caller.principal.user_id,
                "request failed: this replica holds its maximum of open status streams"
            );
            return Err(caller.fail(ApiError::Unavailable {
                detail: "this replica holds its maximum of open status streams".into(),
            }));
        };
        let mut updates = self.core.hub.subscribe(Job::clone(&job));
        let mut shutdown = self.shutdown.clone();
        let outputs = Arc::clone(&self.core.outputs);
        let (tx, rx) = mpsc::channel(STREAM_BUFFER);
        tokio::spawn(async move {
            let _permit = permit;
            let mut highest = 0.0_f32;
            loop {
                let job = Arc::clone(&updates.borrow_and_update());
                let mut status = render_status(&job, outputs.link(&job).await);
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
        let caller = Caller::of(&request)?;
        let pb::CancelRequest { job_id } = request.get_ref();
        let cancelled = self
            .core
            .cancel(&caller.principal, job_id)
            .await
            .map_err(|e| caller.fail(e))?;
        Ok(Response::new(render_job(&cancelled, None)))
    }

    async fn history(
        &self,
        request: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        let caller = Caller::of(&request)?;
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
            return Err(caller.fail(ApiError::validation(problems)));
        }
        let query = HistoryQuery {
            page_size,
            page_token: (!page_token.is_empty()).then(|| page_token.clone()),
            states: filter,
        };
        let (jobs, next) = self
            .core
            .history(&caller.principal, query)
            .await
            .map_err(|e| caller.fail(e))?;
        let mut rendered = Vec::with_capacity(jobs.len());
        for job in &jobs {
            rendered.push(render_job(job, self.core.download_url(job).await));
        }
        Ok(Response::new(pb::HistoryResponse {
            jobs: rendered,
            next_page_token: next.unwrap_or_default(),
        }))
    }

    async fn get_quota(
        &self,
        request: Request<pb::GetQuotaRequest>,
    ) -> Result<Response<pb::QuotaUsage>, Status> {
        let caller = Caller::of(&request)?;
        let pb::GetQuotaRequest {} = request.get_ref();
        let report = self
            .core
            .quota(&caller.principal)
            .await
            .map_err(|e| caller.fail(e))?;
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
