//! Wire ⇄ domain: `render.v1` messages from and to the job records. Conversions destructure
//! every field, so a proto field nobody handles fails to compile.

use chrono::{DateTime, Utc};
use prost::Message;

use super::pb;
use crate::domain::job::{
    EncoderPreference, Job, JobFailure, JobOptions, JobState, OutputFormat, Stage,
};

/// The ErrorInfo domain of every error renderd reports.
pub const ERROR_DOMAIN: &str = "render.v1";
const ERROR_INFO_TYPE_URL: &str = "type.googleapis.com/google.rpc.ErrorInfo";

pub fn timestamp(t: DateTime<Utc>) -> prost_types::Timestamp {
    prost_types::Timestamp {
        seconds: t.timestamp(),
        nanos: t.timestamp_subsec_nanos() as i32,
    }
}

pub fn state_to_pb(state: JobState) -> pb::JobState {
    match state {
        JobState::Queued => pb::JobState::Queued,
        JobState::Running => pb::JobState::Running,
        JobState::Succeeded => pb::JobState::Succeeded,
        JobState::Failed => pb::JobState::Failed,
        JobState::Cancelled => pb::JobState::Cancelled,
    }
}

/// `None` for `JOB_STATE_UNSPECIFIED`, which names no state.
pub fn state_from_pb(state: pb::JobState) -> Option<JobState> {
    match state {
        pb::JobState::Unspecified => None,
        pb::JobState::Queued => Some(JobState::Queued),
        pb::JobState::Running => Some(JobState::Running),
        pb::JobState::Succeeded => Some(JobState::Succeeded),
        pb::JobState::Failed => Some(JobState::Failed),
        pb::JobState::Cancelled => Some(JobState::Cancelled),
    }
}

fn stage_to_pb(stage: Option<Stage>) -> pb::Stage {
    match stage {
        None => pb::Stage::Unspecified,
        Some(Stage::Fetching) => pb::Stage::Fetching,
        Some(Stage::Rendering) => pb::Stage::Rendering,
        Some(Stage::Encoding) => pb::Stage::Encoding,
        Some(Stage::Finalizing) => pb::Stage::Finalizing,
    }
}

fn encoder_to_pb(encoder: Option<&str>) -> pb::Encoder {
    match encoder {
        Some("nvenc") => pb::Encoder::Nvenc,
        Some("x264") => pb::Encoder::X264,
        Some("vp9") => pb::Encoder::Vp9,
        _ => pb::Encoder::Unspecified,
    }
}

pub fn encoder_preference_from_pb(encoder: pb::Encoder) -> EncoderPreference {
    match encoder {
        pb::Encoder::Unspecified => EncoderPreference::Auto,
        pb::Encoder::Nvenc => EncoderPreference::Nvenc,
        pb::Encoder::X264 => EncoderPreference::X264,
        pb::Encoder::Vp9 => EncoderPreference::Vp9,
    }
}

fn encoder_preference_to_pb(encoder: EncoderPreference) -> pb::Encoder {
    match encoder {
        EncoderPreference::Auto => pb::Encoder::Unspecified,
        EncoderPreference::Nvenc => pb::Encoder::Nvenc,
        EncoderPreference::X264 => pb::Encoder::X264,
        EncoderPreference::Vp9 => pb::Encoder::Vp9,
    }
}

/// `OUTPUT_FORMAT_UNSPECIFIED` renders MP4.
pub fn format_from_pb(format: pb::OutputFormat) -> OutputFormat {
    match format {
        pb::OutputFormat::Unspecified | pb::OutputFormat::Mp4 => OutputFormat::Mp4,
        pb::OutputFormat::Mov => OutputFormat::Mov,
        pb::OutputFormat::Webm => OutputFormat::Webm,
    }
}

pub fn format_to_pb(format: OutputFormat) -> pb::OutputFormat {
    match format {
        OutputFormat::Mp4 => pb::OutputFormat::Mp4,
        OutputFormat::Mov => pb::OutputFormat::Mov,
        OutputFormat::Webm => pb::OutputFormat::Webm,
    }
}

fn options_to_pb(options: &JobOptions) -> pb::RenderOptions {
    let JobOptions {
        width,
        height,
        fps,
        quality,
        encoder,
        format,
    } = *options;
    let int = |v: Option<u32>| v.map_or(0, |v| i32::try_from(v).unwrap_or(i32::MAX));
    pb::RenderOptions {
        width: int(width),
        height: int(height),
        fps: int(fps),
        quality: int(quality.map(u32::from)),
        encoder_preference: encoder_preference_to_pb(encoder) as i32,
        format: format_to_pb(format) as i32,
    }
}

/// The canonical gRPC code a job failure code stands for.
pub fn failure_grpc_code(code: &str) -> tonic::Code {
    match code {
        "SCENARIO_PARSE_ERROR"
        | "INVALID_RENDER_OPTIONS"
        | "INVALID_VIDEO_FORMAT"
        | "INVALID_VIDEO_URL" => tonic::Code::InvalidArgument,
        "JOB_CANCELLED" => tonic::Code::Cancelled,
        "RENDERING_TIMEOUT" => tonic::Code::DeadlineExceeded,
        "GPU_MEMORY_INSUFFICIENT" => tonic::Code::ResourceExhausted,
        "GPU_NOT_AVAILABLE" | "STORAGE_ACCESS_ERROR" => tonic::Code::Unavailable,
        _ => tonic::Code::Internal,
    }
}

/// A failed job's `google.rpc.Status`: the canonical code, the message, and one ErrorInfo
/// whose reason is the job failure code.
pub fn failure_status(failure: &JobFailure) -> tonic_types::pb::Status {
    let JobFailure { code, message } = failure;
    let info = tonic_types::pb::ErrorInfo {
        reason: code.clone(),
        domain: ERROR_DOMAIN.to_owned(),
        metadata: Default::default(),
    };
    tonic_types::pb::Status {
        code: failure_grpc_code(code) as i32,
        message: message.clone(),
        details: vec![prost_types::Any {
            type_url: ERROR_INFO_TYPE_URL.to_owned(),
            value: info.encode_to_vec(),
        }],
    }
}

/// The display name of a job's video: the one given, else the URL's file name.
pub fn video_name(job: &Job) -> String {
    match &job.video_name {
        Some(name) if !name.is_empty() => name.clone(),
        _ => job
            .video_url
            .split(['?', '#'])
            .next()
            .and_then(|path| path.rsplit('/').next())
            .unwrap_or_default()
            .to_owned(),
    }
}

/// The fields `RenderJob` and `RenderStatus` share, in their order.
struct Common {
    job_id: String,
    owner: String,
    state: i32,
    stage: i32,
    progress: f32,
    frames_done: i64,
    frames_total: i64,
    current_fps: f32,
    eta_seconds: Option<f32>,
    encoder: i32,
    create_time: Option<prost_types::Timestamp>,
    start_time: Option<prost_types::Timestamp>,
    finish_time: Option<prost_types::Timestamp>,
    output: Option<pb::RenderOutput>,
    failure: Option<tonic_types::pb::Status>,
    update_time: Option<prost_types::Timestamp>,
}

fn common(job: &Job, download_url: Option<String>) -> Common {
    let running = job.state == JobState::Running;
    let to_i64 = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
    let p = &job.progress;
    Common {
        job_id: job.id.to_string(),
        owner: job.owner.clone(),
        state: state_to_pb(job.state) as i32,
        stage: stage_to_pb(p.stage) as i32,
        progress: p.percent.clamp(0.0, 100.0) as f32,
        frames_done: to_i64(p.frames_done),
        frames_total: to_i64(p.frames_total.unwrap_or(0)),
        current_fps: if running {
            p.fps.unwrap_or(0.0) as f32
        } else {
            0.0
        },
        eta_seconds: if job.state.is_terminal() {
            None
        } else {
            p.eta_seconds.map(|s| s as f32)
        },
        encoder: encoder_to_pb(p.encoder.as_deref()) as i32,
        create_time: Some(timestamp(job.created_at)),
        start_time: job.started_at.map(timestamp),
        finish_time: job.finished_at.map(timestamp),
        output: match (&job.output, job.state) {
            (Some(out), JobState::Succeeded) => Some(pb::RenderOutput {
                // An expired output has no link, whatever the caller passed.
                download_url: if out.expired_at.is_some() {
                    String::new()
                } else {
                    download_url.unwrap_or_default()
                },
                size_bytes: to_i64(out.size_bytes),
                duration_seconds: out.duration_seconds,
                expire_time: out.expires_at.map(timestamp),
                expired: out.expired_at.is_some(),
            }),
            _ => None,
        },
        failure: match (&job.failure, job.state) {
            (Some(f), JobState::Failed) => Some(failure_status(f)),
            _ => None,
        },
        update_time: Some(timestamp(job.updated_at)),
    }
}

/// `download_url` is the signed URL of a succeeded job's output (the caller signs it).
pub fn render_job(job: &Job, download_url: Option<String>) -> pb::RenderJob {
    let Common {
        job_id,
        owner,
        state,
        stage,
        progress,
        frames_done,
        frames_total,
        current_fps,
        eta_seconds,
        encoder,
        create_time,
        start_time,
        finish_time,
        output,
        failure,
        update_time,
    } = common(job, download_url);
    let options = JobOptions::from_json(&job.options).unwrap_or_default();
    pb::RenderJob {
        job_id,
        owner,
        state,
        stage,
        progress,
        frames_done,
        frames_total,
        current_fps,
        eta_seconds,
        encoder,
        create_time,
        start_time,
        finish_time,
        output,
        failure,
        update_time,
        request_id: job.request_id.clone().unwrap_or_default(),
        video_url: job.video_url.clone(),
        video_name: video_name(job),
        options: Some(options_to_pb(&options)),
        callback_url: job.callback_url.clone().unwrap_or_default(),
    }
}

pub fn render_status(job: &Job, download_url: Option<String>) -> pb::RenderStatus {
    let Common {
        job_id,
        owner,
        state,
        stage,
        progress,
        frames_done,
        frames_total,
        current_fps,
        eta_seconds,
        encoder,
        create_time,
        start_time,
        finish_time,
        output,
        failure,
        update_time,
    } = common(job, download_url);
    pb::RenderStatus {
        job_id,
        owner,
        state,
        stage,
        progress,
        frames_done,
        frames_total,
        current_fps,
        eta_seconds,
        encoder,
        create_time,
        start_time,
        finish_time,
        output,
        failure,
        update_time,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::job::{JobId, JobOutput, JobProgress};

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(seconds, 0).expect("time")
    }

    fn job(state: JobState) -> Job {
        let created = DateTime::<Utc>::from_timestamp(1_790_000_000, 250_000_000).expect("t");
        Job {
            id: JobId::generate(),
            owner: "alice".into(),
            request_id: Some("req-1".into()),
            video_url: "file:///media/talk.mp4?x=1".into(),
            video_name: None,
            scenario_json: "{}".into(),
            options: JobOptions {
                width: Some(1920),
                height: Some(1080),
                fps: Some(30),
                quality: Some(90),
                encoder: EncoderPreference::X264,
                format: OutputFormat::Mov,
            }
            .to_json(),
            state,
            progress: JobProgress {
                stage: Some(Stage::Rendering),
                percent: 42.5,
                frames_done: 51,
                frames_total: Some(120),
                fps: Some(60.0),
                eta_seconds: Some(1.15),
                encoder: Some("x264".into()),
            },
            created_at: created,
            updated_at: created + chrono::TimeDelta::seconds(3),
            started_at: Some(created + chrono::TimeDelta::seconds(2)),
            finished_at: None,
            failure: None,
            output: None,
            lease: None,
            attempts: 1,
            callback_url: Some("https://hooks.example.com/renderd".into()),
        }
    }

    #[test]
    fn a_running_job_carries_its_live_numbers() {
        let j = job(JobState::Running);
        let pb_job = render_job(&j, None);
        assert_eq!(pb_job.job_id, j.id.to_string());
        assert_eq!(pb_job.state, pb::JobState::Running as i32);
        assert_eq!(pb_job.stage, pb::Stage::Rendering as i32);
        assert_eq!(pb_job.progress, 42.5);
        assert_eq!((pb_job.frames_done, pb_job.frames_total), (51, 120));
        assert_eq!(pb_job.current_fps, 60.0);
        assert_eq!(pb_job.eta_seconds, Some(1.15));
        assert_eq!(pb_job.encoder, pb::Encoder::X264 as i32);
        assert_eq!(pb_job.video_name, "talk.mp4", "named after the URL's file");
        assert_eq!(pb_job.request_id, "req-1");
        assert_eq!(pb_job.callback_url, "https://hooks.example.com/renderd");
        let created = pb_job.create_time.expect("created");
        assert_eq!(
            (created.seconds, created.nanos),
            (1_790_000_000, 250_000_000)
        );
        assert_eq!(pb_job.update_time.expect("updated").seconds, 1_790_000_003);
        let options = pb_job.options.expect("options");
        assert_eq!(
            (options.width, options.height, options.fps, options.quality),
            (1920, 1080, 30, 90)
        );
        assert_eq!(options.encoder_preference, pb::Encoder::X264 as i32);
        assert_eq!(options.format, pb::OutputFormat::Mov as i32);
        assert!(pb_job.output.is_none() && pb_job.failure.is_none());
    }

    #[test]
    fn formats_and_encoders_convert_both_ways() {
        assert_eq!(
            format_from_pb(pb::OutputFormat::Unspecified),
            OutputFormat::Mp4
        );
        for format in OutputFormat::ALL {
            assert_eq!(format_from_pb(format_to_pb(format)), format);
        }
        assert_eq!(format_to_pb(OutputFormat::Webm), pb::OutputFormat::Webm);
        for preference in [
            EncoderPreference::Auto,
            EncoderPreference::Nvenc,
            EncoderPreference::X264,
            EncoderPreference::Vp9,
        ] {
            assert_eq!(
                encoder_preference_from_pb(encoder_preference_to_pb(preference)),
                preference
            );
        }
        assert_eq!(encoder_to_pb(Some("vp9")), pb::Encoder::Vp9);
        assert_eq!(encoder_to_pb(Some("nvenc")), pb::Encoder::Nvenc);
        assert_eq!(encoder_to_pb(None), pb::Encoder::Unspecified);

        // A webm job reports VP9 as the encoder used and WEBM in its options.
        let mut webm = job(JobState::Running);
        webm.options = JobOptions {
            format: OutputFormat::Webm,
            encoder: EncoderPreference::Auto,
            ..JobOptions::default()
        }
        .to_json();
        webm.progress.encoder = Some("vp9".into());
        let pb_job = render_job(&webm, None);
        assert_eq!(pb_job.encoder, pb::Encoder::Vp9 as i32);
        let options = pb_job.options.expect("options");
        assert_eq!(options.format, pb::OutputFormat::Webm as i32);
        assert_eq!(options.encoder_preference, pb::Encoder::Unspecified as i32);
    }

    #[test]
    fn ended_jobs_have_no_speed_or_eta_and_show_their_result() {
        let mut done = job(JobState::Succeeded);
        done.output = Some(JobOutput {
            path: "/srv/out/x.mp4".into(),
            size_bytes: 1234,
            duration_seconds: 4.0,
            expires_at: Some(at(1_790_600_000)),
            expired_at: None,
        });
        let status = render_status(&done, Some("http://h/downloads/x.mp4?sig=s".into()));
        assert_eq!(status.current_fps, 0.0);
        assert_eq!(status.eta_seconds, None);
        let output = status.output.expect("output");
        assert_eq!(output.size_bytes, 1234);
        assert!(output.download_url.ends_with("sig=s"), "path never leaks");
        assert_eq!(output.expire_time.expect("expiry").seconds, 1_790_600_000);
        assert!(!output.expired);

        // After retention: the record stays, says expired, and has no link.
        if let Some(out) = done.output.as_mut() {
            out.expired_at = Some(at(1_790_600_100));
        }
        let output = render_job(&done, Some("http://h/stale".into()))
            .output
            .expect("output");
        assert!(output.expired);
        assert!(output.download_url.is_empty());
        assert_eq!(output.size_bytes, 1234);

        let mut failed = job(JobState::Failed);
        failed.failure = Some(JobFailure {
            code: "SCENARIO_PARSE_ERROR".into(),
            message: "cues[0]: bad".into(),
        });
        let failure = render_status(&failed, None).failure.expect("failure");
        assert_eq!(failure.code, tonic::Code::InvalidArgument as i32);
        assert_eq!(failure.details.len(), 1);
        assert_eq!(failure.details[0].type_url, ERROR_INFO_TYPE_URL);
        let info = tonic_types::pb::ErrorInfo::decode(failure.details[0].value.as_slice())
            .expect("ErrorInfo");
        assert_eq!(info.reason, "SCENARIO_PARSE_ERROR");
        assert_eq!(info.domain, ERROR_DOMAIN);
    }

    #[test]
    fn failure_codes_map_to_canonical_codes() {
        for (code, grpc) in [
            ("INVALID_VIDEO_URL", tonic::Code::InvalidArgument),
            ("JOB_CANCELLED", tonic::Code::Cancelled),
            ("RENDERING_TIMEOUT", tonic::Code::DeadlineExceeded),
            ("GPU_MEMORY_INSUFFICIENT", tonic::Code::ResourceExhausted),
            ("STORAGE_ACCESS_ERROR", tonic::Code::Unavailable),
            ("FFMPEG_ERROR", tonic::Code::Internal),
        ] {
            assert_eq!(failure_grpc_code(code), grpc, "{code}");
        }
    }

    #[test]
    fn states_round_trip_and_unspecified_is_none() {
        for s in [
            JobState::Queued,
            JobState::Running,
            JobState::Succeeded,
            JobState::Failed,
            JobState::Cancelled,
        ] {
            assert_eq!(state_from_pb(state_to_pb(s)), Some(s));
        }
        assert_eq!(state_from_pb(pb::JobState::Unspecified), None);
    }
}
