//! The composition root: builds every part once from the configuration, serves gRPC, health,
//! reflection and downloads on one port, and shuts down gracefully.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::task::JoinHandle;
use tokio_stream::wrappers::TcpListenerStream;
use tonic::service::Routes;
use tonic::transport::Server;

use crate::api::RenderCore;
use crate::auth::{AuthConfig, AuthLayer, Verifier};
use crate::config::Config;
use crate::engine::{scene_parse_options, Engine};
use crate::grpc::pb::render_service_server::RenderServiceServer;
use crate::grpc::pb::FILE_DESCRIPTOR_SET;
use crate::grpc::service::RenderApi;
use crate::grpc::status::{ApiError, Lang};
use crate::media::{
    download_router_with_expiry, ExpiredLookup, InputResolver, ObjectStorage, OutputStore,
};
use crate::queue::{OutputSweeper, StatusHub, WorkerPool, WorkerPoolParts};
use crate::quota::{QuotaService, RateLimiter};
use crate::store::JobStore;

/// Where the development HS256 secret is kept when no key is configured.
pub const DEV_SECRET_FILE: &str = "./data/dev-jwt-secret";
/// Where the download-URL key is kept when neither it nor an HMAC secret is configured.
const URL_KEY_FILE: &str = "./data/url-signing-key";

/// Paths that need no token: health checks, reflection, and downloads (signed URLs instead).
/// `/api/` (the editor's REST contract) authenticates inside its own router, so that a refusal
/// there is the contract's JSON body rather than a gRPC status.
const PUBLIC_PREFIXES: [&str; 5] = [
    "/grpc.health.v1.Health/",
    "/grpc.reflection.v1.ServerReflection/",
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/downloads/",
    "/api/",
];

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Engine(#[from] crate::engine::EngineError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
}

fn config_error(e: impl std::fmt::Display) -> StartError {
    StartError::Config(e.to_string())
}

/// The auth section as the server uses it: with no key configured at all, a development
/// HS256 secret kept in [`DEV_SECRET_FILE`] (created on first start).
pub fn effective_auth(config: &Config) -> Result<AuthConfig, StartError> {
    let mut auth = config.auth.clone();
    let nothing_configured =
        auth.hs256_secret.is_none() && auth.hs256_secret_file.is_none() && auth.jwks_file.is_none();
    if nothing_configured {
        let path = PathBuf::from(DEV_SECRET_FILE);
        crate::auth::ensure_dev_secret(&path).map_err(|source| StartError::Io {
            what: format!("creating the development JWT secret {}", path.display()),
            source,
        })?;
        auth.hs256_secret_file = Some(path);
    }
    Ok(auth)
}

/// The download-URL signing key: configured, else derived from the HMAC secret (so every
/// replica with the same configuration agrees), else a key kept in [`URL_KEY_FILE`].
fn url_signing_key(config: &Config, auth: &AuthConfig) -> Result<Vec<u8>, StartError> {
    if let Some(key) = &config.output.signing_key {
        return Ok(key.as_bytes().to_vec());
    }
    let secret = match crate::auth::resolve_hmac_secret(auth).map_err(config_error)? {
        Some(secret) => secret,
        None => crate::auth::ensure_dev_secret(Path::new(URL_KEY_FILE)).map_err(|source| {
            StartError::Io {
                what: format!("creating the URL signing key {URL_KEY_FILE}"),
                source,
            }
        })?,
    };
    let mut hash = Sha256::new();
    hash.update(b"renderd download URLs\0");
    hash.update(secret.as_bytes());
    Ok(hash.finalize().to_vec())
}

/// A lease owner name unique to this process: host, pid and a random suffix.
fn worker_id() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "renderd".to_owned());
    let suffix = uuid::Uuid::now_v7().simple().to_string();
    format!(
        "{host}-{}-{}",
        std::process::id(),
        &suffix[suffix.len() - 8..]
    )
}

/// A running server. Call [`Running::shutdown`] to stop it gracefully.
pub struct Running {
    /// The address the server listens on (the real port when the configuration said 0).
    pub addr: SocketAddr,
    /// Where Prometheus `/metrics` is served (`[telemetry] metrics_listen`), if enabled.
    pub metrics_addr: Option<SocketAddr>,
    stop: watch::Sender<bool>,
    server: JoinHandle<Result<(), tonic::transport::Error>>,
    workers: Arc<WorkerPool>,
    health: tonic_health::server::HealthReporter,
    grace: std::time::Duration,
    background: Vec<JoinHandle<()>>,
    /// The webhook delivery task (when webhooks are configured); it releases its leases when
    /// it stops, so it is awaited rather than aborted.
    webhooks: Option<JoinHandle<()>>,
}

impl Running {
    /// SIGTERM behaviour: report NOT_SERVING, end status streams (clients reconnect
    /// elsewhere), stop accepting calls, let running renders finish within the grace period
    /// and put the others back in the queue.
    pub async fn shutdown(self) -> Result<(), tonic::transport::Error> {
        tracing::info!("shutting down");
        self.health
            .set_not_serving::<RenderServiceServer<RenderApi>>()
            .await;
        self.stop.send_replace(true);
        self.workers.shutdown(self.grace).await;
        if let Some(webhooks) = self.webhooks {
            let _ = webhooks.await;
        }
        for task in &self.background {
            task.abort();
        }
        let mut server = self.server;
        let result = server_result(&mut server).await;
        tracing::info!("stopped");
        // Telemetry: the spans of the last requests and renders go to the collector now.
        let _ = tokio::task::spawn_blocking(crate::telemetry::flush_traces).await;
        result
    }

    /// Waits until the server stops on its own (it does not, short of an error).
    pub async fn wait(&mut self) -> Result<(), tonic::transport::Error> {
        server_result(&mut self.server).await
    }
}

/// The server task's outcome; a panicked task is logged (its requests already failed).
async fn server_result(
    server: &mut JoinHandle<Result<(), tonic::transport::Error>>,
) -> Result<(), tonic::transport::Error> {
    match server.await {
        Ok(result) => result,
        Err(err) => {
            tracing::error!(error = %err, "the server task failed");
            Ok(())
        }
    }
}

/// Builds everything and starts serving on `config.server.listen`.
pub async fn start(config: Config) -> Result<Running, StartError> {
    tracing::info!(config = ?config, "starting");
    let store = JobStore::connect(&config.database.url)
        .await?
        .with_webhook_deadline(config.webhooks.deadline);
    store.migrate().await?;

    let auth = effective_auth(&config)?;
    let verifier = Arc::new(Verifier::new(&auth).map_err(config_error)?);
    if auth.hs256_secret_file.as_deref() == Some(Path::new(DEV_SECRET_FILE)) {
        tracing::warn!(
            "no JWT key configured: using the development secret in {DEV_SECRET_FILE}; \
             mint tokens with `renderd token --user ID`"
        );
    }

    let listener = TcpListener::bind(config.server.listen)
        .await
        .map_err(|source| StartError::Bind {
            addr: config.server.listen,
            source,
        })?;
    let addr = listener.local_addr().map_err(|source| StartError::Io {
        what: "reading the listen address".into(),
        source,
    })?;
    let base_url = config
        .output
        .public_base_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    // Storage: S3 buckets for `s3://` inputs and bucket outputs (`[storage]`).
    let objects = ObjectStorage::new(&config.storage)
        .map_err(config_error)?
        .map(Arc::new);
    let outputs = Arc::new(
        OutputStore::new(&config.output, base_url, url_signing_key(&config, &auth)?)
            .map_err(|source| StartError::Io {
                what: format!("creating the output folder {}", config.output.dir.display()),
                source,
            })?
            .with_storage(&config.storage, objects.as_deref())
            .map_err(config_error)?,
    );
    let mut inputs = InputResolver::new(&config.media).map_err(config_error)?;
    if let Some(objects) = &objects {
        inputs = inputs.with_object_storage(Arc::clone(objects));
    }
    let inputs = Arc::new(inputs);
    let quota = QuotaService::new(store.clone(), config.quota.clone());
    let limiter = Arc::new(RateLimiter::new(&config.rate_limit).map_err(config_error)?);

    // The GPU, the encoder probe and the fonts: seconds of blocking work.
    let engine_config = config.clone();
    let engine = tokio::task::spawn_blocking(move || Engine::new(engine_config))
        .await
        .map_err(|e| StartError::Config(format!("GPU initialisation stopped: {e}")))??;
    let nvenc = tokio::task::spawn_blocking(crate::pipeline::nvenc_available)
        .await
        .unwrap_or(false);
    tracing::info!(
        gpu = engine.gpu().device_name(),
        encoder = if nvenc { "nvenc" } else { "x264" },
        "render engine ready"
    );

    let (stop, stop_rx) = watch::channel(false);
    let hub = StatusHub::new(store.clone(), config.worker.status_poll);
    let mut background = vec![
        tokio::spawn(hub.clone().run_poller(wait_for_stop(stop_rx.clone()))),
        limiter.spawn_housekeeping(),
        // Storage: outputs past `[storage] retention` are deleted, their jobs marked.
        tokio::spawn(
            OutputSweeper::new(
                store.clone(),
                Arc::clone(&outputs),
                config.storage.sweep_interval,
                config.storage.sweep_batch,
            )
            .run(wait_for_stop(stop_rx.clone())),
        ),
    ];

    // Telemetry: Prometheus /metrics on its own admin listener.
    let metrics_addr = if config.telemetry.metrics_enabled {
        let listen = config.telemetry.metrics_listen;
        let admin =
            crate::telemetry::serve_admin(listen, store.clone(), wait_for_stop(stop_rx.clone()))
                .await
                .map_err(|source| StartError::Bind {
                    addr: listen,
                    source,
                })?;
        tracing::info!(addr = %admin.addr, "serving Prometheus /metrics");
        background.push(admin.task);
        Some(admin.addr)
    } else {
        None
    };
    // Webhooks: terminal transitions write signed-event rows to the outbox (in the store's
    // transactions); this task delivers them, woken when a job ends here.
    config.webhooks.validate().map_err(config_error)?;
    let callbacks =
        Arc::new(crate::webhook::CallbackPolicy::new(&config.webhooks).map_err(config_error)?);
    let webhook_wake = Arc::new(Notify::new());
    let webhooks = match config.webhooks.signer().map_err(config_error)? {
        Some(signer) => {
            let links = Arc::clone(&outputs);
            let link_store = store.clone();
            let parts = crate::webhook::DeliveryParts {
                store: store.clone(),
                config: config.webhooks.clone(),
                signer,
                download_link: Arc::new(move |job_id: String| {
                    let (links, store) = (Arc::clone(&links), link_store.clone());
                    Box::pin(async move {
                        let id = crate::domain::job::JobId::parse(&job_id).ok()?;
                        let job = store.get_status(&id).await.ok()?;
                        links.link(&job).await
                    })
                }),
                wake: Arc::clone(&webhook_wake),
                owner: worker_id(),
            };
            Some(crate::webhook::spawn_delivery(parts, stop_rx.clone()).map_err(config_error)?)
        }
        None => None,
    };

    let finished_quota = quota.clone();
    let workers = Arc::new(WorkerPool::start(
        WorkerPoolParts {
            store: store.clone(),
            hub: hub.clone(),
            engine: Arc::new(engine),
            inputs: Arc::clone(&inputs),
            outputs: Arc::clone(&outputs),
            config: config.worker.clone(),
            on_finished: Arc::new(move |job| {
                webhook_wake.notify_one();
                let quota = finished_quota.clone();
                let owner = job.owner.clone();
                tokio::spawn(async move { quota.invalidate(&owner).await });
            }),
        },
        worker_id(),
    ));
    if let Ok(removed) = inputs.remove_stale_downloads() {
        if removed > 0 {
            tracing::info!(removed, "removed downloads left by an earlier run");
        }
    }

    let store_for_downloads = store.clone();
    let core = Arc::new(RenderCore {
        store,
        quota,
        limiter,
        hub,
        workers: Arc::clone(&workers),
        inputs,
        outputs: Arc::clone(&outputs),
        parse_options: scene_parse_options(&config),
        output_limits: config.output_limits.clone(),
        default_quality: config.render.quality,
        callbacks,
    });
    let api = RenderApi {
        core: Arc::clone(&core),
        streams: Arc::new(Semaphore::new(config.server.max_status_streams)),
        shutdown: stop_rx.clone(),
    };
    let max_message = config.server.max_message_bytes;
    let render_service = RenderServiceServer::new(api)
        .max_decoding_message_size(max_message)
        .max_encoding_message_size(max_message);

    let (health, health_service) = tonic_health::server::health_reporter();
    let reflection = || {
        // Both reflection versions list every service, themselves included.
        tonic_reflection::server::Builder::configure()
            .include_reflection_service(false)
            .register_encoded_file_descriptor_set(tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(
                tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
            )
            .register_encoded_file_descriptor_set(FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection().build_v1().map_err(config_error)?;
    let reflection_v1alpha = reflection().build_v1alpha().map_err(config_error)?;

    // Storage: a download of an output retention deleted answers 410 Gone.
    let expiry_store = store_for_downloads;
    let expired: ExpiredLookup = Arc::new(move |job_id: String| {
        let store = expiry_store.clone();
        Box::pin(async move {
            let Ok(id) = crate::domain::job::JobId::parse(&job_id) else {
                return false;
            };
            store
                .get_status(&id)
                .await
                .is_ok_and(|job| job.output.is_some_and(|output| output.expired_at.is_some()))
        })
    });
    // The editor's REST contract: a second face over the same core, same port.
    let rest = crate::rest::router(
        crate::rest::RestState {
            core,
            verifier: Arc::clone(&verifier),
            allowed_origins: config.server.allowed_origins.clone(),
        },
        max_message,
    );
    let routes = Routes::from(download_router_with_expiry(outputs, expired).merge(rest))
        .add_service(render_service)
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha);
    let auth_layer = AuthLayer::new(
        verifier,
        PUBLIC_PREFIXES.iter().map(|p| (*p).to_owned()).collect(),
        Arc::new(|err, headers| {
            ApiError::Unauthenticated {
                detail: err.to_string(),
            }
            .into_status(Lang::from_headers(headers))
        }),
    );
    // Browsers: CORS for the configured origins (none: no CORS headers) answers preflights
    // before auth; gRPC-Web (over HTTP/1.1 or 2) is translated before auth, so it is
    // authenticated exactly like gRPC and its refusals reach the page as gRPC-Web.
    let cors = crate::browser::cors_layer(&config.server.allowed_origins).map_err(config_error)?;
    let server = Server::builder()
        .accept_http1(true)
        .timeout(config.server.request_timeout)
        .max_concurrent_streams(config.server.max_concurrent_streams)
        .http2_keepalive_interval(Some(config.server.http2_keepalive))
        .tcp_nodelay(true)
        .layer(tower::util::option_layer(cors))
        .layer(crate::browser::GrpcWebLayer)
        // Telemetry: inside gRPC-Web (whose trailers travel in the body, so codes are read
        // after translation) and outside auth, so refused requests are traced and counted too.
        .layer(crate::telemetry::RequestLayer)
        .layer(auth_layer)
        .add_routes(routes);
    health.set_serving::<RenderServiceServer<RenderApi>>().await;
    let incoming = TcpListenerStream::new(listener);
    let server =
        tokio::spawn(server.serve_with_incoming_shutdown(incoming, wait_for_stop(stop_rx)));
    tracing::info!(%addr, "serving render.v1.RenderService, health, reflection, downloads and the REST API");
    Ok(Running {
        addr,
        metrics_addr,
        stop,
        server,
        workers,
        health,
        grace: config.worker.shutdown_grace,
        background,
        webhooks,
    })
}

async fn wait_for_stop(mut stop: watch::Receiver<bool>) {
    let _ = stop.wait_for(|stopping| *stopping).await;
}
