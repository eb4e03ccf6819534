//! Clients that know nothing of renderd but `proto/` or reflection: the Python client generated
//! with grpcio-tools, grpcurl, and the Node client loaded with @grpc/proto-loader.
//! `scripts/test` installs them (target/pyenv, tests/node/node_modules) and names them in
//! RENDERD_TEST_PYTHON, RENDERD_TEST_GRPCURL and RENDERD_TEST_NODE; without them the tests are
//! skipped, except under CI, where that is a failure.

mod common;

use std::path::PathBuf;
use std::process::Command;

use common::server::{test_config, TestServer};
use common::Audio;

/// The tool named by `var`, or `None` (after saying why) when it is not installed here.
fn tool(var: &str) -> Option<PathBuf> {
    match std::env::var_os(var) {
        Some(path) => Some(PathBuf::from(path)),
        None if std::env::var_os("CI").is_some() => {
            panic!("{var} is not set: run the tests through scripts/test")
        }
        None => {
            eprintln!("skipping: {var} is not set (scripts/test sets it)");
            None
        }
    }
}

fn output_text(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn python_client_generated_from_the_protos_runs_the_happy_path() {
    let Some(python) = tool("RENDERD_TEST_PYTHON") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(test_config(dir.path())).await;
    let video = server.media("py.mp4");
    common::make_clip(&video, 3.0, (640, 360), 30, Audio::AacTone);
    let token = server.token("python-user");
    let addr = server.running.addr.to_string();
    let script = common::repo("tests/python/client.py");
    let scenario = common::repo("demo/scenario.json");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(python)
            .arg(script)
            .args(["--addr", &addr, "--token", &token])
            .arg("--video-url")
            .arg(format!("file://{}", video.display()))
            .arg("--scenario")
            .arg(scenario)
            .args([
                "--width",
                "640",
                "--height",
                "360",
                "--stream-timeout",
                "120",
            ])
            .output()
            .expect("run the Python client")
    })
    .await
    .expect("join");
    let text = output_text(&out);
    assert!(out.status.success(), "python client failed:\n{text}");
    for check in [
        "create",
        "stream",
        "get",
        "history",
        "quota",
        "not-found",
        "no-token",
        "korean",
    ] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("ok") && l.contains(check)),
            "check {check} passed:\n{text}"
        );
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn grpcurl_lists_describes_and_calls_through_reflection() {
    let Some(grpcurl) = tool("RENDERD_TEST_GRPCURL") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = test_config(dir.path());
    config.worker.concurrency = 0;
    let server = TestServer::start(config).await;
    let video = server.media("curl.mp4");
    common::make_clip(&video, 1.0, (640, 360), 30, Audio::None);
    let addr = server.running.addr.to_string();
    let token = server.token("curl-user");
    let scenario = std::fs::read_to_string(common::repo("demo/scenario.json")).expect("scenario");
    let body = serde_json::json!({
        "request_id": "grpcurl-1",
        "video_url": format!("file://{}", video.display()),
        "scenario_json": scenario,
        "options": {"width": 640, "height": 360},
    })
    .to_string();
    let out = tokio::task::spawn_blocking(move || {
        let run = |args: &[&str]| {
            Command::new(&grpcurl)
                .arg("-plaintext")
                .args(args)
                .output()
                .expect("run grpcurl")
        };
        let list = run(&[&addr, "list"]);
        let describe = run(&[&addr, "describe", "render.v1.RenderService"]);
        let auth = format!("authorization: Bearer {token}");
        let create = run(&[
            "-H",
            &auth,
            "-d",
            &body,
            &addr,
            "render.v1.RenderService/CreateRender",
        ]);
        let denied = run(&["-d", "{}", &addr, "render.v1.RenderService/GetQuota"]);
        (list, describe, create, denied)
    })
    .await
    .expect("join");
    let (list, describe, create, denied) = out;
    let list_text = output_text(&list);
    assert!(list.status.success(), "{list_text}");
    for service in [
        "render.v1.RenderService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
        "grpc.reflection.v1.ServerReflection",
    ] {
        assert!(
            list_text.lines().any(|l| l == service),
            "{service} listed:\n{list_text}"
        );
    }
    let describe_text = output_text(&describe);
    for rpc in [
        "CreateRender",
        "GetRender",
        "StreamStatus",
        "Cancel",
        "History",
        "GetQuota",
    ] {
        assert!(
            describe_text.contains(&format!("rpc {rpc}")),
            "{rpc}:\n{describe_text}"
        );
    }
    let create_text = output_text(&create);
    assert!(create.status.success(), "{create_text}");
    let job: serde_json::Value = serde_json::from_str(&create_text).expect("JSON job");
    assert_eq!(job["state"], "JOB_STATE_QUEUED");
    assert_eq!(job["requestId"], "grpcurl-1");
    let denied_text = output_text(&denied);
    assert!(!denied.status.success());
    assert!(denied_text.contains("Unauthenticated"), "{denied_text}");
    assert!(
        denied_text.contains("RENDER_AUTH_ERROR"),
        "grpcurl decodes the ErrorInfo through reflection:\n{denied_text}"
    );
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn node_client_loaded_from_the_protos_runs_the_happy_path() {
    let Some(node) = tool("RENDERD_TEST_NODE") else {
        return;
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let server = TestServer::start(test_config(dir.path())).await;
    let video = server.media("node.mp4");
    common::make_clip(&video, 1.0, (640, 360), 10, Audio::None);
    let token = server.token("node-user");
    let addr = server.running.addr.to_string();
    let script = common::repo("tests/node/client.js");
    let scenario = common::repo("demo/scenario.json");
    let out = tokio::task::spawn_blocking(move || {
        Command::new(node)
            .arg(script)
            .args(["--addr", &addr, "--token", &token])
            .arg("--video-url")
            .arg(format!("file://{}", video.display()))
            .arg("--scenario")
            .arg(scenario)
            .args([
                "--width",
                "640",
                "--height",
                "360",
                "--stream-timeout",
                "120",
            ])
            .output()
            .expect("run the Node client")
    })
    .await
    .expect("join");
    let text = output_text(&out);
    assert!(out.status.success(), "node client failed:\n{text}");
    for check in ["create", "stream", "history", "not-found", "no-token"] {
        assert!(
            text.lines()
                .any(|l| l.starts_with("ok") && l.contains(check)),
            "check {check} passed:\n{text}"
        );
    }
    assert!(
        text.lines().any(|l| l == "5 passed, 0 failed"),
        "summary line:\n{text}"
    );
    server.shutdown().await;
}
