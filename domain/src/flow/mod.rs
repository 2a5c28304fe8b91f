//! The login flow itself, independent of HTTP: start a session, take Monzo's callback, redeem.
//!
//! Handlers parse what a request carries into the types here ([`PollId`], [`AuthCode`], ...) and
//! map each step's error ([`error`]) to their contract's answer. Time comes from the [`Clock`]
//! the flow is given and is handed to the store, which keeps none.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use secrecy::{ExposeSecret as _, SecretString};
use time::OffsetDateTime;
use url::Url;

use crate::clock::Clock;
use crate::monzo::{MonzoClient, MonzoError, MonzoToken};
use crate::secret::ClientSecretSource;
use crate::session::{
    AccessToken, AuthCode, CodeChallenge, CodeVerifier, Lease, PollId, RefreshToken, Session,
    State, Status, random_token,
};
use crate::store::{Claimed, Store};
use crate::urls::{PublicUrls, UrlResolver};

mod device;
pub mod error;

pub use device::{ClientAddr, DeviceStarted};
pub use error::{
    CallbackError, DeviceError, DevicePollError, Internal, NoPublicUrl, PollError, RefreshError,
    RevokeError, TokenError,
};

#[derive(Debug, Clone)]
pub struct FlowSettings {
    /// The service's public URLs, configured or derived per request.
    pub urls: UrlResolver,
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
    /// Per network (IPv4: /24, IPv6: /48); 0: off.
    pub per_network: u64,
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

/// Monzo's redirect back to `/callback`, as the handler read it.
#[derive(Debug)]
pub enum Callback {
    /// The person approved: a code for the session with this state.
    Code { state: State, code: AuthCode },
    /// Monzo sent an error (it only sends `access_denied`): no code is coming.
    Refused { state: State },
}

pub struct Flow {
    store: Arc<dyn Store>,
    monzo: MonzoClient,
    secret: Arc<dyn ClientSecretSource>,
    clock: Arc<dyn Clock>,
    settings: FlowSettings,
}

impl Flow {
    pub fn new(
        store: Arc<dyn Store>,
        monzo: MonzoClient,
        secret: Arc<dyn ClientSecretSource>,
        clock: Arc<dyn Clock>,
        settings: FlowSettings,
    ) -> Self {
        Self {
            store,
            monzo,
            secret,
            clock,
            settings,
        }
    }

    pub fn settings(&self) -> &FlowSettings {
        &self.settings
    }

    pub fn monzo(&self) -> &MonzoClient {
        &self.monzo
    }

    /// Whether the store can be read (the local server's health check).
    pub async fn store_health(&self) -> Result<(), Internal> {
        Ok(self.store.health().await?)
    }

    fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Creates a session whose login returns to `urls`' callback (recorded in the session, so
    /// the exchange sends the very same redirect URI).
    pub async fn start(
        &self,
        code_challenge: Option<CodeChallenge>,
        urls: &PublicUrls,
    ) -> Result<Started, Internal> {
        let now = self.now();
        let id = PollId::generate(now);
        let ttl = self.settings.session_ttl;
        let session = Session::new_pending(&id, now, ttl)
            .with_code_challenge(code_challenge)
            .with_return_url(Some(urls.callback().to_string()));
        self.store.create(&session).await?;
        Ok(Started {
            login_url: self
                .monzo
                .login_url(urls.callback().as_str(), &session.state),
            id,
            expires_in: ttl.as_secs(),
            interval: self.settings.poll_interval.as_secs(),
        })
    }

    /// Takes Monzo's redirect: seals the code into the session (once), or records a denial.
    pub async fn callback(&self, callback: Callback) -> Result<CallbackOutcome, CallbackError> {
        let now = self.now();
        match callback {
            Callback::Code { state, code } => {
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
            Callback::Refused { state } => {
                if self.store.deny(&state, now).await? {
                    Ok(CallbackOutcome::Denied)
                } else {
                    Err(CallbackError::UnusableState)
                }
            }
        }
    }

    /// One poll by the app. At most one poll ever gets the token; concurrent polls wait (202)
    /// while one holds the claim and exchanges the code.
    pub async fn poll(
        &self,
        id: &PollId,
        code_verifier: Option<&CodeVerifier>,
    ) -> Result<Poll, PollError> {
        let now = self.now();
        let session = self.live_session(&id.state(), now).await?;
        if let Some(challenge) = &session.code_challenge
            && !code_verifier.is_some_and(|v| challenge.is_met_by(v))
        {
            return Err(PollError::VerifierMismatch);
        }
        Ok(self.redeem_if_ready(id, &session, now).await?)
    }

    /// The session `state` names, unless it is gone or expired.
    async fn live_session(&self, state: &State, now: i64) -> Result<Session, TokenError> {
        let session = self.store.get(state).await?.ok_or(TokenError::NotFound)?;
        if session.is_expired(now) {
            return Err(TokenError::Expired);
        }
        Ok(session)
    }

    /// Pending while the user is at Monzo or another poll holds the claim; otherwise takes the
    /// claim and redeems.
    async fn redeem_if_ready(
        &self,
        id: &PollId,
        session: &Session,
        now: i64,
    ) -> Result<Poll, TokenError> {
        if !is_claimable(session, now)? {
            return Ok(self.pending());
        }
        self.claim_and_redeem(id, now).await
    }

    /// Takes the claim on an authorized session and redeems it; a poll that loses the race
    /// learns what the session looks like now.
    async fn claim_and_redeem(&self, id: &PollId, now: i64) -> Result<Poll, TokenError> {
        let state = id.state();
        let lease = Lease {
            id: random_token::<16>(),
            until_ms: now + self.settings.lease.as_millis() as i64,
        };
        let Some(claimed) = self.store.claim(&state, &lease, now).await? else {
            let now = self.now();
            let session = self.live_session(&state, now).await?;
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
    ) -> Result<Poll, TokenError> {
        let state = &id.state();
        let Some(code) = id.sealing_key().open(&claimed.sealed_code) else {
            // Not sealed to this id: tampered with. Nothing can redeem it, so drop it.
            tracing::warn!("a stored authorization code could not be opened; session removed");
            self.store.finish(state, lease.id.as_str()).await?;
            return Err(TokenError::CodeRejected);
        };
        let Some(redirect_uri) = self
            .settings
            .urls
            .redirect_uri_of(claimed.return_url.as_deref())
        else {
            self.store.release(state, &lease.id).await?;
            return Err(NoPublicUrl.into());
        };
        let secret = match self.secret.client_secret().await {
            Ok(secret) => secret,
            Err(err) => {
                self.store.release(state, &lease.id).await?;
                return Err(err.into());
            }
        };
        let exchanged_at = self.clock.now();
        match self
            .monzo
            .exchange_code(&secret, code.expose(), &redirect_uri)
            .await
        {
            Ok(token) => self.settle_success(state, lease, token, exchanged_at).await,
            Err(err @ MonzoError::Rejected { .. }) => {
                self.store.finish(state, &lease.id).await?;
                tracing::info!(error = %err, "Monzo rejected an authorization code; session removed");
                Err(TokenError::CodeRejected)
            }
            Err(MonzoError::Unavailable(cause)) if cause.certainly_not_acted() => {
                // Monzo never took the code: the next poll may try again at once.
                self.store.release(state, &lease.id).await?;
                Err(TokenError::Upstream(MonzoError::Unavailable(cause)))
            }
            Err(err @ MonzoError::Unavailable(_)) => {
                // Monzo may have taken the code, or may still be working on it: a second
                // exchange now could make it revoke the token the first one issued. The claim is
                // kept until its lease lapses (longer than any exchange lasts); polls meanwhile
                // are pending, and the retry after it either succeeds or gets invalid_grant.
                tracing::info!(error = %err, "the outcome of an exchange is unknown; keeping its claim until the lease lapses");
                Err(TokenError::Upstream(err))
            }
        }
    }

    async fn settle_success(
        &self,
        state: &State,
        lease: &Lease,
        token: MonzoToken,
        exchanged_at: OffsetDateTime,
    ) -> Result<Poll, TokenError> {
        let admitted = self.admit(token, exchanged_at).await;
        // The code is spent either way, so the session is over. If deleting it fails, the token
        // (which only this caller will ever see) must not be lost: the session expires anyway.
        match self.store.finish(state, &lease.id).await {
            Ok(true) => {}
            Ok(false) => tracing::warn!("the redeem lease lapsed before the exchange finished"),
            Err(err) => tracing::warn!(error = %err, "could not delete a redeemed session"),
        }
        admitted
            .map(Poll::Token)
            .map_err(|NotAllowed| TokenError::UserNotAllowed)
    }

    /// Hands out a token Monzo issued, unless `ALLOWED_USER_IDS` excludes its user: then the
    /// token is logged out at Monzo at once and never leaves the service.
    async fn admit(
        &self,
        token: MonzoToken,
        issued_at: OffsetDateTime,
    ) -> Result<IssuedToken, NotAllowed> {
        if let Some(allowed) = &self.settings.allowed_user_ids
            && !allowed.contains(&token.user_id)
        {
            if let Err(err) = self.monzo.logout(&token.access_token).await {
                tracing::warn!(error = %err, "could not log out a refused user's token at Monzo");
            }
            tracing::warn!("refused a token for a Monzo user not on ALLOWED_USER_IDS");
            return Err(NotAllowed);
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
    pub async fn refresh(&self, refresh_token: &RefreshToken) -> Result<IssuedToken, RefreshError> {
        let secret = self.secret.client_secret().await.map_err(Internal::from)?;
        let issued_at = self.clock.now();
        match self.monzo.refresh(&secret, refresh_token.expose()).await {
            Ok(token) => self
                .admit(token, issued_at)
                .await
                .map_err(|NotAllowed| RefreshError::UserNotAllowed),
            Err(MonzoError::Rejected { .. }) => Err(RefreshError::Rejected),
            Err(err @ MonzoError::Unavailable(_)) => Err(RefreshError::Upstream(err)),
        }
    }
}

impl Flow {
    /// Ends the login `token` belongs to (RFC 7009), whichever kind it is: an access token is
    /// logged out at Monzo (`POST /oauth2/logout`), which ends its refresh token too; a refresh
    /// token is traded once at Monzo's token endpoint and the access token that comes back is
    /// logged out (never logged or handed out), so the whole chain ends. `hint` only says which
    /// kind to try first: a token Monzo refuses as one kind is tried as the other (RFC 7009
    /// 2.1), and one it refuses as both is as revoked as it will ever be (2.2). Monzo failing in
    /// a way that leaves the outcome unknown is [`RevokeError::Upstream`]: the client retries,
    /// and the retry finds the chain ended.
    pub async fn revoke(&self, token: &AccessToken, hint: TokenKind) -> Result<(), RevokeError> {
        let order = match hint {
            TokenKind::Access => [TokenKind::Access, TokenKind::Refresh],
            TokenKind::Refresh => [TokenKind::Refresh, TokenKind::Access],
        };
        for kind in order {
            let ended = match kind {
                TokenKind::Access => self.log_out(token.expose()).await?,
                TokenKind::Refresh => self.end_refresh_chain(token).await?,
            };
            if ended {
                return Ok(());
            }
        }
        Ok(())
    }

    /// Logs `access_token` out at Monzo: `false` when Monzo does not know it as a live access
    /// token.
    async fn log_out(&self, access_token: &str) -> Result<bool, RevokeError> {
        let token = SecretString::from(access_token.to_owned());
        match self.monzo.logout(&token).await {
            Ok(()) => Ok(true),
            Err(MonzoError::Rejected { .. }) => Ok(false),
            Err(err @ MonzoError::Unavailable(_)) => Err(RevokeError::Upstream(err)),
        }
    }

    /// Trades `token` as a refresh token and logs out what comes back: `false` when Monzo does
    /// not take it as a refresh token.
    async fn end_refresh_chain(&self, token: &AccessToken) -> Result<bool, RevokeError> {
        let Some(refresh_token) = RefreshToken::parse(token.expose()) else {
            return Ok(false);
        };
        let secret = self.secret.client_secret().await.map_err(Internal::from)?;
        let traded = match self.monzo.refresh(&secret, refresh_token.expose()).await {
            Ok(traded) => traded,
            Err(MonzoError::Rejected { .. }) => return Ok(false),
            Err(err @ MonzoError::Unavailable(_)) => return Err(RevokeError::Upstream(err)),
        };
        // The old pair is spent; the new one dies here. Its refresh token is dropped unused, so
        // only the access token is left to end, and a passing failure gets a few tries at once
        // (a retry of the whole revocation could no longer reach it).
        let access_token = traded.access_token.expose_secret();
        let mut tries = 0;
        loop {
            tries += 1;
            match self.log_out(access_token).await {
                Ok(_) => return Ok(true),
                Err(err) if tries >= REVOKE_LOGOUT_TRIES => return Err(err),
                Err(_) => {}
            }
        }
    }

    /// Monzo's API as this service uses it (advertised so clients can call it with the token).
    pub fn monzo_api_url(&self) -> &Url {
        &self.monzo.settings().api_url
    }
}

/// What a revocation's `token_type_hint` names (RFC 7009 2.1): the kind tried first.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenKind {
    Access,
    Refresh,
}

/// How many times a revocation tries to log out the access token its trade brought back.
const REVOKE_LOGOUT_TRIES: u32 = 3;

/// `ALLOWED_USER_IDS` does not include the token's user.
struct NotAllowed;

/// Whether a live session can be claimed now: `Ok(false)` while the user is still at Monzo or
/// another poll holds the claim, an error when it never will be.
fn is_claimable(session: &Session, now: i64) -> Result<bool, TokenError> {
    match session.status {
        Status::Pending => Ok(false),
        Status::Denied => Err(TokenError::Denied),
        Status::Authorized { .. } => Ok(!session.is_leased(now)),
    }
}
