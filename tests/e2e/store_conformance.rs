//! One suite, every store: the semantics the flow relies on, checked against each
//! `SessionStore` implementation the same way.

use std::sync::Arc;

use shared::session::{Lease, PollId, Session, Status};
use shared::store::{MemoryStore, SessionStore, SqliteStore, StoreError};

const NOW: i64 = 1_800_000_000_000;
const TTL_MS: i64 = 600_000;

fn pending(now: i64) -> (PollId, Session) {
    let id = PollId::generate();
    let session = Session::new_pending(&id, now, TTL_MS, 600, None, None);
    (id, session)
}

fn lease(name: &str, until_ms: i64) -> Lease {
    Lease {
        id: name.to_owned(),
        until_ms,
    }
}

pub async fn create_and_get_round_trip(store: Arc<dyn SessionStore>) {
    let (id, session) = pending(NOW);
    store.create(&session).await.unwrap();
    assert_eq!(store.get(&id.state()).await.unwrap(), Some(session.clone()));
    assert!(matches!(
        store.create(&session).await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(store.get(&PollId::generate().state()).await.unwrap(), None);

    // Optional fields survive the trip too.
    let id = PollId::generate();
    let challenge =
        shared::session::CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    let full = Session::new_pending(
        &id,
        NOW,
        TTL_MS,
        600,
        challenge,
        Some("https://x.example/Prod/callback".into()),
    );
    store.create(&full).await.unwrap();
    assert_eq!(store.get(&id.state()).await.unwrap(), Some(full));
}

pub async fn callback_is_write_once(store: Arc<dyn SessionStore>) {
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

pub async fn unknown_and_expired_sessions_take_no_writes(store: Arc<dyn SessionStore>) {
    let unknown = PollId::generate().state();
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
    assert!(!store.finish(&unknown, "a").await.unwrap());
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

pub async fn claim_is_exclusive_until_released_or_lapsed(store: Arc<dyn SessionStore>) {
    let (id, session) = pending(NOW);
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
    assert_eq!(claimed.lease, Some(lease("a", NOW + 1000)));
    assert_eq!(
        claimed.status,
        Status::Authorized {
            sealed_code: b"code".to_vec()
        }
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
    assert!(!store.finish(&state, "c").await.unwrap());
}

pub async fn concurrent_claims_have_one_winner(store: Arc<dyn SessionStore>) {
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

pub async fn purged_only_after_the_grace_period(store: Arc<dyn SessionStore>) {
    let (old_id, old) = pending(NOW);
    store.create(&old).await.unwrap();
    // A later create is when stores that purge on write do so; before purge_at nothing goes.
    let (_, during_grace) = pending((old.purge_at - 1) * 1000);
    store.create(&during_grace).await.unwrap();
    assert!(store.get(&old_id.state()).await.unwrap().is_some());
}

/// Runs the whole suite against stores made by `make`, a fresh one per case.
macro_rules! conformance_suite {
    ($module:ident, $make:expr) => {
        mod $module {
            use super::*;

            async fn store() -> Arc<dyn SessionStore> {
                $make
            }

            #[tokio::test]
            async fn create_and_get_round_trip() {
                super::create_and_get_round_trip(store().await).await;
            }
            #[tokio::test]
            async fn callback_is_write_once() {
                super::callback_is_write_once(store().await).await;
            }
            #[tokio::test]
            async fn unknown_and_expired_sessions_take_no_writes() {
                super::unknown_and_expired_sessions_take_no_writes(store().await).await;
            }
            #[tokio::test]
            async fn claim_is_exclusive_until_released_or_lapsed() {
                super::claim_is_exclusive_until_released_or_lapsed(store().await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn concurrent_claims_have_one_winner() {
                super::concurrent_claims_have_one_winner(store().await).await;
            }
            #[tokio::test]
            async fn purged_only_after_the_grace_period() {
                super::purged_only_after_the_grace_period(store().await).await;
            }
        }
    };
}

conformance_suite!(memory, Arc::new(MemoryStore::new()));
conformance_suite!(sqlite, {
    // The directory is leaked on purpose: it must outlive the store, and it lives in /tmp.
    let dir = tempfile::tempdir().unwrap().keep();
    Arc::new(SqliteStore::open(&dir.join("sessions.db")).unwrap())
});

#[tokio::test]
async fn sqlite_sessions_survive_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let (id, session) = pending(NOW);
    {
        let store = SqliteStore::open(&path).unwrap();
        store.create(&session).await.unwrap();
        assert!(store.authorize(&id.state(), b"sealed", NOW).await.unwrap());
    }
    let reopened = SqliteStore::open(&path).unwrap();
    let stored = reopened.get(&id.state()).await.unwrap().unwrap();
    assert_eq!(
        stored.status,
        Status::Authorized {
            sealed_code: b"sealed".to_vec()
        }
    );
}

#[cfg(unix)]
#[tokio::test]
async fn the_sqlite_file_is_private_to_its_owner() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let store = SqliteStore::open(&path).unwrap();
    store.create(&pending(NOW).1).await.unwrap();
    for file in ["sessions.db", "sessions.db-wal"] {
        let mode = std::fs::metadata(dir.path().join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
}

conformance_suite!(dynamodb, {
    let aws = e2e_tests::aws::sdk_config(&e2e_tests::aws::moto_endpoint());
    let table = e2e_tests::aws::create_sessions_table(&aws).await;
    Arc::new(shared::store::DynamoDbStore::new(
        aws_sdk_dynamodb::Client::new(&aws),
        table,
    ))
});
