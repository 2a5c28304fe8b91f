//! The simple API's errors (`/new`, `/token`, and what every JSON route shares: unknown routes,
//! unreadable parameters, wrong host names), mapped to answers in one place, and the JSON shape
//! both JSON contracts answer in.
//!
//! Answers are `{"error", "error_description"}` (RFC 6749 5.2 style); the descriptions are fixed
//! text, so nothing a client or Monzo sent is ever echoed. Internal causes go to the log
//! (without secrets), never into a body.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use monzo_auth_protocol::{ErrorBody, ErrorCode};

use super::params::ParamsError;
use monzo_auth_domain::flow::{Internal, NoPublicUrl, PollError, TokenError};

/// Seconds a client is told to wait after a transient failure on our side.
const RETRY_AFTER_SECS: u64 = 5;

/// Everything the simple API answers besides success: the flow's own errors, wrapped as they
/// are, and what only HTTP can get wrong.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    #[error(transparent)]
    Params(#[from] ParamsError),
    /// A poll that gave no token.
    #[error(transparent)]
    Poll(#[from] PollError),
    #[error(transparent)]
    Internal(#[from] Internal),
    /// The service cannot serve now, for a reason already logged (a Lambda function's bad
    /// setting, its secret not yet decrypted).
    #[error("temporarily unavailable")]
    Unavailable,
    /// A handler panicked (logged where it was caught).
    #[error("a handler failed")]
    ServerError,
    #[error("no such route")]
    NoSuchRoute,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("another host name")]
    MisdirectedRequest,
}

impl From<NoPublicUrl> for ApiError {
    fn from(err: NoPublicUrl) -> Self {
        ApiError::Internal(err.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        use StatusCode as S;
        let (status, code, description): (_, _, &str) = match &self {
            ApiError::InvalidRequest(what) => (S::BAD_REQUEST, ErrorCode::InvalidRequest, what),
            ApiError::Params(err) => {
                let status = match err {
                    ParamsError::UnsupportedContentType => S::UNSUPPORTED_MEDIA_TYPE,
                    ParamsError::TooLarge => S::PAYLOAD_TOO_LARGE,
                    ParamsError::TooSlow => S::REQUEST_TIMEOUT,
                    ParamsError::Malformed(_) | ParamsError::Repeated => S::BAD_REQUEST,
                };
                return json_error(status, ErrorCode::InvalidRequest, &err.to_string(), None);
            }
            ApiError::Poll(PollError::VerifierMismatch) => (
                S::BAD_REQUEST,
                ErrorCode::InvalidGrant,
                "code_verifier is missing or does not match the code_challenge.",
            ),
            ApiError::Poll(PollError::Token(err)) => match err {
                TokenError::NotFound => (
                    S::NOT_FOUND,
                    ErrorCode::NotFound,
                    "No such login session: it never existed or was already redeemed.",
                ),
                TokenError::Expired => (
                    S::GONE,
                    ErrorCode::ExpiredToken,
                    "The login session expired; start a new one.",
                ),
                TokenError::Denied => (
                    S::FORBIDDEN,
                    ErrorCode::AccessDenied,
                    "The user declined access at Monzo.",
                ),
                TokenError::UserNotAllowed => (
                    S::FORBIDDEN,
                    ErrorCode::AccessDenied,
                    "This Monzo user may not use this service.",
                ),
                TokenError::CodeRejected => (
                    S::BAD_REQUEST,
                    ErrorCode::InvalidGrant,
                    "Monzo did not accept the authorization code; start a new login.",
                ),
                TokenError::Upstream(cause) => {
                    tracing::warn!(error = %cause, "Monzo call failed");
                    return json_error(
                        S::BAD_GATEWAY,
                        ErrorCode::UpstreamUnavailable,
                        "Monzo could not be reached or failed; poll again to retry.",
                        Some(RETRY_AFTER_SECS),
                    );
                }
                TokenError::Internal(cause) => return internal_error(cause, "a request"),
            },
            ApiError::Internal(cause) => {
                return internal_error(cause, "a request");
            }
            ApiError::Unavailable => return unavailable(),
            ApiError::ServerError => return server_error(),
            ApiError::NoSuchRoute => (S::NOT_FOUND, ErrorCode::NotFound, "There is no such route."),
            ApiError::MethodNotAllowed => (
                S::METHOD_NOT_ALLOWED,
                ErrorCode::MethodNotAllowed,
                "This route does not accept that method.",
            ),
            ApiError::MisdirectedRequest => (
                S::MISDIRECTED_REQUEST,
                ErrorCode::InvalidRequest,
                "This server does not answer to that host name.",
            ),
        };
        json_error(status, code, description, None)
    }
}

/// The JSON error shape of both JSON contracts (the simple API and the OAuth endpoints).
pub(crate) fn json_error(
    status: StatusCode,
    code: ErrorCode,
    description: &str,
    retry_after: Option<u64>,
) -> Response {
    let body = ErrorBody {
        error: code,
        error_description: Some(description.to_owned()),
    };
    let mut response = (status, Json(body)).into_response();
    if let Some(secs) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    response
}

/// A failure of ours, in either JSON contract, logged with `context`: 503 when a retry can help,
/// else 500.
pub(crate) fn internal_error(cause: &Internal, context: &str) -> Response {
    cause.log(context);
    match cause {
        Internal::Unavailable(_) => unavailable(),
        Internal::Failed(_) => server_error(),
    }
}

/// 503 `temporarily_unavailable` with `Retry-After`, in either JSON contract.
pub(crate) fn unavailable() -> Response {
    json_error(
        StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::TemporarilyUnavailable,
        "The service is temporarily unavailable; try again shortly.",
        Some(RETRY_AFTER_SECS),
    )
}

fn server_error() -> Response {
    json_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        ErrorCode::ServerError,
        "The service failed unexpectedly.",
        None,
    )
}
