//! Minting HS256 tokens with the configured secret (`renderd token`, tests) and the
//! development secret that `renderd serve` generates on first start.

use std::fs;
use std::io::{self, Read as _, Write as _};
use std::path::Path;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{encode, get_current_timestamp, Algorithm, EncodingKey, Header};
use serde::Serialize;

use super::verify::{alg_name, hmac_allowed, resolve_hmac_secret};
use super::{AuthConfig, AuthConfigError};

/// What a minted token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MintRequest {
    pub user_id: String,
    pub plan: Option<String>,
    pub roles: Vec<String>,
    /// Lifetime from now; whole seconds, at least one.
    pub ttl: Duration,
}

#[derive(Serialize)]
struct MintedClaims<'a> {
    sub: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    plan: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    roles: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<serde_json::Value>,
    iat: u64,
    nbf: u64,
    exp: u64,
}

/// Signs an HS256 access token for `req` with the configured secret, carrying the configured
/// issuer and audience so that the same configuration's [`super::Verifier`] accepts it.
pub fn mint_hs256(config: &AuthConfig, req: &MintRequest) -> Result<String, AuthConfigError> {
    const ALG: Algorithm = Algorithm::HS256;
    if !hmac_allowed(config, ALG)? {
        return Err(AuthConfigError::MintAlgorithmNotAllowed { alg: alg_name(ALG) });
    }
    let secret = resolve_hmac_secret(config)?
        .ok_or(AuthConfigError::MissingSecret { alg: alg_name(ALG) })?;
    let ttl = req.ttl.as_secs();
    if ttl == 0 {
        return Err(AuthConfigError::MintZeroTtl);
    }
    let now = get_current_timestamp();
    let aud = match config.audience.as_slice() {
        [] => None,
        [one] => Some(serde_json::Value::String(one.clone())),
        many => Some(serde_json::Value::from(many.to_vec())),
    };
    let claims = MintedClaims {
        sub: &req.user_id,
        plan: req.plan.as_deref(),
        roles: &req.roles,
        iss: config.issuer.as_deref(),
        aud,
        iat: now,
        nbf: now,
        exp: now.saturating_add(ttl),
    };
    let token = encode(
        &Header::new(ALG),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?;
    Ok(token)
}

/// Returns the development secret kept in `path`, creating it first when absent: 32 random
/// bytes from the OS, base64url, in a file only the owner may read (mode 0600 on Unix).
/// Concurrent first starts agree on one secret: the file is published with a no-clobber link.
pub fn ensure_dev_secret(path: &Path) -> io::Result<String> {
    match read_secret(path) {
        Ok(secret) => return Ok(secret),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent)?;
    }
    let mut bytes = [0u8; 32];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    let secret = URL_SAFE_NO_PAD.encode(bytes);

    let mut temp_name = path.as_os_str().to_owned();
    temp_name.push(format!(".tmp-{}", std::process::id()));
    let temp = Path::new(&temp_name);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let written = options.open(temp).and_then(|mut file| {
        file.write_all(secret.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    });
    let published = written.and_then(|()| fs::hard_link(temp, path));
    // The temporary name is never needed afterwards, whatever happened.
    let _ = fs::remove_file(temp);
    match published {
        Ok(()) => Ok(secret),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => read_secret(path),
        Err(e) => Err(e),
    }
}

fn read_secret(path: &Path) -> io::Result<String> {
    let text = fs::read_to_string(path)?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("the development secret file {} is empty", path.display()),
        ));
    }
    Ok(secret.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::{AuthError, Verifier};

    fn config(secret: &str) -> AuthConfig {
        AuthConfig {
            hs256_secret: Some(secret.to_owned()),
            ..AuthConfig::default()
        }
    }

    fn request() -> MintRequest {
        MintRequest {
            user_id: "user-1".into(),
            plan: Some("pro".into()),
            roles: vec!["admin".into()],
            ttl: Duration::from_secs(3600),
        }
    }

    #[test]
    fn minted_token_verifies_with_same_config() {
        let config = AuthConfig {
            issuer: Some("renderd".into()),
            audience: vec!["renderd-api".into()],
            ..config("mint-secret")
        };
        let token = mint_hs256(&config, &request()).expect("mint");
        let principal = Verifier::new(&config)
            .expect("verifier")
            .verify(&token)
            .expect("verify");
        assert_eq!(principal.user_id, "user-1");
        assert_eq!(principal.plan, "pro");
        assert!(principal.is_admin());

        let other = Verifier::new(&AuthConfig {
            issuer: Some("renderd".into()),
            audience: vec!["renderd-api".into()],
            ..self::config("other-secret")
        })
        .expect("verifier");
        assert_eq!(other.verify(&token), Err(AuthError::BadSignature));
    }

    #[test]
    fn minted_claims_shape() {
        let token = mint_hs256(&config("s"), &request()).expect("mint");
        let payload = token.split('.').nth(1).expect("payload");
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("b64")).expect("json");
        assert_eq!(claims["sub"], "user-1");
        assert_eq!(claims["roles"], serde_json::json!(["admin"]));
        let iat = claims["iat"].as_u64().expect("iat");
        assert_eq!(claims["exp"].as_u64(), Some(iat + 3600));
        assert!(claims.get("iss").is_none());
        assert!(claims.get("aud").is_none());
    }

    #[test]
    fn mint_errors() {
        assert!(matches!(
            mint_hs256(&AuthConfig::default(), &request()),
            Err(AuthConfigError::MissingSecret { .. })
        ));
        let rs_only = AuthConfig {
            algorithms: vec!["RS256".into()],
            ..config("s")
        };
        assert!(matches!(
            mint_hs256(&rs_only, &request()),
            Err(AuthConfigError::MintAlgorithmNotAllowed { alg: "HS256" })
        ));
        let zero = MintRequest {
            ttl: Duration::from_millis(500),
            ..request()
        };
        assert!(matches!(
            mint_hs256(&config("s"), &zero),
            Err(AuthConfigError::MintZeroTtl)
        ));
    }

    #[test]
    fn dev_secret_generated_once_and_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested").join("dev-secret");
        let first = ensure_dev_secret(&path).expect("generate");
        assert_eq!(URL_SAFE_NO_PAD.decode(&first).expect("base64url").len(), 32);
        let second = ensure_dev_secret(&path).expect("read back");
        assert_eq!(first, second);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let entries = fs::read_dir(path.parent().expect("parent"))
            .expect("dir")
            .count();
        assert_eq!(entries, 1, "temporary file left behind");

        let other = ensure_dev_secret(&dir.path().join("other")).expect("generate");
        assert_ne!(first, other);

        // The generated secret works as the configured one.
        let config = config(&first);
        let token = mint_hs256(&config, &request()).expect("mint");
        assert!(Verifier::new(&config)
            .expect("verifier")
            .verify(&token)
            .is_ok());
    }

    #[test]
    fn empty_dev_secret_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("dev-secret");
        fs::write(&path, "\n").expect("write");
        let err = ensure_dev_secret(&path).expect_err("empty");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    }
}
