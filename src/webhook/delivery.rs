//! The delivery task: claims due outbox events under a lease, POSTs each signed, and records
//! the answer. A 2xx is delivered; anything else (an error status, a redirect, a timeout, a
//! refused connection) schedules the next attempt by exponential backoff with jitter, or
//! marks the event failed once its deadline is reached. The schedule depends only on the
//! attempt count stored in the row, so a restart continues where the last run stopped.

use std::sync::Arc;
use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{watch, Notify};
use tokio::task::{JoinHandle, JoinSet};

use super::config::WebhookConfig;
use super::signer::{Signer, EVENT_ID_HEADER, SIGNATURE_HEADER};
use crate::store::{JobStore, WebhookDelivery};

/// How a succeeded job's fresh download link is made (signed, expiring) at each attempt: from
/// the job id, a signed local URL or a presigned bucket URL (`None` once the output is gone).
pub type DownloadLink = Arc<
    dyn Fn(String) -> std::pin::Pin<Box<dyn std::future::Future<Output = Option<String>> + Send>>
        + Send
        + Sync,
>;

/// A claimed event stays ours this long beyond the request timeout; then another replica
/// (or this one after a restart) may take it over.
const LEASE_MARGIN: Duration = Duration::from_secs(30);

/// What the delivery task needs.
pub struct DeliveryParts {
    pub store: JobStore,
    pub config: WebhookConfig,
    pub signer: Signer,
    pub download_link: DownloadLink,
    /// Notified when a job ends on this replica, so its event goes out without waiting for
    /// the next poll.
    pub wake: Arc<Notify>,
    /// This replica's lease owner name.
    pub owner: String,
}

/// The wait before attempt `attempt + 1` after `attempt` (≥ 1) failed attempts: `base`
/// doubling per attempt up to `max`, plus a random jitter of up to the same amount again,
/// computed with backon's `ExponentialBuilder` (its iterator's `attempt`-th delay).
pub fn retry_delay(attempt: u32, base: Duration, max: Duration) -> Duration {
    let mut schedule = ExponentialBuilder::default()
        .with_min_delay(base)
        .with_max_delay(max)
        .with_factor(2.0)
        .with_jitter()
        .without_max_times()
        .build();
    // Past this many doublings every delay is capped at `max` (factor 2 from ≥ 1 ns passes any
    // Duration), so later attempts read the same entry instead of walking the iterator.
    const FLAT_AFTER: u32 = 128;
    let index = usize::try_from(attempt.clamp(1, FLAT_AFTER) - 1).unwrap_or(0);
    schedule.nth(index).unwrap_or(max)
}

/// When to try an event again after its `attempts`-th attempt failed at `now`; `None` when
/// that would be after its deadline (the event has failed for good). No attempt is ever
/// scheduled past the deadline, so a pending event past it has been abandoned by a replica
/// that stopped, and the claim marks it failed.
pub fn retry_at(
    attempts: u32,
    now: DateTime<Utc>,
    deadline: DateTime<Utc>,
    config: &WebhookConfig,
) -> Option<DateTime<Utc>> {
    let delay = retry_delay(attempts, config.backoff_base, config.backoff_max);
    TimeDelta::from_std(delay)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .filter(|next| *next <= deadline)
}

#[derive(Debug, thiserror::Error)]
#[error("cannot build the webhook HTTP client: {0}")]
pub struct DeliveryInitError(#[source] reqwest::Error);

/// Starts the delivery task; it stops when `stop` turns true, dropping unfinished attempts
/// and releasing their leases so the next start retries them at once.
pub fn spawn_delivery(
    parts: DeliveryParts,
    stop: watch::Receiver<bool>,
) -> Result<JoinHandle<()>, DeliveryInitError> {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(parts.config.timeout)
        .connect_timeout(parts.config.timeout)
        .user_agent(concat!("renderd-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(DeliveryInitError)?;
    Ok(tokio::spawn(run(
        Arc::new(Deliverer { parts, client }),
        stop,
    )))
}

struct Deliverer {
    parts: DeliveryParts,
    client: reqwest::Client,
}

async fn run(deliverer: Arc<Deliverer>, mut stop: watch::Receiver<bool>) {
    let config = &deliverer.parts.config;
    let lease = config.timeout.saturating_add(LEASE_MARGIN);
    let mut in_flight = JoinSet::new();
    loop {
        while in_flight.try_join_next().is_some() {}
        let free = config.max_in_flight.saturating_sub(in_flight.len());
        let free = u32::try_from(free).unwrap_or(u32::MAX);
        match deliverer
            .parts
            .store
            .claim_webhook_events(&deliverer.parts.owner, lease, free)
            .await
        {
            Ok(events) => {
                for event in events {
                    let deliverer = Arc::clone(&deliverer);
                    in_flight.spawn(async move { deliverer.attempt(event).await });
                }
            }
            Err(err) => tracing::warn!(error = %err, "claiming webhook events failed"),
        }
        tokio::select! {
            _ = stop.wait_for(|stopping| *stopping) => break,
            _ = deliverer.parts.wake.notified() => {}
            _ = tokio::time::sleep(config.poll_interval) => {}
            Some(_) = in_flight.join_next(), if !in_flight.is_empty() => {}
        }
    }
    in_flight.shutdown().await;
    match deliverer
        .parts
        .store
        .release_webhook_leases(&deliverer.parts.owner)
        .await
    {
        Ok(0) => {}
        Ok(released) => tracing::info!(released, "webhook attempts cut short by shutdown"),
        Err(err) => tracing::warn!(error = %err, "releasing webhook leases failed"),
    }
}

/// Whether the event describes an output (a succeeded job), which gets a fresh link.
fn has_output(event: &WebhookDelivery) -> bool {
    event
        .payload
        .get("job")
        .and_then(|job| job.get("output"))
        .is_some_and(|output| output.is_object())
}

/// The event's body as sent: the stored payload with the fresh download link of a succeeded
/// job.
fn body(event: &WebhookDelivery, link: Option<String>) -> Vec<u8> {
    let mut payload = event.payload.clone();
    if let Some(output) = payload
        .get_mut("job")
        .and_then(|job| job.get_mut("output"))
        .and_then(|output| output.as_object_mut())
    {
        output.insert("download_url".to_owned(), serde_json::json!(link));
    }
    serde_json::to_vec(&payload).unwrap_or_default()
}

/// A reqwest error with its causes ("… : connection refused").
fn describe(err: &reqwest::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

impl Deliverer {
    async fn attempt(&self, event: WebhookDelivery) {
        let parts = &self.parts;
        let link = if has_output(&event) {
            (parts.download_link)(event.job_id.as_str().to_owned()).await
        } else {
            None
        };
        let body = body(&event, link);
        let timestamp = Utc::now().timestamp();
        let sent = self
            .client
            .post(&event.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(EVENT_ID_HEADER, &event.event_id)
            .header("Renderd-Event-Type", &event.event_type)
            .header(SIGNATURE_HEADER, parts.signer.header(timestamp, &body))
            .body(body)
            .send()
            .await;
        let failure = match sent {
            Ok(response) if response.status().is_success() => None,
            Ok(response) => Some(format!("HTTP {}", response.status())),
            Err(err) => Some(describe(&err)),
        };
        let metrics = crate::telemetry::metrics();
        let recorded = match &failure {
            None => {
                metrics.webhook_delivery(crate::telemetry::WebhookDelivery::Delivered);
                parts
                    .store
                    .webhook_delivered(&event.event_id, &parts.owner)
                    .await
            }
            Some(error) => {
                let next = retry_at(event.attempts, Utc::now(), event.deadline, &parts.config);
                metrics.webhook_delivery(if next.is_none() {
                    crate::telemetry::WebhookDelivery::GaveUp
                } else {
                    crate::telemetry::WebhookDelivery::Failed
                });
                if next.is_none() {
                    tracing::warn!(
                        event = %event.event_id, job = %event.job_id, attempts = event.attempts,
                        error, "webhook delivery failed for good: deadline reached"
                    );
                }
                parts
                    .store
                    .webhook_attempt_failed(&event.event_id, &parts.owner, error, next)
                    .await
            }
        };
        match recorded {
            Ok(true) => tracing::debug!(
                event = %event.event_id, job = %event.job_id, attempt = event.attempts,
                error = failure.as_deref().unwrap_or(""), "webhook attempt recorded"
            ),
            Ok(false) => tracing::warn!(
                event = %event.event_id, "webhook lease lost before the attempt was recorded"
            ),
            Err(err) => tracing::warn!(
                event = %event.event_id, error = %err, "recording a webhook attempt failed"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_the_base_with_bounded_jitter_and_a_cap() {
        let base = Duration::from_millis(100);
        let max = Duration::from_secs(2);
        for _ in 0..50 {
            for attempt in 1..=12u32 {
                let unjittered = (base * 2u32.pow(attempt - 1)).min(max);
                let delay = retry_delay(attempt, base, max);
                assert!(
                    delay >= unjittered && delay <= unjittered * 2,
                    "attempt {attempt}: {delay:?} outside {unjittered:?}…{:?}",
                    unjittered * 2
                );
            }
        }
        assert!(
            retry_delay(0, base, max) >= base,
            "0 is treated as the first"
        );
        assert!(retry_delay(u32::MAX, base, max) <= max * 2);
        // Jitter actually varies the schedule (replicas do not retry in lock step).
        let spread: std::collections::HashSet<_> =
            (0..20).map(|_| retry_delay(3, base, max)).collect();
        assert!(spread.len() > 1, "{spread:?}");
    }

    #[test]
    fn retries_stop_at_the_deadline() {
        let config = WebhookConfig {
            backoff_base: Duration::from_secs(10),
            backoff_max: Duration::from_secs(60),
            ..WebhookConfig::default()
        };
        let now = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).expect("t");
        let deadline = now + TimeDelta::seconds(25);
        let next = retry_at(1, now, deadline, &config).expect("before the deadline");
        assert!(
            next >= now + TimeDelta::seconds(10) && next <= deadline,
            "{next}"
        );
        assert_eq!(
            retry_at(4, now, deadline, &config),
            None,
            "a wait of at least 60 s would end after the deadline"
        );
        assert_eq!(retry_at(1, deadline, deadline, &config), None);
        assert_eq!(
            retry_at(5, deadline + TimeDelta::seconds(1), deadline, &config),
            None
        );
    }

    #[test]
    fn the_body_gets_a_fresh_link_only_for_outputs() {
        let job_id = crate::domain::job::JobId::generate();
        let event = |payload: serde_json::Value| WebhookDelivery {
            event_id: "e1".into(),
            job_id: job_id.clone(),
            event_type: "render.succeeded".into(),
            url: "https://hooks.example.com/h".into(),
            payload,
            state: crate::store::DeliveryState::Pending,
            attempts: 1,
            next_attempt_at: Utc::now(),
            deadline: Utc::now(),
            last_error: None,
            created_at: Utc::now(),
            delivered_at: None,
        };
        let link = Some(format!("https://dl/{job_id}?sig=x"));
        let with_output = event(serde_json::json!({
            "job": {"output": {"download_url": null, "size_bytes": 5}}
        }));
        let sent: serde_json::Value =
            serde_json::from_slice(&body(&with_output, link)).expect("json");
        assert_eq!(
            sent["job"]["output"]["download_url"],
            format!("https://dl/{job_id}?sig=x")
        );
        assert_eq!(sent["job"]["output"]["size_bytes"], 5);
        assert!(has_output(&with_output));
        let without = event(serde_json::json!({"job": {"output": null}}));
        assert!(!has_output(&without));
        let sent: serde_json::Value = serde_json::from_slice(&body(&without, None)).expect("json");
        assert!(sent["job"]["output"].is_null());
    }
}
