//! The login session: its secrets, how they derive from one another, and its record in the store.
//!
//! Only the app ever holds the poll id. Everything the service stores derives from it one way:
//! `state = HKDF(id, "state")` (after the id's creation time) keys the table and travels in the
//! login URL (so it lands in browser histories), and `HKDF(id, "seal")` is the secret half of the
//! key pair the authorization code is sealed to. Knowing a state, or dumping the whole table,
//! yields neither the id nor a usable code.

use std::fmt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crypto_box::aead::OsRng;
use crypto_box::aead::rand_core::RngCore as _;
use hkdf::Hkdf;
use secrecy::{ExposeSecret as _, SecretString};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

/// Bytes of a poll id: its creation time (see [`created_prefix`]) and 216 bits from the OS CSPRNG
/// (a v4 UUID has 122).
const POLL_ID_BYTES: usize = 33;
/// Bytes of the creation time leading a poll id and its state.
const CREATED_BYTES: usize = 6;
/// Bytes of a poll id made before ids led with their creation time (all random).
const LEGACY_ID_BYTES: usize = 32;
/// Length of a 32-byte token (a legacy id or state, a code challenge) as unpadded base64url text.
const TOKEN_TEXT_LEN: usize = 43;
/// HKDF salt: fixes the derivation to this service and version.
const HKDF_SALT: &[u8] = b"monzo-auth/session/v1";

/// Fills a buffer from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    OsRng.fill_bytes(&mut bytes);
    bytes
}

/// A random URL-safe token of `N` bytes of entropy (used for lease ids and similar).
pub fn random_token<const N: usize>() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<N>())
}

fn decode_token(text: &str) -> Option<[u8; LEGACY_ID_BYTES]> {
    if text.len() != TOKEN_TEXT_LEN {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    bytes.try_into().ok()
}

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
    pub fn generate() -> Self {
        let mut bytes: [u8; POLL_ID_BYTES] = random_bytes();
        let created_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        bytes[..CREATED_BYTES].copy_from_slice(&created_prefix(created_ms));
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

/// The secret half of a session's sealing key pair; derived on demand, never stored.
pub struct SealingKey(crypto_box::SecretKey);

impl SealingKey {
    pub fn public_key(&self) -> SealPublicKey {
        // Every login derives one, so it comes from aws-lc's X25519, under half the time of
        // crypto_box's own (the same function: a test holds them equal).
        use aws_lc_rs::agreement::{PrivateKey, X25519};
        let secret = secrecy::zeroize::Zeroizing::new(self.0.to_bytes());
        PrivateKey::from_private_key(&X25519, secret.as_ref())
            .ok()
            .and_then(|key| key.compute_public_key().ok())
            .and_then(|public| public.as_ref().try_into().ok())
            .map_or_else(
                || SealPublicKey(*self.0.public_key().as_bytes()),
                SealPublicKey,
            )
    }

    /// Opens a code sealed by [`SealPublicKey::seal`]; `None` if it was sealed to another key or
    /// tampered with.
    pub fn open(&self, sealed: &[u8]) -> Option<AuthCode> {
        let plain = self.0.unseal(sealed).ok()?;
        AuthCode::parse(String::from_utf8(plain).ok()?)
    }
}

/// The public half, stored with the session so the callback can seal the code to it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SealPublicKey(pub [u8; 32]);

impl SealPublicKey {
    /// Seals the authorization code (a libsodium-compatible sealed box).
    pub fn seal(&self, code: &AuthCode) -> Vec<u8> {
        crypto_box::PublicKey::from(self.0)
            .seal(&mut OsRng, code.expose().as_bytes())
            .expect("sealing to a valid X25519 key cannot fail")
    }
}

impl fmt::Debug for SealPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealPublicKey({})", URL_SAFE_NO_PAD.encode(self.0))
    }
}

/// An RFC 7636 S256 code challenge: base64url(SHA-256(verifier)), 43 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    pub fn parse(text: &str) -> Option<Self> {
        decode_token(text).map(|_| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` (RFC 7636: 43 to 128 unreserved characters) hashes to this challenge.
    pub fn is_met_by(&self, verifier: &CodeVerifier) -> bool {
        let verifier = verifier.expose();
        let well_formed = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if !well_formed {
            return false;
        }
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        computed.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

/// Defines a secret a client sends, parsed at the edge: held as a [`SecretString`], so its
/// `Debug` shows nothing, and exposed only where it is sent on.
macro_rules! secret_input {
    ($(#[$doc:meta])* $name:ident, $valid:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// `None` unless the text is well formed.
            pub fn parse(text: impl Into<String>) -> Option<Self> {
                let text: String = text.into();
                let valid: fn(&str) -> bool = $valid;
                valid(&text).then(|| Self(text.into()))
            }

            pub fn expose(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

/// Longest authorization code or refresh token accepted (Monzo's are a few hundred bytes).
pub const MAX_FORWARDED_TOKEN: usize = 4096;

fn is_forwardable(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_FORWARDED_TOKEN
        && text.bytes().all(|b| b.is_ascii_graphic())
}

secret_input!(
    /// The single-use authorization code Monzo hands the callback (any text Monzo sends, up to
    /// the bound: Monzo judges it at the exchange).
    AuthCode,
    |text| !text.is_empty() && text.len() <= MAX_FORWARDED_TOKEN
);

secret_input!(
    /// A refresh token a client sends to be refreshed at Monzo with the service's secret:
    /// bounded before it is forwarded.
    RefreshToken,
    is_forwardable
);

secret_input!(
    /// An access token a client asks the service to revoke at Monzo (RFC 7009): bounded
    /// before it is forwarded.
    AccessToken,
    is_forwardable
);

secret_input!(
    /// An RFC 7636 code verifier as sent; [`CodeChallenge::is_met_by`] judges it (a malformed
    /// one simply does not match).
    CodeVerifier,
    |text| !text.is_empty() && text.len() <= MAX_FORWARDED_TOKEN
);

/// Longest `client_id` accepted; there is no registration, so this only bounds the input.
const MAX_CLIENT_ID_LEN: usize = 255;

/// The `client_id` a device login is started with (RFC 6749 A.1: printable ASCII). Not a
/// secret: there is no client registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(text: &str) -> Option<Self> {
        (!text.is_empty()
            && text.len() <= MAX_CLIENT_ID_LEN
            && text.bytes().all(|b| (0x20..=0x7e).contains(&b)))
        .then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a session stands. Redeemed sessions are deleted, so there is no state for them.
#[derive(Clone, PartialEq, Eq)]
pub enum Status {
    /// Waiting for the user at Monzo.
    Pending,
    /// Monzo redirected back with a code, sealed to the session's public key.
    Authorized { sealed_code: Vec<u8> },
    /// The user said no at Monzo.
    Denied,
}

impl fmt::Debug for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Pending => "Pending",
            Status::Authorized { .. } => "Authorized",
            Status::Denied => "Denied",
        })
    }
}

/// A claim on an authorized session: whoever holds it is the one poll exchanging the code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    /// Random id of the holder, so only it can release or finish the claim.
    pub id: String,
    /// Unix milliseconds after which the claim lapses (a crashed holder must not block forever).
    pub until_ms: i64,
}

/// What a device-flow session (RFC 8628) carries on top of a simple one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceGrant {
    /// The `client_id` given at `/device/code`; polls must present the same one.
    pub client_id: String,
    /// The current polling interval; each `slow_down` adds five seconds for good.
    pub interval_ms: i64,
    /// When the next poll is allowed; `None` until the first poll, which is always allowed.
    pub next_poll_ms: Option<i64>,
}

/// The alphabet of user codes (RFC 8628 6.1): 20 consonants, no vowels (no words), no
/// look-alikes.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;

/// The short code a person types at `/device` (about 34.6 bits). Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCode([u8; USER_CODE_LEN]);

impl UserCode {
    pub fn generate() -> Self {
        let mut code = [0u8; USER_CODE_LEN];
        let mut filled = 0;
        while filled < USER_CODE_LEN {
            for byte in random_bytes::<16>() {
                // Rejection sampling keeps every letter equally likely (256 = 12 * 20 + 16).
                if byte < 240 && filled < USER_CODE_LEN {
                    code[filled] = USER_CODE_ALPHABET[usize::from(byte % 20)];
                    filled += 1;
                }
            }
        }
        Self(code)
    }

    /// Reads what a person typed: any case, with or without the dash, spaces ignored.
    pub fn parse(text: &str) -> Option<Self> {
        let mut code = [0u8; USER_CODE_LEN];
        let mut len = 0;
        for c in text.chars() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            let upper = c.to_ascii_uppercase();
            if !upper.is_ascii()
                || !USER_CODE_ALPHABET.contains(&(upper as u8))
                || len == USER_CODE_LEN
            {
                return None;
            }
            code[len] = upper as u8;
            len += 1;
        }
        (len == USER_CODE_LEN).then_some(Self(code))
    }

    /// `XXXX-XXXX`, as shown to people.
    pub fn display(&self) -> String {
        let text = std::str::from_utf8(&self.0).expect("ASCII");
        format!("{}-{}", &text[..4], &text[4..])
    }

    /// The key the code is stored under: a hash, so the store holds no user code.
    pub fn store_key(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"monzo-auth/user-code/v1\0");
        hasher.update(self.0);
        format!("user#{}", URL_SAFE_NO_PAD.encode(hasher.finalize()))
    }
}

impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserCode(<redacted>)")
    }
}

/// Which session a user code leads to, for as long as that session lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCodeRecord {
    /// [`UserCode::store_key`].
    pub key: String,
    pub state: State,
    pub expires_at_ms: i64,
    pub purge_at: i64,
}

/// The store's verdict on a device poll's timing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pace {
    /// The interval since the previous poll has passed (or this is the first poll).
    Allowed,
    /// Too soon: the interval has grown to `interval_ms`.
    SlowDown { interval_ms: i64 },
    /// No such device session.
    NotFound,
}

/// A session as the store keeps it. Holds no poll id, no plaintext code and no token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    pub state: State,
    pub status: Status,
    pub seal_public_key: SealPublicKey,
    pub code_challenge: Option<CodeChallenge>,
    /// The redirect URI the login used, when it is not the configured one (Lambda derives it from
    /// the request); the exchange must send the same value.
    pub return_url: Option<String>,
    /// Present for sessions started at `/device/code` (RFC 8628).
    pub device: Option<DeviceGrant>,
    pub created_at_ms: i64,
    pub expires_at_ms: i64,
    /// Unix seconds after which the store may forget the session (DynamoDB's TTL attribute).
    pub purge_at: i64,
    pub lease: Option<Lease>,
}

impl Session {
    /// A fresh pending session for `id`, alive for `ttl` and remembered as expired for as long
    /// again (so a late poll still learns it expired).
    pub fn new_pending(id: &PollId, now_ms: i64, ttl: Duration) -> Self {
        let expires_at_ms = now_ms + ttl.as_millis() as i64;
        let purge_grace_secs = ttl.as_secs() as i64;
        Self {
            state: id.state(),
            status: Status::Pending,
            seal_public_key: id.sealing_key().public_key(),
            code_challenge: None,
            return_url: None,
            device: None,
            created_at_ms: now_ms,
            expires_at_ms,
            purge_at: expires_at_ms.div_euclid(1000) + 1 + purge_grace_secs,
            lease: None,
        }
    }

    /// Binds the session to an RFC 7636 code challenge.
    pub fn with_code_challenge(mut self, challenge: Option<CodeChallenge>) -> Self {
        self.code_challenge = challenge;
        self
    }

    /// Records the redirect URI this session's login uses.
    pub fn with_return_url(mut self, return_url: Option<String>) -> Self {
        self.return_url = return_url;
        self
    }

    /// Makes it a device-flow session.
    pub fn with_device(mut self, device: DeviceGrant) -> Self {
        self.device = Some(device);
        self
    }

    pub fn is_expired(&self, now_ms: i64) -> bool {
        now_ms >= self.expires_at_ms
    }

    pub fn is_leased(&self, now_ms: i64) -> bool {
        self.lease
            .as_ref()
            .is_some_and(|lease| lease.until_ms > now_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poll_id_round_trips_and_rejects_garbage() {
        let id = PollId::generate();
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
        let id = PollId::generate();
        let state = id.state();
        assert_ne!(state.as_text(), id.expose());
        assert_eq!(state, id.state(), "derivation is deterministic");
        assert_ne!(state.0.as_slice(), id.sealing_key().public_key().0);
        assert_ne!(PollId::generate().state(), state);
    }

    #[test]
    fn only_the_id_holder_opens_the_sealed_code() {
        let id = PollId::generate();
        let code = AuthCode::parse("the-code").unwrap();
        let sealed = id.sealing_key().public_key().seal(&code);
        assert!(!sealed.windows(8).any(|w| w == b"the-code"));
        assert_eq!(
            id.sealing_key()
                .open(&sealed)
                .map(|c| c.expose().to_owned()),
            Some("the-code".to_owned())
        );
        assert!(PollId::generate().sealing_key().open(&sealed).is_none());
    }

    #[test]
    fn ids_and_states_lead_with_their_creation_time_in_sorting_letters() {
        let id = PollId::generate();
        let (text, state) = (id.expose(), id.state().as_text());
        assert_eq!(state.len(), 44);
        assert_eq!(
            text[..8],
            state[..8],
            "the state shares the id's creation time"
        );
        assert_ne!(text[8..], state[8..]);
        assert!(text[..8].bytes().all(|b| b.is_ascii_alphabetic()), "{text}");
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
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

    #[test]
    fn the_public_half_is_crypto_boxs_own() {
        // RFC 7748 6.1: Alice's key pair.
        let secret: [u8; 32] =
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap()
                .try_into()
                .unwrap();
        let alice = SealingKey(crypto_box::SecretKey::from(secret));
        assert_eq!(
            hex::encode(alice.public_key().0),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        for _ in 0..64 {
            let key = PollId::generate().sealing_key();
            assert_eq!(key.public_key().0, *key.0.public_key().as_bytes());
        }
    }

    #[test]
    fn code_challenge_checks_the_verifier() {
        // RFC 7636 appendix B.
        let verifier_text = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge =
            CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap();
        let verifier = |text: &str| CodeVerifier::parse(text).unwrap();
        assert!(challenge.is_met_by(&verifier(verifier_text)));
        assert!(!challenge.is_met_by(&verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj")));
        assert!(!challenge.is_met_by(&verifier("short")));
        assert!(CodeChallenge::parse("plain-text-challenge").is_none());
    }

    #[test]
    fn user_codes_read_as_people_type_them() {
        let code = UserCode::generate();
        let shown = code.display();
        assert_eq!(shown.len(), 9);
        assert_eq!(&shown[4..5], "-");
        assert!(
            shown
                .replace('-', "")
                .bytes()
                .all(|b| USER_CODE_ALPHABET.contains(&b))
        );
        for typed in [
            shown.clone(),
            shown.to_lowercase(),
            shown.replace('-', ""),
            format!(" {} ", shown.replace('-', " - ")),
        ] {
            assert_eq!(UserCode::parse(&typed), Some(code.clone()), "{typed:?}");
        }
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "ÄCDF-GHJK",
        ] {
            assert_eq!(UserCode::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            code.store_key(),
            UserCode::parse(&shown.to_lowercase()).unwrap().store_key()
        );
        assert!(!code.store_key().contains(&shown.replace('-', "")));
        assert!(!format!("{code:?}").contains(&shown[..4]));
    }

    #[test]
    fn user_codes_use_the_whole_alphabet_evenly() {
        let mut counts = [0u32; 20];
        for _ in 0..2000 {
            for b in UserCode::generate().0 {
                counts[USER_CODE_ALPHABET.iter().position(|&a| a == b).unwrap()] += 1;
            }
        }
        // 16 000 letters, 800 expected each; a biased generator lands far outside this.
        assert!(
            counts.iter().all(|&n| (600..1000).contains(&n)),
            "{counts:?}"
        );
    }

    #[test]
    fn debug_output_hides_secrets() {
        let id = PollId::generate();
        let shown = format!("{:?} {:?}", id, id.state());
        assert!(!shown.contains(&id.expose()));
        assert!(!shown.contains(&id.state().as_text()));
        let secret = "s3cr3t-value";
        let shown = format!(
            "{:?} {:?} {:?}",
            AuthCode::parse(secret).unwrap(),
            RefreshToken::parse(secret).unwrap(),
            CodeVerifier::parse(secret).unwrap()
        );
        assert_eq!(
            shown,
            "AuthCode(<redacted>) RefreshToken(<redacted>) CodeVerifier(<redacted>)"
        );
    }

    #[test]
    fn forwarded_tokens_and_client_ids_are_bounded() {
        assert!(AuthCode::parse("").is_none());
        assert!(AuthCode::parse("c".repeat(MAX_FORWARDED_TOKEN + 1)).is_none());
        assert!(RefreshToken::parse("a b").is_none());
        assert!(RefreshToken::parse("x".repeat(MAX_FORWARDED_TOKEN + 1)).is_none());
        assert!(RefreshToken::parse("x".repeat(MAX_FORWARDED_TOKEN)).is_some());
        assert!(ClientId::parse("my app").is_some());
        assert!(ClientId::parse("").is_none());
        assert!(ClientId::parse("tab\there").is_none());
        assert!(ClientId::parse(&"c".repeat(256)).is_none());
    }
}
