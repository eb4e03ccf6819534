//! The editor's JSON, exactly as `../shared/CONTRACT.md` spells it (camelCase), and its
//! conversions to and from the core's types. Conversions destructure every field, so a new
//! field nobody handles fails to compile.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::api::core::MAX_VIDEO_NAME_CHARS;
use crate::api::{CreateInput, Created, OptionsInput};
use crate::domain::job::{
    EncoderPreference, Job, JobFailure, JobOutput, JobProgress, JobState, OutputFormat,
};

/// `POST /api/render/create`: `{videoUrl, scenario, options?}`. Fields are loosely typed here so
/// that a value of the wrong type is reported with the others, under its own name.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CreateRenderBody {
    /// A string.
    pub video_url: Option<Value>,
    /// The MotionText scenario: a JSON object (or the same as a string).
    pub scenario: Option<Value>,
    pub options: Option<RenderOptionsBody>,
    /// Optional: where the signed terminal-state webhook goes (an extension of the contract).
    pub callback_url: Option<Value>,
}

/// `{width=1920, height=1080, fps=30, quality=90, format="mp4"}`, each optional.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct RenderOptionsBody {
    pub width: Option<Value>,
    pub height: Option<Value>,
    pub fps: Option<Value>,
    pub quality: Option<Value>,
    /// `mp4`, `mov` or `webm`.
    pub format: Option<Value>,
}

/// `{jobId, estimatedTime, createdAt}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateRenderResponse {
    pub job_id: String,
    /// Whole seconds until the video is expected to be ready.
    pub estimated_time: u64,
    pub created_at: String,
}

/// `{jobId, status, progress, estimatedTimeRemaining?, startedAt?, completedAt?, downloadUrl?,
/// error?}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct JobStatusResponse {
    pub job_id: String,
    pub status: &'static str,
    /// 0–100.
    pub progress: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub estimated_time_remaining: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `{success, message}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CancelResponse {
    pub success: bool,
    pub message: String,
}

/// One entry of `GET /api/render/history`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HistoryItem {
    pub job_id: String,
    pub video_name: String,
    pub status: &'static str,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub download_url: Option<String>,
    /// Bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file_size: Option<u64>,
    /// Seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
}

/// The editor's status word for a job state.
pub fn status_word(state: JobState) -> &'static str {
    match state {
        JobState::Queued => "queued",
        JobState::Running => "processing",
        JobState::Succeeded => "completed",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

/// ISO 8601 / RFC 3339 in UTC with milliseconds, as JavaScript's `Date` reads and writes it.
pub fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Whole seconds, rounded up; `None` for a value that is not a finite, non-negative number.
fn whole_seconds(seconds: f64) -> Option<u64> {
    (seconds.is_finite() && seconds >= 0.0).then(|| seconds.ceil() as u64)
}

/// The display name of a video: the last path segment of its URL (query and fragment cut),
/// at most [`MAX_VIDEO_NAME_CHARS`] printable characters.
pub fn video_name_from_url(url: &str) -> String {
    url.split(['?', '#'])
        .next()
        .and_then(|path| path.trim_end_matches('/').rsplit('/').next())
        .unwrap_or_default()
        .chars()
        .filter(|c| !c.is_control())
        .take(MAX_VIDEO_NAME_CHARS)
        .collect()
}

/// An integer option: absent or `null` is "not given"; a number with a fraction, a string or
/// anything else is a problem named `options.NAME`.
fn integer_option(
    name: &str,
    value: Option<Value>,
    problems: &mut Vec<(String, String)>,
) -> Option<i64> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(v) => Some(v),
            None => {
                problems.push((format!("options.{name}"), format!("{n} is not an integer")));
                None
            }
        },
        Some(other) => {
            problems.push((
                format!("options.{name}"),
                format!("must be an integer, not {}", json_type(&other)),
            ));
            None
        }
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// The face-neutral create input of a REST create. `idempotency_key` is the request's
/// `Idempotency-Key` header (the editor sends none; other clients may).
/// The editor's `options.format` spelling (`mp4`, `mov`, `webm`; case and spaces ignored).
fn output_format(text: &str) -> Option<OutputFormat> {
    text.trim().to_ascii_lowercase().parse().ok()
}

pub fn create_input(body: CreateRenderBody, idempotency_key: Option<String>) -> CreateInput {
    let CreateRenderBody {
        video_url,
        scenario,
        options,
        callback_url,
    } = body;
    let mut problems: Vec<(String, String)> = Vec::new();
    let callback_url = match callback_url {
        None | Some(Value::Null) => None,
        Some(Value::String(url)) => Some(url),
        Some(other) => {
            problems.push((
                "callback_url".into(),
                format!("must be a string, not {}", json_type(&other)),
            ));
            None
        }
    };
    let video_url = match video_url {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(url)) => url,
        Some(other) => {
            problems.push((
                "video_url".into(),
                format!("must be a string, not {}", json_type(&other)),
            ));
            String::new()
        }
    };
    let scenario_json = match scenario {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(text)) => text,
        Some(object @ Value::Object(_)) => object.to_string(),
        Some(other) => {
            problems.push((
                "scenario_json".into(),
                format!("must be a JSON object, not {}", json_type(&other)),
            ));
            String::new()
        }
    };
    let RenderOptionsBody {
        width,
        height,
        fps,
        quality,
        format,
    } = options.unwrap_or_default();
    let width = integer_option("width", width, &mut problems);
    let height = integer_option("height", height, &mut problems);
    let fps = integer_option("fps", fps, &mut problems);
    let quality = integer_option("quality", quality, &mut problems);
    let output_format = match format {
        None | Some(Value::Null) => OutputFormat::default(),
        Some(Value::String(text)) => output_format(&text).unwrap_or_else(|| {
            problems.push((
                "options.format".into(),
                format!("{text:?} is not one of \"mp4\", \"mov\", \"webm\""),
            ));
            OutputFormat::default()
        }),
        Some(other) => {
            problems.push((
                "options.format".into(),
                format!("must be a string, not {}", json_type(&other)),
            ));
            OutputFormat::default()
        }
    };
    let video_name = Some(video_name_from_url(&video_url)).filter(|name| !name.is_empty());
    CreateInput {
        request_id: idempotency_key,
        video_url,
        video_name,
        scenario_json,
        options: OptionsInput {
            width,
            height,
            fps,
            quality,
            encoder: EncoderPreference::Auto,
            output_format,
        },
        callback_url,
        wire_problems: problems,
    }
}

impl CreateRenderResponse {
    pub fn new(created: &Created) -> Self {
        let Created {
            job,
            created: _,
            estimate,
        } = created;
        CreateRenderResponse {
            job_id: job.id.to_string(),
            estimated_time: whole_seconds(estimate.as_secs_f64()).unwrap_or(0).max(1),
            created_at: timestamp(job.created_at),
        }
    }
}

impl JobStatusResponse {
    /// `download_url` is the signed link of a succeeded job (see `RenderCore::download_url`).
    pub fn new(job: &Job, download_url: Option<String>) -> Self {
        let Job {
            id,
            owner: _,
            request_id: _,
            video_url: _,
            video_name: _,
            scenario_json: _,
            options: _,
            state,
            progress,
            created_at: _,
            updated_at: _,
            started_at,
            finished_at,
            failure,
            output: _,
            lease: _,
            attempts: _,
            callback_url: _,
        } = job;
        let JobProgress {
            stage: _,
            percent,
            frames_done: _,
            frames_total: _,
            fps: _,
            eta_seconds,
            encoder: _,
        } = progress;
        let progress = if *state == JobState::Succeeded {
            100
        } else if percent.is_finite() {
            percent.clamp(0.0, 100.0).floor() as u8
        } else {
            0
        };
        JobStatusResponse {
            job_id: id.to_string(),
            status: status_word(*state),
            progress,
            estimated_time_remaining: if state.is_terminal() {
                None
            } else {
                eta_seconds.and_then(whole_seconds)
            },
            started_at: started_at.map(timestamp),
            completed_at: finished_at.map(timestamp),
            download_url: download_url.filter(|_| *state == JobState::Succeeded),
            error: match (failure, state) {
                (Some(JobFailure { code: _, message }), JobState::Failed) => Some(message.clone()),
                _ => None,
            },
        }
    }
}

impl HistoryItem {
    pub fn new(job: &Job, download_url: Option<String>) -> Self {
        let Job {
            id,
            owner: _,
            request_id: _,
            video_url,
            video_name,
            scenario_json: _,
            options: _,
            state,
            progress: _,
            created_at,
            updated_at: _,
            started_at: _,
            finished_at,
            failure: _,
            output,
            lease: _,
            attempts: _,
            callback_url: _,
        } = job;
        let output = output.as_ref().filter(|_| *state == JobState::Succeeded);
        let (file_size, duration) = match output {
            Some(JobOutput {
                path: _,
                size_bytes,
                duration_seconds,
                expires_at: _,
                expired_at: _,
            }) => (Some(*size_bytes), Some(*duration_seconds)),
            None => (None, None),
        };
        HistoryItem {
            job_id: id.to_string(),
            video_name: match video_name {
                Some(name) if !name.is_empty() => name.clone(),
                _ => video_name_from_url(video_url),
            },
            status: status_word(*state),
            created_at: timestamp(*created_at),
            completed_at: finished_at.map(timestamp),
            download_url: download_url.filter(|_| output.is_some()),
            file_size,
            duration,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::TimeZone;
    use serde_json::json;

    use super::*;
    use crate::domain::job::{JobId, Stage};

    fn at(seconds: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 17, 12, 0, seconds).unwrap()
    }

    fn job(state: JobState) -> Job {
        Job {
            id: JobId::parse("0190f3a4-8c2e-7b1d-9f00-123456789abc").expect("id"),
            owner: "42".into(),
            request_id: None,
            video_url: "https://cdn.example.com/videos/talk%20one.mp4?sig=1".into(),
            video_name: None,
            scenario_json: String::new(),
            options: json!({}),
            callback_url: None,
            state,
            progress: JobProgress {
                stage: Some(Stage::Rendering),
                percent: 42.7,
                frames_done: 10,
                frames_total: Some(24),
                fps: Some(30.0),
                eta_seconds: Some(7.2),
                encoder: Some("x264".into()),
            },
            created_at: at(0),
            updated_at: at(5),
            started_at: Some(at(1)),
            finished_at: None,
            failure: None,
            output: None,
            lease: None,
            attempts: 1,
        }
    }

    #[test]
    fn output_formats_parse_from_their_wire_names_only() {
        for format in OutputFormat::ALL {
            assert_eq!(output_format(format.as_str()), Some(format));
        }
        assert_eq!(output_format(" WebM "), Some(OutputFormat::Webm));
        for bad in ["", "avi", "mkv", "gif", "mp4a"] {
            assert_eq!(output_format(bad), None, "{bad:?}");
        }
    }

    fn body(json: Value) -> CreateRenderBody {
        serde_json::from_value(json).expect("body shape")
    }

    #[test]
    fn a_full_create_body_converts_field_by_field() {
        let input = create_input(
            body(json!({
                "videoUrl": "https://cdn.example.com/v/clip.mp4",
                "scenario": {"version": "2.0", "cues": []},
                "options": {"width": 1280, "height": 720, "fps": 24, "quality": 80, "format": "webm"}
            })),
            Some("key-1".into()),
        );
        assert_eq!(
            input,
            CreateInput {
                request_id: Some("key-1".into()),
                video_url: "https://cdn.example.com/v/clip.mp4".into(),
                video_name: Some("clip.mp4".into()),
                scenario_json: r#"{"version":"2.0","cues":[]}"#.into(),
                options: OptionsInput {
                    width: Some(1280),
                    height: Some(720),
                    fps: Some(24),
                    quality: Some(80),
                    encoder: EncoderPreference::Auto,
                    output_format: OutputFormat::Webm,
                },
                callback_url: None,
                wire_problems: vec![],
            }
        );
        // A scenario sent as a string is taken as it is; absent options take the defaults.
        let input = create_input(
            body(json!({"videoUrl": "file:///m/a.mov", "scenario": "{\"version\":\"1.3\"}"})),
            None,
        );
        assert_eq!(input.scenario_json, "{\"version\":\"1.3\"}");
        assert_eq!(input.options, OptionsInput::default());
        assert_eq!(input.video_name.as_deref(), Some("a.mov"));
        assert!(input.wire_problems.is_empty());
    }

    #[test]
    fn wrongly_typed_fields_are_each_named() {
        let input = create_input(
            body(json!({
                "videoUrl": 7,
                "scenario": [1, 2],
                "options": {"width": "wide", "height": 720.5, "fps": null, "quality": true, "format": "gif"}
            })),
            None,
        );
        let fields: Vec<&str> = input
            .wire_problems
            .iter()
            .map(|(f, _)| f.as_str())
            .collect();
        assert_eq!(
            fields,
            [
                "video_url",
                "scenario_json",
                "options.width",
                "options.height",
                "options.quality",
                "options.format"
            ]
        );
        assert!(input.wire_problems[5].1.contains("\"gif\""));
        assert_eq!(input.options.fps, None);
        let empty = create_input(body(json!({})), None);
        assert!(
            empty.wire_problems.is_empty(),
            "missing fields: the core says required"
        );
        assert_eq!(empty.video_url, "");
        assert_eq!(empty.video_name, None);
    }

    #[test]
    fn status_of_a_running_job() {
        let status = JobStatusResponse::new(&job(JobState::Running), None);
        assert_eq!(
            serde_json::to_value(&status).expect("json"),
            json!({
                "jobId": "0190f3a4-8c2e-7b1d-9f00-123456789abc",
                "status": "processing",
                "progress": 42,
                "estimatedTimeRemaining": 8,
                "startedAt": "2025-06-17T12:00:01.000Z",
            })
        );
    }

    #[test]
    fn status_of_finished_jobs() {
        let mut done = job(JobState::Succeeded);
        done.finished_at = Some(at(9));
        done.output = Some(JobOutput {
            path: "/out/x.mp4".into(),
            size_bytes: 12345,
            duration_seconds: 1.5,
            expires_at: None,
            expired_at: None,
        });
        let status = JobStatusResponse::new(&done, Some("http://h/downloads/x.mp4?sig=1".into()));
        assert_eq!(status.status, "completed");
        assert_eq!(status.progress, 100);
        assert_eq!(status.estimated_time_remaining, None);
        assert_eq!(
            status.completed_at.as_deref(),
            Some("2025-06-17T12:00:09.000Z")
        );
        assert_eq!(
            status.download_url.as_deref(),
            Some("http://h/downloads/x.mp4?sig=1")
        );
        let item = HistoryItem::new(&done, Some("http://h/d".into()));
        assert_eq!(
            serde_json::to_value(&item).expect("json"),
            json!({
                "jobId": "0190f3a4-8c2e-7b1d-9f00-123456789abc",
                "videoName": "talk%20one.mp4",
                "status": "completed",
                "createdAt": "2025-06-17T12:00:00.000Z",
                "completedAt": "2025-06-17T12:00:09.000Z",
                "downloadUrl": "http://h/d",
                "fileSize": 12345,
                "duration": 1.5,
            })
        );

        let mut failed = job(JobState::Failed);
        failed.finished_at = Some(at(3));
        failed.failure = Some(JobFailure {
            code: "FFMPEG_ERROR".into(),
            message: "the encoder stopped".into(),
        });
        let status = JobStatusResponse::new(&failed, Some("ignored".into()));
        assert_eq!(status.status, "failed");
        assert_eq!(status.progress, 42);
        assert_eq!(status.error.as_deref(), Some("the encoder stopped"));
        assert_eq!(status.download_url, None);
        let item = HistoryItem::new(&failed, None);
        assert_eq!(item.file_size, None);
        assert_eq!(item.duration, None);

        let mut queued = job(JobState::Queued);
        queued.progress = JobProgress::default();
        queued.started_at = None;
        let status = JobStatusResponse::new(&queued, None);
        assert_eq!(
            serde_json::to_value(&status).expect("json"),
            json!({"jobId": "0190f3a4-8c2e-7b1d-9f00-123456789abc", "status": "queued", "progress": 0})
        );
        assert_eq!(status_word(JobState::Cancelled), "cancelled");
    }

    #[test]
    fn create_response_rounds_the_estimate_up() {
        let created = Created {
            job: job(JobState::Queued),
            created: true,
            estimate: Duration::from_millis(4200),
        };
        assert_eq!(
            serde_json::to_value(CreateRenderResponse::new(&created)).expect("json"),
            json!({
                "jobId": "0190f3a4-8c2e-7b1d-9f00-123456789abc",
                "estimatedTime": 5,
                "createdAt": "2025-06-17T12:00:00.000Z",
            })
        );
    }

    #[test]
    fn video_names_come_from_the_last_path_segment() {
        for (url, name) in [
            ("https://h/a/b/clip.mp4", "clip.mp4"),
            ("https://h/a/clip.mov?x=1#t=3", "clip.mov"),
            ("file:///media/dir/", "dir"),
            ("", ""),
        ] {
            assert_eq!(video_name_from_url(url), name, "{url}");
        }
        let long = format!("https://h/{}", "x".repeat(400));
        assert_eq!(
            video_name_from_url(&long).chars().count(),
            MAX_VIDEO_NAME_CHARS
        );
    }
}
