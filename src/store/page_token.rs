//! Opaque AIP-158 page tokens: the keyset position (created_at, id) of the last job handed out,
//! bound to the listing's filter so a token cannot be replayed against another listing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use chrono::{DateTime, Utc};

use crate::domain::job::{JobId, JobState};

const VERSION: &str = "v1";

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PageToken {
    pub created_at: DateTime<Utc>,
    pub id: JobId,
}

/// A fingerprint of the listing's filter (FNV-1a over its parts); not a secret, only a guard.
/// `states` empty means every state; order and repeats do not matter.
fn filter_fingerprint(owner: Option<&str>, states: &[JobState]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let owner_part = owner.map_or_else(|| "*".to_owned(), |o| format!("o:{o}"));
    let mut names: Vec<&str> = states.iter().map(|s| s.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let state_part = if names.is_empty() {
        "*".to_owned()
    } else {
        names.join(",")
    };
    for byte in owner_part.bytes().chain([0u8]).chain(state_part.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

impl PageToken {
    pub fn encode(&self, owner: Option<&str>, states: &[JobState]) -> String {
        let text = format!(
            "{VERSION}|{}|{}|{:016x}",
            self.created_at.timestamp_micros(),
            self.id,
            filter_fingerprint(owner, states)
        );
        URL_SAFE_NO_PAD.encode(text)
    }

    /// `None` when the token is malformed or was made for another filter.
    pub fn decode(token: &str, owner: Option<&str>, states: &[JobState]) -> Option<Self> {
        let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
        let text = String::from_utf8(bytes).ok()?;
        let mut parts = text.split('|');
        let (version, micros, id, fingerprint) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if version != VERSION || parts.next().is_some() {
            return None;
        }
        if u64::from_str_radix(fingerprint, 16).ok()? != filter_fingerprint(owner, states) {
            return None;
        }
        let created_at = DateTime::<Utc>::from_timestamp_micros(micros.parse().ok()?)?;
        let id = JobId::parse(id).ok()?;
        Some(Self { created_at, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_other_filters_and_garbage() {
        let token = PageToken {
            created_at: DateTime::<Utc>::from_timestamp_micros(1_750_000_000_123_456)
                .expect("valid instant"),
            id: JobId::generate(),
        };
        let text = token.encode(Some("alice"), &[JobState::Queued]);
        assert_eq!(
            PageToken::decode(&text, Some("alice"), &[JobState::Queued]),
            Some(token.clone())
        );
        assert_eq!(
            PageToken::decode(&text, Some("bob"), &[JobState::Queued]),
            None
        );
        assert_eq!(PageToken::decode(&text, Some("alice"), &[]), None);
        assert_eq!(PageToken::decode(&text, None, &[JobState::Queued]), None);
        assert_eq!(PageToken::decode("", None, &[]), None);
        assert_eq!(PageToken::decode("!!!", None, &[]), None);
        let forged = URL_SAFE_NO_PAD.encode("v1|12|not-a-uuid|0");
        assert_eq!(PageToken::decode(&forged, None, &[]), None);
    }
}
