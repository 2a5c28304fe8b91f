//! The poll id only the app holds, and the state derived from it.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hkdf::Hkdf;
use sha2::Sha256;

use super::random::random_bytes;
use super::seal::SealingKey;

/// Bytes of a poll id: its creation time (see [`created_prefix`]) and 216 bits from the OS CSPRNG
/// (a v4 UUID has 122).
const POLL_ID_BYTES: usize = 33;
/// Bytes of the creation time leading a poll id and its state.
const CREATED_BYTES: usize = 6;
/// Bytes of a poll id made before ids led with their creation time (all random).
const LEGACY_ID_BYTES: usize = 32;
/// HKDF salt: fixes the derivation to this service and version.
const HKDF_SALT: &[u8] = b"monzo-auth/session/v1";

/// The first bytes of a poll id made at `ms` (milliseconds since the Unix epoch): the time's eight
/// base-52 digits, one per 6-bit group, so the id's base64url text and its state's begin with
/// eight letters (`A-Z`, `a-z`: 0 to 51) that sort as the time does, as text and as bytes (until
/// the year 3664).
fn created_prefix(ms: u64) -> [u8; CREATED_BYTES] {
    let (mut groups, mut rest) = (0u64, ms);
    for digit in 0..8 {
        groups |= (rest % 52) << (6 * digit);
        rest /= 52;
    }
    let mut prefix = [0u8; CREATED_BYTES];
    prefix.copy_from_slice(&groups.to_be_bytes()[8 - CREATED_BYTES..]);
    prefix
}

/// The bytes of a poll id or a state: 33 (leading with the creation time), or 32 for a session
/// made before that (a login in flight across the upgrade still completes).
#[derive(Clone, PartialEq, Eq, Hash)]
struct SessionBytes {
    bytes: [u8; POLL_ID_BYTES],
    len: usize,
}

impl SessionBytes {
    fn parse(text: &str) -> Option<Self> {
        // 33 bytes are 44 characters, 32 are 43; base64url checks the rest.
        if !matches!(text.len(), 43 | 44) {
            return None;
        }
        let decoded = URL_SAFE_NO_PAD.decode(text).ok()?;
        let mut bytes = [0u8; POLL_ID_BYTES];
        bytes.get_mut(..decoded.len())?.copy_from_slice(&decoded);
        Some(Self {
            bytes,
            len: decoded.len(),
        })
    }

    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }

    fn text(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.as_slice())
    }
}

/// The poll secret only the app holds. Its `Debug` never shows the value.
///
/// It leads with its creation time, and so does its state: the store's table is keyed by the
/// state, and keys that grow with time land together at the end of the table (one page written
/// per batch of new sessions rather than one page per session, the difference between SQLite
/// keeping up and not). The time is no secret: it is when the login URL was visited.
#[derive(Clone)]
pub struct PollId(SessionBytes);

impl PollId {
    /// A new id made at `created_ms` (Unix milliseconds, from the flow's clock).
    pub fn generate(created_ms: i64) -> Self {
        let mut bytes: [u8; POLL_ID_BYTES] = random_bytes();
        bytes[..CREATED_BYTES].copy_from_slice(&created_prefix(created_ms.max(0) as u64));
        Self(SessionBytes {
            bytes,
            len: POLL_ID_BYTES,
        })
    }

    /// Parses the text form the app sends back; `None` for anything that is not one of ours.
    pub fn parse(text: &str) -> Option<Self> {
        SessionBytes::parse(text).map(Self)
    }

    /// The text form, to hand to the app exactly once.
    pub fn expose(&self) -> String {
        self.0.text()
    }

    fn hkdf(&self, info: &[u8]) -> [u8; 32] {
        let mut out = [0u8; 32];
        Hkdf::<Sha256>::new(Some(HKDF_SALT), self.0.as_slice())
            .expand(info, &mut out)
            .expect("32 bytes is a valid HKDF-SHA256 output length");
        out
    }

    /// The session's state: its key in the store and its `state` in the login URL. The id's
    /// creation time, then 216 bits of `HKDF(id, "state")` (all 256 for a legacy id).
    pub fn state(&self) -> State {
        let derived = self.hkdf(b"state");
        let mut bytes = [0u8; POLL_ID_BYTES];
        if self.0.len == LEGACY_ID_BYTES {
            bytes[..LEGACY_ID_BYTES].copy_from_slice(&derived);
        } else {
            bytes[..CREATED_BYTES].copy_from_slice(&self.0.bytes[..CREATED_BYTES]);
            bytes[CREATED_BYTES..].copy_from_slice(&derived[..POLL_ID_BYTES - CREATED_BYTES]);
        }
        State(SessionBytes {
            bytes,
            len: self.0.len,
        })
    }

    /// The key pair that seals the authorization code to this id's holder.
    pub fn sealing_key(&self) -> SealingKey {
        SealingKey(crypto_box::SecretKey::from(self.hkdf(b"seal")))
    }
}

impl fmt::Debug for PollId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PollId(<redacted>)")
    }
}

/// A session's `state`: not secret from the browser, but kept out of logs all the same.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct State(SessionBytes);

impl State {
    pub fn parse(text: &str) -> Option<Self> {
        SessionBytes::parse(text).map(Self)
    }

    pub fn as_text(&self) -> String {
        self.0.text()
    }
}

impl fmt::Debug for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("State(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW_MS: i64 = 1_795_944_123_900;
    use crate::session::AuthCode;
    use crate::session::random::random_token;

    #[test]
    fn poll_id_round_trips_and_rejects_garbage() {
        let id = PollId::generate(NOW_MS);
        let text = id.expose();
        assert_eq!(text.len(), 44);
        assert_eq!(PollId::parse(&text).unwrap().expose(), text);
        for bad in [
            "",
            "abc",
            &"A".repeat(42),
            &"A".repeat(45),
            &"!".repeat(43),
            &"!".repeat(44),
            &"a".repeat(10_000),
        ] {
            assert!(PollId::parse(bad).is_none(), "{bad:?} parsed");
        }
    }

    #[test]
    fn state_and_seal_are_distinct_derivations() {
        let id = PollId::generate(NOW_MS);
        let state = id.state();
        assert_ne!(state.as_text(), id.expose());
        assert_eq!(state, id.state(), "derivation is deterministic");
        assert_ne!(state.0.as_slice(), id.sealing_key().public_key().0);
        assert_ne!(PollId::generate(NOW_MS).state(), state);
    }

    #[test]
    fn only_the_id_holder_opens_the_sealed_code() {
        let id = PollId::generate(NOW_MS);
        let code = AuthCode::parse("the-code").unwrap();
        let sealed = id.sealing_key().public_key().seal(&code);
        assert!(!sealed.windows(8).any(|w| w == b"the-code"));
        assert_eq!(
            id.sealing_key()
                .open(&sealed)
                .map(|c| c.expose().to_owned()),
            Some("the-code".to_owned())
        );
        assert!(
            PollId::generate(NOW_MS)
                .sealing_key()
                .open(&sealed)
                .is_none()
        );
    }

    #[test]
    fn ids_and_states_lead_with_their_creation_time_in_sorting_letters() {
        let now_ms: u64 = 1_795_944_123_900;
        let id = PollId::generate(now_ms as i64);
        let (text, state) = (id.expose(), id.state().as_text());
        assert_eq!(state.len(), 44);
        assert_eq!(
            text[..8],
            state[..8],
            "the state shares the id's creation time"
        );
        assert_ne!(text[8..], state[8..]);
        assert!(text[..8].bytes().all(|b| b.is_ascii_alphabetic()), "{text}");
        assert!(
            URL_SAFE_NO_PAD.encode(created_prefix(now_ms - 10_000)) < text,
            "made after ten seconds ago"
        );
        // Every step sorts after the last, across digit carries, as text and as bytes.
        let times = [0, 1, 51, 52, 53, 2703, 2704, now_ms - 1, now_ms, now_ms + 1]
            .into_iter()
            .chain((1..2000).map(|i| now_ms + 1 + i * 997))
            .chain([52u64.pow(8) - 2, 52u64.pow(8) - 1]);
        let mut last: Option<([u8; CREATED_BYTES], String)> = None;
        for ms in times {
            let prefix = created_prefix(ms);
            let letters = URL_SAFE_NO_PAD.encode(prefix);
            assert!(
                letters.bytes().all(|b| b.is_ascii_alphabetic()),
                "{ms}: {letters}"
            );
            if let Some((bytes, text)) = &last {
                assert!(
                    *bytes < prefix && *text < letters,
                    "{ms}: {text} !< {letters}"
                );
            }
            last = Some((prefix, letters));
        }
    }

    #[test]
    fn a_login_started_before_ids_carried_their_time_completes() {
        // A 32-byte id from an earlier version: its state is all of HKDF(id, "state").
        let legacy = random_token::<32>();
        let id = PollId::parse(&legacy).unwrap();
        assert_eq!(id.expose(), legacy);
        let mut expected = [0u8; 32];
        Hkdf::<Sha256>::new(Some(HKDF_SALT), &URL_SAFE_NO_PAD.decode(&legacy).unwrap())
            .expand(b"state", &mut expected)
            .unwrap();
        let state = id.state().as_text();
        assert_eq!(state, URL_SAFE_NO_PAD.encode(expected));
        assert_eq!(State::parse(&state).unwrap(), id.state());
        let code = AuthCode::parse("the-code").unwrap();
        let sealed = id.sealing_key().public_key().seal(&code);
        let reparsed = PollId::parse(&legacy).unwrap();
        assert!(reparsed.sealing_key().open(&sealed).is_some());
    }
}
