//! The errors an RPC can return, classified once ([`ApiError`]) and mapped once
//! ([`ApiError::into_status`]) into a `tonic::Status` with the `google.rpc` richer error model:
//! exactly one `ErrorInfo` (reason = the contract's code, domain `render.v1`, lowerCamelCase
//! metadata), one `LocalizedMessage` in the caller's language, and the details that help
//! (`BadRequest`, `QuotaFailure`, `RetryInfo`, `PreconditionFailure`).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::domain::job::JobState;
use crate::quota::{RateLimited, Windows};
use crate::scene::ScenarioError;
use crate::store::{QuotaKind, StoreError, StoreErrorKind};

/// `ErrorInfo.domain` of every error renderd returns.
pub const ERROR_DOMAIN: &str = "render.v1";
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

    /// From every `accept-language` entry of a gRPC request's metadata.
    pub fn from_metadata(metadata: &MetadataMap) -> Lang {
        Self::from_values(
            metadata
                .get_all(http::header::ACCEPT_LANGUAGE.as_str())
                .iter()
                .filter_map(|v| v.to_str().ok()),
        )
    }

    fn from_values<'a>(values: impl Iterator<Item = &'a str>) -> Lang {
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

fn ceil_seconds(duration: Duration) -> u64 {
    duration
        .as_secs()
        .saturating_add(u64::from(duration.subsec_nanos() > 0))
}

fn rfc3339(at: DateTime<Utc>) -> String {
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

    /// The canonical gRPC code.
    pub fn code(&self) -> Code {
        match self {
            ApiError::Unauthenticated { .. } => Code::Unauthenticated,
            ApiError::Forbidden { .. } => Code::PermissionDenied,
            ApiError::Validation { .. } | ApiError::InvalidPageToken => Code::InvalidArgument,
            ApiError::QuotaExceeded { .. } | ApiError::RateLimited { .. } => {
                Code::ResourceExhausted
            }
            ApiError::JobNotFound { .. } => Code::NotFound,
            ApiError::FailedPrecondition { .. } => Code::FailedPrecondition,
            ApiError::Unavailable { .. } => Code::Unavailable,
            ApiError::Internal { .. } => Code::Internal,
        }
    }

    /// The status sent to the client, with the user-facing message in `lang`.
    pub fn into_status(self, lang: Lang) -> Status {
        self.into_status_at(lang, Utc::now())
    }

    /// [`ApiError::into_status`] as of `now` (which sets how long a daily or monthly quota's
    /// `RetryInfo` says to wait).
    pub fn into_status_at(self, lang: Lang, now: DateTime<Utc>) -> Status {
        let code = self.code();
        let reason = self.reason();
        let localized = self.localized(lang);
        let mut metadata: HashMap<String, String> = HashMap::new();
        let mut details = ErrorDetails::new();
        let message = match &self {
            ApiError::Unauthenticated { .. } | ApiError::Forbidden { .. } => self.to_string(),
            ApiError::Validation { violations } => {
                metadata.insert("violationCount".into(), violations.len().to_string());
                for v in violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
                self.to_string()
            }
            ApiError::QuotaExceeded {
                kind,
                used,
                limit,
                user,
                resets_at,
            } => {
                metadata.insert("quotaKind".into(), kind.to_string());
                metadata.insert("used".into(), used.to_string());
                metadata.insert("limit".into(), limit.to_string());
                if let Some(user) = user {
                    metadata.insert("userId".into(), user.clone());
                }
                let subject = match user {
                    Some(user) => format!("user:{user}"),
                    None => "user".to_owned(),
                };
                details.add_quota_failure_violation(
                    subject,
                    format!("{kind} allowance of {limit} renders used up ({used} used)"),
                );
                let retry_after = match kind {
                    QuotaKind::Concurrent => Some(CONCURRENT_RETRY_AFTER),
                    QuotaKind::Daily | QuotaKind::Monthly => resets_at
                        .and_then(|at| (at - now).to_std().ok())
                        .filter(|wait| !wait.is_zero()),
                };
                if let Some(wait) = retry_after {
                    metadata.insert("retryAfterSeconds".into(), ceil_seconds(wait).to_string());
                    details.set_retry_info(Some(wait));
                }
                match resets_at {
                    Some(at) => {
                        metadata.insert("resetsAt".into(), rfc3339(*at));
                        format!("{self}; resets at {}", rfc3339(*at))
                    }
                    None => self.to_string(),
                }
            }
            ApiError::RateLimited { retry_after } => {
                metadata.insert(
                    "retryAfterSeconds".into(),
                    ceil_seconds(*retry_after).to_string(),
                );
                details.set_retry_info(Some(*retry_after));
                self.to_string()
            }
            ApiError::JobNotFound { job_id } => {
                metadata.insert("jobId".into(), job_id.clone());
                self.to_string()
            }
            ApiError::FailedPrecondition {
                job_id,
                state,
                action,
            } => {
                metadata.insert("jobId".into(), job_id.clone());
                metadata.insert("state".into(), state.to_string());
                metadata.insert("action".into(), action.as_str().to_owned());
                details.add_precondition_failure_violation(
                    "JOB_STATE",
                    format!("job:{job_id}"),
                    format!(
                        "the job is {state}; {} is not allowed from this state",
                        action.as_str()
                    ),
                );
                self.to_string()
            }
            ApiError::InvalidPageToken => {
                details.add_bad_request_violation(
                    "page_token",
                    "not a token from a previous page of this listing",
                );
                self.to_string()
            }
            ApiError::Unavailable { detail } => {
                tracing::warn!(%detail, "RPC failed: service unavailable");
                metadata.insert(
                    "retryAfterSeconds".into(),
                    ceil_seconds(UNAVAILABLE_RETRY_AFTER).to_string(),
                );
                details.set_retry_info(Some(UNAVAILABLE_RETRY_AFTER));
                "the render service is temporarily unavailable; retry later".to_owned()
            }
            ApiError::Internal { detail } => {
                tracing::error!(%detail, "RPC failed: internal error");
                "internal error".to_owned()
            }
        };
        details.set_error_info(reason, ERROR_DOMAIN, metadata);
        details.set_localized_message(lang.locale(), localized);
        Status::with_error_details(code, message, details)
    }

    /// The sentence shown to the user.
    fn localized(&self, lang: Lang) -> String {
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

impl From<ApiError> for Status {
    /// For `?` in handlers that have no request language at hand: English.
    fn from(err: ApiError) -> Self {
        err.into_status(Lang::English)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use tonic_types::ErrorDetail;

    use crate::domain::job::JobId;
    use crate::scene::Problem;

    const KOREAN_FIRST: &str = "ko-KR,ko;q=0.9,en;q=0.8";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 17, 23, 59, 30).unwrap()
    }

    /// Everything a client can decode from a status.
    struct Decoded {
        code: Code,
        message: String,
        info: tonic_types::ErrorInfo,
        localized: tonic_types::LocalizedMessage,
        retry: Option<Duration>,
        quota: Vec<(String, String)>,
        bad_request: Vec<(String, String)>,
        precondition: Vec<(String, String, String)>,
    }

    fn decode(status: &Status) -> Decoded {
        let all = status.check_error_details_vec().expect("details decode");
        let infos: Vec<_> = all
            .iter()
            .filter_map(|d| match d {
                ErrorDetail::ErrorInfo(info) => Some(info.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(infos.len(), 1, "exactly one ErrorInfo: {all:?}");
        let localized: Vec<_> = all
            .iter()
            .filter_map(|d| match d {
                ErrorDetail::LocalizedMessage(m) => Some(m.clone()),
                _ => None,
            })
            .collect();
        assert_eq!(localized.len(), 1, "exactly one LocalizedMessage: {all:?}");
        let details = status.get_error_details();
        Decoded {
            code: status.code(),
            message: status.message().to_owned(),
            info: infos[0].clone(),
            localized: localized[0].clone(),
            retry: details.retry_info().and_then(|r| r.retry_delay),
            quota: details
                .quota_failure()
                .map(|q| {
                    q.violations
                        .iter()
                        .map(|v| (v.subject.clone(), v.description.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            bad_request: details
                .bad_request()
                .map(|b| {
                    b.field_violations
                        .iter()
                        .map(|v| (v.field.clone(), v.description.clone()))
                        .collect()
                })
                .unwrap_or_default(),
            precondition: details
                .precondition_failure()
                .map(|p| {
                    p.violations
                        .iter()
                        .map(|v| (v.r#type.clone(), v.subject.clone(), v.description.clone()))
                        .collect()
                })
                .unwrap_or_default(),
        }
    }

    fn meta(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn is_lower_camel(key: &str) -> bool {
        key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && key.chars().all(|c| c.is_ascii_alphanumeric())
    }

    struct Case {
        error: ApiError,
        code: Code,
        reason: &'static str,
        metadata: HashMap<String, String>,
        message: &'static str,
        retry: Option<Duration>,
        quota: Vec<(String, String)>,
        bad_request: Vec<(String, String)>,
        precondition: Vec<(String, String, String)>,
        korean: &'static str,
        english: &'static str,
    }

    fn s(text: &str) -> String {
        text.to_owned()
    }

    fn cases() -> Vec<Case> {
        let resets = Utc.with_ymd_and_hms(2025, 6, 18, 0, 0, 0).unwrap();
        vec![
            Case {
                error: ApiError::Unauthenticated {
                    detail: s("token expired"),
                },
                code: Code::Unauthenticated,
                reason: "RENDER_AUTH_ERROR",
                metadata: meta(&[]),
                message: "authentication failed: token expired",
                retry: None,
                quota: vec![],
                bad_request: vec![],
                precondition: vec![],
                korean: "인증에 실패했습니다. 다시 로그인해 주세요.",
                english: "Your sign-in could not be verified. Please sign in again.",
            },
            Case {
                error: ApiError::Forbidden {
                    detail: s("admin role required"),
                },
                code: Code::PermissionDenied,
                reason: "RENDER_FORBIDDEN",
                metadata: meta(&[]),
                message: "permission denied: admin role required",
                retry: None,
                quota: vec![],
                bad_request: vec![],
                precondition: vec![],
                korean: "이 작업을 수행할 권한이 없습니다.",
                english: "You do not have permission to do this.",
            },
            Case {
                error: ApiError::validation([
                    (s("options.width"), s("must be between 480 and 3840")),
                    (
                        scenario_field("cues[3].start"),
                        s("start must be before end"),
                    ),
                ]),
                code: Code::InvalidArgument,
                reason: "RENDER_VALIDATION_FAILED",
                metadata: meta(&[("violationCount", "2")]),
                message: "invalid request: options.width: must be between 480 and 3840; \
                          scenario_json.cues[3].start: start must be before end",
                retry: None,
                quota: vec![],
                bad_request: vec![
                    (s("options.width"), s("must be between 480 and 3840")),
                    (
                        s("scenario_json.cues[3].start"),
                        s("start must be before end"),
                    ),
                ],
                precondition: vec![],
                korean: "렌더링 요청에 잘못된 값이 2건 있습니다. 확인 후 다시 시도해 주세요.",
                english:
                    "The render request has 2 invalid value(s). Please check it and try again.",
            },
            Case {
                error: ApiError::QuotaExceeded {
                    kind: QuotaKind::Daily,
                    used: 10,
                    limit: 10,
                    user: Some(s("42")),
                    resets_at: Some(resets),
                },
                code: Code::ResourceExhausted,
                reason: "RENDER_QUOTA_DAILY_EXCEEDED",
                metadata: meta(&[
                    ("quotaKind", "daily"),
                    ("used", "10"),
                    ("limit", "10"),
                    ("userId", "42"),
                    ("retryAfterSeconds", "30"),
                    ("resetsAt", "2025-06-18T00:00:00Z"),
                ]),
                message: "daily quota exceeded: 10 of 10 used; resets at 2025-06-18T00:00:00Z",
                retry: Some(Duration::from_secs(30)),
                quota: vec![(
                    s("user:42"),
                    s("daily allowance of 10 renders used up (10 used)"),
                )],
                bad_request: vec![],
                precondition: vec![],
                korean: "오늘 렌더링 한도(10회)를 모두 사용했습니다.",
                english: "You have used all 10 renders allowed today.",
            },
            Case {
                error: ApiError::QuotaExceeded {
                    kind: QuotaKind::Monthly,
                    used: 100,
                    limit: 100,
                    user: Some(s("42")),
                    resets_at: Some(Utc.with_ymd_and_hms(2025, 7, 1, 0, 0, 0).unwrap()),
                },
                code: Code::ResourceExhausted,
                reason: "RENDER_QUOTA_MONTHLY_EXCEEDED",
                metadata: meta(&[
                    ("quotaKind", "monthly"),
                    ("used", "100"),
                    ("limit", "100"),
                    ("userId", "42"),
                    ("retryAfterSeconds", "1123230"),
                    ("resetsAt", "2025-07-01T00:00:00Z"),
                ]),
                message: "monthly quota exceeded: 100 of 100 used; resets at 2025-07-01T00:00:00Z",
                retry: Some(Duration::from_secs(13 * 86400 + 30)),
                quota: vec![(
                    s("user:42"),
                    s("monthly allowance of 100 renders used up (100 used)"),
                )],
                bad_request: vec![],
                precondition: vec![],
                korean: "이번 달 렌더링 한도(100회)를 모두 사용했습니다.",
                english: "You have used all 100 renders allowed this month.",
            },
            Case {
                error: ApiError::QuotaExceeded {
                    kind: QuotaKind::Concurrent,
                    used: 2,
                    limit: 2,
                    user: Some(s("42")),
                    resets_at: None,
                },
                code: Code::ResourceExhausted,
                reason: "RENDER_QUOTA_CONCURRENT_EXCEEDED",
                metadata: meta(&[
                    ("quotaKind", "concurrent"),
                    ("used", "2"),
                    ("limit", "2"),
                    ("userId", "42"),
                    ("retryAfterSeconds", "5"),
                ]),
                message: "concurrent quota exceeded: 2 of 2 used",
                retry: Some(CONCURRENT_RETRY_AFTER),
                quota: vec![(
                    s("user:42"),
                    s("concurrent allowance of 2 renders used up (2 used)"),
                )],
                bad_request: vec![],
                precondition: vec![],
                korean: "동시에 진행할 수 있는 렌더링은 2개까지입니다. \
                         진행 중인 작업이 끝난 뒤 다시 시도해 주세요.",
                english: "You can run at most 2 renders at once. Please wait for one to finish.",
            },
            Case {
                error: ApiError::RateLimited {
                    retry_after: Duration::from_millis(2300),
                },
                code: Code::ResourceExhausted,
                reason: "RENDER_RATE_LIMIT_EXCEEDED",
                metadata: meta(&[("retryAfterSeconds", "3")]),
                message: "rate limit exceeded; retry in 2.3 s",
                retry: Some(Duration::from_millis(2300)),
                quota: vec![],
                bad_request: vec![],
                precondition: vec![],
                korean: "요청이 너무 많습니다. 3초 후에 다시 시도해 주세요.",
                english: "Too many requests. Please try again in 3 seconds.",
            },
            Case {
                error: ApiError::JobNotFound { job_id: s("job-1") },
                code: Code::NotFound,
                reason: "RENDER_JOB_NOT_FOUND",
                metadata: meta(&[("jobId", "job-1")]),
                message: "job job-1 not found",
                retry: None,
                quota: vec![],
                bad_request: vec![],
                precondition: vec![],
                korean: "렌더링 작업을 찾을 수 없습니다.",
                english: "The render job could not be found.",
            },
            Case {
                error: ApiError::FailedPrecondition {
                    job_id: s("job-1"),
                    state: JobState::Succeeded,
                    action: JobAction::Cancel,
                },
                code: Code::FailedPrecondition,
                reason: "RENDER_JOB_NOT_CANCELLABLE",
                metadata: meta(&[
                    ("jobId", "job-1"),
                    ("state", "SUCCEEDED"),
                    ("action", "cancel"),
                ]),
                message: "cannot cancel job job-1: it is SUCCEEDED",
                retry: None,
                quota: vec![],
                bad_request: vec![],
                precondition: vec![(
                    s("JOB_STATE"),
                    s("job:job-1"),
                    s("the job is SUCCEEDED; cancel is not allowed from this state"),
                )],
                korean: "이미 완료 상태인 렌더링 작업은 취소할 수 없습니다.",
                english: "The render job has already finished, so it cannot be cancelled.",
            },
            Case {
                error: ApiError::InvalidPageToken,
                code: Code::InvalidArgument,
                reason: "RENDER_INVALID_PAGE_TOKEN",
                metadata: meta(&[]),
                message: "the page token is not one this listing handed out",
                retry: None,
                quota: vec![],
                bad_request: vec![(
                    s("page_token"),
                    s("not a token from a previous page of this listing"),
                )],
                precondition: vec![],
                korean: "페이지 토큰이 올바르지 않습니다. 첫 페이지부터 다시 조회해 주세요.",
                english: "The page token is not valid. Please start again from the first page.",
            },
            Case {
                error: ApiError::Unavailable {
                    detail: s("cannot open the job database postgres://***@db/renderd"),
                },
                code: Code::Unavailable,
                reason: "RENDER_UNAVAILABLE",
                metadata: meta(&[("retryAfterSeconds", "2")]),
                message: "the render service is temporarily unavailable; retry later",
                retry: Some(UNAVAILABLE_RETRY_AFTER),
                quota: vec![],
                bad_request: vec![],
                precondition: vec![],
                korean:
                    "렌더링 서비스를 일시적으로 사용할 수 없습니다. 잠시 후 다시 시도해 주세요.",
                english: "The render service is temporarily unavailable. Please try again shortly.",
            },
            Case {
                error: ApiError::Internal {
                    detail: s("job row x is corrupt: bad state"),
                },
                code: Code::Internal,
                reason: "RENDER_INTERNAL_ERROR",
                metadata: meta(&[]),
                message: "internal error",
                retry: None,
                quota: vec![],
                bad_request: vec![],
                precondition: vec![],
                korean: "서버 내부 오류가 발생했습니다. 잠시 후 다시 시도해 주세요.",
                english: "Something went wrong on our side. Please try again later.",
            },
        ]
    }

    #[test]
    fn every_error_maps_to_its_code_reason_and_details() {
        let korean = Lang::from_accept_language(KOREAN_FIRST);
        assert_eq!(korean, Lang::Korean);
        let mut reasons = std::collections::HashSet::new();
        for case in cases() {
            assert_eq!(case.error.code(), case.code, "{:?}", case.error);
            assert_eq!(case.error.reason(), case.reason);
            reasons.insert(case.reason);
            for (lang, locale, text) in [
                (korean, "ko-KR", case.korean),
                (Lang::from_accept_language("en"), "en-US", case.english),
                (Lang::default(), "en-US", case.english),
            ] {
                let status = case.error.clone().into_status_at(lang, now());
                let got = decode(&status);
                let what = case.reason;
                assert_eq!(got.code, case.code, "{what}");
                assert_eq!(got.message, case.message, "{what}");
                assert_eq!(got.info.reason, case.reason);
                assert_eq!(got.info.domain, "render.v1");
                assert_eq!(got.info.metadata, case.metadata, "{what}");
                assert!(
                    got.info.metadata.keys().all(|k| is_lower_camel(k)),
                    "{what}: {:?}",
                    got.info.metadata
                );
                assert_eq!(got.localized.locale, locale, "{what}");
                assert_eq!(got.localized.message, text, "{what}");
                assert_eq!(got.retry, case.retry, "{what}");
                assert_eq!(got.quota, case.quota, "{what}");
                assert_eq!(got.bad_request, case.bad_request, "{what}");
                assert_eq!(got.precondition, case.precondition, "{what}");
            }
        }
        assert_eq!(reasons.len(), 12, "every case has its own reason");
    }

    #[test]
    fn internal_details_never_reach_the_client() {
        let secret = "postgres://renderd:hunter2@db/renderd refused";
        for error in [
            ApiError::Internal {
                detail: secret.to_owned(),
            },
            ApiError::Unavailable {
                detail: secret.to_owned(),
            },
        ] {
            let status = error.into_status(Lang::English);
            assert!(!status.message().contains("hunter2"));
            let details = String::from_utf8_lossy(status.details()).into_owned();
            assert!(!details.contains("hunter2"), "{details}");
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
    fn language_comes_from_http_headers_and_grpc_metadata() {
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

        let metadata = MetadataMap::from_headers(headers);
        assert_eq!(Lang::from_metadata(&metadata), Lang::Korean);
        let mut english = MetadataMap::new();
        english.insert("accept-language", "en-US,en;q=0.9".parse().unwrap());
        assert_eq!(Lang::from_metadata(&english), Lang::English);
        assert_eq!(Lang::from_metadata(&MetadataMap::new()), Lang::English);
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

    #[test]
    fn quota_context_adds_the_user_and_the_reset() {
        let windows = Windows::at(now(), 0);
        let err = ApiError::from(StoreError::QuotaExceeded {
            kind: QuotaKind::Daily,
            used: 10,
            limit: 10,
        })
        .with_quota_context("42", &windows);
        assert_eq!(
            err,
            ApiError::QuotaExceeded {
                kind: QuotaKind::Daily,
                used: 10,
                limit: 10,
                user: Some("42".into()),
                resets_at: Some(windows.day_end),
            }
        );
        let got = decode(&err.into_status_at(Lang::English, now()));
        assert_eq!(got.quota[0].0, "user:42");
        assert_eq!(got.retry, Some(Duration::from_secs(30)));
        // Without context: no user, no reset, no RetryInfo (there is nothing to wait for).
        let bare = ApiError::from(StoreError::QuotaExceeded {
            kind: QuotaKind::Daily,
            used: 10,
            limit: 10,
        });
        let got = decode(&bare.into_status_at(Lang::English, now()));
        assert_eq!(got.quota[0].0, "user");
        assert_eq!(got.retry, None);
        assert!(!got.info.metadata.contains_key("resetsAt"));
        // Other errors pass through unchanged.
        assert_eq!(
            ApiError::InvalidPageToken.with_quota_context("42", &windows),
            ApiError::InvalidPageToken
        );
    }

    #[test]
    fn rate_limits_and_scenario_problems_convert() {
        assert_eq!(
            ApiError::from(RateLimited {
                retry_after: Duration::from_secs(3)
            }),
            ApiError::RateLimited {
                retry_after: Duration::from_secs(3)
            }
        );
        let err = ApiError::from(ScenarioError::Invalid(vec![
            Problem {
                path: "cues[3].root.children[1].displayTime".into(),
                message: "start must be before end".into(),
            },
            Problem {
                path: "$".into(),
                message: "missing version".into(),
            },
        ]));
        assert_eq!(
            err,
            ApiError::Validation {
                violations: vec![
                    Violation {
                        field: "scenario_json.cues[3].root.children[1].displayTime".into(),
                        description: "start must be before end".into(),
                    },
                    Violation {
                        field: "scenario_json".into(),
                        description: "missing version".into(),
                    },
                ]
            }
        );
        let too_large = ApiError::from(ScenarioError::TooLarge {
            bytes: 6_000_000,
            limit: 5_000_000,
        });
        let got = decode(&too_large.into_status(Lang::English));
        assert_eq!(got.bad_request.len(), 1);
        assert_eq!(got.bad_request[0].0, "scenario_json");
        assert!(got.bad_request[0].1.contains("larger than the limit"));

        assert_eq!(scenario_field("$.cues[0]"), "scenario_json.cues[0]");
        assert_eq!(scenario_field("[2].x"), "scenario_json[2].x");
        assert_eq!(scenario_field("version"), "scenario_json.version");
    }

    #[test]
    fn long_violation_lists_are_summarised_in_the_message_but_all_sent() {
        let err = ApiError::validation(
            (0..8).map(|i| (format!("scenario_json.cues[{i}].start"), s("negative"))),
        );
        let got = decode(&err.into_status(Lang::English));
        assert_eq!(got.bad_request.len(), 8);
        assert!(got.message.ends_with("; and 3 more"), "{}", got.message);
        assert_eq!(
            got.info.metadata.get("violationCount").map(String::as_str),
            Some("8")
        );
    }

    #[test]
    fn status_from_api_error_defaults_to_english() {
        let status: Status = ApiError::JobNotFound { job_id: "j".into() }.into();
        assert_eq!(status.code(), Code::NotFound);
        assert_eq!(decode(&status).localized.locale, "en-US");
    }

    #[test]
    fn past_or_missing_resets_give_no_retry_info() {
        let err = ApiError::QuotaExceeded {
            kind: QuotaKind::Daily,
            used: 1,
            limit: 1,
            user: Some("u".into()),
            resets_at: Some(now() - chrono::TimeDelta::seconds(5)),
        };
        let got = decode(&err.into_status_at(Lang::Korean, now()));
        assert_eq!(got.retry, None);
        assert!(!got.info.metadata.contains_key("retryAfterSeconds"));
    }
}
