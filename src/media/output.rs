//! Render outputs: written to a hidden temporary file in the output folder, then fsynced and
//! renamed into place (same folder, so the rename is atomic), and handed out through signed,
//! expiring download URLs.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::domain::job::OutputFormat;
use crate::media::is_safe_job_id;

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

/// The output folder and the download URLs that point into it.
pub struct OutputStore {
    dir: PathBuf,
    base_url: String,
    url_ttl: Duration,
    mac: HmacSha256,
}

impl fmt::Debug for OutputStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OutputStore")
            .field("dir", &self.dir)
            .field("base_url", &self.base_url)
            .field("url_ttl", &self.url_ttl)
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
        })
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
