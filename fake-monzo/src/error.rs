//! Monzo-shaped API errors: `{"code":"category.detail","message":"..."}`.
//!
//! Monzo does not answer with RFC 6749 `{"error": ...}` bodies, and clients
//! must cope with that, so the fake must not either. Messages never echo a
//! submitted value: those may be codes, tokens or secrets.

use std::borrow::Cow;

use axum::Json;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ApiError {
    pub(crate) status: StatusCode,
    pub(crate) code: &'static str,
    pub(crate) message: Cow<'static, str>,
}

impl ApiError {
    fn new(status: StatusCode, code: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    pub(crate) fn missing_param(name: &'static str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_request.missing_param",
            format!("Missing required parameter: {name}"),
        )
    }

    pub(crate) fn duplicate_param() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_request.bad_param",
            "A parameter was given more than once",
        )
    }

    pub(crate) fn bad_content_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_request.bad_content_type",
            "The request body must be application/x-www-form-urlencoded",
        )
    }

    pub(crate) fn bad_body() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_request.bad_body",
            "The request body could not be read or is too large",
        )
    }

    pub(crate) fn bad_json(reason: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request.bad_json", reason)
    }

    pub(crate) fn bad_param(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request.bad_param", message)
    }

    pub(crate) fn unsupported_grant_type() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_request.unsupported_grant_type",
            "grant_type must be authorization_code or refresh_token",
        )
    }

    pub(crate) fn bad_client_credentials() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized.bad_client_credentials",
            "The client ID or client secret is incorrect",
        )
    }

    pub(crate) fn bad_authorization_code() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized.bad_authorization_code",
            "The authorization code has been used or expired",
        )
    }

    pub(crate) fn bad_redirect_uri() -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad_request.bad_redirect_uri",
            "The redirect_uri does not match the one used to obtain the authorization code",
        )
    }

    pub(crate) fn bad_refresh_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized.bad_refresh_token",
            "The refresh token has been used, revoked or is invalid",
        )
    }

    pub(crate) fn bad_access_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized.bad_access_token",
            "The access token is missing, expired, revoked or invalid",
        )
    }

    /// Monzo keeps one live login per user and client: a newer login evicts the older token.
    pub(crate) fn evicted_access_token() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized.bad_access_token.evicted",
            "Access token has been evicted by a newer login",
        )
    }

    pub(crate) fn insufficient_permissions() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden.insufficient_permissions",
            "Access forbidden due to insufficient permissions: \
             the user has not approved access in the Monzo app yet",
        )
    }

    pub(crate) fn unknown_user() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found.user",
            "No such user is configured",
        )
    }

    pub(crate) fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "The requested resource was not found",
        )
    }

    pub(crate) fn method_not_allowed() -> Self {
        Self::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "This method is not allowed on this resource",
        )
    }

    /// The body for a failure injected with `Failure::Status`: the code that a
    /// real Monzo outage or refusal with that status would most plausibly carry.
    pub(crate) fn injected(status: u16) -> Self {
        let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match status.as_u16() {
            400 => Self::new(status, "bad_request", "The request was malformed"),
            401 => Self::bad_authorization_code(),
            403 => Self::new(status, "forbidden", "Access forbidden"),
            404 => Self::not_found(),
            429 => Self::new(
                status,
                "too_many_requests",
                "Too many requests, please slow down",
            ),
            500 => Self::new(status, "internal_service", "An internal error occurred"),
            501..=599 => Self::new(
                status,
                "internal_service.unavailable",
                "The service is temporarily unavailable",
            ),
            _ => Self::new(status, "unknown_error", "Injected failure"),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "code": self.code, "message": self.message });
        (
            self.status,
            // Error bodies of the token endpoint must not be cached either.
            [(header::CACHE_CONTROL, "no-store")],
            Json(body),
        )
            .into_response()
    }
}
