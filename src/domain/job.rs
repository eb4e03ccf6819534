//! Render jobs: identity, life-cycle states and their legal transitions, stages, and the job record.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};

/// A job's identifier: a hyphenated lowercase UUID v7, so ids sort roughly by creation time.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct JobId(String);

/// A string that is not a job id.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a job id (expected a UUID such as 0190f3a4-8c2e-7b1d-9f00-123456789abc)")]
pub struct ParseJobIdError(pub String);

impl JobId {
    /// A fresh, time-ordered id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().as_hyphenated().to_string())
    }

    /// Parses a client-supplied id; any UUID spelling is accepted and normalised to lowercase hyphenated.
    pub fn parse(text: &str) -> Result<Self, ParseJobIdError> {
        uuid::Uuid::try_parse(text.trim())
            .map(|id| Self(id.as_hyphenated().to_string()))
            .map_err(|_| ParseJobIdError(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for JobId {
    type Err = ParseJobIdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// Where a job is in its life. `Succeeded`, `Failed` and `Cancelled` are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
}

/// A stored or wire string that names no job state or stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{value}'")]
pub struct ParseJobEnumError {
    pub what: &'static str,
    pub value: String,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Queued,
        JobState::Running,
        JobState::Succeeded,
        JobState::Failed,
        JobState::Cancelled,
    ];

    /// The spelling used in the database and in the proto enum (without its prefix).
    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Queued => "QUEUED",
            JobState::Running => "RUNNING",
            JobState::Succeeded => "SUCCEEDED",
            JobState::Failed => "FAILED",
            JobState::Cancelled => "CANCELLED",
        }
    }

    pub fn is_terminal(self) -> bool {
        match self {
            JobState::Queued | JobState::Running => false,
            JobState::Succeeded | JobState::Failed | JobState::Cancelled => true,
        }
    }

    /// Whether a job may move from `self` to `next`. Staying put is not a transition.
    ///
    /// `Running → Queued` is how a replica that shuts down hands an unfinished render back;
    /// a queued job can only be cancelled or started, so failures are always recorded by a worker.
    pub fn can_transition_to(self, next: JobState) -> bool {
        use JobState::*;
        match (self, next) {
            (Queued, Running) | (Queued, Cancelled) => true,
            (Running, Succeeded) | (Running, Failed) | (Running, Cancelled) | (Running, Queued) => {
                true
            }
            (Queued, Queued | Succeeded | Failed) | (Running, Running) => false,
            (Succeeded | Failed | Cancelled, _) => false,
        }
    }

    /// Whether a job in this state uses up the owner's daily and monthly allowance.
    pub fn counts_toward_quota(self) -> bool {
        self != JobState::Cancelled
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for JobState {
    type Err = ParseJobEnumError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        JobState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| ParseJobEnumError {
                what: "job state",
                value: s.to_owned(),
            })
    }
}

/// What a running job is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Stage {
    Fetching,
    Rendering,
    Encoding,
    Finalizing,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::Fetching,
        Stage::Rendering,
        Stage::Encoding,
        Stage::Finalizing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Fetching => "FETCHING",
            Stage::Rendering => "RENDERING",
            Stage::Encoding => "ENCODING",
            Stage::Finalizing => "FINALIZING",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Stage {
    type Err = ParseJobEnumError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Stage::ALL
            .into_iter()
            .find(|stage| stage.as_str() == s)
            .ok_or_else(|| ParseJobEnumError {
                what: "job stage",
                value: s.to_owned(),
            })
    }
}

/// Why a job failed: a contract job code (`../shared/CONTRACT.md`) and a sentence for people.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobFailure {
    pub code: String,
    pub message: String,
}

/// The finished file of a succeeded job.
#[derive(Clone, Debug, PartialEq)]
pub struct JobOutput {
    /// Path of the MP4 on the output volume, or `s3://bucket/key` for a bucket output.
    pub path: String,
    pub size_bytes: u64,
    pub duration_seconds: f64,
    /// When retention deletes the output (`None`: kept until deleted by hand).
    pub expires_at: Option<DateTime<Utc>>,
    /// When retention deleted it; the job then has no download link.
    pub expired_at: Option<DateTime<Utc>>,
}

/// Who holds a running job and until when.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub owner: String,
    pub expires_at: DateTime<Utc>,
}

/// Live numbers of a job, as last persisted.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct JobProgress {
    pub stage: Option<Stage>,
    /// 0–100; never decreases.
    pub percent: f64,
    pub frames_done: u64,
    pub frames_total: Option<u64>,
    pub fps: Option<f64>,
    pub eta_seconds: Option<f64>,
    /// The encoder actually used (`nvenc`, `x264`).
    pub encoder: Option<String>,
}

/// Which video encoder a job asks for. `Nvenc` is a preference: where the GPU has no NVENC the
/// job falls back to x264 (datacenter GPUs lack the encoder block); `X264` forces x264. `Vp9`
/// (libvpx-vp9) is the only encoder of webm outputs, and only of those.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EncoderPreference {
    #[default]
    Auto,
    Nvenc,
    X264,
    Vp9,
}

impl EncoderPreference {
    /// Whether this preference can be honoured for `format`: H.264 encoders write mp4 and mov,
    /// VP9 writes webm; `Auto` fits every format.
    pub fn fits(self, format: OutputFormat) -> bool {
        match (self, format) {
            (EncoderPreference::Auto, _) => true,
            (
                EncoderPreference::Nvenc | EncoderPreference::X264,
                OutputFormat::Mp4 | OutputFormat::Mov,
            ) => true,
            (EncoderPreference::Nvenc | EncoderPreference::X264, OutputFormat::Webm) => false,
            (EncoderPreference::Vp9, OutputFormat::Webm) => true,
            (EncoderPreference::Vp9, OutputFormat::Mp4 | OutputFormat::Mov) => false,
        }
    }
}

/// The container a job's output is written in: MP4 and QuickTime MOV hold H.264 + AAC, WebM
/// holds VP9 + Opus.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    #[default]
    Mp4,
    Mov,
    Webm,
}

impl OutputFormat {
    pub const ALL: [OutputFormat; 3] = [OutputFormat::Mp4, OutputFormat::Mov, OutputFormat::Webm];

    /// The spelling of the REST contract and the stored options: `mp4`, `mov`, `webm`.
    pub fn as_str(self) -> &'static str {
        match self {
            OutputFormat::Mp4 => "mp4",
            OutputFormat::Mov => "mov",
            OutputFormat::Webm => "webm",
        }
    }

    /// The output file's extension (without the dot).
    pub fn extension(self) -> &'static str {
        self.as_str()
    }

    /// The `Content-Type` of a download.
    pub fn mime_type(self) -> &'static str {
        match self {
            OutputFormat::Mp4 => "video/mp4",
            OutputFormat::Mov => "video/quicktime",
            OutputFormat::Webm => "video/webm",
        }
    }

    /// The format a file extension names (any case, without the dot), if any.
    pub fn from_extension(extension: &str) -> Option<Self> {
        OutputFormat::ALL
            .into_iter()
            .find(|format| format.extension().eq_ignore_ascii_case(extension))
    }

    fn is_mp4(&self) -> bool {
        *self == OutputFormat::Mp4
    }
}

impl fmt::Display for OutputFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OutputFormat {
    type Err = ParseJobEnumError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        OutputFormat::ALL
            .into_iter()
            .find(|format| format.as_str() == s)
            .ok_or_else(|| ParseJobEnumError {
                what: "output format (expected mp4, mov or webm)",
                value: s.to_owned(),
            })
    }
}

/// The render options a job was created with, stored as JSON in the job row. `None` keeps the
/// source's value (size, fps) or the server's default (quality).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct JobOptions {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub width: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fps: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    pub encoder: EncoderPreference,
    /// Absent in rows written before formats existed (they are mp4); not written for mp4, so
    /// replicas of the previous version still read every mp4 job during a rolling upgrade.
    #[serde(skip_serializing_if = "OutputFormat::is_mp4")]
    pub format: OutputFormat,
}

impl JobOptions {
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_else(|_| serde_json::json!({}))
    }

    /// Reads the stored options; a row written by a newer version with unknown fields fails.
    pub fn from_json(value: &serde_json::Value) -> Result<Self, serde_json::Error> {
        serde_json::from_value(value.clone())
    }
}

/// A render job as stored.
#[derive(Clone, Debug, PartialEq)]
pub struct Job {
    pub id: JobId,
    pub owner: String,
    pub request_id: Option<String>,
    pub video_url: String,
    pub video_name: Option<String>,
    pub scenario_json: String,
    /// Render options (width, height, fps, quality, encoder preference, format) as JSON.
    pub options: serde_json::Value,
    pub state: JobState,
    pub progress: JobProgress,
    pub created_at: DateTime<Utc>,
    /// When any field last changed (lease renewals aside).
    pub updated_at: DateTime<Utc>,
    pub started_at: Option<DateTime<Utc>>,
    pub finished_at: Option<DateTime<Utc>>,
    pub failure: Option<JobFailure>,
    pub output: Option<JobOutput>,
    pub lease: Option<Lease>,
    /// How many times a worker has claimed the job.
    pub attempts: u32,
    /// Where the job's terminal state is announced by a signed webhook, if anywhere.
    pub callback_url: Option<String>,
}

/// How a worker ends a job.
#[derive(Clone, Debug, PartialEq)]
pub enum JobOutcome {
    Succeeded(JobOutput),
    Failed(JobFailure),
    Cancelled,
}

impl JobOutcome {
    pub fn state(&self) -> JobState {
        match self {
            JobOutcome::Succeeded(_) => JobState::Succeeded,
            JobOutcome::Failed(_) => JobState::Failed,
            JobOutcome::Cancelled => JobState::Cancelled,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transition_table_is_exactly_the_legal_one() {
        use JobState::*;
        let legal = [
            (Queued, Running),
            (Queued, Cancelled),
            (Running, Succeeded),
            (Running, Failed),
            (Running, Cancelled),
            (Running, Queued),
        ];
        for from in JobState::ALL {
            for to in JobState::ALL {
                assert_eq!(
                    from.can_transition_to(to),
                    legal.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
    }

    #[test]
    fn terminal_states_are_final() {
        for from in JobState::ALL.into_iter().filter(|s| s.is_terminal()) {
            assert!(JobState::ALL
                .into_iter()
                .all(|to| !from.can_transition_to(to)));
        }
        assert!(!JobState::Queued.is_terminal());
        assert!(!JobState::Running.is_terminal());
    }

    #[test]
    fn only_cancelled_jobs_do_not_count_toward_quota() {
        let counted: Vec<_> = JobState::ALL
            .into_iter()
            .filter(|s| !s.counts_toward_quota())
            .collect();
        assert_eq!(counted, vec![JobState::Cancelled]);
    }

    #[test]
    fn states_and_stages_round_trip_through_strings() {
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>(), Ok(state));
        }
        for stage in Stage::ALL {
            assert_eq!(stage.as_str().parse::<Stage>(), Ok(stage));
        }
        assert!("queued".parse::<JobState>().is_err());
        assert!("PAINTING".parse::<Stage>().is_err());
    }

    #[test]
    fn job_ids_are_uuids_and_sort_by_creation() {
        let first = JobId::generate();
        let second = JobId::generate();
        assert!(first < second, "{first} then {second}");
        assert_eq!(JobId::parse(first.as_str()), Ok(first.clone()));
        let upper = first.as_str().to_uppercase();
        assert_eq!(JobId::parse(&upper), Ok(first));
        assert!(JobId::parse("not-a-job").is_err());
        assert!(JobId::parse("").is_err());
    }

    #[test]
    fn outcome_names_its_state() {
        assert_eq!(JobOutcome::Cancelled.state(), JobState::Cancelled);
        let failure = JobFailure {
            code: "FFMPEG_ERROR".into(),
            message: "x".into(),
        };
        assert_eq!(JobOutcome::Failed(failure).state(), JobState::Failed);
    }

    #[test]
    fn job_options_round_trip_through_json() {
        let options = JobOptions {
            width: Some(1280),
            height: Some(720),
            fps: None,
            quality: Some(80),
            encoder: EncoderPreference::Nvenc,
            format: OutputFormat::Mp4,
        };
        let json = options.to_json();
        assert_eq!(
            json,
            serde_json::json!({"width": 1280, "height": 720, "quality": 80, "encoder": "nvenc"})
        );
        assert_eq!(JobOptions::from_json(&json).expect("parse"), options);
        assert_eq!(
            JobOptions::from_json(&serde_json::json!({})).expect("empty"),
            JobOptions::default()
        );
        assert!(JobOptions::from_json(&serde_json::json!({"container": "webm"})).is_err());
        assert!(JobOptions::from_json(&serde_json::json!({"format": "avi"})).is_err());
    }

    #[test]
    fn format_is_stored_unless_mp4_and_old_rows_read_as_mp4() {
        let webm = JobOptions {
            quality: Some(70),
            encoder: EncoderPreference::Vp9,
            format: OutputFormat::Webm,
            ..JobOptions::default()
        };
        let json = webm.to_json();
        assert_eq!(
            json,
            serde_json::json!({"quality": 70, "encoder": "vp9", "format": "webm"})
        );
        assert_eq!(JobOptions::from_json(&json).expect("parse"), webm);
        let mov = serde_json::json!({"encoder": "x264", "format": "mov"});
        assert_eq!(
            JobOptions::from_json(&mov).expect("mov").format,
            OutputFormat::Mov
        );
        // A row written before formats existed.
        let old = serde_json::json!({"width": 640, "encoder": "auto"});
        assert_eq!(
            JobOptions::from_json(&old).expect("old row").format,
            OutputFormat::Mp4
        );
        assert!(!JobOptions::default()
            .to_json()
            .to_string()
            .contains("format"));
    }

    #[test]
    fn output_formats_parse_and_name_their_file_type() {
        for format in OutputFormat::ALL {
            assert_eq!(format.as_str().parse::<OutputFormat>(), Ok(format));
            assert_eq!(format.to_string(), format.as_str());
            assert_eq!(
                OutputFormat::from_extension(format.extension()),
                Some(format)
            );
        }
        let table: Vec<_> = OutputFormat::ALL
            .into_iter()
            .map(|f| (f.extension(), f.mime_type()))
            .collect();
        assert_eq!(
            table,
            [
                ("mp4", "video/mp4"),
                ("mov", "video/quicktime"),
                ("webm", "video/webm")
            ]
        );
        assert_eq!(
            OutputFormat::from_extension("WEBM"),
            Some(OutputFormat::Webm)
        );
        assert_eq!(OutputFormat::from_extension("mkv"), None);
        let err = "MP4".parse::<OutputFormat>().expect_err("case matters");
        assert!(err.to_string().contains("'MP4'"), "{err}");
        assert!("".parse::<OutputFormat>().is_err());
        assert_eq!(OutputFormat::default(), OutputFormat::Mp4);
    }

    #[test]
    fn encoder_preferences_fit_their_formats() {
        use EncoderPreference::*;
        use OutputFormat::*;
        for format in OutputFormat::ALL {
            assert!(Auto.fits(format));
        }
        for h264 in [Nvenc, X264] {
            assert!(h264.fits(Mp4) && h264.fits(Mov) && !h264.fits(Webm));
        }
        assert!(Vp9.fits(Webm) && !Vp9.fits(Mp4) && !Vp9.fits(Mov));
    }
}
