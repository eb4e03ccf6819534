//! Where render inputs come from and where outputs go.
//!
//! - [`input`]: `video_url` checks for CreateRender (`file://` inside the media root, `http(s)://`
//!   from an allow-list) and the bounded download that makes a remote input a local file.
//! - [`output`]: finished MP4s written atomically under the output folder, with signed, expiring
//!   download URLs.
//! - [`assets`]: scenario assets (image/video nodes, define fonts and images, plugin assets),
//!   loaded and decoded once per job.
//! - [`download`]: the HTTP route that serves those URLs (with byte ranges for video players).
//! - [`storage`]: S3-compatible buckets (`[storage]`): `s3://` inputs, bucket outputs with
//!   presigned URLs, and how long outputs are kept.
//!
//! Nothing here knows about gRPC; failures carry the contract's job codes (`code()`).

pub mod assets;
pub mod download;
pub mod input;
pub mod output;
pub mod storage;

pub use download::{download_router, download_router_with_expiry, ExpiredLookup};
pub use input::{
    HostPattern, InputError, InputResolver, InputUrl, LocalInput, MediaConfig, MediaInitError,
};
pub use output::{DownloadError, OutputConfig, OutputStore};
pub use storage::{ObjectStorage, StorageConfig};

/// Whether `job_id` can name a file: non-empty, at most 64 characters, ASCII letters, digits, `-`
/// and `_` only (job ids are UUIDs; this keeps any other string out of file paths).
pub(crate) fn is_safe_job_id(job_id: &str) -> bool {
    !job_id.is_empty()
        && job_id.len() <= 64
        && job_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}
