//! End-to-end webhooks: a real server delivers signed events to a receiver on loopback that
//! fails on purpose; delivery state is read back from the same database.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use common::server::{authed, collect_stream, create_request, state, test_config, TestServer};
use common::Audio;
use hmac::{Hmac, Mac};
use renderd::config::Config;
use renderd::grpc::pb::{self, JobState};
use renderd::store::{DeliveryState, JobStore, WebhookDelivery};
use sha2::Sha256;
use tonic::Code;
use tonic_types::StatusExt;

const SECRET: &str = "whsec_end_to_end";

/// One request the receiver got, and what it answered.
#[derive(Clone, Debug)]
struct Received {
    event_id: String,
    signature: String,
    content_type: String,
    body: Bytes,
    answered: StatusCode,
}

/// A webhook receiver on 127.0.0.1:0 that answers 500 to the first `fail_first` requests
/// (`usize::MAX`: to all of them) and 200 after that.
#[derive(Clone)]
struct Receiver {
    url: String,
    log: Arc<Mutex<Vec<Received>>>,
    fail_first: Arc<Mutex<usize>>,
    arrived: Arc<tokio::sync::Notify>,
}

async fn receive(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let mut log = receiver.log.lock().expect("log");
    let answered = if log.len() < *receiver.fail_first.lock().expect("policy") {
        StatusCode::INTERNAL_SERVER_ERROR
    } else {
        StatusCode::OK
    };
    log.push(Received {
        event_id: header("renderd-event-id"),
        signature: header("renderd-signature"),
        content_type: header("content-type"),
        body,
        answered,
    });
    receiver.arrived.notify_waiters();
    answered
}

impl Receiver {
    async fn start(fail_first: usize) -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let addr = listener.local_addr().expect("receiver address");
        let receiver = Receiver {
            url: format!("http://{addr}/hooks/renderd"),
            log: Arc::default(),
            fail_first: Arc::new(Mutex::new(fail_first)),
            arrived: Arc::default(),
        };
        let app = Router::new()
            .route("/hooks/renderd", post(receive))
            .with_state(receiver.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        receiver
    }

    fn received(&self) -> Vec<Received> {
        self.log.lock().expect("log").clone()
    }

    fn accept_from_now(&self) {
        let seen = self.log.lock().expect("log").len();
        *self.fail_first.lock().expect("policy") = seen;
    }

    /// Waits until at least `n` requests arrived.
    async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let arrived = self.arrived.notified();
            let seen = self.received();
            if seen.len() >= n {
                return seen;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!("{n} webhook requests did not arrive within {timeout:?}: {seen:?}");
            }
        }
    }
}

fn webhook_config(root: &std::path::Path) -> Config {
    let mut config = test_config(root);
    let w = &mut config.webhooks;
    w.allowed_hosts = vec!["127.0.0.1".into(), "hooks.example.com".into()];
    w.insecure_hosts = vec!["127.0.0.1".into()];
    w.signing_secret = Some(SECRET.into());
    w.backoff_base = Duration::from_millis(100);
    w.backoff_max = Duration::from_millis(400);
    w.poll_interval = Duration::from_millis(50);
    w.timeout = Duration::from_secs(2);
    w.deadline = Duration::from_secs(60);
    config
}

/// The receiver's check, written out from the documented scheme (not renderd's code):
/// `t=<unix>,v1=<hex hmac_sha256(secret, "<t>.<body>")>`.
fn assert_signed(received: &Received) {
    let (t, v1) = received
        .signature
        .split_once(',')
        .and_then(|(t, v1)| Some((t.strip_prefix("t=")?, v1.strip_prefix("v1=")?)))
        .unwrap_or_else(|| panic!("signature header {:?}", received.signature));
    let sent_at: i64 = t.parse().expect("unix seconds");
    assert!(
        (chrono::Utc::now().timestamp() - sent_at).abs() < 120,
        "timestamp {sent_at} is now"
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).expect("key");
    mac.update(t.as_bytes());
    mac.update(b".");
    mac.update(&received.body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(v1, expected, "signature of {:?}", received.body);
}

/// Polls the job's webhook events in the database until `done` holds for the first one.
async fn wait_for_delivery(
    store: &JobStore,
    job_id: &str,
    timeout: Duration,
    done: impl Fn(&WebhookDelivery) -> bool,
) -> WebhookDelivery {
    let id = renderd::domain::job::JobId::parse(job_id).expect("job id");
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let events = store
            .webhook_deliveries(&id)
            .await
            .expect("read the outbox");
        if let Some(event) = events.first().filter(|e| done(e)) {
            assert_eq!(events.len(), 1, "one event per job: {events:?}");
            return event.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "webhook of {job_id} not done within {timeout:?}: {events:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn open_store(config: &Config) -> JobStore {
    JobStore::connect(&config.database.url)
        .await
        .expect("open the server's database")
}

/// Creates a render of a tiny clip with `callback_url` and waits for its terminal state.
async fn render_with_callback(server: &TestServer, callback_url: &str) -> pb::RenderStatus {
    let video = server.media("clip.mp4");
    common::make_clip(&video, 1.0, (320, 240), 10, Audio::None);
    let token = server.token("alice");
    let mut client = server.client().await;
    let mut request = create_request("", &video, (480, 360));
    request.callback_url = callback_url.to_owned();
    let job = client
        .create_render(authed(request, &token))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(job.callback_url, callback_url);
    let statuses = collect_stream(&mut client, &token, &job.job_id, Duration::from_secs(120)).await;
    let (_, last) = statuses.last().expect("a status").clone();
    assert_eq!(state(&last), JobState::Succeeded, "{last:?}");
    last
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_receiver_that_fails_twice_gets_exactly_one_accepted_signed_delivery() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(2).await;
    let config = webhook_config(dir.path());
    let server = TestServer::start(config.clone()).await;
    let done = render_with_callback(&server, &receiver.url).await;

    let store = open_store(&config).await;
    let event = wait_for_delivery(&store, &done.job_id, Duration::from_secs(30), |e| {
        e.state == DeliveryState::Delivered
    })
    .await;
    assert_eq!(event.attempts, 3);
    assert_eq!(event.event_type, "render.succeeded");
    let received = receiver.received();
    assert_eq!(received.len(), 3, "{received:?}");
    let answers: Vec<_> = received.iter().map(|r| r.answered).collect();
    assert_eq!(
        answers,
        [
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::INTERNAL_SERVER_ERROR,
            StatusCode::OK
        ]
    );
    let accepted = received.iter().filter(|r| r.answered.is_success()).count();
    assert_eq!(accepted, 1, "exactly one accepted delivery");
    for attempt in &received {
        assert_eq!(
            attempt.event_id, event.event_id,
            "the same event id every time"
        );
        assert_eq!(attempt.content_type, "application/json");
        assert_signed(attempt);
    }

    let body: serde_json::Value =
        serde_json::from_slice(&received[2].body).expect("the body is JSON");
    assert_eq!(body["id"], event.event_id.as_str());
    assert_eq!(body["type"], "render.succeeded");
    assert!(body["created_at"]
        .as_str()
        .is_some_and(|t| t.ends_with('Z')));
    let job = &body["job"];
    assert_eq!(job["id"], done.job_id.as_str());
    assert_eq!(job["owner"], "alice");
    assert_eq!(job["state"], "SUCCEEDED");
    assert!(job["failure"].is_null());
    let output = done.output.expect("output");
    assert_eq!(job["output"]["size_bytes"], output.size_bytes);
    assert!(job["output"]["duration_seconds"]
        .as_f64()
        .is_some_and(|d| d > 0.5));
    let link = job["output"]["download_url"]
        .as_str()
        .expect("a download link");
    assert!(
        link.starts_with(&format!("{}/downloads/", server.url())),
        "{link}"
    );
    let video = reqwest::get(link).await.expect("download");
    assert_eq!(video.status(), reqwest::StatusCode::OK);
    assert_eq!(
        video.bytes().await.expect("bytes").len() as i64,
        output.size_bytes
    );

    // Delivered means done: no further attempt comes, whatever the poll interval.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), 3);
    // The attempts are counted for Prometheus (process-wide counters: at least these).
    let exposition = renderd::telemetry::metrics().encode().expect("metrics");
    let counter = |result: &str| -> f64 {
        let series = format!("renderd_webhook_deliveries_total{{result=\"{result}\"}} ");
        exposition
            .lines()
            .find_map(|line| line.strip_prefix(series.as_str()))
            .and_then(|value| value.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {series} in\n{exposition}"))
    };
    assert!(counter("delivered") >= 1.0);
    assert!(counter("failed") >= 2.0);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_restart_mid_retry_still_delivers_the_same_event() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(usize::MAX).await;
    let mut config = webhook_config(dir.path());
    // Slow retries: the event is pending between attempts when the server stops.
    config.webhooks.backoff_base = Duration::from_millis(300);
    config.webhooks.backoff_max = Duration::from_secs(1);
    let server = TestServer::start(config.clone()).await;
    let done = render_with_callback(&server, &receiver.url).await;
    let failing = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert!(failing.iter().all(|r| !r.answered.is_success()));
    server.shutdown().await;

    let store = open_store(&config).await;
    let pending = wait_for_delivery(&store, &done.job_id, Duration::from_secs(5), |_| true).await;
    assert_eq!(pending.state, DeliveryState::Pending, "{pending:?}");
    let before_restart = receiver.received().len();
    assert!(before_restart >= 1);

    receiver.accept_from_now();
    let server = TestServer::start(config.clone()).await;
    let delivered = wait_for_delivery(&store, &done.job_id, Duration::from_secs(30), |e| {
        e.state == DeliveryState::Delivered
    })
    .await;
    let received = receiver.received();
    let accepted: Vec<_> = received
        .iter()
        .filter(|r| r.answered.is_success())
        .collect();
    assert_eq!(accepted.len(), 1, "{received:?}");
    assert!(received.len() > before_restart);
    // An attempt cut short by the shutdown counts even if it never reached the receiver.
    assert!(
        delivered.attempts as usize >= received.len(),
        "{} attempts, {} received",
        delivered.attempts,
        received.len()
    );
    for attempt in &received {
        assert_eq!(attempt.event_id, pending.event_id);
        assert_signed(attempt);
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_always_failing_receiver_fails_the_event_at_its_deadline() {
    let dir = tempfile::tempdir().expect("tempdir");
    let receiver = Receiver::start(usize::MAX).await;
    let mut config = webhook_config(dir.path());
    config.worker.concurrency = 0; // the job is cancelled while queued: nothing renders
    config.webhooks.deadline = Duration::from_secs(1);
    config.webhooks.backoff_base = Duration::from_millis(100);
    config.webhooks.backoff_max = Duration::from_millis(200);
    let server = TestServer::start(config.clone()).await;
    let token = server.token("bob");
    let mut client = server.client().await;
    let video = server.media("clip.mp4");
    common::make_clip(&video, 1.0, (320, 240), 10, Audio::None);
    let mut request = create_request("", &video, (480, 360));
    request.callback_url = receiver.url.clone();
    let job = client
        .create_render(authed(request, &token))
        .await
        .expect("create")
        .into_inner();
    client
        .cancel(authed(
            pb::CancelRequest {
                job_id: job.job_id.clone(),
            },
            &token,
        ))
        .await
        .expect("cancel");

    let store = open_store(&config).await;
    let failed = wait_for_delivery(&store, &job.job_id, Duration::from_secs(20), |e| {
        e.state == DeliveryState::Failed
    })
    .await;
    assert_eq!(failed.event_type, "render.cancelled");
    // Waits of at least 100 ms within a 1 s deadline; none is scheduled past it.
    assert!(
        (2..=12).contains(&failed.attempts),
        "attempts {}",
        failed.attempts
    );
    assert!(failed
        .last_error
        .as_deref()
        .is_some_and(|e| e.contains("500")));
    assert!(failed.delivered_at.is_none());
    let received = receiver.received();
    assert_eq!(received.len(), failed.attempts as usize);
    let body: serde_json::Value = serde_json::from_slice(&received[0].body).expect("JSON");
    assert_eq!(body["type"], "render.cancelled");
    assert_eq!(body["job"]["state"], "CANCELLED");
    assert!(body["job"]["output"].is_null());

    // Failed is final.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.received().len(), received.len());
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_callback_urls_are_field_violations() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = webhook_config(dir.path());
    config.worker.concurrency = 0;
    let server = TestServer::start(config).await;
    let token = server.token("alice");
    let mut client = server.client().await;
    let video = server.media("clip.mp4");
    common::make_clip(&video, 1.0, (320, 240), 10, Audio::None);
    let too_long = format!("https://hooks.example.com/{}", "a".repeat(2100));
    for (url, problem) in [
        (
            "https://evil.example.net/hook",
            "not in the webhook allow-list",
        ),
        ("ftp://127.0.0.1/hook", "scheme 'ftp'"),
        ("http://hooks.example.com/hook", "plain http"),
        (too_long.as_str(), "longer than 2048"),
    ] {
        let mut request = create_request("", &video, (480, 360));
        request.callback_url = url.to_owned();
        let err = client
            .create_render(authed(request, &token))
            .await
            .expect_err("refused");
        assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
        let details = err.get_error_details();
        let violations = &details.bad_request().expect("BadRequest").field_violations;
        assert_eq!(violations.len(), 1, "{violations:?}");
        assert_eq!(violations[0].field, "callback_url");
        assert!(
            violations[0].description.contains(problem),
            "{url}: {}",
            violations[0].description
        );
    }
    let mut request = create_request("", &video, (480, 360));
    request.callback_url = "https://hooks.example.com/hook".into();
    let job = client
        .create_render(authed(request, &token))
        .await
        .expect("an allow-listed https callback is accepted")
        .into_inner();
    assert_eq!(job.callback_url, "https://hooks.example.com/hook");
    server.shutdown().await;
}
