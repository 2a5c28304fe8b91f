//! The store's connections: one writer thread that commits concurrent writes together (group
//! commit), a few read-only connections that never wait for it (WAL), a checkpointer thread
//! that copies the WAL back into the database beside the writer ([`checkpoint`]), and the watch
//! on the database file (a deleted or replaced file is noticed, and the database created again
//! there).
//!
//! A write is a job: the writer takes every job waiting (up to [`MAX_BATCH`]), runs each in its
//! own savepoint inside one `BEGIN IMMEDIATE` transaction (a job that fails is rolled back alone
//! and answered with its error; one whose condition does not hold answers "not applied" as it
//! would alone), commits once with `synchronous=FULL`, and only then answers each caller. A
//! commit that fails fails every job of its batch: nothing answered is ever lost.

mod checkpoint;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};

use monzo_auth_domain::store::StoreError;
use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use checkpoint::Checkpoints;
pub(crate) use checkpoint::LIMIT as CHECKPOINT_FRAMES;

/// The most writes one transaction takes.
const MAX_BATCH: usize = 128;
/// Read-only connections: reads run beside the writer and each other, one per core (the
/// runtime's workers read inline), at least 2 and at most 8.
fn readers() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8))
}
/// Each reader's page cache, in KiB (SQLite's default is 2 MiB per connection).
const READER_CACHE_KIB: i64 = 512;
/// How long a statement waits for another process's lock before failing.
const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Which file a path names (device and inode), to notice it was deleted or replaced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct FileId(u64, u64);

fn file_id(path: &Path) -> Option<FileId> {
    let meta = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        Some(FileId(meta.dev(), meta.ino()))
    }
    // Elsewhere only a file's presence is watched.
    #[cfg(not(unix))]
    {
        let _ = meta;
        Some(FileId(0, 0))
    }
}

fn unavailable(why: impl Into<String>) -> StoreError {
    StoreError::unavailable(std::io::Error::other(why.into()))
}

/// What the writer thread, the readers and the health check share.
struct Shared {
    path: PathBuf,
    /// The file the writer has open; `None` once it was found deleted or replaced.
    file: Mutex<Option<FileId>>,
    readers: RwLock<Arc<Readers>>,
    /// Checkpoints the checkpointer thread finished having copied frames.
    checkpoint_rounds: AtomicU64,
}

struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl Readers {
    fn open(path: &Path) -> Result<Self, StoreError> {
        let conns = (0..readers())
            .map(|_| {
                let conn = Connection::open_with_flags(
                    path,
                    OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                )
                .map_err(StoreError::unavailable)?;
                // A read on the runtime never waits for a lock (see `Connections::read`).
                conn.busy_timeout(std::time::Duration::ZERO)
                    .map_err(StoreError::unavailable)?;
                conn.execute_batch(&format!("PRAGMA cache_size = -{READER_CACHE_KIB};"))
                    .map_err(StoreError::unavailable)?;
                conn.set_prepared_statement_cache_capacity(crate::STATEMENT_CACHE);
                Ok(Mutex::new(conn))
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(Self {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `work` on a free reader, never waiting: `None` when every reader is in use.
    fn try_now<T>(&self, work: impl FnOnce(&Connection) -> T) -> Option<T> {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.conns.len();
        let conn = (0..n).find_map(|i| self.conns[(start + i) % n].try_lock().ok())?;
        Some(work(&conn))
    }

    /// Runs `work` on the next reader in turn, waiting for it and for another process's lock
    /// (up to the busy timeout): off the runtime only.
    fn waiting<T>(&self, work: impl FnOnce(&Connection) -> T) -> T {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let conn = self.conns[start % self.conns.len()]
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let _ = conn.busy_timeout(BUSY_TIMEOUT);
        let answer = work(&conn);
        let _ = conn.busy_timeout(std::time::Duration::ZERO);
        answer
    }
}

/// Whether a read failed only because the file was locked (a retry that waits can succeed).
fn is_busy(err: &StoreError) -> bool {
    let StoreError::Unavailable(cause) = err else {
        return false;
    };
    cause.downcast_ref::<rusqlite::Error>().is_some_and(|err| {
        matches!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
        )
    })
}

/// One write, and where its answer goes.
trait Job: Send {
    /// Runs the write (inside the batch's transaction); its answer waits for the commit.
    fn run(self: Box<Self>, conn: &mut Connection) -> Box<dyn Reply>;
    /// Answers without running (the batch could not start).
    fn refuse(self: Box<Self>, why: &str);
}

/// An answer held until its batch is committed.
trait Reply: Send {
    fn failed(&self) -> bool;
    /// Answers: the result if the batch committed, else why it did not.
    fn send(self: Box<Self>, committed: Result<(), &str>);
}

struct Work<F, T> {
    work: F,
    answer: oneshot::Sender<Result<T, StoreError>>,
    /// Answered as soon as it ran, not after the commit: for a write whose caller needs no
    /// durability (committed with the rest of its batch, or lost with it).
    early: bool,
}

impl<F, T> Job for Work<F, T>
where
    F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send,
    T: Send + 'static,
{
    fn run(self: Box<Self>, conn: &mut Connection) -> Box<dyn Reply> {
        let result = (self.work)(conn);
        if self.early {
            let failed = result.is_err();
            let _ = self.answer.send(result);
            return Box::new(Answered { failed });
        }
        Box::new(Held {
            result,
            answer: self.answer,
        })
    }

    fn refuse(self: Box<Self>, why: &str) {
        let _ = self.answer.send(Err(unavailable(why)));
    }
}

/// An early write's reply: already sent.
struct Answered {
    failed: bool,
}

impl Reply for Answered {
    fn failed(&self) -> bool {
        self.failed
    }

    fn send(self: Box<Self>, _committed: Result<(), &str>) {}
}

struct Held<T> {
    result: Result<T, StoreError>,
    answer: oneshot::Sender<Result<T, StoreError>>,
}

impl<T: Send> Reply for Held<T> {
    fn failed(&self) -> bool {
        self.result.is_err()
    }

    fn send(self: Box<Self>, committed: Result<(), &str>) {
        let answer = match committed {
            Ok(()) => self.result,
            Err(why) => Err(unavailable(why)),
        };
        // A caller that gave up no longer listens; its write stands.
        let _ = self.answer.send(answer);
    }
}

/// Runs one of the writer's transaction statements, kept parsed.
fn step(conn: &Connection, sql: &str) -> rusqlite::Result<()> {
    conn.prepare_cached(sql)?.execute([]).map(|_| ())
}

/// The writer thread's own state.
struct Writer {
    conn: Connection,
    shared: Arc<Shared>,
    /// How to open the database afresh (schema, pragmas).
    open: fn(&Path) -> Result<Connection, StoreError>,
    checkpoints: Checkpoints,
}

impl Writer {
    fn serve(mut self, jobs: mpsc::Receiver<Box<dyn Job>>) {
        while let Ok(first) = jobs.recv() {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match jobs.try_recv() {
                    Ok(job) => batch.push(job),
                    Err(_) => break,
                }
            }
            self.commit(batch);
        }
    }

    fn commit(&mut self, batch: Vec<Box<dyn Job>>) {
        if let Err(why) = self.ensure_file() {
            for job in batch {
                job.refuse(&why);
            }
            return;
        }
        if let Err(err) = step(&self.conn, "BEGIN IMMEDIATE") {
            let why = format!("the session store could not start a write: {err}");
            for job in batch {
                job.refuse(&why);
            }
            return;
        }
        let replies: Vec<Box<dyn Reply>> = batch
            .into_iter()
            .map(|job| {
                let savepoint = step(&self.conn, "SAVEPOINT job");
                let reply = job.run(&mut self.conn);
                if savepoint.is_ok() {
                    if reply.failed() {
                        let _ = step(&self.conn, "ROLLBACK TO job");
                    }
                    let _ = step(&self.conn, "RELEASE job");
                }
                reply
            })
            .collect();
        match step(&self.conn, "COMMIT") {
            Ok(()) => {
                replies.into_iter().for_each(|reply| reply.send(Ok(())));
                self.checkpoints.after_commit(&self.conn);
            }
            Err(err) => {
                let _ = self.conn.execute_batch("ROLLBACK");
                let why = format!("the session store could not commit: {err}");
                tracing::error!("{why}; {} writes failed", replies.len());
                replies.into_iter().for_each(|reply| reply.send(Err(&why)));
            }
        }
    }

    /// Checks the path still names the file the writer has open; once it does not, says so
    /// (once) and, on later batches, creates the database there again when it can.
    fn ensure_file(&mut self) -> Result<(), String> {
        let path = &self.shared.path;
        let mut file = self
            .shared
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match *file {
            Some(id) if file_id(path) == Some(id) => Ok(()),
            Some(_) => {
                *file = None;
                tracing::error!(
                    path = %path.display(),
                    "the session database was deleted or replaced: sessions only in the old \
                     file are lost; writes answer 503 until it is created there again"
                );
                Err("the session database was deleted or replaced".into())
            }
            None => {
                let reopened = (self.open)(path).and_then(|mut conn| {
                    self.checkpoints
                        .watch(&mut conn)
                        .map_err(StoreError::unavailable)?;
                    let readers = Readers::open(path)?;
                    Ok((conn, readers, file_id(path)))
                });
                match reopened {
                    Ok((conn, readers, Some(id))) => {
                        self.conn = conn;
                        *self
                            .shared
                            .readers
                            .write()
                            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(readers);
                        *file = Some(id);
                        tracing::warn!(path = %path.display(), "the session database was created again");
                        Ok(())
                    }
                    Ok((_, _, None)) => Err("the session database vanished again".into()),
                    Err(err) => Err(format!(
                        "the session database cannot be created again yet: {err}"
                    )),
                }
            }
        }
    }
}

/// The writer's queue, the readers and the file watch.
pub(crate) struct Connections {
    jobs: mpsc::Sender<Box<dyn Job>>,
    shared: Arc<Shared>,
}

impl Connections {
    /// Starts the writer thread on `conn` (opened by `open`, which also serves to create the
    /// database again) and its checkpointer (past `checkpoint_frames` frames in the WAL), and
    /// opens the readers.
    pub(crate) fn start(
        path: &Path,
        mut conn: Connection,
        open: fn(&Path) -> Result<Connection, StoreError>,
        checkpoint_frames: i32,
    ) -> Result<Self, StoreError> {
        let shared = Arc::new(Shared {
            path: path.to_owned(),
            file: Mutex::new(file_id(path)),
            readers: RwLock::new(Arc::new(Readers::open(path)?)),
            checkpoint_rounds: AtomicU64::new(0),
        });
        let checkpoints = Checkpoints::start(Arc::clone(&shared), checkpoint_frames)
            .map_err(StoreError::unavailable)?;
        checkpoints
            .watch(&mut conn)
            .map_err(StoreError::unavailable)?;
        let (jobs, queue) = mpsc::channel();
        let writer = Writer {
            conn,
            shared: Arc::clone(&shared),
            open,
            checkpoints,
        };
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.serve(queue))
            .map_err(StoreError::unavailable)?;
        Ok(Self { jobs, shared })
    }

    /// Runs a write in the next batch; answers once that batch has committed.
    pub(crate) async fn write<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.queue(work, false).await
    }

    /// Runs a write in the next batch and answers as soon as it ran, without waiting for the
    /// commit: for writes whose loss in a crash costs nothing that matters (device-poll
    /// pacing). Later writes see it; a batch that fails to commit loses it.
    pub(crate) async fn write_early<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        self.queue(work, true).await
    }

    async fn queue<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
        early: bool,
    ) -> Result<T, StoreError> {
        let (answer, answered) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Work {
            work,
            answer,
            early,
        });
        self.jobs
            .send(job)
            .map_err(|_| unavailable("the session store's writer stopped"))?;
        answered
            .await
            .map_err(|_| unavailable("the session store's writer stopped"))?
    }

    /// Runs a read on a reader connection. A read is a lookup by key in a file the OS has in
    /// memory (microseconds), so it runs right here on the runtime, on a free reader and
    /// without waiting for any lock; when every reader is in use, or the file is locked (another
    /// process's exclusive lock, WAL recovery after a crash), it runs again off the runtime,
    /// waiting up to the busy timeout. Handing every read to a blocking thread cost more than
    /// the read (two thread wake-ups each).
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        work: impl Fn(&Connection) -> Result<T, StoreError> + Send + Sync + 'static,
    ) -> Result<T, StoreError> {
        let readers = Arc::clone(
            &self
                .shared
                .readers
                .read()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        match readers.try_now(&work) {
            Some(Err(err)) if is_busy(&err) => {}
            Some(answer) => return answer,
            None => {}
        }
        tokio::task::spawn_blocking(move || readers.waiting(work))
            .await
            .map_err(StoreError::unavailable)?
    }

    /// Checkpoints the checkpointer thread finished having copied frames.
    pub(crate) fn checkpoint_rounds(&self) -> u64 {
        self.shared.checkpoint_rounds.load(Ordering::Relaxed)
    }

    /// Whether the database can be read where it should be: the path still names the open
    /// file, and a read succeeds.
    pub(crate) async fn health(&self) -> Result<(), StoreError> {
        let expected = *self
            .shared
            .file
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match expected {
            Some(id) if file_id(&self.shared.path) == Some(id) => {}
            Some(_) => return Err(unavailable("the session database was deleted or replaced")),
            None => return Err(unavailable("the session database is being created again")),
        }
        self.read(|conn| {
            conn.query_row("SELECT count(*) FROM sessions WHERE state = ''", [], |_| {
                Ok(())
            })
            .map_err(StoreError::unavailable)
        })
        .await
    }
}
