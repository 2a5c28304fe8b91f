//! The standard OAuth face: RFC 8628's device authorization endpoint, RFC 6749's token
//! endpoint (device code and refresh token grants), RFC 7009's revocation endpoint and RFC 8414
//! metadata.
//!
//! Errors here follow RFC 6749 5.2 (HTTP 400, `{"error", "error_description"}`): [`OAuthError`]
//! holds what these endpoints can answer, mapped to a response in one place.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret as _;
use serde::Serialize;

use super::RefreshLimiter;
use super::error::{internal_error, json_error, unavailable};
use super::params::{FormParams, Params, ParamsError};
use super::{AppState, RequestUrls};
use monzo_auth_domain::flow::{
    ClientAddr, DevicePollError, Internal, IssuedToken, NoPublicUrl, Poll, RefreshError,
    RevokeError, TokenError,
};
use monzo_auth_domain::monzo::MonzoError;
use monzo_auth_domain::session::{AccessToken, ClientId, PollId, RefreshToken};

/// RFC 8628 3.4.
pub(super) const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// Everything the OAuth endpoints answer besides success (RFC 6749 5.2, RFC 8628 3.5).
#[derive(Debug, thiserror::Error)]
pub enum OAuthError {
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// A request the endpoint cannot read (no body, another content type, too large,
    /// malformed): a client error like any other, 400 `invalid_request`, never a 415 or 413.
    #[error(transparent)]
    Params(#[from] ParamsError),
    #[error("unsupported grant type")]
    UnsupportedGrantType,
    #[error("the user has not finished at Monzo")]
    AuthorizationPending,
    #[error("unknown or used device code")]
    UnknownDeviceCode,
    #[error("the device code expired")]
    Expired,
    #[error("the user denied access")]
    Denied,
    #[error("the Monzo user is not on ALLOWED_USER_IDS")]
    UserNotAllowed,
    #[error("the client_id does not match")]
    InvalidClient,
    #[error("polled too fast")]
    SlowDown,
    #[error("the authorization code was not accepted")]
    CodeRejected,
    #[error("the refresh token was not accepted")]
    RefreshRejected,
    #[error("too many refreshes from this address")]
    RefreshLimited { retry_after: u64 },
    /// RFC 7009 2.2.1: Monzo logs out access tokens only; a refresh token goes with its login.
    #[error("unsupported token type")]
    UnsupportedTokenType,
    /// Monzo failed during a device poll: nothing is lost (the claim was released, or is kept
    /// until its lease lapses when Monzo may have acted; polls meanwhile are
    /// authorization_pending), so `slow_down` makes standard clients wait longer and retry.
    #[error("Monzo is unavailable")]
    UpstreamDuringPoll(#[source] MonzoError),
    /// Monzo failed during a refresh or a revocation: the client retries the same call later
    /// (RFC 7009 2.2.1: 503).
    #[error("Monzo is unavailable")]
    Upstream(#[source] MonzoError),
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<NoPublicUrl> for OAuthError {
    fn from(err: NoPublicUrl) -> Self {
        OAuthError::Internal(err.into())
    }
}

impl From<DevicePollError> for OAuthError {
    fn from(err: DevicePollError) -> Self {
        match err {
            DevicePollError::InvalidClient => OAuthError::InvalidClient,
            DevicePollError::SlowDown => OAuthError::SlowDown,
            DevicePollError::Token(err) => match err {
                TokenError::NotFound => OAuthError::UnknownDeviceCode,
                TokenError::Expired => OAuthError::Expired,
                TokenError::Denied => OAuthError::Denied,
                TokenError::UserNotAllowed => OAuthError::UserNotAllowed,
                TokenError::CodeRejected => OAuthError::CodeRejected,
                TokenError::Upstream(cause) => OAuthError::UpstreamDuringPoll(cause),
                TokenError::Internal(cause) => OAuthError::Internal(cause),
            },
        }
    }
}

impl From<RefreshError> for OAuthError {
    fn from(err: RefreshError) -> Self {
        match err {
            RefreshError::Rejected => OAuthError::RefreshRejected,
            RefreshError::UserNotAllowed => OAuthError::UserNotAllowed,
            RefreshError::Upstream(cause) => OAuthError::Upstream(cause),
            RefreshError::Internal(cause) => OAuthError::Internal(cause),
        }
    }
}

impl From<RevokeError> for OAuthError {
    fn from(err: RevokeError) -> Self {
        match err {
            RevokeError::Upstream(cause) => OAuthError::Upstream(cause),
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let (code, description) = match &self {
            OAuthError::InvalidRequest(what) => ("invalid_request", *what),
            OAuthError::Params(err) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &err.to_string(),
                    None,
                );
            }
            OAuthError::UnsupportedGrantType => (
                "unsupported_grant_type",
                "Supported grants: urn:ietf:params:oauth:grant-type:device_code, refresh_token.",
            ),
            OAuthError::AuthorizationPending => (
                "authorization_pending",
                "The user has not finished logging in at Monzo yet.",
            ),
            OAuthError::UnknownDeviceCode => (
                "invalid_grant",
                "The device_code is unknown or was already used.",
            ),
            OAuthError::Expired => (
                "expired_token",
                "The device_code expired; start a new login.",
            ),
            OAuthError::Denied => ("access_denied", "The user declined access at Monzo."),
            OAuthError::UserNotAllowed => {
                ("access_denied", "This Monzo user may not use this service.")
            }
            OAuthError::InvalidClient => (
                "invalid_client",
                "The client_id does not match the one the device_code was issued to.",
            ),
            OAuthError::SlowDown => (
                "slow_down",
                "Polled faster than the interval; the interval grows by 5 seconds.",
            ),
            OAuthError::CodeRejected => (
                "invalid_grant",
                "Monzo did not accept the authorization code; start a new login.",
            ),
            OAuthError::RefreshRejected => (
                "invalid_grant",
                "Monzo did not accept the refresh token; log in again.",
            ),
            OAuthError::RefreshLimited { retry_after } => {
                return json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    "slow_down",
                    "Too many refreshes from this address; wait a moment.",
                    Some(*retry_after),
                );
            }
            OAuthError::UnsupportedTokenType => (
                "unsupported_token_type",
                "Monzo revokes access tokens only; revoking one ends its refresh token too.",
            ),
            OAuthError::UpstreamDuringPoll(cause) => {
                tracing::warn!(error = %cause, "Monzo call failed");
                (
                    "slow_down",
                    "Monzo is unavailable for a moment; keep polling, more slowly.",
                )
            }
            OAuthError::Upstream(cause) => {
                tracing::warn!(error = %cause, "Monzo call failed");
                return unavailable();
            }
            OAuthError::Internal(cause) => {
                return internal_error(cause, "an OAuth request");
            }
        };
        json_error(StatusCode::BAD_REQUEST, code, description, None)
    }
}

#[derive(Serialize)]
pub(super) struct DeviceAuthorization {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: u64,
    interval: u64,
}

/// The form these endpoints take (RFC 6749 and RFC 8628 take forms only).
fn form(params: Result<FormParams, ParamsError>) -> Result<Params, OAuthError> {
    Ok(params?.0)
}

/// `POST /device/code` (RFC 8628 3.1, 3.2).
pub(super) async fn device_code(
    State(flow): State<AppState>,
    RequestUrls(urls): RequestUrls,
    params: Result<FormParams, ParamsError>,
) -> Result<Json<DeviceAuthorization>, OAuthError> {
    let params = form(params)?;
    let client_id = params
        .non_empty("client_id")
        .ok_or(OAuthError::InvalidRequest("client_id is required"))?;
    let client_id =
        ClientId::parse(client_id).ok_or(OAuthError::InvalidRequest("client_id is malformed"))?;
    let started = flow.start_device(client_id, &urls?).await?;
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

/// The per-address limit on calls that reach Monzo with the operator's standing (refresh,
/// revocation), where the host set one (the local server).
fn within_refresh_limit(
    limit: Option<Extension<Arc<dyn RefreshLimiter>>>,
    addr: Option<Extension<ClientAddr>>,
) -> Result<(), OAuthError> {
    match (limit, addr) {
        (Some(Extension(limit)), Some(Extension(addr))) => limit
            .check(&addr)
            .map_err(|wait| OAuthError::RefreshLimited { retry_after: wait }),
        _ => Ok(()),
    }
}

/// `POST /oauth/token` (RFC 6749 3.2, 6; RFC 8628 3.4).
pub(super) async fn token(
    State(flow): State<AppState>,
    refresh_limit: Option<Extension<Arc<dyn RefreshLimiter>>>,
    addr: Option<Extension<ClientAddr>>,
    params: Result<FormParams, ParamsError>,
) -> Result<Response, OAuthError> {
    let params = form(params)?;
    match params.get("grant_type") {
        Some(DEVICE_CODE_GRANT) => {
            let device_code = params
                .non_empty("device_code")
                .ok_or(OAuthError::InvalidRequest("device_code is required"))?;
            let client_id = params
                .non_empty("client_id")
                .ok_or(OAuthError::InvalidRequest("client_id is required"))?;
            // Not one of ours: unknown, like any other (RFC 8628 3.5 invalid_grant).
            let device_code = PollId::parse(device_code);
            match flow.poll_device(device_code.as_ref(), client_id).await? {
                Poll::Token(token) => Ok(token_response(&token)),
                Poll::Pending { .. } => Err(OAuthError::AuthorizationPending),
            }
        }
        Some("refresh_token") => {
            within_refresh_limit(refresh_limit, addr)?;
            let refresh_token = params
                .non_empty("refresh_token")
                .ok_or(OAuthError::InvalidRequest("refresh_token is required"))?;
            // Bounded before it is forwarded with the operator's secret: Monzo's tokens are
            // short visible ASCII.
            let refresh_token = RefreshToken::parse(refresh_token).ok_or(
                OAuthError::InvalidRequest("refresh_token is missing or malformed"),
            )?;
            let token = flow.refresh(&refresh_token).await?;
            Ok(token_response(&token))
        }
        None | Some("") => Err(OAuthError::InvalidRequest("grant_type is required")),
        Some(_) => Err(OAuthError::UnsupportedGrantType),
    }
}

/// `POST /oauth/revoke` (RFC 7009): logs the access token out at Monzo, which ends its login
/// (the refresh token issued with it too). 200 with an empty body, also for a token Monzo does
/// not know (2.2); 503 while Monzo cannot be reached (2.2.1). Limited per address like a
/// refresh: both spend the operator's standing with Monzo.
pub(super) async fn revoke(
    State(flow): State<AppState>,
    refresh_limit: Option<Extension<Arc<dyn RefreshLimiter>>>,
    addr: Option<Extension<ClientAddr>>,
    params: Result<FormParams, ParamsError>,
) -> Result<StatusCode, OAuthError> {
    let params = form(params)?;
    let token = params
        .non_empty("token")
        .ok_or(OAuthError::InvalidRequest("token is required"))?;
    // An unknown hint is ignored (2.1); a refresh token alone cannot be revoked at Monzo.
    if params.get("token_type_hint") == Some("refresh_token") {
        return Err(OAuthError::UnsupportedTokenType);
    }
    let token = AccessToken::parse(token)
        .ok_or(OAuthError::InvalidRequest("token is missing or malformed"))?;
    within_refresh_limit(refresh_limit, addr)?;
    flow.revoke(&token).await?;
    Ok(StatusCode::OK)
}

#[derive(Serialize)]
pub(super) struct Metadata {
    issuer: String,
    device_authorization_endpoint: String,
    token_endpoint: String,
    revocation_endpoint: String,
    grant_types_supported: [&'static str; 2],
    token_endpoint_auth_methods_supported: [&'static str; 1],
    revocation_endpoint_auth_methods_supported: [&'static str; 1],
    /// Where to use the tokens: Monzo's API (not an RFC 8414 member; clients such as
    /// `monzo-auth status` read it).
    monzo_api_url: String,
    /// RFC 8414 requires the member; there is no authorization endpoint here (the login
    /// happens at Monzo), so it supports no response type.
    response_types_supported: [&'static str; 0],
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 2, 3).
pub(super) async fn metadata(
    State(flow): State<AppState>,
    RequestUrls(urls): RequestUrls,
) -> Result<Json<Metadata>, OAuthError> {
    let urls = urls?;
    Ok(Json(Metadata {
        issuer: urls.base().as_str().trim_end_matches('/').to_owned(),
        device_authorization_endpoint: urls.at("device/code").into(),
        token_endpoint: urls.at("oauth/token").into(),
        revocation_endpoint: urls.at("oauth/revoke").into(),
        grant_types_supported: [DEVICE_CODE_GRANT, "refresh_token"],
        token_endpoint_auth_methods_supported: ["none"],
        revocation_endpoint_auth_methods_supported: ["none"],
        monzo_api_url: flow
            .monzo_api_url()
            .as_str()
            .trim_end_matches('/')
            .to_owned(),
        response_types_supported: [],
    }))
}
