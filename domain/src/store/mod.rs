//! Where sessions live between `/new`, `/callback` and `/token`.
//!
//! Every write is conditional, so that the store (not process memory) decides races: on Lambda
//! each instance has its own memory, and the local server may run several requests at once.
//! A store keeps three things, one trait each: sessions ([`SessionStore`]), the device flow's user
//! codes ([`UserCodeStore`]) and failure counters ([`CounterStore`]); [`Store`] is all three, the
//! one handle the flow holds. Implementations: the SQLite store (the embedded default, crate
//! `monzo-auth-sqlite`), the DynamoDB store (the AWS shape, crate `monzo-auth-dynamodb`),
//! [`memory`] (tests, throwaway runs); the same conformance suite (in `tests/`) runs against each.
//! The two table-shaped stores read and write a session through [`SessionRecord`].
//!
//! A write may be sent twice: the AWS SDK retries an attempt that timed out or lost its
//! connection, and the first attempt may have been applied. So every write accepts the state its
//! own earlier attempt would have left (a retry is a success), and still fails when the
//! condition fails for another writer's reason: the same session created again, the same sealed
//! code authorized again, the same lease claimed, released or finished again. Where the
//! arguments cannot tell an attempt from a new call (a denial, a paced poll, a counter), the
//! store carries an attempt value of its own (the DynamoDB store does; SQLite answers every write
//! exactly and never resends one).

pub mod memory;
pub mod record;

use std::error::Error as StdError;
use std::fmt;

use async_trait::async_trait;

use crate::session::{Lease, Pace, Session, State, Status, UserCodeRecord};

pub use memory::MemoryStore;
pub use record::SessionRecord;

/// The store failed, as opposed to a condition not holding (those are `Ok(false)`/`Ok(None)`).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// `create` found a session with the same state (only a broken random source does that).
    #[error("a session with this state already exists")]
    Conflict,
    /// The store could not be reached or refused to work; a retry may help.
    #[error("the session store is unavailable")]
    Unavailable(#[source] Box<dyn StdError + Send + Sync>),
    /// A stored record could not be read back: a bug or tampering, not a passing fault.
    #[error("a stored session is malformed: {0}")]
    Corrupt(String),
}

impl StoreError {
    pub fn unavailable(err: impl StdError + Send + Sync + 'static) -> Self {
        Self::Unavailable(Box::new(err))
    }
}

/// What a successful [`SessionStore::claim`] hands its holder: what only an authorized session
/// has, and what the exchange needs. Its `Debug` does not show the sealed code.
#[derive(Clone, PartialEq, Eq)]
pub struct Claimed {
    /// The authorization code, sealed to the session's public key.
    pub sealed_code: Vec<u8>,
    /// The redirect URI the login used, when it is not the configured one.
    pub return_url: Option<String>,
}

impl TryFrom<Session> for Claimed {
    type Error = StoreError;

    /// The claim of a session a store has just leased; only an authorized one has a code, so
    /// anything else read back is corrupt.
    fn try_from(session: Session) -> Result<Self, StoreError> {
        match session.status {
            Status::Authorized { sealed_code } => Ok(Self {
                sealed_code,
                return_url: session.return_url,
            }),
            other => Err(StoreError::Corrupt(format!(
                "a claimed session reads back as {other:?}"
            ))),
        }
    }
}

impl fmt::Debug for Claimed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Claimed")
            .field(
                "sealed_code",
                &format_args!("<{} bytes>", self.sealed_code.len()),
            )
            .field("return_url", &self.return_url)
            .finish()
    }
}

/// Storage for sessions, including a device session's poll pacing (it lives on the session).
/// All times are Unix milliseconds passed in by the caller, so the store holds no clock of its
/// own.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Inserts a new session, only if no session has its state. The same session stored again
    /// (same state and sealing key: a retry) is a success; another session with its state is
    /// [`StoreError::Conflict`].
    async fn create(&self, session: &Session) -> Result<(), StoreError>;

    /// Whether the store can be read where it should be (the local server's `/healthz`): an
    /// error when it is gone, replaced, corrupt or unreachable; a store that reads but cannot
    /// write right now (a full disk, another process's lock) is healthy.
    async fn health(&self) -> Result<(), StoreError>;

    /// Reads a session as it is now (strongly consistent). Expired sessions are returned as they
    /// are, until purged; the caller decides what expiry means.
    async fn get(&self, state: &State) -> Result<Option<Session>, StoreError>;

    /// Records the sealed authorization code, only if the session is pending and unexpired, or
    /// already holds this same sealed code (a retry; sealed codes never repeat). Returns whether
    /// it did.
    async fn authorize(
        &self,
        state: &State,
        sealed_code: &[u8],
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Records the user's refusal, only if the session is pending and unexpired: a second call
    /// (a replayed denial) returns `false`, a resent attempt of this one `true`.
    async fn deny(&self, state: &State, now_ms: i64) -> Result<bool, StoreError>;

    /// Takes `lease` on an authorized, unexpired session that nobody holds (or whose last lease
    /// has lapsed), or that this same `lease` already holds (a retry). Returns what the holder
    /// needs to redeem it, or `None` if the claim did not apply.
    async fn claim(
        &self,
        state: &State,
        lease: &Lease,
        now_ms: i64,
    ) -> Result<Option<Claimed>, StoreError>;

    /// Gives the claim back, so the next poll can retry: `true` if `lease_id` held it or nobody
    /// holds it any more (released already); `false` if another lease holds it or the session is
    /// gone.
    async fn release(&self, state: &State, lease_id: &str) -> Result<bool, StoreError>;

    /// Deletes the session, only if `lease_id` still holds it: the end of a redeemed (or
    /// definitively failed) session. A session already gone is finished too (`true`).
    async fn finish(&self, state: &State, lease_id: &str) -> Result<bool, StoreError>;

    /// Paces a device session's polls, atomically: the first poll, or one at least the session's
    /// interval after the previous, is [`Pace::Allowed`] and starts a new interval; an earlier
    /// one grows the interval by `step_ms` for good, starts it anew, and is [`Pace::SlowDown`].
    /// A resent attempt answers as its first attempt did (an on-time poll never turns into
    /// `SlowDown`, an interval never grows twice).
    /// It needs no durability (a pacing write lost in a crash allows one early poll): a store
    /// may answer before it is durable, and [`SessionStore::get`] may show it only once a later
    /// write has committed; `pace_poll` itself always sees every earlier pacing.
    async fn pace_poll(&self, state: &State, now_ms: i64, step_ms: i64)
    -> Result<Pace, StoreError>;
}

/// Storage for the device flow's user codes (RFC 8628), each leading to its session.
#[async_trait]
pub trait UserCodeStore: Send + Sync + 'static {
    /// Maps a user code (by its [`UserCodeRecord::key`]) to its session, only if no live code
    /// has that key (an expired one may be replaced) or the code already maps to this session
    /// (a retry). Returns whether it did.
    async fn create_user_code(
        &self,
        record: &UserCodeRecord,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Looks up a user code by its key, expired or not (the caller checks).
    async fn find_user_code(&self, key: &str) -> Result<Option<UserCodeRecord>, StoreError>;

    /// Creates a device session and maps its user code to it, both or neither (one
    /// transaction where the store has them): `Ok(false)` when a live code has the record's
    /// key (nothing is written; draw another code), `Err(Conflict)` when another session has
    /// the state. Both already stored (a retry) is `Ok(true)`.
    async fn create_with_user_code(
        &self,
        session: &Session,
        record: &UserCodeRecord,
        now_ms: i64,
    ) -> Result<bool, StoreError>;
}

/// Storage for failure counters (wrong user codes, per address and overall). They live in the
/// store, not in process memory: on Lambda every instance has its own memory.
#[async_trait]
pub trait CounterStore: Send + Sync + 'static {
    /// The value of a failure counter (0 if it does not exist).
    async fn failures(&self, key: &str) -> Result<u64, StoreError>;

    /// Adds one to a failure counter, atomically, keeping it until `purge_at` (Unix seconds).
    /// Returns the new value. A guess reserves its failure this way before it is checked, so
    /// concurrent guesses cannot all pass one reading of the limit. A resent attempt counts
    /// once, unless another request's count lands between the attempt and its resend (then it
    /// may count once more: a counter errs towards the limit, never below it).
    async fn add_failure(&self, key: &str, purge_at: i64) -> Result<u64, StoreError>;

    /// Takes one back from a failure counter, atomically, if it is above zero (a reserved
    /// failure that turned out not to be one).
    async fn refund_failure(&self, key: &str) -> Result<(), StoreError>;
}

/// A whole store: sessions, user codes and failure counters in one place, the handle the flow and
/// the app hold (`Arc<dyn Store>`). Every type with the three parts is one.
pub trait Store: SessionStore + UserCodeStore + CounterStore {}

impl<T: SessionStore + UserCodeStore + CounterStore> Store for T {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::PollId;

    #[test]
    fn only_an_authorized_session_makes_a_claim() {
        let mut session =
            Session::new_pending(&PollId::generate(0), 0, std::time::Duration::from_secs(600))
                .with_return_url(Some("https://x.example/Prod/callback".into()));
        assert!(matches!(
            Claimed::try_from(session.clone()),
            Err(StoreError::Corrupt(_))
        ));
        session.status = Status::Denied;
        assert!(matches!(
            Claimed::try_from(session.clone()),
            Err(StoreError::Corrupt(_))
        ));
        session.status = Status::Authorized {
            sealed_code: b"sealed-bytes".to_vec(),
        };
        let claimed = Claimed::try_from(session).unwrap();
        assert_eq!(claimed.sealed_code, b"sealed-bytes");
        assert_eq!(
            claimed.return_url.as_deref(),
            Some("https://x.example/Prod/callback")
        );
        let shown = format!("{claimed:?}");
        assert!(!shown.contains("115, 101"), "{shown}");
        assert!(shown.contains("<12 bytes>"), "{shown}");
    }
}
