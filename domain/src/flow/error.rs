//! What can go wrong in each step of the flow, one type per step, each holding only what that
//! step can raise. The HTTP layer maps them to its three contracts (the simple API, the OAuth
//! endpoints, the pages), each in one place.

use std::error::Error as StdError;
use std::fmt;

use crate::monzo::MonzoError;
use crate::secret::SecretUnavailable;
use crate::store::StoreError;

/// A failure on the service's side, not the caller's. Whether a retry can help is decided here,
/// once, for every contract: the store or the secret being unreachable can pass (503); a
/// malformed record or a missing public URL will not (500).
#[derive(Debug, thiserror::Error)]
pub enum Internal {
    #[error(transparent)]
    Unavailable(Box<dyn StdError + Send + Sync>),
    #[error(transparent)]
    Failed(Box<dyn StdError + Send + Sync>),
}

impl Internal {
    /// Logs the cause, with its sources (Display text only, which carries no secret).
    pub fn log(&self, context: &str) {
        match self {
            Internal::Unavailable(cause) => {
                tracing::error!(error = %ErrorChain(cause.as_ref()), "{context}: unavailable")
            }
            Internal::Failed(cause) => {
                tracing::error!(error = %ErrorChain(cause.as_ref()), "{context}: failed")
            }
        }
    }
}

impl From<StoreError> for Internal {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Unavailable(_) => Internal::Unavailable(Box::new(err)),
            StoreError::Conflict | StoreError::Corrupt(_) => Internal::Failed(Box::new(err)),
        }
    }
}

impl From<SecretUnavailable> for Internal {
    fn from(err: SecretUnavailable) -> Self {
        Internal::Unavailable(Box::new(err))
    }
}

/// Neither a configured public URL nor one the host derived: a misconfiguration.
#[derive(Debug, thiserror::Error)]
#[error("no public URL is configured or known for this request")]
pub struct NoPublicUrl;

impl From<NoPublicUrl> for Internal {
    fn from(err: NoPublicUrl) -> Self {
        Internal::Failed(Box::new(err))
    }
}

/// Displays an error with its sources, `a: b: c`. Display text only: `Debug` of third-party
/// errors can carry request details.
pub struct ErrorChain<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

/// Why a session gave no token (either API's poll).
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no such session")]
    NotFound,
    #[error("the session expired")]
    Expired,
    #[error("the user denied access")]
    Denied,
    #[error("the Monzo user is not on ALLOWED_USER_IDS")]
    UserNotAllowed,
    #[error("the authorization code was not accepted")]
    CodeRejected,
    #[error("Monzo is unavailable")]
    Upstream(#[source] MonzoError),
    #[error(transparent)]
    Internal(Internal),
}

impl<E: Into<Internal>> From<E> for TokenError {
    fn from(err: E) -> Self {
        TokenError::Internal(err.into())
    }
}

/// A simple-API poll (`/token`).
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("code_verifier is missing or does not match")]
    VerifierMismatch,
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// A device-flow poll (`/oauth/token` with a device code).
#[derive(Debug, thiserror::Error)]
pub enum DevicePollError {
    /// The poll named another `client_id` than the session was started with.
    #[error("the client_id does not match the device_code's")]
    InvalidClient,
    /// It came sooner than the session's interval allows.
    #[error("polled too fast")]
    SlowDown,
    #[error(transparent)]
    Token(#[from] TokenError),
}

/// A refresh through the service (`/oauth/token` with a refresh token).
#[derive(Debug, thiserror::Error)]
pub enum RefreshError {
    /// Monzo refused the refresh token (its 400, 401 or 403).
    #[error("the refresh token was not accepted")]
    Rejected,
    #[error("the Monzo user is not on ALLOWED_USER_IDS")]
    UserNotAllowed,
    #[error("Monzo is unavailable")]
    Upstream(#[source] MonzoError),
    #[error(transparent)]
    Internal(#[from] Internal),
}

/// Why a revocation did not go through. A token Monzo does not know is no failure (RFC 7009
/// 2.2): it is as revoked as it will ever be.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("Monzo is unavailable")]
    Upstream(#[source] MonzoError),
    /// The client secret (for trading a refresh token) could not be had.
    #[error(transparent)]
    Internal(#[from] Internal),
}

/// Why Monzo's redirect was refused (the browser gets a page).
#[derive(Debug, thiserror::Error)]
pub enum CallbackError {
    #[error("unknown, expired or already used state")]
    UnusableState,
    #[error(transparent)]
    Internal(Internal),
}

impl<E: Into<Internal>> From<E> for CallbackError {
    fn from(err: E) -> Self {
        CallbackError::Internal(err.into())
    }
}

/// Why `/device` could not take a person on to Monzo (answered with a page).
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("no session has that user code")]
    WrongCode,
    #[error("too many wrong user codes")]
    TooManyGuesses { retry_after_secs: u64 },
    #[error("the session expired")]
    Expired,
    #[error("the session already went through Monzo")]
    AlreadyUsed,
    #[error(transparent)]
    Internal(Internal),
}

impl<E: Into<Internal>> From<E> for DeviceError {
    fn from(err: E) -> Self {
        DeviceError::Internal(err.into())
    }
}
