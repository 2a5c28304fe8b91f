//! The SQLite store: the conformance suite every store passes, and what only this store has to
//! get right (its group-commit writer, checkpoints beside it, a file that vanishes or is
//! replaced, migrations of older files).

use std::sync::Arc;

use monzo_auth_domain::session::{
    AuthCode, Pace, PollId, Session, Status, UserCode, UserCodeRecord,
};
use monzo_auth_domain::store::{
    CounterStore as _, SessionStore as _, Store, StoreError, UserCodeStore as _,
};
use monzo_auth_sqlite::SqliteStore;
use monzo_auth_store_conformance::{
    NOW, TTL, a_device_session_and_its_code_are_stored_together, code_owner, conformance_suite,
    create_and_get_round_trip, device_polls_are_paced, device_session,
    failure_counters_count_atomically, impostor, lease, pending, user_codes_map_to_their_session,
};

conformance_suite!(sqlite, OnCreate, {
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

fn sqlite_store() -> (tempfile::TempDir, std::path::PathBuf, SqliteStore) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let store = SqliteStore::open(&path).unwrap();
    (dir, path, store)
}

#[tokio::test]
async fn the_sqlite_writer_commits_with_synchronous_full() {
    let (_dir, _, store) = sqlite_store();
    assert_eq!(store.writer_pragma("synchronous").await.unwrap(), 2, "FULL");
    assert_eq!(store.writer_pragma("secure_delete").await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_checkpoints_beside_the_writer_and_the_wal_starts_again() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    // A checkpoint every 16 frames; 120 commits write at least two each (the sessions leaf and
    // its purge index).
    let store = SqliteStore::open_checkpointing_at(&path, 16).unwrap();
    let mut ids = Vec::new();
    for commit in 0..120 {
        let mut writes = tokio::task::JoinSet::new();
        for i in 0..4 {
            let (id, session) = pending(NOW + commit * 4 + i);
            ids.push(id);
            let store = store.clone();
            writes.spawn(async move { store.create(&session).await });
        }
        assert!(writes.join_all().await.iter().all(Result::is_ok));
    }
    assert!(
        store.checkpoint_rounds() > 0,
        "the checkpointer thread copied frames"
    );
    // Had the WAL never started again from its beginning, it would hold all 240 frames or more.
    let frame = 4096 + 24;
    let wal = std::fs::metadata(dir.path().join("sessions.db-wal"))
        .unwrap()
        .len();
    assert!(
        wal < 120 * frame,
        "the WAL stays short: {} frames",
        wal / frame
    );
    for id in &ids {
        assert!(store.get(&id.state()).await.unwrap().is_some());
    }
    drop(store);
    let reopened = SqliteStore::open(&path).unwrap();
    for id in &ids {
        assert!(reopened.get(&id.state()).await.unwrap().is_some());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn under_steady_sqlite_writes_the_writer_finishes_each_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    // 16 writers that never pause: each checkpointer round has commits after it, so the WAL
    // starts again only through the writer's finishing copy (without it, the 4,800 device logins
    // leave ten thousand frames or more in the WAL).
    let store = SqliteStore::open_checkpointing_at(&path, 64).unwrap();
    let mut writers = tokio::task::JoinSet::new();
    for writer in 0..16 {
        let store = store.clone();
        writers.spawn(async move {
            for i in 0..300 {
                let (id, session) = device_session(NOW + writer * 1000 + i, 5000);
                let record = UserCodeRecord {
                    key: UserCode::generate().store_key(),
                    state: id.state(),
                    expires_at_ms: session.expires_at_ms,
                    purge_at: session.purge_at,
                };
                assert!(
                    store
                        .create_with_user_code(&session, &record, NOW)
                        .await
                        .unwrap()
                );
            }
        });
    }
    writers.join_all().await;
    let frame = 4096 + 24;
    let wal = std::fs::metadata(dir.path().join("sessions.db-wal"))
        .unwrap()
        .len();
    assert!(
        wal < 2000 * frame,
        "the WAL stays short: {} frames",
        wal / frame
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_sqlite_write_is_answered_before_its_batch_commits() {
    let (_dir, _, store) = sqlite_store();
    let log = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let hook_log = Arc::clone(&log);
    store
        .on_commit(move || {
            hook_log.lock().unwrap().push("commit".into());
            // Holds the commit open, so an answer sent before it would show up first.
            std::thread::sleep(std::time::Duration::from_millis(20));
            false
        })
        .await
        .unwrap();
    let mut writes = tokio::task::JoinSet::new();
    for i in 0..40 {
        let (store, log) = (store.clone(), Arc::clone(&log));
        writes.spawn(async move {
            log.lock().unwrap().push(format!("sent {i}"));
            let count = store
                .add_failure(&format!("k{i}"), NOW / 1000)
                .await
                .unwrap();
            log.lock().unwrap().push(format!("answer {i}"));
            count
        });
    }
    assert!(writes.join_all().await.iter().all(|count| *count == 1));
    let log = log.lock().unwrap().clone();
    let commits = log.iter().filter(|entry| *entry == "commit").count();
    assert!(
        commits < 40,
        "concurrent writes share commits ({commits} for 40)"
    );
    for i in 0..40 {
        let sent = log.iter().position(|e| *e == format!("sent {i}")).unwrap();
        let answered = log
            .iter()
            .position(|e| *e == format!("answer {i}"))
            .unwrap();
        assert!(
            log[sent..answered].iter().any(|e| e == "commit"),
            "write {i} was answered before a commit after it was sent: {log:?}"
        );
    }
}

/// Makes the store's next commit fail (the hook's own batch has committed by the time this
/// returns).
async fn fail_the_next_commit(store: &SqliteStore) {
    let fail = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let armed = Arc::clone(&fail);
    store
        .on_commit(move || armed.swap(false, std::sync::atomic::Ordering::SeqCst))
        .await
        .unwrap();
    fail.store(true, std::sync::atomic::Ordering::SeqCst);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_sqlite_commit_fails_every_write_of_its_batch_and_keeps_none() {
    let (_dir, _, store) = sqlite_store();
    fail_the_next_commit(&store).await;
    let (id, session) = pending(NOW);
    assert!(matches!(
        store.create(&session).await,
        Err(StoreError::Unavailable(_))
    ));
    assert_eq!(store.get(&id.state()).await.unwrap(), None, "nothing kept");
    store.create(&session).await.unwrap();
    assert!(store.get(&id.state()).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_pacing_is_answered_before_its_commit_and_may_be_lost_with_its_batch() {
    let (_dir, _, store) = sqlite_store();
    let (id, session) = device_session(NOW, 5000);
    store.create(&session).await.unwrap();
    fail_the_next_commit(&store).await;
    // The batch fails to commit, yet the poll had its answer: pacing waits for no fsync.
    assert_eq!(
        store.pace_poll(&id.state(), NOW, 5000).await.unwrap(),
        Pace::Allowed
    );
    // Lost with its batch: the cost is one early poll, allowed again.
    let kept = store.get(&id.state()).await.unwrap().unwrap();
    assert_eq!(kept.device.unwrap().next_poll_ms, None);
    assert_eq!(
        store.pace_poll(&id.state(), NOW + 1, 5000).await.unwrap(),
        Pace::Allowed
    );
    assert!(matches!(
        store.pace_poll(&id.state(), NOW + 2, 5000).await.unwrap(),
        Pace::SlowDown { .. }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_writes_in_one_batch_keep_their_own_outcomes() {
    let (_dir, _, store) = sqlite_store();
    let (id, session) = pending(NOW);
    store.create(&session).await.unwrap();
    assert!(store.authorize(&id.state(), b"sealed", NOW).await.unwrap());
    // A conflicting create fails, 20 claims race for one session, other sessions are created:
    // each answers as it would alone, and a failure rolls back nothing but itself.
    let mut writes = tokio::task::JoinSet::new();
    let (store2, dup) = (store.clone(), impostor(&session));
    writes.spawn(async move { format!("dup:{}", store2.create(&dup).await.is_err()) });
    for i in 0..20 {
        let (store, state) = (store.clone(), id.state());
        writes.spawn(async move {
            let claimed = store
                .claim(&state, &lease(&format!("l{i}"), NOW + 30_000), NOW)
                .await
                .unwrap();
            format!("claim:{}", claimed.is_some())
        });
    }
    let others: Vec<_> = (0..10).map(|_| pending(NOW)).collect();
    for (_, other) in &others {
        let (store, other) = (store.clone(), other.clone());
        writes.spawn(async move { format!("other:{}", store.create(&other).await.is_ok()) });
    }
    let outcomes = writes.join_all().await;
    let count = |what: &str| outcomes.iter().filter(|o| *o == what).count();
    assert_eq!(count("dup:true"), 1);
    assert_eq!(count("claim:true"), 1, "{outcomes:?}");
    assert_eq!(count("claim:false"), 19);
    assert_eq!(count("other:true"), 10);
    for (other_id, _) in &others {
        assert!(store.get(&other_id.state()).await.unwrap().is_some());
    }
}

#[tokio::test]
async fn a_deleted_sqlite_file_is_noticed_and_created_again() {
    let (dir, path, store) = sqlite_store();
    let (old_id, old) = pending(NOW);
    store.create(&old).await.unwrap();
    store.health().await.unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    assert!(
        store.health().await.is_err(),
        "health notices the file is gone"
    );
    let (new_id, new) = pending(NOW);
    assert!(
        matches!(store.create(&new).await, Err(StoreError::Unavailable(_))),
        "the write that notices answers 503"
    );
    // The directory is there: the next write creates the database again and goes through.
    store.create(&new).await.unwrap();
    assert!(path.exists());
    store.health().await.unwrap();
    assert!(store.get(&new_id.state()).await.unwrap().is_some());
    assert_eq!(
        store.get(&old_id.state()).await.unwrap(),
        None,
        "the old file's sessions are lost"
    );

    // The whole directory gone: writes answer 503 until it is back.
    std::fs::remove_dir_all(dir.path()).unwrap();
    let (_, third) = pending(NOW);
    for _ in 0..2 {
        assert!(matches!(
            store.create(&third).await,
            Err(StoreError::Unavailable(_))
        ));
    }
    assert!(store.health().await.is_err());
    std::fs::create_dir_all(dir.path()).unwrap();
    store.create(&third).await.unwrap();
    store.health().await.unwrap();
}

#[tokio::test]
async fn a_replaced_sqlite_file_is_noticed() {
    let (_dir, path, store) = sqlite_store();
    store.create(&pending(NOW).1).await.unwrap();
    let other = path.with_extension("other");
    drop(SqliteStore::open(&other).unwrap());
    std::fs::rename(&other, &path).unwrap();
    assert!(store.health().await.is_err());
    assert!(matches!(
        store.create(&pending(NOW).1).await,
        Err(StoreError::Unavailable(_))
    ));
    store.create(&pending(NOW).1).await.unwrap();
    store.health().await.unwrap();
}

#[tokio::test]
async fn another_processs_write_lock_does_not_hold_up_reads_or_health() {
    let (_dir, path, store) = sqlite_store();
    let (id, session) = pending(NOW);
    store.create(&session).await.unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    // Reads run on their own connections (WAL): they answer at once, lock or no lock.
    store.health().await.unwrap();
    assert!(store.get(&id.state()).await.unwrap().is_some());
    assert_eq!(store.failures("nothing").await.unwrap(), 0);
    other.execute_batch("ROLLBACK").unwrap();
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

/// A SQLite file as version 1 of the schema left it: that release's schema word for word, set up
/// as it did (`shared/src/store/sqlite.rs` from c23ef6d until c5efbf7 migrated it to 2). Frozen
/// here, not taken from the adapter, so that a change to the migrations cannot change what an
/// old file looks like.
fn sqlite_version_1_file(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    let _mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .unwrap();
    conn.execute_batch(
        "
        CREATE TABLE IF NOT EXISTS sessions (
            state           TEXT PRIMARY KEY NOT NULL,
            status          TEXT NOT NULL CHECK (status IN ('pending', 'authorized', 'denied')),
            seal_public_key BLOB NOT NULL,
            sealed_code     BLOB,
            code_challenge  TEXT,
            return_url      TEXT,
            created_at_ms   INTEGER NOT NULL,
            expires_at_ms   INTEGER NOT NULL,
            purge_at        INTEGER NOT NULL,
            lease_id        TEXT,
            lease_until_ms  INTEGER
        ) WITHOUT ROWID;
        CREATE INDEX IF NOT EXISTS sessions_by_purge_at ON sessions (purge_at);
        ",
    )
    .unwrap();
    conn.pragma_update(None, "user_version", 1).unwrap();
    conn
}

/// A SQLite file as version 2 left it: version 1 and that release's migration word for word
/// (from c5efbf7 until schema 3 moved user codes into a rowid table). Frozen like version 1.
fn sqlite_version_2_file(path: &std::path::Path) -> rusqlite::Connection {
    let conn = sqlite_version_1_file(path);
    conn.execute_batch(
        "
        BEGIN;
        ALTER TABLE sessions ADD COLUMN device_client_id TEXT;
        ALTER TABLE sessions ADD COLUMN interval_ms INTEGER;
        ALTER TABLE sessions ADD COLUMN next_poll_ms INTEGER;
        CREATE TABLE user_codes (
            key           TEXT PRIMARY KEY NOT NULL,
            state         TEXT NOT NULL,
            expires_at_ms INTEGER NOT NULL,
            purge_at      INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX user_codes_by_purge_at ON user_codes (purge_at);
        CREATE TABLE counters (
            key      TEXT PRIMARY KEY NOT NULL,
            count    INTEGER NOT NULL,
            purge_at INTEGER NOT NULL
        ) WITHOUT ROWID;
        CREATE INDEX counters_by_purge_at ON counters (purge_at);
        PRAGMA user_version = 2;
        COMMIT;
        ",
    )
    .unwrap();
    conn
}

/// Opens an older file with the adapter, which migrates it; checks it is now at this build's
/// schema version.
fn open_migrated(path: &std::path::Path) -> Arc<dyn Store> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(path).unwrap());
    let version: i64 = rusqlite::Connection::open(path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, monzo_auth_sqlite::SCHEMA_VERSION);
    store
}

/// A pending session whose id an earlier release made: 32 random bytes, no creation time.
fn legacy_pending(now: i64) -> (PollId, Session) {
    let id = PollId::parse(&monzo_auth_domain::session::random_token::<32>()).unwrap();
    let session = Session::new_pending(&id, now, TTL);
    (id, session)
}

/// Writes `session` (pending) into a version-1 file the way that release's `create` did, then
/// takes it to its status and lease with that release's `authorize`, `deny` and `claim`.
fn insert_version_1_row(conn: &rusqlite::Connection, session: &Session) {
    let state = session.state.as_text();
    conn.execute(
        "INSERT INTO sessions (state, status, seal_public_key, sealed_code, code_challenge, \
           return_url, created_at_ms, expires_at_ms, purge_at, lease_id, lease_until_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11) \
         ON CONFLICT (state) DO NOTHING",
        rusqlite::params![
            state,
            "pending",
            session.seal_public_key.0.as_slice(),
            None::<Vec<u8>>,
            session.code_challenge.as_ref().map(|c| c.as_str()),
            session.return_url,
            session.created_at_ms,
            session.expires_at_ms,
            session.purge_at,
            None::<String>,
            None::<i64>,
        ],
    )
    .unwrap();
    let changed = match &session.status {
        Status::Pending => 1,
        Status::Authorized { sealed_code } => conn
            .execute(
                "UPDATE sessions SET status = 'authorized', sealed_code = ?2 \
                 WHERE state = ?1 AND status = 'pending' AND expires_at_ms > ?3",
                rusqlite::params![state, sealed_code, NOW],
            )
            .unwrap(),
        Status::Denied => conn
            .execute(
                "UPDATE sessions SET status = 'denied' \
                 WHERE state = ?1 AND status = 'pending' AND expires_at_ms > ?2",
                rusqlite::params![state, NOW],
            )
            .unwrap(),
    };
    assert_eq!(changed, 1);
    if let Some(lease) = &session.lease {
        let changed = conn
            .execute(
                "UPDATE sessions SET lease_id = ?2, lease_until_ms = ?3 \
                 WHERE state = ?1 AND status = 'authorized' AND expires_at_ms > ?4 \
                   AND (lease_until_ms IS NULL OR lease_until_ms <= ?4)",
                rusqlite::params![state, lease.id, lease.until_ms, NOW],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_version_1_files_are_migrated_with_their_sessions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    // What a version-1 file in the field holds: a login waiting at Monzo, one authorized and not
    // yet polled, one mid-exchange (claimed), one denied.
    let (pending_id, waiting) = legacy_pending(NOW);
    let waiting = waiting
        .with_code_challenge(monzo_auth_domain::session::CodeChallenge::parse(
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ))
        .with_return_url(Some("https://x.example/Prod/callback".into()));
    let (authorized_id, mut authorized) = legacy_pending(NOW);
    authorized.status = Status::Authorized {
        sealed_code: authorized_id
            .sealing_key()
            .public_key()
            .seal(&AuthCode::parse("the-code").unwrap()),
    };
    let (leased_id, mut leased) = legacy_pending(NOW);
    leased.status = Status::Authorized {
        sealed_code: leased_id
            .sealing_key()
            .public_key()
            .seal(&AuthCode::parse("code-in-flight").unwrap()),
    };
    leased.lease = Some(lease("v1-lease", NOW + 30_000));
    let (denied_id, mut denied) = legacy_pending(NOW);
    denied.status = Status::Denied;
    {
        let conn = sqlite_version_1_file(&path);
        for session in [&waiting, &authorized, &leased, &denied] {
            insert_version_1_row(&conn, session);
        }
    }

    let store = open_migrated(&path);
    // Every row reads back as it was written, field for field.
    for session in [&waiting, &authorized, &leased, &denied] {
        assert_eq!(
            store.get(&session.state).await.unwrap().as_ref(),
            Some(session)
        );
    }

    // And each carries on as usual: the waiting login is authorized and redeemed...
    let sealed = waiting
        .seal_public_key
        .seal(&AuthCode::parse("late-code").unwrap());
    assert!(
        store
            .authorize(&pending_id.state(), &sealed, NOW + 1)
            .await
            .unwrap()
    );
    let claimed = store
        .claim(&pending_id.state(), &lease("new", NOW + 30_000), NOW + 2)
        .await
        .unwrap()
        .expect("the migrated pending session can be claimed once authorized");
    assert_eq!(
        pending_id
            .sealing_key()
            .open(&claimed.sealed_code)
            .map(|code| code.expose().to_owned())
            .as_deref(),
        Some("late-code")
    );
    assert_eq!(claimed.return_url, waiting.return_url);
    assert!(store.finish(&pending_id.state(), "new").await.unwrap());
    // ...the authorized one is claimed, its code opening as sealed before the upgrade...
    let claimed = store
        .claim(&authorized_id.state(), &lease("new", NOW + 30_000), NOW + 1)
        .await
        .unwrap()
        .expect("the migrated authorized session can be claimed");
    assert_eq!(
        authorized_id
            .sealing_key()
            .open(&claimed.sealed_code)
            .map(|code| code.expose().to_owned())
            .as_deref(),
        Some("the-code")
    );
    assert!(store.finish(&authorized_id.state(), "new").await.unwrap());
    assert_eq!(store.get(&authorized_id.state()).await.unwrap(), None);
    // ...the claim from before the upgrade still holds (and only its holder finishes it)...
    assert_eq!(
        store
            .claim(&leased_id.state(), &lease("new", NOW + 60_000), NOW + 1)
            .await
            .unwrap(),
        None
    );
    assert!(!store.finish(&leased_id.state(), "new").await.unwrap());
    assert!(store.finish(&leased_id.state(), "v1-lease").await.unwrap());
    // ...and the denied one stays denied, and is no device session.
    assert!(
        !store
            .authorize(&denied_id.state(), b"code", NOW + 1)
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .pace_poll(&denied_id.state(), NOW + 1, 5000)
            .await
            .unwrap(),
        Pace::NotFound
    );

    // Version 2's additions work on the migrated file like on a new one.
    create_and_get_round_trip(Arc::clone(&store)).await;
    user_codes_map_to_their_session(Arc::clone(&store)).await;
    device_polls_are_paced(Arc::clone(&store)).await;
    failure_counters_count_atomically(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_version_2_files_keep_their_device_logins() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    // A device login waiting for its person, from a release before schema 3 (and before ids
    // carried their creation time): the session and its user code.
    let (id, session) = legacy_pending(NOW);
    let code = UserCode::generate();
    {
        let conn = sqlite_version_2_file(&path);
        insert_version_1_row(&conn, &session);
        conn.execute(
            "UPDATE sessions SET device_client_id = 'my-app', interval_ms = 5000 WHERE state = ?1",
            [session.state.as_text()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO user_codes (key, state, expires_at_ms, purge_at) VALUES (?1, ?2, ?3, ?4)",
            rusqlite::params![
                code.store_key(),
                session.state.as_text(),
                session.expires_at_ms,
                session.purge_at
            ],
        )
        .unwrap();
    }

    let store = open_migrated(&path);
    // The person's code still finds the login, the app's device code still polls it...
    assert_eq!(code_owner(&store, &code.store_key()).await, id.state());
    let migrated = store.get(&id.state()).await.unwrap().expect("the session");
    assert_eq!(migrated.device.as_ref().map(|d| d.interval_ms), Some(5000));
    assert_eq!(
        store.pace_poll(&id.state(), NOW + 1, 5000).await.unwrap(),
        Pace::Allowed
    );
    // ...and the live code stays its own: another session drawing it is refused.
    let (other_id, other) = device_session(NOW + 2, 5000);
    let clash = UserCodeRecord {
        key: code.store_key(),
        state: other_id.state(),
        expires_at_ms: other.expires_at_ms,
        purge_at: other.purge_at,
    };
    assert!(
        !store
            .create_with_user_code(&other, &clash, NOW + 2)
            .await
            .unwrap()
    );
    assert_eq!(code_owner(&store, &code.store_key()).await, id.state());
    // Schema 3's user codes work like a new file's.
    a_device_session_and_its_code_are_stored_together(Arc::clone(&store)).await;
    user_codes_map_to_their_session(store).await;
}
