//! Render inputs: checking a job's `video_url` and turning it into a local file.
//!
//! `file://` URLs must name a regular file whose canonical path (symlinks resolved) lies inside the
//! canonical media root. `http(s)://` URLs must name an allow-listed host (every redirect hop is
//! checked again) and an allowed extension; they are downloaded into the work folder with a size
//! limit and an overall time limit, and the download is deleted when its [`LocalInput`] drops.

use std::fmt;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use object_store::ObjectStoreExt as _;
use reqwest::Url;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use tokio_stream::StreamExt as _;

use crate::media::is_safe_job_id;
use crate::media::storage::{classify, ObjectStorage, S3Url, StorageFailure};
use crate::progress::CancelToken;

/// Longest `video_url` accepted; longer strings are not URLs anyone meant to send.
const MAX_URL_LEN: usize = 8 * 1024;
/// How often a running download looks at its cancellation flag.
const CANCEL_POLL: Duration = Duration::from_millis(50);

/// The `[media]` configuration section: where inputs may come from.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// `file://` inputs must lie inside this folder (created at start if absent).
    pub root: PathBuf,
    /// Hosts remote inputs may come from: exact names (`cdn.example.com`, `127.0.0.1`) or
    /// `*.example.com`, which matches every subdomain of example.com but not example.com itself.
    /// Empty turns http(s) inputs off.
    pub allowed_hosts: Vec<String>,
    /// Also accept plain `http://` (otherwise only `https://`).
    pub allow_http: bool,
    /// Largest remote input, checked against Content-Length and while streaming.
    pub max_download_bytes: u64,
    /// Limit on one whole download, from the request to the last byte.
    #[serde(with = "humantime_serde")]
    pub download_timeout: Duration,
    #[serde(with = "humantime_serde")]
    pub connect_timeout: Duration,
    /// Redirects followed per download; each target host is checked against `allowed_hosts`.
    pub max_redirects: usize,
    /// Allowed file extensions (without the dot, case-insensitive), checked on the URL path.
    pub extensions: Vec<String>,
    /// Downloads are written here (created at start if absent).
    pub work_dir: PathBuf,
}

impl Default for MediaConfig {
    fn default() -> Self {
        MediaConfig {
            root: PathBuf::from("./data/media"),
            allowed_hosts: Vec::new(),
            allow_http: false,
            max_download_bytes: 2 * 1024 * 1024 * 1024,
            download_timeout: Duration::from_secs(10 * 60),
            connect_timeout: Duration::from_secs(10),
            max_redirects: 5,
            extensions: ["mp4", "mov", "avi", "mkv", "webm"]
                .map(String::from)
                .to_vec(),
            work_dir: PathBuf::from("./data/work"),
        }
    }
}

/// Why the media layer could not be set up from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum MediaInitError {
    #[error("cannot prepare media folder {path}: {source}")]
    Folder { path: PathBuf, source: io::Error },
    #[error(
        "media.allowed_hosts entry '{0}' is not a host name, an IP address or a '*.domain' pattern"
    )]
    HostPattern(String),
    #[error("media.extensions entry '{0}' is not a file extension")]
    Extension(String),
    #[error("cannot build the HTTP client for downloads: {0}")]
    HttpClient(#[source] reqwest::Error),
}

/// Why a `video_url` was refused or could not be fetched.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("video_url is not a valid URL: {reason}")]
    InvalidUrl { reason: String },
    #[error("video_url scheme '{scheme}' is not allowed")]
    SchemeNotAllowed { scheme: String },
    #[error("video_url path {path} is outside the media root")]
    OutsideMediaRoot { path: String },
    #[error("video_url file {path} does not exist")]
    NotFound { path: String },
    #[error("video_url path {path} is not a regular file")]
    NotAFile { path: String },
    #[error("video_url host '{host}' is not on the allowed host list")]
    HostNotAllowed { host: String },
    #[error("video_url bucket '{bucket}' is not on the allowed bucket list")]
    BucketNotAllowed { bucket: String },
    #[error("video_url object {url} does not exist")]
    ObjectNotFound { url: String },
    #[error("the storage refused access to video_url object {url}")]
    ObjectAccessDenied { url: String },
    #[error("reading the video from storage failed: {reason}")]
    Storage { reason: String },
    #[error("video_url must not carry a user name or password")]
    UserInfoNotAllowed,
    #[error("video_url extension '{extension}' is not an allowed video format")]
    ExtensionNotAllowed { extension: String },
    #[error("video is larger than the {limit}-byte download limit")]
    TooLarge { limit: u64 },
    #[error("video download did not finish within {}", humantime_serde::re::humantime::format_duration(*after))]
    Timeout { after: Duration },
    #[error("video server answered HTTP {status}")]
    Http { status: u16 },
    #[error("video download failed: {reason}")]
    Network { reason: String },
    #[error("video download was cancelled")]
    Cancelled,
    #[error("'{job_id}' cannot name a download file")]
    InvalidJobId { job_id: String },
    #[error("{context}: {source}")]
    Io {
        context: &'static str,
        #[source]
        source: io::Error,
    },
}

impl InputError {
    /// The contract's job failure code for this error (CONTRACT.md).
    pub fn code(&self) -> &'static str {
        match self {
            InputError::InvalidUrl { .. }
            | InputError::SchemeNotAllowed { .. }
            | InputError::OutsideMediaRoot { .. }
            | InputError::NotFound { .. }
            | InputError::NotAFile { .. }
            | InputError::HostNotAllowed { .. }
            | InputError::BucketNotAllowed { .. }
            | InputError::ObjectNotFound { .. }
            | InputError::ObjectAccessDenied { .. }
            | InputError::UserInfoNotAllowed
            | InputError::TooLarge { .. } => "INVALID_VIDEO_URL",
            InputError::ExtensionNotAllowed { .. } => "INVALID_VIDEO_FORMAT",
            InputError::Timeout { .. } => "RENDERING_TIMEOUT",
            InputError::Cancelled => "JOB_CANCELLED",
            InputError::Http { .. }
            | InputError::Network { .. }
            | InputError::Storage { .. }
            | InputError::InvalidJobId { .. }
            | InputError::Io { .. } => "STORAGE_ACCESS_ERROR",
        }
    }

    fn io(context: &'static str) -> impl FnOnce(io::Error) -> InputError {
        move |source| InputError::Io { context, source }
    }
}

/// A checked `video_url`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InputUrl {
    /// A file inside the media root; `path` is canonical.
    File { path: PathBuf },
    /// An allow-listed http(s) URL.
    Remote { url: Url },
    /// An object in an allow-listed bucket.
    S3 { url: S3Url },
}

impl InputUrl {
    /// The last path segment (percent-decoded for remote URLs), a default `video_name`.
    pub fn file_name(&self) -> Option<String> {
        match self {
            InputUrl::File { path } => path
                .file_name()
                .map(|name| name.to_string_lossy().into_owned()),
            InputUrl::Remote { url } => last_segment(url).filter(|name| !name.is_empty()),
            InputUrl::S3 { url } => url.file_name(),
        }
    }

    /// Whether the input is downloaded (http(s) or s3) rather than read in place.
    pub fn is_remote(&self) -> bool {
        matches!(self, InputUrl::Remote { .. } | InputUrl::S3 { .. })
    }
}

impl fmt::Display for InputUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InputUrl::File { path } => write!(f, "file://{}", path.display()),
            InputUrl::Remote { url } => f.write_str(url.as_str()),
            InputUrl::S3 { url } => write!(f, "{url}"),
        }
    }
}

/// An input on the local disk. A downloaded file is deleted when this drops; a `file://` input,
/// which belongs to the media root, never is.
#[derive(Debug)]
pub struct LocalInput {
    path: PathBuf,
    downloaded: bool,
}

impl LocalInput {
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this file was downloaded for the job (and will be deleted on drop).
    pub fn is_downloaded(&self) -> bool {
        self.downloaded
    }
}

impl Drop for LocalInput {
    fn drop(&mut self) {
        if self.downloaded {
            remove_quietly(&self.path);
        }
    }
}

/// One entry of a host allow-list (`[media] allowed_hosts`, `[webhooks] allowed_hosts`): a
/// domain, `*.domain` for its subdomains, or an IP address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostPattern {
    Domain(String),
    /// `*.example.com`, stored as `.example.com`.
    Subdomains(String),
    Ip(IpAddr),
}

impl HostPattern {
    /// `None` when `entry` is neither an IP address nor a (wildcard) domain name.
    pub fn parse(entry: &str) -> Option<Self> {
        let text = entry.trim().trim_end_matches('.').to_ascii_lowercase();
        let unbracketed = text.trim_start_matches('[').trim_end_matches(']');
        if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            return Some(HostPattern::Ip(ip));
        }
        let (pattern, domain) = match text.strip_prefix("*.") {
            Some(rest) => (HostPattern::Subdomains(format!(".{rest}")), rest),
            None => (HostPattern::Domain(text.clone()), text.as_str()),
        };
        let label_ok = |label: &str| {
            !label.is_empty()
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        };
        domain.split('.').all(label_ok).then_some(pattern)
    }

    /// Whether `host` (a URL's host, any case, IPv6 in brackets or not) is this entry.
    pub fn matches(&self, host: &str) -> bool {
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        match self {
            HostPattern::Domain(name) => host == *name,
            HostPattern::Subdomains(suffix) => host.len() > suffix.len() && host.ends_with(suffix),
            HostPattern::Ip(ip) => host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .is_ok_and(|h| h == *ip),
        }
    }
}

/// The rules every remote URL (and every redirect target) must pass.
#[derive(Debug)]
struct RemoteRules {
    hosts: Vec<HostPattern>,
    allow_http: bool,
}

impl RemoteRules {
    fn check(&self, url: &Url) -> Result<(), InputError> {
        match url.scheme() {
            "https" => {}
            "http" if self.allow_http => {}
            other => {
                return Err(InputError::SchemeNotAllowed {
                    scheme: other.to_owned(),
                })
            }
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(InputError::UserInfoNotAllowed);
        }
        let host = url.host_str().unwrap_or_default();
        if host.is_empty() || !self.hosts.iter().any(|pattern| pattern.matches(host)) {
            return Err(InputError::HostNotAllowed {
                host: host.to_owned(),
            });
        }
        Ok(())
    }
}

/// A redirect the download policy refused; found again in the reqwest error's source chain.
#[derive(Debug, thiserror::Error)]
enum RedirectRefused {
    #[error("redirect to a disallowed scheme '{0}'")]
    Scheme(String),
    #[error("redirect to a disallowed host '{0}'")]
    Host(String),
    #[error("redirect to a URL with user info")]
    UserInfo,
    #[error("more than {0} redirects")]
    TooMany(usize),
}

/// Checks `video_url`s and fetches them.
#[derive(Debug)]
pub struct InputResolver {
    /// Canonical media root.
    root: PathBuf,
    /// The root as configured, made absolute; paths under it that do not exist are "not found"
    /// rather than "outside the root".
    root_lexical: PathBuf,
    work_dir: PathBuf,
    rules: Arc<RemoteRules>,
    extensions: Vec<String>,
    max_download_bytes: u64,
    download_timeout: Duration,
    client: reqwest::Client,
    /// `s3://` inputs: the configured buckets; `None` turns them off.
    objects: Option<Arc<ObjectStorage>>,
}

impl InputResolver {
    /// Creates the media root and work folder if needed and builds the download client.
    pub fn new(config: &MediaConfig) -> Result<Self, MediaInitError> {
        let folder = |path: &Path| {
            std::fs::create_dir_all(path)
                .and_then(|()| std::path::absolute(path))
                .map_err(|source| MediaInitError::Folder {
                    path: path.to_owned(),
                    source,
                })
        };
        let root_lexical = folder(&config.root)?;
        let root = root_lexical
            .canonicalize()
            .map_err(|source| MediaInitError::Folder {
                path: config.root.clone(),
                source,
            })?;
        let work_dir = folder(&config.work_dir)?;
        let hosts = config
            .allowed_hosts
            .iter()
            .map(|entry| {
                HostPattern::parse(entry).ok_or_else(|| MediaInitError::HostPattern(entry.clone()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let extensions = config
            .extensions
            .iter()
            .map(|entry| {
                let ext = entry.trim().trim_start_matches('.').to_ascii_lowercase();
                if !ext.is_empty() && ext.chars().all(|c| c.is_ascii_alphanumeric()) {
                    Ok(ext)
                } else {
                    Err(MediaInitError::Extension(entry.clone()))
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        let rules = Arc::new(RemoteRules {
            hosts,
            allow_http: config.allow_http,
        });
        let client = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .redirect(redirect_policy(Arc::clone(&rules), config.max_redirects))
            // Inputs come from named hosts; an ambient HTTP_PROXY must not reroute them.
            .no_proxy()
            .build()
            .map_err(MediaInitError::HttpClient)?;
        Ok(InputResolver {
            root,
            root_lexical,
            work_dir,
            rules,
            extensions,
            max_download_bytes: config.max_download_bytes,
            download_timeout: config.download_timeout,
            client,
            objects: None,
        })
    }

    /// Accepts `s3://bucket/key` inputs from the buckets `objects` allows as input buckets.
    pub fn with_object_storage(mut self, objects: Arc<ObjectStorage>) -> Self {
        self.objects = Some(objects);
        self
    }

    /// The canonical media root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Validates a `video_url` for CreateRender. Touches the file system for `file://` URLs
    /// (a few `stat` calls), never the network.
    pub fn check(&self, url: &str) -> Result<InputUrl, InputError> {
        if url.len() > MAX_URL_LEN {
            return Err(InputError::InvalidUrl {
                reason: format!("longer than {MAX_URL_LEN} bytes"),
            });
        }
        let url = url.trim();
        let parsed = Url::parse(url).map_err(|err| InputError::InvalidUrl {
            reason: err.to_string(),
        })?;
        match parsed.scheme() {
            "file" => self.check_file(url, &parsed),
            "http" | "https" => {
                self.rules.check(&parsed)?;
                self.check_extension(&last_segment(&parsed).unwrap_or_default())?;
                Ok(InputUrl::Remote { url: parsed })
            }
            "s3" if self.objects.is_some() => {
                let checked =
                    S3Url::parse(url).map_err(|reason| InputError::InvalidUrl { reason })?;
                self.check_bucket(&checked)?;
                self.check_extension(&checked.file_name().unwrap_or_default())?;
                Ok(InputUrl::S3 { url: checked })
            }
            other => Err(InputError::SchemeNotAllowed {
                scheme: other.to_owned(),
            }),
        }
    }

    /// The client of an allow-listed input bucket.
    fn check_bucket(&self, url: &S3Url) -> Result<&Arc<object_store::aws::AmazonS3>, InputError> {
        let refused = || InputError::BucketNotAllowed {
            bucket: url.bucket.clone(),
        };
        let objects = self.objects.as_ref().ok_or_else(refused)?;
        if !objects.is_input_bucket(&url.bucket) {
            return Err(refused());
        }
        objects.bucket(&url.bucket).ok_or_else(refused)
    }

    fn check_file(&self, raw: &str, parsed: &Url) -> Result<InputUrl, InputError> {
        // `file:video.mp4` and `file:/x` parse as absolute URLs; only `file:///abs/path`
        // (or `file://localhost/abs/path`) says what it means.
        let absolute_form = raw
            .get(..7)
            .is_some_and(|prefix| prefix.eq_ignore_ascii_case("file://"));
        if !absolute_form {
            return Err(InputError::InvalidUrl {
                reason: "a file URL must be absolute: file:///path/to/video.mp4".into(),
            });
        }
        if parsed.host_str().is_some_and(|host| !host.is_empty()) {
            return Err(InputError::InvalidUrl {
                reason: "a file URL must not name a host".into(),
            });
        }
        if parsed.query().is_some() || parsed.fragment().is_some() {
            return Err(InputError::InvalidUrl {
                reason: "a file URL must not carry a query or fragment".into(),
            });
        }
        let path = parsed.to_file_path().map_err(|()| InputError::InvalidUrl {
            reason: "the file URL does not name a local path".into(),
        })?;
        let canonical = self.resolve_local(&path)?;
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.check_extension(&name)?;
        Ok(InputUrl::File { path: canonical })
    }

    /// The canonical path of a regular file inside the media root.
    fn resolve_local(&self, path: &Path) -> Result<PathBuf, InputError> {
        let shown = path.display().to_string();
        let canonical = match path.canonicalize() {
            Ok(canonical) => canonical,
            // Whether a path outside the root exists is none of the caller's business.
            Err(_) if !path.starts_with(&self.root) && !path.starts_with(&self.root_lexical) => {
                return Err(InputError::OutsideMediaRoot { path: shown })
            }
            Err(err) if err.kind() == io::ErrorKind::NotFound => {
                return Err(InputError::NotFound { path: shown })
            }
            Err(source) => {
                return Err(InputError::Io {
                    context: "cannot resolve the input path",
                    source,
                })
            }
        };
        if !canonical.starts_with(&self.root) {
            return Err(InputError::OutsideMediaRoot { path: shown });
        }
        let metadata =
            std::fs::metadata(&canonical).map_err(InputError::io("cannot stat the input"))?;
        if !metadata.is_file() {
            return Err(InputError::NotAFile { path: shown });
        }
        Ok(canonical)
    }

    fn check_extension(&self, file_name: &str) -> Result<(), InputError> {
        let extension = file_name
            .rsplit_once('.')
            .map(|(_, ext)| ext.to_ascii_lowercase())
            .unwrap_or_default();
        if self.extensions.contains(&extension) {
            Ok(())
        } else {
            Err(InputError::ExtensionNotAllowed { extension })
        }
    }

    /// Makes a checked input available as a local file: a `file://` input is re-checked (it may
    /// have changed since CreateRender) and used in place; a remote one is downloaded to
    /// `work_dir/<job_id>.part` and renamed to `work_dir/<job_id>.<ext>` when complete.
    /// Stops with [`InputError::Cancelled`] within ~50 ms of `cancel` being set.
    pub async fn fetch(
        &self,
        input: &InputUrl,
        job_id: &str,
        cancel: &CancelToken,
    ) -> Result<LocalInput, InputError> {
        match input {
            InputUrl::File { path } => Ok(LocalInput {
                path: self.resolve_local(path)?,
                downloaded: false,
            }),
            InputUrl::Remote { url } => {
                if !is_safe_job_id(job_id) {
                    return Err(InputError::InvalidJobId {
                        job_id: job_id.to_owned(),
                    });
                }
                self.rules.check(url)?;
                let extension = self.download_extension(last_segment(url));
                self.fetch_remote(Source::Http(url), &extension, job_id, cancel)
                    .await
            }
            InputUrl::S3 { url } => {
                if !is_safe_job_id(job_id) {
                    return Err(InputError::InvalidJobId {
                        job_id: job_id.to_owned(),
                    });
                }
                // Checked again: the allow-list may have changed since CreateRender.
                self.check_bucket(url)?;
                let extension = self.download_extension(url.file_name());
                self.fetch_remote(Source::S3(url), &extension, job_id, cancel)
                    .await
            }
        }
    }

    /// The extension a download is stored under: the URL's, when allowed, else `bin`.
    fn download_extension(&self, name: Option<String>) -> String {
        name.and_then(|name| {
            name.rsplit_once('.')
                .map(|(_, ext)| ext.to_ascii_lowercase())
        })
        .filter(|ext| self.extensions.contains(ext))
        .unwrap_or_else(|| "bin".to_owned())
    }

    async fn fetch_remote(
        &self,
        source: Source<'_>,
        extension: &str,
        job_id: &str,
        cancel: &CancelToken,
    ) -> Result<LocalInput, InputError> {
        tokio::fs::create_dir_all(&self.work_dir)
            .await
            .map_err(InputError::io("cannot create the download folder"))?;
        let part = self.work_dir.join(format!("{job_id}.part"));
        let done = self.work_dir.join(format!("{job_id}.{extension}"));

        let outcome = tokio::select! {
            result = tokio::time::timeout(self.download_timeout, self.download(source, &part)) => {
                result.unwrap_or(Err(InputError::Timeout { after: self.download_timeout }))
            }
            () = cancelled(cancel) => Err(InputError::Cancelled),
        };
        let renamed = match outcome {
            Ok(()) => tokio::fs::rename(&part, &done)
                .await
                .map_err(InputError::io(
                    "cannot move the finished download into place",
                )),
            Err(err) => Err(err),
        };
        match renamed {
            Ok(()) => Ok(LocalInput {
                path: done,
                downloaded: true,
            }),
            Err(err) => {
                remove_quietly(&part);
                Err(err)
            }
        }
    }

    async fn download(&self, source: Source<'_>, part: &Path) -> Result<(), InputError> {
        match source {
            Source::Http(url) => self.download_http(url, part).await,
            Source::S3(url) => self.download_s3(url, part).await,
        }
    }

    /// Streams an object into `part`, with the same size limit as http(s) downloads.
    async fn download_s3(&self, url: &S3Url, part: &Path) -> Result<(), InputError> {
        let limit = self.max_download_bytes;
        let store = self.check_bucket(url)?;
        let storage_error = |err: object_store::Error| match classify(&err) {
            StorageFailure::NotFound => InputError::ObjectNotFound {
                url: url.to_string(),
            },
            StorageFailure::Denied => InputError::ObjectAccessDenied {
                url: url.to_string(),
            },
            StorageFailure::Other => InputError::Storage {
                reason: error_chain(&err),
            },
        };
        let object = store.get(&url.key).await.map_err(storage_error)?;
        if object.meta.size > limit {
            return Err(InputError::TooLarge { limit });
        }
        let mut file = tokio::fs::File::create(part)
            .await
            .map_err(InputError::io("cannot create the download file"))?;
        let mut chunks = object.into_stream();
        let mut total: u64 = 0;
        while let Some(chunk) = chunks.next().await {
            let chunk = chunk.map_err(storage_error)?;
            total = total.saturating_add(chunk.len() as u64);
            if total > limit {
                return Err(InputError::TooLarge { limit });
            }
            file.write_all(&chunk)
                .await
                .map_err(InputError::io("cannot write the download file"))?;
        }
        file.flush()
            .await
            .map_err(InputError::io("cannot write the download file"))?;
        Ok(())
    }

    async fn download_http(&self, url: &Url, part: &Path) -> Result<(), InputError> {
        let limit = self.max_download_bytes;
        let mut response = self
            .client
            .get(url.clone())
            .send()
            .await
            .map_err(request_error)?;
        let status = response.status();
        if !status.is_success() {
            return Err(InputError::Http {
                status: status.as_u16(),
            });
        }
        if response.content_length().is_some_and(|len| len > limit) {
            return Err(InputError::TooLarge { limit });
        }
        let mut file = tokio::fs::File::create(part)
            .await
            .map_err(InputError::io("cannot create the download file"))?;
        let mut total: u64 = 0;
        while let Some(chunk) = response.chunk().await.map_err(request_error)? {
            total = total.saturating_add(chunk.len() as u64);
            if total > limit {
                return Err(InputError::TooLarge { limit });
            }
            file.write_all(&chunk)
                .await
                .map_err(InputError::io("cannot write the download file"))?;
        }
        file.flush()
            .await
            .map_err(InputError::io("cannot write the download file"))?;
        Ok(())
    }

    /// Deletes downloads a previous process left behind (`<job id>.part` and finished
    /// `<job id>.<ext>` files). Call once at start, before workers run. Returns how many went.
    pub fn remove_stale_downloads(&self) -> io::Result<usize> {
        let mut removed = 0;
        for entry in std::fs::read_dir(&self.work_dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let Some(stem) = name
                .to_str()
                .and_then(|n| n.rsplit_once('.'))
                .map(|(s, _)| s)
            else {
                continue;
            };
            if is_safe_job_id(stem) && entry.file_type()?.is_file() {
                std::fs::remove_file(entry.path())?;
                removed += 1;
            }
        }
        Ok(removed)
    }
}

/// Where a remote input comes from.
#[derive(Clone, Copy)]
enum Source<'a> {
    Http(&'a Url),
    S3(&'a S3Url),
}

fn redirect_policy(rules: Arc<RemoteRules>, max_redirects: usize) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        // `previous` holds every URL requested so far, the original one included.
        if attempt.previous().len() > max_redirects {
            return attempt.error(RedirectRefused::TooMany(max_redirects));
        }
        let refused = match rules.check(attempt.url()) {
            Ok(()) => return attempt.follow(),
            Err(InputError::SchemeNotAllowed { scheme }) => RedirectRefused::Scheme(scheme),
            Err(InputError::UserInfoNotAllowed) => RedirectRefused::UserInfo,
            Err(_) => {
                RedirectRefused::Host(attempt.url().host_str().unwrap_or_default().to_owned())
            }
        };
        attempt.error(refused)
    })
}

/// Names what went wrong with a download request, recognising refused redirects.
fn request_error(err: reqwest::Error) -> InputError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&err);
    while let Some(current) = source {
        if let Some(refused) = current.downcast_ref::<RedirectRefused>() {
            return match refused {
                RedirectRefused::Scheme(scheme) => InputError::SchemeNotAllowed {
                    scheme: scheme.clone(),
                },
                RedirectRefused::Host(host) => InputError::HostNotAllowed { host: host.clone() },
                RedirectRefused::UserInfo => InputError::UserInfoNotAllowed,
                RedirectRefused::TooMany(_) => InputError::Network {
                    reason: refused.to_string(),
                },
            };
        }
        source = current.source();
    }
    // The overall limit is enforced around the whole download; a timeout here is the
    // connect timeout, a storage problem rather than a slow render.
    InputError::Network {
        reason: error_chain(&err),
    }
}

/// The percent-decoded last path segment of a URL.
fn last_segment(url: &Url) -> Option<String> {
    let segment = url.path_segments()?.next_back()?;
    Some(percent_decode(segment).unwrap_or_else(|| segment.to_owned()))
}

/// Decodes `%XX` escapes; `None` when the result is not UTF-8 or an escape is malformed.
pub(crate) fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

async fn cancelled(cancel: &CancelToken) {
    while !cancel.is_cancelled() {
        tokio::time::sleep(CANCEL_POLL).await;
    }
}

fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(current) = source {
        text.push_str(": ");
        text.push_str(&current.to_string());
        source = current.source();
    }
    text
}

fn remove_quietly(path: &Path) {
    if let Err(err) = std::fs::remove_file(path) {
        if err.kind() != io::ErrorKind::NotFound {
            tracing::warn!(path = %path.display(), error = %err, "cannot delete a downloaded input");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use axum::body::{Body, Bytes};
    use axum::http::StatusCode;
    use axum::response::Redirect;
    use axum::routing::get;
    use axum::Router;

    use super::*;

    const JOB: &str = "0190f3a4-8c2e-7b1d-9f00-123456789abc";
    const LIMIT: u64 = 4096;

    struct Fixture {
        tmp: tempfile::TempDir,
        resolver: InputResolver,
    }

    impl Fixture {
        fn media(&self) -> PathBuf {
            self.tmp.path().join("media")
        }

        fn work(&self) -> PathBuf {
            self.tmp.path().join("work")
        }

        fn file_url(&self, path: &Path) -> String {
            Url::from_file_path(path).expect("absolute").to_string()
        }
    }

    fn fixture_with(edit: impl FnOnce(&mut MediaConfig)) -> Fixture {
        let tmp = tempfile::tempdir().expect("tmp");
        let mut config = MediaConfig {
            root: tmp.path().join("media"),
            work_dir: tmp.path().join("work"),
            allowed_hosts: vec!["127.0.0.1".into(), "*.cdn.example.com".into()],
            allow_http: true,
            max_download_bytes: LIMIT,
            download_timeout: Duration::from_secs(5),
            ..MediaConfig::default()
        };
        edit(&mut config);
        let resolver = InputResolver::new(&config).expect("resolver");
        Fixture { tmp, resolver }
    }

    fn fixture() -> Fixture {
        fixture_with(|_| {})
    }

    fn err_of(result: Result<InputUrl, InputError>) -> InputError {
        result.expect_err("should be refused")
    }

    #[test]
    fn file_inside_the_root_is_accepted_with_its_canonical_path() {
        let f = fixture();
        std::fs::create_dir_all(f.media().join("sub")).expect("mkdir");
        let video = f.media().join("sub").join("clip.MP4");
        std::fs::write(&video, b"video").expect("write");
        let checked = f.resolver.check(&f.file_url(&video)).expect("accepted");
        let canonical = video.canonicalize().expect("canonical");
        assert_eq!(
            checked,
            InputUrl::File {
                path: canonical.clone()
            }
        );
        assert_eq!(checked.file_name().as_deref(), Some("clip.MP4"));
        assert!(!checked.is_remote());
        // `file://localhost/…` means the same file.
        let localhost = format!("file://localhost{}", canonical.display());
        assert_eq!(
            f.resolver.check(&localhost).expect("localhost"),
            InputUrl::File { path: canonical }
        );
    }

    #[test]
    fn file_urls_that_escape_the_root_are_refused() {
        let f = fixture();
        let outside = f.tmp.path().join("secret.mp4");
        std::fs::write(&outside, b"secret").expect("write");
        let dotdot = format!("file://{}/../secret.mp4", f.media().display());
        assert!(matches!(
            err_of(f.resolver.check(&dotdot)),
            InputError::OutsideMediaRoot { .. }
        ));
        let encoded = format!("file://{}/%2e%2e/secret.mp4", f.media().display());
        assert!(matches!(
            err_of(f.resolver.check(&encoded)),
            InputError::OutsideMediaRoot { .. }
        ));
        assert!(matches!(
            err_of(f.resolver.check(&f.file_url(&outside))),
            InputError::OutsideMediaRoot { .. }
        ));
        // Outside the root, a missing file is not reported as missing.
        let nowhere = f.tmp.path().join("nowhere.mp4");
        assert!(matches!(
            err_of(f.resolver.check(&f.file_url(&nowhere))),
            InputError::OutsideMediaRoot { .. }
        ));
    }

    #[cfg(unix)]
    #[test]
    fn symlinks_out_of_the_root_are_refused() {
        let f = fixture();
        let outside = f.tmp.path().join("secret.mp4");
        std::fs::write(&outside, b"secret").expect("write");
        let link = f.media().join("innocent.mp4");
        std::os::unix::fs::symlink(&outside, &link).expect("symlink");
        let err = err_of(f.resolver.check(&f.file_url(&link)));
        assert!(matches!(err, InputError::OutsideMediaRoot { .. }), "{err}");
        assert_eq!(err.code(), "INVALID_VIDEO_URL");
        let outside_dir = f.tmp.path().join("elsewhere");
        std::fs::create_dir(&outside_dir).expect("mkdir");
        std::fs::write(outside_dir.join("v.mp4"), b"v").expect("write");
        std::os::unix::fs::symlink(&outside_dir, f.media().join("dir")).expect("symlink");
        let through_dir = f.media().join("dir").join("v.mp4");
        assert!(matches!(
            err_of(f.resolver.check(&f.file_url(&through_dir))),
            InputError::OutsideMediaRoot { .. }
        ));
        // A symlink that stays inside the root is fine.
        std::fs::write(f.media().join("real.mp4"), b"v").expect("write");
        std::os::unix::fs::symlink(f.media().join("real.mp4"), f.media().join("alias.mp4"))
            .expect("symlink");
        assert!(f
            .resolver
            .check(&f.file_url(&f.media().join("alias.mp4")))
            .is_ok());
    }

    #[test]
    fn missing_files_directories_and_odd_forms_are_refused() {
        let f = fixture();
        let missing = f.media().join("missing.mp4");
        let err = err_of(f.resolver.check(&f.file_url(&missing)));
        assert!(matches!(err, InputError::NotFound { .. }), "{err}");
        let dir = f.media().join("folder.mp4");
        std::fs::create_dir(&dir).expect("mkdir");
        assert!(matches!(
            err_of(f.resolver.check(&f.file_url(&dir))),
            InputError::NotAFile { .. }
        ));
        std::fs::write(f.media().join("notes.txt"), b"x").expect("write");
        let err = err_of(f.resolver.check(&f.file_url(&f.media().join("notes.txt"))));
        assert!(
            matches!(err, InputError::ExtensionNotAllowed { .. }),
            "{err}"
        );
        assert_eq!(err.code(), "INVALID_VIDEO_FORMAT");
        for relative in [
            "file:clip.mp4",
            "file:/clip.mp4",
            "file://clip.mp4",
            "file://server/share/clip.mp4",
        ] {
            assert!(
                matches!(
                    err_of(f.resolver.check(relative)),
                    InputError::InvalidUrl { .. }
                ),
                "{relative}"
            );
        }
        let with_query = format!("{}?x=1", f.file_url(&f.media().join("a.mp4")));
        assert!(matches!(
            err_of(f.resolver.check(&with_query)),
            InputError::InvalidUrl { .. }
        ));
        assert!(matches!(
            err_of(f.resolver.check("not a url")),
            InputError::InvalidUrl { .. }
        ));
        assert!(matches!(
            err_of(f.resolver.check(&"x".repeat(MAX_URL_LEN + 1))),
            InputError::InvalidUrl { .. }
        ));
    }

    #[test]
    fn other_schemes_are_refused() {
        let f = fixture();
        for url in [
            "ftp://127.0.0.1/a.mp4",
            "data:video/mp4;base64,AAAA",
            "javascript:alert(1)",
            "s3://bucket/a.mp4",
        ] {
            let err = err_of(f.resolver.check(url));
            assert!(
                matches!(err, InputError::SchemeNotAllowed { .. }),
                "{url}: {err}"
            );
            assert_eq!(err.code(), "INVALID_VIDEO_URL");
        }
    }

    /// A fixture that also accepts `s3://inputs/…`, its storage at a port nothing listens on.
    fn s3_fixture() -> Fixture {
        use crate::media::storage::{S3Config, StorageConfig};
        let Fixture { tmp, resolver } = fixture();
        let config = StorageConfig {
            input_buckets: vec!["inputs".into()],
            s3: S3Config {
                endpoint: Some("http://127.0.0.1:9".into()),
                access_key_id: Some("test".into()),
                secret_access_key: Some("test".into()),
                max_retries: 0,
                connect_timeout: Duration::from_millis(500),
                ..S3Config::default()
            },
            ..StorageConfig::default()
        };
        let objects = ObjectStorage::new(&config)
            .expect("storage")
            .expect("a bucket is configured");
        Fixture {
            tmp,
            resolver: resolver.with_object_storage(Arc::new(objects)),
        }
    }

    #[test]
    fn s3_urls_follow_the_bucket_list() {
        let f = s3_fixture();
        let checked = f
            .resolver
            .check("s3://inputs/clips/My%20Clip.MP4")
            .expect("allowed bucket");
        assert!(checked.is_remote());
        assert_eq!(checked.file_name().as_deref(), Some("My Clip.MP4"));
        assert_eq!(checked.to_string(), "s3://inputs/clips/My Clip.MP4");
        for (url, expected) in [
            ("s3://outputs/a.mp4", "bucket"),
            ("s3://inputs/a.exe", "extension"),
            ("s3://inputs/a//b.mp4", "invalid"),
            ("s3://inputs/../b.mp4", "invalid"),
            ("s3://inputs", "invalid"),
            ("s3://key@inputs/a.mp4", "invalid"),
        ] {
            let err = err_of(f.resolver.check(url));
            let kind = match err {
                InputError::BucketNotAllowed { .. } => "bucket",
                InputError::ExtensionNotAllowed { .. } => "extension",
                InputError::InvalidUrl { .. } => "invalid",
                _ => "other",
            };
            assert_eq!(kind, expected, "{url}: {err}");
        }
        assert_eq!(
            err_of(f.resolver.check("s3://outputs/a.mp4")).code(),
            "INVALID_VIDEO_URL"
        );
    }

    #[tokio::test]
    async fn unreachable_storage_is_a_storage_access_error() {
        let f = s3_fixture();
        let checked = f.resolver.check("s3://inputs/a.mp4").expect("allowed");
        let err = f
            .resolver
            .fetch(&checked, JOB, &CancelToken::new())
            .await
            .expect_err("nothing listens");
        assert!(matches!(err, InputError::Storage { .. }), "{err}");
        assert_eq!(err.code(), "STORAGE_ACCESS_ERROR");
        assert!(work_files(&f).is_empty());
        // A URL checked elsewhere with a bucket this resolver does not allow is refused.
        let foreign = InputUrl::S3 {
            url: S3Url::parse("s3://elsewhere/a.mp4").expect("url"),
        };
        assert!(matches!(
            f.resolver.fetch(&foreign, JOB, &CancelToken::new()).await,
            Err(InputError::BucketNotAllowed { .. })
        ));
    }

    #[test]
    fn remote_urls_follow_the_allow_list() {
        let f = fixture();
        let ok = f
            .resolver
            .check("https://a.cdn.example.com/videos/My%20Clip.webm?token=1")
            .expect("subdomain");
        assert!(ok.is_remote());
        assert_eq!(ok.file_name().as_deref(), Some("My Clip.webm"));
        assert!(f
            .resolver
            .check("https://X.B.CDN.example.com/v.mp4")
            .is_ok());
        assert!(f.resolver.check("http://127.0.0.1:8080/v.mkv").is_ok());
        for (url, expected) in [
            ("https://cdn.example.com/v.mp4", "host"),
            ("https://evilcdn.example.com/v.mp4", "host"),
            ("https://a.cdn.example.com.evil.net/v.mp4", "host"),
            ("https://127.0.0.2/v.mp4", "host"),
            ("https://user:pw@a.cdn.example.com/v.mp4", "userinfo"),
            ("https://a.cdn.example.com/v.exe", "extension"),
            ("https://a.cdn.example.com/v.mp4/", "extension"),
            ("https://a.cdn.example.com/", "extension"),
        ] {
            let err = err_of(f.resolver.check(url));
            let kind = match err {
                InputError::HostNotAllowed { .. } => "host",
                InputError::UserInfoNotAllowed => "userinfo",
                InputError::ExtensionNotAllowed { .. } => "extension",
                _ => "other",
            };
            assert_eq!(kind, expected, "{url}: {err}");
        }
    }

    #[test]
    fn plain_http_and_remote_inputs_are_off_by_default() {
        let https_only = fixture_with(|c| c.allow_http = false);
        assert!(matches!(
            err_of(https_only.resolver.check("http://127.0.0.1/v.mp4")),
            InputError::SchemeNotAllowed { .. }
        ));
        assert!(https_only.resolver.check("https://127.0.0.1/v.mp4").is_ok());
        let defaults = fixture_with(|c| {
            c.allowed_hosts = MediaConfig::default().allowed_hosts;
            c.allow_http = MediaConfig::default().allow_http;
        });
        assert!(matches!(
            err_of(defaults.resolver.check("https://a.cdn.example.com/v.mp4")),
            InputError::HostNotAllowed { .. }
        ));
    }

    #[test]
    fn bad_configuration_is_reported() {
        let tmp = tempfile::tempdir().expect("tmp");
        let base = MediaConfig {
            root: tmp.path().join("m"),
            work_dir: tmp.path().join("w"),
            ..MediaConfig::default()
        };
        for host in ["", "*.", "a..b", "exa mple.com", "*.*.com", "http://x.com"] {
            let config = MediaConfig {
                allowed_hosts: vec![host.into()],
                ..base.clone()
            };
            assert!(
                matches!(
                    InputResolver::new(&config),
                    Err(MediaInitError::HostPattern(_))
                ),
                "{host:?}"
            );
        }
        let config = MediaConfig {
            extensions: vec!["m p4".into()],
            ..base.clone()
        };
        assert!(matches!(
            InputResolver::new(&config),
            Err(MediaInitError::Extension(_))
        ));
        let config: MediaConfig = serde_json::from_str(
            r#"{"download_timeout":"90s","connect_timeout":"2s","allowed_hosts":["*.x.com"]}"#,
        )
        .expect("config");
        assert_eq!(config.download_timeout, Duration::from_secs(90));
        assert_eq!(config.extensions.len(), 5);
        assert!(serde_json::from_str::<MediaConfig>(r#"{"timeout":"1s"}"#).is_err());
    }

    #[test]
    fn error_codes_follow_the_contract() {
        assert_eq!(
            InputError::TooLarge { limit: 1 }.code(),
            "INVALID_VIDEO_URL"
        );
        assert_eq!(
            InputError::Timeout {
                after: Duration::from_secs(600)
            }
            .code(),
            "RENDERING_TIMEOUT"
        );
        assert_eq!(
            InputError::Http { status: 500 }.code(),
            "STORAGE_ACCESS_ERROR"
        );
        assert_eq!(InputError::Cancelled.code(), "JOB_CANCELLED");
        for (err, code) in [
            (
                InputError::ObjectNotFound {
                    url: "s3://a/b".into(),
                },
                "INVALID_VIDEO_URL",
            ),
            (
                InputError::ObjectAccessDenied {
                    url: "s3://a/b".into(),
                },
                "INVALID_VIDEO_URL",
            ),
            (
                InputError::BucketNotAllowed { bucket: "a".into() },
                "INVALID_VIDEO_URL",
            ),
            (
                InputError::Storage { reason: "x".into() },
                "STORAGE_ACCESS_ERROR",
            ),
        ] {
            assert_eq!(err.code(), code, "{err}");
        }
        assert_eq!(
            InputError::Timeout {
                after: Duration::from_secs(600)
            }
            .to_string(),
            "video download did not finish within 10m"
        );
    }

    /// A local server with the cases the download must handle.
    async fn serve() -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let port = addr.port();
        let app = Router::new()
            .route("/ok.mp4", get(|| async { vec![7u8; 1000] }))
            .route("/big.mp4", get(|| async { vec![0u8; 5000] }))
            .route(
                "/chunked.mp4",
                get(|| async {
                    let chunks = (0..8).map(|_| Ok::<_, io::Error>(Bytes::from(vec![1u8; 1024])));
                    Body::from_stream(tokio_stream::iter(chunks))
                }),
            )
            .route(
                "/small-chunked.mp4",
                get(|| async {
                    let chunks = (0..3).map(|_| Ok::<_, io::Error>(Bytes::from(vec![2u8; 1000])));
                    Body::from_stream(tokio_stream::iter(chunks))
                }),
            )
            .route("/missing.mp4", get(|| async { StatusCode::NOT_FOUND }))
            .route("/hop.mp4", get(|| async { Redirect::temporary("/ok.mp4") }))
            .route(
                "/away.mp4",
                get(move || async move {
                    Redirect::temporary(&format!("http://localhost:{port}/ok.mp4"))
                }),
            )
            .route(
                "/loop.mp4",
                get(|| async { Redirect::temporary("/loop.mp4") }),
            )
            .route(
                "/stall.mp4",
                get(|| async {
                    Body::from_stream(tokio_stream::pending::<Result<Bytes, io::Error>>())
                }),
            );
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        addr
    }

    async fn fetch_path(
        f: &Fixture,
        addr: SocketAddr,
        path: &str,
    ) -> Result<LocalInput, InputError> {
        let checked = f
            .resolver
            .check(&format!("http://{addr}{path}"))
            .expect("allowed");
        f.resolver.fetch(&checked, JOB, &CancelToken::new()).await
    }

    fn work_files(f: &Fixture) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(f.work())
            .expect("work dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn downloads_land_in_the_work_dir_and_vanish_on_drop() {
        let f = fixture();
        let addr = serve().await;
        let input = fetch_path(&f, addr, "/ok.mp4").await.expect("download");
        assert!(input.is_downloaded());
        assert_eq!(input.path(), f.work().join(format!("{JOB}.mp4")));
        assert_eq!(std::fs::read(input.path()).expect("read"), vec![7u8; 1000]);
        drop(input);
        assert!(work_files(&f).is_empty());

        let chunked = fetch_path(&f, addr, "/small-chunked.mp4")
            .await
            .expect("chunked");
        assert_eq!(std::fs::metadata(chunked.path()).expect("stat").len(), 3000);
        drop(chunked);

        let hopped = fetch_path(&f, addr, "/hop.mp4").await.expect("redirect");
        assert_eq!(std::fs::read(hopped.path()).expect("read").len(), 1000);
    }

    #[tokio::test]
    async fn oversized_downloads_are_refused_and_cleaned_up() {
        let f = fixture();
        let addr = serve().await;
        for path in ["/big.mp4", "/chunked.mp4"] {
            let err = fetch_path(&f, addr, path).await.expect_err(path);
            assert!(
                matches!(err, InputError::TooLarge { limit: LIMIT }),
                "{path}: {err}"
            );
            assert!(work_files(&f).is_empty(), "{path}: {:?}", work_files(&f));
        }
    }

    #[tokio::test]
    async fn http_errors_and_refused_redirects_are_reported() {
        let f = fixture();
        let addr = serve().await;
        let err = fetch_path(&f, addr, "/missing.mp4").await.expect_err("404");
        assert!(matches!(err, InputError::Http { status: 404 }), "{err}");
        let err = fetch_path(&f, addr, "/away.mp4").await.expect_err("away");
        assert!(
            matches!(&err, InputError::HostNotAllowed { host } if host == "localhost"),
            "{err}"
        );
        let err = fetch_path(&f, addr, "/loop.mp4").await.expect_err("loop");
        assert!(matches!(err, InputError::Network { .. }), "{err}");
        assert!(err.to_string().contains("redirects"), "{err}");
        assert!(work_files(&f).is_empty());
    }

    #[tokio::test]
    async fn hosts_off_the_list_are_refused_before_any_request() {
        let f = fixture();
        let addr = serve().await;
        let url = format!("http://localhost:{}/ok.mp4", addr.port());
        assert!(matches!(
            err_of(f.resolver.check(&url)),
            InputError::HostNotAllowed { .. }
        ));
        // A URL checked by a more permissive resolver is checked again at fetch time.
        let permissive = fixture_with(|c| c.allowed_hosts = vec!["localhost".into()]);
        let checked = permissive.resolver.check(&url).expect("allowed there");
        let err = f
            .resolver
            .fetch(&checked, JOB, &CancelToken::new())
            .await
            .expect_err("refused here");
        assert!(matches!(err, InputError::HostNotAllowed { .. }), "{err}");
    }

    #[tokio::test]
    async fn stalled_downloads_time_out_and_cancel() {
        let f = fixture_with(|c| c.download_timeout = Duration::from_millis(300));
        let addr = serve().await;
        let err = fetch_path(&f, addr, "/stall.mp4").await.expect_err("stall");
        assert!(matches!(err, InputError::Timeout { .. }), "{err}");
        assert!(work_files(&f).is_empty());

        let f = fixture();
        let checked = f
            .resolver
            .check(&format!("http://{addr}/stall.mp4"))
            .expect("allowed");
        let cancel = CancelToken::new();
        let trigger = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            trigger.cancel();
        });
        let started = std::time::Instant::now();
        let err = f
            .resolver
            .fetch(&checked, JOB, &cancel)
            .await
            .expect_err("cancelled");
        assert!(matches!(err, InputError::Cancelled), "{err}");
        assert!(started.elapsed() < Duration::from_secs(2));
        assert!(work_files(&f).is_empty());
    }

    #[tokio::test]
    async fn file_inputs_are_used_in_place_and_never_deleted() {
        let f = fixture();
        let video = f.media().join("keep.mp4");
        std::fs::write(&video, b"v").expect("write");
        let checked = f.resolver.check(&f.file_url(&video)).expect("ok");
        let input = f
            .resolver
            .fetch(&checked, JOB, &CancelToken::new())
            .await
            .expect("local");
        assert!(!input.is_downloaded());
        drop(input);
        assert!(video.exists());
        std::fs::remove_file(&video).expect("rm");
        let err = f
            .resolver
            .fetch(&checked, JOB, &CancelToken::new())
            .await
            .expect_err("gone");
        assert!(matches!(err, InputError::NotFound { .. }), "{err}");
    }

    #[tokio::test]
    async fn unsafe_job_ids_never_name_a_download() {
        let f = fixture();
        let checked = f
            .resolver
            .check("http://127.0.0.1:9/v.mp4")
            .expect("allowed");
        let err = f
            .resolver
            .fetch(&checked, "../../etc/x", &CancelToken::new())
            .await
            .expect_err("refused");
        assert!(matches!(err, InputError::InvalidJobId { .. }), "{err}");
    }

    #[test]
    fn stale_downloads_are_removed_at_start() {
        let f = fixture();
        std::fs::write(f.work().join(format!("{JOB}.part")), b"x").expect("write");
        std::fs::write(f.work().join(format!("{JOB}.mp4")), b"x").expect("write");
        std::fs::write(f.work().join("keep me.txt"), b"x").expect("write");
        assert_eq!(f.resolver.remove_stale_downloads().expect("clean"), 2);
        assert_eq!(work_files(&f), vec!["keep me.txt".to_owned()]);
    }
}
