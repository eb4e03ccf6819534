//! JWT verification: the allow-listed algorithm picks the key type, the JWKS supplies public
//! keys (selected by `kid`), and the claims become a [`Principal`].

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Instant, SystemTime};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::errors::ErrorKind as JwtErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, AlgorithmFamily, DecodingKey, Validation};
use serde::Deserialize;

use super::{AuthConfig, AuthConfigError, AuthError, Principal};

/// Tokens longer than this are refused before any parsing (bounded work per request).
const MAX_TOKEN_LEN: usize = 8 * 1024;

/// Verifies bearer tokens. Built once at start; `verify` is cheap and thread-safe.
pub struct Verifier {
    /// The allow-list, each with its prepared validation rules.
    allowed: Vec<(Algorithm, Validation)>,
    hmac: Option<DecodingKey>,
    jwks: Option<JwksSource>,
    legacy_claims: bool,
    admin_role: String,
    default_plan: String,
}

impl fmt::Debug for Verifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Verifier")
            .field(
                "algorithms",
                &self
                    .allowed
                    .iter()
                    .map(|(a, _)| alg_name(*a))
                    .collect::<Vec<_>>(),
            )
            .field("hmac_secret", &self.hmac.as_ref().map(|_| "[redacted]"))
            .field("jwks_file", &self.jwks.as_ref().map(|j| &j.path))
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn new(config: &AuthConfig) -> Result<Verifier, AuthConfigError> {
        let algorithms = parse_algorithms(&config.algorithms)?;

        let hmac = match algorithms
            .iter()
            .find(|a| a.family() == AlgorithmFamily::Hmac)
        {
            Some(alg) => match resolve_hmac_secret(config)? {
                Some(secret) => Some(DecodingKey::from_secret(secret.as_bytes())),
                None => {
                    return Err(AuthConfigError::MissingSecret {
                        alg: alg_name(*alg),
                    })
                }
            },
            None => None,
        };

        let asymmetric: Vec<Algorithm> = algorithms
            .iter()
            .copied()
            .filter(|a| a.family() != AlgorithmFamily::Hmac)
            .collect();
        let jwks = match (asymmetric.first(), &config.jwks_file) {
            (None, _) => None,
            (Some(alg), None) => {
                return Err(AuthConfigError::MissingJwks {
                    alg: alg_name(*alg),
                })
            }
            (Some(_), Some(path)) => Some(JwksSource::open(
                path.clone(),
                asymmetric,
                config.jwks_reload,
            )?),
        };

        let allowed = algorithms
            .into_iter()
            .map(|alg| (alg, validation_for(alg, config)))
            .collect();
        Ok(Verifier {
            allowed,
            hmac,
            jwks,
            legacy_claims: config.legacy_claims,
            admin_role: config.admin_role.clone(),
            default_plan: config.default_plan.clone(),
        })
    }

    /// Verifies a compact JWS (the part after `Bearer `) and returns who it names.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        if token.is_empty() {
            return Err(AuthError::Missing);
        }
        if token.len() > MAX_TOKEN_LEN {
            return Err(AuthError::Malformed("longer than 8 KiB"));
        }
        let header = read_header(token)?;
        let alg = Algorithm::from_str(&header.alg).map_err(|_| AuthError::AlgorithmNotAllowed {
            alg: unknown_alg_name(&header.alg),
        })?;
        let validation = self
            .allowed
            .iter()
            .find_map(|(allowed, v)| (*allowed == alg).then_some(v))
            .ok_or(AuthError::AlgorithmNotAllowed { alg: alg_name(alg) })?;

        let claims = if alg.family() == AlgorithmFamily::Hmac {
            // `new` refuses an HMAC algorithm without a secret; a missing key here is a refusal.
            let key = self
                .hmac
                .as_ref()
                .ok_or(AuthError::AlgorithmNotAllowed { alg: alg_name(alg) })?;
            decode_claims(token, key, validation, alg)?
        } else {
            let jwks = self
                .jwks
                .as_ref()
                .ok_or(AuthError::AlgorithmNotAllowed { alg: alg_name(alg) })?;
            let keys = jwks.current();
            let key = keys.select(alg, header.kid.as_deref())?;
            decode_claims(token, key, validation, alg)?
        };
        self.principal(claims)
    }

    fn principal(&self, claims: TokenClaims) -> Result<Principal, AuthError> {
        let TokenClaims {
            sub,
            user_id,
            plan,
            roles,
            role,
            token_type,
        } = claims;
        match token_type.as_deref() {
            None | Some("access") => {}
            Some(_) => return Err(AuthError::NotAnAccessToken),
        }
        let user_id = match (sub, user_id) {
            (Some(sub), _) if !sub.is_empty() => sub,
            (_, Some(legacy)) if self.legacy_claims => legacy_user_id(&legacy)?,
            _ => return Err(AuthError::MissingSubject),
        };
        let plan = plan
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| self.default_plan.clone());
        let mut normalised: Vec<String> = Vec::new();
        for name in roles.unwrap_or_default().into_iter().chain(role) {
            let name = if name == self.admin_role {
                Principal::ADMIN_ROLE.to_owned()
            } else if name == Principal::ADMIN_ROLE {
                // Only the configured admin role grants admin rights.
                continue;
            } else {
                name
            };
            if !name.is_empty() && !normalised.contains(&name) {
                normalised.push(name);
            }
        }
        Ok(Principal {
            user_id,
            plan,
            roles: normalised,
        })
    }
}

/// The claims renderd reads; anything else (e.g. the legacy `email`) is ignored.
#[derive(Deserialize)]
struct TokenClaims {
    sub: Option<String>,
    user_id: Option<serde_json::Value>,
    plan: Option<String>,
    roles: Option<Vec<String>>,
    role: Option<String>,
    #[serde(rename = "type")]
    token_type: Option<String>,
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

fn legacy_user_id(value: &serde_json::Value) -> Result<String, AuthError> {
    match value {
        serde_json::Value::Number(n) if n.is_i64() || n.is_u64() => Ok(n.to_string()),
        serde_json::Value::String(s) if !s.is_empty() => Ok(s.clone()),
        serde_json::Value::Null => Err(AuthError::MissingSubject),
        _ => Err(AuthError::Malformed(
            "user_id is neither an integer nor a string",
        )),
    }
}

/// Reads the header ourselves so that `alg: none` and unknown algorithms are reported as such
/// rather than as a parse failure.
fn read_header(token: &str) -> Result<RawHeader, AuthError> {
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(AuthError::Malformed("not three dot-separated parts"));
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| AuthError::Malformed("the header is not base64url"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| AuthError::Malformed("the header is not a JSON object with an alg"))
}

fn decode_claims(
    token: &str,
    key: &DecodingKey,
    validation: &Validation,
    alg: Algorithm,
) -> Result<TokenClaims, AuthError> {
    jsonwebtoken::decode::<TokenClaims>(token, key, validation)
        .map(|data| data.claims)
        .map_err(|e| map_jwt_error(&e, alg))
}

fn map_jwt_error(error: &jsonwebtoken::errors::Error, alg: Algorithm) -> AuthError {
    match error.kind() {
        JwtErrorKind::InvalidToken => AuthError::Malformed("not a compact JWS"),
        JwtErrorKind::Base64(_) => AuthError::Malformed("a part is not base64url"),
        JwtErrorKind::Json(_) => AuthError::Malformed("the claims have the wrong shape"),
        JwtErrorKind::Utf8(_) => AuthError::Malformed("the claims are not UTF-8"),
        JwtErrorKind::InvalidClaimFormat(_) => AuthError::Malformed("a time claim is not a number"),
        JwtErrorKind::MissingRequiredClaim(claim) => match claim.as_str() {
            "exp" => AuthError::MissingExpiry,
            "iss" => AuthError::WrongIssuer,
            "aud" => AuthError::WrongAudience,
            _ => AuthError::Malformed("a required claim is missing"),
        },
        JwtErrorKind::ExpiredSignature => AuthError::Expired,
        JwtErrorKind::ImmatureSignature => AuthError::NotYetValid,
        JwtErrorKind::InvalidIssuer => AuthError::WrongIssuer,
        JwtErrorKind::InvalidAudience => AuthError::WrongAudience,
        JwtErrorKind::InvalidAlgorithm | JwtErrorKind::MissingAlgorithm => {
            AuthError::AlgorithmNotAllowed { alg: alg_name(alg) }
        }
        // Signature mismatch, or key material that cannot verify this signature.
        _ => AuthError::BadSignature,
    }
}

fn parse_algorithms(names: &[String]) -> Result<Vec<Algorithm>, AuthConfigError> {
    if names.is_empty() {
        return Err(AuthConfigError::NoAlgorithms);
    }
    let mut algorithms = Vec::with_capacity(names.len());
    for name in names {
        let alg = Algorithm::from_str(name.trim())
            .map_err(|_| AuthConfigError::UnknownAlgorithm { name: name.clone() })?;
        if !algorithms.contains(&alg) {
            algorithms.push(alg);
        }
    }
    Ok(algorithms)
}

pub(super) fn hmac_allowed(config: &AuthConfig, alg: Algorithm) -> Result<bool, AuthConfigError> {
    Ok(parse_algorithms(&config.algorithms)?.contains(&alg))
}

/// The shared secret from `hs256_secret` or `hs256_secret_file` (exclusive), if either is set.
pub fn resolve_hmac_secret(config: &AuthConfig) -> Result<Option<String>, AuthConfigError> {
    match (&config.hs256_secret, &config.hs256_secret_file) {
        (Some(_), Some(_)) => Err(AuthConfigError::ConflictingSecrets),
        (Some(secret), None) if secret.is_empty() => Err(AuthConfigError::EmptySecret {
            field: "hs256_secret",
        }),
        (Some(secret), None) => Ok(Some(secret.clone())),
        (None, Some(path)) => {
            let text = fs::read_to_string(path).map_err(|source| AuthConfigError::SecretFile {
                path: path.clone(),
                source,
            })?;
            let secret = text.trim();
            if secret.is_empty() {
                return Err(AuthConfigError::EmptySecret {
                    field: "hs256_secret_file",
                });
            }
            Ok(Some(secret.to_owned()))
        }
        (None, None) => Ok(None),
    }
}

fn validation_for(alg: Algorithm, config: &AuthConfig) -> Validation {
    let mut validation = Validation::new(alg);
    validation.leeway = config.leeway.as_secs();
    validation.validate_exp = true;
    validation.validate_nbf = true;
    let mut required = vec!["exp"];
    if let Some(issuer) = &config.issuer {
        validation.set_issuer(&[issuer]);
        required.push("iss");
    }
    if config.audience.is_empty() {
        validation.validate_aud = false;
    } else {
        validation.set_audience(&config.audience);
        required.push("aud");
    }
    validation.set_required_spec_claims(&required);
    validation
}

pub(super) fn alg_name(alg: Algorithm) -> &'static str {
    match alg {
        Algorithm::HS256 => "HS256",
        Algorithm::HS384 => "HS384",
        Algorithm::HS512 => "HS512",
        Algorithm::ES256 => "ES256",
        Algorithm::ES384 => "ES384",
        Algorithm::RS256 => "RS256",
        Algorithm::RS384 => "RS384",
        Algorithm::RS512 => "RS512",
        Algorithm::PS256 => "PS256",
        Algorithm::PS384 => "PS384",
        Algorithm::PS512 => "PS512",
        Algorithm::EdDSA => "EdDSA",
    }
}

/// Names an algorithm jsonwebtoken does not know without echoing token text.
fn unknown_alg_name(alg: &str) -> &'static str {
    if alg.eq_ignore_ascii_case("none") {
        "none"
    } else {
        "unrecognised"
    }
}

/// One public key from the JWKS, with the algorithms it may verify.
struct JwkEntry {
    kid: Option<String>,
    algorithms: Vec<Algorithm>,
    key: DecodingKey,
}

struct KeySet {
    keys: Vec<JwkEntry>,
}

impl KeySet {
    fn parse(path: &Path, text: &str, required: &[Algorithm]) -> Result<KeySet, AuthConfigError> {
        #[derive(Deserialize)]
        struct RawSet {
            keys: Vec<serde_json::Value>,
        }
        let invalid = |reason: String| AuthConfigError::JwksInvalid {
            path: path.to_owned(),
            reason,
        };
        let raw: RawSet = serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
        let mut keys = Vec::with_capacity(raw.keys.len());
        for (index, value) in raw.keys.into_iter().enumerate() {
            let jwk: Jwk = serde_json::from_value(value)
                .map_err(|e| invalid(format!("keys[{index}]: {e}")))?;
            if jwk.common.public_key_use == Some(PublicKeyUse::Encryption) {
                continue;
            }
            let algorithms = key_algorithms(&jwk)
                .map_err(|reason| invalid(format!("keys[{index}]: {reason}")))?;
            let key =
                DecodingKey::from_jwk(&jwk).map_err(|e| invalid(format!("keys[{index}]: {e}")))?;
            keys.push(JwkEntry {
                kid: jwk.common.key_id.clone(),
                algorithms,
                key,
            });
        }
        for alg in required {
            if !keys.iter().any(|k| k.algorithms.contains(alg)) {
                return Err(AuthConfigError::JwksNoKeyFor {
                    path: path.to_owned(),
                    alg: alg_name(*alg),
                });
            }
        }
        Ok(KeySet { keys })
    }

    /// `kid` selects among the keys usable with `alg`; without a `kid` the choice must be
    /// unambiguous.
    fn select(&self, alg: Algorithm, kid: Option<&str>) -> Result<&DecodingKey, AuthError> {
        let mut usable = self.keys.iter().filter(|k| k.algorithms.contains(&alg));
        match kid {
            Some(kid) => usable
                .find(|k| k.kid.as_deref() == Some(kid))
                .map(|k| &k.key)
                .ok_or(AuthError::UnknownKey),
            None => match (usable.next(), usable.next()) {
                (Some(only), None) => Ok(&only.key),
                _ => Err(AuthError::UnknownKey),
            },
        }
    }
}

/// The algorithms a JWK may verify: its key type and curve decide, narrowed by its `alg`.
fn key_algorithms(jwk: &Jwk) -> Result<Vec<Algorithm>, String> {
    let by_type: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => AlgorithmFamily::Rsa.algorithms().to_vec(),
        AlgorithmParameters::EllipticCurve(ec) => match ec.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            EllipticCurve::P521 | EllipticCurve::Ed25519 => Vec::new(),
        },
        AlgorithmParameters::OctetKeyPair(okp) => match okp.curve {
            EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
            _ => Vec::new(),
        },
        AlgorithmParameters::OctetKey(_) => {
            return Err(
                "symmetric (oct) keys are not accepted in the JWKS; use auth.hs256_secret".into(),
            )
        }
    };
    Ok(match jwk.common.key_algorithm {
        None => by_type,
        Some(key_alg) => by_type
            .into_iter()
            .filter(|a| key_algorithm_matches(key_alg, *a))
            .collect(),
    })
}

fn key_algorithm_matches(key_alg: KeyAlgorithm, alg: Algorithm) -> bool {
    matches!(
        (key_alg, alg),
        (KeyAlgorithm::RS256, Algorithm::RS256)
            | (KeyAlgorithm::RS384, Algorithm::RS384)
            | (KeyAlgorithm::RS512, Algorithm::RS512)
            | (KeyAlgorithm::PS256, Algorithm::PS256)
            | (KeyAlgorithm::PS384, Algorithm::PS384)
            | (KeyAlgorithm::PS512, Algorithm::PS512)
            | (KeyAlgorithm::ES256, Algorithm::ES256)
            | (KeyAlgorithm::ES384, Algorithm::ES384)
            | (KeyAlgorithm::EdDSA, Algorithm::EdDSA)
    )
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

impl FileStamp {
    fn of(path: &Path) -> std::io::Result<FileStamp> {
        let meta = fs::metadata(path)?;
        Ok(FileStamp {
            modified: meta.modified().ok(),
            len: meta.len(),
        })
    }
}

/// The JWKS file and its parsed keys, re-read when the file changes. The change check touches
/// the filesystem at most once per `reload_every` (one caller wins the slot; the others use the
/// keys they have).
struct JwksSource {
    path: PathBuf,
    required: Vec<Algorithm>,
    reload_every_ms: u64,
    epoch: Instant,
    next_check_ms: AtomicU64,
    stamp: Mutex<FileStamp>,
    keys: RwLock<Arc<KeySet>>,
}

impl JwksSource {
    fn open(
        path: PathBuf,
        required: Vec<Algorithm>,
        reload_every: std::time::Duration,
    ) -> Result<JwksSource, AuthConfigError> {
        let read_error = |source| AuthConfigError::JwksRead {
            path: path.clone(),
            source,
        };
        // Stamp first: a write racing with the read is then seen as a change next time.
        let stamp = FileStamp::of(&path).map_err(read_error)?;
        let text = fs::read_to_string(&path).map_err(read_error)?;
        let keys = KeySet::parse(&path, &text, &required)?;
        let reload_every_ms = u64::try_from(reload_every.as_millis()).unwrap_or(u64::MAX);
        Ok(JwksSource {
            next_check_ms: AtomicU64::new(reload_every_ms),
            path,
            required,
            reload_every_ms,
            epoch: Instant::now(),
            stamp: Mutex::new(stamp),
            keys: RwLock::new(Arc::new(keys)),
        })
    }

    fn current(&self) -> Arc<KeySet> {
        self.reload_if_changed();
        Arc::clone(&self.keys.read().unwrap_or_else(PoisonError::into_inner))
    }

    fn reload_if_changed(&self) {
        let now_ms = u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX);
        let due = self.next_check_ms.load(Ordering::Acquire);
        if now_ms < due {
            return;
        }
        let next = now_ms.saturating_add(self.reload_every_ms);
        if self
            .next_check_ms
            .compare_exchange(due, next, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        let Ok(mut stamp) = self.stamp.try_lock() else {
            return;
        };
        let current = match FileStamp::of(&self.path) {
            Ok(current) => current,
            Err(error) => {
                tracing::warn!(path = %self.path.display(), %error, "auth.jwks_file cannot be checked; keeping the loaded keys");
                return;
            }
        };
        if current == *stamp {
            return;
        }
        // Remember the stamp even when the new file is bad, so it is reported once, not on
        // every check; the next edit is picked up again.
        *stamp = current;
        let loaded = fs::read_to_string(&self.path)
            .map_err(|source| AuthConfigError::JwksRead {
                path: self.path.clone(),
                source,
            })
            .and_then(|text| KeySet::parse(&self.path, &text, &self.required));
        match loaded {
            Ok(keys) => {
                let count = keys.keys.len();
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(keys);
                tracing::info!(path = %self.path.display(), keys = count, "auth.jwks_file reloaded");
            }
            Err(error) => {
                tracing::warn!(%error, "auth.jwks_file changed but is unusable; keeping the loaded keys");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jsonwebtoken::{encode, get_current_timestamp, EncodingKey, Header};
    use serde_json::json;

    use super::super::test_keys::*;
    use super::*;

    const SECRET: &str = "test-secret-0123456789abcdef0123456789";

    fn hs_config() -> AuthConfig {
        AuthConfig {
            hs256_secret: Some(SECRET.to_owned()),
            ..AuthConfig::default()
        }
    }

    fn now() -> u64 {
        get_current_timestamp()
    }

    fn sign(
        alg: Algorithm,
        kid: Option<&str>,
        key: &EncodingKey,
        claims: serde_json::Value,
    ) -> String {
        let mut header = Header::new(alg);
        header.kid = kid.map(str::to_owned);
        encode(&header, &claims, key).expect("sign test token")
    }

    fn hs(claims: serde_json::Value) -> String {
        sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(SECRET.as_bytes()),
            claims,
        )
    }

    fn b64(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json.as_bytes())
    }

    fn verifier(config: &AuthConfig) -> Verifier {
        Verifier::new(config).expect("verifier")
    }

    fn jwk(members: &str, kid: &str) -> String {
        format!(r#"{{{members},"kid":"{kid}","use":"sig"}}"#)
    }

    fn write_jwks(dir: &Path, keys: &[String]) -> PathBuf {
        let path = dir.join("jwks.json");
        fs::write(&path, format!(r#"{{"keys":[{}]}}"#, keys.join(","))).expect("write jwks");
        path
    }

    fn jwks_config(path: PathBuf, algorithms: &[&str]) -> AuthConfig {
        AuthConfig {
            algorithms: algorithms.iter().map(|s| (*s).to_owned()).collect(),
            jwks_file: Some(path),
            ..AuthConfig::default()
        }
    }

    #[test]
    fn standard_token_gives_principal() {
        let token = hs(
            json!({"sub": "user-7", "plan": "pro", "roles": ["editor", "admin"], "exp": now() + 60}),
        );
        let principal = verifier(&hs_config()).verify(&token).expect("valid");
        assert_eq!(principal.user_id, "user-7");
        assert_eq!(principal.plan, "pro");
        assert_eq!(principal.roles, vec!["editor", "admin"]);
        assert!(principal.is_admin());
    }

    #[test]
    fn default_plan_and_single_role() {
        let token = hs(json!({"sub": "u", "role": "viewer", "exp": now() + 60}));
        let principal = verifier(&hs_config()).verify(&token).expect("valid");
        assert_eq!(principal.plan, "free");
        assert_eq!(principal.roles, vec!["viewer"]);
        assert!(!principal.is_admin());
    }

    #[test]
    fn configured_admin_role_maps_to_admin_and_literal_admin_does_not() {
        let config = AuthConfig {
            admin_role: "superuser".into(),
            ..hs_config()
        };
        let v = verifier(&config);
        let token = hs(json!({"sub": "u", "roles": ["superuser"], "exp": now() + 60}));
        assert!(v.verify(&token).expect("valid").is_admin());
        let token = hs(json!({"sub": "u", "roles": ["admin"], "exp": now() + 60}));
        let principal = v.verify(&token).expect("valid");
        assert!(!principal.is_admin());
        assert!(principal.roles.is_empty());
    }

    #[test]
    fn legacy_shape_accepted_with_integer_or_string_user_id() {
        let v = verifier(&hs_config());
        let token =
            hs(json!({"user_id": 42, "email": "a@b.c", "exp": now() + 60, "type": "access"}));
        let principal = v.verify(&token).expect("legacy token");
        assert_eq!(principal.user_id, "42");
        assert_eq!(principal.plan, "free");
        let token = hs(json!({"user_id": "abc", "exp": now() + 60}));
        assert_eq!(v.verify(&token).expect("legacy token").user_id, "abc");
    }

    #[test]
    fn legacy_shape_refused_when_disabled() {
        let config = AuthConfig {
            legacy_claims: false,
            ..hs_config()
        };
        let token = hs(json!({"user_id": 42, "exp": now() + 60, "type": "access"}));
        assert_eq!(
            verifier(&config).verify(&token),
            Err(AuthError::MissingSubject)
        );
    }

    #[test]
    fn refresh_token_rejected() {
        let v = verifier(&hs_config());
        let token = hs(json!({"user_id": 42, "exp": now() + 60, "type": "refresh"}));
        assert_eq!(v.verify(&token), Err(AuthError::NotAnAccessToken));
        let token = hs(json!({"sub": "u", "exp": now() + 60, "type": "id"}));
        assert_eq!(v.verify(&token), Err(AuthError::NotAnAccessToken));
    }

    #[test]
    fn missing_subject_and_missing_exp() {
        let v = verifier(&hs_config());
        assert_eq!(
            v.verify(&hs(json!({"exp": now() + 60}))),
            Err(AuthError::MissingSubject)
        );
        assert_eq!(
            v.verify(&hs(json!({"sub": "", "exp": now() + 60}))),
            Err(AuthError::MissingSubject)
        );
        assert_eq!(
            v.verify(&hs(json!({"sub": "u"}))),
            Err(AuthError::MissingExpiry)
        );
    }

    #[test]
    fn expired_rejected_and_leeway_honoured() {
        let v = verifier(&hs_config()); // leeway 30 s
        let token = hs(json!({"sub": "u", "exp": now() - 120}));
        assert_eq!(v.verify(&token), Err(AuthError::Expired));
        let within_leeway = hs(json!({"sub": "u", "exp": now() - 10}));
        assert!(v.verify(&within_leeway).is_ok());
        let strict = verifier(&AuthConfig {
            leeway: Duration::ZERO,
            ..hs_config()
        });
        assert_eq!(strict.verify(&within_leeway), Err(AuthError::Expired));
    }

    #[test]
    fn not_yet_valid_rejected_and_leeway_honoured() {
        let v = verifier(&hs_config());
        let token = hs(json!({"sub": "u", "nbf": now() + 600, "exp": now() + 1200}));
        assert_eq!(v.verify(&token), Err(AuthError::NotYetValid));
        let soon = hs(json!({"sub": "u", "nbf": now() + 10, "exp": now() + 1200}));
        assert!(v.verify(&soon).is_ok());
        let strict = verifier(&AuthConfig {
            leeway: Duration::ZERO,
            ..hs_config()
        });
        assert_eq!(strict.verify(&soon), Err(AuthError::NotYetValid));
    }

    #[test]
    fn issuer_checked_when_configured() {
        let config = AuthConfig {
            issuer: Some("https://id.example".into()),
            ..hs_config()
        };
        let v = verifier(&config);
        let good = hs(json!({"sub": "u", "iss": "https://id.example", "exp": now() + 60}));
        assert!(v.verify(&good).is_ok());
        let wrong = hs(json!({"sub": "u", "iss": "https://evil.example", "exp": now() + 60}));
        assert_eq!(v.verify(&wrong), Err(AuthError::WrongIssuer));
        let missing = hs(json!({"sub": "u", "exp": now() + 60}));
        assert_eq!(v.verify(&missing), Err(AuthError::WrongIssuer));
    }

    #[test]
    fn audience_checked_when_configured_and_ignored_otherwise() {
        let config = AuthConfig {
            audience: vec!["renderd".into(), "editor".into()],
            ..hs_config()
        };
        let v = verifier(&config);
        let good = hs(json!({"sub": "u", "aud": ["other", "renderd"], "exp": now() + 60}));
        assert!(v.verify(&good).is_ok());
        let wrong = hs(json!({"sub": "u", "aud": "billing", "exp": now() + 60}));
        assert_eq!(v.verify(&wrong), Err(AuthError::WrongAudience));
        let missing = hs(json!({"sub": "u", "exp": now() + 60}));
        assert_eq!(v.verify(&missing), Err(AuthError::WrongAudience));
        // No audience configured: a token naming one is still accepted.
        assert!(verifier(&hs_config()).verify(&wrong).is_ok());
    }

    #[test]
    fn wrong_secret_is_bad_signature() {
        let token = sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(b"another-secret"),
            json!({"sub": "u", "exp": now() + 60}),
        );
        assert_eq!(
            verifier(&hs_config()).verify(&token),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn tampered_claims_are_bad_signature() {
        let token = hs(json!({"sub": "u", "exp": now() + 60}));
        let mut parts: Vec<&str> = token.split('.').collect();
        let forged = b64(&format!(r#"{{"sub":"admin","exp":{}}}"#, now() + 60));
        parts[1] = &forged;
        assert_eq!(
            verifier(&hs_config()).verify(&parts.join(".")),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn alg_none_rejected() {
        let v = verifier(&hs_config());
        let payload = b64(&format!(r#"{{"sub":"u","exp":{}}}"#, now() + 60));
        for header in [r#"{"alg":"none"}"#, r#"{"alg":"None","typ":"JWT"}"#] {
            let token = format!("{}.{payload}.", b64(header));
            assert_eq!(
                v.verify(&token),
                Err(AuthError::AlgorithmNotAllowed { alg: "none" })
            );
        }
    }

    #[test]
    fn malformed_tokens() {
        let v = verifier(&hs_config());
        assert_eq!(v.verify(""), Err(AuthError::Missing));
        for token in [
            "abc",
            "a.b",
            "a.b.c.d",
            "!!!.e30.sig",
            &format!("{}.e30.", b64("[1]")),
        ] {
            assert_eq!(
                v.verify(token).map_err(|e| e.kind()),
                Err(super::super::AuthErrorKind::Malformed),
                "{token}"
            );
        }
        assert!(matches!(
            v.verify(&"a".repeat(MAX_TOKEN_LEN + 1)),
            Err(AuthError::Malformed(_))
        ));
        let unknown = format!("{}.e30.", b64(r#"{"alg":"XS999"}"#));
        assert_eq!(
            v.verify(&unknown),
            Err(AuthError::AlgorithmNotAllowed {
                alg: "unrecognised"
            })
        );
    }

    #[test]
    fn messages_do_not_echo_token_or_secret() {
        let v = verifier(&hs_config());
        let token = sign(
            Algorithm::HS256,
            None,
            &EncodingKey::from_secret(b"x"),
            json!({"sub": "very-identifying-subject", "exp": now() + 60}),
        );
        let message = v.verify(&token).expect_err("bad signature").to_string();
        assert!(!message.contains(&token));
        assert!(!message.contains(SECRET));
        assert!(!format!("{v:?}").contains(SECRET));
    }

    #[test]
    fn algorithm_outside_allow_list_rejected() {
        let config = AuthConfig {
            algorithms: vec!["HS512".into()],
            ..hs_config()
        };
        let token = hs(json!({"sub": "u", "exp": now() + 60}));
        assert_eq!(
            verifier(&config).verify(&token),
            Err(AuthError::AlgorithmNotAllowed { alg: "HS256" })
        );
    }

    #[test]
    fn hs_rs_confusion_rejected() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_jwks(dir.path(), &[jwk(RSA_1_JWK_MEMBERS, "rsa-1")]);
        let forged_claims = json!({"sub": "attacker", "exp": now() + 60});
        let forged = sign(
            Algorithm::HS256,
            Some("rsa-1"),
            &EncodingKey::from_secret(RSA_1_PUBLIC_PEM.as_bytes()),
            forged_claims,
        );
        // RS256 only: HS256 is simply not allowed.
        let rs_only = verifier(&jwks_config(path.clone(), &["RS256"]));
        assert_eq!(
            rs_only.verify(&forged),
            Err(AuthError::AlgorithmNotAllowed { alg: "HS256" })
        );
        // Both allowed: HS256 is verified with the configured secret, never with the RSA key.
        let both = verifier(&AuthConfig {
            hs256_secret: Some(SECRET.into()),
            ..jwks_config(path, &["RS256", "HS256"])
        });
        assert_eq!(both.verify(&forged), Err(AuthError::BadSignature));
    }

    #[test]
    fn rs256_es256_eddsa_with_kid_selection() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_jwks(
            dir.path(),
            &[
                jwk(RSA_1_JWK_MEMBERS, "rsa-1"),
                jwk(RSA_2_JWK_MEMBERS, "rsa-2"),
                jwk(EC_P256_JWK_MEMBERS, "ec-1"),
                jwk(ED25519_JWK_MEMBERS, "ed-1"),
            ],
        );
        let v = verifier(&jwks_config(path, &["RS256", "ES256", "EdDSA"]));
        let claims = json!({"sub": "u", "exp": now() + 60});
        let rsa1 = EncodingKey::from_rsa_pem(RSA_1_PRIVATE_PEM.as_bytes()).expect("rsa1");
        let rsa2 = EncodingKey::from_rsa_pem(RSA_2_PRIVATE_PEM.as_bytes()).expect("rsa2");
        let ec = EncodingKey::from_ec_pem(EC_P256_PRIVATE_PEM.as_bytes()).expect("ec");
        let ed = EncodingKey::from_ed_pem(ED25519_PRIVATE_PEM.as_bytes()).expect("ed");

        for (alg, kid, key) in [
            (Algorithm::RS256, "rsa-1", &rsa1),
            (Algorithm::RS256, "rsa-2", &rsa2),
            (Algorithm::ES256, "ec-1", &ec),
            (Algorithm::EdDSA, "ed-1", &ed),
        ] {
            let token = sign(alg, Some(kid), key, claims.clone());
            assert_eq!(v.verify(&token).expect(kid).user_id, "u");
        }
        // kid selects: rsa-2's token presented as rsa-1 fails the signature.
        let mislabelled = sign(Algorithm::RS256, Some("rsa-1"), &rsa2, claims.clone());
        assert_eq!(v.verify(&mislabelled), Err(AuthError::BadSignature));
        // kid of a key of another type is unknown for this algorithm.
        let cross = sign(Algorithm::RS256, Some("ec-1"), &rsa1, claims.clone());
        assert_eq!(v.verify(&cross), Err(AuthError::UnknownKey));
        // Several RSA keys and no kid: ambiguous.
        let no_kid = sign(Algorithm::RS256, None, &rsa1, claims.clone());
        assert_eq!(v.verify(&no_kid), Err(AuthError::UnknownKey));
        // One EC key and no kid: used.
        let ec_no_kid = sign(Algorithm::ES256, None, &ec, claims.clone());
        assert!(v.verify(&ec_no_kid).is_ok());
        // Unknown kid.
        let unknown = sign(Algorithm::RS256, Some("rsa-9"), &rsa1, claims);
        assert_eq!(v.verify(&unknown), Err(AuthError::UnknownKey));
    }

    #[test]
    fn single_key_without_kid_is_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("jwks.json");
        fs::write(&path, format!(r#"{{"keys":[{{{RSA_1_JWK_MEMBERS}}}]}}"#)).expect("write");
        let v = verifier(&jwks_config(path, &["RS256"]));
        let rsa1 = EncodingKey::from_rsa_pem(RSA_1_PRIVATE_PEM.as_bytes()).expect("rsa1");
        let token = sign(
            Algorithm::RS256,
            None,
            &rsa1,
            json!({"sub": "u", "exp": now() + 60}),
        );
        assert!(v.verify(&token).is_ok());
        // A kid that the key set does not carry is unknown even with one key.
        let token = sign(
            Algorithm::RS256,
            Some("k"),
            &rsa1,
            json!({"sub": "u", "exp": now() + 60}),
        );
        assert_eq!(v.verify(&token), Err(AuthError::UnknownKey));
    }

    #[test]
    fn jwks_rotation_picks_up_new_key() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_jwks(dir.path(), &[jwk(RSA_1_JWK_MEMBERS, "old")]);
        let config = AuthConfig {
            jwks_reload: Duration::ZERO,
            ..jwks_config(path.clone(), &["RS256"])
        };
        let v = verifier(&config);
        let rsa1 = EncodingKey::from_rsa_pem(RSA_1_PRIVATE_PEM.as_bytes()).expect("rsa1");
        let rsa2 = EncodingKey::from_rsa_pem(RSA_2_PRIVATE_PEM.as_bytes()).expect("rsa2");
        let claims = json!({"sub": "u", "exp": now() + 60});
        let old = sign(Algorithm::RS256, Some("old"), &rsa1, claims.clone());
        let new = sign(Algorithm::RS256, Some("new"), &rsa2, claims);
        assert!(v.verify(&old).is_ok());
        assert_eq!(v.verify(&new), Err(AuthError::UnknownKey));

        let bump = |path: &Path| {
            let file = fs::File::options().write(true).open(path).expect("open");
            let later = SystemTime::now() + Duration::from_secs(5);
            file.set_modified(later).expect("set mtime");
        };
        write_jwks(dir.path(), &[jwk(RSA_2_JWK_MEMBERS, "new")]);
        bump(&path);
        assert!(v.verify(&new).is_ok());
        assert_eq!(v.verify(&old), Err(AuthError::UnknownKey));

        // A broken rewrite keeps the keys that work.
        fs::write(&path, "{not json").expect("write");
        let file = fs::File::options().write(true).open(&path).expect("open");
        file.set_modified(SystemTime::now() + Duration::from_secs(10))
            .expect("set mtime");
        assert!(v.verify(&new).is_ok());
    }

    #[test]
    fn jwks_reload_is_throttled() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = write_jwks(dir.path(), &[jwk(RSA_1_JWK_MEMBERS, "old")]);
        let config = AuthConfig {
            jwks_reload: Duration::from_secs(3600),
            ..jwks_config(path.clone(), &["RS256"])
        };
        let v = verifier(&config);
        let rsa2 = EncodingKey::from_rsa_pem(RSA_2_PRIVATE_PEM.as_bytes()).expect("rsa2");
        write_jwks(dir.path(), &[jwk(RSA_2_JWK_MEMBERS, "new")]);
        let token = sign(
            Algorithm::RS256,
            Some("new"),
            &rsa2,
            json!({"sub": "u", "exp": now() + 60}),
        );
        // Within the interval the file is not looked at again.
        assert_eq!(v.verify(&token), Err(AuthError::UnknownKey));
    }

    #[test]
    fn config_errors() {
        let err = |config: AuthConfig| Verifier::new(&config).expect_err("config error");
        assert!(matches!(
            err(AuthConfig::default()),
            AuthConfigError::MissingSecret { alg: "HS256" }
        ));
        assert!(matches!(
            err(AuthConfig {
                algorithms: vec![],
                ..hs_config()
            }),
            AuthConfigError::NoAlgorithms
        ));
        assert!(matches!(
            err(AuthConfig {
                algorithms: vec!["none".into()],
                ..hs_config()
            }),
            AuthConfigError::UnknownAlgorithm { .. }
        ));
        assert!(matches!(
            err(AuthConfig {
                algorithms: vec!["RS256".into()],
                ..hs_config()
            }),
            AuthConfigError::MissingJwks { alg: "RS256" }
        ));
        assert!(matches!(
            err(AuthConfig {
                hs256_secret: Some(String::new()),
                ..AuthConfig::default()
            }),
            AuthConfigError::EmptySecret { .. }
        ));
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(matches!(
            err(AuthConfig {
                hs256_secret_file: Some(dir.path().join("absent")),
                ..AuthConfig::default()
            }),
            AuthConfigError::SecretFile { .. }
        ));
        assert!(matches!(
            err(AuthConfig {
                hs256_secret_file: Some(dir.path().join("absent")),
                ..hs_config()
            }),
            AuthConfigError::ConflictingSecrets
        ));
        assert!(matches!(
            err(jwks_config(dir.path().join("absent.json"), &["RS256"])),
            AuthConfigError::JwksRead { .. }
        ));
        let garbage = dir.path().join("garbage.json");
        fs::write(&garbage, "[]").expect("write");
        assert!(matches!(
            err(jwks_config(garbage, &["RS256"])),
            AuthConfigError::JwksInvalid { .. }
        ));
        let oct = write_jwks(dir.path(), &[r#"{"kty":"oct","k":"c2VjcmV0"}"#.to_owned()]);
        assert!(matches!(
            err(jwks_config(oct, &["RS256"])),
            AuthConfigError::JwksInvalid { .. }
        ));
        let rsa_only = write_jwks(dir.path(), &[jwk(RSA_1_JWK_MEMBERS, "rsa-1")]);
        assert!(matches!(
            err(jwks_config(rsa_only, &["RS256", "ES256"])),
            AuthConfigError::JwksNoKeyFor { alg: "ES256", .. }
        ));
    }

    #[test]
    fn secret_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("secret");
        fs::write(&path, format!("{SECRET}\n")).expect("write");
        let v = verifier(&AuthConfig {
            hs256_secret_file: Some(path),
            ..AuthConfig::default()
        });
        assert!(v
            .verify(&hs(json!({"sub": "u", "exp": now() + 60})))
            .is_ok());
    }
}
