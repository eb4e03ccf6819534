//! S3-compatible object storage: the `[storage]` section, the clients built from it once at
//! start (one `object_store` AmazonS3 per bucket named in the configuration), and the
//! `s3://bucket/key` URLs that name inputs and stored outputs.
//!
//! Requests are signed by `object_store` (SigV4), download links are its presigned URLs; nothing
//! here signs by hand. Credentials come from the configuration (a file, or `RENDERD__STORAGE__S3__…`
//! variables read with the rest of it) and are never logged.

use std::collections::HashMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::{ClientOptions, RetryConfig};
use serde::{Deserialize, Serialize};

/// The longest validity SigV4 allows a presigned URL.
pub const MAX_PRESIGNED_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);
/// S3's smallest multipart part (all but the last).
pub const MIN_PART_BYTES: usize = 5 * 1024 * 1024;

/// Where finished renders are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputBackend {
    /// The `[output] dir` folder, served by renderd's own `/downloads/` route.
    #[default]
    Local,
    /// `storage.output_bucket`, handed out through presigned S3 URLs.
    S3,
}

/// The `[storage]` configuration section.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageConfig {
    /// `local` (default) or `s3`.
    pub output: OutputBackend,
    /// The bucket outputs go to when `output = "s3"`.
    pub output_bucket: Option<String>,
    /// Prepended to every output key (e.g. `renders/`).
    pub output_prefix: String,
    /// Buckets `s3://bucket/key` inputs may name. Empty turns s3 inputs off.
    pub input_buckets: Vec<String>,
    /// How long a finished output is kept; then it is deleted and its job marked expired.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
    /// How often this replica looks for outputs past their retention.
    #[serde(with = "humantime_serde")]
    pub sweep_interval: Duration,
    /// Outputs one sweep deletes at most (the next sweep takes the rest).
    pub sweep_batch: u64,
    /// Upload part size for outputs (multipart upload), at least 5 MiB.
    pub multipart_part_bytes: usize,
    pub s3: S3Config,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            output: OutputBackend::Local,
            output_bucket: None,
            output_prefix: String::new(),
            input_buckets: Vec::new(),
            retention: Duration::from_secs(7 * 24 * 60 * 60),
            sweep_interval: Duration::from_secs(5 * 60),
            sweep_batch: 100,
            multipart_part_bytes: 8 * 1024 * 1024,
            s3: S3Config::default(),
        }
    }
}

impl fmt::Debug for StorageConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let StorageConfig {
            output,
            output_bucket,
            output_prefix,
            input_buckets,
            retention,
            sweep_interval,
            sweep_batch,
            multipart_part_bytes,
            s3,
        } = self;
        f.debug_struct("StorageConfig")
            .field("output", output)
            .field("output_bucket", output_bucket)
            .field("output_prefix", output_prefix)
            .field("input_buckets", input_buckets)
            .field("retention", retention)
            .field("sweep_interval", sweep_interval)
            .field("sweep_batch", sweep_batch)
            .field("multipart_part_bytes", multipart_part_bytes)
            .field("s3", s3)
            .finish()
    }
}

/// `[storage.s3]`: how to reach the S3-compatible service.
#[derive(Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Config {
    /// `https://s3.example.com` or `http://127.0.0.1:9000`; `None`: AWS for `region`.
    /// Plain http is allowed only when the endpoint itself is http.
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<String>,
    /// Read at start instead of `secret_access_key` (a mounted Kubernetes Secret).
    pub secret_access_key_file: Option<PathBuf>,
    pub session_token: Option<String>,
    /// `bucket.host/key` URLs instead of `host/bucket/key` (path style suits most
    /// S3-compatible servers).
    pub virtual_hosted_style: bool,
    /// Limit on one request to the storage.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Retries of a failed request (object_store's backoff).
    pub max_retries: usize,
}

impl Default for S3Config {
    fn default() -> Self {
        S3Config {
            endpoint: None,
            region: "us-east-1".into(),
            access_key_id: None,
            secret_access_key: None,
            secret_access_key_file: None,
            session_token: None,
            virtual_hosted_style: false,
            request_timeout: Duration::from_secs(5 * 60),
            connect_timeout: Duration::from_secs(10),
            max_retries: 3,
        }
    }
}

impl fmt::Debug for S3Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = |v: &Option<String>| v.as_ref().map(|_| "<redacted>");
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &redacted(&self.secret_access_key))
            .field("secret_access_key_file", &self.secret_access_key_file)
            .field("session_token", &redacted(&self.session_token))
            .field("virtual_hosted_style", &self.virtual_hosted_style)
            .field("request_timeout", &self.request_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// Why the `[storage]` section cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StorageInitError {
    #[error("storage.{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("storage.s3.secret_access_key_file {path}: {source}")]
    SecretFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot build the S3 client for bucket '{bucket}': {source}")]
    Client {
        bucket: String,
        source: object_store::Error,
    },
}

impl StorageConfig {
    /// Checks the section without touching the network or the disk.
    pub fn validate(&self) -> Result<(), StorageInitError> {
        let invalid = |field, message: String| Err(StorageInitError::Invalid { field, message });
        for bucket in self.input_buckets.iter().chain(&self.output_bucket) {
            if !is_bucket_name(bucket) {
                return invalid(
                    "input_buckets",
                    format!("'{bucket}' is not an S3 bucket name"),
                );
            }
        }
        if self.output == OutputBackend::S3 && self.output_bucket.is_none() {
            return invalid("output_bucket", "required when output = \"s3\"".into());
        }
        if self.output_prefix.starts_with('/') || self.output_prefix.contains("//") {
            return invalid(
                "output_prefix",
                "must not start with '/' or hold an empty segment".into(),
            );
        }
        if self.retention.is_zero() || self.sweep_interval.is_zero() || self.sweep_batch == 0 {
            return invalid(
                "retention",
                "retention, sweep_interval and sweep_batch must be positive".into(),
            );
        }
        if self.multipart_part_bytes < MIN_PART_BYTES {
            return invalid(
                "multipart_part_bytes",
                format!("must be at least {MIN_PART_BYTES} (S3's smallest part)"),
            );
        }
        if let Some(endpoint) = &self.s3.endpoint {
            match reqwest::Url::parse(endpoint) {
                Ok(url) if matches!(url.scheme(), "http" | "https") && url.has_host() => {}
                _ => {
                    return invalid(
                        "s3.endpoint",
                        format!("'{endpoint}' is not an http(s) URL with a host"),
                    )
                }
            }
        }
        if self.s3.region.trim().is_empty() {
            return invalid("s3.region", "must not be empty".into());
        }
        if self.s3.secret_access_key.is_some() && self.s3.secret_access_key_file.is_some() {
            return invalid(
                "s3.secret_access_key",
                "give the key or a file holding it, not both".into(),
            );
        }
        if self.uses_s3() && self.s3.access_key_id.is_none() {
            return invalid(
                "s3.access_key_id",
                "required when a bucket is configured".into(),
            );
        }
        Ok(())
    }

    /// Whether any bucket is configured.
    pub fn uses_s3(&self) -> bool {
        !self.input_buckets.is_empty() || self.output == OutputBackend::S3
    }
}

/// A bucket name S3 accepts: 3–63 lowercase letters, digits, `.` and `-`, starting and ending
/// with a letter or digit.
pub fn is_bucket_name(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-')
        && bytes
            .first()
            .zip(bytes.last())
            .is_some_and(|(a, z)| a.is_ascii_alphanumeric() && z.is_ascii_alphanumeric())
}

/// A checked `s3://bucket/key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3Url {
    pub bucket: String,
    /// The object key, decoded, as object_store names it.
    pub key: object_store::path::Path,
}

impl S3Url {
    /// Parses `s3://bucket/key`: a valid bucket name, a non-empty key without empty, `.` or
    /// `..` segments, no user info, port, query or fragment.
    pub fn parse(text: &str) -> Result<S3Url, String> {
        let url = reqwest::Url::parse(text).map_err(|err| err.to_string())?;
        if url.scheme() != "s3" {
            return Err(format!("scheme '{}' is not s3", url.scheme()));
        }
        if !url.username().is_empty() || url.password().is_some() || url.port().is_some() {
            return Err("an s3 URL names a bucket only, with no user, password or port".into());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("an s3 URL must not carry a query or fragment".into());
        }
        let bucket = url.host_str().unwrap_or_default().to_owned();
        if !is_bucket_name(&bucket) {
            return Err(format!("'{bucket}' is not an S3 bucket name"));
        }
        // The key as written: URL parsing would fold `a/../b` into `b`, hiding what was sent.
        let key = text
            .get(5..)
            .and_then(|rest| rest.split_once('/'))
            .map(|(_, key)| key)
            .unwrap_or_default();
        if key.is_empty() {
            return Err("the s3 URL names no object key".into());
        }
        let decoded = super::input::percent_decode(key)
            .ok_or_else(|| "the object key is not valid percent-encoded UTF-8".to_owned())?;
        let key = object_store::path::Path::parse(&decoded)
            .map_err(|err| format!("object key '{decoded}': {err}"))?;
        Ok(S3Url { bucket, key })
    }

    /// The key's last segment.
    pub fn file_name(&self) -> Option<String> {
        self.key.filename().map(str::to_owned)
    }
}

impl fmt::Display for S3Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// How a storage request failed, for the error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageFailure {
    NotFound,
    Denied,
    Other,
}

pub fn classify(err: &object_store::Error) -> StorageFailure {
    match err {
        object_store::Error::NotFound { .. } => StorageFailure::NotFound,
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => StorageFailure::Denied,
        _ => StorageFailure::Other,
    }
}

/// One client per configured bucket, built once at start.
pub struct ObjectStorage {
    buckets: HashMap<String, Arc<AmazonS3>>,
    input_buckets: Vec<String>,
}

impl fmt::Debug for ObjectStorage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.buckets.keys().collect();
        names.sort();
        f.debug_struct("ObjectStorage")
            .field("buckets", &names)
            .field("input_buckets", &self.input_buckets)
            .finish()
    }
}

impl ObjectStorage {
    /// Validates `config` and builds a client for every bucket it names (no request is made).
    /// `None` when no bucket is configured.
    pub fn new(config: &StorageConfig) -> Result<Option<ObjectStorage>, StorageInitError> {
        config.validate()?;
        if !config.uses_s3() {
            return Ok(None);
        }
        let secret = match (
            &config.s3.secret_access_key,
            &config.s3.secret_access_key_file,
        ) {
            (Some(secret), _) => Some(secret.clone()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map(|text| text.trim().to_owned())
                    .map_err(|source| StorageInitError::SecretFile {
                        path: path.clone(),
                        source,
                    })?,
            ),
            (None, None) => None,
        };
        let mut names: Vec<String> = config.input_buckets.clone();
        if config.output == OutputBackend::S3 {
            names.extend(config.output_bucket.iter().cloned());
        }
        let mut buckets = HashMap::new();
        for name in names {
            if buckets.contains_key(&name) {
                continue;
            }
            let client = build_client(&config.s3, secret.as_deref(), &name).map_err(|source| {
                StorageInitError::Client {
                    bucket: name.clone(),
                    source,
                }
            })?;
            buckets.insert(name, Arc::new(client));
        }
        Ok(Some(ObjectStorage {
            buckets,
            input_buckets: config.input_buckets.clone(),
        }))
    }

    /// The client of a configured bucket.
    pub fn bucket(&self, name: &str) -> Option<&Arc<AmazonS3>> {
        self.buckets.get(name)
    }

    /// Whether `s3://name/…` inputs are allowed.
    pub fn is_input_bucket(&self, name: &str) -> bool {
        self.input_buckets.iter().any(|b| b == name)
    }
}

fn build_client(
    s3: &S3Config,
    secret: Option<&str>,
    bucket: &str,
) -> Result<AmazonS3, object_store::Error> {
    let mut options = ClientOptions::new()
        .with_timeout(s3.request_timeout)
        .with_connect_timeout(s3.connect_timeout);
    let mut builder = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region(&s3.region)
        .with_virtual_hosted_style_request(s3.virtual_hosted_style)
        .with_retry(RetryConfig {
            max_retries: s3.max_retries,
            ..RetryConfig::default()
        });
    if let Some(endpoint) = &s3.endpoint {
        let endpoint = endpoint.trim_end_matches('/');
        if endpoint.starts_with("http://") {
            // Only a plain-http endpoint (a loopback test server, a sidecar) gets plain http.
            options = options.with_allow_http(true);
        }
        builder = builder.with_endpoint(endpoint);
    }
    if let Some(id) = &s3.access_key_id {
        builder = builder.with_access_key_id(id);
    }
    if let Some(secret) = secret {
        builder = builder.with_secret_access_key(secret);
    }
    if let Some(token) = &s3.session_token {
        builder = builder.with_token(token);
    }
    builder.with_client_options(options).build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s3_config() -> StorageConfig {
        StorageConfig {
            output: OutputBackend::S3,
            output_bucket: Some("outputs".into()),
            input_buckets: vec!["inputs".into()],
            s3: S3Config {
                endpoint: Some("http://127.0.0.1:9".into()),
                access_key_id: Some("AKIDEXAMPLE".into()),
                secret_access_key: Some("wJalrXUtnFEMI".into()),
                session_token: Some("tok3n".into()),
                ..S3Config::default()
            },
            ..StorageConfig::default()
        }
    }

    #[test]
    fn s3_urls_parse_and_print() {
        let url = S3Url::parse("s3://inputs/clips/My%20Clip.mp4").expect("valid");
        assert_eq!(url.bucket, "inputs");
        assert_eq!(url.key.as_ref(), "clips/My Clip.mp4");
        assert_eq!(url.file_name().as_deref(), Some("My Clip.mp4"));
        assert_eq!(
            S3Url::parse(&url.to_string()).expect("printed form parses"),
            url
        );
        for bad in [
            "s3://inputs",
            "s3://inputs/",
            "s3://In_Puts/a.mp4",
            "s3://ab/a.mp4",
            "s3://user@inputs/a.mp4",
            "s3://inputs:9000/a.mp4",
            "s3://inputs/a.mp4?versionId=1",
            "s3://inputs/a//b.mp4",
            "s3://inputs/../b.mp4",
            "s3://inputs/%FF.mp4",
            "https://inputs/a.mp4",
        ] {
            assert!(S3Url::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bucket_names_follow_s3_rules() {
        for good in ["abc", "my-bucket.v2", "0utputs"] {
            assert!(is_bucket_name(good), "{good}");
        }
        for bad in ["ab", "-abc", "abc-", "ABC", "a_b", &"a".repeat(64)] {
            assert!(!is_bucket_name(bad), "{bad}");
        }
    }

    #[test]
    fn configuration_is_validated() {
        assert!(StorageConfig::default().validate().is_ok());
        assert!(!StorageConfig::default().uses_s3());
        assert!(s3_config().validate().is_ok());
        let cases: Vec<(&str, StorageConfig)> = vec![
            (
                "output_bucket",
                StorageConfig {
                    output_bucket: None,
                    ..s3_config()
                },
            ),
            (
                "input_buckets",
                StorageConfig {
                    input_buckets: vec!["Bad_Bucket".into()],
                    ..s3_config()
                },
            ),
            (
                "multipart_part_bytes",
                StorageConfig {
                    multipart_part_bytes: 1024,
                    ..s3_config()
                },
            ),
            (
                "retention",
                StorageConfig {
                    retention: Duration::ZERO,
                    ..s3_config()
                },
            ),
            ("s3.endpoint", {
                let mut c = s3_config();
                c.s3.endpoint = Some("ftp://x".into());
                c
            }),
            ("s3.access_key_id", {
                let mut c = s3_config();
                c.s3.access_key_id = None;
                c
            }),
            ("s3.secret_access_key", {
                let mut c = s3_config();
                c.s3.secret_access_key_file = Some("/run/secret".into());
                c
            }),
        ];
        for (field, config) in cases {
            let err = config.validate().expect_err(field);
            assert!(err.to_string().contains(field), "{field}: {err}");
        }
    }

    #[test]
    fn secrets_never_reach_debug_output() {
        let text = format!("{:?}", s3_config());
        assert!(!text.contains("wJalrXUtnFEMI"), "{text}");
        assert!(!text.contains("tok3n"), "{text}");
        assert!(text.contains("AKIDEXAMPLE"));
        let parsed: StorageConfig = serde_json::from_str(
            r#"{"output":"s3","output_bucket":"outputs","retention":"36h","s3":{"region":"eu-west-1"}}"#,
        )
        .expect("config");
        assert_eq!(parsed.output, OutputBackend::S3);
        assert_eq!(parsed.retention, Duration::from_secs(36 * 3600));
        assert!(serde_json::from_str::<StorageConfig>(r#"{"bucket":"x"}"#).is_err());
    }

    #[test]
    fn clients_are_built_per_bucket_and_secret_files_are_read() {
        assert!(ObjectStorage::new(&StorageConfig::default())
            .expect("local")
            .is_none());
        let tmp = tempfile::tempdir().expect("tmp");
        let file = tmp.path().join("secret");
        std::fs::write(&file, "from-file\n").expect("write");
        let mut config = s3_config();
        config.s3.secret_access_key = None;
        config.s3.secret_access_key_file = Some(file);
        let storage = ObjectStorage::new(&config).expect("built").expect("s3");
        assert!(storage.bucket("inputs").is_some());
        assert!(storage.bucket("outputs").is_some());
        assert!(storage.bucket("other").is_none());
        assert!(storage.is_input_bucket("inputs"));
        assert!(!storage.is_input_bucket("outputs"));
        config.s3.secret_access_key_file = Some(tmp.path().join("missing"));
        assert!(matches!(
            ObjectStorage::new(&config),
            Err(StorageInitError::SecretFile { .. })
        ));
    }

    #[test]
    fn failures_are_classified() {
        let boxed = || Box::<dyn std::error::Error + Send + Sync>::from("x");
        assert_eq!(
            classify(&object_store::Error::NotFound {
                path: "a".into(),
                source: boxed()
            }),
            StorageFailure::NotFound
        );
        assert_eq!(
            classify(&object_store::Error::PermissionDenied {
                path: "a".into(),
                source: boxed()
            }),
            StorageFailure::Denied
        );
        assert_eq!(
            classify(&object_store::Error::Generic {
                store: "S3",
                source: boxed()
            }),
            StorageFailure::Other
        );
    }
}
