//! The HTTP client of the OTLP exporter. The SDK's batch processor exports from its own
//! thread, outside any async runtime, so reqwest's async client runs on a small tokio runtime
//! of its own (one worker thread, apart from the server's runtime so that exports keep working
//! while the server drains at shutdown or after its runtime is gone).

use std::future::Future;
use std::pin::Pin;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};

/// Responses from a collector are small; a larger body is refused.
const MAX_RESPONSE_BYTES: usize = 1 << 20;

#[derive(Debug)]
pub(super) struct ExportClient {
    client: reqwest::Client,
    runtime: ExportRuntime,
}

/// A one-thread runtime that shuts down without blocking when dropped (the provider may be
/// dropped inside the server's runtime, where a blocking drop would panic).
#[derive(Debug)]
struct ExportRuntime(Option<tokio::runtime::Runtime>);

impl Drop for ExportRuntime {
    fn drop(&mut self) {
        if let Some(runtime) = self.0.take() {
            runtime.shutdown_background();
        }
    }
}

impl ExportClient {
    pub(super) fn new(timeout: std::time::Duration) -> Result<ExportClient, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| format!("building the OTLP HTTP client: {e}"))?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("renderd-otlp")
            .build()
            .map_err(|e| format!("starting the OTLP export runtime: {e}"))?;
        Ok(ExportClient {
            client,
            runtime: ExportRuntime(Some(runtime)),
        })
    }

    async fn send(
        client: reqwest::Client,
        request: Request<Bytes>,
    ) -> Result<Response<Bytes>, HttpError> {
        let request = reqwest::Request::try_from(request)?;
        let mut response = client.execute(request).await?;
        let status = response.status();
        let headers = std::mem::take(response.headers_mut());
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err("the collector's response is larger than 1 MiB".into());
            }
            body.extend_from_slice(&chunk);
        }
        let mut out = Response::builder().status(status).body(Bytes::from(body))?;
        *out.headers_mut() = headers;
        Ok(out)
    }
}

impl HttpClient for ExportClient {
    fn send_bytes<'a, 'b>(
        &'a self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        let client = self.client.clone();
        let task = self
            .runtime
            .0
            .as_ref()
            .map(|runtime| runtime.spawn(Self::send(client, request)));
        Box::pin(async move {
            // The JoinHandle is awaited by whatever executor polls this (the batch thread's
            // block_on), while the request itself runs on the export runtime.
            let task = task.ok_or("the OTLP export runtime has stopped")?;
            task.await
                .map_err(|e| -> HttpError { format!("the OTLP export task failed: {e}").into() })?
        })
    }
}
