//! The login flow itself, independent of HTTP: start a session, take Monzo's callback, redeem.
//!
//! Handlers call these functions and map [`FlowError`] to a response in one place per contract:
//! `http::error` for the simple API, `http::oauth` for the standard OAuth endpoints. Time comes
//! from [`now_ms`] here and is handed to the store, which keeps none.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use secrecy::SecretString;
use time::OffsetDateTime;
use url::Url;

use crate::monzo::{MonzoClient, MonzoError, MonzoToken};
use crate::secret::{ClientSecretSource, SecretUnavailable};
use crate::session::{CodeChallenge, Lease, PollId, Session, State, Status, random_token};
use crate::store::{Claimed, Store, StoreError};

mod device;

pub use device::{ClientAddr, DeviceError, DeviceStarted};

/// Longest authorization code the callback accepts (Monzo's are far shorter).
const MAX_CODE_LEN: usize = 4096;

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Everything that can go wrong in the flow, each mapped to one answer by the HTTP layer.
#[derive(Debug, thiserror::Error)]
pub enum FlowError {
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    #[error("no such session")]
    NotFound,
    #[error("the session expired")]
    Expired,
    #[error("the user denied access")]
    Denied,
    #[error("the Monzo user is not on ALLOWED_USER_IDS")]
    UserNotAllowed,
    #[error("code_verifier is missing or does not match")]
    VerifierMismatch,
    #[error("the authorization code was not accepted")]
    CodeRejected,
    #[error("Monzo is unavailable")]
    Upstream(#[source] MonzoError),
    #[error(transparent)]
    Secret(#[from] SecretUnavailable),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no return URL is configured or known for this session")]
    NoReturnUrl,
    /// A device poll named another `client_id` than the session was started with.
    #[error("the client_id does not match the device_code's")]
    InvalidClient,
    /// A device poll came sooner than the session's interval allows.
    #[error("polled too fast")]
    SlowDown,
    /// Monzo refused a refresh token (its 400, 401 or 403).
    #[error("the refresh token was not accepted")]
    RefreshRejected,
}

/// Why a callback was refused (the browser gets a page, not JSON).
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("the callback is missing its parameters")]
    MissingParameters,
    #[error("unknown, expired or already used state")]
    UnusableState,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone)]
pub struct FlowSettings {
    /// The configured `/callback` URL; `None` when each session records its own.
    pub return_url: Option<Url>,
    /// The service's public base URL (device-flow URLs, metadata), ending in `/`; `None` when
    /// the host derives it per request.
    pub public_base: Option<Url>,
    /// Limits on wrong user codes at `/device`.
    pub guess_limits: GuessLimits,
    pub session_ttl: Duration,
    pub poll_interval: Duration,
    /// How long a claim on a session lasts; must outlast the Monzo client's total timeout.
    pub lease: Duration,
    pub allowed_user_ids: Option<BTreeSet<String>>,
}

/// How many wrong user codes `/device` takes before refusing (RFC 8628 5.1), per window.
#[derive(Debug, Clone)]
pub struct GuessLimits {
    /// Per address (IPv6: per /64); 0 turns the limit off.
    pub per_address: u64,
    /// For everyone together, a backstop against guessing from many addresses; 0: off.
    pub global: u64,
    pub window: Duration,
}

impl FlowSettings {
    /// The claim length for a Monzo client timeout: twice the timeout plus ten seconds, so a
    /// slow exchange always finishes (or gives up) before anyone else may start another.
    pub fn lease_for(monzo_timeout: Duration) -> Duration {
        monzo_timeout * 2 + Duration::from_secs(10)
    }
}

/// The longest token the service forwards to Monzo (refresh tokens; Monzo's are a few hundred
/// bytes).
pub const MAX_FORWARDED_TOKEN: usize = 4096;

/// A session just created.
#[derive(Debug)]
pub struct Started {
    pub id: PollId,
    pub login_url: Url,
    pub expires_in: u64,
    pub interval: u64,
}

/// What a poll found.
#[derive(Debug)]
pub enum Poll {
    /// Keep polling after `interval` seconds.
    Pending {
        interval: u64,
    },
    Token(IssuedToken),
}

/// The token handed to the one poll that redeemed the session. `Debug` redacts the secrets.
#[derive(Debug)]
pub struct IssuedToken {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_in: u64,
    pub expires_at: OffsetDateTime,
    pub token_type: String,
    pub user_id: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum CallbackOutcome {
    Authorized,
    Denied,
}

/// The parameters Monzo appends to the return URL.
#[derive(Debug, Default)]
pub struct CallbackParams {
    pub state: Option<String>,
    pub code: Option<String>,
    pub error: Option<String>,
}

pub struct Flow {
    store: Arc<dyn Store>,
    monzo: MonzoClient,
    secret: Arc<dyn ClientSecretSource>,
    settings: FlowSettings,
}

impl Flow {
    pub fn new(
        store: Arc<dyn Store>,
        monzo: MonzoClient,
        secret: Arc<dyn ClientSecretSource>,
        settings: FlowSettings,
    ) -> Self {
        Self {
            store,
            monzo,
            secret,
            settings,
        }
    }

    pub fn settings(&self) -> &FlowSettings {
        &self.settings
    }

    pub fn monzo(&self) -> &MonzoClient {
        &self.monzo
    }

    /// Creates a session. `return_url` overrides the configured one (Lambda derives it from the
    /// request) and is then recorded in the session, so the exchange sends the same value.
    pub async fn start(
        &self,
        code_challenge: Option<CodeChallenge>,
        return_url: Option<Url>,
    ) -> Result<Started, FlowError> {
        let (redirect_uri, recorded) = match (&self.settings.return_url, return_url) {
            (Some(configured), _) => (configured.clone(), None),
            (None, Some(derived)) => (derived.clone(), Some(derived.to_string())),
            (None, None) => return Err(FlowError::NoReturnUrl),
        };
        let id = PollId::generate();
        let ttl = self.settings.session_ttl;
        let session =
            Session::new_pending(&id, now_ms(), ttl.as_millis() as i64, ttl.as_secs() as i64)
                .with_code_challenge(code_challenge)
                .with_return_url(recorded);
        self.store.create(&session).await?;
        Ok(Started {
            login_url: self.monzo.login_url(redirect_uri.as_str(), &session.state),
            id,
            expires_in: ttl.as_secs(),
            interval: self.settings.poll_interval.as_secs(),
        })
    }

    /// Takes Monzo's redirect: seals the code into the session (once), or records a denial.
    pub async fn callback(&self, params: CallbackParams) -> Result<CallbackOutcome, CallbackError> {
        let state = params
            .state
            .as_deref()
            .ok_or(CallbackError::MissingParameters)?;
        // A malformed state cannot name a session; refuse it without touching the store.
        let state = State::parse(state).ok_or(CallbackError::UnusableState)?;
        let now = now_ms();
        match (params.code, params.error) {
            (Some(code), None) if !code.is_empty() && code.len() <= MAX_CODE_LEN => {
                let session = self
                    .store
                    .get(&state)
                    .await?
                    .ok_or(CallbackError::UnusableState)?;
                let sealed = session.seal_public_key.seal(&code);
                if self.store.authorize(&state, &sealed, now).await? {
                    Ok(CallbackOutcome::Authorized)
                } else {
                    Err(CallbackError::UnusableState)
                }
            }
            // Monzo only sends access_denied, but any error means no code is coming.
            (None, Some(error)) if !error.is_empty() => {
                if self.store.deny(&state, now).await? {
                    Ok(CallbackOutcome::Denied)
                } else {
                    Err(CallbackError::UnusableState)
                }
            }
            _ => Err(CallbackError::MissingParameters),
        }
    }

    /// One poll by the app. At most one poll ever gets the token; concurrent polls wait (202)
    /// while one holds the claim and exchanges the code.
    pub async fn poll(
        &self,
        id: Option<&str>,
        code_verifier: Option<&str>,
    ) -> Result<Poll, FlowError> {
        let id = id.ok_or(FlowError::InvalidRequest("id is required"))?;
        let id = PollId::parse(id).ok_or(FlowError::InvalidRequest("id is malformed"))?;
        let state = id.state();
        let now = now_ms();
        let session = self.store.get(&state).await?.ok_or(FlowError::NotFound)?;
        if session.is_expired(now) {
            return Err(FlowError::Expired);
        }
        if let Some(challenge) = &session.code_challenge
            && !code_verifier.is_some_and(|v| challenge.is_met_by(v))
        {
            return Err(FlowError::VerifierMismatch);
        }
        if !is_claimable(&session, now)? {
            return Ok(self.pending());
        }
        self.claim_and_redeem(&id, now).await
    }

    /// Takes the claim on an authorized session and redeems it; a poll that loses the race
    /// learns what the session looks like now.
    async fn claim_and_redeem(&self, id: &PollId, now: i64) -> Result<Poll, FlowError> {
        let state = id.state();
        let lease = Lease {
            id: random_token::<16>(),
            until_ms: now + self.settings.lease.as_millis() as i64,
        };
        let Some(claimed) = self.store.claim(&state, &lease, now).await? else {
            let session = self.store.get(&state).await?.ok_or(FlowError::NotFound)?;
            let now = now_ms();
            if session.is_expired(now) {
                return Err(FlowError::Expired);
            }
            is_claimable(&session, now)?;
            return Ok(self.pending());
        };
        self.redeem(id, &claimed, &lease).await
    }

    fn pending(&self) -> Poll {
        Poll::Pending {
            interval: self.settings.poll_interval.as_secs(),
        }
    }

    /// Holding the claim: open the code, exchange it, and settle the session.
    async fn redeem(
        &self,
        id: &PollId,
        claimed: &Claimed,
        lease: &Lease,
    ) -> Result<Poll, FlowError> {
        let state = &id.state();
        let Some(code) = id.sealing_key().open(&claimed.sealed_code) else {
            // Not sealed to this id: tampered with. Nothing can redeem it, so drop it.
            tracing::warn!("a stored authorization code could not be opened; session removed");
            self.store.finish(state, lease.id.as_str()).await?;
            return Err(FlowError::CodeRejected);
        };
        let redirect_uri = match (&claimed.return_url, &self.settings.return_url) {
            (Some(recorded), _) => recorded.clone(),
            (None, Some(configured)) => configured.to_string(),
            (None, None) => {
                self.store.release(state, &lease.id).await?;
                return Err(FlowError::NoReturnUrl);
            }
        };
        let secret = match self.secret.client_secret().await {
            Ok(secret) => secret,
            Err(err) => {
                self.store.release(state, &lease.id).await?;
                return Err(err.into());
            }
        };
        let exchanged_at = OffsetDateTime::now_utc();
        match self
            .monzo
            .exchange_code(&secret, &code, &redirect_uri)
            .await
        {
            Ok(token) => self.settle_success(state, lease, token, exchanged_at).await,
            Err(err @ MonzoError::Rejected { .. }) => {
                self.store.finish(state, &lease.id).await?;
                tracing::info!(error = %err, "Monzo rejected an authorization code; session removed");
                Err(FlowError::CodeRejected)
            }
            Err(MonzoError::Unavailable(cause)) if cause.certainly_not_acted() => {
                // Monzo never took the code: the next poll may try again at once.
                self.store.release(state, &lease.id).await?;
                Err(FlowError::Upstream(MonzoError::Unavailable(cause)))
            }
            Err(err @ MonzoError::Unavailable(_)) => {
                // Monzo may have taken the code, or may still be working on it: a second
                // exchange now could make it revoke the token the first one issued. The claim is
                // kept until its lease lapses (longer than any exchange lasts); polls meanwhile
                // are pending, and the retry after it either succeeds or gets invalid_grant.
                tracing::info!(error = %err, "the outcome of an exchange is unknown; keeping its claim until the lease lapses");
                Err(FlowError::Upstream(err))
            }
        }
    }

    async fn settle_success(
        &self,
        state: &State,
        lease: &Lease,
        token: MonzoToken,
        exchanged_at: OffsetDateTime,
    ) -> Result<Poll, FlowError> {
        let admitted = self.admit(token, exchanged_at).await;
        // The code is spent either way, so the session is over. If deleting it fails, the token
        // (which only this caller will ever see) must not be lost: the session expires anyway.
        match self.store.finish(state, &lease.id).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the redeem lease lapsed before the exchange finished"),
            Err(err) => tracing::warn!(error = %err, "could not delete a redeemed session"),
        }
        admitted.map(Poll::Token)
    }

    /// Hands out a token Monzo issued, unless `ALLOWED_USER_IDS` excludes its user: then the
    /// token is logged out at Monzo at once and never leaves the service.
    async fn admit(
        &self,
        token: MonzoToken,
        issued_at: OffsetDateTime,
    ) -> Result<IssuedToken, FlowError> {
        if let Some(allowed) = &self.settings.allowed_user_ids
            && !allowed.contains(&token.user_id)
        {
            if let Err(err) = self.monzo.logout(&token.access_token).await {
                tracing::warn!(error = %err, "could not log out a refused user's token at Monzo");
            }
            tracing::warn!("refused a token for a Monzo user not on ALLOWED_USER_IDS");
            return Err(FlowError::UserNotAllowed);
        }
        let expires_at = (issued_at + Duration::from_secs(token.expires_in))
            .replace_nanosecond(0)
            .unwrap_or(issued_at);
        Ok(IssuedToken {
            access_token: token.access_token,
            refresh_token: token.refresh_token,
            expires_in: token.expires_in,
            expires_at,
            token_type: token.token_type,
            user_id: token.user_id,
        })
    }

    /// Refreshes a token with Monzo, using the secret only the service holds (RFC 6749 6).
    /// Monzo rotates the pair; nothing is stored.
    pub async fn refresh(&self, refresh_token: &str) -> Result<IssuedToken, FlowError> {
        // Bounded before it is forwarded with the operator's secret: Monzo's tokens are short
        // visible ASCII.
        if refresh_token.is_empty()
            || refresh_token.len() > MAX_FORWARDED_TOKEN
            || !refresh_token.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(FlowError::InvalidRequest(
                "refresh_token is missing or malformed",
            ));
        }
        let secret = self.secret.client_secret().await?;
        let issued_at = OffsetDateTime::now_utc();
        match self.monzo.refresh(&secret, refresh_token).await {
            Ok(token) => self.admit(token, issued_at).await,
            Err(MonzoError::Rejected { .. }) => Err(FlowError::RefreshRejected),
            Err(err @ MonzoError::Unavailable(_)) => Err(FlowError::Upstream(err)),
        }
    }
}

/// Whether a live session can be claimed now: `Ok(false)` while the user is still at Monzo or
/// another poll holds the claim, an error when it never will be.
fn is_claimable(session: &Session, now: i64) -> Result<bool, FlowError> {
    match session.status {
        Status::Pending => Ok(false),
        Status::Denied => Err(FlowError::Denied),
        Status::Authorized { .. } => Ok(!session.is_leased(now)),
    }
}
