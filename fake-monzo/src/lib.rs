//! A faithful local stand-in for Monzo's `auth.monzo.com` (the login page)
//! and `api.monzo.com` (token endpoint and a few data endpoints).
//!
//! It exists so that monzo-auth can be tested end to end, and demonstrated
//! with `--demo`, without a real bank account. It follows what Monzo
//! documents: Monzo-shaped error bodies, single-use codes, rotating refresh
//! tokens for confidential clients only, one live token per user and client,
//! and Strong Customer Authentication (SCA) gating data endpoints.
//!
//! Nothing secret (codes, tokens, client secrets, states) is ever logged:
//! request logging records the method, the matched route and the status only,
//! never a URI or a query string.

mod api;
mod auth;
mod control;
mod error;
mod logging;
mod page;
mod params;
mod secret;
mod state;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use url::Url;

use crate::state::State;

/// An OAuth client known to the fake, as registered in Monzo's developer portal.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientRegistration {
    pub client_id: String,
    pub client_secret: String,
    /// Compared exactly (byte for byte) with the `redirect_uri` a login and an
    /// exchange present, as Monzo does.
    pub redirect_uri: String,
    /// Confidential clients get refresh tokens; non-confidential ones do not.
    /// Defaults to `true` when omitted from JSON.
    #[serde(default = "default_confidential")]
    pub confidential: bool,
}

fn default_confidential() -> bool {
    true
}

// Hand-written so that the secret cannot end up in a log line or a panic
// message through `{:?}`.
impl fmt::Debug for ClientRegistration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientRegistration")
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("redirect_uri", &self.redirect_uri)
            .field("confidential", &self.confidential)
            .finish()
    }
}

/// A Monzo customer that can "log in" on the fake login page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeUser {
    pub user_id: String,
    pub name: String,
}

#[derive(Clone, Debug)]
pub struct FakeMonzoConfig {
    pub clients: Vec<ClientRegistration>,
    /// Shown on the login page in this order; the first one is preselected.
    pub users: Vec<FakeUser>,
    /// Monzo's access tokens last six hours.
    pub access_token_ttl: Duration,
    /// How long an authorization code may wait before being exchanged.
    pub code_ttl: Duration,
}

impl Default for FakeMonzoConfig {
    fn default() -> Self {
        Self {
            clients: Vec::new(),
            users: vec![
                FakeUser {
                    user_id: "user_0000demo".to_owned(),
                    name: "Demo User".to_owned(),
                },
                FakeUser {
                    user_id: "user_0000other".to_owned(),
                    name: "Other User".to_owned(),
                },
            ],
            access_token_ttl: Duration::from_secs(6 * 60 * 60),
            code_ttl: Duration::from_secs(5 * 60),
        }
    }
}

/// A fault to inject into the next call(s) of `POST /oauth2/token`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// Answer with this status and a Monzo-shaped error body without looking
    /// at the request, so an authorization code in it stays usable.
    /// A value that is not a valid HTTP status is answered as 500.
    Status(u16),
    /// Handle the request normally (the code is used up and a token issued),
    /// then sleep this long before answering: models a response lost to a
    /// client timeout.
    Delay(Duration),
    /// Answer 200 with a body that is not JSON; the request is not looked at.
    Garbage,
    /// Read the request, wait this long, then handle it (the code is used up and a token issued)
    /// even if the client gave up meanwhile: models a Monzo that is slow to act, not only slow
    /// to answer. The call counts as in flight until it is handled.
    ProcessLate(Duration),
}

/// Counters the tests assert on. Also served as JSON by `GET /_fake/stats`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// Every `POST /oauth2/token`, whatever the outcome (injected failures too).
    pub token_calls: u64,
    /// `grant_type=authorization_code` calls that got past client
    /// authentication to code checking, successful or not (reuse included).
    pub code_exchanges: u64,
    pub successful_code_exchanges: u64,
    /// `grant_type=refresh_token` calls that got past client authentication
    /// to refresh-token checking, successful or not.
    pub refreshes: u64,
    /// Highest number of token handlers in flight at once.
    pub max_concurrent_token_calls: u64,
    /// Token handlers in flight right now. A handler dropped because its
    /// client hung up stops counting, which lets tests wait for that.
    pub token_calls_in_flight: u64,
    /// User ids whose token was logged out via `POST /oauth2/logout`, in order.
    pub logouts: Vec<String>,
    pub whoami_calls: u64,
}

/// Handle to a fake Monzo. Cheap to clone; all clones share one state.
#[derive(Clone)]
pub struct FakeMonzo {
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for FakeMonzo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeMonzo").finish_non_exhaustive()
    }
}

impl FakeMonzo {
    pub fn new(config: FakeMonzoConfig) -> Self {
        Self {
            state: Arc::new(Mutex::new(State::new(config))),
        }
    }

    /// Adds a client, or replaces the one with the same `client_id`. Works
    /// while serving: demo mode only learns its redirect URI once bound.
    pub fn register_client(&self, reg: ClientRegistration) {
        self.lock().register_client(reg);
    }

    /// The `auth.monzo.com` side: the login page and its form target.
    pub fn auth_router(&self) -> axum::Router {
        auth::router(self.clone())
    }

    /// The `api.monzo.com` side, plus the `/_fake/...` test-control routes.
    pub fn api_router(&self) -> axum::Router {
        api::router(self.clone())
    }

    /// Serves both sides on the given listeners until shut down.
    pub async fn spawn(
        self,
        auth_listener: TcpListener,
        api_listener: TcpListener,
    ) -> io::Result<RunningFakeMonzo> {
        let auth_addr = auth_listener.local_addr()?;
        let api_addr = api_listener.local_addr()?;
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let tasks = vec![
            serve(auth_listener, self.auth_router(), shutdown_rx.clone()),
            serve(api_listener, self.api_router(), shutdown_rx),
        ];
        Ok(RunningFakeMonzo {
            auth_url: base_url(auth_addr)?,
            api_url: base_url(api_addr)?,
            monzo: self,
            shutdown_tx,
            tasks,
        })
    }

    /// Binds two ephemeral ports on 127.0.0.1 and serves on them.
    pub async fn start_on_loopback(config: FakeMonzoConfig) -> io::Result<RunningFakeMonzo> {
        let auth_listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let api_listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        Self::new(config).spawn(auth_listener, api_listener).await
    }

    /// Makes the next `count` calls of `POST /oauth2/logout` answer `status` (400..=599) and
    /// log nothing out.
    pub fn fail_next_logout(&self, count: u32, status: u16) {
        let mut state = self.lock();
        state
            .pending_logout_failures
            .extend(std::iter::repeat_n(status, count as usize));
    }

    /// Makes the next `count` calls of `POST /oauth2/token` fail this way
    /// (queued after any failures already pending).
    pub fn fail_next(&self, count: u32, failure: Failure) {
        let mut state = self.lock();
        for _ in 0..count {
            state.pending_failures.push_back(failure.clone());
        }
    }

    /// The user approves Strong Customer Authentication in the Monzo app for
    /// their current token(s). Tokens issued later by a fresh login need a new
    /// approval; tokens obtained by refreshing an approved one do not.
    pub fn approve_sca(&self, user_id: &str) {
        self.lock().approve_sca(user_id);
    }

    pub fn stats(&self) -> Stats {
        self.lock().stats.clone()
    }

    /// Whether `token` is an access token that would be accepted right now.
    pub fn is_access_token_live(&self, token: &str) -> bool {
        self.lock().access(token).is_some()
    }

    /// All handlers keep the lock for short synchronous sections only. A
    /// panic while holding it cannot leave the maps half-updated in a way that
    /// matters for a test double, so poisoning is ignored rather than turning
    /// one failed test into a cascade.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// A fake Monzo serving on two listeners. Dropping it aborts the servers;
/// [`RunningFakeMonzo::shutdown`] stops them gracefully.
#[derive(Debug)]
pub struct RunningFakeMonzo {
    /// Base of the login page, e.g. `http://127.0.0.1:A/`.
    pub auth_url: Url,
    /// Base of the API, e.g. `http://127.0.0.1:B/`; join paths onto it
    /// (`api_url.join("ping/whoami")`). A `Url` always has a path, so it
    /// prints with a trailing `/`.
    pub api_url: Url,
    pub monzo: FakeMonzo,
    shutdown_tx: watch::Sender<bool>,
    tasks: Vec<JoinHandle<io::Result<()>>>,
}

impl RunningFakeMonzo {
    /// Stops accepting connections, lets in-flight requests finish, and waits
    /// for both servers to stop.
    pub async fn shutdown(mut self) -> io::Result<()> {
        // Receivers only disappear once the servers have stopped already.
        let _ = self.shutdown_tx.send(true);
        for task in std::mem::take(&mut self.tasks) {
            task.await.map_err(io::Error::other)??;
        }
        Ok(())
    }
}

impl Drop for RunningFakeMonzo {
    fn drop(&mut self) {
        // Without this a test that forgets to shut down would leave servers
        // running on the runtime until it ends.
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn serve(
    listener: TcpListener,
    router: axum::Router,
    mut shutdown: watch::Receiver<bool>,
) -> JoinHandle<io::Result<()>> {
    tokio::spawn(async move {
        axum::serve(listener, router)
            .with_graceful_shutdown(async move {
                // An error means the sender was dropped: stop in that case too.
                let _ = shutdown.wait_for(|stop| *stop).await;
            })
            .await
    })
}

fn base_url(addr: SocketAddr) -> io::Result<Url> {
    Url::parse(&format!("http://{addr}/")).map_err(io::Error::other)
}
