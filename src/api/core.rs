//! [`RenderCore`]: what a render request does, whichever face it came through. Each operation
//! checks the caller's rate limit, validates, calls the quota service, the store or the queue,
//! and returns domain types or an [`ApiError`]; the gRPC and REST handlers only convert.

use std::sync::Arc;
use std::time::Duration;

use super::error::{scenario_field, ApiError};
use crate::auth::Principal;
use crate::config::{OptionsError, OutputLimits, OutputRequest};
use crate::domain::job::{EncoderPreference, Job, JobId, JobOptions, JobState, OutputFormat};
use crate::media::{InputResolver, OutputStore};
use crate::queue::{StatusHub, WorkerPool};
use crate::quota::{QuotaReport, QuotaService, RateLimiter, RpcClass};
use crate::scene::{parse_scenario, ParseOptions, Scene};
use crate::store::{JobStore, NewJob};

pub const MAX_REQUEST_ID_CHARS: usize = 128;
pub const MAX_VIDEO_NAME_CHARS: usize = 256;

/// Defaults for options a request leaves out (the editor's contract).
pub const DEFAULT_WIDTH: u32 = 1920;
pub const DEFAULT_HEIGHT: u32 = 1080;
pub const DEFAULT_FPS: u32 = 30;

/// The frame rate a create-time estimate assumes for decode + composite + encode. Deliberately
/// modest (lavapipe or a busy GPU); the status of a running job reports the measured rate.
const ESTIMATE_RENDER_FPS: f64 = 60.0;
/// Fetching, probing and finalising a job, in the create-time estimate.
const ESTIMATE_OVERHEAD: Duration = Duration::from_secs(3);

/// Render options as a face received them. `None` takes the default; a value out of range
/// (negative, too large for its type, outside the configured limits) is a field problem.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OptionsInput {
    pub width: Option<i64>,
    pub height: Option<i64>,
    pub fps: Option<i64>,
    pub quality: Option<i64>,
    pub encoder: EncoderPreference,
    /// The container (the editor's `options.format`).
    pub output_format: OutputFormat,
}

/// A create request in face-neutral form. Problems are reported under the gRPC field names
/// (`request_id`, `video_url`, `video_name`, `scenario_json…`, `options.*`); a face that names
/// them differently renames them.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CreateInput {
    /// Idempotency key: a repeated create with the same key returns the first job.
    pub request_id: Option<String>,
    pub video_url: String,
    pub video_name: Option<String>,
    pub scenario_json: String,
    pub options: OptionsInput,
    /// Where the job's terminal-state webhook goes (`[webhooks]` allow-list).
    pub callback_url: Option<String>,
    /// Problems the face found while converting its wire request (a value of the wrong type,
    /// an unknown enum value), reported together with the core's own.
    pub wire_problems: Vec<(String, String)>,
}

/// The outcome of [`RenderCore::create`].
#[derive(Clone, Debug, PartialEq)]
pub struct Created {
    pub job: Job,
    /// False when the request id named an existing job, which is returned instead.
    pub created: bool,
    /// A rough time from now until the video is ready (see [`estimate_render_time`]).
    pub estimate: Duration,
}

/// One page of a caller's jobs.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistoryQuery {
    /// 0: the store's default page size; more than its maximum is lowered to it.
    pub page_size: u32,
    pub page_token: Option<String>,
    /// Empty: every state.
    pub states: Vec<JobState>,
}

/// What both faces share.
pub struct RenderCore {
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
    /// Which `callback_url`s jobs may name (`[webhooks]`).
    pub callbacks: Arc<crate::webhook::CallbackPolicy>,
}

impl RenderCore {
    /// Validates and queues a render (within the caller's quota); idempotent by request id.
    pub async fn create(
        &self,
        principal: &Principal,
        input: CreateInput,
    ) -> Result<Created, ApiError> {
        self.admit(principal, RpcClass::Create)?;
        let (options, scene) = self
            .validate_create(&input)
            .await
            .map_err(|e| self.fail(principal, e))?;
        let CreateInput {
            request_id,
            video_url,
            video_name,
            scenario_json,
            options: _,
            callback_url,
            wire_problems: _,
        } = input;
        let new = NewJob {
            owner: principal.user_id.clone(),
            request_id: request_id.filter(|id| !id.is_empty()),
            video_url,
            video_name: video_name.filter(|name| !name.is_empty()),
            scenario_json,
            options: options.to_json(),
            callback_url: callback_url.filter(|url| !url.is_empty()),
            // The request span handling this create (see crate::telemetry::RequestLayer).
            trace_context: crate::telemetry::current_traceparent(),
        };
        let (job, created) = self
            .quota
            .create(&principal.plan, new)
            .await
            .map_err(|e| self.fail(principal, ApiError::from(e)))?;
        if created {
            tracing::info!(job = %job.id, user = %job.owner, "job queued");
            self.workers.wake();
        }
        let estimate = estimate_render_time(&scene, options.fps.unwrap_or(DEFAULT_FPS));
        Ok(Created {
            job,
            created,
            estimate,
        })
    }

    /// The job (without its scenario), if the caller may see it: their own, or any for an
    /// admin. Another user's job is reported exactly like a missing one. Reads go through the
    /// status hub: live for jobs rendering here, at most one status poll old otherwise.
    pub async fn get(&self, principal: &Principal, job_id: &str) -> Result<Arc<Job>, ApiError> {
        self.admit(principal, RpcClass::Other)?;
        self.visible_job(principal, job_id)
            .await
            .map_err(|e| self.fail(principal, e))
    }

    /// Cancels a queued or running job of the caller's (any job for an admin) and returns it.
    pub async fn cancel(&self, principal: &Principal, job_id: &str) -> Result<Job, ApiError> {
        self.admit(principal, RpcClass::Other)?;
        let job = self
            .visible_job(principal, job_id)
            .await
            .map_err(|e| self.fail(principal, e))?;
        let cancelled = self
            .store
            .cancel(&job.id)
            .await
            .map_err(|e| self.fail(principal, ApiError::from(e)))?;
        if !self.workers.cancel_local(&cancelled.id) {
            // Queued, or rendering on another replica (whose worker sees the lost lease at
            // its next progress write): tell this replica's streams now.
            self.hub.observe(cancelled.clone());
        }
        self.quota.invalidate(&cancelled.owner).await;
        tracing::info!(job = %cancelled.id, user = %principal.user_id, "job cancelled");
        Ok(cancelled)
    }

    /// The caller's jobs (everyone's for an admin), newest first, and the next page's token.
    pub async fn history(
        &self,
        principal: &Principal,
        query: HistoryQuery,
    ) -> Result<(Vec<Job>, Option<String>), ApiError> {
        self.admit(principal, RpcClass::Other)?;
        let HistoryQuery {
            page_size,
            page_token,
            states,
        } = query;
        let owner = (!principal.is_admin()).then_some(principal.user_id.as_str());
        self.store
            .list(owner, &states, page_size, page_token.as_deref())
            .await
            .map_err(|e| self.fail(principal, ApiError::from(e)))
    }

    /// The caller's allowance and what is used of it.
    pub async fn quota(&self, principal: &Principal) -> Result<QuotaReport, ApiError> {
        self.admit(principal, RpcClass::Other)?;
        self.quota
            .report(&principal.user_id, &principal.plan)
            .await
            .map_err(|e| self.fail(principal, ApiError::from(e)))
    }

    /// A fresh link to a succeeded job's video, signed for the local download route or a
    /// presigned bucket URL (`None` for any other job, and once retention expired the output).
    pub async fn download_url(&self, job: &Job) -> Option<String> {
        self.outputs.link(job).await
    }

    fn admit(&self, principal: &Principal, class: RpcClass) -> Result<(), ApiError> {
        self.limiter
            .check(&principal.user_id, class)
            .map_err(ApiError::from)
    }

    /// Logs what the operator must see and adds the quota context the store cannot know.
    fn fail(&self, principal: &Principal, err: ApiError) -> ApiError {
        if matches!(
            err,
            ApiError::Internal { .. } | ApiError::Unavailable { .. }
        ) {
            tracing::error!(user = %principal.user_id, error = %err, "request failed");
        }
        err.with_quota_context(&principal.user_id, &self.quota.windows_now())
    }

    async fn visible_job(&self, principal: &Principal, job_id: &str) -> Result<Arc<Job>, ApiError> {
        let Ok(id) = JobId::parse(job_id) else {
            return Err(ApiError::validation([(
                "job_id".to_owned(),
                format!("{job_id:?} is not a job id (a UUID)"),
            )]));
        };
        let job = self.hub.current(&id).await.map_err(ApiError::from)?;
        if job.owner == principal.user_id || principal.is_admin() {
            Ok(job)
        } else {
            Err(ApiError::JobNotFound {
                job_id: job_id.to_owned(),
            })
        }
    }

    /// Checks a create request; every problem is reported at once, each under the request
    /// field it concerns.
    async fn validate_create(&self, input: &CreateInput) -> Result<(JobOptions, Scene), ApiError> {
        let CreateInput {
            request_id,
            video_url,
            video_name,
            scenario_json,
            options,
            callback_url,
            wire_problems,
        } = input;
        let mut problems: Vec<(String, String)> = Vec::new();
        problems.extend(
            self.callbacks
                .violation(callback_url.as_deref().unwrap_or_default()),
        );
        // A field the face already found malformed is not also "required".
        let malformed = |field: &str| wire_problems.iter().any(|(f, _)| f == field);
        let request_id = request_id.as_deref().unwrap_or_default();
        if request_id.chars().count() > MAX_REQUEST_ID_CHARS
            || request_id.chars().any(|c| c.is_control())
        {
            problems.push((
                "request_id".into(),
                format!("at most {MAX_REQUEST_ID_CHARS} printable characters (a UUID is best)"),
            ));
        }
        if video_url.is_empty() {
            if !malformed("video_url") {
                problems.push(("video_url".into(), "required".into()));
            }
        } else if let Err(err) = self.inputs.check(video_url) {
            problems.push(("video_url".into(), err.to_string()));
        }
        let video_name = video_name.as_deref().unwrap_or_default();
        if video_name.chars().count() > MAX_VIDEO_NAME_CHARS
            || video_name.chars().any(|c| c.is_control())
        {
            problems.push((
                "video_name".into(),
                format!("at most {MAX_VIDEO_NAME_CHARS} printable characters"),
            ));
        }
        problems.extend(wire_problems.iter().cloned());
        let options = self.validate_options(options, &mut problems);
        let mut scene = None;
        if scenario_json.is_empty() {
            if !malformed("scenario_json") {
                problems.push(("scenario_json".into(), "required".into()));
            }
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
            match parsed {
                Ok(parsed) => scene = Some(parsed),
                Err(err) => problems.extend(
                    err.problems()
                        .iter()
                        .map(|p| (scenario_field(&p.path), p.message.clone())),
                ),
            }
        }
        match scene {
            Some(scene) if problems.is_empty() => Ok((options, scene)),
            _ => Err(ApiError::validation(problems)),
        }
    }

    fn validate_options(
        &self,
        options: &OptionsInput,
        problems: &mut Vec<(String, String)>,
    ) -> JobOptions {
        let OptionsInput {
            width,
            height,
            fps,
            quality,
            encoder,
            output_format: format,
        } = *options;
        let mut field = |name: &str, value: Option<i64>, default: u32| -> u32 {
            match value.map(u32::try_from) {
                None => default,
                Some(Ok(v)) => v,
                Some(Err(_)) => {
                    problems.push((
                        format!("options.{name}"),
                        format!("{} is out of range", value.unwrap_or_default()),
                    ));
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
                OptionsError::OutOfRange { field, .. } | OptionsError::Odd { field, .. } => *field,
            };
            problems.push((format!("options.{name}"), err.to_string()));
        }
        if !encoder.fits(format) {
            problems.push((
                "options.encoder_preference".into(),
                format!(
                    "encoder {encoder:?} cannot write {format}: mp4 and mov take NVENC or x264, \
                     webm takes VP9"
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

/// A rough render time for a new job: the captions' extent (the last finite cue end; the
/// video itself is not probed before a worker takes the job) at `fps`, rendered at
/// [`ESTIMATE_RENDER_FPS`], plus [`ESTIMATE_OVERHEAD`].
pub fn estimate_render_time(scene: &Scene, fps: u32) -> Duration {
    let extent = scene
        .cues
        .iter()
        .map(|cue| cue.dom_lifetime.1)
        .filter(|end| end.is_finite() && *end > 0.0)
        .fold(0.0_f64, f64::max);
    let frames = extent * f64::from(fps);
    ESTIMATE_OVERHEAD + Duration::from_secs_f64(frames / ESTIMATE_RENDER_FPS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scene_with_cues(ends: &[f64]) -> Scene {
        let cues: Vec<String> = ends
            .iter()
            .enumerate()
            .map(|(i, end)| {
                format!(
                    r#"{{"id":"c{i}","track":"t","root":{{"id":"n{i}","eType":"text","text":"hi",
                        "displayTime":[0,{end}]}}}}"#
                )
            })
            .collect();
        let json = format!(
            r#"{{"version":"2.0","timebase":{{"unit":"seconds"}},"stage":{{"baseAspect":"16:9"}},
                "tracks":[{{"id":"t","type":"free"}}],"cues":[{}]}}"#,
            cues.join(",")
        );
        parse_scenario(json.as_bytes(), &ParseOptions::default()).expect("scenario parses")
    }

    #[test]
    fn estimate_grows_with_the_captions_extent_and_the_frame_rate() {
        let empty = scene_with_cues(&[]);
        assert_eq!(estimate_render_time(&empty, 30), ESTIMATE_OVERHEAD);
        let short = scene_with_cues(&[4.0]);
        let long = scene_with_cues(&[4.0, 12.0]);
        let work = |scene: &Scene, fps: u32| estimate_render_time(scene, fps) - ESTIMATE_OVERHEAD;
        // 12 s at 30 fps is at least 360 frames: 6 s at the assumed 60 fps.
        assert!(
            work(&long, 30) >= Duration::from_secs(6),
            "{:?}",
            work(&long, 30)
        );
        assert!(work(&short, 30) < work(&long, 30));
        let ratio = work(&long, 60).as_secs_f64() / work(&long, 30).as_secs_f64();
        assert!((ratio - 2.0).abs() < 1e-9, "{ratio}");
    }
}
