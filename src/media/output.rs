//! Render outputs: written to a hidden temporary file in the output folder, then fsynced and
//! renamed into place (same folder, so the rename is atomic), and handed out through signed,
//! expiring download URLs.
//!
//! With `[storage] output = "s3"` the finished file is then uploaded to the output bucket
//! (multipart) and removed locally; its links are the bucket's presigned GET URLs. Either way
//! an output is kept for `[storage] retention`, then the sweeper deletes it through
//! [`OutputStore::delete_output`].

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use object_store::aws::AmazonS3;
use object_store::signer::Signer as _;
use object_store::{ObjectStore as _, ObjectStoreExt as _, WriteMultipart};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use tokio::io::AsyncReadExt as _;

use crate::domain::job::{Job, JobState, OutputFormat};
use crate::media::is_safe_job_id;
use crate::media::storage::{
    classify, ObjectStorage, OutputBackend, S3Url, StorageConfig, StorageFailure, StorageInitError,
    MAX_PRESIGNED_TTL,
};

/// Uploads read the finished file in pieces of this size.
const UPLOAD_READ_BYTES: usize = 1024 * 1024;
/// Parts of one output uploaded at once.
const UPLOAD_CONCURRENCY: usize = 4;

type HmacSha256 = Hmac<Sha256>;

/// The `[output]` configuration section.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputConfig {
    /// Finished outputs (`{job_id}.mp4`, `.mov`, `.webm`) live here (created at start if absent).
    pub dir: PathBuf,
    /// How long a download URL stays valid after it is issued.
    #[serde(with = "humantime_serde")]
    pub url_ttl: Duration,
    /// Scheme and authority download URLs start with, e.g. `https://render.example.com`;
    /// `None`: the server's own listen address.
    pub public_base_url: Option<String>,
    /// HMAC key for download URLs; `None`: derived from the auth secret.
    pub signing_key: Option<String>,
}

impl Default for OutputConfig {
    fn default() -> Self {
        OutputConfig {
            dir: PathBuf::from("./data/outputs"),
            url_ttl: Duration::from_secs(24 * 60 * 60),
            public_base_url: None,
            signing_key: None,
        }
    }
}

impl fmt::Debug for OutputConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputConfig")
            .field("dir", &self.dir)
            .field("url_ttl", &self.url_ttl)
            .field("public_base_url", &self.public_base_url)
            .field(
                "signing_key",
                &self.signing_key.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

/// Why a download URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DownloadError {
    #[error("download link is missing its expires/sig parameters")]
    MissingSignature,
    #[error("download link has a bad signature")]
    BadSignature,
    #[error("download link has expired")]
    Expired,
}

/// Why a finished render could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("cannot read the finished render {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("the finished render {0} has no usable file name")]
    FileName(PathBuf),
    #[error("uploading the output to {url} failed: {reason}")]
    Upload { url: String, reason: String },
}

impl PublishError {
    /// The contract's job failure code.
    pub fn code(&self) -> &'static str {
        "STORAGE_ACCESS_ERROR"
    }
}

/// Why an expired output could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteOutputError {
    #[error("output {0} lies outside the output folder; not deleting it")]
    OutsideOutputFolder(String),
    #[error("output {0} is in a bucket this replica has no client for")]
    UnknownBucket(String),
    #[error("deleting output {path} failed: {reason}")]
    Failed { path: String, reason: String },
}

/// Where committed outputs end up.
enum Backend {
    Local,
    S3 {
        bucket: String,
        prefix: String,
        client: Arc<AmazonS3>,
        part_bytes: usize,
    },
}

/// The output folder and the download URLs that point into it.
pub struct OutputStore {
    dir: PathBuf,
    base_url: String,
    url_ttl: Duration,
    mac: HmacSha256,
    backend: Backend,
    retention: Duration,
}

impl fmt::Debug for OutputStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputStore")
            .field("dir", &self.dir)
            .field("base_url", &self.base_url)
            .field("url_ttl", &self.url_ttl)
            .field(
                "backend",
                &match &self.backend {
                    Backend::Local => "local".to_owned(),
                    Backend::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
                },
            )
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl OutputStore {
    /// Creates the output folder. `base_url` is the http(s) scheme and authority (and optional
    /// path prefix) of the download route; `key` signs download URLs and must not be empty.
    pub fn new(config: &OutputConfig, base_url: String, key: Vec<u8>) -> io::Result<Self> {
        let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidInput, message);
        if key.is_empty() {
            return Err(invalid("the download signing key is empty".into()));
        }
        let base_url = base_url.trim().trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base_url)
            .map_err(|err| invalid(format!("download base URL '{base_url}': {err}")))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(invalid(format!(
                "download base URL '{base_url}' is not an http(s) URL with a host"
            )));
        }
        let mac = HmacSha256::new_from_slice(&key)
            .map_err(|err| invalid(format!("download signing key: {err}")))?;
        std::fs::create_dir_all(&config.dir)?;
        Ok(OutputStore {
            dir: std::path::absolute(&config.dir)?,
            base_url,
            url_ttl: config.url_ttl,
            mac,
            backend: Backend::Local,
            retention: StorageConfig::default().retention,
        })
    }

    /// Applies `[storage]`: the retention, and with `output = "s3"` the output bucket (whose
    /// client `objects` holds). Presigned URLs live at most 7 days, so `url_ttl` must fit.
    pub fn with_storage(
        mut self,
        config: &StorageConfig,
        objects: Option<&ObjectStorage>,
    ) -> Result<Self, StorageInitError> {
        config.validate()?;
        self.retention = config.retention;
        if config.output == OutputBackend::S3 {
            let bucket = config.output_bucket.clone().unwrap_or_default();
            let client = objects
                .and_then(|objects| objects.bucket(&bucket))
                .cloned()
                .ok_or_else(|| StorageInitError::Invalid {
                    field: "output_bucket",
                    message: format!("no S3 client for bucket '{bucket}'"),
                })?;
            if self.url_ttl > MAX_PRESIGNED_TTL || self.url_ttl.is_zero() {
                return Err(StorageInitError::Invalid {
                    field: "output",
                    message: "output.url_ttl must be between 1 s and 7 days for presigned URLs"
                        .into(),
                });
            }
            self.backend = Backend::S3 {
                bucket,
                prefix: config.output_prefix.clone(),
                client,
                part_bytes: config.multipart_part_bytes,
            };
        }
        Ok(self)
    }

    /// How long finished outputs are kept.
    pub fn retention(&self) -> Duration {
        self.retention
    }

    /// When an output finished at `finished` is due for deletion.
    pub fn output_expiry(&self, finished: DateTime<Utc>) -> DateTime<Utc> {
        chrono::TimeDelta::from_std(self.retention)
            .ok()
            .and_then(|retention| finished.checked_add_signed(retention))
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Makes a committed output (a file under the output folder) available for download and
    /// returns where it is kept: the local path itself, or `s3://bucket/key` after a multipart
    /// upload, the local file then removed.
    pub async fn publish(&self, local: &Path) -> Result<String, PublishError> {
        let Backend::S3 {
            bucket,
            prefix,
            client,
            part_bytes,
        } = &self.backend
        else {
            return Ok(local.to_string_lossy().into_owned());
        };
        let name = local
            .file_name()
            .and_then(|name| name.to_str())
            .ok_or_else(|| PublishError::FileName(local.to_owned()))?;
        let key = object_store::path::Path::parse(format!("{prefix}{name}"))
            .map_err(|_| PublishError::FileName(local.to_owned()))?;
        let url = format!("s3://{bucket}/{key}");
        let upload_error = |err: object_store::Error| PublishError::Upload {
            url: url.clone(),
            reason: err.to_string(),
        };
        let read_error = |source| PublishError::Read {
            path: local.to_owned(),
            source,
        };
        let mut file = tokio::fs::File::open(local).await.map_err(read_error)?;
        // Typed by the container, so a browser plays the presigned download in place.
        let mut attributes = object_store::Attributes::new();
        if let Some(format) = name
            .rsplit('.')
            .next()
            .and_then(OutputFormat::from_extension)
        {
            attributes.insert(
                object_store::Attribute::ContentType,
                format.mime_type().into(),
            );
        }
        let options = object_store::PutMultipartOptions {
            attributes,
            ..Default::default()
        };
        let upload = client
            .put_multipart_opts(&key, options)
            .await
            .map_err(upload_error)?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, *part_bytes);
        let mut buffer = vec![0u8; UPLOAD_READ_BYTES];
        let copied: Result<(), PublishError> = async {
            loop {
                let n = file.read(&mut buffer).await.map_err(read_error)?;
                if n == 0 {
                    return Ok(());
                }
                writer
                    .wait_for_capacity(UPLOAD_CONCURRENCY)
                    .await
                    .map_err(upload_error)?;
                writer.write(&buffer[..n]);
            }
        }
        .await;
        match copied {
            Ok(()) => {
                writer.finish().await.map_err(upload_error)?;
            }
            Err(err) => {
                if let Err(abort) = writer.abort().await {
                    tracing::warn!(%url, error = %abort, "cannot abort a failed upload");
                }
                return Err(err);
            }
        }
        drop(file);
        if let Err(err) = tokio::fs::remove_file(local).await {
            tracing::warn!(path = %local.display(), error = %err, "cannot remove an uploaded output");
        }
        Ok(url)
    }

    /// A fresh download link for a job's output: `None` unless the job succeeded and its output
    /// is still kept. Local outputs get a signed `/downloads/` URL, bucket outputs a presigned
    /// S3 GET URL; both expire after `url_ttl`.
    pub async fn link(&self, job: &Job) -> Option<String> {
        if job.state != JobState::Succeeded {
            return None;
        }
        let output = job.output.as_ref()?;
        if output.expired_at.is_some() {
            return None;
        }
        if !output.path.starts_with("s3://") {
            let format = crate::domain::job::JobOptions::from_json(&job.options)
                .unwrap_or_default()
                .format;
            return Some(self.download_url(job.id.as_str(), format, Utc::now()));
        }
        let url = match S3Url::parse(&output.path) {
            Ok(url) => url,
            Err(problem) => {
                tracing::warn!(job = %job.id, path = %output.path, %problem, "unreadable output location");
                return None;
            }
        };
        match &self.backend {
            Backend::S3 { bucket, client, .. } if *bucket == url.bucket => {
                match client
                    .signed_url(http::Method::GET, &url.key, self.url_ttl)
                    .await
                {
                    Ok(signed) => Some(signed.to_string()),
                    Err(err) => {
                        tracing::warn!(job = %job.id, error = %err, "cannot presign a download URL");
                        None
                    }
                }
            }
            _ => {
                tracing::warn!(job = %job.id, %url, "output is in a bucket this replica does not serve");
                None
            }
        }
    }

    /// Deletes a stored output (a path under the output folder, or an `s3://` URL in the output
    /// bucket). An output that is already gone counts as deleted.
    pub async fn delete_output(&self, stored: &str) -> Result<(), DeleteOutputError> {
        let failed = |reason: String| DeleteOutputError::Failed {
            path: stored.to_owned(),
            reason,
        };
        if stored.starts_with("s3://") {
            let url = S3Url::parse(stored).map_err(failed)?;
            let Backend::S3 { bucket, client, .. } = &self.backend else {
                return Err(DeleteOutputError::UnknownBucket(stored.to_owned()));
            };
            if *bucket != url.bucket {
                return Err(DeleteOutputError::UnknownBucket(stored.to_owned()));
            }
            return match client.delete(&url.key).await {
                Ok(()) => Ok(()),
                Err(err) if classify(&err) == StorageFailure::NotFound => Ok(()),
                Err(err) => Err(failed(err.to_string())),
            };
        }
        let path = Path::new(stored);
        if !path.is_absolute() || !path.starts_with(&self.dir) || path.parent() != Some(&self.dir) {
            return Err(DeleteOutputError::OutsideOutputFolder(stored.to_owned()));
        }
        match tokio::fs::remove_file(path).await {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(err) => Err(failed(err.to_string())),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a render writes its output before [`commit`](Self::commit): a hidden file in the
    /// same folder, so the final rename never crosses file systems.
    pub fn temp_path(&self, job_id: &str, format: OutputFormat) -> PathBuf {
        self.dir
            .join(format!(".{job_id}.{}.part", format.extension()))
    }

    /// Where a committed output lives: `{job_id}.{mp4|mov|webm}`.
    pub fn final_path(&self, job_id: &str, format: OutputFormat) -> PathBuf {
        self.dir.join(file_name(job_id, format))
    }

    /// Publishes the finished temporary file: fsync, rename into place, fsync the folder.
    /// Returns the final path and its size. Blocking: call from a blocking thread.
    pub fn commit(&self, job_id: &str, format: OutputFormat) -> io::Result<(PathBuf, u64)> {
        check_job_id(job_id)?;
        let temp = self.temp_path(job_id, format);
        let final_path = self.final_path(job_id, format);
        let file = OpenOptions::new().read(true).write(true).open(&temp)?;
        file.sync_all()?;
        let size = file.metadata()?.len();
        drop(file);
        std::fs::rename(&temp, &final_path)?;
        sync_folder(&self.dir)?;
        Ok((final_path, size))
    }

    /// Deletes a failed or cancelled render's temporary file, if any. Blocking.
    pub fn discard(&self, job_id: &str, format: OutputFormat) {
        if check_job_id(job_id).is_err() {
            return;
        }
        let temp = self.temp_path(job_id, format);
        if let Err(err) = std::fs::remove_file(&temp) {
            if err.kind() != io::ErrorKind::NotFound {
                tracing::warn!(path = %temp.display(), error = %err, "cannot delete a discarded output");
            }
        }
    }

    /// When a URL issued at `now` expires (unix seconds).
    pub fn expires_at(&self, now: DateTime<Utc>) -> i64 {
        let ttl = i64::try_from(self.url_ttl.as_secs()).unwrap_or(i64::MAX);
        now.timestamp().saturating_add(ttl)
    }

    /// `{base}/downloads/{job_id}.{ext}?expires={unix}&sig={base64url(HMAC-SHA256(key, "{job_id}\n{expires}"))}`,
    /// `ext` being the format's extension (the route serves the file of that name).
    pub fn download_url(&self, job_id: &str, format: OutputFormat, now: DateTime<Utc>) -> String {
        let expires = self.expires_at(now);
        format!(
            "{}/downloads/{}?expires={expires}&sig={}",
            self.base_url,
            file_name(job_id, format),
            self.signature(job_id, expires)
        )
    }

    /// Checks a download URL's signature, then its expiry. The comparison is constant-time.
    pub fn verify(
        &self,
        job_id: &str,
        expires: i64,
        sig: &str,
        now: DateTime<Utc>,
    ) -> Result<(), DownloadError> {
        let sig = URL_SAFE_NO_PAD
            .decode(sig)
            .map_err(|_| DownloadError::BadSignature)?;
        self.keyed(job_id, expires)
            .verify_slice(&sig)
            .map_err(|_| DownloadError::BadSignature)?;
        if now.timestamp() > expires {
            return Err(DownloadError::Expired);
        }
        Ok(())
    }

    fn keyed(&self, job_id: &str, expires: i64) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(format!("{job_id}\n{expires}").as_bytes());
        mac
    }

    fn signature(&self, job_id: &str, expires: i64) -> String {
        URL_SAFE_NO_PAD.encode(self.keyed(job_id, expires).finalize().into_bytes())
    }
}

/// The output's file name, also the last segment of its download path.
pub fn file_name(job_id: &str, format: OutputFormat) -> String {
    format!("{job_id}.{}", format.extension())
}

fn check_job_id(job_id: &str) -> io::Result<()> {
    if is_safe_job_id(job_id) {
        Ok(())
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("'{job_id}' cannot name an output file"),
        ))
    }
}

/// Makes a rename in `dir` durable (a no-op where folders cannot be opened for sync).
fn sync_folder(dir: &Path) -> io::Result<()> {
    if cfg!(unix) {
        File::open(dir)?.sync_all()
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    const JOB: &str = "0190f3a4-8c2e-7b1d-9f00-123456789abc";

    fn store(dir: &Path) -> OutputStore {
        let config = OutputConfig {
            dir: dir.join("outputs"),
            url_ttl: Duration::from_secs(3600),
            ..OutputConfig::default()
        };
        OutputStore::new(
            &config,
            "https://render.example.com/".into(),
            b"k3y".to_vec(),
        )
        .expect("store")
    }

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(secs, 0).single().expect("time")
    }

    fn query(url: &str) -> (i64, String) {
        let parsed = reqwest::Url::parse(url).expect("url");
        let mut expires = None;
        let mut sig = None;
        for (key, value) in parsed.query_pairs() {
            match key.as_ref() {
                "expires" => expires = value.parse().ok(),
                "sig" => sig = Some(value.into_owned()),
                _ => {}
            }
        }
        (expires.expect("expires"), sig.expect("sig"))
    }

    #[test]
    fn download_url_has_the_documented_shape_and_verifies() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = store(tmp.path());
        let url = store.download_url(JOB, OutputFormat::Mp4, at(1_000_000));
        assert!(
            url.starts_with(&format!(
                "https://render.example.com/downloads/{JOB}.mp4?expires=1003600&sig="
            )),
            "{url}"
        );
        let webm = store.download_url(JOB, OutputFormat::Webm, at(1_000_000));
        assert!(
            webm.starts_with(&format!(
                "https://render.example.com/downloads/{JOB}.webm?expires=1003600&sig="
            )),
            "{webm}"
        );
        assert_eq!(
            query(&webm),
            query(&url),
            "the signature covers the job, not the name"
        );
        let (expires, sig) = query(&url);
        assert_eq!(expires, 1_003_600);
        // HMAC-SHA256 is 32 bytes: 43 base64url characters without padding.
        assert_eq!(sig.len(), 43);
        assert_eq!(store.verify(JOB, expires, &sig, at(1_000_001)), Ok(()));
        assert_eq!(store.verify(JOB, expires, &sig, at(1_003_600)), Ok(()));
        assert_eq!(
            store.verify(JOB, expires, &sig, at(1_003_601)),
            Err(DownloadError::Expired)
        );
    }

    #[test]
    fn tampering_breaks_the_signature() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = store(tmp.path());
        let (expires, sig) = query(&store.download_url(JOB, OutputFormat::Mov, at(1_000_000)));
        let now = at(1_000_000);
        assert_eq!(
            store.verify(JOB, expires + 3600, &sig, now),
            Err(DownloadError::BadSignature)
        );
        let other = "0190f3a4-8c2e-7b1d-9f00-123456789abd";
        assert_eq!(
            store.verify(other, expires, &sig, now),
            Err(DownloadError::BadSignature)
        );
        assert_eq!(
            store.verify(JOB, expires, "not base64!", now),
            Err(DownloadError::BadSignature)
        );
        assert_eq!(
            store.verify(JOB, expires, &sig[..20], now),
            Err(DownloadError::BadSignature)
        );
        let config = OutputConfig {
            dir: tmp.path().join("outputs"),
            ..OutputConfig::default()
        };
        let other_key = OutputStore::new(&config, "http://127.0.0.1:1".into(), b"other".to_vec())
            .expect("store");
        assert_eq!(
            other_key.verify(JOB, expires, &sig, now),
            Err(DownloadError::BadSignature)
        );
    }

    #[test]
    fn commit_renames_atomically_and_reports_the_size() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = store(tmp.path());
        let temp = store.temp_path(JOB, OutputFormat::Mp4);
        assert_eq!(temp.parent(), Some(store.dir()));
        assert!(temp
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.')));
        std::fs::write(&temp, b"0123456789").expect("write");
        let (path, size) = store.commit(JOB, OutputFormat::Mp4).expect("commit");
        assert_eq!(path, store.final_path(JOB, OutputFormat::Mp4));
        assert_eq!(size, 10);
        assert_eq!(std::fs::read(&path).expect("read"), b"0123456789");
        assert!(!temp.exists());
        // Nothing left to commit a second time.
        assert_eq!(
            store
                .commit(JOB, OutputFormat::Mp4)
                .expect_err("second commit")
                .kind(),
            io::ErrorKind::NotFound
        );
    }

    #[test]
    fn output_names_follow_the_format() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = store(tmp.path());
        for (format, name) in [
            (OutputFormat::Mp4, format!("{JOB}.mp4")),
            (OutputFormat::Mov, format!("{JOB}.mov")),
            (OutputFormat::Webm, format!("{JOB}.webm")),
        ] {
            assert_eq!(store.final_path(JOB, format), store.dir().join(&name));
            let temp = store.temp_path(JOB, format);
            std::fs::write(&temp, name.as_bytes()).expect("write");
            let (path, size) = store.commit(JOB, format).expect("commit");
            assert_eq!(
                path.file_name().and_then(|n| n.to_str()),
                Some(name.as_str())
            );
            assert_eq!(size, name.len() as u64);
        }
    }

    #[test]
    fn discard_removes_only_the_temporary_file() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = store(tmp.path());
        let webm = OutputFormat::Webm;
        std::fs::write(store.temp_path(JOB, webm), b"partial").expect("write");
        std::fs::write(store.final_path(JOB, webm), b"done").expect("write");
        store.discard(JOB, webm);
        assert!(!store.temp_path(JOB, webm).exists());
        assert!(store.final_path(JOB, webm).exists());
        // Discarding again, or an id that names no file, is harmless.
        store.discard(JOB, webm);
        store.discard("../escape", webm);
    }

    #[test]
    fn unsafe_job_ids_are_refused_by_commit() {
        let tmp = tempfile::tempdir().expect("tmp");
        let store = store(tmp.path());
        for id in ["", "../x", "a/b", "a b"] {
            assert_eq!(
                store.commit(id, OutputFormat::Mp4).expect_err(id).kind(),
                io::ErrorKind::InvalidInput
            );
        }
    }

    #[test]
    fn construction_validates_key_and_base_url() {
        let tmp = tempfile::tempdir().expect("tmp");
        let config = OutputConfig {
            dir: tmp.path().join("o"),
            ..OutputConfig::default()
        };
        assert!(OutputStore::new(&config, "https://x.example".into(), Vec::new()).is_err());
        assert!(OutputStore::new(&config, "ftp://x.example".into(), b"k".to_vec()).is_err());
        assert!(OutputStore::new(&config, "not a url".into(), b"k".to_vec()).is_err());
        let ok = OutputStore::new(&config, "http://127.0.0.1:50051".into(), b"k".to_vec())
            .expect("store");
        assert!(ok.dir().is_dir());
        assert!(ok
            .download_url(JOB, OutputFormat::Mp4, at(0))
            .starts_with("http://127.0.0.1:50051/downloads/"));
    }

    #[test]
    fn config_reads_humantime_and_redacts_the_key() {
        let config: OutputConfig = serde_json::from_str(
            r#"{"dir":"/srv/out","url_ttl":"2h","signing_key":"s3cret","public_base_url":"https://r.example"}"#,
        )
        .expect("config");
        assert_eq!(config.url_ttl, Duration::from_secs(7200));
        assert!(!format!("{config:?}").contains("s3cret"));
        assert!(serde_json::from_str::<OutputConfig>(r#"{"ttl":"2h"}"#).is_err());
    }
}
