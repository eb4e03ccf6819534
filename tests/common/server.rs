//! A real renderd server on 127.0.0.1:0 in this process, with its own data folder, and a
//! generated client to talk to it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use renderd::app::Running;
use renderd::auth::{mint_hs256, MintRequest};
use renderd::config::Config;
use renderd::grpc::pb::render_service_client::RenderServiceClient;
use renderd::grpc::pb::{self, RenderStatus};
use tonic::transport::Channel;
use tonic::{Code, Request, Status};
use tonic_types::{ErrorDetail, StatusExt};

pub const SECRET: &str = "end-to-end-test-secret";

/// A test server's configuration: everything under `root`, fast polling, the test secret.
pub fn test_config(root: &Path) -> Config {
    let mut config = Config::load_with_env(None, Vec::new()).expect("default configuration");
    config.server.listen = "127.0.0.1:0".parse().expect("address");
    // Test servers run side by side: each its own metrics port (Running::metrics_addr).
    config.telemetry.metrics_listen = "127.0.0.1:0".parse().expect("address");
    config.database.url = format!("sqlite://{}?mode=rwc", root.join("jobs.db").display());
    config.auth.hs256_secret = Some(SECRET.to_owned());
    config.media.root = root.join("media");
    config.media.work_dir = root.join("work");
    config.output.dir = root.join("outputs");
    config.worker.poll_interval = Duration::from_millis(100);
    config.worker.persist_every = Duration::from_millis(100);
    config.worker.status_poll = Duration::from_millis(100);
    config.worker.shutdown_grace = Duration::from_secs(5);
    config.gpu.validation = std::env::var_os("RENDERD_VK_VALIDATION").is_some();
    config
}

pub struct TestServer {
    pub running: Running,
    pub config: Config,
}

impl TestServer {
    pub async fn start(config: Config) -> TestServer {
        std::fs::create_dir_all(&config.media.root).expect("media folder");
        let running = renderd::app::start(config.clone())
            .await
            .expect("server starts");
        TestServer { running, config }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.running.addr)
    }

    pub async fn client(&self) -> RenderServiceClient<Channel> {
        RenderServiceClient::connect(self.url())
            .await
            .expect("connect")
    }

    pub fn token(&self, user: &str) -> String {
        Self::token_for(&self.config, user, &[])
    }

    pub fn token_with(&self, user: &str, roles: &[&str]) -> String {
        Self::token_for(&self.config, user, roles)
    }

    /// A token for `user` with `roles` that servers with `config` accept.
    pub fn token_for(config: &Config, user: &str, roles: &[&str]) -> String {
        mint_hs256(
            &config.auth,
            &MintRequest {
                user_id: user.to_owned(),
                plan: None,
                roles: roles.iter().map(|r| (*r).to_owned()).collect(),
                ttl: Duration::from_secs(600),
            },
        )
        .expect("mint")
    }

    pub fn media(&self, name: &str) -> PathBuf {
        self.config.media.root.join(name)
    }

    pub async fn shutdown(self) {
        self.running.shutdown().await.expect("clean shutdown");
    }
}

/// `message` with `authorization: Bearer token`.
pub fn authed<T>(message: T, token: &str) -> Request<T> {
    let mut request = Request::new(message);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("header value"),
    );
    request
}

/// A CreateRender request for `video` (a file in the media root) with the demo scenario.
pub fn create_request(request_id: &str, video: &Path, size: (i32, i32)) -> pb::CreateRenderRequest {
    pb::CreateRenderRequest {
        request_id: request_id.to_owned(),
        video_url: format!("file://{}", video.display()),
        scenario_json: std::fs::read_to_string(super::repo("demo/scenario.json"))
            .expect("demo scenario"),
        options: Some(pb::RenderOptions {
            width: size.0,
            height: size.1,
            ..Default::default()
        }),
        video_name: String::new(),
        callback_url: String::new(),
    }
}

/// The status's ErrorInfo reason, asserting there is exactly one ErrorInfo, in our domain.
pub fn reason(status: &Status) -> String {
    let infos: Vec<_> = status
        .get_error_details_vec()
        .into_iter()
        .filter_map(|d| match d {
            ErrorDetail::ErrorInfo(info) => Some(info),
            _ => None,
        })
        .collect();
    assert_eq!(infos.len(), 1, "exactly one ErrorInfo in {status:?}");
    assert_eq!(infos[0].domain, "render.v1");
    infos[0].reason.clone()
}

pub fn assert_error(status: &Status, code: Code, expected_reason: &str) {
    assert_eq!(status.code(), code, "{status:?}");
    assert_eq!(reason(status), expected_reason, "{status:?}");
}

pub fn state(status: &RenderStatus) -> pb::JobState {
    pb::JobState::try_from(status.state).expect("known state")
}

/// Reads a status stream to its end (or the timeout), with the time each message arrived.
pub async fn collect_stream(
    client: &mut RenderServiceClient<Channel>,
    token: &str,
    job_id: &str,
    timeout: Duration,
) -> Vec<(std::time::Instant, RenderStatus)> {
    let mut stream = client
        .stream_status(authed(
            pb::StreamStatusRequest {
                job_id: job_id.to_owned(),
            },
            token,
        ))
        .await
        .expect("stream opens")
        .into_inner();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        match tokio::time::timeout_at(deadline, stream.message()).await {
            Ok(Ok(Some(status))) => seen.push((std::time::Instant::now(), status)),
            Ok(Ok(None)) => return seen,
            Ok(Err(status)) => panic!("stream failed: {status:?}"),
            Err(_) => panic!(
                "stream did not end within {timeout:?}; last: {:?}",
                seen.last().map(|(_, s)| s)
            ),
        }
    }
}

/// A fresh, empty PostgreSQL database on the server of `DATABASE_URL` (its URL and name), or
/// `None` when that is unset. Drop it with [`drop_postgres_database`].
pub async fn postgres_database(test: &str) -> Option<(String, String)> {
    use sea_orm::ConnectionTrait;
    let Ok(admin_url) = std::env::var("DATABASE_URL") else {
        if std::env::var_os("CI").is_some() {
            panic!("DATABASE_URL is not set under CI: scripts/test starts PostgreSQL");
        }
        eprintln!("skipping the PostgreSQL run of {test}: DATABASE_URL is not set");
        return None;
    };
    let name = format!("renderd_e2e_{}", uuid::Uuid::now_v7().simple());
    let admin = sea_orm::Database::connect(&admin_url)
        .await
        .expect("connect to DATABASE_URL");
    admin
        .execute_unprepared(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create the test database");
    let base = admin_url
        .split('?')
        .next()
        .and_then(|u| u.rsplit_once('/'))
        .map(|(server, _)| server.to_owned())
        .expect("DATABASE_URL names a database");
    Some((format!("{base}/{name}"), name))
}

pub async fn drop_postgres_database(name: &str) {
    use sea_orm::ConnectionTrait;
    if let Ok(url) = std::env::var("DATABASE_URL") {
        if let Ok(admin) = sea_orm::Database::connect(&url).await {
            // Best effort: a left-over database only costs space on a throw-away server.
            let _ = admin
                .execute_unprepared(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                .await;
        }
    }
}

/// Creates a render of `video` and watches it until frames are being rendered; returns the
/// job and its still open status stream.
pub async fn create_and_wait_until_rendering(
    client: &mut RenderServiceClient<Channel>,
    token: &str,
    video: &Path,
) -> (pb::RenderJob, tonic::Streaming<RenderStatus>) {
    let job = client
        .create_render(authed(create_request("", video, (640, 360)), token))
        .await
        .expect("create")
        .into_inner();
    let mut stream = client
        .stream_status(authed(
            pb::StreamStatusRequest {
                job_id: job.job_id.clone(),
            },
            token,
        ))
        .await
        .expect("stream")
        .into_inner();
    loop {
        let status = stream
            .message()
            .await
            .expect("status message")
            .expect("the stream stays open while the job runs");
        if state(&status) == pb::JobState::Running && status.frames_done > 0 {
            return (job, stream);
        }
    }
}
