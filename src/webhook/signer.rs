//! Stripe-style signatures: `Renderd-Signature: t=<unix seconds>,v1=<hex>` where the hex is
//! HMAC-SHA256(secret, "<t>.<body>"). The timestamp is signed too, so a receiver that checks
//! it against its clock refuses replays of old deliveries.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header carrying the event's id, the same in every attempt.
pub const EVENT_ID_HEADER: &str = "Renderd-Event-Id";
/// The header carrying the timestamp and signature.
pub const SIGNATURE_HEADER: &str = "Renderd-Signature";

type HmacSha256 = Hmac<Sha256>;

/// Signs webhook bodies with the configured secret (never printed: Debug redacts it).
#[derive(Clone)]
pub struct Signer {
    /// Keyed once; each signature starts from a clone.
    keyed: HmacSha256,
}

/// A signing secret that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignerError {
    #[error("the webhook signing secret is empty")]
    Empty,
    #[error("the webhook signing secret is not a usable HMAC key")]
    Key,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("secret", &"***").finish()
    }
}

/// Why a `Renderd-Signature` header does not vouch for a body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the signature header is not 't=<unix>,v1=<hex>'")]
    Malformed,
    #[error("the signature timestamp {timestamp} is more than {tolerance_s} s from now ({now})")]
    Stale {
        timestamp: i64,
        now: i64,
        tolerance_s: u64,
    },
    #[error("no v1 signature matches the body")]
    Mismatch,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
        })
        .collect()
}

impl Signer {
    pub fn new(secret: &[u8]) -> Result<Self, SignerError> {
        if secret.is_empty() {
            return Err(SignerError::Empty);
        }
        let keyed = <HmacSha256 as Mac>::new_from_slice(secret).map_err(|_| SignerError::Key)?;
        Ok(Self { keyed })
    }

    fn mac(&self, timestamp: i64, body: &[u8]) -> HmacSha256 {
        let mut mac = self.keyed.clone();
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        mac
    }

    /// The hex HMAC-SHA256 of `"<timestamp>.<body>"`.
    pub fn signature(&self, timestamp: i64, body: &[u8]) -> String {
        hex(&self.mac(timestamp, body).finalize().into_bytes())
    }

    /// The `Renderd-Signature` value for `body` sent at `timestamp` (unix seconds).
    pub fn header(&self, timestamp: i64, body: &[u8]) -> String {
        format!("t={timestamp},v1={}", self.signature(timestamp, body))
    }

    /// What a receiver does: parse the header, check the timestamp is within `tolerance` of
    /// `now`, and compare each `v1` signature with the body's in constant time.
    pub fn verify(
        &self,
        header: &str,
        body: &[u8],
        now: i64,
        tolerance: Duration,
    ) -> Result<(), SignatureError> {
        let mut timestamp = None;
        let mut signatures = Vec::new();
        for part in header.split(',') {
            match part.trim().split_once('=') {
                Some(("t", value)) => {
                    timestamp = Some(
                        value
                            .parse::<i64>()
                            .map_err(|_| SignatureError::Malformed)?,
                    )
                }
                Some(("v1", value)) => {
                    signatures.push(unhex(value).ok_or(SignatureError::Malformed)?)
                }
                Some(_) => {} // other schemes, for later key rotation
                None => return Err(SignatureError::Malformed),
            }
        }
        let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
        if signatures.is_empty() {
            return Err(SignatureError::Malformed);
        }
        if timestamp.abs_diff(now) > tolerance.as_secs() {
            return Err(SignatureError::Stale {
                timestamp,
                now,
                tolerance_s: tolerance.as_secs(),
            });
        }
        let matches = signatures
            .iter()
            .any(|sig| self.mac(timestamp, body).verify_slice(sig).is_ok());
        if matches {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOLERANCE: Duration = Duration::from_secs(300);

    fn keyed(secret: &[u8]) -> Signer {
        Signer::new(secret).expect("a non-empty secret")
    }

    #[test]
    fn header_is_t_and_v1_hex_of_the_hmac_over_timestamp_dot_body() {
        let signer = keyed(b"whsec_test");
        let header = signer.header(1_700_000_000, br#"{"id":"e1"}"#);
        let (t, v1) = header
            .strip_prefix("t=1700000000,v1=")
            .map(|v1| ("1700000000", v1))
            .expect("t=<unix>,v1=<hex>");
        assert_eq!(v1.len(), 64, "hex of 32 bytes");
        assert!(v1
            .chars()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        // Recomputed independently from the definition.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(b"whsec_test").expect("key");
        mac.update(format!("{t}.{}", r#"{"id":"e1"}"#).as_bytes());
        assert_eq!(v1, hex(&mac.finalize().into_bytes()));
        // RFC 4231 test case 2 pins the HMAC itself: key "Jefe".
        let jefe = keyed(b"Jefe");
        let mut mac = <HmacSha256 as Mac>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex(&mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_ne!(jefe.signature(1, b"x"), signer.signature(1, b"x"));
    }

    #[test]
    fn verify_accepts_the_signed_body_only_within_the_tolerance() {
        let signer = keyed(b"secret");
        let body = br#"{"type":"render.succeeded"}"#;
        let header = signer.header(1_000, body);
        assert_eq!(signer.verify(&header, body, 1_100, TOLERANCE), Ok(()));
        assert_eq!(
            signer.verify(&header, b"{}", 1_100, TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            keyed(b"other").verify(&header, body, 1_100, TOLERANCE),
            Err(SignatureError::Mismatch)
        );
        assert!(matches!(
            signer.verify(&header, body, 2_000, TOLERANCE),
            Err(SignatureError::Stale {
                timestamp: 1_000,
                ..
            })
        ));
        for bad in [
            "",
            "t=1000",
            "v1=00",
            "t=x,v1=00",
            "t=1000,v1=zz",
            "garbage",
        ] {
            assert_eq!(
                signer.verify(bad, body, 1_000, TOLERANCE),
                Err(SignatureError::Malformed),
                "{bad:?}"
            );
        }
        // A header with an extra, unknown scheme and a second v1 still verifies.
        let rotated = format!("{header},v0=abc,v1={}", "00".repeat(32));
        assert_eq!(signer.verify(&rotated, body, 1_000, TOLERANCE), Ok(()));
    }

    #[test]
    fn empty_secrets_are_refused() {
        assert_eq!(Signer::new(b"").err(), Some(SignerError::Empty));
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let shown = format!("{:?}", keyed(b"hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
