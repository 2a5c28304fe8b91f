//! The local server's connections. The server is exposed to browsers (they must reach
//! `/callback`), so it bounds what any client can hold: how long a request head may take, how
//! long a connection may idle between requests, how large a head may be, and how many
//! connections may be open (below the file-descriptor limit). At the cap it sheds the connection
//! that has waited longest without a complete request head (or idled longest) before refusing a
//! newcomer, so an honest client still gets in while slow or greedy ones hold sockets.
//! (The body read timeout and the declared-length check live where bodies are read,
//! `http::params`.)

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tower::ServiceExt as _;

use shared::config::Config;
use shared::http::params::BodyReadTimeout;

/// File descriptors kept back from the connection cap: the store's files, Monzo and AWS client
/// sockets, the demo's stand-in, stdio.
pub const RESERVED_DESCRIPTORS: u64 = 64;

/// What one client may hold; every field is a setting (see [`ServerLimits::from_config`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerLimits {
    /// From accepting a connection to its first complete request head.
    pub header_read_timeout: Duration,
    /// From a request head to its whole body.
    pub body_read_timeout: Duration,
    /// From a response to the next complete request head on a kept-alive connection.
    pub idle_timeout: Duration,
    /// A request head (the request line and the headers) larger than this gets 431.
    pub max_header_bytes: usize,
    pub max_connections: usize,
}

impl ServerLimits {
    /// The limits `config` sets; without `MAX_CONNECTIONS`, the cap is the process's open-file
    /// limit less [`RESERVED_DESCRIPTORS`] (see [`raise_descriptor_limit`]).
    pub fn from_config(config: &Config) -> Self {
        Self {
            header_read_timeout: config.header_read_timeout,
            body_read_timeout: config.body_read_timeout,
            idle_timeout: config.idle_timeout,
            max_header_bytes: config.max_header_bytes,
            max_connections: config
                .max_connections
                .unwrap_or_else(|| default_max_connections(descriptor_limit())),
        }
    }
}

fn default_max_connections(descriptors: u64) -> usize {
    usize::try_from(descriptors.saturating_sub(RESERVED_DESCRIPTORS).max(16)).unwrap_or(usize::MAX)
}

/// The soft limit on open files (unknown: 1024, the usual one).
pub fn descriptor_limit() -> u64 {
    #[cfg(unix)]
    {
        rlimit::getrlimit(rlimit::Resource::NOFILE).map_or(1024, |(soft, _)| soft)
    }
    #[cfg(not(unix))]
    {
        1024
    }
}

/// Raises the soft open-file limit to the hard one, as servers do at start; returns the limit
/// now in force.
pub fn raise_descriptor_limit() -> u64 {
    #[cfg(unix)]
    {
        rlimit::increase_nofile_limit(u64::MAX).unwrap_or_else(|_| descriptor_limit())
    }
    #[cfg(not(unix))]
    {
        descriptor_limit()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Accepted, no complete request head yet.
    Head,
    /// A request is being answered.
    Busy,
    /// Kept alive between requests.
    Idle,
}

struct Tracked {
    phase: Phase,
    since: Instant,
    close: Arc<Notify>,
}

/// Every open connection, what it is doing and since when.
#[derive(Default)]
struct Connections {
    next_id: u64,
    open: HashMap<u64, Tracked>,
}

impl Connections {
    fn add(&mut self) -> (u64, Arc<Notify>) {
        self.next_id += 1;
        let close = Arc::new(Notify::new());
        self.open.insert(
            self.next_id,
            Tracked {
                phase: Phase::Head,
                since: Instant::now(),
                close: Arc::clone(&close),
            },
        );
        (self.next_id, close)
    }

    fn set(&mut self, id: u64, phase: Phase) {
        if let Some(tracked) = self.open.get_mut(&id) {
            tracked.phase = phase;
            tracked.since = Instant::now();
        }
    }

    fn close(&mut self, id: u64) {
        if let Some(tracked) = self.open.remove(&id) {
            tracked.close.notify_one();
        }
    }

    /// Closes the connection that has waited longest without a request head, or idled
    /// longest; false when every connection is answering a request.
    fn shed_one(&mut self) -> bool {
        let victim = self
            .open
            .iter()
            .filter(|(_, tracked)| tracked.phase != Phase::Busy)
            .min_by_key(|(_, tracked)| tracked.since)
            .map(|(id, _)| *id);
        victim.inspect(|id| self.close(*id)).is_some()
    }

    /// Closes the connections past their time; returns how many.
    fn close_overdue(&mut self, limits: &ServerLimits, now: Instant) -> usize {
        let overdue: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, tracked)| match tracked.phase {
                Phase::Head => now >= tracked.since + limits.header_read_timeout,
                Phase::Idle => now >= tracked.since + limits.idle_timeout,
                Phase::Busy => false,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in &overdue {
            self.close(*id);
        }
        overdue.len()
    }
}

type Shared = Arc<Mutex<Connections>>;

fn lock(connections: &Shared) -> std::sync::MutexGuard<'_, Connections> {
    connections
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Serves `app` on `listener` within `limits` until `shutdown` resolves, then lets requests in
/// flight finish (kept-alive connections close).
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ServerLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let connections: Shared = Arc::default();
    let (stop, stopping) = watch::channel(false);
    let watchdog = tokio::spawn(watch_deadlines(Arc::clone(&connections), limits));
    let mut tasks = tokio::task::JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of descriptors (EMFILE) or a connection reset before it was accepted:
                // shed a connection nobody is being answered on, and go on.
                tracing::warn!(error = %err, "could not accept a connection");
                lock(&connections).shed_one();
                tokio::time::sleep(Duration::from_millis(20)).await;
                continue;
            }
        };
        let admitted = {
            let mut open = lock(&connections);
            if open.open.len() >= limits.max_connections && !open.shed_one() {
                None
            } else {
                Some(open.add())
            }
        };
        let Some((id, close)) = admitted else {
            tracing::warn!("at the connection cap with every connection busy; refused one");
            drop(stream);
            continue;
        };
        while tasks.try_join_next().is_some() {}
        tasks.spawn(connection(
            stream,
            peer,
            app.clone(),
            limits,
            (id, close, Arc::clone(&connections)),
            stopping.clone(),
        ));
    }
    drop(listener);
    let _ = stop.send(true);
    while tasks.join_next().await.is_some() {}
    watchdog.abort();
    Ok(())
}

async fn watch_deadlines(connections: Shared, limits: ServerLimits) {
    let tick = limits
        .header_read_timeout
        .min(limits.idle_timeout)
        .div_f64(4.0)
        .clamp(Duration::from_millis(50), Duration::from_secs(1));
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let closed = lock(&connections).close_overdue(&limits, Instant::now());
        if closed > 0 {
            tracing::debug!(
                closed,
                "closed connections past their header or idle timeout"
            );
        }
    }
}

async fn connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    app: Router,
    limits: ServerLimits,
    (id, close, connections): (u64, Arc<Notify>, Shared),
    mut stopping: watch::Receiver<bool>,
) {
    let tracker = Arc::clone(&connections);
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            lock(&tracker).set(id, Phase::Busy);
            req.extensions_mut().insert(ConnectInfo(peer));
            req.extensions_mut()
                .insert(BodyReadTimeout(limits.body_read_timeout));
            let (app, tracker) = (app.clone(), Arc::clone(&tracker));
            async move {
                let response = app.oneshot(req).await;
                lock(&tracker).set(id, Phase::Idle);
                response
            }
        });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .keep_alive(true)
        // The header and idle deadlines are kept by the watchdog above.
        .header_read_timeout(None)
        .max_header_size(limits.max_header_bytes)
        .max_buf_size((limits.max_header_bytes + 16 * 1024).max(8192));
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => {}
        // Shed, or past a deadline: drop the connection at once.
        () = close.notified() => {}
        () = async {
            let _ = stopping.wait_for(|stop| *stop).await;
        } => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.as_mut().await;
        }
    }
    lock(&connections).open.remove(&id);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ServerLimits {
        ServerLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            max_header_bytes: 32 * 1024,
            max_connections: 3,
        }
    }

    #[test]
    fn the_cap_leaves_room_for_the_services_own_descriptors() {
        assert_eq!(default_max_connections(1024), 960);
        assert_eq!(default_max_connections(20), 16, "never fewer than 16");
    }

    #[test]
    fn shedding_takes_the_oldest_connection_no_request_is_being_answered_on() {
        let mut open = Connections::default();
        let (busy, _) = open.add();
        let (waiting, waiting_close) = open.add();
        let (idle, _) = open.add();
        open.set(busy, Phase::Busy);
        open.set(idle, Phase::Idle);
        assert!(open.shed_one());
        assert!(
            !open.open.contains_key(&waiting),
            "the head-less one went first"
        );
        let notified = waiting_close.notified();
        tokio::pin!(notified);
        assert!(
            notified.as_mut().enable(),
            "its task was told to close (the permit is stored)"
        );
        assert!(open.shed_one());
        assert!(!open.open.contains_key(&idle));
        assert!(!open.shed_one(), "a busy connection is never shed");
        assert!(open.open.contains_key(&busy));
    }

    #[test]
    fn deadlines_close_head_less_and_idle_connections_only() {
        let limits = limits();
        let mut open = Connections::default();
        let (head, _) = open.add();
        let (busy, _) = open.add();
        let (idle, _) = open.add();
        open.set(busy, Phase::Busy);
        open.set(idle, Phase::Idle);
        let now = Instant::now();
        assert_eq!(open.close_overdue(&limits, now + Duration::from_secs(5)), 0);
        assert_eq!(
            open.close_overdue(&limits, now + Duration::from_secs(11)),
            1
        );
        assert!(!open.open.contains_key(&head));
        assert_eq!(
            open.close_overdue(&limits, now + Duration::from_secs(31)),
            1
        );
        assert!(!open.open.contains_key(&idle));
        assert_eq!(
            open.close_overdue(&limits, now + Duration::from_secs(3600)),
            0
        );
        assert!(open.open.contains_key(&busy));
    }
}
