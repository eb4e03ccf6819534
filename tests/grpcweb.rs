//! Browsers on the gRPC port: gRPC-Web (unary and server streaming, over HTTP/1.1 as a page on
//! an http:// origin sends it) and CORS for the configured origins, checked with hand-framed
//! gRPC-Web requests from reqwest and with a real gRPC-Web client, `buf curl --protocol grpcweb`
//! (from @bufbuild/buf on npm; `scripts/test` installs it and names it in RENDERD_TEST_BUF,
//! without which that test is skipped, except under CI, where that is a failure).

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use common::server::{assert_error, authed, create_request, test_config, TestServer};
use common::Audio;
use prost::Message as _;
use renderd::grpc::pb;
use reqwest::header::{HeaderMap, HeaderValue};

const EDITOR: &str = "https://editor.example.com";
const FOREIGN: &str = "https://elsewhere.example.net";
const GRPC_WEB: &str = "application/grpc-web+proto";
const STREAM_TIMEOUT: Duration = Duration::from_secs(120);

fn http1() -> reqwest::Client {
    reqwest::Client::builder()
        .http1_only()
        .timeout(STREAM_TIMEOUT)
        .build()
        .expect("reqwest client")
}

/// One gRPC-Web data frame holding `message`.
fn frame(message: &impl prost::Message) -> Vec<u8> {
    let payload = message.encode_to_vec();
    let mut framed = vec![0];
    framed.extend_from_slice(&u32::try_from(payload.len()).expect("small").to_be_bytes());
    framed.extend_from_slice(&payload);
    framed
}

/// A gRPC-Web response body split into its messages and its trailers frame.
fn unframe(mut body: &[u8]) -> (Vec<Vec<u8>>, HeaderMap) {
    let mut messages = Vec::new();
    let mut trailers = HeaderMap::new();
    while !body.is_empty() {
        assert!(body.len() >= 5, "truncated frame header: {body:?}");
        let flags = body[0];
        let len = u32::from_be_bytes([body[1], body[2], body[3], body[4]]) as usize;
        assert!(body.len() >= 5 + len, "truncated frame of {len} bytes");
        let payload = &body[5..5 + len];
        if flags & 0x80 != 0 {
            let text = std::str::from_utf8(payload).expect("trailers are text");
            for line in text.split("\r\n").filter(|l| !l.is_empty()) {
                let (name, value) = line.split_once(':').expect("name: value");
                trailers.append(
                    reqwest::header::HeaderName::from_bytes(name.trim().as_bytes())
                        .expect("trailer name"),
                    HeaderValue::from_str(value.trim()).expect("trailer value"),
                );
            }
        } else {
            assert_eq!(flags, 0, "uncompressed message frames only");
            messages.push(payload.to_vec());
        }
        body = &body[5 + len..];
    }
    (messages, trailers)
}

/// POSTs `message` to `/{method}` as gRPC-Web; returns the HTTP status, the headers, the
/// decoded messages and the trailers.
async fn call_grpc_web(
    base: &str,
    method: &str,
    message: &impl prost::Message,
    extra: &[(&str, &str)],
) -> (reqwest::StatusCode, HeaderMap, Vec<Vec<u8>>, HeaderMap) {
    let mut request = http1()
        .post(format!("{base}/{method}"))
        .header("content-type", GRPC_WEB)
        .header("x-grpc-web", "1")
        .body(frame(message));
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    let response = request.send().await.expect("gRPC-Web call");
    assert_eq!(response.version(), reqwest::Version::HTTP_11);
    let status = response.status();
    let headers = response.headers().clone();
    let body = tokio::time::timeout(STREAM_TIMEOUT, response.bytes())
        .await
        .expect("the response ends in time")
        .expect("body");
    let (messages, trailers) = unframe(&body);
    (status, headers, messages, trailers)
}

/// The gRPC status of a gRPC-Web response: from the trailers frame, or from the headers of a
/// trailers-only response.
fn grpc_status(headers: &HeaderMap, trailers: &HeaderMap) -> tonic::Status {
    tonic::Status::from_header_map(trailers)
        .or_else(|| tonic::Status::from_header_map(headers))
        .expect("a grpc-status")
}

async fn preflight(base: &str, origin: &str, path: &str) -> reqwest::Response {
    http1()
        .request(reqwest::Method::OPTIONS, format!("{base}{path}"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type,x-grpc-web,x-user-agent,grpc-timeout",
        )
        .send()
        .await
        .expect("preflight")
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpc_web_unary_streaming_auth_and_cors_over_http1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.server.allowed_origins = vec![EDITOR.to_owned()];
    let server = TestServer::start(config).await;
    let base = server.url();
    let token = server.token("web-user");
    let bearer = format!("Bearer {token}");

    // Preflights: the allowed origin gets the CORS answer, a foreign one does not; neither
    // needs a token.
    let allowed = preflight(&base, EDITOR, "/render.v1.RenderService/GetQuota").await;
    assert!(allowed.status().is_success(), "{allowed:?}");
    let headers = allowed.headers();
    assert_eq!(header(headers, "access-control-allow-origin"), Some(EDITOR));
    let allow_headers = header(headers, "access-control-allow-headers").unwrap_or_default();
    for name in [
        "authorization",
        "content-type",
        "x-grpc-web",
        "x-user-agent",
        "grpc-timeout",
        "accept-language",
        "traceparent",
    ] {
        assert!(allow_headers.contains(name), "{name} in {allow_headers}");
    }
    assert!(header(headers, "access-control-allow-methods")
        .unwrap_or_default()
        .contains("POST"));
    assert_eq!(header(headers, "access-control-max-age"), Some("3600"));
    assert_eq!(header(headers, "grpc-status"), None, "not refused by auth");
    let foreign = preflight(&base, FOREIGN, "/render.v1.RenderService/GetQuota").await;
    assert_eq!(
        header(foreign.headers(), "access-control-allow-origin"),
        None
    );

    // Unary, public: Health/Check.
    let (http, headers, messages, trailers) = call_grpc_web(
        &base,
        "grpc.health.v1.Health/Check",
        &tonic_health::pb::HealthCheckRequest::default(),
        &[],
    )
    .await;
    assert_eq!(http, reqwest::StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), Some(GRPC_WEB));
    assert_eq!(grpc_status(&headers, &trailers).code(), tonic::Code::Ok);
    assert_eq!(messages.len(), 1);
    let health = tonic_health::pb::HealthCheckResponse::decode(&messages[0][..]).expect("decode");
    assert_eq!(
        health.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    // Unary, authenticated exactly like gRPC: refused without a token (the auth layer's
    // refusal arrives as gRPC-Web, with its ErrorInfo), served with one; CORS headers for
    // the page, which may read the error details.
    let (_, headers, messages, trailers) = call_grpc_web(
        &base,
        "render.v1.RenderService/GetQuota",
        &pb::GetQuotaRequest {},
        &[("origin", EDITOR)],
    )
    .await;
    assert_eq!(header(&headers, "content-type"), Some(GRPC_WEB));
    assert!(messages.is_empty());
    assert_error(
        &grpc_status(&headers, &trailers),
        tonic::Code::Unauthenticated,
        "RENDER_AUTH_ERROR",
    );
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        Some(EDITOR)
    );
    let exposed = header(&headers, "access-control-expose-headers").unwrap_or_default();
    for name in ["grpc-status", "grpc-message", "grpc-status-details-bin"] {
        assert!(exposed.contains(name), "{name} exposed: {exposed}");
    }
    let (_, headers, messages, trailers) = call_grpc_web(
        &base,
        "render.v1.RenderService/GetQuota",
        &pb::GetQuotaRequest {},
        &[("origin", EDITOR), ("authorization", &bearer)],
    )
    .await;
    assert_eq!(grpc_status(&headers, &trailers).code(), tonic::Code::Ok);
    assert_eq!(messages.len(), 1);
    let quota = pb::QuotaUsage::decode(&messages[0][..]).expect("decode");
    assert_eq!(quota.user_id, "web-user");

    // Server streaming: StreamStatus of a render created over gRPC, read over gRPC-Web until
    // the trailers.
    let video = server.media("web.mp4");
    common::make_clip(&video, 1.0, (640, 360), 10, Audio::None);
    let job = server
        .client()
        .await
        .create_render(authed(create_request("", &video, (640, 360)), &token))
        .await
        .expect("create")
        .into_inner();
    let (http, headers, messages, trailers) = call_grpc_web(
        &base,
        "render.v1.RenderService/StreamStatus",
        &pb::StreamStatusRequest {
            job_id: job.job_id.clone(),
        },
        &[("authorization", &bearer), ("origin", EDITOR)],
    )
    .await;
    assert_eq!(http, reqwest::StatusCode::OK);
    assert_eq!(header(&headers, "content-type"), Some(GRPC_WEB));
    assert_eq!(
        grpc_status(&headers, &trailers).code(),
        tonic::Code::Ok,
        "{trailers:?}"
    );
    let statuses: Vec<pb::RenderStatus> = messages
        .iter()
        .map(|m| pb::RenderStatus::decode(&m[..]).expect("decode"))
        .collect();
    assert!(!statuses.is_empty());
    assert!(statuses.iter().all(|s| s.job_id == job.job_id));
    let last = statuses.last().expect("a status");
    assert_eq!(common::server::state(last), pb::JobState::Succeeded);
    for pair in statuses.windows(2) {
        assert!(pair[0].progress <= pair[1].progress, "{pair:?}");
    }

    // HTTP/1.1 that is not gRPC-Web still reaches the other routes: the download.
    let url = last
        .output
        .as_ref()
        .map(|o| o.download_url.clone())
        .expect("output");
    let download = http1().get(url).send().await.expect("download");
    assert_eq!(download.status(), reqwest::StatusCode::OK);
    assert!(download.bytes().await.expect("bytes").len() > 1000);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn without_configured_origins_there_are_no_cors_headers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.worker.concurrency = 0;
    assert!(config.server.allowed_origins.is_empty());
    let server = TestServer::start(config).await;
    let base = server.url();

    let answer = preflight(&base, EDITOR, "/render.v1.RenderService/GetQuota").await;
    let cors: Vec<_> = answer
        .headers()
        .keys()
        .filter(|name| name.as_str().starts_with("access-control-"))
        .collect();
    assert!(cors.is_empty(), "no CORS headers: {cors:?}");
    // The preflight passed the auth layer (it carries no token and is not refused with
    // UNAUTHENTICATED); nothing on this server answers it for a browser.
    assert_ne!(header(answer.headers(), "grpc-status"), Some("16"));

    // gRPC-Web itself still works (same-origin pages, proxies in front).
    let (_, headers, messages, trailers) = call_grpc_web(
        &base,
        "grpc.health.v1.Health/Check",
        &tonic_health::pb::HealthCheckRequest::default(),
        &[("origin", EDITOR)],
    )
    .await;
    assert_eq!(grpc_status(&headers, &trailers).code(), tonic::Code::Ok);
    assert_eq!(messages.len(), 1);
    assert_eq!(header(&headers, "access-control-allow-origin"), None);
    server.shutdown().await;
}

/// The buf executable named by RENDERD_TEST_BUF, or `None` (after saying why).
fn buf() -> Option<PathBuf> {
    match std::env::var_os("RENDERD_TEST_BUF") {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var_os("CI").is_some() => {
            panic!("RENDERD_TEST_BUF is not set: run the tests through scripts/test")
        }
        None => {
            eprintln!("skipping: RENDERD_TEST_BUF is not set (scripts/test sets it)");
            None
        }
    }
}

/// `buf curl --protocol grpcweb ARGS…` from the repository root: (exit code, stdout, stderr).
fn buf_curl(buf: &PathBuf, args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(buf)
        .current_dir(common::repo(""))
        .args(["curl", "--protocol", "grpcweb", "--connect-timeout", "10"])
        .args(args)
        .output()
        .expect("run buf curl");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The JSON documents `buf curl` printed, one per response message.
fn json_documents(text: &str) -> Vec<serde_json::Value> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<serde_json::Value>()
        .collect::<Result<_, _>>()
        .unwrap_or_else(|e| panic!("buf curl printed JSON: {e}\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn buf_curl_speaks_grpc_web_to_renderd() {
    let Some(buf) = buf() else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.server.allowed_origins = vec![EDITOR.to_owned()];
    let server = TestServer::start(config).await;
    let base = server.url();
    let token = server.token("buf-user");
    let auth = format!("Authorization: Bearer {token}");
    let video = server.media("buf.mp4");
    common::make_clip(&video, 1.0, (640, 360), 10, Audio::None);
    let job = server
        .client()
        .await
        .create_render(authed(create_request("", &video, (640, 360)), &token))
        .await
        .expect("create")
        .into_inner();
    let stream_body = serde_json::json!({ "jobId": job.job_id }).to_string();

    let runs = tokio::task::spawn_blocking(move || {
        let url = |method: &str| format!("{base}/{method}");
        // Streaming first, while the job renders: over HTTP/1.1 (as a browser on an http://
        // origin), so the schema comes from proto/ (reflection needs HTTP/2).
        let stream = buf_curl(
            &buf,
            &[
                "--reflect=false",
                "--schema",
                ".",
                "-H",
                &auth,
                "-d",
                &stream_body,
                &url("render.v1.RenderService/StreamStatus"),
            ],
        );
        // Through reflection (which makes buf curl use HTTP/2 for the whole run).
        let health = buf_curl(&buf, &[&url("grpc.health.v1.Health/Check")]);
        let quota = buf_curl(
            &buf,
            &[
                "-H",
                &auth,
                "-d",
                "{}",
                &url("render.v1.RenderService/GetQuota"),
            ],
        );
        let denied = buf_curl(
            &buf,
            &["-d", "{}", &url("render.v1.RenderService/GetQuota")],
        );
        let finished = buf_curl(
            &buf,
            &[
                "-H",
                &auth,
                "-d",
                &stream_body,
                &url("render.v1.RenderService/StreamStatus"),
            ],
        );
        (stream, health, quota, denied, finished)
    });
    let (stream, health, quota, denied, finished) =
        tokio::time::timeout(STREAM_TIMEOUT + Duration::from_secs(60), runs)
            .await
            .expect("buf curl finishes")
            .expect("join");

    let (code, out, err) = stream;
    assert_eq!(code, Some(0), "StreamStatus over HTTP/1.1:\n{out}{err}");
    let statuses = json_documents(&out);
    assert!(!statuses.is_empty(), "{out}");
    assert!(statuses.iter().all(|s| s["jobId"] == job.job_id.as_str()));
    assert_eq!(
        statuses.last().map(|s| s["state"].clone()),
        Some(serde_json::json!("JOB_STATE_SUCCEEDED")),
        "{out}"
    );

    let (code, out, err) = health;
    assert_eq!(code, Some(0), "Health/Check:\n{out}{err}");
    assert_eq!(
        json_documents(&out),
        [serde_json::json!({"status": "SERVING"})]
    );

    let (code, out, err) = quota;
    assert_eq!(code, Some(0), "GetQuota:\n{out}{err}");
    let usage = json_documents(&out);
    assert_eq!(usage.len(), 1, "{out}");
    assert_eq!(usage[0]["userId"], "buf-user");
    assert!(
        usage[0]["daily"]["used"].as_i64().unwrap_or(0) >= 1,
        "{out}"
    );

    let (code, out, err) = denied;
    // buf curl exits with the gRPC code shifted left by three bits: UNAUTHENTICATED (16).
    assert_eq!(code, Some(16 << 3), "GetQuota without a token:\n{out}{err}");
    // The error JSON carries the google.rpc.Status details as base64 (type names resolved
    // through reflection); the ErrorInfo decodes to our reason.
    let error = json_documents(&err);
    assert_eq!(error.len(), 1, "{err}");
    assert_eq!(error[0]["code"], "unauthenticated", "{err}");
    let info = error[0]["details"]
        .as_array()
        .and_then(|details| details.iter().find(|d| d["type"] == "google.rpc.ErrorInfo"))
        .and_then(|d| d["value"].as_str())
        .unwrap_or_else(|| panic!("an ErrorInfo detail:\n{err}"));
    let info = base64::engine::general_purpose::STANDARD
        .decode(info)
        .expect("base64 ErrorInfo");
    let info = tonic_types::pb::ErrorInfo::decode(&info[..]).expect("ErrorInfo");
    assert_eq!(info.reason, "RENDER_AUTH_ERROR");
    assert_eq!(info.domain, "render.v1");

    let (code, out, err) = finished;
    assert_eq!(
        code,
        Some(0),
        "StreamStatus through reflection:\n{out}{err}"
    );
    let statuses = json_documents(&out);
    assert_eq!(
        statuses.last().map(|s| s["state"].clone()),
        Some(serde_json::json!("JOB_STATE_SUCCEEDED")),
        "{out}"
    );
    server.shutdown().await;
}
