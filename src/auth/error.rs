//! Errors of token verification (per request) and of building the verifier (at start).
//! Messages name the problem; none of them echoes the token, a claim value or a secret.

use std::io;
use std::path::PathBuf;

/// Why a request's credentials were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("no bearer token in the authorization header")]
    Missing,
    #[error("the bearer token is malformed: {0}")]
    Malformed(&'static str),
    #[error("the token's algorithm {alg} is not allowed")]
    AlgorithmNotAllowed {
        /// The header's algorithm when it is a known name (`none` included), else `unrecognised`.
        alg: &'static str,
    },
    #[error("the token's key id matches no configured key")]
    UnknownKey,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token has no expiry (exp)")]
    MissingExpiry,
    #[error("the token's issuer is not the configured one")]
    WrongIssuer,
    #[error("the token's audience is not an accepted one")]
    WrongAudience,
    #[error("the token is not an access token")]
    NotAnAccessToken,
    #[error("the token names no subject (sub or user_id)")]
    MissingSubject,
}

/// Stable classification of [`AuthError`], for metrics and error details.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthErrorKind {
    Missing,
    Malformed,
    AlgorithmNotAllowed,
    UnknownKey,
    BadSignature,
    Expired,
    NotYetValid,
    MissingExpiry,
    WrongIssuer,
    WrongAudience,
    NotAnAccessToken,
    MissingSubject,
}

impl AuthError {
    pub fn kind(&self) -> AuthErrorKind {
        match self {
            AuthError::Missing => AuthErrorKind::Missing,
            AuthError::Malformed(_) => AuthErrorKind::Malformed,
            AuthError::AlgorithmNotAllowed { .. } => AuthErrorKind::AlgorithmNotAllowed,
            AuthError::UnknownKey => AuthErrorKind::UnknownKey,
            AuthError::BadSignature => AuthErrorKind::BadSignature,
            AuthError::Expired => AuthErrorKind::Expired,
            AuthError::NotYetValid => AuthErrorKind::NotYetValid,
            AuthError::MissingExpiry => AuthErrorKind::MissingExpiry,
            AuthError::WrongIssuer => AuthErrorKind::WrongIssuer,
            AuthError::WrongAudience => AuthErrorKind::WrongAudience,
            AuthError::NotAnAccessToken => AuthErrorKind::NotAnAccessToken,
            AuthError::MissingSubject => AuthErrorKind::MissingSubject,
        }
    }
}

impl AuthErrorKind {
    /// A stable lowerCamelCase name, suitable for `ErrorInfo` metadata values and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthErrorKind::Missing => "missing",
            AuthErrorKind::Malformed => "malformed",
            AuthErrorKind::AlgorithmNotAllowed => "algorithmNotAllowed",
            AuthErrorKind::UnknownKey => "unknownKey",
            AuthErrorKind::BadSignature => "badSignature",
            AuthErrorKind::Expired => "expired",
            AuthErrorKind::NotYetValid => "notYetValid",
            AuthErrorKind::MissingExpiry => "missingExpiry",
            AuthErrorKind::WrongIssuer => "wrongIssuer",
            AuthErrorKind::WrongAudience => "wrongAudience",
            AuthErrorKind::NotAnAccessToken => "notAnAccessToken",
            AuthErrorKind::MissingSubject => "missingSubject",
        }
    }
}

/// The `[auth]` section cannot produce a working verifier (or minter). Each message names the
/// configuration field at fault.
#[derive(Debug, thiserror::Error)]
pub enum AuthConfigError {
    #[error("auth.algorithms is empty: at least one algorithm must be allowed")]
    NoAlgorithms,
    #[error("auth.algorithms: {name:?} is not a supported JWT algorithm")]
    UnknownAlgorithm { name: String },
    #[error("auth.algorithms allows {alg} but neither auth.hs256_secret nor auth.hs256_secret_file is set")]
    MissingSecret { alg: &'static str },
    #[error("auth.hs256_secret and auth.hs256_secret_file are both set; set one")]
    ConflictingSecrets,
    #[error("auth.{field} is empty")]
    EmptySecret { field: &'static str },
    #[error("auth.hs256_secret_file {path:?} cannot be read: {source}")]
    SecretFile { path: PathBuf, source: io::Error },
    #[error("auth.algorithms allows {alg} but auth.jwks_file is not set")]
    MissingJwks { alg: &'static str },
    #[error("auth.jwks_file {path:?} cannot be read: {source}")]
    JwksRead { path: PathBuf, source: io::Error },
    #[error("auth.jwks_file {path:?} is not a valid JWK Set: {reason}")]
    JwksInvalid { path: PathBuf, reason: String },
    #[error("auth.jwks_file {path:?} has no key usable with {alg}, which auth.algorithms allows")]
    JwksNoKeyFor { path: PathBuf, alg: &'static str },
    #[error("auth.algorithms does not allow {alg}, so a token minted with it would be refused")]
    MintAlgorithmNotAllowed { alg: &'static str },
    #[error("token ttl must be longer than zero")]
    MintZeroTtl,
    #[error("signing the token failed: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_have_distinct_names() {
        let all = [
            AuthError::Missing,
            AuthError::Malformed("x"),
            AuthError::AlgorithmNotAllowed { alg: "none" },
            AuthError::UnknownKey,
            AuthError::BadSignature,
            AuthError::Expired,
            AuthError::NotYetValid,
            AuthError::MissingExpiry,
            AuthError::WrongIssuer,
            AuthError::WrongAudience,
            AuthError::NotAnAccessToken,
            AuthError::MissingSubject,
        ];
        let names: std::collections::HashSet<_> = all.iter().map(|e| e.kind().as_str()).collect();
        assert_eq!(names.len(), all.len());
    }

    #[test]
    fn config_errors_name_the_field() {
        let e = AuthConfigError::MissingJwks { alg: "RS256" };
        assert!(e.to_string().contains("auth.jwks_file"));
        let e = AuthConfigError::MissingSecret { alg: "HS256" };
        assert!(e.to_string().contains("auth.hs256_secret"));
    }
}
