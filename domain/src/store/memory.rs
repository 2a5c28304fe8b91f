//! An in-process store: one map behind a mutex. Sessions vanish with the process.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{Claimed, CounterStore, SessionStore, StoreError, UserCodeStore};
use crate::session::{Lease, Pace, Session, State, Status, UserCodeRecord};

#[derive(Default)]
pub struct MemoryStore {
    data: Mutex<Data>,
}

#[derive(Default)]
struct Data {
    sessions: HashMap<State, Session>,
    user_codes: HashMap<String, UserCodeRecord>,
    /// Failure counters: count and purge_at.
    counters: HashMap<String, (u64, i64)>,
}

impl Data {
    /// Whatever is past its purge_at goes when a session is created (as in SQLite), so the maps
    /// stay small.
    fn purge(&mut self, now_secs: i64) {
        self.sessions.retain(|_, s| s.purge_at > now_secs);
        self.user_codes.retain(|_, c| c.purge_at > now_secs);
        self.counters
            .retain(|_, (_, purge_at)| *purge_at > now_secs);
    }

    /// Stores `session` unless another session has its state; the same one again is a success.
    fn insert_session(&mut self, session: &Session) -> Result<(), StoreError> {
        match self.sessions.get(&session.state) {
            Some(existing) if existing.seal_public_key == session.seal_public_key => Ok(()),
            Some(_) => Err(StoreError::Conflict),
            None => {
                self.sessions.insert(session.state.clone(), session.clone());
                Ok(())
            }
        }
    }

    /// Whether a live code other than `record` (a different session's) has its key.
    fn code_taken(&self, record: &UserCodeRecord, now_ms: i64) -> bool {
        self.user_codes.get(&record.key).is_some_and(|existing| {
            existing.expires_at_ms > now_ms && existing.state != record.state
        })
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the map; a panic elsewhere while holding the lock cannot leave a session
    /// half-written (every change below is one assignment), so a poisoned lock is still usable.
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<State, Session>) -> T) -> T {
        self.with_data(|data| f(&mut data.sessions))
    }

    fn with_data<T>(&self, f: impl FnOnce(&mut Data) -> T) -> T {
        let mut data = self
            .data
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut data)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let now_secs = session.created_at_ms.div_euclid(1000);
        self.with_data(|data| {
            data.purge(now_secs);
            data.insert_session(session)
        })
    }

    async fn health(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn get(&self, state: &State) -> Result<Option<Session>, StoreError> {
        Ok(self.with(|sessions| sessions.get(state).cloned()))
    }

    async fn authorize(
        &self,
        state: &State,
        sealed_code: &[u8],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.with(|sessions| match sessions.get_mut(state) {
            Some(s) if s.status == Status::Pending && !s.is_expired(now_ms) => {
                s.status = Status::Authorized {
                    sealed_code: sealed_code.to_vec(),
                };
                true
            }
            Some(s) => {
                matches!(&s.status, Status::Authorized { sealed_code: held } if held == sealed_code)
            }
            _ => false,
        }))
    }

    async fn deny(&self, state: &State, now_ms: i64) -> Result<bool, StoreError> {
        Ok(self.with(|sessions| match sessions.get_mut(state) {
            Some(s) if s.status == Status::Pending && !s.is_expired(now_ms) => {
                s.status = Status::Denied;
                true
            }
            _ => false,
        }))
    }

    async fn claim(
        &self,
        state: &State,
        lease: &Lease,
        now_ms: i64,
    ) -> Result<Option<Claimed>, StoreError> {
        Ok(self.with(|sessions| {
            let s = sessions.get_mut(state)?;
            let Status::Authorized { sealed_code } = &s.status else {
                return None;
            };
            let held = s.lease.as_ref().is_some_and(|held| held.id == lease.id);
            if !held && (s.is_expired(now_ms) || s.is_leased(now_ms)) {
                return None;
            }
            let claimed = Claimed {
                sealed_code: sealed_code.clone(),
                return_url: s.return_url.clone(),
            };
            s.lease = Some(lease.clone());
            Some(claimed)
        }))
    }

    async fn release(&self, state: &State, lease_id: &str) -> Result<bool, StoreError> {
        Ok(self.with(|sessions| match sessions.get_mut(state) {
            Some(s) if s.lease.as_ref().is_none_or(|l| l.id == lease_id) => {
                s.lease = None;
                true
            }
            _ => false,
        }))
    }

    async fn finish(&self, state: &State, lease_id: &str) -> Result<bool, StoreError> {
        Ok(self.with(|sessions| match sessions.get(state) {
            None => true,
            Some(s) if s.lease.as_ref().is_some_and(|l| l.id == lease_id) => {
                sessions.remove(state);
                true
            }
            Some(_) => false,
        }))
    }

    async fn pace_poll(
        &self,
        state: &State,
        now_ms: i64,
        step_ms: i64,
    ) -> Result<Pace, StoreError> {
        Ok(self.with(|sessions| {
            let Some(device) = sessions.get_mut(state).and_then(|s| s.device.as_mut()) else {
                return Pace::NotFound;
            };
            if device.next_poll_ms.is_none_or(|next| next <= now_ms) {
                device.next_poll_ms = Some(now_ms + device.interval_ms);
                Pace::Allowed
            } else {
                device.interval_ms += step_ms;
                device.next_poll_ms = Some(now_ms + device.interval_ms);
                Pace::SlowDown {
                    interval_ms: device.interval_ms,
                }
            }
        }))
    }
}

#[async_trait]
impl UserCodeStore for MemoryStore {
    async fn create_user_code(
        &self,
        record: &UserCodeRecord,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        Ok(self.with_data(|data| {
            let taken = data.code_taken(record, now_ms);
            if !taken {
                data.user_codes.insert(record.key.clone(), record.clone());
            }
            !taken
        }))
    }

    async fn find_user_code(&self, key: &str) -> Result<Option<UserCodeRecord>, StoreError> {
        Ok(self.with_data(|data| data.user_codes.get(key).cloned()))
    }

    async fn create_with_user_code(
        &self,
        session: &Session,
        record: &UserCodeRecord,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        self.with_data(|data| {
            data.purge(session.created_at_ms.div_euclid(1000));
            if data
                .sessions
                .get(&session.state)
                .is_some_and(|existing| existing.seal_public_key != session.seal_public_key)
            {
                return Err(StoreError::Conflict);
            }
            if data.code_taken(record, now_ms) {
                return Ok(false);
            }
            data.insert_session(session)?;
            data.user_codes.insert(record.key.clone(), record.clone());
            Ok(true)
        })
    }
}

#[async_trait]
impl CounterStore for MemoryStore {
    async fn failures(&self, key: &str) -> Result<u64, StoreError> {
        Ok(self.with_data(|data| data.counters.get(key).map_or(0, |(count, _)| *count)))
    }

    async fn add_failure(&self, key: &str, purge_at: i64) -> Result<u64, StoreError> {
        Ok(self.with_data(|data| {
            let entry = data.counters.entry(key.to_owned()).or_insert((0, purge_at));
            entry.0 += 1;
            entry.1 = entry.1.max(purge_at);
            entry.0
        }))
    }

    async fn refund_failure(&self, key: &str) -> Result<(), StoreError> {
        self.with_data(|data| {
            if let Some((count, _)) = data.counters.get_mut(key) {
                *count = count.saturating_sub(1);
            }
        });
        Ok(())
    }
}
