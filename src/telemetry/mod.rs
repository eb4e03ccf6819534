//! Observability: the `[telemetry]` section, the process-wide Prometheus registry and its admin
//! listener, the tracing subscriber (text or JSON logs, OpenTelemetry export over OTLP/HTTP),
//! and W3C trace context in and out of requests and jobs.
//!
//! Everything here is read from the configuration once at start; nothing reads the
//! environment afterwards (the OTLP exporter's own `OTEL_*` variables are read when it is built).

mod admin;
mod context;
mod export;
mod init;
mod layer;
mod metrics;

use std::net::SocketAddr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use admin::{serve_admin, AdminServer};
pub use context::{context_from_traceparent, current_traceparent, traceparent_of};
pub use init::{flush_traces, init, InitError, Telemetry, LOG_FILTER_ENV};
pub use layer::{RequestLayer, RequestService};
pub use metrics::{
    metrics, JobCounts, Metrics, Protocol, QuotaRejection, WebhookDelivery, METRICS_CONTENT_TYPE,
};

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (tracing-subscriber's default format).
    #[default]
    Text,
    /// One JSON object per line, with the current span and its parents.
    Json,
}

/// `[telemetry]`: Prometheus metrics, log format, OpenTelemetry trace export.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct TelemetryConfig {
    /// Serve Prometheus `/metrics` on [`TelemetryConfig::metrics_listen`].
    pub metrics_enabled: bool,
    /// The admin listener (separate from the public port); port 0 picks a free one.
    pub metrics_listen: SocketAddr,
    pub log_format: LogFormat,
    /// OTLP/HTTP (protobuf) collector, e.g. `http://127.0.0.1:4318` (`/v1/traces` is added
    /// when the URL has no path). None: no traces are exported.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Fraction of new traces kept (0–1); a caller's sampled flag is always followed.
    pub sampling_ratio: f64,
    /// Longest time one OTLP export request may take.
    #[serde(with = "humantime_serde")]
    pub export_timeout: Duration,
}

impl Default for TelemetryConfig {
    fn default() -> Self {
        TelemetryConfig {
            metrics_enabled: true,
            metrics_listen: SocketAddr::from(([127, 0, 0, 1], 9090)),
            log_format: LogFormat::Text,
            otlp_endpoint: None,
            service_name: "renderd".to_owned(),
            sampling_ratio: 1.0,
            export_timeout: Duration::from_secs(10),
        }
    }
}

impl TelemetryConfig {
    /// Checks the values that serde cannot: the ratio's range and the endpoint's form.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.sampling_ratio.is_finite() && (0.0..=1.0).contains(&self.sampling_ratio)) {
            return Err("sampling_ratio must be between 0 and 1".into());
        }
        if self.service_name.trim().is_empty() {
            return Err("service_name must not be empty".into());
        }
        if self.export_timeout.is_zero() {
            return Err("export_timeout must be positive".into());
        }
        if let Some(endpoint) = &self.otlp_endpoint {
            traces_url(endpoint)?;
        }
        Ok(())
    }
}

/// The OTLP/HTTP traces URL for a configured endpoint: `/v1/traces` is appended to a bare
/// `scheme://host:port`; a URL with a path is taken as the full traces URL.
pub fn traces_url(endpoint: &str) -> Result<String, String> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| format!("otlp_endpoint {endpoint:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Err(format!(
                "otlp_endpoint {endpoint:?} must be an http:// or https:// URL"
            ))
        }
    }
    if uri.host().is_none() {
        return Err(format!("otlp_endpoint {endpoint:?} has no host"));
    }
    let path = uri.path();
    if path.is_empty() || path == "/" {
        Ok(format!("{}/v1/traces", endpoint.trim_end_matches('/')))
    } else {
        Ok(endpoint.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_export_nothing() {
        let config = TelemetryConfig::default();
        assert_eq!(config.validate(), Ok(()));
        assert!(config.metrics_enabled);
        assert_eq!(config.metrics_listen.to_string(), "127.0.0.1:9090");
        assert_eq!(config.otlp_endpoint, None);
        assert_eq!(config.log_format, LogFormat::Text);
    }

    #[test]
    fn traces_url_adds_the_signal_path_only_to_a_bare_endpoint() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318").as_deref(),
            Ok("http://127.0.0.1:4318/v1/traces")
        );
        assert_eq!(
            traces_url("http://collector:4318/").as_deref(),
            Ok("http://collector:4318/v1/traces")
        );
        assert_eq!(
            traces_url("https://otel.example.com/custom/v1/traces").as_deref(),
            Ok("https://otel.example.com/custom/v1/traces")
        );
        assert!(traces_url("grpc://collector:4317").is_err());
        assert!(traces_url("not a url").is_err());
    }

    #[test]
    fn invalid_values_are_named() {
        let config = TelemetryConfig {
            sampling_ratio: 1.5,
            ..TelemetryConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("sampling_ratio"));
        let config = TelemetryConfig {
            otlp_endpoint: Some("ftp://x".into()),
            ..TelemetryConfig::default()
        };
        assert!(config.validate().unwrap_err().contains("otlp_endpoint"));
    }

    #[test]
    fn log_format_reads_from_lowercase() {
        let config: TelemetryConfig =
            serde_json::from_str(r#"{"log_format":"json","metrics_enabled":false}"#)
                .expect("parse");
        assert_eq!(config.log_format, LogFormat::Json);
        assert!(!config.metrics_enabled);
    }
}
