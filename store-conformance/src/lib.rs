//! One suite, every store: the semantics the flow relies on, checked against each `Store`
//! implementation (sessions, user codes, failure counters) the same way. Each store's crate runs
//! it with [`conformance_suite!`] (memory in `monzo-auth-domain`, SQLite in
//! `monzo-auth-sqlite`, DynamoDB on moto in the end-to-end tests); the helpers make sessions
//! for a store's own tests.

use std::sync::Arc;

use monzo_auth_domain::session::{
    DeviceGrant, Lease, Pace, PollId, Session, Status, UserCode, UserCodeRecord,
};
use monzo_auth_domain::store::{Claimed, StoreError};

/// The time every case starts at.
pub const NOW: i64 = 1_800_000_000_000;
/// Sessions' lifetime.
pub const TTL: std::time::Duration = std::time::Duration::from_secs(600);
pub const TTL_MS: i64 = 600_000;

/// A pending session started at `now`.
pub fn pending(now: i64) -> (PollId, Session) {
    let id = PollId::generate(now);
    let session = Session::new_pending(&id, now, TTL);
    (id, session)
}

/// Another session with `session`'s state (its own sealing key): what only a broken random
/// source would make.
pub fn impostor(session: &Session) -> Session {
    let mut other = session.clone();
    other.seal_public_key = PollId::generate(NOW).sealing_key().public_key();
    other
}

/// A lease held by `name` until `until_ms`.
pub fn lease(name: &str, until_ms: i64) -> Lease {
    Lease {
        id: name.to_owned(),
        until_ms,
    }
}

pub async fn create_and_get_round_trip(store: Arc<dyn Store>) {
    let (id, session) = pending(NOW);
    store.create(&session).await.unwrap();
    assert_eq!(store.get(&id.state()).await.unwrap(), Some(session.clone()));
    // The same session again (a resent attempt) is a success; another with its state is not.
    store.create(&session).await.unwrap();
    assert!(matches!(
        store.create(&impostor(&session)).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.get(&id.state()).await.unwrap(), Some(session.clone()));
    assert_eq!(
        store.get(&PollId::generate(NOW).state()).await.unwrap(),
        None
    );

    // Optional fields survive the trip too.
    let id = PollId::generate(NOW);
    let challenge = monzo_auth_domain::session::CodeChallenge::parse(
        "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    );
    let full = Session::new_pending(&id, NOW, TTL)
        .with_code_challenge(challenge)
        .with_return_url(Some("https://x.example/Prod/callback".into()))
        .with_device(DeviceGrant {
            client_id: "my-app".into(),
            interval_ms: 5000,
            next_poll_ms: Some(NOW + 5000),
        });
    store.create(&full).await.unwrap();
    assert_eq!(store.get(&id.state()).await.unwrap(), Some(full));
}

pub async fn callback_is_write_once(store: Arc<dyn Store>) {
    let (id, session) = pending(NOW);
    store.create(&session).await.unwrap();
    let state = id.state();
    assert!(store.authorize(&state, b"first", NOW + 1).await.unwrap());
    assert!(!store.authorize(&state, b"second", NOW + 2).await.unwrap());
    assert!(
        !store.deny(&state, NOW + 3).await.unwrap(),
        "a late denial must not undo a code"
    );
    let stored = store.get(&state).await.unwrap().unwrap();
    assert_eq!(
        stored.status,
        Status::Authorized {
            sealed_code: b"first".to_vec()
        }
    );

    let (id, session) = pending(NOW);
    store.create(&session).await.unwrap();
    assert!(store.deny(&id.state(), NOW + 1).await.unwrap());
    assert!(!store.deny(&id.state(), NOW + 2).await.unwrap());
    assert!(
        !store
            .authorize(&id.state(), b"late", NOW + 3)
            .await
            .unwrap()
    );
    assert_eq!(
        store.get(&id.state()).await.unwrap().unwrap().status,
        Status::Denied
    );
}

/// Each write sent again with the same arguments, as a retry after an attempt whose answer was
/// lost, finds its own effect and succeeds; the same write for another writer still fails.
pub async fn resent_writes_find_their_own_effect(store: Arc<dyn Store>) {
    let (id, session) = pending(NOW);
    let state = id.state();
    store.create(&session).await.unwrap();
    assert!(store.authorize(&state, b"sealed", NOW + 1).await.unwrap());
    assert!(store.authorize(&state, b"sealed", NOW + 2).await.unwrap());
    assert!(
        !store.authorize(&state, b"another", NOW + 3).await.unwrap(),
        "a second callback with another code still fails"
    );

    let first = lease("first", NOW + 30_000);
    let claimed = store.claim(&state, &first, NOW + 4).await.unwrap();
    assert!(claimed.is_some());
    assert_eq!(store.claim(&state, &first, NOW + 5).await.unwrap(), claimed);
    assert_eq!(
        store
            .claim(&state, &lease("second", NOW + 30_000), NOW + 6)
            .await
            .unwrap(),
        None,
        "another poll's claim still fails while the lease holds"
    );
    assert!(store.release(&state, "first").await.unwrap());
    assert!(
        store.release(&state, "first").await.unwrap(),
        "released already"
    );
    let second = lease("second", NOW + 30_000);
    assert!(
        store
            .claim(&state, &second, NOW + 7)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        !store.release(&state, "first").await.unwrap(),
        "another lease holds it now"
    );
    assert!(!store.finish(&state, "first").await.unwrap());
    assert!(store.finish(&state, "second").await.unwrap());
    assert!(
        store.finish(&state, "second").await.unwrap(),
        "finished already"
    );
    assert_eq!(store.get(&state).await.unwrap(), None);
    assert!(
        !store.release(&state, "second").await.unwrap(),
        "a release never brings a finished session back"
    );
    assert_eq!(store.get(&state).await.unwrap(), None);

    let (id, session) = device_session(NOW, 5000);
    store.create(&session).await.unwrap();
    let record = UserCodeRecord {
        key: UserCode::generate().store_key(),
        state: id.state(),
        expires_at_ms: session.expires_at_ms,
        purge_at: session.purge_at,
    };
    assert!(store.create_user_code(&record, NOW).await.unwrap());
    assert!(store.create_user_code(&record, NOW + 1).await.unwrap());
    let (other_id, _) = pending(NOW);
    let clash = UserCodeRecord {
        state: other_id.state(),
        ..record.clone()
    };
    assert!(!store.create_user_code(&clash, NOW + 2).await.unwrap());
    assert_eq!(code_owner(&store, &record.key).await, id.state());
}

pub async fn unknown_and_expired_sessions_take_no_writes(store: Arc<dyn Store>) {
    let unknown = PollId::generate(NOW).state();
    assert!(!store.authorize(&unknown, b"code", NOW).await.unwrap());
    assert!(!store.deny(&unknown, NOW).await.unwrap());
    assert_eq!(
        store
            .claim(&unknown, &lease("a", NOW + 1000), NOW)
            .await
            .unwrap(),
        None
    );
    assert!(!store.release(&unknown, "a").await.unwrap());
    assert!(
        store.finish(&unknown, "a").await.unwrap(),
        "no session to finish is finished"
    );
    assert_eq!(
        store.get(&unknown).await.unwrap(),
        None,
        "nothing was created by those writes"
    );

    let (id, session) = pending(NOW);
    store.create(&session).await.unwrap();
    let expired_at = session.expires_at_ms;
    assert!(
        !store
            .authorize(&id.state(), b"code", expired_at)
            .await
            .unwrap()
    );
    assert!(!store.deny(&id.state(), expired_at).await.unwrap());
    // An expired session is still there to say "expired" until it is purged.
    let still = store.get(&id.state()).await.unwrap().unwrap();
    assert!(still.is_expired(expired_at));
    assert_eq!(still.status, Status::Pending);

    let (id, session) = pending(NOW);
    store.create(&session).await.unwrap();
    assert!(store.authorize(&id.state(), b"code", NOW).await.unwrap());
    assert_eq!(
        store
            .claim(
                &id.state(),
                &lease("a", expired_at + 1000),
                session.expires_at_ms
            )
            .await
            .unwrap(),
        None,
        "an expired session cannot be claimed"
    );
}

pub async fn claim_is_exclusive_until_released_or_lapsed(store: Arc<dyn Store>) {
    let (id, session) = pending(NOW);
    let session = session.with_return_url(Some("https://x.example/Prod/callback".into()));
    store.create(&session).await.unwrap();
    let state = id.state();
    assert_eq!(
        store
            .claim(&state, &lease("a", NOW + 1000), NOW)
            .await
            .unwrap(),
        None,
        "pending"
    );
    assert!(store.authorize(&state, b"code", NOW).await.unwrap());

    let claimed = store
        .claim(&state, &lease("a", NOW + 1000), NOW)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        claimed,
        Claimed {
            sealed_code: b"code".to_vec(),
            return_url: Some("https://x.example/Prod/callback".into()),
        },
        "the claim carries what the exchange needs"
    );
    assert_eq!(
        store.get(&state).await.unwrap().unwrap().lease,
        Some(lease("a", NOW + 1000))
    );
    assert_eq!(
        store
            .claim(&state, &lease("b", NOW + 2000), NOW + 999)
            .await
            .unwrap(),
        None
    );

    assert!(
        !store.release(&state, "b").await.unwrap(),
        "only the holder releases"
    );
    assert!(store.release(&state, "a").await.unwrap());
    assert!(
        store
            .claim(&state, &lease("b", NOW + 2000), NOW + 1)
            .await
            .unwrap()
            .is_some()
    );

    // A lapsed lease can be taken over; the old holder then can neither release nor finish.
    assert!(
        store
            .claim(&state, &lease("c", NOW + 5000), NOW + 2000)
            .await
            .unwrap()
            .is_some()
    );
    assert!(!store.release(&state, "b").await.unwrap());
    assert!(!store.finish(&state, "b").await.unwrap());
    assert!(store.finish(&state, "c").await.unwrap());
    assert_eq!(store.get(&state).await.unwrap(), None);
}

pub async fn concurrent_claims_have_one_winner(store: Arc<dyn Store>) {
    let (id, session) = pending(NOW);
    store.create(&session).await.unwrap();
    assert!(store.authorize(&id.state(), b"code", NOW).await.unwrap());
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..20 {
        let (store, state) = (Arc::clone(&store), id.state());
        tasks.spawn(async move {
            store
                .claim(&state, &lease(&format!("l{n}"), NOW + 30_000), NOW)
                .await
                .unwrap()
                .is_some()
        });
    }
    let winners = tasks
        .join_all()
        .await
        .into_iter()
        .filter(|won| *won)
        .count();
    assert_eq!(winners, 1);
}

/// How a store forgets what is past its `purge_at`.
#[derive(Clone, Copy)]
pub enum Purging {
    /// On its next `create` (memory, SQLite), so no background task is needed.
    OnCreate,
    /// By the table's TTL on `purge_at`, lazily (DynamoDB); moto never deletes.
    Ttl,
}

pub async fn purged_after_the_grace_period(store: Arc<dyn Store>, purging: Purging) {
    let (old_id, old) = pending(NOW);
    store.create(&old).await.unwrap();
    let code = UserCodeRecord {
        key: UserCode::generate().store_key(),
        state: old_id.state(),
        expires_at_ms: old.expires_at_ms,
        purge_at: old.purge_at,
    };
    assert!(store.create_user_code(&code, NOW).await.unwrap());
    let counter = format!(
        "limit#test#{}",
        monzo_auth_domain::session::random_token::<6>()
    );
    store.add_failure(&counter, old.purge_at).await.unwrap();

    // Expired but within its grace period, a session is still there to answer "expired" (a
    // later create is when stores that purge on write do so).
    let (grace_id, during_grace) = pending((old.purge_at - 1) * 1000);
    store.create(&during_grace).await.unwrap();
    assert!(store.get(&old_id.state()).await.unwrap().is_some());
    assert!(store.find_user_code(&code.key).await.unwrap().is_some());
    assert_eq!(store.failures(&counter).await.unwrap(), 1);

    // Once purge_at has come, it goes, with its user code and the counter of the same age.
    let (late_id, late) = pending(old.purge_at * 1000);
    store.create(&late).await.unwrap();
    match purging {
        Purging::OnCreate => {
            assert_eq!(
                store.get(&old_id.state()).await.unwrap(),
                None,
                "a session outlived its purge_at"
            );
            assert_eq!(store.find_user_code(&code.key).await.unwrap(), None);
            assert_eq!(store.failures(&counter).await.unwrap(), 0);
        }
        Purging::Ttl => {
            // DynamoDB's TTL deletes lazily (up to days later) and moto never does, so only the
            // TTL attribute can be checked: the session's expiry plus the grace period, in Unix
            // seconds (`dynamodb_purge_at_is_the_tables_ttl_attribute` reads the items).
            let stored = store.get(&old_id.state()).await.unwrap().unwrap();
            assert_eq!(stored.purge_at, old.expires_at_ms / 1000 + 1 + 600);
        }
    }
    // What is not yet due stays.
    assert!(store.get(&grace_id.state()).await.unwrap().is_some());
    assert!(store.get(&late_id.state()).await.unwrap().is_some());
}

/// A device-flow session started at `now`, polled every `interval_ms`.
pub fn device_session(now: i64, interval_ms: i64) -> (PollId, Session) {
    let id = PollId::generate(now);
    let session = Session::new_pending(&id, now, TTL).with_device(DeviceGrant {
        client_id: "my-app".into(),
        interval_ms,
        next_poll_ms: None,
    });
    (id, session)
}

pub async fn a_device_session_and_its_code_are_stored_together(store: Arc<dyn Store>) {
    let record_for = |id: &PollId, session: &Session, code: &UserCode| UserCodeRecord {
        key: code.store_key(),
        state: id.state(),
        expires_at_ms: session.expires_at_ms,
        purge_at: session.purge_at,
    };
    let (id, session) = device_session(NOW, 5000);
    let code = UserCode::generate();
    let record = record_for(&id, &session, &code);
    assert!(
        store
            .create_with_user_code(&session, &record, NOW)
            .await
            .unwrap()
    );
    assert_eq!(store.get(&id.state()).await.unwrap(), Some(session.clone()));
    assert_eq!(
        store.find_user_code(&record.key).await.unwrap(),
        Some(record.clone())
    );
    // Both again (a resent attempt): a success that changes nothing.
    assert!(
        store
            .create_with_user_code(&session, &record, NOW)
            .await
            .unwrap()
    );
    assert_eq!(store.get(&id.state()).await.unwrap(), Some(session.clone()));
    // Another session with the state: a conflict, whatever the code.
    let another = record_for(&id, &session, &UserCode::generate());
    assert!(matches!(
        store
            .create_with_user_code(&impostor(&session), &another, NOW)
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.find_user_code(&another.key).await.unwrap(), None);
    // Another session drawing the live code: neither is written.
    let (other_id, other) = device_session(NOW, 5000);
    let clash = record_for(&other_id, &other, &code);
    assert!(
        !store
            .create_with_user_code(&other, &clash, NOW)
            .await
            .unwrap()
    );
    assert_eq!(store.get(&other_id.state()).await.unwrap(), None);
    assert_eq!(code_owner(&store, &record.key).await, id.state());
    // Once the code has expired, a new session may take it over.
    let later = NOW + TTL_MS;
    let (late_id, late) = device_session(later, 5000);
    let takeover = record_for(&late_id, &late, &code);
    assert!(
        store
            .create_with_user_code(&late, &takeover, later)
            .await
            .unwrap()
    );
    assert_eq!(code_owner(&store, &record.key).await, late_id.state());
}

/// The state of the session a stored user code maps to.
pub async fn code_owner(store: &Arc<dyn Store>, key: &str) -> monzo_auth_domain::session::State {
    store.find_user_code(key).await.unwrap().unwrap().state
}

pub async fn user_codes_map_to_their_session(store: Arc<dyn Store>) {
    let (id, session) = device_session(NOW, 5000);
    store.create(&session).await.unwrap();
    let code = UserCode::generate();
    let record = UserCodeRecord {
        key: code.store_key(),
        state: id.state(),
        expires_at_ms: session.expires_at_ms,
        purge_at: session.purge_at,
    };
    assert!(store.create_user_code(&record, NOW).await.unwrap());
    assert_eq!(
        store.find_user_code(&record.key).await.unwrap(),
        Some(record.clone())
    );
    assert_eq!(
        store
            .find_user_code(&UserCode::generate().store_key())
            .await
            .unwrap(),
        None
    );

    // A live code keeps its key; once it has expired, a new session may take it over.
    let other = UserCodeRecord {
        state: PollId::generate(NOW).state(),
        ..record.clone()
    };
    assert!(!store.create_user_code(&other, NOW + 1).await.unwrap());
    assert_eq!(code_owner(&store, &record.key).await, id.state());
    let later = UserCodeRecord {
        expires_at_ms: record.expires_at_ms + TTL_MS,
        ..other
    };
    assert!(
        store
            .create_user_code(&later, record.expires_at_ms)
            .await
            .unwrap()
    );
    assert_eq!(
        store.find_user_code(&record.key).await.unwrap(),
        Some(later)
    );
}

pub async fn device_polls_are_paced(store: Arc<dyn Store>) {
    let (id, session) = device_session(NOW, 5000);
    store.create(&session).await.unwrap();
    let state = id.state();
    assert_eq!(
        store.pace_poll(&state, NOW, 5000).await.unwrap(),
        Pace::Allowed,
        "first poll"
    );
    assert_eq!(
        store.pace_poll(&state, NOW + 1000, 5000).await.unwrap(),
        Pace::SlowDown {
            interval_ms: 10_000
        }
    );
    // The grown interval runs from the too-early poll and stays grown.
    assert_eq!(
        store.pace_poll(&state, NOW + 10_999, 5000).await.unwrap(),
        Pace::SlowDown {
            interval_ms: 15_000
        }
    );
    assert_eq!(
        store.pace_poll(&state, NOW + 25_999, 5000).await.unwrap(),
        Pace::Allowed
    );
    assert_eq!(
        store.pace_poll(&state, NOW + 40_999, 5000).await.unwrap(),
        Pace::Allowed
    );
    // Pacing may be answered before it is durable (SQLite): reads show it once a later write
    // has committed, as this create does (batches commit in order).
    let (plain, session) = pending(NOW);
    store.create(&session).await.unwrap();
    let stored = store.get(&state).await.unwrap().unwrap().device.unwrap();
    assert_eq!(
        (stored.interval_ms, stored.next_poll_ms),
        (15_000, Some(NOW + 55_999))
    );
    assert_eq!(
        store.pace_poll(&plain.state(), NOW, 5000).await.unwrap(),
        Pace::NotFound,
        "not a device session"
    );
    assert_eq!(
        store
            .pace_poll(&PollId::generate(NOW).state(), NOW, 5000)
            .await
            .unwrap(),
        Pace::NotFound
    );
}

pub async fn failure_counters_count_atomically(store: Arc<dyn Store>) {
    let key = format!(
        "limit#test#{}",
        monzo_auth_domain::session::random_token::<6>()
    );
    assert_eq!(store.failures(&key).await.unwrap(), 0);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..10 {
        let (store, key) = (Arc::clone(&store), key.clone());
        tasks.spawn(async move { store.add_failure(&key, NOW / 1000 + 600).await.unwrap() });
    }
    let mut seen: Vec<u64> = tasks.join_all().await;
    seen.sort();
    assert_eq!(
        seen,
        (1..=10).collect::<Vec<_>>(),
        "each increment saw its own count"
    );
    assert_eq!(store.failures(&key).await.unwrap(), 10);

    // Refunds, concurrent too, take back one each and never go below zero.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..12 {
        let (store, key) = (Arc::clone(&store), key.clone());
        tasks.spawn(async move { store.refund_failure(&key).await.unwrap() });
    }
    tasks.join_all().await;
    assert_eq!(store.failures(&key).await.unwrap(), 0);
    assert_eq!(store.add_failure(&key, NOW / 1000 + 600).await.unwrap(), 1);
    let absent = format!(
        "limit#test#{}",
        monzo_auth_domain::session::random_token::<6>()
    );
    store.refund_failure(&absent).await.unwrap();
    assert_eq!(store.failures(&absent).await.unwrap(), 0);
}

/// The store trait the suite takes.
pub use monzo_auth_domain::store::Store;

/// Runs the whole suite against stores made by `make`, a fresh one per case, which purge as
/// [`Purging`]`::$purging` says: `conformance_suite!(sqlite, OnCreate, { ... })`. The caller
/// needs tokio (tests) among its dev-dependencies.
#[macro_export]
macro_rules! conformance_suite {
    ($module:ident, $purging:ident, $make:expr) => {
        mod $module {
            use super::*;

            async fn store() -> std::sync::Arc<dyn $crate::Store> {
                $make
            }

            #[tokio::test]
            async fn create_and_get_round_trip() {
                $crate::create_and_get_round_trip(store().await).await;
            }
            #[tokio::test]
            async fn resent_writes_find_their_own_effect() {
                $crate::resent_writes_find_their_own_effect(store().await).await;
            }
            #[tokio::test]
            async fn callback_is_write_once() {
                $crate::callback_is_write_once(store().await).await;
            }
            #[tokio::test]
            async fn unknown_and_expired_sessions_take_no_writes() {
                $crate::unknown_and_expired_sessions_take_no_writes(store().await).await;
            }
            #[tokio::test]
            async fn claim_is_exclusive_until_released_or_lapsed() {
                $crate::claim_is_exclusive_until_released_or_lapsed(store().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_claims_have_one_winner() {
                $crate::concurrent_claims_have_one_winner(store().await).await;
            }
            #[tokio::test]
            async fn user_codes_map_to_their_session() {
                $crate::user_codes_map_to_their_session(store().await).await;
            }
            #[tokio::test]
            async fn a_device_session_and_its_code_are_stored_together() {
                $crate::a_device_session_and_its_code_are_stored_together(store().await).await;
            }
            #[tokio::test]
            async fn device_polls_are_paced() {
                $crate::device_polls_are_paced(store().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn failure_counters_count_atomically() {
                $crate::failure_counters_count_atomically(store().await).await;
            }
            #[tokio::test]
            async fn purged_after_the_grace_period() {
                $crate::purged_after_the_grace_period(store().await, $crate::Purging::$purging)
                    .await;
            }
        }
    };
}
