//! What can go wrong, one variant per answer of the service's contract.

/// Why a login or a refresh did not produce a token.
///
/// Each variant matches one answer of the monzo-auth HTTP contract (or one local condition). The
/// `Display` text is one sentence for a person; it never carries a token, poll id, code,
/// verifier or anything else the service or Monzo sent back verbatim, except the service's
/// fixed `error_description` for [`Error::InvalidRequest`].
///
/// # Example
///
/// ```
/// use monzo_auth_client::Error;
///
/// fn advice(error: &Error) -> &'static str {
///     match error {
///         Error::Denied => "you chose not to allow access",
///         Error::Expired => "start again, a little faster",
///         Error::Unreachable { .. } | Error::ServiceUnavailable => "try again later",
///         _ => "start again",
///     }
/// }
/// assert_eq!(advice(&Error::Expired), "start again, a little faster");
/// assert_eq!(
///     Error::Denied.to_string(),
///     "access was denied at Monzo",
/// );
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The person declined at Monzo, or their Monzo user is not allowed to use this service
    /// (`403 access_denied`, from a login or a refresh).
    #[error("access was denied at Monzo")]
    Denied,

    /// The login session expired before the login was completed: the service said so
    /// (`410 expired_token`), or the session's lifetime (`expires_in`) ran out while waiting.
    #[error("the login session expired before the login was completed; start again")]
    Expired,

    /// Monzo refused the authorization code, or the code verifier did not match the session's
    /// challenge (`400 invalid_grant` from `/token`); or, from [`Client::refresh`], Monzo
    /// refused the refresh token: it expired, was used already (each one works once) or was
    /// revoked. Logging in again is the only way on.
    ///
    /// [`Client::refresh`]: crate::Client::refresh
    #[error("Monzo did not accept the login or refresh token (invalid grant); log in again")]
    InvalidGrant,

    /// The service does not know this login session: it was already redeemed, or never existed
    /// (`404 not_found`).
    #[error("the service does not know this login session (already used, or never started)")]
    NotFound,

    /// The service refused the request as malformed (`400 invalid_request`, or 413/415), or
    /// does not refresh that way (`400 unsupported_grant_type` from `/oauth/token`). A bug on
    /// one side or the other, or a client and service of different versions.
    #[error("the service refused the request: {description}")]
    InvalidRequest {
        /// The service's `error_description`, with control characters removed and cut to a
        /// sensible length. The service's descriptions are fixed texts, never an echo.
        description: String,
    },

    /// The service or Monzo stayed unavailable (5xx answers, or no connection) until the login
    /// session expired, the service answered 5xx (or 429) when asked to start one, or a
    /// refresh got such answers on every try (or a `Retry-After` too long to wait for). The
    /// refresh token is normally still good then (the service answers 503 when Monzo failed
    /// before using it up): try again later.
    #[error("the service or Monzo is unavailable; try again later")]
    ServiceUnavailable,

    /// The service could not be reached at all when starting a login, or on the last try of a
    /// refresh (connection refused, DNS, TLS, timeout).
    #[error("cannot reach the service at {service} ({cause})")]
    Unreachable {
        /// The service's URL, without any user name or password.
        service: String,
        /// The innermost cause (e.g. "Connection refused (os error 111)"); it names no URL.
        cause: String,
    },

    /// The service answered something outside its contract (an unknown status, or a body that
    /// is not the JSON it should be). A wrong `--service` URL usually ends up here.
    #[error(
        "the service gave an answer this client does not understand (HTTP {status}); check the service URL"
    )]
    UnexpectedResponse {
        /// The HTTP status of that answer.
        status: u16,
    },

    /// The server at the service URL answered `POST /new` as no monzo-auth service would (404,
    /// 405, 501, or something that is not its JSON): a wrong URL, or another server there.
    #[error(
        "{service} does not look like a monzo-auth service (HTTP {status} to POST /new); check the service URL"
    )]
    NotMonzoAuth {
        /// The service's URL, without any user name or password.
        service: String,
        /// The HTTP status of its answer.
        status: u16,
    },

    /// The wait was cancelled through a [`Cancel`](crate::Cancel) handle.
    #[error("the login was cancelled")]
    Cancelled,

    /// The service URL cannot be used as a base for `/new`, `/token` and `/oauth/token`.
    #[error("the service URL is not usable: {reason}")]
    InvalidServiceUrl {
        /// What is wrong with it.
        reason: &'static str,
    },

    /// Something on this machine failed before any request was made (setting up TLS, reading
    /// the OS random number generator).
    #[error("could not {what}")]
    Setup {
        /// What could not be done, as a verb phrase ("set up an HTTP client").
        what: &'static str,
    },
}

/// The longest service-provided description kept in an [`Error::InvalidRequest`].
const MAX_DESCRIPTION: usize = 200;

/// Makes a description sent by the service safe to show on a terminal: no control characters
/// (which could move the cursor or fake other output) and a bounded length.
pub(crate) fn sanitize_description(text: &str) -> String {
    let cleaned: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_DESCRIPTION)
        .collect();
    let trimmed = cleaned.trim();
    if trimmed.is_empty() {
        "no reason given".to_owned()
    } else {
        trimmed.to_owned()
    }
}

/// The innermost cause of an HTTP failure, for [`Error::Unreachable`]. Only the outermost
/// layer of a reqwest error names the URL; the innermost is the OS or TLS error itself.
pub(crate) fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    let mut depth = 0;
    while let Some(source) = current.source() {
        current = source;
        depth += 1;
    }
    if depth == 0 {
        // No deeper cause: the outer text may carry the URL, so say only what kind it was.
        return "no connection".to_owned();
    }
    let text = current.to_string();
    // What TLS says of a plain-HTTP answer to its hello.
    if text.contains("InvalidContentType") || text.contains("corrupt message") {
        return "the server does not speak HTTPS there (an http:// service?)".to_owned();
    }
    sanitize_description(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_lose_control_characters_and_length() {
        assert_eq!(
            sanitize_description("bad\u{1b}[2Jthing\n"),
            "bad [2Jthing".to_owned()
        );
        assert_eq!(
            sanitize_description(&"x".repeat(500)).len(),
            MAX_DESCRIPTION
        );
        assert_eq!(sanitize_description(" \t"), "no reason given");
    }

    #[test]
    fn root_cause_is_the_innermost_error() {
        #[derive(Debug, thiserror::Error)]
        #[error("error sending request for url (http://secret.example/?id=abc)")]
        struct Outer(#[source] std::io::Error);
        let outer = Outer(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "Connection refused",
        ));
        assert_eq!(root_cause(&outer), "Connection refused");
        let alone = std::io::Error::other("http://secret.example/?id=abc");
        assert_eq!(root_cause(&alone), "no connection");
    }

    #[test]
    fn every_message_is_one_line() {
        let all = [
            Error::Denied,
            Error::Expired,
            Error::InvalidGrant,
            Error::NotFound,
            Error::InvalidRequest {
                description: "x".into(),
            },
            Error::ServiceUnavailable,
            Error::Unreachable {
                service: "http://127.0.0.1:9/".into(),
                cause: "Connection refused".into(),
            },
            Error::UnexpectedResponse { status: 418 },
            Error::NotMonzoAuth {
                service: "http://127.0.0.1:9/".into(),
                status: 404,
            },
            Error::Cancelled,
            Error::InvalidServiceUrl { reason: "x" },
            Error::Setup { what: "x" },
        ];
        for error in all {
            let text = error.to_string();
            assert!(!text.contains('\n') && !text.is_empty(), "{text:?}");
        }
    }
}
