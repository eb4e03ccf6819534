//! The editor's REST contract (`../shared/CONTRACT.md`) on the gRPC port: a second thin face
//! over [`RenderCore`]. Handlers authenticate, convert the JSON ([`wire`]), call the core once
//! and convert back; every error leaves through [`error::error_response`].
//!
//! Authentication: `Authorization: Bearer <jwt>`, or the editor's `access_token` cookie, which
//! is accepted only from a request whose `Origin` is in `server.allowed_origins` (a cookie
//! rides along on any cross-site request; the Origin check is the CSRF guard). The gRPC auth
//! layer lets `/api/` through so that a refusal here is the contract's JSON body.

pub mod error;
pub mod wire;

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use serde::Serialize;

use self::error::RestError;
use self::wire::{
    CancelResponse, CreateRenderBody, CreateRenderResponse, HistoryItem, JobStatusResponse,
};
use crate::api::{ApiError, HistoryQuery, Lang, RenderCore};
use crate::auth::{AuthError, Principal, Verifier};
use crate::store::MAX_PAGE_SIZE;

/// The editor's session cookie.
pub const ACCESS_TOKEN_COOKIE: &str = "access_token";
/// The optional header a non-editor client may send to make a create idempotent.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// `GET /api/render/history` without `limit`.
pub const DEFAULT_HISTORY_LIMIT: u32 = 10;

/// What the REST handlers share.
pub struct RestState {
    pub core: Arc<RenderCore>,
    pub verifier: Arc<Verifier>,
    /// Origins whose `access_token` cookie is accepted (and which CORS lets read responses).
    pub allowed_origins: Vec<String>,
}

/// The `/api/render/…` routes. `max_body_bytes` bounds a request body (a scenario is at most
/// 5 MB; the body around it is a little larger).
///
/// CORS is the server-wide layer of [`crate::browser`] (one policy for REST and gRPC-Web).
pub fn router(state: RestState, max_body_bytes: usize) -> Router {
    Router::new()
        .route("/api/render/create", post(create))
        .route("/api/render/history", get(history))
        .route("/api/render/{job_id}/status", get(status))
        .route("/api/render/{job_id}/cancel", post(cancel))
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .with_state(Arc::new(state))
}

/// `body` as JSON with `status`.
pub fn json_response<T: Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => (
            status,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )],
            bytes,
        )
            .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "a REST response did not serialise");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// The caller of a request, or why there is none.
pub fn authenticate(
    verifier: &Verifier,
    allowed_origins: &[String],
    headers: &HeaderMap,
) -> Result<Principal, ApiError> {
    let unauthenticated = |err: AuthError| ApiError::Unauthenticated {
        detail: err.to_string(),
    };
    if headers.contains_key(header::AUTHORIZATION) {
        let token = crate::auth::bearer_token(headers).map_err(unauthenticated)?;
        return verifier.verify(token).map_err(unauthenticated);
    }
    let Some(token) = cookie_token(headers) else {
        return Err(ApiError::Unauthenticated {
            detail: "no bearer token and no access_token cookie".into(),
        });
    };
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    // Compared as CORS compares them (crate::browser): lower case, no default port.
    let allowed = origin
        .and_then(|origin| crate::browser::normalize_origin(origin).ok())
        .is_some_and(|origin| {
            allowed_origins
                .iter()
                .filter_map(|a| crate::browser::normalize_origin(a).ok())
                .any(|a| a == origin)
        });
    if !allowed {
        return Err(ApiError::Forbidden {
            detail: match origin {
                Some(origin) => format!(
                    "the access_token cookie is not accepted from origin {origin:?}; \
                     send an Authorization header"
                ),
                None => "the access_token cookie is accepted only with an allowed Origin \
                         header; send an Authorization header"
                    .to_owned(),
            },
        });
    }
    verifier.verify(&token).map_err(unauthenticated)
}

/// The value of the first non-empty `access_token` cookie of every `Cookie` header.
fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == ACCESS_TOKEN_COOKIE && !c.value().is_empty())
        .map(|c| c.value().to_owned())
}

/// The language and the verified caller of a request.
fn caller(state: &RestState, headers: &HeaderMap) -> Result<(Lang, Principal), RestError> {
    let lang = Lang::from_headers(headers);
    authenticate(&state.verifier, &state.allowed_origins, headers)
        .map(|principal| (lang, principal))
        .map_err(|error| RestError { error, lang })
}

fn body_problem(rejection: &BytesRejection) -> ApiError {
    let description = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        "the request body is larger than the server accepts (a scenario may be at most 5 MB)"
            .to_owned()
    } else {
        format!("the request body cannot be read: {rejection}")
    };
    ApiError::validation([("body".to_owned(), description)])
}

fn job_id_problem(rejection: &PathRejection) -> ApiError {
    ApiError::validation([("job_id".to_owned(), rejection.body_text())])
}

/// `POST /api/render/create`.
async fn create(
    State(state): State<Arc<RestState>>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, RestError> {
    let (lang, principal) = caller(&state, &headers)?;
    let fail = |error| RestError { error, lang };
    let body = body.map_err(|rejection| fail(body_problem(&rejection)))?;
    let idempotency_key = headers
        .get(IDEMPOTENCY_KEY)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    // A body of megabytes is parsed off the async executor.
    let parsed = tokio::task::spawn_blocking(move || {
        serde_json::from_slice::<CreateRenderBody>(&body)
            .map(|body| wire::create_input(body, idempotency_key))
    })
    .await
    .map_err(|e| {
        fail(ApiError::Internal {
            detail: format!("parsing a create body stopped: {e}"),
        })
    })?;
    let input = parsed.map_err(|e| {
        fail(ApiError::validation([(
            "body".to_owned(),
            format!("not a create request ({{videoUrl, scenario, options?}}): {e}"),
        )]))
    })?;
    let created = state.core.create(&principal, input).await.map_err(fail)?;
    Ok(json_response(
        StatusCode::OK,
        &CreateRenderResponse::new(&created),
    ))
}

/// `GET /api/render/{jobId}/status`.
async fn status(
    State(state): State<Arc<RestState>>,
    headers: HeaderMap,
    job_id: Result<Path<String>, PathRejection>,
) -> Result<Response, RestError> {
    let (lang, principal) = caller(&state, &headers)?;
    let fail = |error| RestError { error, lang };
    let Path(job_id) = job_id.map_err(|r| fail(job_id_problem(&r)))?;
    let job = state.core.get(&principal, &job_id).await.map_err(fail)?;
    let response = JobStatusResponse::new(&job, state.core.download_url(&job).await);
    Ok(json_response(StatusCode::OK, &response))
}

/// `POST /api/render/{jobId}/cancel`.
async fn cancel(
    State(state): State<Arc<RestState>>,
    headers: HeaderMap,
    job_id: Result<Path<String>, PathRejection>,
) -> Result<Response, RestError> {
    let (lang, principal) = caller(&state, &headers)?;
    let fail = |error| RestError { error, lang };
    let Path(job_id) = job_id.map_err(|r| fail(job_id_problem(&r)))?;
    state.core.cancel(&principal, &job_id).await.map_err(fail)?;
    let message = match lang {
        Lang::English => "The render job was cancelled.",
        Lang::Korean => "렌더링 작업이 취소되었습니다.",
    };
    Ok(json_response(
        StatusCode::OK,
        &CancelResponse {
            success: true,
            message: message.to_owned(),
        },
    ))
}

/// The `limit` of a history request: 1 to [`MAX_PAGE_SIZE`], [`DEFAULT_HISTORY_LIMIT`] when
/// absent.
fn history_limit(query: &[(String, String)]) -> Result<u32, ApiError> {
    let Some((_, raw)) = query.iter().rev().find(|(key, _)| key == "limit") else {
        return Ok(DEFAULT_HISTORY_LIMIT);
    };
    match raw.trim().parse::<u32>() {
        Ok(limit) if (1..=MAX_PAGE_SIZE).contains(&limit) => Ok(limit),
        _ => Err(ApiError::validation([(
            "limit".to_owned(),
            format!("{raw:?} is not a whole number from 1 to {MAX_PAGE_SIZE}"),
        )])),
    }
}

/// `GET /api/render/history?limit=N`: newest first.
async fn history(
    State(state): State<Arc<RestState>>,
    headers: HeaderMap,
    query: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Response, RestError> {
    let (lang, principal) = caller(&state, &headers)?;
    let fail = |error| RestError { error, lang };
    let Query(query) =
        query.map_err(|r| fail(ApiError::validation([("query".to_owned(), r.body_text())])))?;
    let limit = history_limit(&query).map_err(fail)?;
    let (jobs, _next) = state
        .core
        .history(
            &principal,
            HistoryQuery {
                page_size: limit,
                page_token: None,
                states: Vec::new(),
            },
        )
        .await
        .map_err(fail)?;
    let mut items: Vec<HistoryItem> = Vec::with_capacity(jobs.len());
    for job in &jobs {
        items.push(HistoryItem::new(job, state.core.download_url(job).await));
    }
    Ok(json_response(StatusCode::OK, &items))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::auth::{mint_hs256, AuthConfig, MintRequest};

    const EDITOR: &str = "https://editor.example.com";

    fn auth_config() -> AuthConfig {
        AuthConfig {
            hs256_secret: Some("rest-test-secret".into()),
            ..AuthConfig::default()
        }
    }

    fn token(user: &str) -> String {
        mint_hs256(
            &auth_config(),
            &MintRequest {
                user_id: user.into(),
                plan: None,
                roles: vec![],
                ttl: Duration::from_secs(60),
            },
        )
        .expect("mint")
    }

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).expect("header value"));
        }
        map
    }

    fn check(pairs: &[(&'static str, String)]) -> Result<String, ApiError> {
        let verifier = Verifier::new(&auth_config()).expect("verifier");
        authenticate(&verifier, &[EDITOR.to_owned()], &headers(pairs)).map(|p| p.user_id)
    }

    #[test]
    fn bearer_tokens_and_allowed_origin_cookies_authenticate() {
        let t = token("7");
        assert_eq!(
            check(&[("authorization", format!("Bearer {t}"))]),
            Ok("7".into())
        );
        assert_eq!(
            check(&[("authorization", format!("bearer  {t} "))]),
            Ok("7".into())
        );
        assert_eq!(
            check(&[
                ("cookie", format!("theme=dark; access_token={t}")),
                ("origin", EDITOR.to_owned()),
            ]),
            Ok("7".into())
        );
        // The header wins over the cookie (and needs no Origin).
        assert_eq!(
            check(&[
                ("authorization", format!("Bearer {}", token("8"))),
                ("cookie", format!("access_token={t}")),
            ]),
            Ok("8".into())
        );
    }

    #[test]
    fn missing_forged_and_cross_site_credentials_are_refused() {
        let t = token("7");
        let refusals = [
            (vec![], "RENDER_AUTH_ERROR"),
            (
                vec![("authorization", "Bearer not.a.jwt".to_owned())],
                "RENDER_AUTH_ERROR",
            ),
            (
                vec![("authorization", format!("Basic {t}"))],
                "RENDER_AUTH_ERROR",
            ),
            (
                vec![("authorization", "Bearer ".to_owned())],
                "RENDER_AUTH_ERROR",
            ),
            (
                vec![("cookie", format!("access_token={t}"))],
                "RENDER_FORBIDDEN",
            ),
            (
                vec![
                    ("cookie", format!("access_token={t}")),
                    ("origin", "https://evil.example.com".to_owned()),
                ],
                "RENDER_FORBIDDEN",
            ),
            (
                vec![
                    ("cookie", "access_token=forged".to_owned()),
                    ("origin", EDITOR.to_owned()),
                ],
                "RENDER_AUTH_ERROR",
            ),
            (
                vec![
                    ("cookie", "access_token=".to_owned()),
                    ("origin", EDITOR.to_owned()),
                ],
                "RENDER_AUTH_ERROR",
            ),
        ];
        for (pairs, reason) in refusals {
            let err = check(&pairs).expect_err("refused");
            assert_eq!(err.reason(), reason, "{pairs:?}: {err}");
        }
    }

    #[test]
    fn history_limit_defaults_and_bounds() {
        let q = |v: &str| vec![("limit".to_owned(), v.to_owned())];
        assert_eq!(history_limit(&[]), Ok(DEFAULT_HISTORY_LIMIT));
        assert_eq!(history_limit(&q("25")), Ok(25));
        assert_eq!(history_limit(&q("100")), Ok(100));
        for bad in ["0", "101", "-1", "ten", ""] {
            let err = history_limit(&q(bad)).expect_err(bad);
            assert_eq!(err.reason(), "RENDER_VALIDATION_FAILED");
        }
    }
}
