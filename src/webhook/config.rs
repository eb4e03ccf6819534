//! `[webhooks]`: which callback URLs jobs may name, how events are signed, retried and bounded.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::signer::{Signer, SignerError};
use crate::media::HostPattern;

/// Longest `callback_url` accepted, in characters.
pub const MAX_CALLBACK_URL_CHARS: usize = 2048;

/// `[webhooks]` of the configuration.
#[derive(Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Hosts a `callback_url` may point at: exact names (`hooks.example.com`), IP addresses,
    /// or `*.example.com` for its subdomains. Empty: webhooks are off and callback URLs refused.
    pub allowed_hosts: Vec<String>,
    /// Hosts (same patterns, each also needing `allowed_hosts`) for which plain `http://` is
    /// accepted, e.g. `127.0.0.1` for tests. Every other callback must be `https://`.
    pub insecure_hosts: Vec<String>,
    /// The HMAC-SHA256 signing secret itself; prefer `signing_secret_file`.
    pub signing_secret: Option<String>,
    /// A file holding the signing secret (surrounding whitespace ignored).
    pub signing_secret_file: Option<PathBuf>,
    /// Longest a delivery attempt may take, connect to last byte.
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// How long after the state change an event is retried before it is marked failed.
    #[serde(with = "humantime_serde")]
    pub deadline: Duration,
    /// The wait after the first failed attempt; it doubles per attempt (plus up to 100 %
    /// jitter), up to `backoff_max`.
    #[serde(with = "humantime_serde")]
    pub backoff_base: Duration,
    #[serde(with = "humantime_serde")]
    pub backoff_max: Duration,
    /// How often the outbox is checked for due events when nothing wakes the task earlier.
    #[serde(with = "humantime_serde")]
    pub poll_interval: Duration,
    /// Deliveries in flight at once on this replica.
    pub max_in_flight: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            allowed_hosts: Vec::new(),
            insecure_hosts: Vec::new(),
            signing_secret: None,
            signing_secret_file: None,
            timeout: Duration::from_secs(10),
            deadline: crate::store::DEFAULT_WEBHOOK_DEADLINE,
            backoff_base: Duration::from_secs(5),
            backoff_max: Duration::from_secs(60 * 60),
            poll_interval: Duration::from_secs(1),
            max_in_flight: 16,
        }
    }
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let WebhookConfig {
            allowed_hosts,
            insecure_hosts,
            signing_secret,
            signing_secret_file,
            timeout,
            deadline,
            backoff_base,
            backoff_max,
            poll_interval,
            max_in_flight,
        } = self;
        f.debug_struct("WebhookConfig")
            .field("allowed_hosts", allowed_hosts)
            .field("insecure_hosts", insecure_hosts)
            .field("signing_secret", &signing_secret.as_ref().map(|_| "***"))
            .field("signing_secret_file", signing_secret_file)
            .field("timeout", timeout)
            .field("deadline", deadline)
            .field("backoff_base", backoff_base)
            .field("backoff_max", backoff_max)
            .field("poll_interval", poll_interval)
            .field("max_in_flight", max_in_flight)
            .finish()
    }
}

/// A `[webhooks]` section that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WebhookConfigError {
    #[error(
        "webhooks.{list} entry '{entry}' is not a host name, an IP address or a '*.domain' pattern"
    )]
    HostPattern { list: &'static str, entry: String },
    #[error("webhooks.insecure_hosts entry '{0}' is not also in webhooks.allowed_hosts")]
    InsecureNotAllowed(String),
    #[error("webhooks.signing_secret and webhooks.signing_secret_file are both set; keep one")]
    TwoSecrets,
    #[error("cannot read webhooks.signing_secret_file {path}: {source}")]
    SecretFile {
        path: String,
        source: std::io::Error,
    },
    #[error("webhooks.allowed_hosts is set but no signing secret is configured (webhooks.signing_secret_file)")]
    NoSecret,
    #[error("webhooks signing secret: {0}")]
    Secret(#[from] SignerError),
    #[error("webhooks.{field} {message}")]
    Invalid {
        field: &'static str,
        message: &'static str,
    },
}

/// Why a `callback_url` is refused (reported as a field violation on `callback_url`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackUrlError {
    #[error("webhooks are not enabled on this server (no allowed hosts)")]
    Disabled,
    #[error("longer than {MAX_CALLBACK_URL_CHARS} characters")]
    TooLong,
    #[error("not an absolute URL: {0}")]
    Parse(String),
    #[error("scheme '{0}' is not allowed (use https)")]
    Scheme(String),
    #[error("plain http is not allowed for host '{0}' (use https)")]
    Insecure(String),
    #[error("user info (name or password) is not allowed in the URL")]
    UserInfo,
    #[error("host '{0}' is not in the webhook allow-list")]
    HostNotAllowed(String),
}

/// The rules a `callback_url` must pass, parsed once from `[webhooks]`.
#[derive(Debug, Clone)]
pub struct CallbackPolicy {
    allowed: Vec<HostPattern>,
    insecure: Vec<HostPattern>,
}

impl CallbackPolicy {
    pub fn new(config: &WebhookConfig) -> Result<Self, WebhookConfigError> {
        let parse = |list, entries: &[String]| {
            entries
                .iter()
                .map(|entry| {
                    HostPattern::parse(entry).ok_or_else(|| WebhookConfigError::HostPattern {
                        list,
                        entry: entry.to_owned(),
                    })
                })
                .collect::<Result<Vec<_>, _>>()
        };
        let allowed = parse("allowed_hosts", &config.allowed_hosts)?;
        let insecure = parse("insecure_hosts", &config.insecure_hosts)?;
        if let Some((entry, _)) = config
            .insecure_hosts
            .iter()
            .zip(&insecure)
            .find(|(_, pattern)| !allowed.contains(pattern))
        {
            return Err(WebhookConfigError::InsecureNotAllowed(entry.clone()));
        }
        Ok(Self { allowed, insecure })
    }

    pub fn enabled(&self) -> bool {
        !self.allowed.is_empty()
    }

    /// Checks a request's `callback_url`: `Ok(None)` for an empty one (no webhook), else the
    /// URL as it will be called.
    pub fn check(&self, raw: &str) -> Result<Option<String>, CallbackUrlError> {
        if raw.is_empty() {
            return Ok(None);
        }
        if raw.chars().count() > MAX_CALLBACK_URL_CHARS {
            return Err(CallbackUrlError::TooLong);
        }
        if !self.enabled() {
            return Err(CallbackUrlError::Disabled);
        }
        let url = Url::parse(raw).map_err(|e| CallbackUrlError::Parse(e.to_string()))?;
        let host = url.host_str().unwrap_or_default().to_owned();
        match url.scheme() {
            "https" => {}
            "http" => {
                if !self.insecure.iter().any(|p| p.matches(&host)) {
                    return Err(CallbackUrlError::Insecure(host));
                }
            }
            other => return Err(CallbackUrlError::Scheme(other.to_owned())),
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(CallbackUrlError::UserInfo);
        }
        if host.is_empty() || !self.allowed.iter().any(|p| p.matches(&host)) {
            return Err(CallbackUrlError::HostNotAllowed(host));
        }
        let normalised = url.to_string();
        if normalised.chars().count() > MAX_CALLBACK_URL_CHARS {
            return Err(CallbackUrlError::TooLong);
        }
        Ok(Some(normalised))
    }

    /// The field violation for a request's `callback_url`, if it is refused.
    pub fn violation(&self, raw: &str) -> Option<(String, String)> {
        self.check(raw)
            .err()
            .map(|err| ("callback_url".to_owned(), err.to_string()))
    }
}

impl WebhookConfig {
    /// Checks the numbers; the host lists are checked by [`CallbackPolicy::new`].
    pub fn validate(&self) -> Result<(), WebhookConfigError> {
        let invalid = |field, message| Err(WebhookConfigError::Invalid { field, message });
        if self.timeout.is_zero() {
            return invalid("timeout", "must be positive");
        }
        if self.backoff_base.is_zero() {
            return invalid("backoff_base", "must be positive");
        }
        if self.backoff_max < self.backoff_base {
            return invalid("backoff_max", "must be at least backoff_base");
        }
        if self.poll_interval.is_zero() {
            return invalid("poll_interval", "must be positive");
        }
        if self.deadline.is_zero() {
            return invalid("deadline", "must be positive");
        }
        if !(1..=1024).contains(&self.max_in_flight) {
            return invalid("max_in_flight", "must be 1–1024");
        }
        Ok(())
    }

    /// The signer for the configured secret; `None` when none is configured and webhooks are
    /// off. Enabling webhooks without a secret is an error.
    pub fn signer(&self) -> Result<Option<Signer>, WebhookConfigError> {
        let secret = match (&self.signing_secret, &self.signing_secret_file) {
            (Some(_), Some(_)) => return Err(WebhookConfigError::TwoSecrets),
            (Some(secret), None) => Some(secret.trim().as_bytes().to_vec()),
            (None, Some(path)) => Some(
                std::fs::read_to_string(path)
                    .map_err(|source| WebhookConfigError::SecretFile {
                        path: path.display().to_string(),
                        source,
                    })?
                    .trim()
                    .as_bytes()
                    .to_vec(),
            ),
            (None, None) => None,
        };
        match secret {
            Some(secret) => Ok(Some(Signer::new(&secret)?)),
            None if self.allowed_hosts.is_empty() => Ok(None),
            None => Err(WebhookConfigError::NoSecret),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(allowed: &[&str], insecure: &[&str]) -> CallbackPolicy {
        CallbackPolicy::new(&WebhookConfig {
            allowed_hosts: allowed.iter().map(|s| (*s).to_owned()).collect(),
            insecure_hosts: insecure.iter().map(|s| (*s).to_owned()).collect(),
            ..WebhookConfig::default()
        })
        .expect("policy")
    }

    #[test]
    fn callback_urls_must_be_https_on_an_allowed_host() {
        let p = policy(
            &["hooks.example.com", "*.corp.example", "127.0.0.1"],
            &["127.0.0.1"],
        );
        assert_eq!(p.check(""), Ok(None));
        assert_eq!(
            p.check("https://hooks.example.com/renderd?x=1"),
            Ok(Some("https://hooks.example.com/renderd?x=1".to_owned()))
        );
        assert!(p.check("https://a.corp.example/h").is_ok());
        assert!(
            p.check("http://127.0.0.1:8080/h").is_ok(),
            "insecure loopback"
        );
        assert_eq!(
            p.check("http://hooks.example.com/h"),
            Err(CallbackUrlError::Insecure("hooks.example.com".into()))
        );
        assert_eq!(
            p.check("ftp://hooks.example.com/h"),
            Err(CallbackUrlError::Scheme("ftp".into()))
        );
        assert_eq!(
            p.check("https://evil.example.net/h"),
            Err(CallbackUrlError::HostNotAllowed("evil.example.net".into()))
        );
        assert_eq!(
            p.check("https://corp.example/h"),
            Err(CallbackUrlError::HostNotAllowed("corp.example".into())),
            "*.domain covers subdomains only"
        );
        assert_eq!(
            p.check("https://user:pw@hooks.example.com/h"),
            Err(CallbackUrlError::UserInfo)
        );
        assert!(matches!(
            p.check("not a url"),
            Err(CallbackUrlError::Parse(_))
        ));
        let long = format!(
            "https://hooks.example.com/{}",
            "a".repeat(MAX_CALLBACK_URL_CHARS)
        );
        assert_eq!(p.check(&long), Err(CallbackUrlError::TooLong));
    }

    #[test]
    fn without_allowed_hosts_callbacks_are_refused() {
        let p = policy(&[], &[]);
        assert!(!p.enabled());
        assert_eq!(p.check(""), Ok(None));
        assert_eq!(
            p.check("https://hooks.example.com/h"),
            Err(CallbackUrlError::Disabled)
        );
    }

    #[test]
    fn bad_host_lists_name_the_entry() {
        let err = CallbackPolicy::new(&WebhookConfig {
            allowed_hosts: vec!["hooks example".into()],
            ..WebhookConfig::default()
        })
        .expect_err("a space");
        assert!(
            err.to_string()
                .contains("allowed_hosts entry 'hooks example'"),
            "{err}"
        );
        let err = CallbackPolicy::new(&WebhookConfig {
            allowed_hosts: vec!["hooks.example.com".into()],
            insecure_hosts: vec!["127.0.0.1".into()],
            ..WebhookConfig::default()
        })
        .expect_err("insecure but not allowed");
        assert!(matches!(err, WebhookConfigError::InsecureNotAllowed(h) if h == "127.0.0.1"));
    }

    #[test]
    fn the_secret_comes_from_the_file_and_is_redacted() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        std::fs::write(&path, "whsec_from_file\n").expect("write");
        let config = WebhookConfig {
            allowed_hosts: vec!["hooks.example.com".into()],
            signing_secret_file: Some(path),
            ..WebhookConfig::default()
        };
        let signer = config.signer().expect("readable").expect("configured");
        let expected = Signer::new(b"whsec_from_file").expect("key");
        assert_eq!(
            signer.header(7, b"{}"),
            expected.header(7, b"{}"),
            "newline trimmed"
        );

        let inline = WebhookConfig {
            signing_secret: Some("hunter2".into()),
            ..WebhookConfig::default()
        };
        let shown = format!("{inline:?}");
        assert!(
            !shown.contains("hunter2") && shown.contains("***"),
            "{shown}"
        );

        let missing = WebhookConfig {
            allowed_hosts: vec!["hooks.example.com".into()],
            ..WebhookConfig::default()
        };
        assert!(matches!(
            missing.signer(),
            Err(WebhookConfigError::NoSecret)
        ));
        assert!(WebhookConfig::default().signer().expect("off").is_none());
    }

    #[test]
    fn numbers_are_validated() {
        assert!(WebhookConfig::default().validate().is_ok());
        let err = WebhookConfig {
            backoff_max: Duration::from_millis(1),
            ..WebhookConfig::default()
        }
        .validate()
        .expect_err("max below base");
        assert!(err.to_string().contains("webhooks.backoff_max"), "{err}");
    }
}
