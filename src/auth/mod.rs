//! Identity: JWT verification (pure, no I/O on the request path except the throttled JWKS
//! freshness check) and the tower layer that puts a [`Principal`] into request extensions.
//!
//! Tokens are accepted in two shapes: the standard one (`sub`, optional `plan`, `roles`/`role`)
//! and, when [`AuthConfig::legacy_claims`] is on, the old back end's
//! `{user_id: int|string, email, exp, type: "access"}`. Which key verifies a token is chosen by
//! the algorithm in the configured allow-list, never by the token itself.

mod error;
mod layer;
mod mint;
mod verify;

#[cfg(test)]
mod test_keys;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize, Serializer};

pub use error::{AuthConfigError, AuthError, AuthErrorKind};
pub use layer::{bearer_token, AuthLayer, AuthService, RejectFn};
pub use mint::{ensure_dev_secret, mint_hs256, MintRequest};
pub use verify::{resolve_hmac_secret, Verifier};

/// The `[auth]` configuration section.
#[derive(Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Algorithm allow-list (`HS256`, `HS384`, `HS512`, `RS256`, …, `ES256`, `ES384`, `EdDSA`).
    /// A token whose header names any other algorithm (including `none`) is rejected.
    pub algorithms: Vec<String>,
    /// Shared secret for the HMAC algorithms; its UTF-8 bytes are the key.
    #[serde(serialize_with = "serialize_redacted")]
    pub hs256_secret: Option<String>,
    /// File holding the shared secret (surrounding whitespace trimmed). Exclusive with
    /// `hs256_secret`.
    pub hs256_secret_file: Option<PathBuf>,
    /// JWK Set (JSON) with the public keys for the RSA / EC / EdDSA algorithms.
    pub jwks_file: Option<PathBuf>,
    /// How often, at most, the JWKS file's modification time is checked; a changed file is
    /// re-read (key rotation without restart). Zero checks on every verification.
    #[serde(with = "humantime_serde")]
    pub jwks_reload: Duration,
    /// Required `iss` when set.
    pub issuer: Option<String>,
    /// Accepted `aud` values; empty means the audience is not checked.
    pub audience: Vec<String>,
    /// Clock skew tolerated on `exp` and `nbf` (whole seconds).
    #[serde(with = "humantime_serde")]
    pub leeway: Duration,
    /// Accept the old back end's `user_id` claim in place of `sub`.
    pub legacy_claims: bool,
    /// The token role that grants administrator rights; it appears in [`Principal::roles`] as
    /// [`Principal::ADMIN_ROLE`].
    pub admin_role: String,
    /// Plan given to a principal whose token carries no `plan` claim.
    pub default_plan: String,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            algorithms: vec!["HS256".to_owned()],
            hs256_secret: None,
            hs256_secret_file: None,
            jwks_file: None,
            jwks_reload: Duration::from_secs(30),
            issuer: None,
            audience: Vec::new(),
            leeway: Duration::from_secs(30),
            legacy_claims: true,
            admin_role: Principal::ADMIN_ROLE.to_owned(),
            default_plan: "free".to_owned(),
        }
    }
}

impl fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let AuthConfig {
            algorithms,
            hs256_secret,
            hs256_secret_file,
            jwks_file,
            jwks_reload,
            issuer,
            audience,
            leeway,
            legacy_claims,
            admin_role,
            default_plan,
        } = self;
        f.debug_struct("AuthConfig")
            .field("algorithms", algorithms)
            .field("hs256_secret", &hs256_secret.as_ref().map(|_| REDACTED))
            .field("hs256_secret_file", hs256_secret_file)
            .field("jwks_file", jwks_file)
            .field("jwks_reload", jwks_reload)
            .field("issuer", issuer)
            .field("audience", audience)
            .field("leeway", leeway)
            .field("legacy_claims", legacy_claims)
            .field("admin_role", admin_role)
            .field("default_plan", default_plan)
            .finish()
    }
}

const REDACTED: &str = "[redacted]";

fn serialize_redacted<S: Serializer>(value: &Option<String>, s: S) -> Result<S::Ok, S::Error> {
    match value {
        Some(_) => s.serialize_some(REDACTED),
        None => s.serialize_none(),
    }
}

/// The authenticated caller, as handlers see it (from request extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// `sub`, or the legacy `user_id` rendered as a string (`42` → `"42"`).
    pub user_id: String,
    /// The `plan` claim, or the configured default plan.
    pub plan: String,
    /// `roles` (or the single `role`). The configured admin role is reported as
    /// [`Principal::ADMIN_ROLE`].
    pub roles: Vec<String>,
}

impl Principal {
    /// The role name that grants administrator rights in a `Principal`.
    pub const ADMIN_ROLE: &'static str = "admin";

    /// Administrators see and cancel every user's jobs.
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == Self::ADMIN_ROLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_is_redacted_in_debug_and_serialize() {
        let config = AuthConfig {
            hs256_secret: Some("s3cr3t-value".to_owned()),
            ..AuthConfig::default()
        };
        let debug = format!("{config:?}");
        assert!(!debug.contains("s3cr3t-value"), "{debug}");
        assert!(debug.contains(REDACTED));
        let json = serde_json::to_string(&config).expect("serialize");
        assert!(!json.contains("s3cr3t-value"), "{json}");
        assert!(json.contains(REDACTED));
    }

    #[test]
    fn config_defaults_and_durations_parse() {
        let config: AuthConfig = serde_json::from_str(
            r#"{"algorithms":["RS256"],"jwks_reload":"5s","leeway":"1m","audience":["a"]}"#,
        )
        .expect("parse");
        assert_eq!(config.algorithms, vec!["RS256"]);
        assert_eq!(config.jwks_reload, Duration::from_secs(5));
        assert_eq!(config.leeway, Duration::from_secs(60));
        assert_eq!(config.default_plan, "free");
        assert!(config.legacy_claims);
        let defaults = AuthConfig::default();
        assert_eq!(defaults.algorithms, vec!["HS256"]);
        assert_eq!(defaults.jwks_reload, Duration::from_secs(30));
        assert_eq!(defaults.leeway, Duration::from_secs(30));
        assert_eq!(defaults.admin_role, "admin");
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let parsed = serde_json::from_str::<AuthConfig>(r#"{"secret":"x"}"#);
        assert!(parsed.is_err());
    }

    #[test]
    fn admin_is_a_role() {
        let mut principal = Principal {
            user_id: "u1".into(),
            plan: "free".into(),
            roles: vec!["editor".into()],
        };
        assert!(!principal.is_admin());
        principal.roles.push("admin".into());
        assert!(principal.is_admin());
    }
}
