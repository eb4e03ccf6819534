//! Durable job storage on sea-orm: SQLite by default, PostgreSQL by URL, the same code for both.
//!
//! The database is the truth: job rows, worker leases, progress and quota usage all live here,
//! so a second replica on the same PostgreSQL shares the queue.

pub mod entity;
mod error;
mod job_store;
mod outbox;
mod page_token;

pub use error::{QuotaKind, StoreError, StoreErrorKind};
pub use job_store::{
    masked_url, JobStore, NewJob, ProgressUpdate, QuotaLimits, Usage, ATTEMPTS_EXHAUSTED_CODE,
    DEFAULT_DATABASE_URL, DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE,
};
pub use outbox::{
    event_payload, event_type, DeliveryState, WebhookDelivery, DEFAULT_WEBHOOK_DEADLINE,
};

#[cfg(test)]
mod tests;
