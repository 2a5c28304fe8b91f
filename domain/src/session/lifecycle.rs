//! A session as the store keeps it, and where it stands: pending, then authorized or denied; a
//! redeemed session is deleted.

use std::fmt;
use std::time::Duration;

use super::id::{PollId, State};
use super::pkce::CodeChallenge;
use super::seal::SealPublicKey;

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
