//! What browsers need on the shared port: gRPC-Web translation for the gRPC services and CORS
//! for pages served from the configured origins (`[server] allowed_origins`).
//!
//! Both are tower layers for the whole server, outside the auth layer, so that CORS preflights
//! are answered before authentication and a gRPC-Web call meets the same auth layer (same
//! path, same token) as a gRPC one, its refusal translated to gRPC-Web like any response.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::header::{self, HeaderName, HeaderValue};
use http::{Method, Request, Response};
use tonic::body::Body;
use tonic::codegen::{Body as HttpBody, Bytes};
use tower::{Layer, Service};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// How long a browser may cache a preflight answer (browsers cap it: Chromium at 2 hours).
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(3600);

/// Request headers a page may send: auth, gRPC-Web's own, the language of error messages and
/// W3C trace context.
const ALLOWED_HEADERS: [&str; 9] = [
    "authorization",
    "idempotency-key",
    "content-type",
    "x-grpc-web",
    "x-user-agent",
    "grpc-timeout",
    "accept-language",
    "traceparent",
    "tracestate",
];

/// Response headers a page may read: a unary gRPC-Web error is trailers-only, i.e. these
/// arrive as headers; `retry-after` is the REST face's 429 hint.
const EXPOSED_HEADERS: [&str; 4] = [
    "grpc-status",
    "grpc-message",
    "grpc-status-details-bin",
    "retry-after",
];

/// The content types tonic-web translates (the same four it recognises).
const GRPC_WEB_CONTENT_TYPES: [&str; 4] = [
    "application/grpc-web",
    "application/grpc-web+proto",
    "application/grpc-web-text",
    "application/grpc-web-text+proto",
];

/// A configured browser origin that is not a plain `http(s)://host[:port]`.
#[derive(Debug, thiserror::Error)]
pub enum CorsConfigError {
    #[error(
        "server.allowed_origins: {origin:?} is not an origin: write scheme://host[:port] \
         (http or https, no path, no trailing slash, no wildcard)"
    )]
    NotAnOrigin { origin: String },
}

/// The CORS layer for `origins`, or `None` when none are configured (same-origin only: no
/// CORS headers at all). Origins are matched exactly after normalising what browsers
/// normalise in `Origin` (lower case, no default port). Credentials are allowed: the editor
/// sends its `access_token` cookie.
pub fn cors_layer(origins: &[String]) -> Result<Option<CorsLayer>, CorsConfigError> {
    if origins.is_empty() {
        return Ok(None);
    }
    let allowed = origins
        .iter()
        .map(|origin| normalize_origin(origin))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(allowed))
            .allow_methods([Method::GET, Method::POST])
            .allow_headers(ALLOWED_HEADERS.map(HeaderName::from_static))
            .expose_headers(EXPOSED_HEADERS.map(HeaderName::from_static))
            .allow_credentials(true)
            .max_age(PREFLIGHT_MAX_AGE),
    ))
}

/// `origin` as a browser writes it in the `Origin` header.
pub fn normalize_origin(origin: &str) -> Result<HeaderValue, CorsConfigError> {
    let not_an_origin = || CorsConfigError::NotAnOrigin {
        origin: origin.to_owned(),
    };
    let lower = origin.trim().to_ascii_lowercase();
    let (scheme, authority) = lower.split_once("://").ok_or_else(not_an_origin)?;
    let default_port = match scheme {
        "http" => ":80",
        "https" => ":443",
        _ => return Err(not_an_origin()),
    };
    let uri: http::Uri = lower.parse().map_err(|_| not_an_origin())?;
    let parsed = uri.authority().ok_or_else(not_an_origin)?;
    // `Uri` accepts a path, query and user info; an origin has none of them.
    if parsed.as_str() != authority || authority.contains('@') || parsed.host().is_empty() {
        return Err(not_an_origin());
    }
    let authority = authority.strip_suffix(default_port).unwrap_or(authority);
    HeaderValue::from_str(&format!("{scheme}://{authority}")).map_err(|_| not_an_origin())
}

/// Whether `headers` carry one of the gRPC-Web content types.
pub fn is_grpc_web(headers: &http::HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| GRPC_WEB_CONTENT_TYPES.contains(&value))
}

/// Translates gRPC-Web requests to gRPC (and their responses back) and passes every other
/// request through untouched. tonic-web's own service answers any HTTP/1.1 request that is
/// not gRPC-Web with 400, which would cut off the downloads and REST routes on this port.
#[derive(Debug, Clone, Copy, Default)]
pub struct GrpcWebLayer;

impl<S> Layer<S> for GrpcWebLayer {
    type Service = GrpcWeb<S>;

    fn layer(&self, inner: S) -> GrpcWeb<S> {
        GrpcWeb { inner }
    }
}

#[derive(Debug, Clone)]
pub struct GrpcWeb<S> {
    inner: S,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl<S, ResBody> Service<Request<Body>> for GrpcWeb<S>
where
    S: Service<Request<Body>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ResBody: HttpBody<Data = Bytes> + Send + 'static,
    ResBody::Error: Into<BoxError> + fmt::Display,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<Body>) -> Self::Future {
        // The service that was polled ready is the one that must take the call.
        let ready = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, ready);
        if is_grpc_web(request.headers()) {
            // tonic-web's service only forwards readiness, so wrapping the ready one is sound.
            let mut web = tonic_web::GrpcWebLayer::new().layer(inner);
            Box::pin(web.call(request))
        } else {
            let mut inner = inner;
            let response = inner.call(request);
            Box::pin(async move { Ok(response.await?.map(Body::new)) })
        }
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::ServiceExt as _;

    use super::*;

    fn origins(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn origins_are_normalised_like_browsers_send_them() {
        for (configured, expected) in [
            ("https://editor.example.com", "https://editor.example.com"),
            ("HTTPS://Editor.Example.COM", "https://editor.example.com"),
            (
                "https://editor.example.com:443",
                "https://editor.example.com",
            ),
            ("http://localhost:80", "http://localhost"),
            ("http://localhost:5173", "http://localhost:5173"),
            ("https://127.0.0.1:8443", "https://127.0.0.1:8443"),
            (" http://[::1]:3000 ", "http://[::1]:3000"),
        ] {
            let value = normalize_origin(configured).expect(configured);
            assert_eq!(value.to_str().expect("ascii"), expected, "{configured}");
        }
    }

    #[test]
    fn things_that_are_not_origins_are_refused() {
        for bad in [
            "",
            "*",
            "editor.example.com",
            "https://editor.example.com/",
            "https://editor.example.com/app",
            "https://editor.example.com?x=1",
            "https://user@editor.example.com",
            "ftp://editor.example.com",
            "https://",
            "null",
        ] {
            let error = normalize_origin(bad).expect_err(bad);
            assert!(
                error.to_string().contains("scheme://host[:port]"),
                "{error}"
            );
        }
        assert!(cors_layer(&origins(&["https://ok.example", "https://bad.example/"])).is_err());
    }

    #[test]
    fn no_origins_means_no_cors_layer() {
        assert!(cors_layer(&[]).expect("valid").is_none());
        assert!(cors_layer(&origins(&["https://a.example"]))
            .expect("valid")
            .is_some());
    }

    #[test]
    fn grpc_web_content_types() {
        let mut headers = http::HeaderMap::new();
        assert!(!is_grpc_web(&headers));
        for (value, web) in [
            ("application/grpc-web", true),
            ("application/grpc-web+proto", true),
            ("application/grpc-web-text", true),
            ("application/grpc-web-text+proto", true),
            ("application/grpc", false),
            ("application/grpc+proto", false),
            ("application/json", false),
            ("application/grpc-web+json", false),
        ] {
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(value));
            assert_eq!(is_grpc_web(&headers), web, "{value}");
        }
    }

    /// An inner service that answers with the content type and HTTP version it received.
    fn echo() -> impl Service<
        Request<Body>,
        Response = Response<Body>,
        Error = Infallible,
        Future = impl Send + 'static,
    > + Clone
           + Send
           + 'static {
        tower::service_fn(|request: Request<Body>| async move {
            let seen = request
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("none")
                .to_owned();
            let mut response = Response::new(Body::new(format!("{seen} {:?}", request.version())));
            response
                .headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
            Ok::<_, Infallible>(response)
        })
    }

    async fn body_text(response: Response<Body>) -> String {
        let bytes = axum::body::to_bytes(axum::body::Body::new(response.into_body()), 1 << 16)
            .await
            .expect("body");
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[tokio::test]
    async fn http1_requests_that_are_not_grpc_web_pass_through() {
        for (method, content_type) in [
            (Method::GET, None),
            (Method::POST, Some("application/json")),
            (Method::OPTIONS, None),
        ] {
            let mut builder = Request::builder()
                .method(method.clone())
                .uri("http://localhost/downloads/x.mp4")
                .version(http::Version::HTTP_11);
            if let Some(value) = content_type {
                builder = builder.header(header::CONTENT_TYPE, value);
            }
            let response = GrpcWebLayer
                .layer(echo())
                .oneshot(builder.body(Body::default()).expect("request"))
                .await
                .expect("infallible");
            assert_eq!(response.status(), http::StatusCode::OK, "{method}");
            assert_eq!(
                body_text(response).await,
                format!("{} HTTP/1.1", content_type.unwrap_or("none"))
            );
        }
    }

    #[tokio::test]
    async fn grpc_web_requests_reach_the_inner_service_as_grpc() {
        // A gRPC-Web frame: uncompressed, 0-byte message.
        let request = Request::builder()
            .method(Method::POST)
            .uri("http://localhost/grpc.health.v1.Health/Check")
            .version(http::Version::HTTP_11)
            .header(header::CONTENT_TYPE, "application/grpc-web+proto")
            .body(Body::new(String::from("\0\0\0\0\0")))
            .expect("request");
        let response = GrpcWebLayer
            .layer(echo())
            .oneshot(request)
            .await
            .expect("infallible");
        assert_eq!(
            response.headers().get(header::CONTENT_TYPE),
            Some(&HeaderValue::from_static("application/grpc-web+proto")),
            "the response is translated back to gRPC-Web"
        );
        let text = body_text(response).await;
        assert!(text.starts_with("application/grpc HTTP/1.1"), "{text}");
    }

    #[tokio::test]
    async fn cors_answers_preflights_of_allowed_origins_only() {
        let cors = cors_layer(&origins(&["https://editor.example.com"]))
            .expect("valid")
            .expect("configured");
        let preflight = |origin: &'static str| {
            Request::builder()
                .method(Method::OPTIONS)
                .uri("http://localhost/render.v1.RenderService/GetQuota")
                .header(header::ORIGIN, origin)
                .header(header::ACCESS_CONTROL_REQUEST_METHOD, "POST")
                .header(
                    header::ACCESS_CONTROL_REQUEST_HEADERS,
                    "authorization,content-type,x-grpc-web",
                )
                .body(Body::default())
                .expect("request")
        };
        let service = cors.layer(echo());
        let allowed = service
            .clone()
            .oneshot(preflight("https://editor.example.com"))
            .await
            .expect("infallible");
        let headers = allowed.headers();
        assert_eq!(
            headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            Some(&HeaderValue::from_static("https://editor.example.com"))
        );
        let allow_headers = headers
            .get(header::ACCESS_CONTROL_ALLOW_HEADERS)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        for name in ALLOWED_HEADERS {
            assert!(allow_headers.contains(name), "{name} in {allow_headers}");
        }
        assert_eq!(
            headers.get(header::ACCESS_CONTROL_MAX_AGE),
            Some(&HeaderValue::from_static("3600"))
        );
        assert_eq!(
            headers.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS),
            Some(&HeaderValue::from_static("true"))
        );
        let foreign = service
            .oneshot(preflight("https://evil.example.com"))
            .await
            .expect("infallible");
        assert_eq!(
            foreign.headers().get(header::ACCESS_CONTROL_ALLOW_ORIGIN),
            None
        );
    }
}
