//! The one place where failures become HTTP answers.
//!
//! JSON routes answer `{"error", "error_description"}` (RFC 6749 5.2 style); the descriptions are
//! fixed text, so nothing a client or Monzo sent is ever echoed. Internal causes go to the log
//! (without secrets), never into a body.

use std::borrow::Cow;

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::params::ParamsError;
use crate::flow::FlowError;
use crate::store::StoreError;

/// Seconds a client is told to wait after a transient failure on our side.
const RETRY_AFTER_SECS: u64 = 5;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub description: Cow<'static, str>,
    pub retry_after: Option<u64>,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    error_description: &'a str,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: &'static str,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        Self {
            status,
            code,
            description: description.into(),
            retry_after: None,
        }
    }

    pub(crate) fn retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    pub fn route_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "There is no such route.",
        )
    }

    pub fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This route does not accept that method.",
        )
    }

    pub fn temporarily_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "The service is temporarily unavailable; try again shortly.",
        )
        .retry_after(RETRY_AFTER_SECS)
    }

    pub fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "The service failed unexpectedly.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code,
            error_description: &self.description,
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Displays an error with its sources, `a: b: c`. Display text only: `Debug` of third-party
/// errors can carry request details.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(err) = source {
            write!(f, ": {err}")?;
            source = err.source();
        }
        Ok(())
    }
}

impl From<ParamsError> for ApiError {
    fn from(err: ParamsError) -> Self {
        match err {
            ParamsError::UnsupportedContentType => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "invalid_request",
                err.to_string(),
            ),
            ParamsError::TooLarge => Self::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "invalid_request",
                err.to_string(),
            ),
            ParamsError::TooSlow => Self::new(
                StatusCode::REQUEST_TIMEOUT,
                "invalid_request",
                err.to_string(),
            ),
            ParamsError::Malformed(_) | ParamsError::Repeated => {
                Self::invalid_request(err.to_string())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Corrupt(_) | StoreError::Conflict => {
                tracing::error!(error = %err, "session store error");
                Self::server_error()
            }
            StoreError::Unavailable(_) => {
                tracing::error!(error = %ErrorChain(&err), "session store unavailable");
                Self::temporarily_unavailable()
            }
        }
    }
}

impl From<FlowError> for ApiError {
    fn from(err: FlowError) -> Self {
        use StatusCode as S;
        match err {
            FlowError::InvalidRequest(what) => Self::invalid_request(what),
            FlowError::NotFound => Self::new(
                S::NOT_FOUND,
                "not_found",
                "No such login session: it never existed or was already redeemed.",
            ),
            FlowError::Expired => Self::new(
                S::GONE,
                "expired_token",
                "The login session expired; start a new one.",
            ),
            FlowError::Denied => Self::new(
                S::FORBIDDEN,
                "access_denied",
                "The user declined access at Monzo.",
            ),
            FlowError::UserNotAllowed => Self::new(
                S::FORBIDDEN,
                "access_denied",
                "This Monzo user may not use this service.",
            ),
            FlowError::VerifierMismatch => Self::new(
                S::BAD_REQUEST,
                "invalid_grant",
                "code_verifier is missing or does not match the code_challenge.",
            ),
            FlowError::CodeRejected => Self::new(
                S::BAD_REQUEST,
                "invalid_grant",
                "Monzo did not accept the authorization code; start a new login.",
            ),
            FlowError::Upstream(cause) => {
                tracing::warn!(error = %cause, "Monzo call failed");
                Self::new(
                    S::BAD_GATEWAY,
                    "upstream_unavailable",
                    "Monzo could not be reached or failed; poll again to retry.",
                )
                .retry_after(RETRY_AFTER_SECS)
            }
            FlowError::Secret(cause) => {
                tracing::error!(error = %cause, "client secret unavailable");
                Self::temporarily_unavailable()
            }
            FlowError::Store(cause) => cause.into(),
            FlowError::InvalidClient => Self::new(
                S::BAD_REQUEST,
                "invalid_client",
                "The client_id does not match the one the login was started with.",
            ),
            FlowError::SlowDown => Self::new(
                S::TOO_MANY_REQUESTS,
                "slow_down",
                "Polled faster than the interval; wait longer between polls.",
            ),
            FlowError::RefreshRejected => Self::new(
                S::BAD_REQUEST,
                "invalid_grant",
                "Monzo did not accept the refresh token; log in again.",
            ),
            FlowError::NoReturnUrl => {
                tracing::error!(error = %err, "misconfigured");
                Self::server_error()
            }
        }
    }
}
