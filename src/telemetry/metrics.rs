//! The process-wide Prometheus registry: every metric renderd exports, named `renderd_*`, and
//! the small functions the rest of the code calls to record into it.

use std::sync::atomic::AtomicU64;
use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

use crate::domain::job::JobState;

/// The `Content-Type` of [`Metrics::encode`]'s text (OpenMetrics, which Prometheus reads).
pub const METRICS_CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

static METRICS: LazyLock<Metrics> = LazyLock::new(Metrics::new);

/// The process-wide metrics; cheap to call from anywhere (a static after the first call).
pub fn metrics() -> &'static Metrics {
    &METRICS
}

/// Which face a request came through.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // label values as Prometheus shows them
pub enum Protocol {
    grpc,
    http,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RpcLabels {
    protocol: Protocol,
    /// `render.v1.RenderService/CreateRender`, or `POST /api/render/{id}/status`.
    method: String,
    /// The gRPC status code name (`OK`, `RESOURCE_EXHAUSTED`) or the HTTP status (`200`).
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EncoderLabels {
    encoder: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

/// Why a create was refused before a job existed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QuotaRejection {
    Daily,
    Monthly,
    Concurrent,
    /// The per-user request rate limit.
    Rate,
}

impl QuotaRejection {
    pub fn as_str(self) -> &'static str {
        match self {
            QuotaRejection::Daily => "daily",
            QuotaRejection::Monthly => "monthly",
            QuotaRejection::Concurrent => "concurrent",
            QuotaRejection::Rate => "rate",
        }
    }
}

/// How one webhook delivery attempt ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WebhookDelivery {
    /// The receiver answered 2xx.
    Delivered,
    /// The attempt failed (error or non-2xx); another is scheduled.
    Failed,
    /// The attempt failed and the delivery deadline has passed: no more attempts.
    GaveUp,
}

impl WebhookDelivery {
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookDelivery::Delivered => "delivered",
            WebhookDelivery::Failed => "failed",
            WebhookDelivery::GaveUp => "gave_up",
        }
    }
}

/// Jobs per state, as counted in the database (every replica's jobs).
pub type JobCounts = [(JobState, u64)];

fn state_label(state: JobState) -> &'static str {
    match state {
        JobState::Queued => "queued",
        JobState::Running => "running",
        JobState::Succeeded => "succeeded",
        JobState::Failed => "failed",
        JobState::Cancelled => "cancelled",
    }
}

fn latency_histogram() -> Histogram {
    // 1 ms … ~33 s; status streams that stay open longer land in +Inf.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

/// Every metric renderd exports. Use [`metrics()`]; `new` is for tests that need a clean one.
pub struct Metrics {
    registry: Registry,
    rpc_requests: Family<RpcLabels, Counter>,
    rpc_duration: Family<RpcLabels, Histogram, fn() -> Histogram>,
    jobs: Family<StateLabels, Gauge>,
    queue_depth: Gauge,
    jobs_finished: Family<StateLabels, Counter>,
    render_fps: Histogram,
    last_render_fps: Gauge<f64, AtomicU64>,
    frames_rendered: Counter,
    jobs_by_encoder: Family<EncoderLabels, Counter>,
    quota_rejections: Family<KindLabels, Counter>,
    webhook_deliveries: Family<ResultLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("renderd");
        let rpc_requests = Family::<RpcLabels, Counter>::default();
        registry.register(
            "rpc_requests",
            "Requests answered, by protocol, method (gRPC path or HTTP route) and code",
            rpc_requests.clone(),
        );
        let rpc_duration: Family<RpcLabels, Histogram, fn() -> Histogram> =
            Family::new_with_constructor(latency_histogram);
        registry.register_with_unit(
            "rpc_duration",
            "Time from a request's arrival to the end of its response body",
            Unit::Seconds,
            rpc_duration.clone(),
        );
        let jobs = Family::<StateLabels, Gauge>::default();
        registry.register(
            "jobs",
            "Jobs in the database by state (all replicas), refreshed on each scrape",
            jobs.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "queue_depth",
            "Jobs waiting for a worker (all replicas)",
            queue_depth.clone(),
        );
        let jobs_finished = Family::<StateLabels, Counter>::default();
        registry.register(
            "jobs_finished",
            "Jobs this replica's workers ended, by final state",
            jobs_finished.clone(),
        );
        let render_fps = Histogram::new(exponential_buckets(1.0, 2.0, 10));
        registry.register(
            "render_fps",
            "Frames per second of wall time of each finished render",
            render_fps.clone(),
        );
        let last_render_fps = Gauge::<f64, AtomicU64>::default();
        registry.register(
            "render_last_fps",
            "Frames per second of wall time of the last finished render",
            last_render_fps.clone(),
        );
        let frames_rendered = Counter::default();
        registry.register(
            "frames_rendered",
            "Frames composited and encoded by this replica",
            frames_rendered.clone(),
        );
        let jobs_by_encoder = Family::<EncoderLabels, Counter>::default();
        registry.register(
            "encoder_jobs",
            "Finished renders by the encoder that ran them (nvenc, x264)",
            jobs_by_encoder.clone(),
        );
        let quota_rejections = Family::<KindLabels, Counter>::default();
        registry.register(
            "quota_rejections",
            "Creates refused by a quota (daily, monthly, concurrent) or the rate limit (rate)",
            quota_rejections.clone(),
        );
        let webhook_deliveries = Family::<ResultLabels, Counter>::default();
        registry.register(
            "webhook_deliveries",
            "Webhook delivery attempts by result (delivered, failed, gave_up)",
            webhook_deliveries.clone(),
        );
        // Series that exist from the start (at 0), so that rates and alerts need no absent().
        for kind in [
            QuotaRejection::Daily,
            QuotaRejection::Monthly,
            QuotaRejection::Concurrent,
            QuotaRejection::Rate,
        ] {
            let _series = quota_rejections.get_or_create(&KindLabels {
                kind: kind.as_str(),
            });
        }
        for result in [
            WebhookDelivery::Delivered,
            WebhookDelivery::Failed,
            WebhookDelivery::GaveUp,
        ] {
            let _series = webhook_deliveries.get_or_create(&ResultLabels {
                result: result.as_str(),
            });
        }
        Metrics {
            registry,
            rpc_requests,
            rpc_duration,
            jobs,
            queue_depth,
            jobs_finished,
            render_fps,
            last_render_fps,
            frames_rendered,
            jobs_by_encoder,
            quota_rejections,
            webhook_deliveries,
        }
    }

    /// One answered request: its method (bounded by the caller), code and latency.
    pub fn rpc_finished(&self, protocol: Protocol, method: &str, code: &str, elapsed: Duration) {
        let labels = RpcLabels {
            protocol,
            method: method.to_owned(),
            code: code.to_owned(),
        };
        self.rpc_requests.get_or_create(&labels).inc();
        self.rpc_duration
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
    }

    /// Replaces the jobs-by-state gauges and the queue depth; states not listed are 0.
    pub fn set_job_counts(&self, counts: &JobCounts) {
        for state in JobState::ALL {
            let n = counts
                .iter()
                .filter(|(s, _)| *s == state)
                .map(|(_, n)| *n)
                .sum::<u64>();
            let n = i64::try_from(n).unwrap_or(i64::MAX);
            self.jobs
                .get_or_create(&StateLabels {
                    state: state_label(state),
                })
                .set(n);
            if state == JobState::Queued {
                self.queue_depth.set(n);
            }
        }
    }

    /// A worker of this replica ended a job in `state`.
    pub fn job_finished(&self, state: JobState) {
        self.jobs_finished
            .get_or_create(&StateLabels {
                state: state_label(state),
            })
            .inc();
    }

    /// A render completed at `fps` (frames per wall-clock second) with `encoder`.
    pub fn render_finished(&self, fps: f64, encoder: &'static str) {
        if fps.is_finite() && fps >= 0.0 {
            self.render_fps.observe(fps);
            self.last_render_fps.set(fps);
        }
        self.jobs_by_encoder
            .get_or_create(&EncoderLabels { encoder })
            .inc();
    }

    /// `frames` more frames were rendered.
    pub fn frames_rendered(&self, frames: u64) {
        self.frames_rendered.inc_by(frames);
    }

    pub fn quota_rejected(&self, kind: QuotaRejection) {
        self.quota_rejections
            .get_or_create(&KindLabels {
                kind: kind.as_str(),
            })
            .inc();
    }

    /// Called by the webhook delivery task after each attempt.
    pub fn webhook_delivery(&self, result: WebhookDelivery) {
        self.webhook_deliveries
            .get_or_create(&ResultLabels {
                result: result.as_str(),
            })
            .inc();
    }

    /// The registry in the text exposition format.
    pub fn encode(&self) -> Result<String, std::fmt::Error> {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &self.registry)?;
        Ok(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The value of the sample line that starts with `prefix` (name and labels).
    fn sample(text: &str, prefix: &str) -> Option<f64> {
        text.lines()
            .find(|line| line.starts_with(prefix))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse().ok())
    }

    #[test]
    fn every_metric_is_registered_with_the_renderd_prefix() {
        let m = Metrics::new();
        let fresh = m.encode().expect("encode");
        assert_eq!(
            sample(&fresh, "renderd_quota_rejections_total{kind=\"monthly\"}"),
            Some(0.0),
            "rejection kinds exist from the start"
        );
        assert_eq!(
            sample(
                &fresh,
                "renderd_webhook_deliveries_total{result=\"gave_up\"}"
            ),
            Some(0.0)
        );
        // Labelled families show up once they have a series.
        m.rpc_finished(Protocol::grpc, "a.B/C", "OK", Duration::from_millis(1));
        m.set_job_counts(&[]);
        m.job_finished(JobState::Failed);
        m.render_finished(1.0, "nvenc");
        let text = m.encode().expect("encode");
        for name in [
            "renderd_rpc_requests",
            "renderd_rpc_duration_seconds",
            "renderd_jobs",
            "renderd_queue_depth",
            "renderd_jobs_finished",
            "renderd_render_fps",
            "renderd_render_last_fps",
            "renderd_frames_rendered",
            "renderd_encoder_jobs",
            "renderd_quota_rejections",
            "renderd_webhook_deliveries",
        ] {
            assert!(
                text.contains(&format!("# TYPE {name} ")),
                "{name} missing from\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            assert!(line.starts_with("renderd_"), "unprefixed sample {line}");
        }
    }

    #[test]
    fn recorded_values_are_encoded_with_their_labels() {
        let m = Metrics::new();
        let method = "render.v1.RenderService/CreateRender";
        m.rpc_finished(Protocol::grpc, method, "OK", Duration::from_millis(3));
        m.rpc_finished(Protocol::grpc, method, "OK", Duration::from_millis(5));
        m.rpc_finished(
            Protocol::http,
            "GET /api/render/{id}/status",
            "404",
            Duration::from_millis(1),
        );
        m.set_job_counts(&[(JobState::Succeeded, 3), (JobState::Queued, 2)]);
        m.job_finished(JobState::Succeeded);
        m.render_finished(42.5, "x264");
        m.frames_rendered(10);
        m.frames_rendered(5);
        m.quota_rejected(QuotaRejection::Rate);
        m.quota_rejected(QuotaRejection::Concurrent);
        m.webhook_delivery(WebhookDelivery::Failed);
        m.webhook_delivery(WebhookDelivery::Delivered);
        let text = m.encode().expect("encode");
        let labels = format!("{{protocol=\"grpc\",method=\"{method}\",code=\"OK\"}}");
        assert_eq!(
            sample(&text, &format!("renderd_rpc_requests_total{labels}")),
            Some(2.0)
        );
        assert_eq!(
            sample(
                &text,
                &format!("renderd_rpc_duration_seconds_count{labels}")
            ),
            Some(2.0)
        );
        let sum = sample(&text, &format!("renderd_rpc_duration_seconds_sum{labels}"))
            .expect("latency sum");
        assert!((sum - 0.008).abs() < 1e-9, "{sum}");
        assert_eq!(
            sample(
                &text,
                "renderd_rpc_requests_total{protocol=\"http\",method=\"GET /api/render/{id}/status\",code=\"404\"}"
            ),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "renderd_jobs{state=\"succeeded\"}"),
            Some(3.0)
        );
        assert_eq!(sample(&text, "renderd_jobs{state=\"failed\"}"), Some(0.0));
        assert_eq!(sample(&text, "renderd_queue_depth "), Some(2.0));
        assert_eq!(
            sample(&text, "renderd_jobs_finished_total{state=\"succeeded\"}"),
            Some(1.0)
        );
        assert_eq!(sample(&text, "renderd_render_fps_count "), Some(1.0));
        assert_eq!(sample(&text, "renderd_render_fps_sum "), Some(42.5));
        assert_eq!(sample(&text, "renderd_render_last_fps "), Some(42.5));
        assert_eq!(sample(&text, "renderd_frames_rendered_total "), Some(15.0));
        assert_eq!(
            sample(&text, "renderd_encoder_jobs_total{encoder=\"x264\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "renderd_quota_rejections_total{kind=\"rate\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(&text, "renderd_quota_rejections_total{kind=\"concurrent\"}"),
            Some(1.0)
        );
        assert_eq!(
            sample(
                &text,
                "renderd_webhook_deliveries_total{result=\"delivered\"}"
            ),
            Some(1.0)
        );
    }

    #[test]
    fn job_counts_replace_the_previous_scrape() {
        let m = Metrics::new();
        m.set_job_counts(&[(JobState::Running, 4)]);
        m.set_job_counts(&[(JobState::Succeeded, 1)]);
        let text = m.encode().expect("encode");
        assert_eq!(sample(&text, "renderd_jobs{state=\"running\"}"), Some(0.0));
        assert_eq!(
            sample(&text, "renderd_jobs{state=\"succeeded\"}"),
            Some(1.0)
        );
    }

    #[test]
    fn the_process_wide_handle_is_one_registry() {
        assert!(std::ptr::eq(metrics(), metrics()));
    }
}
