//! The standard OAuth face: RFC 8628's device authorization endpoint, RFC 6749's token
//! endpoint (device code and refresh token grants) and RFC 8414 metadata.
//!
//! Errors here follow RFC 6749 5.2 (HTTP 400, `{"error", "error_description"}`), mapped from the
//! flow's errors in [`oauth_error`], the one place for this contract. The simple API's mapping
//! (`error.rs`) is the other contract.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret as _;
use serde::Serialize;

use super::error::ApiError;
use super::limit::RefreshLimit;
use super::params::{FormParams, Params, ParamsError};
use super::{AppState, RequestBase};
use crate::flow::{ClientAddr, FlowError, IssuedToken, Poll};

/// RFC 8628 3.4.
pub(super) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

#[derive(Serialize)]
pub(super) struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: u64,
    interval: u64,
}

/// `POST /device/code` (RFC 8628 3.1, 3.2).
pub(super) async fn device_code(
    State(flow): State<AppState>,
    derived: Option<Extension<RequestBase>>,
    params: Result<FormParams, ParamsError>,
) -> Result<Json<DeviceAuthorization>, ApiError> {
    let params = client_params(params)?;
    let derived = derived.map(|Extension(base)| base.0);
    let started = flow
        .start_device(params.non_empty("client_id"), derived.as_ref())
        .await
        .map_err(|err| oauth_error(err, Grant::DeviceCode))?;
    Ok(Json(DeviceAuthorization {
        device_code: started.device_code.expose(),
        user_code: started.user_code.display(),
        verification_uri: started.verification_uri.into(),
        verification_uri_complete: started.verification_uri_complete.into(),
        expires_in: started.expires_in,
        interval: started.interval,
    }))
}

#[derive(Serialize)]
struct TokenResponse<'a> {
    access_token: &'a str,
    token_type: &'a str,
    expires_in: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
    user_id: &'a str,
}

fn token_response(token: &IssuedToken) -> Response {
    Json(TokenResponse {
        access_token: token.access_token.expose_secret(),
        token_type: &token.token_type,
        expires_in: token.expires_in,
        refresh_token: token.refresh_token.as_ref().map(|t| t.expose_secret()),
        user_id: &token.user_id,
    })
    .into_response()
}

/// Which grant an error arose in: they differ on what a Monzo outage means.
#[derive(Clone, Copy)]
enum Grant {
    DeviceCode,
    RefreshToken,
}

/// `POST /oauth/token` (RFC 6749 3.2, 6; RFC 8628 3.4).
pub(super) async fn token(
    State(flow): State<AppState>,
    refresh_limit: Option<Extension<Arc<RefreshLimit>>>,
    addr: Option<Extension<ClientAddr>>,
    params: Result<FormParams, ParamsError>,
) -> Result<Response, ApiError> {
    let params = client_params(params)?;
    match params.get("grant_type") {
        Some(DEVICE_CODE_GRANT) => {
            match flow
                .poll_device(
                    params.non_empty("device_code"),
                    params.non_empty("client_id"),
                )
                .await
            {
                Ok(Poll::Token(token)) => Ok(token_response(&token)),
                Ok(Poll::Pending { .. }) => Err(oauth(
                    "authorization_pending",
                    "The user has not finished logging in at Monzo yet.",
                )),
                Err(err) => Err(oauth_error(err, Grant::DeviceCode)),
            }
        }
        Some("refresh_token") => {
            if let (Some(Extension(limit)), Some(Extension(addr))) = (refresh_limit, addr)
                && let Err(wait) = limit.check(&addr)
            {
                return Err(ApiError::new(
                    StatusCode::TOO_MANY_REQUESTS,
                    "slow_down",
                    "Too many refreshes from this address; wait a moment.",
                )
                .retry_after(wait));
            }
            let refresh_token = params
                .non_empty("refresh_token")
                .ok_or_else(|| ApiError::invalid_request("refresh_token is required"))?;
            flow.refresh(refresh_token)
                .await
                .map(|token| token_response(&token))
                .map_err(|err| oauth_error(err, Grant::RefreshToken))
        }
        None | Some("") => Err(ApiError::invalid_request("grant_type is required")),
        Some(_) => Err(oauth(
            "unsupported_grant_type",
            "Supported grants: urn:ietf:params:oauth:grant-type:device_code, refresh_token.",
        )),
    }
}

/// RFC 6749 5.2 (which RFC 8628 3.2 follows): a request the endpoint cannot read (no body,
/// another content type, too large, malformed) is a client error like any other, 400
/// `invalid_request`, never a 415 or 413.
fn client_params(params: Result<FormParams, ParamsError>) -> Result<Params, ApiError> {
    params
        .map(|FormParams(params)| params)
        .map_err(|err| ApiError::invalid_request(err.to_string()))
}

fn oauth(code: &'static str, description: &'static str) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, description)
}

/// The flow's errors as RFC 6749 5.2 / RFC 8628 3.5 errors.
fn oauth_error(err: FlowError, grant: Grant) -> ApiError {
    match err {
        FlowError::InvalidRequest(what) => ApiError::invalid_request(what),
        FlowError::NotFound => oauth(
            "invalid_grant",
            "The device_code is unknown or was already used.",
        ),
        FlowError::Expired => oauth(
            "expired_token",
            "The device_code expired; start a new login.",
        ),
        FlowError::Denied => oauth("access_denied", "The user declined access at Monzo."),
        FlowError::UserNotAllowed => {
            oauth("access_denied", "This Monzo user may not use this service.")
        }
        FlowError::InvalidClient => oauth(
            "invalid_client",
            "The client_id does not match the one the device_code was issued to.",
        ),
        FlowError::SlowDown => oauth(
            "slow_down",
            "Polled faster than the interval; the interval grows by 5 seconds.",
        ),
        FlowError::CodeRejected | FlowError::VerifierMismatch => oauth(
            "invalid_grant",
            "Monzo did not accept the authorization code; start a new login.",
        ),
        FlowError::RefreshRejected => oauth(
            "invalid_grant",
            "Monzo did not accept the refresh token; log in again.",
        ),
        // During a device poll nothing is lost (the claim was released, or is kept until its
        // lease lapses when Monzo may have acted; polls meanwhile are authorization_pending):
        // slow_down makes standard clients wait longer and retry on their own (DESIGN.md).
        FlowError::Upstream(cause) => {
            tracing::warn!(error = %cause, "Monzo call failed");
            match grant {
                Grant::DeviceCode => oauth(
                    "slow_down",
                    "Monzo is unavailable for a moment; keep polling, more slowly.",
                ),
                Grant::RefreshToken => ApiError::temporarily_unavailable(),
            }
        }
        // Store, secret and configuration failures answer as in the simple API.
        other => other.into(),
    }
}

#[derive(Serialize)]
pub(super) struct Metadata {
    issuer: String,
    device_authorization_endpoint: String,
    token_endpoint: String,
    grant_types_supported: [&'static str; 2],
    token_endpoint_auth_methods_supported: [&'static str; 1],
    /// RFC 8414 requires the member; there is no authorization endpoint here (the login
    /// happens at Monzo), so it supports no response type.
    response_types_supported: [&'static str; 0],
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 2, 3).
pub(super) async fn metadata(
    State(flow): State<AppState>,
    derived: Option<Extension<RequestBase>>,
) -> Result<Json<Metadata>, ApiError> {
    let derived = derived.map(|Extension(base)| base.0);
    let base = flow
        .public_base(derived.as_ref())
        .ok_or_else(|| ApiError::from(FlowError::NoReturnUrl))?;
    let join = |path: &str| base.join(path).map(String::from).unwrap_or_default();
    Ok(Json(Metadata {
        issuer: base.as_str().trim_end_matches('/').to_owned(),
        device_authorization_endpoint: join("device/code"),
        token_endpoint: join("oauth/token"),
        grant_types_supported: [DEVICE_CODE_GRANT, "refresh_token"],
        token_endpoint_auth_methods_supported: ["none"],
        response_types_supported: [],
    }))
}
