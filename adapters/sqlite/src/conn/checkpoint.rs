//! Checkpoints beside the writer: the WAL is copied back into the database file by a thread
//! of its own, so the writer keeps committing while that runs.
//!
//! SQLite's own automatic checkpoint runs inside the commit that crosses its threshold: every
//! thousand frames one batch's callers waited for the copy and a sync of the database file,
//! and so did every write queued behind them (under `/device/code` load the machine sat a fifth
//! idle). Here the writer's WAL hook only counts frames. Past a limit ([`LIMIT`] frames) the
//! writer asks the checkpointer thread for a `PASSIVE` checkpoint on its own connection, which
//! never takes the write lock: it copies what the WAL holds and syncs the database file while
//! later batches go on appending. When that round is done, the writer copies the few frames
//! appended meanwhile (at most [`TAIL`], else the checkpointer goes another round): the WAL is
//! then wholly in the database, and the next commit starts it again from its beginning. A round
//! that cannot run (the file vanished, the connection cannot open) leaves the checkpoint to the
//! writer, as SQLite would.
//!
//! SQLite syncs the database file only when a checkpoint copies the whole WAL, which here is
//! the writer's: the checkpointer syncs what it copied itself, so that the writer's sync finds
//! only the last few pages to write. Either way the WAL starts again only after a sync of the
//! database file that followed every copy.

use std::path::Path;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{Arc, Mutex, mpsc};

use rusqlite::wal::CheckpointMode;
use rusqlite::{Connection, OpenFlags};

use super::{FileId, Shared, file_id};

/// WAL frames (pages) after which a checkpoint starts: four times SQLite's default, so the
/// writer finishes a quarter as many (its share is two syncs whatever the length), and still
/// within one of the wal-index's hash tables (4096 frames), so a read looks a page up once.
pub(crate) const LIMIT: i32 = 4000;
/// The most frames the writer copies itself to finish a round; past that the checkpointer
/// goes another round.
const TAIL: i32 = 256;
/// The checkpointer's page cache, in KiB: a checkpoint copies frames without it.
const CACHE_KIB: i64 = 64;

/// Where the checkpointer thread is.
#[derive(Clone, Copy)]
enum Round {
    /// Nothing asked.
    Idle,
    /// Copying.
    Running,
    /// Finished: the frames the WAL had copied into the database, or `None` when it could not
    /// run.
    Done(Option<i32>),
}

/// The writer's side: its WAL hook's count, and the checkpointer it asks.
pub(crate) struct Checkpoints {
    /// Frames in the WAL after the writer's last commit.
    frames: Arc<AtomicI32>,
    round: Arc<Mutex<Round>>,
    requests: mpsc::SyncSender<()>,
    limit: i32,
}

impl Checkpoints {
    /// Starts the checkpointer thread for the database the writer has open (`shared`).
    pub(crate) fn start(shared: Arc<Shared>, limit: i32) -> std::io::Result<Self> {
        let round = Arc::new(Mutex::new(Round::Idle));
        let (requests, asked) = mpsc::sync_channel(1);
        let checkpointer = Checkpointer {
            shared,
            round: Arc::clone(&round),
            conn: None,
        };
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || checkpointer.serve(asked))?;
        Ok(Self {
            frames: Arc::new(AtomicI32::new(0)),
            round,
            requests,
            limit: limit.max(1),
        })
    }

    /// Counts the WAL's frames after each commit on `conn` (the writer's) instead of letting
    /// SQLite checkpoint there.
    pub(crate) fn watch(&self, conn: &mut Connection) -> rusqlite::Result<()> {
        let frames = Arc::clone(&self.frames);
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, pages: i32| {
            frames.store(pages, Ordering::Relaxed);
            Ok(())
        }))
    }

    /// After a commit on `conn` (the writer's): asks for a checkpoint once the WAL is long
    /// enough, and finishes one the checkpointer is done with.
    pub(crate) fn after_commit(&self, conn: &Connection) {
        let frames = self.frames.load(Ordering::Relaxed);
        if frames < self.limit {
            return;
        }
        let mut round = self.round.lock().unwrap_or_else(|p| p.into_inner());
        let finish_here = match *round {
            Round::Running => return,
            Round::Idle => false,
            // Little was appended during the round (a count above `frames` is from before the
            // WAL last started again), or it could not run.
            Round::Done(copied) => {
                copied.is_none_or(|copied| (0..=TAIL).contains(&(frames - copied)))
            }
        };
        if !finish_here && self.requests.try_send(()).is_ok() {
            *round = Round::Running;
            return;
        }
        *round = Round::Idle;
        drop(round);
        // Copies what is left; the next commit starts the WAL again.
        checkpoint(conn);
    }
}

/// A `PASSIVE` checkpoint on `conn`: copies what no reader still needs, never waits.
fn checkpoint(conn: &Connection) -> Option<i32> {
    match conn.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
        Ok((_, copied)) => Some(copied),
        Err(err) => {
            tracing::debug!("a checkpoint of the session database failed: {err}");
            None
        }
    }
}

/// The checkpointer thread's own state.
struct Checkpointer {
    shared: Arc<Shared>,
    round: Arc<Mutex<Round>>,
    /// Its connection and a handle on the file it has open (to sync), and which file that is.
    conn: Option<(FileId, Connection, std::fs::File)>,
}

impl Checkpointer {
    fn serve(mut self, asked: mpsc::Receiver<()>) {
        while asked.recv().is_ok() {
            let shared = Arc::clone(&self.shared);
            let copied = self.connection().and_then(|(conn, file)| {
                let copied = checkpoint(conn)?;
                if copied > 0 {
                    if let Err(err) = file.sync_data() {
                        tracing::debug!("syncing the session database failed: {err}");
                        return None;
                    }
                    shared.checkpoint_rounds.fetch_add(1, Ordering::Relaxed);
                }
                Some(copied)
            });
            *self.round.lock().unwrap_or_else(|p| p.into_inner()) = Round::Done(copied);
        }
    }

    /// A connection to the file the writer has open, opened afresh after the writer created
    /// the database again; `None` while it has none. It never creates a file.
    fn connection(&mut self) -> Option<(&Connection, &std::fs::File)> {
        let path = &self.shared.path;
        let wanted = (*self.shared.file.lock().unwrap_or_else(|p| p.into_inner()))?;
        if self.conn.as_ref().map(|(id, ..)| *id) != Some(wanted) {
            self.conn = None;
            let conn = open(path).ok()?;
            let file = std::fs::File::open(path).ok()?;
            if file_id(path) != Some(wanted) {
                return None;
            }
            self.conn = Some((wanted, conn, file));
        }
        self.conn.as_ref().map(|(_, conn, file)| (conn, file))
    }
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA cache_size = -{CACHE_KIB};"
    ))?;
    Ok(conn)
}
