//! An in-process store: one map behind a mutex. Sessions vanish with the process.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;

use super::{SessionStore, StoreError};
use crate::session::{Lease, Session, State, Status};

#[derive(Default)]
pub struct MemoryStore {
    sessions: Mutex<HashMap<State, Session>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs `f` on the map; a panic elsewhere while holding the lock cannot leave a session
    /// half-written (every change below is one assignment), so a poisoned lock is still usable.
    fn with<T>(&self, f: impl FnOnce(&mut HashMap<State, Session>) -> T) -> T {
        let mut sessions = self
            .sessions
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut sessions)
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let now_secs = session.created_at_ms.div_euclid(1000);
        self.with(|sessions| {
            sessions.retain(|_, s| s.purge_at > now_secs);
            if sessions.contains_key(&session.state) {
                return Err(StoreError::Conflict);
            }
            sessions.insert(session.state.clone(), session.clone());
            Ok(())
        })
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
    ) -> Result<Option<Session>, StoreError> {
        Ok(self.with(|sessions| match sessions.get_mut(state) {
            Some(s)
                if matches!(s.status, Status::Authorized { .. })
                    && !s.is_expired(now_ms)
                    && !s.is_leased(now_ms) =>
            {
                s.lease = Some(lease.clone());
                Some(s.clone())
            }
            _ => None,
        }))
    }

    async fn release(&self, state: &State, lease_id: &str) -> Result<bool, StoreError> {
        Ok(self.with(|sessions| match sessions.get_mut(state) {
            Some(s) if s.lease.as_ref().is_some_and(|l| l.id == lease_id) => {
                s.lease = None;
                true
            }
            _ => false,
        }))
    }

    async fn finish(&self, state: &State, lease_id: &str) -> Result<bool, StoreError> {
        Ok(self.with(|sessions| {
            let held = sessions
                .get(state)
                .is_some_and(|s| s.lease.as_ref().is_some_and(|l| l.id == lease_id));
            if held {
                sessions.remove(state);
            }
            held
        }))
    }
}
