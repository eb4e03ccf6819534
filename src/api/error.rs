//! The errors a render request can fail with, classified once and independent of the face
//! that reports them: the contract's reason codes (`RENDER_QUOTA_DAILY_EXCEEDED`, …), the
//! user-facing sentence in Korean or English, and how long a refused caller should wait.
//! `grpc::status` maps an [`ApiError`] to a `tonic::Status`, `rest::error` to an HTTP status and
//! the editor's JSON error body; nothing here knows either.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::job::JobState;
use crate::quota::{RateLimited, Windows};
use crate::scene::ScenarioError;
use crate::store::{QuotaKind, StoreError, StoreErrorKind};

/// How long a caller at the concurrent limit is told to wait before trying again.
pub const CONCURRENT_RETRY_AFTER: Duration = Duration::from_secs(5);
/// How long a caller is told to wait when the service is unavailable.
pub const UNAVAILABLE_RETRY_AFTER: Duration = Duration::from_secs(2);
/// At most this many field problems are named in the (English, developer-facing) status message;
/// all of them are in `BadRequest`.
const MESSAGE_VIOLATIONS: usize = 5;

/// The language of the user-facing `LocalizedMessage`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Lang {
    #[default]
    English,
    Korean,
}

impl Lang {
    /// The BCP-47 tag put in `LocalizedMessage.locale`.
    pub fn locale(self) -> &'static str {
        match self {
            Lang::English => "en-US",
            Lang::Korean => "ko-KR",
        }
    }

    /// The caller's preferred supported language from an `accept-language` value: ranges are
    /// taken by descending q-value (ties in the order given), `q=0` and malformed ranges are
    /// skipped, and the first Korean or English range wins; English when none does.
    pub fn from_accept_language(value: &str) -> Lang {
        let mut ranges: Vec<(&str, f32)> = value
            .split(',')
            .filter_map(|item| {
                let mut parts = item.split(';');
                let tag = parts.next()?.trim();
                let mut q = 1.0_f32;
                for param in parts {
                    let (key, value) = param.split_once('=')?;
                    if key.trim().eq_ignore_ascii_case("q") {
                        q = value
                            .trim()
                            .parse()
                            .ok()
                            .filter(|q| (0.0..=1.0).contains(q))?;
                    }
                }
                (!tag.is_empty() && q > 0.0).then_some((tag, q))
            })
            .collect();
        ranges.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranges
            .into_iter()
            .find_map(|(tag, _)| {
                let primary = tag.split(['-', '_']).next().unwrap_or(tag);
                if primary.eq_ignore_ascii_case("ko") {
                    Some(Lang::Korean)
                } else if primary.eq_ignore_ascii_case("en") {
                    Some(Lang::English)
                } else {
                    None
                }
            })
            .unwrap_or_default()
    }

    /// From every `accept-language` header of an HTTP request.
    pub fn from_headers(headers: &http::HeaderMap) -> Lang {
        Self::from_values(
            headers
                .get_all(http::header::ACCEPT_LANGUAGE)
                .iter()
                .filter_map(|v| v.to_str().ok()),
        )
    }

    /// From the values of every `accept-language` header line (or metadata entry), in order.
    pub fn from_values<'a>(values: impl Iterator<Item = &'a str>) -> Lang {
        Self::from_accept_language(&values.collect::<Vec<_>>().join(","))
    }
}

/// One invalid request field: a path such as `options.width` or `scenario_json.cues[3].start`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub field: String,
    pub description: String,
}

/// The job operation a failed precondition refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum JobAction {
    Cancel,
    Start,
    Finish,
    Requeue,
}

impl JobAction {
    pub fn as_str(self) -> &'static str {
        match self {
            JobAction::Cancel => "cancel",
            JobAction::Start => "start",
            JobAction::Finish => "finish",
            JobAction::Requeue => "requeue",
        }
    }

    /// The action that moves a job into `state`.
    pub fn into_state(state: JobState) -> JobAction {
        match state {
            JobState::Cancelled => JobAction::Cancel,
            JobState::Running => JobAction::Start,
            JobState::Succeeded | JobState::Failed => JobAction::Finish,
            JobState::Queued => JobAction::Requeue,
        }
    }
}

/// Everything an RPC can fail with.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApiError {
    #[error("authentication failed: {detail}")]
    Unauthenticated { detail: String },
    #[error("permission denied: {detail}")]
    Forbidden { detail: String },
    #[error("invalid request: {}", describe_violations(violations))]
    Validation { violations: Vec<Violation> },
    #[error("{kind} quota exceeded: {used} of {limit} used")]
    QuotaExceeded {
        kind: QuotaKind,
        used: u64,
        limit: u64,
        /// The user whose allowance it is, for `QuotaFailure.subject`; see
        /// [`ApiError::with_quota_context`].
        user: Option<String>,
        resets_at: Option<DateTime<Utc>>,
    },
    #[error("rate limit exceeded; retry in {:.1} s", retry_after.as_secs_f64())]
    RateLimited { retry_after: Duration },
    #[error("job {job_id} not found")]
    JobNotFound { job_id: String },
    #[error("cannot {} job {job_id}: it is {state}", action.as_str())]
    FailedPrecondition {
        job_id: String,
        state: JobState,
        action: JobAction,
    },
    #[error("the page token is not one this listing handed out")]
    InvalidPageToken,
    #[error("service unavailable: {detail}")]
    Unavailable { detail: String },
    #[error("internal error: {detail}")]
    Internal { detail: String },
}

fn describe_violations(violations: &[Violation]) -> String {
    let mut text = violations
        .iter()
        .take(MESSAGE_VIOLATIONS)
        .map(|v| format!("{}: {}", v.field, v.description))
        .collect::<Vec<_>>()
        .join("; ");
    if violations.len() > MESSAGE_VIOLATIONS {
        text.push_str(&format!(
            "; and {} more",
            violations.len() - MESSAGE_VIOLATIONS
        ));
    }
    text
}

/// The request field of a scenario JSON path (`$` is the whole scenario).
pub fn scenario_field(path: &str) -> String {
    let path = path.strip_prefix('$').unwrap_or(path);
    let path = path.strip_prefix('.').unwrap_or(path);
    if path.is_empty() {
        "scenario_json".to_owned()
    } else if path.starts_with('[') {
        format!("scenario_json{path}")
    } else {
        format!("scenario_json.{path}")
    }
}

/// Whole seconds, rounded up (a client told to wait 0.2 s waits 1 s).
pub fn ceil_seconds(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0))
}

/// RFC 3339 in UTC to the second, as error details and the REST face spell times.
pub fn rfc3339(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl ApiError {
    /// Field problems, each `(field path, description)`, with the path as the client names the
    /// field: `options.width`, `video_url`, `scenario_json.cues[3].start`.
    pub fn validation(problems: impl IntoIterator<Item = (String, String)>) -> Self {
        ApiError::Validation {
            violations: problems
                .into_iter()
                .map(|(field, description)| Violation { field, description })
                .collect(),
        }
    }

    /// Adds what the store cannot know to a quota error: whose allowance it is and when it is
    /// renewed. Other errors are returned unchanged.
    pub fn with_quota_context(self, user: &str, windows: &Windows) -> Self {
        match self {
            ApiError::QuotaExceeded {
                kind, used, limit, ..
            } => ApiError::QuotaExceeded {
                kind,
                used,
                limit,
                user: Some(user.to_owned()),
                resets_at: windows.resets_at(kind),
            },
            other => other,
        }
    }

    /// The contract's error code, `ErrorInfo.reason`.
    pub fn reason(&self) -> &'static str {
        match self {
            ApiError::Unauthenticated { .. } => "RENDER_AUTH_ERROR",
            ApiError::Forbidden { .. } => "RENDER_FORBIDDEN",
            ApiError::Validation { .. } => "RENDER_VALIDATION_FAILED",
            ApiError::QuotaExceeded { kind, .. } => match kind {
                QuotaKind::Daily => "RENDER_QUOTA_DAILY_EXCEEDED",
                QuotaKind::Monthly => "RENDER_QUOTA_MONTHLY_EXCEEDED",
                QuotaKind::Concurrent => "RENDER_QUOTA_CONCURRENT_EXCEEDED",
            },
            ApiError::RateLimited { .. } => "RENDER_RATE_LIMIT_EXCEEDED",
            ApiError::JobNotFound { .. } => "RENDER_JOB_NOT_FOUND",
            ApiError::FailedPrecondition { action, .. } => match action {
                JobAction::Cancel => "RENDER_JOB_NOT_CANCELLABLE",
                JobAction::Start | JobAction::Finish | JobAction::Requeue => {
                    "RENDER_JOB_STATE_CONFLICT"
                }
            },
            ApiError::InvalidPageToken => "RENDER_INVALID_PAGE_TOKEN",
            ApiError::Unavailable { .. } => "RENDER_UNAVAILABLE",
            ApiError::Internal { .. } => "RENDER_INTERNAL_ERROR",
        }
    }

    /// How long the caller should wait before the same request can succeed, as of `now`:
    /// the rate limiter's delay, a fixed pause at the concurrent limit or when the service is
    /// unavailable, the time to the next daily or monthly window. `None` when waiting does not
    /// help (or the reset is unknown or already past).
    pub fn retry_after(&self, now: DateTime<Utc>) -> Option<Duration> {
        match self {
            ApiError::RateLimited { retry_after } => Some(*retry_after),
            ApiError::QuotaExceeded {
                kind, resets_at, ..
            } => match kind {
                QuotaKind::Concurrent => Some(CONCURRENT_RETRY_AFTER),
                QuotaKind::Daily | QuotaKind::Monthly => resets_at
                    .and_then(|at| (at - now).to_std().ok())
                    .filter(|wait| !wait.is_zero()),
            },
            ApiError::Unavailable { .. } => Some(UNAVAILABLE_RETRY_AFTER),
            ApiError::Unauthenticated { .. }
            | ApiError::Forbidden { .. }
            | ApiError::Validation { .. }
            | ApiError::JobNotFound { .. }
            | ApiError::FailedPrecondition { .. }
            | ApiError::InvalidPageToken
            | ApiError::Internal { .. } => None,
        }
    }

    /// The developer-facing message a client may see: the error itself, with the reset time
    /// of a quota, and nothing of what an internal or unavailable error knows about the
    /// server (paths, database URLs).
    pub fn public_message(&self) -> String {
        match self {
            ApiError::QuotaExceeded {
                resets_at: Some(at),
                ..
            } => format!("{self}; resets at {}", rfc3339(*at)),
            ApiError::Unavailable { .. } => {
                "the render service is temporarily unavailable; retry later".to_owned()
            }
            ApiError::Internal { .. } => "internal error".to_owned(),
            ApiError::Unauthenticated { .. }
            | ApiError::Forbidden { .. }
            | ApiError::Validation { .. }
            | ApiError::QuotaExceeded { .. }
            | ApiError::RateLimited { .. }
            | ApiError::JobNotFound { .. }
            | ApiError::FailedPrecondition { .. }
            | ApiError::InvalidPageToken => self.to_string(),
        }
    }

    /// The sentence shown to the user, in `lang`.
    pub fn localized(&self, lang: Lang) -> String {
        match (self, lang) {
            (ApiError::Unauthenticated { .. }, Lang::English) => {
                "Your sign-in could not be verified. Please sign in again.".into()
            }
            (ApiError::Unauthenticated { .. }, Lang::Korean) => {
                "인증에 실패했습니다. 다시 로그인해 주세요.".into()
            }
            (ApiError::Forbidden { .. }, Lang::English) => {
                "You do not have permission to do this.".into()
            }
            (ApiError::Forbidden { .. }, Lang::Korean) => {
                "이 작업을 수행할 권한이 없습니다.".into()
            }
            (ApiError::Validation { violations }, Lang::English) => format!(
                "The render request has {} invalid value(s). Please check it and try again.",
                violations.len()
            ),
            (ApiError::Validation { violations }, Lang::Korean) => format!(
                "렌더링 요청에 잘못된 값이 {}건 있습니다. 확인 후 다시 시도해 주세요.",
                violations.len()
            ),
            (ApiError::QuotaExceeded { kind, limit, .. }, Lang::English) => match kind {
                QuotaKind::Daily => {
                    format!("You have used all {limit} renders allowed today.")
                }
                QuotaKind::Monthly => {
                    format!("You have used all {limit} renders allowed this month.")
                }
                QuotaKind::Concurrent => format!(
                    "You can run at most {limit} renders at once. \
                     Please wait for one to finish."
                ),
            },
            (ApiError::QuotaExceeded { kind, limit, .. }, Lang::Korean) => match kind {
                QuotaKind::Daily => format!("오늘 렌더링 한도({limit}회)를 모두 사용했습니다."),
                QuotaKind::Monthly => {
                    format!("이번 달 렌더링 한도({limit}회)를 모두 사용했습니다.")
                }
                QuotaKind::Concurrent => format!(
                    "동시에 진행할 수 있는 렌더링은 {limit}개까지입니다. \
                     진행 중인 작업이 끝난 뒤 다시 시도해 주세요."
                ),
            },
            (ApiError::RateLimited { retry_after }, Lang::English) => format!(
                "Too many requests. Please try again in {} seconds.",
                ceil_seconds(*retry_after).max(1)
            ),
            (ApiError::RateLimited { retry_after }, Lang::Korean) => format!(
                "요청이 너무 많습니다. {}초 후에 다시 시도해 주세요.",
                ceil_seconds(*retry_after).max(1)
            ),
            (ApiError::JobNotFound { .. }, Lang::English) => {
                "The render job could not be found.".into()
            }
            (ApiError::JobNotFound { .. }, Lang::Korean) => {
                "렌더링 작업을 찾을 수 없습니다.".into()
            }
            (ApiError::FailedPrecondition { state, action, .. }, Lang::English) => {
                let state = match state {
                    JobState::Queued => "is still queued",
                    JobState::Running => "is still running",
                    JobState::Succeeded => "has already finished",
                    JobState::Failed => "has already failed",
                    JobState::Cancelled => "has already been cancelled",
                };
                let action = match action {
                    JobAction::Cancel => "cancelled",
                    JobAction::Start => "started",
                    JobAction::Finish => "finished",
                    JobAction::Requeue => "queued again",
                };
                format!("The render job {state}, so it cannot be {action}.")
            }
            (ApiError::FailedPrecondition { state, action, .. }, Lang::Korean) => {
                let state = match state {
                    JobState::Queued => "대기 중",
                    JobState::Running => "진행 중",
                    JobState::Succeeded => "완료",
                    JobState::Failed => "실패",
                    JobState::Cancelled => "취소",
                };
                let action = match action {
                    JobAction::Cancel => "취소",
                    JobAction::Start => "시작",
                    JobAction::Finish => "완료 처리",
                    JobAction::Requeue => "다시 대기열에 등록",
                };
                format!("이미 {state} 상태인 렌더링 작업은 {action}할 수 없습니다.")
            }
            (ApiError::InvalidPageToken, Lang::English) => {
                "The page token is not valid. Please start again from the first page.".into()
            }
            (ApiError::InvalidPageToken, Lang::Korean) => {
                "페이지 토큰이 올바르지 않습니다. 첫 페이지부터 다시 조회해 주세요.".into()
            }
            (ApiError::Unavailable { .. }, Lang::English) => {
                "The render service is temporarily unavailable. Please try again shortly.".into()
            }
            (ApiError::Unavailable { .. }, Lang::Korean) => {
                "렌더링 서비스를 일시적으로 사용할 수 없습니다. 잠시 후 다시 시도해 주세요.".into()
            }
            (ApiError::Internal { .. }, Lang::English) => {
                "Something went wrong on our side. Please try again later.".into()
            }
            (ApiError::Internal { .. }, Lang::Korean) => {
                "서버 내부 오류가 발생했습니다. 잠시 후 다시 시도해 주세요.".into()
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err.kind() {
            StoreErrorKind::Unavailable => ApiError::Unavailable {
                detail: err.to_string(),
            },
            StoreErrorKind::NotFound => match err {
                StoreError::NotFound(id) => ApiError::JobNotFound {
                    job_id: id.to_string(),
                },
                other => ApiError::Internal {
                    detail: other.to_string(),
                },
            },
            StoreErrorKind::FailedPrecondition => match err {
                StoreError::IllegalTransition { id, from, to } => ApiError::FailedPrecondition {
                    job_id: id.to_string(),
                    state: from,
                    action: JobAction::into_state(to),
                },
                other => ApiError::Internal {
                    detail: other.to_string(),
                },
            },
            // A worker's lease is an internal matter; no RPC should ever surface it.
            StoreErrorKind::LeaseLost | StoreErrorKind::Internal => ApiError::Internal {
                detail: err.to_string(),
            },
            StoreErrorKind::InvalidArgument => ApiError::InvalidPageToken,
            StoreErrorKind::QuotaExceeded(kind) => match err {
                StoreError::QuotaExceeded { used, limit, .. } => ApiError::QuotaExceeded {
                    kind,
                    used,
                    limit,
                    user: None,
                    resets_at: None,
                },
                other => ApiError::Internal {
                    detail: other.to_string(),
                },
            },
        }
    }
}

impl From<RateLimited> for ApiError {
    fn from(RateLimited { retry_after }: RateLimited) -> Self {
        ApiError::RateLimited { retry_after }
    }
}

/// Scenario problems as field violations under `scenario_json`.
impl From<ScenarioError> for ApiError {
    fn from(err: ScenarioError) -> Self {
        ApiError::validation(
            err.problems()
                .into_iter()
                .map(|problem| (scenario_field(&problem.path), problem.message)),
        )
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::domain::job::JobId;

    const KOREAN_FIRST: &str = "ko-KR,ko;q=0.9,en;q=0.8";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 17, 23, 59, 30).unwrap()
    }

    fn quota(kind: QuotaKind, resets_at: Option<DateTime<Utc>>) -> ApiError {
        ApiError::QuotaExceeded {
            kind,
            used: 2,
            limit: 2,
            user: Some("u".into()),
            resets_at,
        }
    }

    #[test]
    fn retry_after_is_known_only_where_waiting_helps() {
        let reset = Utc.with_ymd_and_hms(2025, 6, 18, 0, 0, 0).unwrap();
        let cases = [
            (
                ApiError::RateLimited {
                    retry_after: Duration::from_millis(2500),
                },
                Some(Duration::from_millis(2500)),
            ),
            (
                quota(QuotaKind::Concurrent, None),
                Some(CONCURRENT_RETRY_AFTER),
            ),
            (
                quota(QuotaKind::Daily, Some(reset)),
                Some(Duration::from_secs(30)),
            ),
            (
                quota(QuotaKind::Monthly, Some(reset)),
                Some(Duration::from_secs(30)),
            ),
            (quota(QuotaKind::Daily, None), None),
            (
                quota(
                    QuotaKind::Daily,
                    Some(now() - chrono::TimeDelta::seconds(1)),
                ),
                None,
            ),
            (
                ApiError::Unavailable {
                    detail: "db".into(),
                },
                Some(UNAVAILABLE_RETRY_AFTER),
            ),
            (ApiError::Internal { detail: "x".into() }, None),
            (ApiError::JobNotFound { job_id: "j".into() }, None),
            (ApiError::InvalidPageToken, None),
        ];
        for (error, want) in cases {
            assert_eq!(error.retry_after(now()), want, "{error:?}");
        }
        assert_eq!(ceil_seconds(Duration::from_millis(2500)), 3);
        assert_eq!(ceil_seconds(Duration::from_secs(4)), 4);
    }

    #[test]
    fn public_messages_hide_what_the_server_knows() {
        let secret = "postgres://renderd:hunter2@db/renderd";
        for error in [
            ApiError::Internal {
                detail: secret.into(),
            },
            ApiError::Unavailable {
                detail: secret.into(),
            },
        ] {
            assert!(!error.public_message().contains("hunter2"));
            for lang in [Lang::English, Lang::Korean] {
                assert!(!error.localized(lang).contains("hunter2"));
            }
        }
        let reset = Utc.with_ymd_and_hms(2025, 6, 18, 0, 0, 0).unwrap();
        assert_eq!(
            quota(QuotaKind::Daily, Some(reset)).public_message(),
            "daily quota exceeded: 2 of 2 used; resets at 2025-06-18T00:00:00Z"
        );
        assert_eq!(
            ApiError::JobNotFound { job_id: "j".into() }.public_message(),
            "job j not found"
        );
    }

    #[test]
    fn every_error_has_a_distinct_reason_and_both_languages() {
        let errors = [
            ApiError::Unauthenticated { detail: "x".into() },
            ApiError::Forbidden { detail: "x".into() },
            ApiError::validation([("options.fps".to_owned(), "too high".to_owned())]),
            quota(QuotaKind::Daily, None),
            quota(QuotaKind::Monthly, None),
            quota(QuotaKind::Concurrent, None),
            ApiError::RateLimited {
                retry_after: Duration::from_secs(1),
            },
            ApiError::JobNotFound { job_id: "j".into() },
            ApiError::FailedPrecondition {
                job_id: "j".into(),
                state: JobState::Succeeded,
                action: JobAction::Cancel,
            },
            ApiError::FailedPrecondition {
                job_id: "j".into(),
                state: JobState::Queued,
                action: JobAction::Finish,
            },
            ApiError::InvalidPageToken,
            ApiError::Unavailable { detail: "x".into() },
            ApiError::Internal { detail: "x".into() },
        ];
        let reasons: std::collections::HashSet<_> = errors.iter().map(|e| e.reason()).collect();
        assert_eq!(reasons.len(), errors.len());
        for error in &errors {
            let korean = error.localized(Lang::Korean);
            let english = error.localized(Lang::English);
            assert!(
                korean.chars().any(|c| ('가'..='힣').contains(&c)),
                "{korean}"
            );
            assert!(english.is_ascii(), "{english}");
            assert_ne!(korean, english);
        }
    }

    #[test]
    fn accept_language_picks_the_first_supported_by_quality() {
        for (header, want) in [
            (KOREAN_FIRST, Lang::Korean),
            ("ko", Lang::Korean),
            ("KO-kr", Lang::Korean),
            ("ko_KR", Lang::Korean),
            ("en", Lang::English),
            ("en-GB,ko;q=0.9", Lang::English),
            ("", Lang::English),
            ("*", Lang::English),
            ("fr-FR,fr;q=0.9,ko;q=0.5,en;q=0.4", Lang::Korean),
            ("en;q=0.5,ko;q=0.8", Lang::Korean),
            ("ko;q=0,en", Lang::English),
            ("ko;q=0", Lang::English),
            ("ko;q=abc,en;q=0.1", Lang::English),
            ("ko;q=1.5", Lang::English),
            ("de, ja", Lang::English),
            (" ko-KR ; q=0.7 , en ; q=0.6", Lang::Korean),
            ("kok,en", Lang::English),
            (";;,,", Lang::English),
        ] {
            assert_eq!(Lang::from_accept_language(header), want, "{header:?}");
        }
    }

    #[test]
    fn language_comes_from_every_accept_language_header() {
        let mut headers = http::HeaderMap::new();
        assert_eq!(Lang::from_headers(&headers), Lang::English);
        headers.insert(
            http::header::ACCEPT_LANGUAGE,
            http::HeaderValue::from_static(KOREAN_FIRST),
        );
        assert_eq!(Lang::from_headers(&headers), Lang::Korean);
        // Several header lines are one list.
        let mut split = http::HeaderMap::new();
        split.append(
            http::header::ACCEPT_LANGUAGE,
            http::HeaderValue::from_static("fr"),
        );
        split.append(
            http::header::ACCEPT_LANGUAGE,
            http::HeaderValue::from_static("ko;q=0.5"),
        );
        assert_eq!(Lang::from_headers(&split), Lang::Korean);
    }

    #[test]
    fn store_errors_are_classified_by_kind() {
        let id = JobId::generate();
        assert_eq!(
            ApiError::from(StoreError::NotFound(id.clone())),
            ApiError::JobNotFound {
                job_id: id.to_string()
            }
        );
        assert_eq!(
            ApiError::from(StoreError::IllegalTransition {
                id: id.clone(),
                from: JobState::Failed,
                to: JobState::Cancelled,
            }),
            ApiError::FailedPrecondition {
                job_id: id.to_string(),
                state: JobState::Failed,
                action: JobAction::Cancel,
            }
        );
        assert_eq!(
            ApiError::from(StoreError::QuotaExceeded {
                kind: QuotaKind::Monthly,
                used: 100,
                limit: 100,
            }),
            ApiError::QuotaExceeded {
                kind: QuotaKind::Monthly,
                used: 100,
                limit: 100,
                user: None,
                resets_at: None,
            }
        );
        assert_eq!(
            ApiError::from(StoreError::InvalidPageToken),
            ApiError::InvalidPageToken
        );
        assert!(matches!(
            ApiError::from(StoreError::LeaseLost {
                id: id.clone(),
                worker: "w1".into(),
                state: JobState::Cancelled,
            }),
            ApiError::Internal { .. }
        ));
        assert!(matches!(
            ApiError::from(StoreError::CorruptRow {
                id: "x".into(),
                problem: "bad".into(),
            }),
            ApiError::Internal { .. }
        ));
        assert!(matches!(
            ApiError::from(StoreError::Migrate(sea_orm::DbErr::Custom("down".into()))),
            ApiError::Unavailable { .. }
        ));
        assert!(matches!(
            ApiError::from(StoreError::Database(sea_orm::DbErr::Custom("boom".into()))),
            ApiError::Internal { .. }
        ));
    }
}
