//! The one mapping of an [`ApiError`] to the editor's error response: an HTTP status and
//! `{"detail": {"error", "message", "code", "details"}}` (`../shared/CONTRACT.md`), with the
//! user-facing message in the caller's language, `retry_after` (seconds) in `details` and a
//! `Retry-After` header where waiting helps.

use std::time::Duration;

use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use http::{header, HeaderValue, StatusCode};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::api::error::{ceil_seconds, rfc3339, ApiError, Lang};
use crate::store::QuotaKind;

/// The error body's envelope, as FastAPI's `HTTPException(detail=…)` wrote it.
#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub detail: ErrorDetail,
}

#[derive(Debug, Serialize)]
pub struct ErrorDetail {
    /// The error class: `VALIDATION_ERROR`, `QUOTA_EXCEEDED`, …
    pub error: &'static str,
    /// The sentence for the user, in the request's `Accept-Language` (Korean or English).
    pub message: String,
    /// The contract's specific code: `RENDER_QUOTA_DAILY_EXCEEDED`, …
    pub code: &'static str,
    /// What helps: `problems` (validation), `retry_after` (seconds), quota numbers, `job_id`.
    pub details: Map<String, Value>,
}

/// The HTTP status and the contract's error class of an error.
pub fn classify(err: &ApiError) -> (StatusCode, &'static str) {
    match err {
        ApiError::Unauthenticated { .. } => (StatusCode::UNAUTHORIZED, "AUTH_ERROR"),
        ApiError::Forbidden { .. } => (StatusCode::FORBIDDEN, "FORBIDDEN"),
        ApiError::Validation { .. } | ApiError::InvalidPageToken => {
            (StatusCode::BAD_REQUEST, "VALIDATION_ERROR")
        }
        ApiError::QuotaExceeded { kind, .. } => match kind {
            QuotaKind::Daily | QuotaKind::Monthly => (StatusCode::FORBIDDEN, "QUOTA_EXCEEDED"),
            QuotaKind::Concurrent => (StatusCode::TOO_MANY_REQUESTS, "QUOTA_EXCEEDED"),
        },
        ApiError::RateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "RATE_LIMIT_EXCEEDED"),
        ApiError::JobNotFound { .. } => (StatusCode::NOT_FOUND, "JOB_NOT_FOUND"),
        ApiError::FailedPrecondition { .. } => (StatusCode::CONFLICT, "INVALID_JOB_STATE"),
        ApiError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "INTERNAL_SERVER_ERROR"),
        ApiError::Internal { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL_SERVER_ERROR"),
    }
}

/// A request field as the editor names it: `videoUrl`, `scenario.cues[0]…`, `options.width`.
/// The core reports problems under the gRPC field names.
pub fn rest_field(field: &str) -> String {
    let renames = [
        ("video_url", "videoUrl"),
        ("video_name", "videoName"),
        ("scenario_json", "scenario"),
        ("request_id", "Idempotency-Key"),
        ("job_id", "jobId"),
    ];
    for (grpc, rest) in renames {
        if let Some(rest_of_path) = field.strip_prefix(grpc) {
            if rest_of_path.is_empty()
                || rest_of_path.starts_with('.')
                || rest_of_path.starts_with('[')
            {
                return format!("{rest}{rest_of_path}");
            }
        }
    }
    field.to_owned()
}

/// The status, the body and the wait of an error, as of `now`.
pub fn error_parts(
    err: &ApiError,
    lang: Lang,
    now: DateTime<Utc>,
) -> (StatusCode, ErrorBody, Option<Duration>) {
    let (status, error) = classify(err);
    let retry_after = err.retry_after(now);
    let mut details = Map::new();
    match err {
        ApiError::Unauthenticated { .. }
        | ApiError::Forbidden { .. }
        | ApiError::RateLimited { .. }
        | ApiError::Unavailable { .. }
        | ApiError::Internal { .. } => {}
        ApiError::Validation { violations } => {
            let problems: Vec<Value> = violations
                .iter()
                .map(|v| json!({"field": rest_field(&v.field), "message": v.description}))
                .collect();
            details.insert("problems".into(), Value::Array(problems));
        }
        ApiError::InvalidPageToken => {
            details.insert(
                "problems".into(),
                json!([{"field": "page_token", "message": err.to_string()}]),
            );
        }
        ApiError::QuotaExceeded {
            kind,
            used,
            limit,
            user: _,
            resets_at,
        } => {
            details.insert("quota".into(), json!(kind.to_string()));
            details.insert("used".into(), json!(used));
            details.insert("limit".into(), json!(limit));
            if let Some(at) = resets_at {
                details.insert("resets_at".into(), json!(rfc3339(*at)));
            }
        }
        ApiError::JobNotFound { job_id } => {
            details.insert("job_id".into(), json!(job_id));
        }
        ApiError::FailedPrecondition {
            job_id,
            state,
            action,
        } => {
            details.insert("job_id".into(), json!(job_id));
            details.insert("state".into(), json!(state.as_str().to_ascii_lowercase()));
            details.insert("action".into(), json!(action.as_str()));
        }
    }
    if let Some(wait) = retry_after {
        details.insert("retry_after".into(), json!(ceil_seconds(wait).max(1)));
    }
    let body = ErrorBody {
        detail: ErrorDetail {
            error,
            message: err.localized(lang),
            code: err.reason(),
            details,
        },
    };
    (status, body, retry_after)
}

/// The response for `err`, in `lang`.
pub fn error_response(err: &ApiError, lang: Lang) -> Response {
    match err {
        ApiError::Internal { detail } => tracing::error!(%detail, "REST request failed"),
        ApiError::Unavailable { detail } => tracing::warn!(%detail, "REST request failed"),
        _ => tracing::debug!(error = %err, "REST request refused"),
    }
    let (status, body, retry_after) = error_parts(err, lang, Utc::now());
    let mut response = super::json_response(status, &body);
    if let Some(wait) = retry_after.filter(|_| {
        status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE
    }) {
        response.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(ceil_seconds(wait).max(1)),
        );
    }
    response
}

/// An error bound to the language of the request it answers, for `?` in handlers.
pub struct RestError {
    pub error: ApiError,
    pub lang: Lang,
}

impl IntoResponse for RestError {
    fn into_response(self) -> Response {
        error_response(&self.error, self.lang)
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;
    use crate::api::error::JobAction;
    use crate::domain::job::JobState;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 6, 17, 23, 59, 30).unwrap()
    }

    fn quota(kind: QuotaKind) -> ApiError {
        ApiError::QuotaExceeded {
            kind,
            used: 10,
            limit: 10,
            user: Some("42".into()),
            resets_at: Some(Utc.with_ymd_and_hms(2025, 6, 18, 0, 0, 0).unwrap()),
        }
    }

    /// Every kind of error: its HTTP status, error class, code and the details keys it carries.
    #[test]
    fn every_error_kind_maps_to_the_contract_table() {
        let cases: Vec<(ApiError, u16, &str, &str, &[&str])> = vec![
            (
                ApiError::Unauthenticated {
                    detail: "expired".into(),
                },
                401,
                "AUTH_ERROR",
                "RENDER_AUTH_ERROR",
                &[],
            ),
            (
                ApiError::Forbidden {
                    detail: "origin".into(),
                },
                403,
                "FORBIDDEN",
                "RENDER_FORBIDDEN",
                &[],
            ),
            (
                ApiError::validation([
                    ("options.width".to_owned(), "too small".to_owned()),
                    ("scenario_json.cues[0].start".to_owned(), "bad".to_owned()),
                ]),
                400,
                "VALIDATION_ERROR",
                "RENDER_VALIDATION_FAILED",
                &["problems"],
            ),
            (
                quota(QuotaKind::Daily),
                403,
                "QUOTA_EXCEEDED",
                "RENDER_QUOTA_DAILY_EXCEEDED",
                &["quota", "used", "limit", "resets_at", "retry_after"],
            ),
            (
                quota(QuotaKind::Monthly),
                403,
                "QUOTA_EXCEEDED",
                "RENDER_QUOTA_MONTHLY_EXCEEDED",
                &["quota", "used", "limit", "resets_at", "retry_after"],
            ),
            (
                quota(QuotaKind::Concurrent),
                429,
                "QUOTA_EXCEEDED",
                "RENDER_QUOTA_CONCURRENT_EXCEEDED",
                &["quota", "used", "limit", "resets_at", "retry_after"],
            ),
            (
                ApiError::RateLimited {
                    retry_after: Duration::from_millis(2100),
                },
                429,
                "RATE_LIMIT_EXCEEDED",
                "RENDER_RATE_LIMIT_EXCEEDED",
                &["retry_after"],
            ),
            (
                ApiError::JobNotFound {
                    job_id: "j-1".into(),
                },
                404,
                "JOB_NOT_FOUND",
                "RENDER_JOB_NOT_FOUND",
                &["job_id"],
            ),
            (
                ApiError::FailedPrecondition {
                    job_id: "j-1".into(),
                    state: JobState::Succeeded,
                    action: JobAction::Cancel,
                },
                409,
                "INVALID_JOB_STATE",
                "RENDER_JOB_NOT_CANCELLABLE",
                &["job_id", "state", "action"],
            ),
            (
                ApiError::InvalidPageToken,
                400,
                "VALIDATION_ERROR",
                "RENDER_INVALID_PAGE_TOKEN",
                &["problems"],
            ),
            (
                ApiError::Unavailable {
                    detail: "postgres://u:hunter2@db".into(),
                },
                503,
                "INTERNAL_SERVER_ERROR",
                "RENDER_UNAVAILABLE",
                &["retry_after"],
            ),
            (
                ApiError::Internal {
                    detail: "postgres://u:hunter2@db".into(),
                },
                500,
                "INTERNAL_SERVER_ERROR",
                "RENDER_INTERNAL_ERROR",
                &[],
            ),
        ];
        for (err, status, error, code, keys) in cases {
            for lang in [Lang::English, Lang::Korean] {
                let (got_status, body, _) = error_parts(&err, lang, now());
                assert_eq!(got_status.as_u16(), status, "{code}");
                let json = serde_json::to_value(&body).expect("serialises");
                let detail = json["detail"].as_object().expect("detail object");
                let mut fields: Vec<&str> = detail.keys().map(String::as_str).collect();
                fields.sort_unstable();
                assert_eq!(fields, ["code", "details", "error", "message"], "{code}");
                assert_eq!(detail["error"], error, "{code}");
                assert_eq!(detail["code"], code);
                assert_eq!(detail["message"], err.localized(lang), "{code}");
                assert!(!json.to_string().contains("hunter2"), "{json}");
                let mut got_keys: Vec<&str> = detail["details"]
                    .as_object()
                    .expect("details object")
                    .keys()
                    .map(String::as_str)
                    .collect();
                got_keys.sort_unstable();
                let mut want_keys = keys.to_vec();
                want_keys.sort_unstable();
                assert_eq!(got_keys, want_keys, "{code}");
            }
        }
    }

    #[test]
    fn details_carry_the_numbers_the_editor_shows() {
        let (_, body, wait) = error_parts(
            &ApiError::RateLimited {
                retry_after: Duration::from_millis(2100),
            },
            Lang::Korean,
            now(),
        );
        assert_eq!(body.detail.details["retry_after"], 3);
        assert_eq!(wait, Some(Duration::from_millis(2100)));
        assert!(
            body.detail.message.contains("3초"),
            "{}",
            body.detail.message
        );

        let (_, body, _) = error_parts(&quota(QuotaKind::Daily), Lang::English, now());
        let details = &body.detail.details;
        assert_eq!(details["quota"], "daily");
        assert_eq!(details["used"], 10);
        assert_eq!(details["limit"], 10);
        assert_eq!(details["resets_at"], "2025-06-18T00:00:00Z");
        assert_eq!(details["retry_after"], 30);

        let (_, body, _) = error_parts(
            &ApiError::validation([
                ("options.fps".to_owned(), "above 60".to_owned()),
                ("video_url".to_owned(), "required".to_owned()),
                (
                    "scenario_json.cues[2].root".to_owned(),
                    "missing".to_owned(),
                ),
            ]),
            Lang::English,
            now(),
        );
        assert_eq!(
            body.detail.details["problems"],
            json!([
                {"field": "options.fps", "message": "above 60"},
                {"field": "videoUrl", "message": "required"},
                {"field": "scenario.cues[2].root", "message": "missing"},
            ])
        );
    }

    #[test]
    fn responses_carry_retry_after_headers_only_where_a_client_waits() {
        let limited = error_response(
            &ApiError::RateLimited {
                retry_after: Duration::from_millis(200),
            },
            Lang::English,
        );
        assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(limited.headers()[header::RETRY_AFTER], "1");
        assert_eq!(
            limited.headers()[header::CONTENT_TYPE],
            "application/json; charset=utf-8"
        );
        let concurrent = error_response(&quota(QuotaKind::Concurrent), Lang::English);
        assert_eq!(concurrent.headers()[header::RETRY_AFTER], "5");
        let daily = error_response(&quota(QuotaKind::Daily), Lang::English);
        assert_eq!(daily.status(), StatusCode::FORBIDDEN);
        assert!(daily.headers().get(header::RETRY_AFTER).is_none());
        let missing = error_response(&ApiError::JobNotFound { job_id: "x".into() }, Lang::English);
        assert!(missing.headers().get(header::RETRY_AFTER).is_none());
    }

    #[test]
    fn fields_are_renamed_to_the_editors_names() {
        for (grpc, rest) in [
            ("video_url", "videoUrl"),
            ("video_name", "videoName"),
            ("scenario_json", "scenario"),
            ("scenario_json.cues[3].start", "scenario.cues[3].start"),
            ("scenario_json[0]", "scenario[0]"),
            ("options.width", "options.width"),
            ("request_id", "Idempotency-Key"),
            ("job_id", "jobId"),
            ("video_urls", "video_urls"),
            ("body", "body"),
        ] {
            assert_eq!(rest_field(grpc), rest, "{grpc}");
        }
    }
}
