//! The process's tracing subscriber: log lines (text or JSON) filtered by `RENDERD_LOG`, and,
//! with an OTLP endpoint configured, an OpenTelemetry layer exporting spans in batches.

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use opentelemetry_sdk::Resource;
use tracing_subscriber::filter::{EnvFilter, LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use super::export::ExportClient;
use super::{traces_url, LogFormat, TelemetryConfig};

/// The environment variable with the log filter (`info`, `renderd=debug,sqlx=warn`, …).
pub const LOG_FILTER_ENV: &str = "RENDERD_LOG";

/// The exporting provider, for [`flush_traces`] at shutdown.
static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("telemetry: {0}")]
    Config(String),
    #[error("telemetry: building the OTLP exporter: {0}")]
    Exporter(String),
    #[error("telemetry: a tracing subscriber is already installed in this process")]
    AlreadyInstalled,
}

/// What [`init`] installed; [`Telemetry::shutdown`] exports the spans still buffered.
#[must_use = "call shutdown() before the process exits, or buffered spans are lost"]
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// Whether spans are exported (an OTLP endpoint is configured).
    pub fn exporting(&self) -> bool {
        self.provider.is_some()
    }

    /// Flushes and stops the exporter (blocking: call it off the async executor, or after).
    pub fn shutdown(self) {
        if let Some(provider) = self.provider {
            if let Err(err) = provider.shutdown() {
                eprintln!("telemetry: shutting the trace exporter down: {err}");
            }
        }
    }
}

/// Exports the spans buffered so far, waiting for the collector (blocking). A no-op when no
/// exporter is installed.
pub fn flush_traces() {
    if let Some(provider) = PROVIDER.get() {
        if let Err(err) = provider.force_flush() {
            tracing::warn!(error = %err, "flushing spans to the OTLP collector failed");
        }
    }
}

/// Installs the process-wide subscriber: log lines to stderr in `config.log_format` filtered
/// by `RENDERD_LOG` (default `info`), plus, when `config.otlp_endpoint` is set, spans of
/// renderd's own code exported over OTLP/HTTP with W3C trace context propagation. Call once,
/// at start.
pub fn init(config: &TelemetryConfig) -> Result<Telemetry, InitError> {
    config.validate().map_err(InitError::Config)?;
    let log_filter = EnvFilter::try_from_env(LOG_FILTER_ENV)
        .unwrap_or_else(|_| EnvFilter::new(LevelFilter::INFO.to_string()));
    let log_layer = match config.log_format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .boxed(),
    }
    .with_filter(log_filter);

    let provider = match &config.otlp_endpoint {
        Some(endpoint) => Some(tracer_provider(config, endpoint)?),
        None => None,
    };
    // Spans are exported whatever RENDERD_LOG says: the log filter only shapes the log lines.
    let otel_layer = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("renderd"))
            .with_filter(Targets::new().with_target("renderd", LevelFilter::INFO))
    });
    tracing_subscriber::registry()
        .with(log_layer)
        .with(otel_layer)
        .try_init()
        .map_err(|_| InitError::AlreadyInstalled)?;
    if let Some(provider) = &provider {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        // A second init fails above, so the provider is set once.
        let _ = PROVIDER.set(provider.clone());
    }
    Ok(Telemetry { provider })
}

fn tracer_provider(
    config: &TelemetryConfig,
    endpoint: &str,
) -> Result<SdkTracerProvider, InitError> {
    let url = traces_url(endpoint).map_err(InitError::Config)?;
    let client = ExportClient::new(config.export_timeout).map_err(InitError::Exporter)?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(client)
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(url)
        .with_timeout(config.export_timeout)
        .build()
        .map_err(|e| InitError::Exporter(e.to_string()))?;
    let sampler = Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(config.sampling_ratio)));
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(sampler)
        .with_resource(
            Resource::builder()
                .with_service_name(config.service_name.clone())
                .build(),
        )
        .build())
}
