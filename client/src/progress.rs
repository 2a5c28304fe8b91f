//! What a wait reports to a UI while it goes on.

use std::fmt;
use std::time::Duration;

/// What [`Client::wait_for_token`](crate::Client::wait_for_token) is doing, reported after every
/// poll so that a UI can say so.
///
/// # Example
///
/// ```
/// use std::time::Duration;
/// use monzo_auth_client::{Progress, RetryReason};
///
/// fn describe(progress: &Progress) -> String {
///     match progress {
///         Progress::Waiting { .. } => "Waiting for you to approve in the browser…".to_owned(),
///         Progress::Retrying { reason, after } => {
///             format!("{reason}, retrying in {} s…", after.as_secs())
///         }
///         _ => String::new(),
///     }
/// }
/// let retry = Progress::Retrying {
///     reason: RetryReason::MonzoUnavailable,
///     after: Duration::from_secs(4),
/// };
/// assert_eq!(describe(&retry), "Monzo unavailable, retrying in 4 s…");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Progress {
    /// The person has not finished at Monzo yet; the service said to poll again.
    Waiting {
        /// Time since the login session was started.
        elapsed: Duration,
    },
    /// The last poll failed in a way that can pass; the next one follows after `after`.
    Retrying {
        /// What went wrong.
        reason: RetryReason,
        /// How long until the next poll.
        after: Duration,
    },
}

/// Why a poll is being retried (see [`Progress::Retrying`]).
///
/// Its `Display` is a short phrase starting with a capital letter, e.g. "Monzo unavailable".
///
/// ```
/// use monzo_auth_client::RetryReason;
/// assert_eq!(RetryReason::MonzoUnavailable.to_string(), "Monzo unavailable");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryReason {
    /// The service could not exchange the code because Monzo failed or did not answer
    /// (`502 upstream_unavailable`). The session is kept; polling again retries.
    MonzoUnavailable,
    /// The service itself failed (`503 temporarily_unavailable` or another 5xx).
    ServiceUnavailable,
    /// The service could not be reached (connection refused, timeout, DNS).
    ServiceUnreachable,
    /// The service asked to poll less often (`429 slow_down`); the interval grows by 5 s.
    SlowDown,
}

impl fmt::Display for RetryReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MonzoUnavailable => "Monzo unavailable",
            Self::ServiceUnavailable => "Service unavailable",
            Self::ServiceUnreachable => "Service unreachable",
            Self::SlowDown => "Asked to poll less often",
        })
    }
}
