//! The editor's REST contract (`../shared/CONTRACT.md`) on the gRPC port, driven the way the
//! editor's `renderService` drives it: create → poll status every 0.5 s → download → history.
//! Every response field is checked by name and JSON type; refusals are checked for their HTTP
//! status and `{"detail": {"error", "message", "code", "details"}}` body.

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::server::{test_config, TestServer, SECRET};
use common::Audio;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

const EDITOR: &str = "https://editor.example.com";
const POLL_EVERY: Duration = Duration::from_millis(500);
const STATUSES: [&str; 5] = ["queued", "processing", "completed", "failed", "cancelled"];

/// A response: status, headers, JSON body.
struct Reply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

/// One REST call. `auth` is sent as given (e.g. `Bearer …`); `extra` headers too.
async fn call(
    http: &reqwest::Client,
    method: Method,
    url: &str,
    auth: Option<&str>,
    extra: &[(&str, &str)],
    body: Option<String>,
) -> Reply {
    let mut request = http.request(method, url);
    if let Some(auth) = auth {
        request = request.header("authorization", auth);
    }
    for (name, value) in extra {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = request.send().await.expect("request sent");
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body");
    let body = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{status}: body is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    if status.is_success() || status.is_client_error() || status.is_server_error() {
        let content_type = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
    }
    Reply {
        status,
        headers,
        body,
    }
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn keys(object: &Value) -> BTreeSet<String> {
    object
        .as_object()
        .unwrap_or_else(|| panic!("an object: {object}"))
        .keys()
        .cloned()
        .collect()
}

fn set(names: &[&str]) -> BTreeSet<String> {
    names.iter().map(|s| (*s).to_owned()).collect()
}

fn assert_timestamp(value: &Value, what: &str) -> chrono::DateTime<chrono::FixedOffset> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is a string: {value}"));
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("{what} is RFC 3339 ({e}): {text}"))
}

fn assert_uint(value: &Value, what: &str) -> u64 {
    value
        .as_u64()
        .unwrap_or_else(|| panic!("{what} is a non-negative integer: {value}"))
}

/// Checks the contract's error body and returns its `details`.
fn assert_error(reply: &Reply, status: u16, error: &str, code: &str) -> Value {
    assert_eq!(reply.status.as_u16(), status, "{}", reply.body);
    assert_eq!(keys(&reply.body), set(&["detail"]), "{}", reply.body);
    let detail = &reply.body["detail"];
    assert_eq!(
        keys(detail),
        set(&["error", "message", "code", "details"]),
        "{detail}"
    );
    assert_eq!(detail["error"], error, "{detail}");
    assert_eq!(detail["code"], code, "{detail}");
    let message = detail["message"].as_str().expect("message is a string");
    assert!(!message.is_empty());
    assert!(
        detail["details"].is_object(),
        "details is an object: {detail}"
    );
    detail["details"].clone()
}

/// The `field` of every problem in a validation error's details.
fn problem_fields(details: &Value) -> Vec<String> {
    details["problems"]
        .as_array()
        .unwrap_or_else(|| panic!("problems is a list: {details}"))
        .iter()
        .map(|p| {
            assert_eq!(keys(p), set(&["field", "message"]), "{p}");
            assert!(p["message"].as_str().is_some_and(|m| !m.is_empty()), "{p}");
            p["field"].as_str().expect("field is a string").to_owned()
        })
        .collect()
}

fn demo_scenario() -> Value {
    serde_json::from_str(
        &std::fs::read_to_string(common::repo("demo/scenario.json")).expect("demo scenario"),
    )
    .expect("demo scenario is JSON")
}

fn create_body(video: &std::path::Path) -> String {
    json!({
        "videoUrl": format!("file://{}", video.display()),
        "scenario": demo_scenario(),
        "options": {"width": 480, "height": 360, "fps": 10, "quality": 80, "format": "mp4"},
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn editor_flow_create_poll_download_history() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.server.allowed_origins = vec![EDITOR.to_owned()];
    let server = TestServer::start(config).await;
    let video = server.media("clip.mp4");
    common::make_clip(&video, 1.0, (480, 360), 10, Audio::AacTone);
    let api = format!("{}/api/render", server.url());
    let http = reqwest::Client::new();
    let alice = bearer(&server.token("alice"));

    // Create: {jobId, estimatedTime (s, int), createdAt}.
    let created = call(
        &http,
        Method::POST,
        &format!("{api}/create"),
        Some(&alice),
        &[],
        Some(create_body(&video)),
    )
    .await;
    assert_eq!(created.status, StatusCode::OK, "{}", created.body);
    assert_eq!(
        keys(&created.body),
        set(&["jobId", "estimatedTime", "createdAt"])
    );
    let job_id = created.body["jobId"]
        .as_str()
        .expect("jobId is a string")
        .to_owned();
    assert!(uuid::Uuid::try_parse(&job_id).is_ok(), "{job_id}");
    assert!(assert_uint(&created.body["estimatedTime"], "estimatedTime") >= 1);
    let created_at = assert_timestamp(&created.body["createdAt"], "createdAt");

    // Poll every 0.5 s, as the editor does (it polls every 5 s for up to 25 min).
    let status_fields = set(&[
        "jobId",
        "status",
        "progress",
        "estimatedTimeRemaining",
        "startedAt",
        "completedAt",
        "downloadUrl",
        "error",
    ]);
    let mut seen = Vec::new();
    let mut last_progress = 0;
    let done = loop {
        let reply = call(
            &http,
            Method::GET,
            &format!("{api}/{job_id}/status"),
            Some(&alice),
            &[],
            None,
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        let body = reply.body;
        assert!(keys(&body).is_subset(&status_fields), "{body}");
        assert!(keys(&body).contains("progress"), "{body}");
        assert_eq!(body["jobId"], job_id.as_str());
        let status = body["status"].as_str().expect("status is a string");
        assert!(STATUSES.contains(&status), "{status}");
        let progress = assert_uint(&body["progress"], "progress");
        assert!(progress <= 100, "{progress}");
        assert!(progress >= last_progress, "progress went back: {body}");
        last_progress = progress;
        if let Some(eta) = body.get("estimatedTimeRemaining") {
            assert_uint(eta, "estimatedTimeRemaining");
        }
        if let Some(started) = body.get("startedAt") {
            assert!(assert_timestamp(started, "startedAt") >= created_at);
        }
        seen.push(status.to_owned());
        if status == "completed" {
            break body;
        }
        assert!(
            status == "queued" || status == "processing",
            "no failure expected: {body}"
        );
        assert!(seen.len() < 240, "not completed within 120 s: {seen:?}");
        tokio::time::sleep(POLL_EVERY).await;
    };
    assert_eq!(
        keys(&done),
        set(&[
            "jobId",
            "status",
            "progress",
            "startedAt",
            "completedAt",
            "downloadUrl"
        ]),
        "{done}"
    );
    assert_eq!(done["progress"], 100);
    let started_at = assert_timestamp(&done["startedAt"], "startedAt");
    let completed_at = assert_timestamp(&done["completedAt"], "completedAt");
    assert!(created_at <= started_at && started_at <= completed_at);

    // Download the MP4 from the signed link and probe it.
    let download_url = done["downloadUrl"]
        .as_str()
        .expect("downloadUrl is a string");
    let response = http.get(download_url).send().await.expect("download");
    assert_eq!(response.status(), StatusCode::OK);
    let bytes = response.bytes().await.expect("video bytes");
    let downloaded = dir.path().join("downloaded.mp4");
    std::fs::write(&downloaded, &bytes).expect("save");
    let probe = common::ffprobe(&downloaded);
    let video_stream = common::stream(&probe, "video").expect("video stream");
    assert_eq!(video_stream["codec_name"], "h264");
    assert_eq!(video_stream["width"], 480);
    assert_eq!(video_stream["height"], 360);
    assert_eq!(common::num(&video_stream["nb_read_frames"]), 10.0);
    assert!(common::stream(&probe, "audio").is_some(), "audio kept");

    // History: newest first, with the finished job's file.
    let history = call(
        &http,
        Method::GET,
        &format!("{api}/history?limit=5"),
        Some(&alice),
        &[],
        None,
    )
    .await;
    assert_eq!(history.status, StatusCode::OK, "{}", history.body);
    let items = history.body.as_array().expect("history is a list");
    assert_eq!(items.len(), 1, "{items:?}");
    let item = &items[0];
    assert_eq!(
        keys(item),
        set(&[
            "jobId",
            "videoName",
            "status",
            "createdAt",
            "completedAt",
            "downloadUrl",
            "fileSize",
            "duration"
        ]),
        "{item}"
    );
    assert_eq!(item["jobId"], job_id.as_str());
    assert_eq!(item["videoName"], "clip.mp4");
    assert_eq!(item["status"], "completed");
    assert_eq!(
        assert_timestamp(&item["createdAt"], "createdAt"),
        created_at
    );
    assert_eq!(
        assert_timestamp(&item["completedAt"], "completedAt"),
        completed_at
    );
    assert!(item["downloadUrl"]
        .as_str()
        .is_some_and(|u| u.contains("/downloads/")));
    assert_eq!(
        assert_uint(&item["fileSize"], "fileSize"),
        bytes.len() as u64
    );
    let duration = item["duration"].as_f64().expect("duration is a number");
    assert!((duration - 1.0).abs() < 0.2, "{duration}");

    // A finished job cannot be cancelled.
    let finished = call(
        &http,
        Method::POST,
        &format!("{api}/{job_id}/cancel"),
        Some(&alice),
        &[],
        None,
    )
    .await;
    let details = assert_error(
        &finished,
        409,
        "INVALID_JOB_STATE",
        "RENDER_JOB_NOT_CANCELLABLE",
    );
    assert_eq!(details["state"], "succeeded");

    // A second, newer job comes first; `limit` bounds the list.
    let second = call(
        &http,
        Method::POST,
        &format!("{api}/create"),
        Some(&alice),
        &[],
        Some(create_body(&video)),
    )
    .await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    let newest = call(
        &http,
        Method::GET,
        &format!("{api}/history?limit=1"),
        Some(&alice),
        &[],
        None,
    )
    .await;
    let items = newest.body.as_array().expect("history is a list");
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["jobId"], second.body["jobId"]);
    let all = call(
        &http,
        Method::GET,
        &format!("{api}/history"),
        Some(&alice),
        &[],
        None,
    )
    .await;
    let ids: Vec<&Value> = all
        .body
        .as_array()
        .expect("history is a list")
        .iter()
        .map(|i| &i["jobId"])
        .collect();
    assert_eq!(ids, [&second.body["jobId"], &json!(job_id)]);
    let too_many = call(
        &http,
        Method::GET,
        &format!("{api}/history?limit=1000"),
        Some(&alice),
        &[],
        None,
    )
    .await;
    let details = assert_error(
        &too_many,
        400,
        "VALIDATION_ERROR",
        "RENDER_VALIDATION_FAILED",
    );
    assert_eq!(problem_fields(&details), ["limit"]);

    // The editor's cookie works from an allowed Origin …
    let token = server.token("alice");
    let cookie = format!("theme=dark; access_token={token}");
    let by_cookie = call(
        &http,
        Method::GET,
        &format!("{api}/{job_id}/status"),
        None,
        &[("cookie", &cookie), ("origin", EDITOR)],
        None,
    )
    .await;
    assert_eq!(by_cookie.status, StatusCode::OK, "{}", by_cookie.body);
    assert_eq!(by_cookie.body["status"], "completed");
    // … and is refused from any other page, or with no Origin at all (CSRF guard).
    for origin in [Some("https://evil.example.com"), None] {
        let mut headers = vec![("cookie", cookie.as_str())];
        headers.extend(origin.map(|o| ("origin", o)));
        let refused = call(
            &http,
            Method::GET,
            &format!("{api}/{job_id}/status"),
            None,
            &headers,
            None,
        )
        .await;
        assert_error(&refused, 403, "FORBIDDEN", "RENDER_FORBIDDEN");
    }
    // CORS lets the editor's page read responses, with credentials.
    let preflight = http
        .request(Method::OPTIONS, format!("{api}/create"))
        .header("origin", EDITOR)
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("preflight");
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(preflight.headers()["access-control-allow-origin"], EDITOR);
    assert_eq!(
        preflight.headers()["access-control-allow-credentials"],
        "true"
    );

    // 401: no credentials; a forged token; in the caller's language.
    let anonymous = call(
        &http,
        Method::GET,
        &format!("{api}/history"),
        None,
        &[("accept-language", "ko-KR,ko;q=0.9")],
        None,
    )
    .await;
    assert_error(&anonymous, 401, "AUTH_ERROR", "RENDER_AUTH_ERROR");
    let message = anonymous.body["detail"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("로그인"), "{message}");
    let forged = renderd::auth::mint_hs256(
        &renderd::auth::AuthConfig {
            hs256_secret: Some(format!("not-{SECRET}")),
            ..Default::default()
        },
        &renderd::auth::MintRequest {
            user_id: "alice".into(),
            plan: None,
            roles: vec![],
            ttl: Duration::from_secs(60),
        },
    )
    .expect("mint");
    for auth in [
        bearer(&forged),
        bearer("not.a.jwt"),
        "Basic YWxpY2U6eA==".into(),
    ] {
        let refused = call(
            &http,
            Method::POST,
            &format!("{api}/create"),
            Some(&auth),
            &[],
            Some(create_body(&video)),
        )
        .await;
        assert_error(&refused, 401, "AUTH_ERROR", "RENDER_AUTH_ERROR");
    }

    // 404: an unknown job, and another user's job (reported the same way).
    let bob = bearer(&server.token("bob"));
    let unknown = uuid::Uuid::now_v7().to_string();
    for (who, id) in [(&alice, unknown.as_str()), (&bob, job_id.as_str())] {
        for (method, action) in [(Method::GET, "status"), (Method::POST, "cancel")] {
            let missing = call(
                &http,
                method,
                &format!("{api}/{id}/{action}"),
                Some(who),
                &[],
                None,
            )
            .await;
            let details = assert_error(&missing, 404, "JOB_NOT_FOUND", "RENDER_JOB_NOT_FOUND");
            assert_eq!(details["job_id"], id);
        }
    }
    let bobs = call(
        &http,
        Method::GET,
        &format!("{api}/history"),
        Some(&bob),
        &[],
        None,
    )
    .await;
    assert_eq!(bobs.body, json!([]));
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn refusals_validation_quota_rate_and_cancel() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    // Nothing renders: jobs stay queued, so the concurrent allowance stays used.
    config.worker.concurrency = 0;
    config.rate_limit.create_per_minute = 5;
    config.quota.plans.insert(
        "tiny".into(),
        renderd::quota::PlanLimits {
            daily: 1,
            monthly: 100,
            concurrent: 2,
        },
    );
    let server = TestServer::start(config.clone()).await;
    let video = server.media("a.mp4");
    common::make_clip(&video, 1.0, (480, 360), 10, Audio::None);
    let api = format!("{}/api/render", server.url());
    let create_url = format!("{api}/create");
    let http = reqwest::Client::new();

    // 400: bad options and a bad scenario, every problem named.
    let mallory = bearer(&server.token("mallory"));
    let mut scenario = demo_scenario();
    scenario["cues"][0]["root"]["displayTime"] = json!([3.0, 1.0]);
    let bad = json!({
        "videoUrl": format!("file://{}", video.display()),
        "scenario": scenario,
        "options": {"width": 100, "fps": 500, "quality": "high", "format": "gif"},
    });
    let reply = call(
        &http,
        Method::POST,
        &create_url,
        Some(&mallory),
        &[],
        Some(bad.to_string()),
    )
    .await;
    let details = assert_error(&reply, 400, "VALIDATION_ERROR", "RENDER_VALIDATION_FAILED");
    let fields = problem_fields(&details);
    for field in ["options.quality", "options.format", "options.width"] {
        assert!(fields.contains(&field.to_owned()), "{field}: {fields:?}");
    }
    assert!(
        fields.iter().any(|f| f.starts_with("scenario.cues[0]")),
        "{fields:?}"
    );
    // Missing fields, and a URL outside the media root.
    let reply = call(
        &http,
        Method::POST,
        &create_url,
        Some(&mallory),
        &[],
        Some(json!({"videoUrl": "file:///etc/passwd"}).to_string()),
    )
    .await;
    let details = assert_error(&reply, 400, "VALIDATION_ERROR", "RENDER_VALIDATION_FAILED");
    assert_eq!(problem_fields(&details), ["videoUrl", "scenario"]);
    // Malformed JSON.
    let reply = call(
        &http,
        Method::POST,
        &create_url,
        Some(&mallory),
        &[],
        Some("{\"videoUrl\": ".into()),
    )
    .await;
    let details = assert_error(&reply, 400, "VALIDATION_ERROR", "RENDER_VALIDATION_FAILED");
    assert_eq!(problem_fields(&details), ["body"]);
    // A scenario over 5 MB.
    let mut huge = demo_scenario();
    huge["padding"] = json!("x".repeat(5 * 1024 * 1024 + 1));
    let reply = call(
        &http,
        Method::POST,
        &create_url,
        Some(&mallory),
        &[],
        Some(
            json!({"videoUrl": format!("file://{}", video.display()), "scenario": huge})
                .to_string(),
        ),
    )
    .await;
    let details = assert_error(&reply, 400, "VALIDATION_ERROR", "RENDER_VALIDATION_FAILED");
    assert_eq!(problem_fields(&details), ["scenario"], "{details}");
    // A body over the server's bound.
    let reply = call(
        &http,
        Method::POST,
        &create_url,
        Some(&mallory),
        &[],
        Some(format!(
            "{{\"videoUrl\": \"{}\"}}",
            "y".repeat(config.server.max_message_bytes)
        )),
    )
    .await;
    let details = assert_error(&reply, 400, "VALIDATION_ERROR", "RENDER_VALIDATION_FAILED");
    assert_eq!(problem_fields(&details), ["body"]);

    // 429 concurrent: two queued jobs is the allowance.
    let carol = bearer(&server.token("carol"));
    let mut jobs = Vec::new();
    for _ in 0..2 {
        let reply = call(
            &http,
            Method::POST,
            &create_url,
            Some(&carol),
            &[],
            Some(create_body(&video)),
        )
        .await;
        assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
        jobs.push(reply.body["jobId"].as_str().expect("jobId").to_owned());
    }
    let reply = call(
        &http,
        Method::POST,
        &create_url,
        Some(&carol),
        &[],
        Some(create_body(&video)),
    )
    .await;
    let details = assert_error(
        &reply,
        429,
        "QUOTA_EXCEEDED",
        "RENDER_QUOTA_CONCURRENT_EXCEEDED",
    );
    assert_eq!(details["used"], 2);
    assert_eq!(details["limit"], 2);
    assert!(assert_uint(&details["retry_after"], "retry_after") >= 1);
    assert!(reply.headers.contains_key("retry-after"));

    // Cancel a queued job: {success, message}; its status says cancelled; the freed slot
    // admits a new job.
    let queued = call(
        &http,
        Method::GET,
        &format!("{api}/{}/status", jobs[0]),
        Some(&carol),
        &[],
        None,
    )
    .await;
    assert_eq!(queued.body["status"], "queued");
    assert_eq!(keys(&queued.body), set(&["jobId", "status", "progress"]));
    let cancelled = call(
        &http,
        Method::POST,
        &format!("{api}/{}/cancel", jobs[0]),
        Some(&carol),
        &[],
        None,
    )
    .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.body);
    assert_eq!(keys(&cancelled.body), set(&["success", "message"]));
    assert_eq!(cancelled.body["success"], true);
    assert!(cancelled.body["message"]
        .as_str()
        .is_some_and(|m| !m.is_empty()));
    let status = call(
        &http,
        Method::GET,
        &format!("{api}/{}/status", jobs[0]),
        Some(&carol),
        &[],
        None,
    )
    .await;
    assert_eq!(status.body["status"], "cancelled");
    assert_eq!(
        keys(&status.body),
        set(&["jobId", "status", "progress", "completedAt"])
    );
    // Cancelling again is idempotent.
    let again = call(
        &http,
        Method::POST,
        &format!("{api}/{}/cancel", jobs[0]),
        Some(&carol),
        &[],
        None,
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["success"], true);
    let reply = call(
        &http,
        Method::POST,
        &create_url,
        Some(&carol),
        &[],
        Some(create_body(&video)),
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{}", reply.body);
    let history = call(
        &http,
        Method::GET,
        &format!("{api}/history"),
        Some(&carol),
        &[],
        None,
    )
    .await;
    let states: Vec<&str> = history
        .body
        .as_array()
        .expect("list")
        .iter()
        .map(|i| i["status"].as_str().expect("status"))
        .collect();
    assert_eq!(states, ["queued", "queued", "cancelled"]);

    // 403 daily quota: the "tiny" plan allows one render a day.
    let dave = renderd::auth::mint_hs256(
        &config.auth,
        &renderd::auth::MintRequest {
            user_id: "dave".into(),
            plan: Some("tiny".into()),
            roles: vec![],
            ttl: Duration::from_secs(600),
        },
    )
    .expect("mint");
    let dave = bearer(&dave);
    let first = call(
        &http,
        Method::POST,
        &create_url,
        Some(&dave),
        &[],
        Some(create_body(&video)),
    )
    .await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let reply = call(
        &http,
        Method::POST,
        &create_url,
        Some(&dave),
        &[("accept-language", "ko")],
        Some(create_body(&video)),
    )
    .await;
    let details = assert_error(&reply, 403, "QUOTA_EXCEEDED", "RENDER_QUOTA_DAILY_EXCEEDED");
    assert_eq!(details["used"], 1);
    assert_eq!(details["limit"], 1);
    assert_timestamp(&details["resets_at"], "resets_at");
    let message = reply.body["detail"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("오늘"), "{message}");

    // 429 rate limit: five creates a minute, whatever becomes of them.
    let eager = bearer(&server.token("eager"));
    for _ in 0..5 {
        let reply = call(
            &http,
            Method::POST,
            &create_url,
            Some(&eager),
            &[],
            Some("{}".into()),
        )
        .await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{}", reply.body);
    }
    let reply = call(
        &http,
        Method::POST,
        &create_url,
        Some(&eager),
        &[],
        Some(create_body(&video)),
    )
    .await;
    let details = assert_error(
        &reply,
        429,
        "RATE_LIMIT_EXCEEDED",
        "RENDER_RATE_LIMIT_EXCEEDED",
    );
    let retry_after = assert_uint(&details["retry_after"], "retry_after");
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_eq!(
        reply.headers["retry-after"].to_str().expect("ascii"),
        retry_after.to_string()
    );
    // Reads are a separate bucket.
    let reads = call(
        &http,
        Method::GET,
        &format!("{api}/history"),
        Some(&eager),
        &[],
        None,
    )
    .await;
    assert_eq!(reads.status, StatusCode::OK);
    server.shutdown().await;
}
