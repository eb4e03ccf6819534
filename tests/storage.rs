//! Storage end to end: `s3://` inputs and bucket outputs against a real S3-compatible server
//! (moto's server, from tests/python/requirements.txt, started here on loopback), presigned
//! download URLs, and output retention (the sweeper deletes, History says expired, old links
//! stop working) for bucket and local outputs.
//!
//! The S3 tests need `RENDERD_TEST_PYTHON` (the venv of tests/python/setup-venv, which holds
//! moto); without it they print why and skip. The local retention test always runs.

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::server::{assert_error, authed, collect_stream, create_request, state, TestServer};
use common::Audio;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStoreExt, PutPayload};
use renderd::config::Config;
use renderd::grpc::pb::{self, JobState};
use renderd::media::storage::OutputBackend;
use tonic::Code;
use tonic_types::StatusExt;

const KEY_ID: &str = "testing";
const SECRET: &str = "testing-secret";
const REGION: &str = "us-east-1";

/// moto's S3 server on 127.0.0.1, stopped when dropped.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    /// Starts the server, or `None` (after saying why) when no test Python is configured.
    async fn start(test: &str) -> Option<Moto> {
        let Some(python) = std::env::var_os("RENDERD_TEST_PYTHON") else {
            eprintln!(
                "skipping {test}: RENDERD_TEST_PYTHON is not set \
                 (eval \"$(bash tests/python/setup-venv)\" provides moto's S3 server)"
            );
            return None;
        };
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(python)
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start moto.server");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        // Ready once it answers a request; the deadline only bounds a broken install.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        let http = reqwest::Client::new();
        loop {
            if http.get(&moto.endpoint).send().await.is_ok() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "moto.server did not answer on {} within 60 s",
                moto.endpoint
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Some(moto)
    }

    /// Creates a bucket (moto's server accepts unsigned requests).
    async fn create_bucket(&self, name: &str) {
        let response = reqwest::Client::new()
            .put(format!("{}/{name}", self.endpoint))
            .send()
            .await
            .expect("create bucket");
        assert!(response.status().is_success(), "{:?}", response.status());
    }

    fn bucket(&self, name: &str) -> object_store::aws::AmazonS3 {
        AmazonS3Builder::new()
            .with_endpoint(&self.endpoint)
            .with_allow_http(true)
            .with_bucket_name(name)
            .with_region(REGION)
            .with_access_key_id(KEY_ID)
            .with_secret_access_key(SECRET)
            .build()
            .expect("S3 client")
    }
}

/// A test server configuration reading `s3://inputs/…` and writing to bucket `outputs`.
fn s3_config(root: &Path, moto: &Moto) -> Config {
    let mut config = common::server::test_config(root);
    let storage = &mut config.storage;
    storage.output = OutputBackend::S3;
    storage.output_bucket = Some("outputs".into());
    storage.output_prefix = "renders/".into();
    storage.input_buckets = vec!["inputs".into()];
    storage.s3.endpoint = Some(moto.endpoint.clone());
    storage.s3.region = REGION.into();
    storage.s3.access_key_id = Some(KEY_ID.into());
    storage.s3.secret_access_key = Some(SECRET.into());
    config
}

/// A tiny clip (320×240, 1 s, 10 fps, AAC) at `path`.
fn tiny_clip(path: &Path) {
    common::make_clip(path, 1.0, (320, 240), 10, Audio::AacTone);
}

/// A CreateRender request for `video_url` (480×360, the smallest allowed output, at 10 fps).
fn request(video_url: &str) -> pb::CreateRenderRequest {
    let mut request = create_request("", Path::new("/unused.mp4"), (480, 360));
    request.video_url = video_url.to_owned();
    if let Some(options) = request.options.as_mut() {
        options.fps = 10;
    }
    request
}

async fn get(server: &TestServer, token: &str, job_id: &str) -> pb::RenderJob {
    server
        .client()
        .await
        .get_render(authed(
            pb::GetRenderRequest {
                job_id: job_id.to_owned(),
            },
            token,
        ))
        .await
        .expect("get")
        .into_inner()
}

/// Renders `video_url` to the end; returns the finished job and the download URL the status
/// stream carried at the moment the job succeeded (empty otherwise).
async fn render(server: &TestServer, token: &str, video_url: &str) -> (pb::RenderJob, String) {
    let mut client = server.client().await;
    let job = client
        .create_render(authed(request(video_url), token))
        .await
        .expect("create")
        .into_inner();
    let seen = collect_stream(&mut client, token, &job.job_id, Duration::from_secs(120)).await;
    let last = seen.last().map(|(_, s)| s.clone()).expect("a status");
    assert!(
        matches!(state(&last), JobState::Succeeded | JobState::Failed),
        "{last:?}"
    );
    let url = last.output.map(|o| o.download_url).unwrap_or_default();
    (get(server, token, &job.job_id).await, url)
}

async fn download(url: &str, to: &Path) -> usize {
    let response = reqwest::get(url).await.expect("download");
    assert_eq!(response.status(), 200, "{url}");
    let bytes = response.bytes().await.expect("body");
    std::fs::write(to, &bytes).expect("save");
    bytes.len()
}

fn assert_tiny_mp4(path: &Path) {
    let probe = common::ffprobe(path);
    let video = common::stream(&probe, "video").expect("video stream");
    assert_eq!(video["codec_name"], "h264");
    assert_eq!(video["width"], 480);
    assert_eq!(common::num(&video["nb_read_frames"]), 10.0);
    assert!(common::stream(&probe, "audio").is_some(), "audio kept");
}

/// Polls GetRender until the job's output is marked expired (the sweeper runs every 200 ms).
async fn wait_until_expired(server: &TestServer, token: &str, job_id: &str) -> pb::RenderJob {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let job = get(server, token, job_id).await;
        if job.output.as_ref().is_some_and(|o| o.expired) {
            return job;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "output never expired: {:?}",
            job.output
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn files_in(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| entries.filter_map(|e| e.ok().map(|e| e.path())).collect())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn s3_input_to_bucket_output_with_a_presigned_url() {
    let Some(moto) = Moto::start("s3_input_to_bucket_output_with_a_presigned_url").await else {
        return;
    };
    for bucket in ["inputs", "outputs", "private"] {
        moto.create_bucket(bucket).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = dir.path().join("clip.mp4");
    tiny_clip(&clip);
    let inputs = moto.bucket("inputs");
    inputs
        .put(
            &ObjectPath::from("clip.mp4"),
            PutPayload::from(std::fs::read(&clip).expect("clip")),
        )
        .await
        .expect("upload the input");

    let server = TestServer::start(s3_config(dir.path(), &moto)).await;
    let token = server.token("alice");

    let (done, _) = render(&server, &token, "s3://inputs/clip.mp4").await;
    assert_eq!(done.state, JobState::Succeeded as i32, "{:?}", done.failure);
    assert_eq!(done.video_name, "clip.mp4");
    let output = done.output.expect("output");
    assert!(!output.expired);
    let url = reqwest::Url::parse(&output.download_url).expect("URL");
    assert_eq!(
        url.path(),
        format!("/outputs/renders/{}.mp4", done.job_id),
        "{url}"
    );
    let query: Vec<String> = url.query_pairs().map(|(k, _)| k.into_owned()).collect();
    for wanted in [
        "X-Amz-Algorithm",
        "X-Amz-Credential",
        "X-Amz-Expires",
        "X-Amz-Signature",
    ] {
        assert!(query.iter().any(|k| k == wanted), "{wanted} in {url}");
    }
    // Kept for the default 7 days.
    let expire = output.expire_time.expect("expire_time").seconds;
    let week = chrono::Utc::now().timestamp() + 7 * 24 * 3600;
    assert!((week - expire).abs() < 300, "{expire} vs {week}");

    let downloaded = dir.path().join("downloaded.mp4");
    let size = download(&output.download_url, &downloaded).await;
    assert_eq!(size as i64, output.size_bytes);
    assert_tiny_mp4(&downloaded);
    // The object is in the bucket and the local copy is gone.
    let object = moto
        .bucket("outputs")
        .head(&ObjectPath::from(format!("renders/{}.mp4", done.job_id)))
        .await
        .expect("the output object");
    assert_eq!(object.size as i64, output.size_bytes);
    let left: Vec<PathBuf> = files_in(&server.config.output.dir)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "mp4"))
        .collect();
    assert!(left.is_empty(), "local outputs left: {left:?}");

    // A bucket off the list: refused at CreateRender, naming video_url.
    let mut client = server.client().await;
    let err = client
        .create_render(authed(request("s3://private/clip.mp4"), &token))
        .await
        .expect_err("bucket not allowed");
    assert_error(&err, Code::InvalidArgument, "RENDER_VALIDATION_FAILED");
    let fields: Vec<String> = err
        .get_error_details()
        .bad_request()
        .expect("BadRequest")
        .field_violations
        .iter()
        .map(|v| v.field.clone())
        .collect();
    assert_eq!(fields, vec!["video_url".to_owned()]);

    // An object that does not exist: the job fails with INVALID_VIDEO_URL.
    let (missing, _) = render(&server, &token, "s3://inputs/missing.mp4").await;
    assert_eq!(missing.state, JobState::Failed as i32);
    let failure = missing.failure.expect("failure");
    assert_eq!(failure.code, Code::InvalidArgument as i32);
    assert!(failure.message.contains("does not exist"), "{failure:?}");

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bucket_outputs_expire_after_the_retention() {
    let Some(moto) = Moto::start("bucket_outputs_expire_after_the_retention").await else {
        return;
    };
    for bucket in ["inputs", "outputs"] {
        moto.create_bucket(bucket).await;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let clip = dir.path().join("clip.mp4");
    tiny_clip(&clip);
    moto.bucket("inputs")
        .put(
            &ObjectPath::from("short/clip.mp4"),
            PutPayload::from(std::fs::read(&clip).expect("clip")),
        )
        .await
        .expect("upload the input");
    let mut config = s3_config(dir.path(), &moto);
    config.storage.retention = Duration::from_secs(2);
    config.storage.sweep_interval = Duration::from_millis(200);
    let server = TestServer::start(config).await;
    let token = server.token("alice");

    let (done, old_url) = render(&server, &token, "s3://inputs/short/clip.mp4").await;
    assert_eq!(done.state, JobState::Succeeded as i32, "{:?}", done.failure);
    assert!(!old_url.is_empty());

    let expired = wait_until_expired(&server, &token, &done.job_id).await;
    let output = expired.output.expect("the output record stays");
    assert!(output.download_url.is_empty(), "no URL once expired");
    assert!(output.size_bytes > 0);
    let key = ObjectPath::from(format!("renders/{}.mp4", done.job_id));
    let head = moto.bucket("outputs").head(&key).await;
    assert!(
        matches!(head, Err(object_store::Error::NotFound { .. })),
        "the object is deleted: {head:?}"
    );
    let status = reqwest::get(&old_url).await.expect("old URL").status();
    assert_eq!(status, 404, "the old presigned URL no longer downloads");

    let history = server
        .client()
        .await
        .history(authed(pb::HistoryRequest::default(), &token))
        .await
        .expect("history")
        .into_inner();
    let listed = history.jobs[0].output.as_ref().expect("output");
    assert!(listed.expired && listed.download_url.is_empty());

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn local_outputs_expire_and_their_links_answer_gone() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = common::server::test_config(dir.path());
    config.storage.retention = Duration::from_secs(2);
    config.storage.sweep_interval = Duration::from_millis(200);
    let server = TestServer::start(config).await;
    let video = server.media("clip.mp4");
    tiny_clip(&video);
    let token = server.token("alice");

    let (done, old_url) = render(&server, &token, &format!("file://{}", video.display())).await;
    assert_eq!(done.state, JobState::Succeeded as i32, "{:?}", done.failure);
    assert!(old_url.contains("/downloads/"), "{old_url}");
    let file = server
        .config
        .output
        .dir
        .join(format!("{}.mp4", done.job_id));

    let expired = wait_until_expired(&server, &token, &done.job_id).await;
    let output = expired.output.expect("the output record stays");
    assert!(output.download_url.is_empty());
    assert!(output.expire_time.is_some());
    assert!(!file.exists(), "the file is deleted");
    let response = reqwest::get(&old_url).await.expect("old URL");
    assert_eq!(response.status(), 410, "expired outputs are Gone");
    assert!(
        video.exists(),
        "the input in the media root is never touched"
    );

    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_outputs_upload_in_parts_and_delete_idempotently() {
    use renderd::media::{ObjectStorage, OutputConfig, OutputStore};
    let Some(moto) = Moto::start("large_outputs_upload_in_parts_and_delete_idempotently").await
    else {
        return;
    };
    moto.create_bucket("outputs").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = s3_config(dir.path(), &moto);
    config.storage.input_buckets.clear();
    config.storage.multipart_part_bytes = 5 * 1024 * 1024;
    let objects = ObjectStorage::new(&config.storage)
        .expect("storage")
        .expect("a bucket");
    let outputs = OutputStore::new(
        &OutputConfig {
            dir: dir.path().join("outputs"),
            ..OutputConfig::default()
        },
        "http://127.0.0.1:1".into(),
        b"key".to_vec(),
    )
    .expect("outputs")
    .with_storage(&config.storage, Some(&objects))
    .expect("bucket outputs");

    // 12 MiB and a bit: three parts of at least 5 MiB but the last.
    let content: Vec<u8> = (0..12 * 1024 * 1024 + 7)
        .map(|i: u32| (i % 251) as u8)
        .collect();
    let local = outputs.final_path(
        "0190f3a4-8c2e-7b1d-9f00-123456789abc",
        renderd::domain::job::OutputFormat::Mp4,
    );
    std::fs::write(&local, &content).expect("write");
    let stored = outputs.publish(&local).await.expect("upload");
    assert_eq!(
        stored,
        "s3://outputs/renders/0190f3a4-8c2e-7b1d-9f00-123456789abc.mp4"
    );
    assert!(
        !local.exists(),
        "the local copy is removed after the upload"
    );
    let bucket = moto.bucket("outputs");
    let key = ObjectPath::from("renders/0190f3a4-8c2e-7b1d-9f00-123456789abc.mp4");
    let meta = bucket.head(&key).await.expect("uploaded");
    assert!(
        meta.e_tag
            .as_deref()
            .is_some_and(|tag| tag.trim_matches('"').ends_with("-3")),
        "a three-part multipart ETag: {:?}",
        meta.e_tag
    );
    let body = bucket
        .get(&key)
        .await
        .expect("get")
        .bytes()
        .await
        .expect("bytes");
    assert_eq!(body.as_ref(), content.as_slice());

    outputs.delete_output(&stored).await.expect("delete");
    assert!(matches!(
        bucket.head(&key).await,
        Err(object_store::Error::NotFound { .. })
    ));
    outputs
        .delete_output(&stored)
        .await
        .expect("deleting a deleted output is fine");
    assert!(outputs
        .delete_output("s3://elsewhere/renders/x.mp4")
        .await
        .is_err());
}
