//! Signed webhooks. A job created with a `callback_url` gets one event per terminal state
//! (succeeded, failed, cancelled), written to the database outbox in the same transaction as
//! the state change (`crate::store`); the delivery task here claims due events under a lease,
//! POSTs them signed Stripe-style (`Renderd-Signature: t=<unix>,v1=<hex hmac>`) and retries
//! with exponential backoff and jitter until a 2xx answer or the deadline.

mod config;
mod delivery;
mod signer;

pub use config::{
    CallbackPolicy, CallbackUrlError, WebhookConfig, WebhookConfigError, MAX_CALLBACK_URL_CHARS,
};
pub use delivery::{retry_at, retry_delay, spawn_delivery, DeliveryParts, DownloadLink};
pub use signer::{SignatureError, Signer, SignerError, EVENT_ID_HEADER, SIGNATURE_HEADER};
