//! The one mapping of an [`ApiError`] (classified face-neutrally in `crate::api::error`) into a
//! `tonic::Status` with the `google.rpc` richer error model: exactly one `ErrorInfo` (reason =
//! the contract's code, domain `render.v1`, lowerCamelCase metadata), one `LocalizedMessage` in
//! the caller's language, and the details that help (`BadRequest`, `QuotaFailure`,
//! `RetryInfo`, `PreconditionFailure`).

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use tonic::metadata::MetadataMap;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

pub use crate::api::error::{
    ceil_seconds, rfc3339, scenario_field, ApiError, JobAction, Lang, Violation,
    CONCURRENT_RETRY_AFTER, UNAVAILABLE_RETRY_AFTER,
};

/// `ErrorInfo.domain` of every error renderd returns.
pub const ERROR_DOMAIN: &str = "render.v1";

/// The caller's language from every `accept-language` entry of a gRPC request's metadata.
pub fn lang_from_metadata(metadata: &MetadataMap) -> Lang {
    Lang::from_values(
        metadata
            .get_all(http::header::ACCEPT_LANGUAGE.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok()),
    )
}

/// The gRPC face's half of [`ApiError`]: its canonical code and its `Status`.
impl ApiError {
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
        let message = self.public_message();
        if let Some(wait) = self.retry_after(now) {
            metadata.insert("retryAfterSeconds".into(), ceil_seconds(wait).to_string());
            details.set_retry_info(Some(wait));
        }
        match &self {
            ApiError::Unauthenticated { .. } | ApiError::Forbidden { .. } => {}
            ApiError::RateLimited { .. } => {}
            ApiError::Validation { violations } => {
                metadata.insert("violationCount".into(), violations.len().to_string());
                for v in violations {
                    details.add_bad_request_violation(v.field.clone(), v.description.clone());
                }
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
                if let Some(at) = resets_at {
                    metadata.insert("resetsAt".into(), rfc3339(*at));
                }
            }
            ApiError::JobNotFound { job_id } => {
                metadata.insert("jobId".into(), job_id.clone());
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
            }
            ApiError::InvalidPageToken => {
                details.add_bad_request_violation(
                    "page_token",
                    "not a token from a previous page of this listing",
                );
            }
            ApiError::Unavailable { detail } => {
                tracing::warn!(%detail, "RPC failed: service unavailable");
            }
            ApiError::Internal { detail } => {
                tracing::error!(%detail, "RPC failed: internal error");
            }
        }
        details.set_error_info(reason, ERROR_DOMAIN, metadata);
        details.set_localized_message(lang.locale(), localized);
        Status::with_error_details(code, message, details)
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
    use std::time::Duration;

    use super::*;
    use chrono::TimeZone;
    use tonic_types::ErrorDetail;

    use crate::domain::job::JobState;
    use crate::quota::{RateLimited, Windows};
    use crate::scene::{Problem, ScenarioError};
    use crate::store::{QuotaKind, StoreError};

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
    fn language_comes_from_grpc_metadata() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            http::header::ACCEPT_LANGUAGE,
            http::HeaderValue::from_static(KOREAN_FIRST),
        );
        let metadata = MetadataMap::from_headers(headers);
        assert_eq!(lang_from_metadata(&metadata), Lang::Korean);
        let mut english = MetadataMap::new();
        english.insert("accept-language", "en-US,en;q=0.9".parse().unwrap());
        assert_eq!(lang_from_metadata(&english), Lang::English);
        assert_eq!(lang_from_metadata(&MetadataMap::new()), Lang::English);
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
