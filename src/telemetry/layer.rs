//! The tower layer around every request on the public port (gRPC, gRPC-Web, REST, downloads):
//! continues the caller's W3C trace (`traceparent` from HTTP headers or gRPC metadata) in a
//! request span, and counts the request with its method, code and latency when its response
//! body ends (so a status stream's latency is its lifetime and its code is in the trailers).

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use http::{HeaderMap, Request, Response, StatusCode};
use http_body::{Body, Frame, SizeHint};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tower::{Layer, Service};
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::metrics::{metrics, Protocol};

/// Method label of requests that matched no route (their paths are not labels: unbounded).
const UNMATCHED: &str = "unmatched";
/// Path segments kept in an HTTP route label.
const MAX_ROUTE_SEGMENTS: usize = 6;

#[derive(Clone, Copy, Debug, Default)]
pub struct RequestLayer;

impl<S> Layer<S> for RequestLayer {
    type Service = RequestService<S>;

    fn layer(&self, inner: S) -> RequestService<S> {
        RequestService { inner }
    }
}

#[derive(Clone, Debug)]
pub struct RequestService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RequestService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<ObservedBody<ResBody>>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let started = Instant::now();
        let target = Target::of(&request);
        let span = request_span(&target, request.headers());
        let future = {
            let _entered = span.enter();
            self.inner.call(request)
        };
        let span_for_body = span.clone();
        Box::pin(
            async move {
                match future.await {
                    Ok(response) => {
                        let (parts, body) = response.into_parts();
                        let mut observation = Observation {
                            started,
                            target,
                            span: span_for_body,
                            http_status: parts.status,
                            grpc_status: None,
                            done: false,
                        };
                        observation.grpc_status = grpc_status(&parts.headers);
                        Ok(Response::from_parts(
                            parts,
                            ObservedBody {
                                inner: body,
                                observation,
                            },
                        ))
                    }
                    Err(err) => {
                        Observation {
                            started,
                            target,
                            span: tracing::Span::none(),
                            http_status: StatusCode::INTERNAL_SERVER_ERROR,
                            grpc_status: Some(13),
                            done: false,
                        }
                        .record(false);
                        Err(err)
                    }
                }
            }
            .instrument(span),
        )
    }
}

/// What a request is, for its span and its labels.
#[derive(Clone, Debug)]
struct Target {
    protocol: Protocol,
    http_method: http::Method,
    path: String,
}

impl Target {
    fn of<B>(request: &Request<B>) -> Target {
        let is_grpc = request
            .headers()
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        Target {
            protocol: if is_grpc {
                Protocol::grpc
            } else {
                Protocol::http
            },
            http_method: request.method().clone(),
            path: request.uri().path().to_owned(),
        }
    }

    /// The span name: the gRPC method, or the HTTP method and the path's route shape.
    fn name(&self) -> String {
        match self.protocol {
            Protocol::grpc => grpc_method(&self.path).unwrap_or(UNMATCHED).to_owned(),
            Protocol::http => format!("{} {}", self.http_method, http_route(&self.path)),
        }
    }
}

/// Opens the request span, a child of the caller's trace when it sent a valid `traceparent`.
fn request_span(target: &Target, headers: &HeaderMap) -> tracing::Span {
    let name = target.name();
    let span = match target.protocol {
        Protocol::grpc => tracing::info_span!(
            "request",
            otel.name = %name,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            rpc.system = "grpc",
            rpc.method = %name,
            rpc.grpc.status_code = tracing::field::Empty,
        ),
        Protocol::http => tracing::info_span!(
            "request",
            otel.name = %name,
            otel.kind = "server",
            otel.status_code = tracing::field::Empty,
            http.request.method = %target.http_method,
            url.path = %target.path,
            http.response.status_code = tracing::field::Empty,
        ),
    };
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if parent.span().span_context().is_valid() {
        // Fails only when no OpenTelemetry layer is installed: nothing is exported then.
        let _ = span.set_parent(parent);
    }
    span
}

/// `render.v1.RenderService/CreateRender` from `/render.v1.RenderService/CreateRender`, when
/// the path has that shape.
fn grpc_method(path: &str) -> Option<&str> {
    let method = path.strip_prefix('/')?;
    let (service, name) = method.split_once('/')?;
    let ident = |s: &str, dots: bool| {
        !s.is_empty()
            && s.len() <= 128
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || (dots && c == '.'))
    };
    (ident(service, true) && ident(name, false)).then_some(method)
}

/// The path with its variable segments (ids, file names, tokens: anything with a digit, or
/// long) replaced by `{id}`, so that labels stay bounded.
fn http_route(path: &str) -> String {
    let mut route = String::new();
    for (i, segment) in path.split('/').filter(|s| !s.is_empty()).enumerate() {
        if i == MAX_ROUTE_SEGMENTS {
            route.push_str("/…");
            break;
        }
        route.push('/');
        let literal = segment.len() <= 24
            && segment
                .chars()
                .all(|c| c.is_ascii_alphabetic() || c == '_' || c == '-');
        route.push_str(if literal { segment } else { "{id}" });
    }
    if route.is_empty() {
        route.push('/');
    }
    route
}

fn grpc_status(headers: &HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The canonical name of a gRPC status code.
fn grpc_code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

/// A request in flight: recorded once, when its body ends, fails, or is dropped.
struct Observation {
    started: Instant,
    target: Target,
    span: tracing::Span,
    http_status: StatusCode,
    grpc_status: Option<i32>,
    done: bool,
}

impl Observation {
    /// `complete`: the body reached its end (else it failed or the client went away).
    fn record(&mut self, complete: bool) {
        if self.done {
            return;
        }
        self.done = true;
        let elapsed = self.started.elapsed();
        let (method, code, error) = match self.target.protocol {
            Protocol::grpc => {
                let code = match self.grpc_status {
                    Some(code) => grpc_code_name(code),
                    // A gRPC response always ends with a status; without one the stream broke.
                    None if complete => "UNKNOWN",
                    None => "CANCELLED",
                };
                let method = match (grpc_method(&self.target.path), code) {
                    (_, "UNIMPLEMENTED") | (None, _) => UNMATCHED.to_owned(),
                    (Some(method), _) => method.to_owned(),
                };
                self.span
                    .record("rpc.grpc.status_code", self.grpc_status.unwrap_or(2));
                let error = !matches!(code, "OK");
                (method, code.to_owned(), error)
            }
            Protocol::http => {
                let status = self.http_status;
                let route = if matches!(
                    status,
                    StatusCode::NOT_FOUND | StatusCode::METHOD_NOT_ALLOWED
                ) {
                    UNMATCHED.to_owned()
                } else {
                    http_route(&self.target.path)
                };
                self.span
                    .record("http.response.status_code", status.as_u16());
                (
                    format!("{} {route}", self.target.http_method),
                    status.as_u16().to_string(),
                    status.is_server_error(),
                )
            }
        };
        if error {
            self.span.record("otel.status_code", "ERROR");
        }
        metrics().rpc_finished(self.target.protocol, &method, &code, elapsed);
    }
}

/// The response body, watched for its trailers (the gRPC status) and its end.
pub struct ObservedBody<B> {
    inner: B,
    observation: Observation,
}

impl<B> Drop for ObservedBody<B> {
    fn drop(&mut self) {
        self.observation.record(false);
    }
}

impl<B: Body + Unpin> Body for ObservedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref() {
                    if let Some(code) = grpc_status(trailers) {
                        this.observation.grpc_status = Some(code);
                    }
                }
                if this.inner.is_end_stream() {
                    this.observation.record(true);
                }
            }
            Poll::Ready(Some(Err(_))) => this.observation.record(false),
            Poll::Ready(None) => this.observation.record(true),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B: Default> Default for ObservedBody<B> {
    fn default() -> Self {
        ObservedBody {
            inner: B::default(),
            observation: Observation {
                started: Instant::now(),
                target: Target {
                    protocol: Protocol::http,
                    http_method: http::Method::GET,
                    path: String::new(),
                },
                span: tracing::Span::none(),
                http_status: StatusCode::OK,
                grpc_status: None,
                // A body made from nothing belongs to no request: never recorded.
                done: true,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_methods_come_from_well_formed_paths_only() {
        assert_eq!(
            grpc_method("/render.v1.RenderService/CreateRender"),
            Some("render.v1.RenderService/CreateRender")
        );
        assert_eq!(
            grpc_method("/grpc.health.v1.Health/Check"),
            Some("grpc.health.v1.Health/Check")
        );
        assert_eq!(grpc_method("/a/b/c"), None);
        assert_eq!(grpc_method("/noslash"), None);
        assert_eq!(grpc_method("/svc/has space"), None);
    }

    #[test]
    fn http_routes_hide_ids_and_stay_bounded() {
        assert_eq!(
            http_route("/api/render/0193a7c2-7d4e-7b1a-9f00-0123456789ab/status"),
            "/api/render/{id}/status"
        );
        assert_eq!(http_route("/api/render/history"), "/api/render/history");
        assert_eq!(
            http_route("/downloads/0193a7c2-7d4e-7b1a-9f00-0123456789ab.mp4"),
            "/downloads/{id}"
        );
        assert_eq!(http_route("/"), "/");
        assert_eq!(http_route("/a/b/c/d/e/f/g/h"), "/a/b/c/d/e/f/…");
        assert_eq!(
            http_route("/averyveryverylongsegmentwithoutdigits"),
            "/{id}"
        );
    }

    #[test]
    fn grpc_codes_have_their_canonical_names() {
        assert_eq!(grpc_code_name(0), "OK");
        assert_eq!(grpc_code_name(8), "RESOURCE_EXHAUSTED");
        assert_eq!(grpc_code_name(16), "UNAUTHENTICATED");
        assert_eq!(grpc_code_name(99), "UNKNOWN");
    }

    /// A response body of one data frame and then `trailers`.
    struct TestBody {
        frames: std::collections::VecDeque<Frame<axum::body::Bytes>>,
    }

    impl Body for TestBody {
        type Data = axum::body::Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
            Poll::Ready(self.frames.pop_front().map(Ok))
        }
    }

    fn sample(prefix: &str) -> Option<f64> {
        let text = metrics().encode().expect("encode");
        text.lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
    }

    #[tokio::test]
    async fn a_grpc_call_is_counted_with_the_status_from_its_trailers() {
        use tower::ServiceExt;
        let inner = tower::service_fn(|_request: Request<()>| async {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", http::HeaderValue::from_static("8"));
            let body = TestBody {
                frames: [
                    Frame::data(axum::body::Bytes::from_static(b"\0\0\0\0\0")),
                    Frame::trailers(trailers),
                ]
                .into(),
            };
            Ok::<_, std::convert::Infallible>(Response::new(body))
        });
        let request = Request::post("/test.v1.LayerTest/Observe")
            .header(http::header::CONTENT_TYPE, "application/grpc")
            .body(())
            .expect("request");
        let labels =
            "{protocol=\"grpc\",method=\"test.v1.LayerTest/Observe\",code=\"RESOURCE_EXHAUSTED\"}";
        let counter = format!("renderd_rpc_requests_total{labels}");
        let response = RequestLayer
            .layer(inner)
            .oneshot(request)
            .await
            .expect("call");
        assert_eq!(sample(&counter), None, "not counted before the body ends");
        let mut body = response.into_body();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            frame.expect("frame");
        }
        assert_eq!(sample(&counter), Some(1.0));
        drop(body);
        assert_eq!(sample(&counter), Some(1.0), "recorded once");
        assert_eq!(
            sample(&format!("renderd_rpc_duration_seconds_count{labels}")),
            Some(1.0)
        );
    }

    #[tokio::test]
    async fn an_http_request_is_counted_by_route_and_status_even_if_abandoned() {
        use tower::ServiceExt;
        let inner = tower::service_fn(|_request: Request<()>| async {
            let body = TestBody {
                frames: [Frame::data(axum::body::Bytes::from_static(b"{}"))].into(),
            };
            let mut response = Response::new(body);
            *response.status_mut() = StatusCode::TOO_MANY_REQUESTS;
            Ok::<_, std::convert::Infallible>(response)
        });
        let request = Request::post("/api/layertest/0193a7c2-7d4e-7b1a-9f00-0123456789ab/cancel")
            .body(())
            .expect("request");
        let response = RequestLayer
            .layer(inner)
            .oneshot(request)
            .await
            .expect("call");
        // The client goes away before reading the body: counted when the body is dropped.
        drop(response);
        assert_eq!(
            sample(
                "renderd_rpc_requests_total{protocol=\"http\",method=\"POST /api/layertest/{id}/cancel\",code=\"429\"}"
            ),
            Some(1.0)
        );
    }

    #[test]
    fn grpc_status_is_read_from_headers_or_trailers() {
        let mut headers = HeaderMap::new();
        assert_eq!(grpc_status(&headers), None);
        headers.insert("grpc-status", http::HeaderValue::from_static("8"));
        assert_eq!(grpc_status(&headers), Some(8));
    }
}
