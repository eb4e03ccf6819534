//! One typed, validated configuration tree, layered: embedded defaults → optional TOML file →
//! `RENDERD__SECTION__KEY` environment variables. Read once at start; nothing reads the
//! environment afterwards.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::AuthConfig;
use crate::compose::ComposeOptions;
use crate::gpu::GpuConfig;
use crate::media::assets::AssetConfig;
use crate::media::storage::StorageConfig;
use crate::media::{MediaConfig, OutputConfig};
use crate::pipeline::EncoderChoice;
use crate::queue::WorkerConfig;
use crate::quota::{QuotaConfig, RateLimitConfig};
use crate::scene::Limits;
use crate::telemetry::TelemetryConfig;
use crate::webhook::WebhookConfig;

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub auth: AuthConfig,
    pub quota: QuotaConfig,
    pub rate_limit: RateLimitConfig,
    pub media: MediaConfig,
    pub output: OutputConfig,
    pub worker: WorkerConfig,
    pub render: RenderConfig,
    pub output_limits: OutputLimits,
    pub limits: Limits,
    pub gpu: GpuConfig,
    pub fonts: FontsConfig,
    pub compose: ComposeOptions,
    pub assets: AssetConfig,
    pub telemetry: TelemetryConfig,
    pub webhooks: WebhookConfig,
    pub storage: StorageConfig,
}

/// `[server]`: the one port that serves gRPC, health, reflection and downloads.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Largest request or response message (a scenario is at most 5 MB).
    pub max_message_bytes: usize,
    /// HTTP/2 streams one connection may have open at once.
    pub max_concurrent_streams: u32,
    /// StatusStream streams open on this replica at once; more are RESOURCE_EXHAUSTED.
    pub max_status_streams: usize,
    /// Longest unary call (streams are bounded by their job instead).
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// HTTP/2 keep-alive pings to idle clients, so dead connections are noticed.
    #[serde(with = "humantime_serde")]
    pub http2_keepalive: Duration,
    /// Browser origins (`https://editor.example.com`) allowed to call from a page: gRPC-Web and
    /// REST CORS, and the only origins whose `access_token` cookie is accepted. Empty: none.
    pub allowed_origins: Vec<String>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 50051)),
            max_message_bytes: 8 * 1024 * 1024,
            max_concurrent_streams: 2048,
            max_status_streams: 20_000,
            request_timeout: Duration::from_secs(30),
            http2_keepalive: Duration::from_secs(30),
            allowed_origins: Vec::new(),
        }
    }
}

/// `[database]`: where jobs live.
#[derive(Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://path?mode=rwc` (default, a file under ./data) or `postgres://…` (several
    /// replicas sharing one queue).
    pub url: String,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: crate::store::DEFAULT_DATABASE_URL.to_owned(),
        }
    }
}

impl std::fmt::Debug for DatabaseConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DatabaseConfig")
            .field("url", &crate::store::masked_url(&self.url))
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RenderConfig {
    /// Default quality 10–100 when a request gives none (the old system's default: 90).
    pub quality: u8,
    pub encoder: EncoderChoice,
    /// libx264 preset.
    pub x264_preset: String,
    /// Frames the GPU keeps in flight (decode, GPU work and encode overlap).
    pub frames_in_flight: usize,
}

impl Default for RenderConfig {
    fn default() -> Self {
        RenderConfig {
            quality: 90,
            encoder: EncoderChoice::Auto,
            x264_preset: "veryfast".into(),
            frames_in_flight: 3,
        }
    }
}

/// Bounds on requested output options (the old system's values, CONTRACT.md).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutputLimits {
    pub min_width: u32,
    pub min_height: u32,
    pub max_width: u32,
    pub max_height: u32,
    pub min_fps: u32,
    pub max_fps: u32,
    pub min_quality: u8,
    pub max_quality: u8,
}

impl Default for OutputLimits {
    fn default() -> Self {
        OutputLimits {
            min_width: 480,
            min_height: 360,
            max_width: 3840,
            max_height: 2160,
            min_fps: 1,
            max_fps: 60,
            min_quality: 10,
            max_quality: 100,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct FontsConfig {
    /// Extra font files (TTF/OTF/TTC) loaded besides the system fonts.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(#[from] config::ConfigError),
    #[error("configuration: {field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
}

/// Requested output options, validated against [`OutputLimits`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputRequest {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub fps: Option<u32>,
    pub quality: Option<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OptionsError {
    #[error("{field} {value} is outside {min}…{max}")]
    OutOfRange {
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    #[error("{field} {value} must be even (yuv420p)")]
    Odd { field: &'static str, value: u32 },
}

impl OutputLimits {
    pub fn check(&self, req: &OutputRequest) -> Result<(), OptionsError> {
        let range = |field, v: Option<u64>, min: u64, max: u64| match v {
            Some(v) if v < min || v > max => Err(OptionsError::OutOfRange {
                field,
                value: v,
                min,
                max,
            }),
            _ => Ok(()),
        };
        range(
            "width",
            req.width.map(u64::from),
            self.min_width.into(),
            self.max_width.into(),
        )?;
        range(
            "height",
            req.height.map(u64::from),
            self.min_height.into(),
            self.max_height.into(),
        )?;
        range(
            "fps",
            req.fps.map(u64::from),
            self.min_fps.into(),
            self.max_fps.into(),
        )?;
        range(
            "quality",
            req.quality.map(u64::from),
            self.min_quality.into(),
            self.max_quality.into(),
        )?;
        for (field, v) in [("width", req.width), ("height", req.height)] {
            if let Some(v) = v.filter(|v| v % 2 == 1) {
                return Err(OptionsError::Odd { field, value: v });
            }
        }
        Ok(())
    }
}

impl Config {
    /// Defaults → `file` (if given) → `RENDERD__SECTION__KEY` from `env`.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        Self::load_with_env(file, std::env::vars())
    }

    pub fn load_with_env(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let defaults = config::Config::try_from(&Config::default())?;
        let mut builder = config::Config::builder().add_source(defaults);
        if let Some(path) = file {
            builder = builder.add_source(
                config::File::from(path)
                    .format(config::FileFormat::Toml)
                    .required(true),
            );
        }
        let env: std::collections::HashMap<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("RENDERD__"))
            .collect();
        builder = builder.add_source(
            config::Environment::with_prefix("RENDERD")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        let cfg: Config = builder.build()?.try_deserialize()?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, message: &str| {
            Err(ConfigError::Invalid {
                field,
                message: message.to_string(),
            })
        };
        if let Err(err) = self.quota.validate() {
            return Err(ConfigError::Invalid {
                field: "quota",
                message: err.to_string(),
            });
        }
        if let Err(message) = self.worker.validate() {
            return Err(ConfigError::Invalid {
                field: "worker",
                message,
            });
        }
        if let Err(message) = self.telemetry.validate() {
            return Err(ConfigError::Invalid {
                field: "telemetry",
                message,
            });
        }
        if self.server.max_message_bytes < 64 * 1024 {
            return invalid("server.max_message_bytes", "must be at least 64 KiB");
        }
        if self.server.request_timeout.is_zero() {
            return invalid("server.request_timeout", "must be positive");
        }
        if !(1..=16).contains(&self.render.frames_in_flight) {
            return invalid("render.frames_in_flight", "must be 1–16");
        }
        let l = &self.output_limits;
        if l.min_width > l.max_width
            || l.min_height > l.max_height
            || l.min_fps > l.max_fps
            || l.min_quality > l.max_quality
        {
            return invalid("output_limits", "a minimum is above its maximum");
        }
        if !(l.min_quality..=l.max_quality).contains(&self.render.quality) {
            return invalid("render.quality", "outside output_limits");
        }
        let a = &self.assets;
        if a.max_bytes == 0 || a.max_dimension == 0 || a.max_frames == 0 {
            return invalid(
                "assets",
                "max_bytes, max_dimension and max_frames must be positive",
            );
        }
        if a.max_dimension > crate::media::assets::MAX_DIMENSION {
            return invalid("assets.max_dimension", "must be at most 16384");
        }
        if let Some(h) = self.compose.css_stage_height {
            if !(h.is_finite() && h >= 1.0) {
                return invalid(
                    "compose.css_stage_height",
                    "must be a positive number of CSS px",
                );
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate() {
        let cfg = Config::load_with_env(None, Vec::new()).expect("defaults");
        assert_eq!(cfg.render.quality, 90);
        assert_eq!(cfg.output_limits.max_width, 3840);
        assert_eq!(cfg.assets.plugin_dir, PathBuf::from("./data/plugins"));
    }

    #[test]
    fn file_then_env_layering() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("renderd.toml");
        std::fs::write(&path, "[render]\nquality = 70\nx264_preset = \"fast\"\n").expect("write");
        let env = vec![("RENDERD__RENDER__QUALITY".to_string(), "55".to_string())];
        let cfg = Config::load_with_env(Some(&path), env).expect("layered");
        assert_eq!(cfg.render.quality, 55, "env wins over the file");
        assert_eq!(cfg.render.x264_preset, "fast", "file wins over defaults");
    }

    #[test]
    fn invalid_values_name_the_field() {
        let env = vec![(
            "RENDERD__RENDER__FRAMES_IN_FLIGHT".to_string(),
            "0".to_string(),
        )];
        let err = Config::load_with_env(None, env).expect_err("0 frames in flight");
        assert!(err.to_string().contains("render.frames_in_flight"), "{err}");
    }

    #[test]
    fn output_options_are_range_checked() {
        let l = OutputLimits::default();
        let ok = OutputRequest {
            width: Some(1920),
            height: Some(1080),
            fps: Some(30),
            quality: Some(90),
        };
        assert_eq!(l.check(&ok), Ok(()));
        let too_wide = OutputRequest {
            width: Some(4000),
            ..ok
        };
        assert_eq!(
            l.check(&too_wide),
            Err(OptionsError::OutOfRange {
                field: "width",
                value: 4000,
                min: 480,
                max: 3840
            })
        );
        assert!(matches!(
            l.check(&OutputRequest { fps: Some(0), ..ok }),
            Err(OptionsError::OutOfRange { field: "fps", .. })
        ));
        assert!(matches!(
            l.check(&OutputRequest {
                width: Some(1281),
                ..ok
            }),
            Err(OptionsError::Odd { .. })
        ));
    }
}
