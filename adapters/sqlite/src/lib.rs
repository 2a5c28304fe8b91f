//! The embedded default: one SQLite file in WAL mode.
//!
//! `synchronous=FULL` makes a commit durable before the call returns, so the callback answers
//! only once its write would survive a crash. `secure_delete` overwrites deleted rows, so a
//! redeemed session's sealed code does not linger in free pages. One writer thread commits
//! concurrent writes together (group commit, `conn`); each conditional write is a single
//! `UPDATE ... WHERE` in its own savepoint, so it is atomic and reports exactly whether it
//! applied. Reads run on read-only connections and never wait for the writer.

mod conn;

use std::path::Path;
use std::sync::{Arc, LazyLock};

use conn::Connections;

use async_trait::async_trait;
use monzo_auth_domain::session::{Lease, Pace, Session, State, UserCodeRecord};
use monzo_auth_domain::store::{
    Claimed, CounterStore, SessionRecord, SessionStore, Store, StoreError, UserCodeStore,
};
use rusqlite::{Connection, OptionalExtension as _, Params, Row, params};

/// `STORE=sqlite:PATH` for `shared::app::Adapters::sqlite`: the store, or why it cannot be
/// opened (with its causes).
pub fn open_store(path: &Path) -> Result<Arc<dyn Store>, String> {
    SqliteStore::open(path)
        .map(|store| Arc::new(store) as Arc<dyn Store>)
        .map_err(|err| monzo_auth_domain::flow::error::ErrorChain(&err).to_string())
}

/// Bumped when the tables' shape changes; `MIGRATIONS[n]` takes version n to n + 1. An opened
/// database is at this version (its `user_version`).
pub const SCHEMA_VERSION: i64 = 3;

const MIGRATIONS: [&str; 3] = [
    // 0 -> 1: sessions.
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
    // 1 -> 2: the device flow (RFC 8628): pacing, user codes, failure counters.
    "
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
    ",
    // 2 -> 3: user codes in a rowid table. A code's key is a hash, so every new code lands on a
    // page of its own in a table ordered by key (written whole at each commit, with a neighbour
    // when it splits); in rowid order new codes share the last page, and only the key's index
    // (half the row) takes the scattered write.
    "
    CREATE TABLE user_codes_v3 (
        key           TEXT NOT NULL UNIQUE,
        state         TEXT NOT NULL,
        expires_at_ms INTEGER NOT NULL,
        purge_at      INTEGER NOT NULL
    );
    INSERT INTO user_codes_v3 (key, state, expires_at_ms, purge_at)
        SELECT key, state, expires_at_ms, purge_at FROM user_codes;
    DROP TABLE user_codes;
    ALTER TABLE user_codes_v3 RENAME TO user_codes;
    CREATE INDEX user_codes_by_purge_at ON user_codes (purge_at);
    ",
];

const COLUMNS: &str = "state, status, seal_public_key, sealed_code, code_challenge, return_url, \
                       created_at_ms, expires_at_ms, purge_at, lease_id, lease_until_ms, \
                       device_client_id, interval_ms, next_poll_ms";

/// Runs one statement through the connection's statement cache (parsing a statement costs more
/// than running it); answers the rows it changed.
fn run(conn: &Connection, sql: &str, params: impl Params) -> Result<usize, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.execute(params))
        .map_err(StoreError::unavailable)
}

/// Runs one cached statement that answers at most one row.
fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl Params,
    row: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>, StoreError> {
    conn.prepare_cached(sql)
        .and_then(|mut statement| statement.query_row(params, row).optional())
        .map_err(StoreError::unavailable)
}

static SELECT_SESSION: LazyLock<String> =
    LazyLock::new(|| format!("SELECT {COLUMNS} FROM sessions WHERE state = ?1"));
static INSERT_SESSION: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO sessions ({COLUMNS}) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14) \
         ON CONFLICT (state) DO NOTHING"
    )
});
/// Statements kept parsed per connection (SQLite's and rusqlite's default is 16; the writer uses
/// about 20).
pub(crate) const STATEMENT_CACHE: usize = 32;

/// The SQLite store; clones share one writer and one set of readers.
#[derive(Clone)]
pub struct SqliteStore {
    conns: Arc<Connections>,
    /// The second (Unix) of the last purge: creates purge at most once a second.
    purged_at: Arc<std::sync::atomic::AtomicI64>,
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, brings its schema up to date, and
    /// starts its writer and readers.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_checkpointing_at(path, conn::CHECKPOINT_FRAMES)
    }

    /// [`SqliteStore::open`], checkpointing once the WAL holds `frames` frames (tests of the
    /// checkpointer).
    #[doc(hidden)]
    pub fn open_checkpointing_at(path: &Path, frames: i32) -> Result<Self, StoreError> {
        let conn = open_writer(path)?;
        Ok(Self {
            conns: Arc::new(Connections::start(path, conn, open_writer, frames)?),
            purged_at: Arc::new(std::sync::atomic::AtomicI64::new(i64::MIN)),
        })
    }

    /// Checkpoints the checkpointer thread finished having copied frames.
    #[doc(hidden)]
    pub fn checkpoint_rounds(&self) -> u64 {
        self.conns.checkpoint_rounds()
    }

    /// A pragma's value as the writer connection has it (`synchronous`: 2 is FULL).
    #[doc(hidden)]
    pub async fn writer_pragma(&self, pragma: &'static str) -> Result<i64, StoreError> {
        self.conns
            .write(move |conn| {
                conn.query_row(&format!("PRAGMA {pragma}"), [], |row| row.get(0))
                    .map_err(StoreError::unavailable)
            })
            .await
    }

    /// Calls `hook` as each batch is about to commit; `true` makes that commit fail (tests of
    /// the group commit).
    #[doc(hidden)]
    pub async fn on_commit(
        &self,
        hook: impl FnMut() -> bool + Send + 'static,
    ) -> Result<(), StoreError> {
        self.conns
            .write(move |conn| {
                conn.commit_hook(Some(hook))
                    .map_err(StoreError::unavailable)
            })
            .await
    }
}

/// The writer's connection to the database at `path` (created if needed), its schema up to
/// date: also how the writer creates the database again after it vanished.
fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    create_private(path).map_err(StoreError::unavailable)?;
    let conn = Connection::open(path).map_err(StoreError::unavailable)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(StoreError::unavailable)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    // journal_mode answers with the mode it ended up in.
    let _mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
        .map_err(StoreError::unavailable)?;
    conn.execute_batch("PRAGMA synchronous = FULL; PRAGMA secure_delete = ON;")
        .map_err(StoreError::unavailable)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(StoreError::unavailable)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Corrupt(format!(
            "the database has schema version {version}, newer than this build's {SCHEMA_VERSION}"
        )));
    }
    for (from, migration) in MIGRATIONS.iter().enumerate().skip(version as usize) {
        // Each step commits together with its new version number, or not at all.
        conn.execute_batch(&format!(
            "BEGIN; {migration} PRAGMA user_version = {}; COMMIT;",
            from + 1
        ))
        .map_err(StoreError::unavailable)?;
    }
    Ok(conn)
}

/// Creates the database file readable by its owner only, if it does not exist yet. SQLite
/// gives the `-wal` and `-shm` files the same permissions.
fn create_private(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(err) => Err(err),
    }
}

/// A session row (in [`COLUMNS`]' order) as its record; `Session::try_from` checks it.
fn record_from_row(row: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        state: row.get(0)?,
        status: row.get(1)?,
        seal_public_key: row.get(2)?,
        sealed_code: row.get(3)?,
        code_challenge: row.get(4)?,
        return_url: row.get(5)?,
        created_at_ms: row.get(6)?,
        expires_at_ms: row.get(7)?,
        purge_at: row.get(8)?,
        lease_id: row.get(9)?,
        lease_until_ms: row.get(10)?,
        device_client_id: row.get(11)?,
        interval_ms: row.get(12)?,
        next_poll_ms: row.get(13)?,
    })
}

fn query_session(conn: &Connection, state: &str) -> Result<Option<Session>, StoreError> {
    one(conn, &SELECT_SESSION, [state], record_from_row)?
        .map(Session::try_from)
        .transpose()
}

/// Inserts a session, only if no session has its state. The first create of each second
/// purges whatever is past its grace period, so the tables stay small without a background task
/// (a purge rolled back with its batch waits for the next second's).
fn insert_session(
    conn: &Connection,
    s: &SessionRecord,
    purged_at: &std::sync::atomic::AtomicI64,
) -> Result<(), StoreError> {
    let now_secs = s.created_at_ms.div_euclid(1000);
    if purged_at.swap(now_secs, std::sync::atomic::Ordering::Relaxed) != now_secs {
        for purge in [
            "DELETE FROM sessions WHERE purge_at <= ?1",
            "DELETE FROM user_codes WHERE purge_at <= ?1",
            "DELETE FROM counters WHERE purge_at <= ?1",
        ] {
            run(conn, purge, [now_secs])?;
        }
    }
    let inserted = run(
        conn,
        &INSERT_SESSION,
        params![
            s.state,
            s.status,
            s.seal_public_key,
            s.sealed_code,
            s.code_challenge,
            s.return_url,
            s.created_at_ms,
            s.expires_at_ms,
            s.purge_at,
            s.lease_id,
            s.lease_until_ms,
            s.device_client_id,
            s.interval_ms,
            s.next_poll_ms,
        ],
    )?;
    if inserted == 1 {
        return Ok(());
    }
    // The same session again (a retry) is a success; another with its state is a conflict.
    let stored_key: Option<Vec<u8>> = one(
        conn,
        "SELECT seal_public_key FROM sessions WHERE state = ?1",
        [&s.state],
        |row| row.get(0),
    )?;
    if stored_key.as_ref() == Some(&s.seal_public_key) {
        Ok(())
    } else {
        Err(StoreError::Conflict)
    }
}

/// Maps a user code to its session if the key is free, its code has expired or already maps to
/// this session; leaves another session's live code alone. Returns whether it did.
fn insert_user_code(
    conn: &Connection,
    record: &UserCodeRecord,
    now_ms: i64,
) -> Result<bool, StoreError> {
    let changed = run(
        conn,
        "INSERT INTO user_codes (key, state, expires_at_ms, purge_at) \
             VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (key) DO UPDATE SET state = excluded.state, \
               expires_at_ms = excluded.expires_at_ms, purge_at = excluded.purge_at \
             WHERE user_codes.expires_at_ms <= ?5 OR user_codes.state = excluded.state",
        params![
            record.key,
            record.state.as_text(),
            record.expires_at_ms,
            record.purge_at,
            now_ms
        ],
    )?;
    Ok(changed == 1)
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn create(&self, session: &Session) -> Result<(), StoreError> {
        let (s, purged_at) = (SessionRecord::from(session), Arc::clone(&self.purged_at));
        self.conns
            .write(move |conn| insert_session(conn, &s, &purged_at))
            .await
    }

    async fn health(&self) -> Result<(), StoreError> {
        self.conns.health().await
    }

    async fn get(&self, state: &State) -> Result<Option<Session>, StoreError> {
        let state = state.as_text();
        self.conns
            .read(move |conn| query_session(conn, &state))
            .await
    }

    async fn authorize(
        &self,
        state: &State,
        sealed_code: &[u8],
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (state, sealed_code) = (state.as_text(), sealed_code.to_vec());
        self.conns
            .write(move |conn| {
                let changed = run(
                    conn,
                    "UPDATE sessions SET status = 'authorized', sealed_code = ?2 \
                     WHERE state = ?1 AND ((status = 'pending' AND expires_at_ms > ?3) \
                       OR (status = 'authorized' AND sealed_code = ?2))",
                    params![state, sealed_code, now_ms],
                )?;
                Ok(changed == 1)
            })
            .await
    }

    async fn deny(&self, state: &State, now_ms: i64) -> Result<bool, StoreError> {
        let state = state.as_text();
        self.conns
            .write(move |conn| {
                let changed = run(
                    conn,
                    "UPDATE sessions SET status = 'denied' \
                     WHERE state = ?1 AND status = 'pending' AND expires_at_ms > ?2",
                    params![state, now_ms],
                )?;
                Ok(changed == 1)
            })
            .await
    }

    async fn claim(
        &self,
        state: &State,
        lease: &Lease,
        now_ms: i64,
    ) -> Result<Option<Claimed>, StoreError> {
        let (state, lease) = (state.as_text(), lease.clone());
        self.conns
            .write(move |conn| {
                let changed = run(
                    conn,
                    "UPDATE sessions SET lease_id = ?2, lease_until_ms = ?3 \
                     WHERE state = ?1 AND status = 'authorized' AND (lease_id = ?2 \
                       OR (expires_at_ms > ?4 AND (lease_until_ms IS NULL OR lease_until_ms <= ?4)))",
                    params![state, lease.id, lease.until_ms, now_ms],
                )?;
                if changed == 0 {
                    return Ok(None);
                }
                // In the same savepoint as the update: no one else wrote in between.
                query_session(conn, &state)?
                    .map(Claimed::try_from)
                    .transpose()
            })
            .await
    }

    async fn release(&self, state: &State, lease_id: &str) -> Result<bool, StoreError> {
        let (state, lease_id) = (state.as_text(), lease_id.to_owned());
        self.conns
            .write(move |conn| {
                let changed = run(
                    conn,
                    "UPDATE sessions SET lease_id = NULL, lease_until_ms = NULL \
                     WHERE state = ?1 AND (lease_id = ?2 OR lease_id IS NULL)",
                    params![state, lease_id],
                )?;
                Ok(changed == 1)
            })
            .await
    }

    async fn finish(&self, state: &State, lease_id: &str) -> Result<bool, StoreError> {
        let (state, lease_id) = (state.as_text(), lease_id.to_owned());
        self.conns
            .write(move |conn| {
                let changed = run(
                    conn,
                    "DELETE FROM sessions WHERE state = ?1 AND lease_id = ?2",
                    params![state, lease_id],
                )?;
                // Already gone (finished by an earlier attempt, or purged) is finished too.
                let gone = || {
                    one(
                        conn,
                        "SELECT 1 FROM sessions WHERE state = ?1",
                        [&state],
                        |_| Ok(()),
                    )
                    .map(|row| row.is_none())
                };
                Ok(changed == 1 || gone()?)
            })
            .await
    }

    async fn pace_poll(
        &self,
        state: &State,
        now_ms: i64,
        step_ms: i64,
    ) -> Result<Pace, StoreError> {
        let state = state.as_text();
        // Answered once it ran, committed with its batch: no poll waits for an fsync.
        self.conns
            .write_early(move |conn| {
                let allowed = run(
                    conn,
                    "UPDATE sessions SET next_poll_ms = ?2 + interval_ms \
                     WHERE state = ?1 AND interval_ms IS NOT NULL \
                       AND (next_poll_ms IS NULL OR next_poll_ms <= ?2)",
                    params![state, now_ms],
                )?;
                if allowed == 1 {
                    return Ok(Pace::Allowed);
                }
                // Too soon (or no such device session): grow the interval and start it anew. The
                // right-hand sides read the row as it was before this update.
                let interval_ms: Option<i64> = one(
                    conn,
                    "UPDATE sessions SET interval_ms = interval_ms + ?3, \
                       next_poll_ms = ?2 + interval_ms + ?3 \
                     WHERE state = ?1 AND interval_ms IS NOT NULL RETURNING interval_ms",
                    params![state, now_ms, step_ms],
                    |row| row.get(0),
                )?;
                Ok(match interval_ms {
                    Some(interval_ms) => Pace::SlowDown { interval_ms },
                    None => Pace::NotFound,
                })
            })
            .await
    }
}

#[async_trait]
impl UserCodeStore for SqliteStore {
    async fn create_user_code(
        &self,
        record: &UserCodeRecord,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let record = record.clone();
        self.conns
            .write(move |conn| insert_user_code(conn, &record, now_ms))
            .await
    }

    async fn create_with_user_code(
        &self,
        session: &Session,
        record: &UserCodeRecord,
        now_ms: i64,
    ) -> Result<bool, StoreError> {
        let (s, record) = (SessionRecord::from(session), record.clone());
        let purged_at = Arc::clone(&self.purged_at);
        self.conns
            .write(move |conn| {
                insert_session(conn, &s, &purged_at)?;
                if insert_user_code(conn, &record, now_ms)? {
                    return Ok(true);
                }
                // The code is taken: neither is kept (this runs inside the write's savepoint).
                run(conn, "DELETE FROM sessions WHERE state = ?1", [&s.state])?;
                Ok(false)
            })
            .await
    }

    async fn find_user_code(&self, key: &str) -> Result<Option<UserCodeRecord>, StoreError> {
        let key = key.to_owned();
        self.conns
            .read(move |conn| {
                let row = one(
                    conn,
                    "SELECT state, expires_at_ms, purge_at FROM user_codes WHERE key = ?1",
                    [&key],
                    |row| Ok((row.get::<_, String>(0)?, row.get(1)?, row.get(2)?)),
                )?;
                row.map(|(state, expires_at_ms, purge_at)| {
                    Ok(UserCodeRecord {
                        state: State::parse(&state)
                            .ok_or_else(|| StoreError::Corrupt("user_codes.state".into()))?,
                        key: key.clone(),
                        expires_at_ms,
                        purge_at,
                    })
                })
                .transpose()
            })
            .await
    }
}

#[async_trait]
impl CounterStore for SqliteStore {
    async fn failures(&self, key: &str) -> Result<u64, StoreError> {
        let key = key.to_owned();
        self.conns
            .read(move |conn| {
                let count: Option<i64> = one(
                    conn,
                    "SELECT count FROM counters WHERE key = ?1",
                    [&key],
                    |row| row.get(0),
                )?;
                Ok(count.unwrap_or(0).max(0) as u64)
            })
            .await
    }

    async fn add_failure(&self, key: &str, purge_at: i64) -> Result<u64, StoreError> {
        let key = key.to_owned();
        self.conns
            .write(move |conn| {
                let count: i64 = one(
                    conn,
                    "INSERT INTO counters (key, count, purge_at) VALUES (?1, 1, ?2) \
                     ON CONFLICT (key) DO UPDATE SET count = count + 1, \
                       purge_at = max(purge_at, excluded.purge_at) \
                     RETURNING count",
                    params![key, purge_at],
                    |row| row.get(0),
                )?
                .ok_or_else(|| StoreError::Corrupt("the counter upsert answered no row".into()))?;
                Ok(count.max(0) as u64)
            })
            .await
    }

    async fn refund_failure(&self, key: &str) -> Result<(), StoreError> {
        let key = key.to_owned();
        self.conns
            .write(move |conn| {
                run(
                    conn,
                    "UPDATE counters SET count = count - 1 WHERE key = ?1 AND count > 0",
                    [&key],
                )?;
                Ok(())
            })
            .await
    }
}
