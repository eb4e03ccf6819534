//! Control-plane load benchmark.
//!
//! 1. Unary throughput: authenticated `GetRender` calls per second against renderd (JWT layer,
//!    rate limiter, the status hub's read cache or the database, ownership check, conversion)
//!    versus a minimal tonic server built here that implements the same `GetRender` by echoing
//!    the job id — same messages, same client, same process, same run. Rounds alternate and the
//!    medians are compared (ratio target ≥ 0.5). A second renderd with its read cache cut to
//!    1 ms shows the cost when every call reads SQLite.
//! 2. Streams: the resident memory of one `renderd serve` process holding 10,000 open
//!    `StreamStatus` streams (target < 500 MiB), read from /proc.
//!
//! `cargo run --release --example bench_grpc -- [--rounds N] [--seconds S] [--streams N]
//!  [--binary target/release/renderd]` (see scripts/bench-grpc).

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use renderd::grpc::pb::render_service_client::RenderServiceClient;
use renderd::grpc::pb::render_service_server::{RenderService, RenderServiceServer};
use renderd::grpc::pb::{self, JobState};
use tokio_stream::wrappers::TcpListenerStream;
use tonic::transport::{Channel, Server};
use tonic::{Request, Response, Status};

/// Client concurrency: in-flight calls, spread over a few HTTP/2 connections.
const IN_FLIGHT: usize = 64;
const CONNECTIONS: usize = 4;

struct Args {
    rounds: usize,
    seconds: f64,
    streams: usize,
    binary: PathBuf,
}

fn parse_args() -> Result<Args> {
    let mut args = Args {
        rounds: 5,
        seconds: 3.0,
        streams: 10_000,
        binary: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/release/renderd"),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rounds" => args.rounds = value.parse()?,
            "--seconds" => args.seconds = value.parse()?,
            "--streams" => args.streams = value.parse()?,
            "--binary" => args.binary = PathBuf::from(value),
            other => bail!("unknown option {other}"),
        }
    }
    Ok(args)
}

/// The baseline: tonic and prost with nothing else — GetRender echoes the id.
struct Echo;

type EchoStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::RenderStatus, Status>> + Send>>;

#[tonic::async_trait]
impl RenderService for Echo {
    async fn create_render(
        &self,
        _: Request<pb::CreateRenderRequest>,
    ) -> Result<Response<pb::RenderJob>, Status> {
        Err(Status::unimplemented("echo server"))
    }

    async fn get_render(
        &self,
        request: Request<pb::GetRenderRequest>,
    ) -> Result<Response<pb::RenderJob>, Status> {
        Ok(Response::new(pb::RenderJob {
            job_id: request.into_inner().job_id,
            state: JobState::Queued as i32,
            ..Default::default()
        }))
    }

    type StreamStatusStream = EchoStream;

    async fn stream_status(
        &self,
        _: Request<pb::StreamStatusRequest>,
    ) -> Result<Response<EchoStream>, Status> {
        Err(Status::unimplemented("echo server"))
    }

    async fn cancel(
        &self,
        _: Request<pb::CancelRequest>,
    ) -> Result<Response<pb::RenderJob>, Status> {
        Err(Status::unimplemented("echo server"))
    }

    async fn history(
        &self,
        _: Request<pb::HistoryRequest>,
    ) -> Result<Response<pb::HistoryResponse>, Status> {
        Err(Status::unimplemented("echo server"))
    }

    async fn get_quota(
        &self,
        _: Request<pb::GetQuotaRequest>,
    ) -> Result<Response<pb::QuotaUsage>, Status> {
        Err(Status::unimplemented("echo server"))
    }
}

async fn start_echo() -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(
        Server::builder()
            .add_service(RenderServiceServer::new(Echo))
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    Ok(format!("http://{addr}"))
}

fn bench_config(root: &std::path::Path) -> renderd::config::Config {
    let mut config = renderd::config::Config::load_with_env(None, Vec::new()).expect("defaults");
    config.server.listen = "127.0.0.1:0".parse().expect("address");
    config.database.url = format!("sqlite://{}?mode=rwc", root.join("jobs.db").display());
    config.auth.hs256_secret = Some("bench-secret".into());
    config.media.root = root.join("media");
    config.media.work_dir = root.join("work");
    config.output.dir = root.join("outputs");
    // Only the control plane is measured: nothing renders, and the limiter never refuses.
    config.worker.concurrency = 0;
    config.rate_limit.other_per_second = 1_000_000;
    config.rate_limit.other_burst = 1_000_000;
    config
}

fn token(config: &renderd::config::Config, user: &str) -> Result<String> {
    Ok(renderd::auth::mint_hs256(
        &config.auth,
        &renderd::auth::MintRequest {
            user_id: user.into(),
            plan: None,
            roles: Vec::new(),
            ttl: Duration::from_secs(3600),
        },
    )?)
}

fn authed<T>(message: T, token: &str) -> Result<Request<T>> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse()?);
    Ok(request)
}

fn make_clip(path: &std::path::Path) -> Result<()> {
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-y", "-f", "lavfi", "-i"])
        .arg("testsrc2=size=640x360:rate=30:duration=1")
        .args([
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
        ])
        .arg(path)
        .status()
        .context("running ffmpeg")?;
    if !status.success() {
        bail!("ffmpeg failed to make the clip");
    }
    Ok(())
}

fn create_request(video: &std::path::Path, request_id: &str) -> Result<pb::CreateRenderRequest> {
    Ok(pb::CreateRenderRequest {
        request_id: request_id.into(),
        video_url: format!("file://{}", video.display()),
        scenario_json: std::fs::read_to_string(
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("demo/scenario.json"),
        )?,
        options: Some(pb::RenderOptions {
            width: 640,
            height: 360,
            ..Default::default()
        }),
        video_name: String::new(),
        callback_url: String::new(),
    })
}

/// GetRender calls completed in `seconds` by IN_FLIGHT callers over CONNECTIONS connections.
async fn measure(url: &str, token: Option<&str>, job_id: &str, seconds: f64) -> Result<f64> {
    let mut channels = Vec::new();
    for _ in 0..CONNECTIONS {
        channels.push(Channel::from_shared(url.to_owned())?.connect().await?);
    }
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for i in 0..IN_FLIGHT {
        let mut client = RenderServiceClient::new(channels[i % CONNECTIONS].clone());
        let done = Arc::clone(&done);
        let token = token.map(str::to_owned);
        let job_id = job_id.to_owned();
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                let message = pb::GetRenderRequest {
                    job_id: job_id.clone(),
                };
                let request = match &token {
                    Some(t) => authed(message, t)?,
                    None => Request::new(message),
                };
                client.get_render(request).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            anyhow::Ok(())
        }));
    }
    let started = Instant::now();
    for task in tasks {
        task.await??;
    }
    Ok(done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64())
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(|a, b| a.total_cmp(b));
    values[values.len() / 2]
}

async fn unary(args: &Args) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let config = bench_config(&dir.path().join("cached"));
    std::fs::create_dir_all(&config.media.root)?;
    let video = config.media.root.join("clip.mp4");
    make_clip(&video)?;
    // The same server with its read cache cut to 1 ms: nearly every GetRender reads SQLite.
    let mut uncached = bench_config(&dir.path().join("uncached"));
    uncached.worker.status_poll = Duration::from_millis(1);
    uncached.media.root = config.media.root.clone();

    let token = token(&config, "bench")?;
    let mut servers = Vec::new();
    let mut job_ids = Vec::new();
    for cfg in [config, uncached] {
        let running = renderd::app::start(cfg).await?;
        let url = format!("http://{}", running.addr);
        let mut client = RenderServiceClient::connect(url.clone()).await?;
        let job = client
            .create_render(authed(create_request(&video, "bench-1")?, &token)?)
            .await?
            .into_inner();
        job_ids.push(job.job_id);
        servers.push((running, url));
    }
    let echo = start_echo().await?;

    // Warm all up (connections, caches, the allocator).
    for ((_, url), id) in servers.iter().zip(&job_ids) {
        measure(url, Some(&token), id, 0.5).await?;
    }
    measure(&echo, None, &job_ids[0], 0.5).await?;
    let (mut cached, mut direct, mut theirs) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=args.rounds {
        let c = measure(&servers[0].1, Some(&token), &job_ids[0], args.seconds).await?;
        let d = measure(&servers[1].1, Some(&token), &job_ids[1], args.seconds).await?;
        let e = measure(&echo, None, &job_ids[0], args.seconds).await?;
        println!(
            "round {round}: renderd {c:>7.0} req/s (uncached {d:>7.0})   echo {e:>7.0} req/s   \
             ratio {:.2} (uncached {:.2})",
            c / e,
            d / e
        );
        cached.push(c);
        direct.push(d);
        theirs.push(e);
    }
    let (c, d, e) = (
        median(&mut cached),
        median(&mut direct),
        median(&mut theirs),
    );
    println!(
        "GetRender, {IN_FLIGHT} in flight over {CONNECTIONS} connections, median of {} rounds: \
         renderd {c:.0} req/s, tonic echo {e:.0} req/s, ratio {:.2} (target >= 0.5); \
         with every read from SQLite: {d:.0} req/s, ratio {:.2}",
        args.rounds,
        c / e,
        d / e
    );
    for (running, _) in servers {
        running.shutdown().await?;
    }
    Ok(())
}

fn rss_kib(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .context("VmRSS in /proc/PID/status")
}

async fn streams(args: &Args) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media)?;
    let video = media.join("clip.mp4");
    make_clip(&video)?;
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0")?;
        probe.local_addr()?.port()
    };
    let secret = "bench-secret";
    let jobs = 20usize;
    let env = [
        ("RENDERD__SERVER__LISTEN", format!("127.0.0.1:{port}")),
        (
            "RENDERD__SERVER__MAX_STATUS_STREAMS",
            (args.streams + 100).to_string(),
        ),
        (
            "RENDERD__DATABASE__URL",
            format!("sqlite://{}?mode=rwc", dir.path().join("jobs.db").display()),
        ),
        ("RENDERD__AUTH__HS256_SECRET", secret.to_owned()),
        ("RENDERD__MEDIA__ROOT", media.display().to_string()),
        (
            "RENDERD__MEDIA__WORK_DIR",
            dir.path().join("work").display().to_string(),
        ),
        (
            "RENDERD__OUTPUT__DIR",
            dir.path().join("out").display().to_string(),
        ),
        ("RENDERD__WORKER__CONCURRENCY", "0".to_owned()),
        ("RENDERD__QUOTA__PLANS__FREE__CONCURRENT", jobs.to_string()),
        ("RENDERD__QUOTA__PLANS__FREE__DAILY", "1000".to_owned()),
        ("RENDERD__QUOTA__PLANS__FREE__MONTHLY", "1000".to_owned()),
        ("RENDERD__RATE_LIMIT__CREATE_PER_MINUTE", "1000".to_owned()),
        (
            "RENDERD__RATE_LIMIT__OTHER_PER_SECOND",
            "1000000".to_owned(),
        ),
        ("RENDERD__RATE_LIMIT__OTHER_BURST", "1000000".to_owned()),
        ("RENDERD_LOG", "warn".to_owned()),
    ];
    // Absolute: the server runs in the temporary folder.
    let binary = std::fs::canonicalize(&args.binary)
        .with_context(|| format!("{} (build it first)", args.binary.display()))?;
    let mut child = std::process::Command::new(&binary)
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", binary.display()))?;
    let pid = child.id();
    let url = format!("http://127.0.0.1:{port}");
    let mut client = loop {
        match RenderServiceClient::connect(url.clone()).await {
            Ok(c) => break c,
            Err(_) if child.try_wait()?.is_none() => {
                tokio::time::sleep(Duration::from_millis(100)).await
            }
            Err(e) => bail!("renderd serve exited: {e}"),
        }
    };
    let mut config = renderd::config::Config::default();
    config.auth.hs256_secret = Some(secret.into());
    let token = token(&config, "watcher")?;
    let mut ids = Vec::new();
    for i in 0..jobs {
        let job = client
            .create_render(authed(create_request(&video, &format!("s{i}"))?, &token)?)
            .await?
            .into_inner();
        ids.push(job.job_id);
    }
    let idle = rss_kib(pid)?;
    let connections = args.streams.div_ceil(1000).max(1);
    let mut channels = Vec::new();
    for _ in 0..connections {
        channels.push(Channel::from_shared(url.clone())?.connect().await?);
    }
    let started = Instant::now();
    let mut open = Vec::with_capacity(args.streams);
    for i in 0..args.streams {
        let mut client = RenderServiceClient::new(channels[i % connections].clone());
        let request = authed(
            pb::StreamStatusRequest {
                job_id: ids[i % jobs].clone(),
            },
            &token,
        )?;
        open.push(tokio::spawn(async move {
            let mut stream = client.stream_status(request).await?.into_inner();
            let first = stream.message().await?;
            anyhow::Ok((stream, first.is_some()))
        }));
    }
    let mut streams = Vec::with_capacity(args.streams);
    for task in open {
        let (stream, got_first) = task.await??;
        if !got_first {
            bail!("a stream ended before its first status");
        }
        streams.push(stream);
    }
    let opened_in = started.elapsed();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let holding = rss_kib(pid)?;
    println!(
        "{} StatusStream streams open on {jobs} queued jobs over {connections} connections \
         (opened in {:.1} s): renderd RSS {:.1} MiB (idle before: {:.1} MiB; {:.1} KiB per \
         stream) — target < 500 MiB",
        streams.len(),
        opened_in.as_secs_f64(),
        holding as f64 / 1024.0,
        idle as f64 / 1024.0,
        (holding.saturating_sub(idle)) as f64 / streams.len().max(1) as f64
    );
    drop(streams);
    // SIGTERM: the graceful path.
    let _ = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status();
    let _ = child.wait();
    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .init();
    let args = parse_args()?;
    unary(&args).await?;
    streams(&args).await?;
    Ok(())
}
