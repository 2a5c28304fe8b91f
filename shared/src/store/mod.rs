//! Where sessions live between `/new`, `/callback` and `/token`.
//!
//! Every write is conditional, so that the store (not process memory) decides races: on Lambda
//! each instance has its own memory, and the local server may run several requests at once.
//! Implementations: the SQLite store (the embedded default, crate `monzo-auth-sqlite`), the
//! DynamoDB store (the AWS shape, crate `monzo-auth-dynamodb`), [`memory`] (tests, throwaway
//! runs); the same conformance suite (in `tests/`) runs against each.

pub mod memory;

use std::error::Error as StdError;

use async_trait::async_trait;

use crate::session::{Lease, Pace, Session, State, UserCodeRecord};

pub use memory::MemoryStore;

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

/// Storage for sessions. All times are Unix milliseconds passed in by the caller, so the store
/// holds no clock of its own.
#[async_trait]
pub trait SessionStore: Send + Sync + 'static {
    /// Inserts a new session, only if no session has its state.
    async fn create(&self, session: &Session) -> Result<(), StoreError>;

    /// Reads a session as it is now (strongly consistent). Expired sessions are returned as they
    /// are, until purged; the caller decides what expiry means.
    async fn get(&self, state: &State) -> Result<Option<Session>, StoreError>;

    /// Records the sealed authorization code, only if the session is pending and unexpired.
    /// Returns whether it did.
    async fn authorize(
        &self,
        state: &State,
        sealed_code: &[u8],
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Records the user's refusal, only if the session is pending and unexpired.
    async fn deny(&self, state: &State, now_ms: i64) -> Result<bool, StoreError>;

    /// Takes `lease` on an authorized, unexpired session that nobody holds (or whose last lease
    /// has lapsed). Returns the session as claimed, or `None` if the claim did not apply.
    async fn claim(
        &self,
        state: &State,
        lease: &Lease,
        now_ms: i64,
    ) -> Result<Option<Session>, StoreError>;

    /// Gives the claim back, only if `lease_id` still holds it, so the next poll can retry.
    async fn release(&self, state: &State, lease_id: &str) -> Result<bool, StoreError>;

    /// Deletes the session, only if `lease_id` still holds it: the end of a redeemed (or
    /// definitively failed) session.
    async fn finish(&self, state: &State, lease_id: &str) -> Result<bool, StoreError>;

    /// Maps a user code (by its [`UserCodeRecord::key`]) to its session, only if no live code
    /// has that key (an expired one may be replaced). Returns whether it did.
    async fn create_user_code(
        &self,
        record: &UserCodeRecord,
        now_ms: i64,
    ) -> Result<bool, StoreError>;

    /// Looks up a user code by its key, expired or not (the caller checks).
    async fn find_user_code(&self, key: &str) -> Result<Option<UserCodeRecord>, StoreError>;

    /// Paces a device session's polls, atomically: the first poll, or one at least the session's
    /// interval after the previous, is [`Pace::Allowed`] and starts a new interval; an earlier
    /// one grows the interval by `step_ms` for good, starts it anew, and is [`Pace::SlowDown`].
    async fn pace_poll(&self, state: &State, now_ms: i64, step_ms: i64)
    -> Result<Pace, StoreError>;

    /// The value of a failure counter (0 if it does not exist).
    async fn failures(&self, key: &str) -> Result<u64, StoreError>;

    /// Adds one to a failure counter, atomically, keeping it until `purge_at` (Unix seconds).
    /// Returns the new value.
    async fn add_failure(&self, key: &str, purge_at: i64) -> Result<u64, StoreError>;
}
