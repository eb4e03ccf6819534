//! The tower layer in front of every RPC: `authorization: Bearer <jwt>` → [`Principal`] in the
//! request extensions, or a gRPC error response without calling the service.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{HeaderMap, Request, Response};
use tower::{Layer, Service};

use super::{AuthError, Verifier};

/// Builds the refusal for a failed authentication; gets the request headers (for
/// `accept-language`).
pub type RejectFn = Arc<dyn Fn(&AuthError, &HeaderMap) -> tonic::Status + Send + Sync>;

#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<Verifier>,
    public_prefixes: Arc<[String]>,
    reject: RejectFn,
}

impl AuthLayer {
    /// Requests whose path starts with one of `public_prefixes` pass without a token (and get
    /// no `Principal`).
    pub fn new(verifier: Arc<Verifier>, public_prefixes: Vec<String>, reject: RejectFn) -> Self {
        AuthLayer {
            verifier,
            public_prefixes: public_prefixes.into(),
            reject,
        }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> AuthService<S> {
        AuthService {
            inner,
            auth: self.clone(),
        }
    }
}

#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: AuthLayer,
}

impl<S> AuthService<S> {
    fn is_public(&self, path: &str) -> bool {
        self.auth
            .public_prefixes
            .iter()
            .any(|prefix| path.starts_with(prefix.as_str()))
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for AuthService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        if !self.is_public(request.uri().path()) && !is_cors_preflight(&request) {
            let verified =
                bearer_token(request.headers()).and_then(|token| self.auth.verifier.verify(token));
            match verified {
                Ok(principal) => {
                    request.extensions_mut().insert(principal);
                }
                Err(error) => {
                    tracing::debug!(
                        path = request.uri().path(),
                        reason = error.kind().as_str(),
                        "request refused by auth"
                    );
                    let status = (self.auth.reject)(&error, request.headers());
                    return Box::pin(std::future::ready(Ok(status.into_http())));
                }
            }
        }
        // The service that was polled ready is the one that must take the call.
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        Box::pin(inner.call(request))
    }
}

/// A browser's CORS preflight: it never carries credentials, so it passes unauthenticated (and
/// without a `Principal`) to the CORS layer or service that answers it.
fn is_cors_preflight<B>(request: &Request<B>) -> bool {
    let headers = request.headers();
    request.method() == http::Method::OPTIONS
        && headers.contains_key(http::header::ORIGIN)
        && headers.contains_key(http::header::ACCESS_CONTROL_REQUEST_METHOD)
}

/// The token of `authorization: Bearer <token>` (scheme case-insensitive); the REST face
/// reads it the same way.
pub fn bearer_token(headers: &HeaderMap) -> Result<&str, AuthError> {
    let value = headers
        .get(http::header::AUTHORIZATION)
        .ok_or(AuthError::Missing)?;
    let value = value
        .to_str()
        .map_err(|_| AuthError::Malformed("the authorization header is not visible ASCII"))?
        .trim();
    let (scheme, token) = value
        .split_once(|c: char| c.is_ascii_whitespace())
        .unwrap_or((value, ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(AuthError::Malformed(
            "the authorization scheme is not Bearer",
        ));
    }
    let token = token.trim();
    if token.is_empty() {
        return Err(AuthError::Missing);
    }
    Ok(token)
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use tower::ServiceExt as _;

    use super::*;
    use crate::auth::{mint_hs256, AuthConfig, MintRequest, Principal};

    const PUBLIC: &[&str] = &["/grpc.health.v1.Health/", "/downloads/"];

    fn config() -> AuthConfig {
        AuthConfig {
            hs256_secret: Some("layer-test-secret".into()),
            ..AuthConfig::default()
        }
    }

    fn layer() -> AuthLayer {
        let verifier = Arc::new(Verifier::new(&config()).expect("verifier"));
        let reject: RejectFn = Arc::new(|error: &AuthError, headers: &HeaderMap| {
            let lang = headers
                .get("accept-language")
                .and_then(|v| v.to_str().ok())
                .unwrap_or("en");
            tonic::Status::unauthenticated(format!("{lang}: {}", error.kind().as_str()))
        });
        AuthLayer::new(
            verifier,
            PUBLIC.iter().map(|s| (*s).to_owned()).collect(),
            reject,
        )
    }

    /// An inner service that counts calls and reports the principal it saw in a header.
    fn inner(
        calls: Arc<AtomicUsize>,
    ) -> impl Service<
        Request<tonic::body::Body>,
        Response = Response<tonic::body::Body>,
        Error = Infallible,
        Future = impl Send,
    > + Clone
           + Send
           + 'static {
        tower::service_fn(move |request: Request<tonic::body::Body>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let seen = request
                .extensions()
                .get::<Principal>()
                .map(|p| format!("{}/{}/{}", p.user_id, p.plan, p.is_admin()))
                .unwrap_or_else(|| "anonymous".into());
            async move {
                let mut response = Response::new(tonic::body::Body::default());
                response.headers_mut().insert(
                    "x-principal",
                    http::HeaderValue::from_str(&seen).expect("ascii principal"),
                );
                Ok::<_, Infallible>(response)
            }
        })
    }

    fn request(path: &str, authorization: Option<&str>) -> Request<tonic::body::Body> {
        let mut builder = Request::builder().uri(format!("http://localhost{path}"));
        if let Some(value) = authorization {
            builder = builder.header("authorization", value);
        }
        builder = builder.header("accept-language", "ko");
        builder.body(tonic::body::Body::default()).expect("request")
    }

    fn token(roles: Vec<String>) -> String {
        mint_hs256(
            &config(),
            &MintRequest {
                user_id: "u-9".into(),
                plan: Some("pro".into()),
                roles,
                ttl: Duration::from_secs(60),
            },
        )
        .expect("mint")
    }

    fn grpc_status(response: &Response<tonic::body::Body>) -> Option<&str> {
        response
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
    }

    #[tokio::test]
    async fn valid_token_reaches_inner_with_principal() {
        let calls = Arc::new(AtomicUsize::new(0));
        let service = layer().layer(inner(calls.clone()));
        for scheme in ["Bearer", "bearer", "BEARER"] {
            let auth = format!("{scheme} {}", token(vec!["admin".into()]));
            let response = service
                .clone()
                .oneshot(request("/render.v1.RenderService/GetRender", Some(&auth)))
                .await
                .expect("infallible");
            assert_eq!(grpc_status(&response), None);
            assert_eq!(
                response.headers().get("x-principal").map(|v| v.as_bytes()),
                Some(&b"u-9/pro/true"[..])
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn missing_or_invalid_token_is_unauthenticated_without_calling_inner() {
        let calls = Arc::new(AtomicUsize::new(0));
        let service = layer().layer(inner(calls.clone()));
        let good = token(Vec::new());
        let cases = [
            (None, "ko: missing"),
            (Some("Bearer ".to_owned()), "ko: missing"),
            (Some(format!("Basic {good}")), "ko: malformed"),
            (Some(good.clone()), "ko: malformed"),
            (Some("Bearer not.a.jwt".to_owned()), "ko: malformed"),
            (Some(format!("Bearer {good}x")), "ko: badSignature"),
        ];
        for (auth, message) in cases {
            let response = service
                .clone()
                .oneshot(request(
                    "/render.v1.RenderService/GetRender",
                    auth.as_deref(),
                ))
                .await
                .expect("infallible");
            assert_eq!(grpc_status(&response), Some("16"), "{auth:?}");
            let status = tonic::Status::from_header_map(response.headers()).expect("status");
            assert_eq!(status.code(), tonic::Code::Unauthenticated);
            assert_eq!(status.message(), message, "{auth:?}");
            assert_eq!(
                response.headers().get("content-type").map(|v| v.as_bytes()),
                Some(&b"application/grpc"[..])
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 0);
    }

    #[tokio::test]
    async fn public_prefixes_pass_without_token() {
        let calls = Arc::new(AtomicUsize::new(0));
        let service = layer().layer(inner(calls.clone()));
        for path in ["/grpc.health.v1.Health/Check", "/downloads/job-1.mp4?sig=x"] {
            let response = service
                .clone()
                .oneshot(request(path, None))
                .await
                .expect("infallible");
            assert_eq!(grpc_status(&response), None, "{path}");
            assert_eq!(
                response.headers().get("x-principal").map(|v| v.as_bytes()),
                Some(&b"anonymous"[..])
            );
        }
        assert_eq!(calls.load(Ordering::SeqCst), 2);
        // A look-alike of a public prefix is not public.
        let response = service
            .oneshot(request("/grpc.health.v1.HealthX/Check", None))
            .await
            .expect("infallible");
        assert_eq!(grpc_status(&response), Some("16"));
        assert_eq!(calls.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn cors_preflight_passes_without_token_but_other_options_do_not() {
        let calls = Arc::new(AtomicUsize::new(0));
        let service = layer().layer(inner(calls.clone()));
        let options = |preflight: bool| {
            let mut builder = Request::builder()
                .method(http::Method::OPTIONS)
                .uri("http://localhost/render.v1.RenderService/GetQuota")
                .header("origin", "https://editor.example.com");
            if preflight {
                builder = builder.header("access-control-request-method", "POST");
            }
            builder.body(tonic::body::Body::default()).expect("request")
        };
        let response = service
            .clone()
            .oneshot(options(true))
            .await
            .expect("infallible");
        assert_eq!(grpc_status(&response), None);
        assert_eq!(
            response.headers().get("x-principal").map(|v| v.as_bytes()),
            Some(&b"anonymous"[..])
        );
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        // An OPTIONS that is not a preflight, and a POST dressed as one, still need a token.
        let response = service
            .clone()
            .oneshot(options(false))
            .await
            .expect("infallible");
        assert_eq!(grpc_status(&response), Some("16"));
        let mut post = options(true);
        *post.method_mut() = http::Method::POST;
        let response = service.oneshot(post).await.expect("infallible");
        assert_eq!(grpc_status(&response), Some("16"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    /// The layer on a real tonic server (body type `tonic::body::Body`), driven by a real client.
    /// Health is deliberately not public here, so that it shows both outcomes.
    #[tokio::test]
    async fn layer_fits_tonic_server() {
        use tonic_health::pb::health_client::HealthClient;
        use tonic_health::pb::HealthCheckRequest;

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (_reporter, health) = tonic_health::server::health_reporter();
        let verifier = Arc::new(Verifier::new(&config()).expect("verifier"));
        let reject: RejectFn = Arc::new(|error: &AuthError, _: &HeaderMap| {
            tonic::Status::unauthenticated(error.to_string())
        });
        let auth = AuthLayer::new(verifier, vec!["/downloads/".into()], reject);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(
            tonic::transport::Server::builder()
                .layer(auth)
                .add_service(health)
                .serve_with_incoming_shutdown(
                    tonic::transport::server::TcpIncoming::from(listener),
                    async {
                        let _ = stopped.await;
                    },
                ),
        );

        let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
            .expect("endpoint")
            .connect()
            .await
            .expect("connect");
        let mut client = HealthClient::new(channel);
        let refused = client
            .check(HealthCheckRequest::default())
            .await
            .expect_err("no token");
        assert_eq!(refused.code(), tonic::Code::Unauthenticated);
        assert_eq!(refused.message(), AuthError::Missing.to_string());

        let mut request = tonic::Request::new(HealthCheckRequest::default());
        let bearer = format!("Bearer {}", token(Vec::new()));
        request
            .metadata_mut()
            .insert("authorization", bearer.parse().expect("metadata"));
        let response = client.check(request).await.expect("authorised call");
        assert_eq!(
            response.into_inner().status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );

        let _ = stop.send(());
        server.await.expect("join").expect("server");
    }

    #[test]
    fn bearer_parsing() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), Err(AuthError::Missing));
        headers.insert(
            "authorization",
            "Bearer   abc.def.ghi  ".parse().expect("value"),
        );
        assert_eq!(bearer_token(&headers), Ok("abc.def.ghi"));
        headers.insert("authorization", "Token abc".parse().expect("value"));
        assert!(matches!(
            bearer_token(&headers),
            Err(AuthError::Malformed(_))
        ));
    }
}
