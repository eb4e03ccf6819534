//! The admin listener: Prometheus `GET /metrics`, apart from the public port so that it can
//! stay inside the cluster (and need no token).

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use super::metrics::{metrics, METRICS_CONTENT_TYPE};
use crate::store::JobStore;

/// The job counts are read from the database on each scrape, within this time.
const COUNT_TIMEOUT: Duration = Duration::from_secs(5);

/// A running admin listener.
pub struct AdminServer {
    /// Where `/metrics` is served (the real port when the configuration said 0).
    pub addr: SocketAddr,
    pub task: JoinHandle<()>,
}

/// Binds `listen` and serves `/metrics` until `shutdown` resolves.
pub async fn serve_admin(
    listen: SocketAddr,
    store: JobStore,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<AdminServer, std::io::Error> {
    let listener = TcpListener::bind(listen).await?;
    let addr = listener.local_addr()?;
    let router = Router::new()
        .route("/metrics", get(scrape))
        .with_state(store);
    let task = tokio::spawn(async move {
        if let Err(err) = axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!(error = %err, "the metrics listener stopped");
        }
    });
    Ok(AdminServer { addr, task })
}

async fn scrape(State(store): State<JobStore>) -> Response {
    // Jobs by state are the database's truth (every replica's jobs); a slow or failed count
    // keeps the previous values rather than failing the whole scrape.
    match tokio::time::timeout(COUNT_TIMEOUT, store.count_by_state()).await {
        Ok(Ok(counts)) => metrics().set_job_counts(&counts),
        Ok(Err(err)) => tracing::warn!(error = %err, "counting jobs for /metrics failed"),
        Err(_) => tracing::warn!("counting jobs for /metrics timed out"),
    }
    match metrics().encode() {
        Ok(text) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response(),
        Err(err) => {
            tracing::error!(error = %err, "encoding metrics failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
