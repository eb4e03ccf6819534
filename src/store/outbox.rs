//! The webhook outbox: one row per terminal state change of a job that has a `callback_url`,
//! written in the same transaction as the change (so an event exists exactly when the state
//! changed), then claimed under a lease, POSTed and retried by `crate::webhook`. Everything
//! about a delivery lives in the row, so it survives restarts and is shared by replicas.

use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use sea_orm::sea_query::{Expr, ExprTrait, Func, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter,
    QueryOrder, UpdateMany,
};

use super::entity::webhook_outbox;
use super::error::StoreError;
use super::job_store::{lease_deadline, now, to_db, JobStore};
use crate::domain::job::{Job, JobId, JobState};

/// How long an event is retried when nothing else is configured.
pub const DEFAULT_WEBHOOK_DEADLINE: Duration = Duration::from_secs(24 * 60 * 60);
/// Longest `last_error` kept (receivers can answer with anything).
const MAX_ERROR_CHARS: usize = 500;

/// Where an event's delivery stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DeliveryState {
    /// Not accepted yet; retried at `next_attempt_at` until the deadline.
    Pending,
    /// A 2xx answer was received.
    Delivered,
    /// The deadline passed without a 2xx answer; never retried again.
    Failed,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [
            DeliveryState::Pending,
            DeliveryState::Delivered,
            DeliveryState::Failed,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// One webhook event and its delivery state.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookDelivery {
    /// A UUID v7, the same in every attempt (`Renderd-Event-Id`): receivers deduplicate on it.
    pub event_id: String,
    pub job_id: JobId,
    /// `render.succeeded`, `render.failed` or `render.cancelled`.
    pub event_type: String,
    pub url: String,
    /// The event as stored; the delivery adds a fresh download URL to succeeded jobs.
    pub payload: serde_json::Value,
    pub state: DeliveryState,
    /// Attempts started so far (a claim counts as one).
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
}

/// The event type announcing that a job reached `state`; `None` for non-terminal states.
pub fn event_type(state: JobState) -> Option<&'static str> {
    match state {
        JobState::Succeeded => Some("render.succeeded"),
        JobState::Failed => Some("render.failed"),
        JobState::Cancelled => Some("render.cancelled"),
        JobState::Queued | JobState::Running => None,
    }
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// The JSON body of the event announcing `job`'s terminal state (`None` while it is not
/// terminal). `job.output.download_url` is left null here: links are signed and expire, so
/// the delivery puts a fresh one in at each attempt.
pub fn event_payload(
    event_id: &str,
    created_at: DateTime<Utc>,
    job: &Job,
) -> Option<serde_json::Value> {
    let kind = event_type(job.state)?;
    let output = match (&job.output, job.state) {
        (Some(out), JobState::Succeeded) => serde_json::json!({
            "download_url": null,
            "size_bytes": out.size_bytes,
            "duration_seconds": out.duration_seconds,
        }),
        _ => serde_json::Value::Null,
    };
    let failure = match (&job.failure, job.state) {
        (Some(f), JobState::Failed) => serde_json::json!({"code": f.code, "message": f.message}),
        _ => serde_json::Value::Null,
    };
    Some(serde_json::json!({
        "id": event_id,
        "type": kind,
        "created_at": rfc3339(created_at),
        "job": {
            "id": job.id.as_str(),
            "owner": job.owner,
            "state": job.state.as_str(),
            "request_id": job.request_id,
            "video_name": job.video_name,
            "created_at": rfc3339(job.created_at),
            "finished_at": job.finished_at.map(rfc3339),
            "output": output,
            "failure": failure,
        },
    }))
}

/// Writes the event for `job`'s terminal state when it has a callback, on `conn` (the
/// transaction that made the change).
pub(super) async fn record_terminal_event<C: ConnectionTrait>(
    conn: &C,
    job: &Job,
    deadline: Duration,
) -> Result<(), StoreError> {
    let Some(url) = &job.callback_url else {
        return Ok(());
    };
    let (Some(kind), at) = (event_type(job.state), now()) else {
        return Ok(());
    };
    let event_id = uuid::Uuid::now_v7().as_hyphenated().to_string();
    let Some(payload) = event_payload(&event_id, at, job) else {
        return Ok(());
    };
    let row = webhook_outbox::ActiveModel {
        event_id: Set(event_id),
        job_id: Set(job.id.as_str().to_owned()),
        event_type: Set(kind.to_owned()),
        url: Set(url.clone()),
        payload: Set(payload),
        state: Set(DeliveryState::Pending.as_str().to_owned()),
        attempts: Set(0),
        next_attempt_at: Set(to_db(at)),
        deadline: Set(to_db(lease_deadline(at, deadline))),
        last_error: Set(None),
        lease_owner: Set(None),
        lease_until: Set(None),
        created_at: Set(to_db(at)),
        delivered_at: Set(None),
    };
    webhook_outbox::Entity::insert(row)
        .exec_without_returning(conn)
        .await?;
    Ok(())
}

fn delivery_from_model(row: webhook_outbox::Model) -> Result<WebhookDelivery, StoreError> {
    let webhook_outbox::Model {
        event_id,
        job_id,
        event_type,
        url,
        payload,
        state,
        attempts,
        next_attempt_at,
        deadline,
        last_error,
        lease_owner: _,
        lease_until: _,
        created_at,
        delivered_at,
    } = row;
    let corrupt = |problem: String| StoreError::CorruptRow {
        id: format!("webhook event {event_id}"),
        problem,
    };
    let job_id = JobId::parse(&job_id).map_err(|e| corrupt(e.to_string()))?;
    let state =
        DeliveryState::parse(&state).ok_or_else(|| corrupt(format!("unknown state '{state}'")))?;
    let attempts = u32::try_from(attempts)
        .map_err(|_| corrupt(format!("attempts is negative ({attempts})")))?;
    Ok(WebhookDelivery {
        event_id,
        job_id,
        event_type,
        url,
        payload,
        state,
        attempts,
        next_attempt_at: next_attempt_at.to_utc(),
        deadline: deadline.to_utc(),
        last_error,
        created_at: created_at.to_utc(),
        delivered_at: delivered_at.map(|t| t.to_utc()),
    })
}

/// Pending rows nobody holds (never leased, or the lease ran out) that are due at `at`.
fn due(at: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(webhook_outbox::Column::State.eq(DeliveryState::Pending.as_str()))
        .add(webhook_outbox::Column::NextAttemptAt.lte(to_db(at)))
        .add(unleased(at))
}

fn unleased(at: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(webhook_outbox::Column::LeaseUntil.is_null())
        .add(webhook_outbox::Column::LeaseUntil.lt(to_db(at)))
}

fn held_by(event_id: &str, owner: &str) -> Condition {
    Condition::all()
        .add(webhook_outbox::Column::EventId.eq(event_id))
        .add(webhook_outbox::Column::State.eq(DeliveryState::Pending.as_str()))
        .add(webhook_outbox::Column::LeaseOwner.eq(owner))
}

/// `update` also drops the row's lease.
fn release(update: UpdateMany<webhook_outbox::Entity>) -> UpdateMany<webhook_outbox::Entity> {
    update
        .col_expr(
            webhook_outbox::Column::LeaseOwner,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            webhook_outbox::Column::LeaseUntil,
            Expr::value(Option::<sea_orm::prelude::DateTimeWithTimeZone>::None),
        )
}

fn bounded_error(error: &str) -> String {
    error.chars().take(MAX_ERROR_CHARS).collect()
}

impl JobStore {
    /// Gives `owner` up to `limit` due events, leased until now + `lease` and with their
    /// attempt counted, oldest due first. Events whose deadline passed unleased (their
    /// replica stopped; no retry is ever scheduled past the deadline) become FAILED first,
    /// keeping their last error. Each row is taken by one conditional UPDATE that re-checks it is still
    /// due and unleased, so replicas sharing the database never deliver one attempt twice.
    pub async fn claim_webhook_events(
        &self,
        owner: &str,
        lease: Duration,
        limit: u32,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let at = now();
        let txn = self.begin_write().await?;
        release(webhook_outbox::Entity::update_many())
            .col_expr(
                webhook_outbox::Column::State,
                Expr::value(DeliveryState::Failed.as_str()),
            )
            .col_expr(
                webhook_outbox::Column::LastError,
                Func::coalesce([
                    Expr::col(webhook_outbox::Column::LastError),
                    Expr::value(
                        "the delivery deadline passed while no replica was delivering".to_owned(),
                    ),
                ])
                .into(),
            )
            .filter(webhook_outbox::Column::State.eq(DeliveryState::Pending.as_str()))
            .filter(webhook_outbox::Column::Deadline.lt(to_db(at)))
            .filter(unleased(at))
            .exec(&txn)
            .await?;
        let oldest = Query::select()
            .column(webhook_outbox::Column::EventId)
            .from(webhook_outbox::Entity)
            .cond_where(due(at))
            .order_by(webhook_outbox::Column::NextAttemptAt, sea_orm::Order::Asc)
            .order_by(webhook_outbox::Column::EventId, sea_orm::Order::Asc)
            .limit(u64::from(limit))
            .to_owned();
        let claimed = webhook_outbox::Entity::update_many()
            .col_expr(webhook_outbox::Column::LeaseOwner, Expr::value(owner))
            .col_expr(
                webhook_outbox::Column::LeaseUntil,
                Expr::value(to_db(lease_deadline(at, lease))),
            )
            .col_expr(
                webhook_outbox::Column::Attempts,
                Expr::col(webhook_outbox::Column::Attempts).add(1),
            )
            .filter(webhook_outbox::Column::EventId.in_subquery(oldest))
            .filter(due(at))
            .exec_with_returning(&txn)
            .await?;
        txn.commit().await?;
        let mut events = claimed
            .into_iter()
            .map(delivery_from_model)
            .collect::<Result<Vec<_>, _>>()?;
        events.sort_by(|a, b| {
            (a.next_attempt_at, &a.event_id).cmp(&(b.next_attempt_at, &b.event_id))
        });
        Ok(events)
    }

    /// Records that the receiver accepted an event `owner` holds. `false` when the lease was
    /// lost meanwhile (another replica owns the row now).
    pub async fn webhook_delivered(&self, event_id: &str, owner: &str) -> Result<bool, StoreError> {
        let at = now();
        let result = release(webhook_outbox::Entity::update_many())
            .col_expr(
                webhook_outbox::Column::State,
                Expr::value(DeliveryState::Delivered.as_str()),
            )
            .col_expr(webhook_outbox::Column::DeliveredAt, Expr::value(to_db(at)))
            .col_expr(
                webhook_outbox::Column::LastError,
                Expr::value(Option::<String>::None),
            )
            .filter(held_by(event_id, owner))
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Records a failed attempt of an event `owner` holds: retried at `retry_at`, or FAILED
    /// for good when that is `None` (the deadline is reached). `false` when the lease was lost.
    pub async fn webhook_attempt_failed(
        &self,
        event_id: &str,
        owner: &str,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
    ) -> Result<bool, StoreError> {
        let mut update = release(webhook_outbox::Entity::update_many()).col_expr(
            webhook_outbox::Column::LastError,
            Expr::value(bounded_error(error)),
        );
        update = match retry_at {
            Some(at) => update.col_expr(
                webhook_outbox::Column::NextAttemptAt,
                Expr::value(to_db(super::job_store::truncate_to_micros(at))),
            ),
            None => update.col_expr(
                webhook_outbox::Column::State,
                Expr::value(DeliveryState::Failed.as_str()),
            ),
        };
        let result = update
            .filter(held_by(event_id, owner))
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected == 1)
    }

    /// Drops every lease `owner` holds without counting the attempts as failed, so another
    /// replica (or this one after a restart) retries at once. Returns how many were held.
    pub async fn release_webhook_leases(&self, owner: &str) -> Result<u64, StoreError> {
        let result = release(webhook_outbox::Entity::update_many())
            .filter(webhook_outbox::Column::State.eq(DeliveryState::Pending.as_str()))
            .filter(webhook_outbox::Column::LeaseOwner.eq(owner))
            .exec(self.connection())
            .await?;
        Ok(result.rows_affected)
    }

    /// Every webhook event of a job with its delivery state, oldest first.
    pub async fn webhook_deliveries(
        &self,
        job_id: &JobId,
    ) -> Result<Vec<WebhookDelivery>, StoreError> {
        webhook_outbox::Entity::find()
            .filter(webhook_outbox::Column::JobId.eq(job_id.as_str()))
            .order_by_asc(webhook_outbox::Column::CreatedAt)
            .order_by_asc(webhook_outbox::Column::EventId)
            .all(self.connection())
            .await?
            .into_iter()
            .map(delivery_from_model)
            .collect()
    }
}
