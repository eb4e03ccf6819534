//! End-to-end tests of `render.v1.RenderService`: a real server on 127.0.0.1:0 (database,
//! workers, GPU compositing on lavapipe, x264), driven through the generated Rust client.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::server::{
    assert_error, authed, collect_stream, create_request, reason, state, test_config, TestServer,
};
use common::Audio;
use renderd::grpc::pb::{self, JobState};
use tonic::Code;
use tonic_types::StatusExt;

fn clip(server: &TestServer, name: &str, seconds: f64) -> std::path::PathBuf {
    let path = server.media(name);
    common::make_clip(&path, seconds, (640, 360), 30, Audio::AacTone);
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_stream_download_history_and_quota() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(test_config(dir.path())).await;
    let video = clip(&server, "talk.mp4", 4.0);
    let token = server.token("alice");
    let mut client = server.client().await;

    let job = client
        .create_render(authed(create_request("req-1", &video, (640, 360)), &token))
        .await
        .expect("create")
        .into_inner();
    assert_eq!(job.state, JobState::Queued as i32);
    assert_eq!(job.owner, "alice");
    assert_eq!(job.video_name, "talk.mp4");

    let seen = collect_stream(&mut client, &token, &job.job_id, Duration::from_secs(120)).await;
    let states: Vec<JobState> = seen.iter().map(|(_, s)| state(s)).collect();
    assert_eq!(states.last(), Some(&JobState::Succeeded), "{states:?}");
    assert!(
        states.contains(&JobState::Running),
        "RUNNING streamed: {states:?}"
    );
    let order = |s: &JobState| match s {
        JobState::Queued => 0,
        JobState::Running => 1,
        _ => 2,
    };
    assert!(
        states.windows(2).all(|w| order(&w[0]) <= order(&w[1])),
        "QUEUED → RUNNING → SUCCEEDED: {states:?}"
    );
    let progress: Vec<f32> = seen.iter().map(|(_, s)| s.progress).collect();
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress never goes backwards: {progress:?}"
    );
    assert_eq!(progress.last(), Some(&100.0));
    // Throttled to at most 10 messages a second (arrival times jitter; count them instead).
    let span = seen[seen.len() - 1].0.duration_since(seen[0].0);
    assert!(
        seen.len() as f64 <= span.as_secs_f64() * 10.0 + 2.0,
        "{} messages in {span:?}",
        seen.len()
    );
    let running: Vec<&pb::RenderStatus> = seen
        .iter()
        .map(|(_, s)| s)
        .filter(|s| state(s) == JobState::Running && s.frames_done > 0)
        .collect();
    assert!(!running.is_empty(), "frame progress was streamed");
    let updated: Vec<(i64, i32)> = seen
        .iter()
        .filter_map(|(_, s)| s.update_time.as_ref().map(|t| (t.seconds, t.nanos)))
        .collect();
    assert!(
        updated.windows(2).all(|w| w[0] <= w[1]) && updated.first() < updated.last(),
        "update_time follows the changes: {updated:?}"
    );
    assert!(running.iter().all(|s| s.frames_total == 120));

    let done = client
        .get_render(authed(
            pb::GetRenderRequest {
                job_id: job.job_id.clone(),
            },
            &token,
        ))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(done.state, JobState::Succeeded as i32);
    assert_eq!(done.encoder, pb::Encoder::X264 as i32);
    assert_eq!(done.frames_done, 120);
    let output = done.output.expect("output");
    let response = reqwest::get(&output.download_url).await.expect("download");
    assert_eq!(response.status(), 200);
    let bytes = response.bytes().await.expect("body");
    assert_eq!(bytes.len() as i64, output.size_bytes);
    let downloaded = dir.path().join("downloaded.mp4");
    std::fs::write(&downloaded, &bytes).expect("save");
    let probe = common::ffprobe(&downloaded);
    let video_stream = common::stream(&probe, "video").expect("video stream");
    assert_eq!(video_stream["codec_name"], "h264");
    assert_eq!(common::num(&video_stream["nb_read_frames"]), 120.0);
    assert!(common::stream(&probe, "audio").is_some(), "audio kept");
    let tampered = output.download_url.replace("sig=", "sig=x");
    assert_eq!(reqwest::get(&tampered).await.expect("get").status(), 403);

    let history = client
        .history(authed(pb::HistoryRequest::default(), &token))
        .await
        .expect("history")
        .into_inner();
    assert_eq!(history.jobs.len(), 1);
    assert_eq!(history.jobs[0].job_id, job.job_id);
    assert!(history.next_page_token.is_empty());

    let quota = client
        .get_quota(authed(pb::GetQuotaRequest {}, &token))
        .await
        .expect("quota")
        .into_inner();
    let daily = quota.daily.expect("daily");
    assert_eq!((daily.used, daily.limit), (1, 10));
    assert!(daily.resets_at.is_some());
    assert_eq!(quota.monthly.expect("monthly").used, 1);
    assert_eq!(quota.concurrent.expect("concurrent").used, 0);

    let err = client
        .cancel(authed(
            pb::CancelRequest {
                job_id: job.job_id.clone(),
            },
            &token,
        ))
        .await
        .expect_err("a finished job cannot be cancelled");
    assert_error(&err, Code::FailedPrecondition, "RENDER_JOB_NOT_CANCELLABLE");

    // The same request id returns the same job and costs nothing.
    let again = client
        .create_render(authed(create_request("req-1", &video, (640, 360)), &token))
        .await
        .expect("replay")
        .into_inner();
    assert_eq!(again.job_id, job.job_id);
    assert_eq!(again.state, JobState::Succeeded as i32);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn cancel_stops_a_running_render_within_a_second() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(test_config(dir.path())).await;
    let video = clip(&server, "long.mp4", 60.0);
    let token = server.token("alice");
    let mut client = server.client().await;
    let (job, mut stream) =
        common::server::create_and_wait_until_rendering(&mut client, &token, &video).await;
    let asked = Instant::now();
    let cancelled = client
        .cancel(authed(
            pb::CancelRequest {
                job_id: job.job_id.clone(),
            },
            &token,
        ))
        .await
        .expect("cancel")
        .into_inner();
    assert_eq!(cancelled.state, JobState::Cancelled as i32);
    let mut last = None;
    while let Some(status) = stream.message().await.expect("message") {
        last = Some(status);
    }
    let last = last.expect("a final status");
    assert_eq!(state(&last), JobState::Cancelled);
    let took = asked.elapsed();
    assert!(
        took < Duration::from_secs(1),
        "stream saw CANCELLED after {took:?}"
    );
    // The worker has let go: the render stops and leaves no file.
    let output = server.config.output.dir.join(format!("{}.mp4", job.job_id));
    for _ in 0..50 {
        if std::fs::read_dir(&server.config.output.dir)
            .expect("outputs")
            .count()
            == 0
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!output.exists(), "no output for a cancelled job");

    // Idempotent; a finished job cannot be cancelled.
    let again = client
        .cancel(authed(
            pb::CancelRequest {
                job_id: job.job_id.clone(),
            },
            &token,
        ))
        .await
        .expect("cancel twice")
        .into_inner();
    assert_eq!(again.state, JobState::Cancelled as i32);
    let quota = client
        .get_quota(authed(pb::GetQuotaRequest {}, &token))
        .await
        .expect("quota")
        .into_inner();
    assert_eq!(
        quota.daily.expect("daily").used,
        0,
        "cancelled jobs don't count"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn users_see_only_their_own_jobs_and_admins_see_all() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.worker.concurrency = 0;
    let server = TestServer::start(config).await;
    let video = clip(&server, "a.mp4", 1.0);
    let mut client = server.client().await;
    let alice = server.token("alice");
    let bob = server.token("bob");
    let admin = server.token_with("root", &["admin"]);
    let job = client
        .create_render(authed(create_request("", &video, (640, 360)), &alice))
        .await
        .expect("create")
        .into_inner();
    let id = job.job_id.clone();

    let err = client
        .get_render(authed(pb::GetRenderRequest { job_id: id.clone() }, &bob))
        .await
        .expect_err("bob cannot see alice's job");
    assert_error(&err, Code::NotFound, "RENDER_JOB_NOT_FOUND");
    let missing = client
        .get_render(authed(
            pb::GetRenderRequest {
                job_id: "01900000-0000-7000-8000-000000000000".into(),
            },
            &bob,
        ))
        .await
        .expect_err("missing");
    assert_eq!(
        err.message().replace(&id, "ID"),
        missing
            .message()
            .replace("01900000-0000-7000-8000-000000000000", "ID"),
        "indistinguishable from a missing job"
    );
    let err = client
        .cancel(authed(pb::CancelRequest { job_id: id.clone() }, &bob))
        .await
        .expect_err("bob cannot cancel it");
    assert_error(&err, Code::NotFound, "RENDER_JOB_NOT_FOUND");
    let err = client
        .stream_status(authed(pb::StreamStatusRequest { job_id: id.clone() }, &bob))
        .await
        .expect_err("bob cannot watch it");
    assert_error(&err, Code::NotFound, "RENDER_JOB_NOT_FOUND");
    let bobs = client
        .history(authed(pb::HistoryRequest::default(), &bob))
        .await
        .expect("history")
        .into_inner();
    assert!(bobs.jobs.is_empty());

    let seen = client
        .get_render(authed(pb::GetRenderRequest { job_id: id.clone() }, &admin))
        .await
        .expect("admin sees it")
        .into_inner();
    assert_eq!(seen.owner, "alice");
    let all = client
        .history(authed(pb::HistoryRequest::default(), &admin))
        .await
        .expect("admin history")
        .into_inner();
    assert_eq!(all.jobs.len(), 1);

    let err = client
        .get_render(authed(
            pb::GetRenderRequest { job_id: id.clone() },
            "not.a.token",
        ))
        .await
        .expect_err("forged token");
    assert_error(&err, Code::Unauthenticated, "RENDER_AUTH_ERROR");
    let err = client
        .get_render(pb::GetRenderRequest { job_id: id.clone() })
        .await
        .expect_err("no token");
    assert_error(&err, Code::Unauthenticated, "RENDER_AUTH_ERROR");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_creates_admit_exactly_two() {
    let dir = tempfile::tempdir().expect("tempdir");
    create_race(test_config(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_creates_admit_exactly_two_on_postgres() {
    let Some((url, name)) = common::server::postgres_database("the create race").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.database.url = url;
    create_race(config).await;
    common::server::drop_postgres_database(&name).await;
}

async fn create_race(mut config: renderd::config::Config) {
    // Nothing renders, so no slot frees up during the race; the rate limit stays out of it.
    config.worker.concurrency = 0;
    config.rate_limit.create_per_minute = 1000;
    let server = TestServer::start(config).await;
    let video = clip(&server, "a.mp4", 1.0);
    let token = server.token("racer");
    let client = server.client().await;
    let calls = (0..50).map(|i| {
        let mut client = client.clone();
        let request = authed(
            create_request(&format!("race-{i}"), &video, (640, 360)),
            &token,
        );
        tokio::spawn(async move { client.create_render(request).await })
    });
    let results = futures_join_all(calls).await;
    let admitted: HashSet<String> = results
        .iter()
        .filter_map(|r| r.as_ref().ok().map(|job| job.get_ref().job_id.clone()))
        .collect();
    assert_eq!(admitted.len(), 2, "exactly two admitted");
    let refused: Vec<&tonic::Status> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert_eq!(refused.len(), 48);
    for status in refused {
        assert_error(
            status,
            Code::ResourceExhausted,
            "RENDER_QUOTA_CONCURRENT_EXCEEDED",
        );
        let details = status.get_error_details();
        let failure = details.quota_failure().expect("QuotaFailure");
        assert_eq!(failure.violations.len(), 1);
        assert!(details.retry_info().is_some(), "RetryInfo");
    }
    server.shutdown().await;
}

async fn futures_join_all<T>(handles: impl Iterator<Item = tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for handle in handles.collect::<Vec<_>>() {
        out.push(handle.await.expect("task"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rate_limit_is_resource_exhausted_with_retry_info() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.worker.concurrency = 0;
    config.rate_limit.create_per_minute = 2;
    let server = TestServer::start(config).await;
    let video = clip(&server, "a.mp4", 1.0);
    let token = server.token("eager");
    let mut client = server.client().await;
    for i in 0..2 {
        client
            .create_render(authed(
                create_request(&format!("r{i}"), &video, (640, 360)),
                &token,
            ))
            .await
            .expect("within the limit");
    }
    let mut request = authed(create_request("r2", &video, (640, 360)), &token);
    request
        .metadata_mut()
        .insert("accept-language", "ko-KR,ko;q=0.9".parse().expect("header"));
    let err = client.create_render(request).await.expect_err("limited");
    assert_error(&err, Code::ResourceExhausted, "RENDER_RATE_LIMIT_EXCEEDED");
    let details = err.get_error_details();
    let retry = details.retry_info().expect("RetryInfo");
    let delay = retry.retry_delay.expect("delay");
    assert!(
        delay > Duration::ZERO && delay <= Duration::from_secs(30),
        "{delay:?}"
    );
    let localized = details.localized_message().expect("LocalizedMessage");
    assert!(localized.locale.starts_with("ko"), "{localized:?}");
    // Other calls of the same user are a separate, generous bucket.
    client
        .get_quota(authed(pb::GetQuotaRequest {}, &token))
        .await
        .expect("quota is not rate limited by creates");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn invalid_requests_name_every_bad_field() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.worker.concurrency = 0;
    let server = TestServer::start(config).await;
    let video = clip(&server, "a.mp4", 1.0);
    let token = server.token("alice");
    let mut client = server.client().await;

    let mut request = create_request("", &video, (5000, 360));
    request.video_url = "file:///etc/passwd".into();
    let mut scenario: serde_json::Value =
        serde_json::from_str(&request.scenario_json).expect("demo scenario");
    scenario["cues"][0]["root"]["displayTime"] = serde_json::json!([3.0, 1.0]);
    request.scenario_json = scenario.to_string();
    let err = client
        .create_render(authed(request, &token))
        .await
        .expect_err("invalid");
    assert_error(&err, Code::InvalidArgument, "RENDER_VALIDATION_FAILED");
    let details = err.get_error_details();
    let fields: Vec<String> = details
        .bad_request()
        .expect("BadRequest")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert!(fields.contains(&"options.width".to_owned()), "{fields:?}");
    assert!(fields.contains(&"video_url".to_owned()), "{fields:?}");
    assert!(
        fields
            .iter()
            .any(|f| f.starts_with("scenario_json.cues[0]")),
        "{fields:?}"
    );

    let mut request = create_request("", &video, (640, 360));
    request.scenario_json = "{ not json".into();
    let err = client
        .create_render(authed(request, &token))
        .await
        .expect_err("bad json");
    assert_eq!(reason(&err), "RENDER_VALIDATION_FAILED");

    let err = client
        .get_render(authed(
            pb::GetRenderRequest {
                job_id: "../../etc".into(),
            },
            &token,
        ))
        .await
        .expect_err("not an id");
    assert_error(&err, Code::InvalidArgument, "RENDER_VALIDATION_FAILED");
    let err = client
        .history(authed(
            pb::HistoryRequest {
                page_token: "garbage".into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect_err("bad token");
    assert_eq!(err.code(), Code::InvalidArgument);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_interrupted_by_shutdown_finishes_after_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    restart(test_config(dir.path())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_job_interrupted_by_shutdown_finishes_after_restart_on_postgres() {
    let Some((url, name)) = common::server::postgres_database("the restart").await else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.database.url = url;
    restart(config).await;
    common::server::drop_postgres_database(&name).await;
}

async fn restart(mut config: renderd::config::Config) {
    config.worker.shutdown_grace = Duration::ZERO;
    let server = TestServer::start(config.clone()).await;
    let video = clip(&server, "long.mp4", 20.0);
    let token = server.token("alice");
    let mut client = server.client().await;
    let (job, mut stream) =
        common::server::create_and_wait_until_rendering(&mut client, &token, &video).await;
    server.shutdown().await;
    // The stream ends with UNAVAILABLE (reconnect elsewhere), not a terminal state.
    let mut ended_with = None;
    loop {
        match stream.message().await {
            Ok(Some(status)) => assert!(
                matches!(state(&status), JobState::Queued | JobState::Running),
                "no terminal state from a shutdown: {status:?}"
            ),
            Ok(None) => break,
            Err(status) => {
                ended_with = Some(status.code());
                break;
            }
        }
    }
    assert!(
        matches!(ended_with, None | Some(Code::Unavailable)),
        "{ended_with:?}"
    );

    let store = renderd::store::JobStore::connect(&config.database.url)
        .await
        .expect("db");
    let id = renderd::domain::job::JobId::parse(&job.job_id).expect("id");
    let stored = store.get(&id).await.expect("job");
    assert_eq!(
        stored.state,
        renderd::domain::job::JobState::Queued,
        "handed back"
    );

    let server = TestServer::start(config).await;
    let mut client = server.client().await;
    let seen = collect_stream(&mut client, &token, &job.job_id, Duration::from_secs(180)).await;
    let last = &seen.last().expect("statuses").1;
    assert_eq!(state(last), JobState::Succeeded);
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn health_and_reflection_need_no_token() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.worker.concurrency = 0;
    let server = TestServer::start(config).await;
    let channel = tonic::transport::Channel::from_shared(server.url())
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
    let response = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "render.v1.RenderService".into(),
        })
        .await
        .expect("health")
        .into_inner();
    assert_eq!(
        response.status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_replicas_job_is_taken_again_when_its_lease_runs_out() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.worker.lease = Duration::from_secs(2);
    config.worker.renew_every = Duration::from_millis(500);
    std::fs::create_dir_all(&config.media.root).expect("media");
    let video = config.media.root.join("long.mp4");
    common::make_clip(&video, 30.0, (640, 360), 30, Audio::AacTone);

    // Replica A: the real binary, configured through the environment, killed with SIGKILL.
    let mut replica = common::renderd()
        .arg("serve")
        .env("RENDERD__SERVER__LISTEN", "127.0.0.1:0")
        .env("RENDERD__DATABASE__URL", &config.database.url)
        .env("RENDERD__AUTH__HS256_SECRET", common::server::SECRET)
        .env("RENDERD__MEDIA__ROOT", &config.media.root)
        .env("RENDERD__MEDIA__WORK_DIR", &config.media.work_dir)
        .env("RENDERD__OUTPUT__DIR", &config.output.dir)
        .env("RENDERD__WORKER__LEASE", "2s")
        .env("RENDERD__WORKER__RENEW_EVERY", "500ms")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start renderd serve");
    let mut line = String::new();
    std::io::BufReader::new(replica.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("the listening line");
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_owned();
    let token = TestServer::token_for(&config, "alice", &[]);
    let mut client =
        pb::render_service_client::RenderServiceClient::connect(format!("http://{addr}"))
            .await
            .expect("connect to replica A");
    let (job, _stream) =
        common::server::create_and_wait_until_rendering(&mut client, &token, &video).await;
    replica.kill().expect("SIGKILL replica A");
    replica.wait().expect("reap replica A");

    // Replica B on the same database takes the job once A's lease has run out.
    let server = TestServer::start(config.clone()).await;
    let mut client = server.client().await;
    let seen = collect_stream(&mut client, &token, &job.job_id, Duration::from_secs(180)).await;
    assert_eq!(
        state(&seen.last().expect("statuses").1),
        JobState::Succeeded
    );
    let progress: Vec<f32> = seen.iter().map(|(_, s)| s.progress).collect();
    assert!(
        progress.windows(2).all(|w| w[0] <= w[1]),
        "progress never goes backwards across the retry: {progress:?}"
    );
    let store = renderd::store::JobStore::connect(&config.database.url)
        .await
        .expect("db");
    let stored = store
        .get(&renderd::domain::job::JobId::parse(&job.job_id).expect("id"))
        .await
        .expect("job");
    assert_eq!(stored.attempts, 2, "claimed by A, then again by B");
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn webm_format_downloads_as_video_webm_with_vp9_and_opus() {
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(test_config(dir.path())).await;
    let video = server.media("tiny.mp4");
    common::make_clip(&video, 1.0, (640, 360), 10, Audio::AacTone);
    let token = server.token("alice");
    let mut client = server.client().await;

    // An H.264 encoder for a webm, or a format that does not exist, is a field violation.
    let mut request = create_request("", &video, (640, 360));
    let options = request.options.as_mut().expect("options");
    options.format = pb::OutputFormat::Webm as i32;
    options.encoder_preference = pb::Encoder::X264 as i32;
    let err = client
        .create_render(authed(request.clone(), &token))
        .await
        .expect_err("x264 cannot write webm");
    assert_error(&err, Code::InvalidArgument, "RENDER_VALIDATION_FAILED");
    let violations = err
        .get_error_details()
        .bad_request()
        .expect("BadRequest")
        .field_violations
        .clone();
    assert_eq!(violations.len(), 1, "{violations:?}");
    assert_eq!(violations[0].field, "options.encoder_preference");
    let options = request.options.as_mut().expect("options");
    options.encoder_preference = pb::Encoder::Unspecified as i32;
    options.format = 7;
    let err = client
        .create_render(authed(request.clone(), &token))
        .await
        .expect_err("unknown format");
    let fields: Vec<String> = err
        .get_error_details()
        .bad_request()
        .expect("BadRequest")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(fields, ["options.format"]);

    let options = request.options.as_mut().expect("options");
    options.format = pb::OutputFormat::Webm as i32;
    options.fps = 10;
    let job = client
        .create_render(authed(request, &token))
        .await
        .expect("create")
        .into_inner();
    let seen = collect_stream(&mut client, &token, &job.job_id, Duration::from_secs(120)).await;
    let last = &seen.last().expect("statuses").1;
    assert_eq!(state(last), JobState::Succeeded, "{last:?}");
    assert_eq!(last.encoder, pb::Encoder::Vp9 as i32);
    let done = client
        .get_render(authed(
            pb::GetRenderRequest {
                job_id: job.job_id.clone(),
            },
            &token,
        ))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        done.options.expect("options").format,
        pb::OutputFormat::Webm as i32
    );
    let output = done.output.expect("output");
    assert!(
        output
            .download_url
            .contains(&format!("/downloads/{}.webm?", job.job_id)),
        "{}",
        output.download_url
    );
    let response = reqwest::get(&output.download_url).await.expect("download");
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("video/webm")
    );
    let bytes = response.bytes().await.expect("body");
    assert_eq!(bytes.len() as i64, output.size_bytes);
    let downloaded = dir.path().join("downloaded.webm");
    std::fs::write(&downloaded, &bytes).expect("save");
    let probe = common::ffprobe(&downloaded);
    assert_eq!(probe["format"]["format_name"], "matroska,webm");
    let video_stream = common::stream(&probe, "video").expect("video stream");
    assert_eq!(video_stream["codec_name"], "vp9");
    assert_eq!(common::num(&video_stream["nb_read_frames"]), 10.0);
    let audio = common::stream(&probe, "audio").expect("audio kept");
    assert_eq!(audio["codec_name"], "opus");
    server.shutdown().await;
}
