//! Observability end to end: a real server with Prometheus metrics on 127.0.0.1:0 and OTLP
//! trace export to a stand-in collector in this test. One render, then: `/metrics` shows the
//! RPC, job, frame, fps, encoder and quota numbers, and the exported spans form one trace
//! from the caller's `traceparent` through the request, the job and the render.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::Router;
use common::server::{authed, collect_stream, create_request, state, test_config, TestServer};
use common::Audio;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use renderd::grpc::pb::JobState;
use tonic::Code;

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

type Captured = Arc<Mutex<Vec<Span>>>;

/// An OTLP/HTTP receiver on 127.0.0.1:0 keeping every span it is sent.
async fn start_collector() -> (String, Captured) {
    async fn receive(State(spans): State<Captured>, body: Bytes) -> impl IntoResponse {
        let Ok(request) = ExportTraceServiceRequest::decode(body) else {
            return (StatusCode::BAD_REQUEST, Vec::new());
        };
        let received = request
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans);
        spans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(received);
        (
            StatusCode::OK,
            ExportTraceServiceResponse::default().encode_to_vec(),
        )
    }
    let spans: Captured = Arc::default();
    let app = Router::new()
        .route("/v1/traces", post(receive))
        .with_state(Arc::clone(&spans));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind the collector");
    let addr = listener.local_addr().expect("collector address");
    tokio::spawn(async move {
        axum::serve(listener, app).await.expect("collector runs");
    });
    (format!("http://{addr}"), spans)
}

/// The value of the first sample whose line starts with `prefix` (metric name and labels).
fn sample(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
        .unwrap_or_else(|| panic!("no sample {prefix} in\n{text}"))
}

async fn scrape(server: &TestServer) -> String {
    let addr = server.running.metrics_addr.expect("metrics are enabled");
    let response = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .expect("scrape /metrics");
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let content_type = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    response.text().await.expect("metrics text")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn describe(spans: &[Span]) -> String {
    spans
        .iter()
        .map(|s| {
            format!(
                "{} trace={} id={} parent={}",
                s.name,
                hex(&s.trace_id),
                hex(&s.span_id),
                hex(&s.parent_span_id)
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_and_one_trace_from_request_to_render() {
    let (collector, captured) = start_collector().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.telemetry.metrics_listen = "127.0.0.1:0".parse().expect("address");
    config.telemetry.otlp_endpoint = Some(collector);
    // One create a minute, so that the second one is refused by the rate limit.
    config.rate_limit.create_per_minute = 1;
    let telemetry = renderd::telemetry::init(&config.telemetry).expect("telemetry starts");
    assert!(telemetry.exporting());

    let server = TestServer::start(config).await;
    let video = server.media("clip.mp4");
    common::make_clip(&video, 1.0, (320, 240), 10, Audio::None);
    let token = server.token("tracer");
    let mut client = server.client().await;

    let mut request = authed(create_request("", &video, (480, 360)), &token);
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01")
            .parse()
            .expect("header value"),
    );
    let job = client
        .create_render(request)
        .await
        .expect("create")
        .into_inner();
    let seen = collect_stream(&mut client, &token, &job.job_id, Duration::from_secs(120)).await;
    let last = seen.last().map(|(_, s)| state(s));
    assert_eq!(last, Some(JobState::Succeeded), "the render succeeds");

    let text = scrape(&server).await;
    let create = "{protocol=\"grpc\",method=\"render.v1.RenderService/CreateRender\",code=\"OK\"}";
    assert!(sample(&text, &format!("renderd_rpc_requests_total{create}")) >= 1.0);
    assert!(
        sample(
            &text,
            &format!("renderd_rpc_duration_seconds_count{create}")
        ) >= 1.0
    );
    assert!(sample(&text, &format!("renderd_rpc_duration_seconds_sum{create}")) > 0.0);
    assert!(sample(&text, "renderd_jobs{state=\"succeeded\"}") >= 1.0);
    assert_eq!(sample(&text, "renderd_queue_depth "), 0.0);
    assert!(sample(&text, "renderd_jobs_finished_total{state=\"succeeded\"}") >= 1.0);
    assert!(sample(&text, "renderd_frames_rendered_total ") >= 10.0);
    assert!(sample(&text, "renderd_render_fps_count ") >= 1.0);
    assert!(sample(&text, "renderd_render_fps_sum ") > 0.0);
    assert!(sample(&text, "renderd_render_last_fps ") > 0.0);
    assert!(sample(&text, "renderd_encoder_jobs_total{encoder=\"x264\"}") >= 1.0);

    let refused = client
        .create_render(authed(create_request("", &video, (480, 360)), &token))
        .await
        .expect_err("over the rate limit");
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    let text = scrape(&server).await;
    assert!(sample(&text, "renderd_quota_rejections_total{kind=\"rate\"}") >= 1.0);
    let limited =
        "{protocol=\"grpc\",method=\"render.v1.RenderService/CreateRender\",code=\"RESOURCE_EXHAUSTED\"}";
    assert!(sample(&text, &format!("renderd_rpc_requests_total{limited}")) >= 1.0);
    println!("--- /metrics after the render ---\n{text}");

    // Shutting down flushes the spans to the collector.
    server.shutdown().await;
    tokio::task::spawn_blocking(move || telemetry.shutdown())
        .await
        .expect("telemetry shutdown");

    let spans = captured.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let in_trace: Vec<&Span> = spans
        .iter()
        .filter(|s| hex(&s.trace_id) == TRACE_ID)
        .collect();
    let all = describe(&spans);
    let request = in_trace
        .iter()
        .find(|s| s.name == "render.v1.RenderService/CreateRender")
        .unwrap_or_else(|| panic!("no CreateRender request span in the caller's trace:\n{all}"));
    assert_eq!(
        hex(&request.parent_span_id),
        CALLER_SPAN_ID,
        "the request span continues the caller's span"
    );
    let job_span = in_trace
        .iter()
        .find(|s| s.name == "job" && s.parent_span_id == request.span_id)
        .unwrap_or_else(|| panic!("no job span under the request span:\n{all}"));
    let render = in_trace
        .iter()
        .find(|s| s.name == "render" && s.parent_span_id == job_span.span_id)
        .unwrap_or_else(|| panic!("no render span under the job span:\n{all}"));
    assert!(render.end_time_unix_nano > render.start_time_unix_nano);
    println!(
        "--- trace {TRACE_ID} ---\n{}",
        describe(&[(*request).clone(), (*job_span).clone(), (*render).clone()])
    );
}
