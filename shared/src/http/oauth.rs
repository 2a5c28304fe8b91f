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

use super::RefreshLimiter;
use super::error::{internal_error, json_error, unavailable};
use super::params::{FormParams, Params, ParamsError};
use super::{AppState, RequestUrls};
use monzo_auth_domain::flow::{
    ClientAddr, DevicePollError, Internal, IssuedToken, NoPublicUrl, Poll, RefreshError,
    RevokeError, TokenError, TokenKind,
};
use monzo_auth_domain::monzo::MonzoError;
use monzo_auth_domain::session::{AccessToken, ClientId, PollId, RefreshToken};
use monzo_auth_protocol::ErrorCode;
use monzo_auth_protocol::oauth::{
    DEVICE_CODE_GRANT, DeviceAuthorization, Metadata, REFRESH_TOKEN_GRANT, TokenResponse,
};

/// Everything the OAuth endpoints answer besides success (RFC 6749 5.2, RFC 8628 3.5): the flow's
/// own errors, wrapped as they are, and what only these endpoints can get wrong.
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
    /// A device poll that gave no token. Monzo failing during one loses nothing (the claim was
    /// released, or is kept until its lease lapses when Monzo may have acted; polls meanwhile
    /// are authorization_pending), so it answers `slow_down`: standard clients wait longer and
    /// retry.
    #[error(transparent)]
    DevicePoll(#[from] DevicePollError),
    /// A refresh that gave no token. Monzo failing answers 503: the client retries later.
    #[error(transparent)]
    Refresh(#[from] RefreshError),
    /// RFC 7009 2.2.1: Monzo failing answers 503.
    #[error(transparent)]
    Revoke(#[from] RevokeError),
    #[error("too many refreshes from this address")]
    RefreshLimited { retry_after: u64 },
    #[error(transparent)]
    Internal(#[from] Internal),
}

impl From<NoPublicUrl> for OAuthError {
    fn from(err: NoPublicUrl) -> Self {
        OAuthError::Internal(err.into())
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        use ErrorCode as E;
        let (code, description) = match &self {
            OAuthError::InvalidRequest(what) => (E::InvalidRequest, *what),
            OAuthError::Params(err) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    E::InvalidRequest,
                    &err.to_string(),
                    None,
                );
            }
            OAuthError::UnsupportedGrantType => (
                E::UnsupportedGrantType,
                "Supported grants: urn:ietf:params:oauth:grant-type:device_code, refresh_token.",
            ),
            OAuthError::AuthorizationPending => (
                E::AuthorizationPending,
                "The user has not finished logging in at Monzo yet.",
            ),
            OAuthError::DevicePoll(DevicePollError::InvalidClient) => (
                E::InvalidClient,
                "The client_id does not match the one the device_code was issued to.",
            ),
            OAuthError::DevicePoll(DevicePollError::SlowDown) => (
                E::SlowDown,
                "Polled faster than the interval; the interval grows by 5 seconds.",
            ),
            OAuthError::DevicePoll(DevicePollError::Token(err)) => match err {
                TokenError::NotFound => (
                    E::InvalidGrant,
                    "The device_code is unknown or was already used.",
                ),
                TokenError::Expired => (
                    E::ExpiredToken,
                    "The device_code expired; start a new login.",
                ),
                TokenError::Denied => (E::AccessDenied, "The user declined access at Monzo."),
                TokenError::UserNotAllowed => {
                    (E::AccessDenied, "This Monzo user may not use this service.")
                }
                TokenError::CodeRejected => (
                    E::InvalidGrant,
                    "Monzo did not accept the authorization code; start a new login.",
                ),
                TokenError::Upstream(cause) => {
                    tracing::warn!(error = %cause, "Monzo call failed");
                    (
                        E::SlowDown,
                        "Monzo is unavailable for a moment; keep polling, more slowly.",
                    )
                }
                TokenError::Internal(cause) => return internal_error(cause, "an OAuth request"),
            },
            OAuthError::Refresh(err) => match err {
                RefreshError::Rejected => (
                    E::InvalidGrant,
                    "Monzo did not accept the refresh token; log in again.",
                ),
                RefreshError::UserNotAllowed => {
                    (E::AccessDenied, "This Monzo user may not use this service.")
                }
                RefreshError::Upstream(cause) => return upstream_unavailable(cause),
                RefreshError::Internal(cause) => return internal_error(cause, "an OAuth request"),
            },
            OAuthError::Revoke(RevokeError::Upstream(cause)) => {
                return upstream_unavailable(cause);
            }
            OAuthError::Revoke(RevokeError::Internal(cause)) => {
                return internal_error(cause, "an OAuth request");
            }
            OAuthError::RefreshLimited { retry_after } => {
                return json_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    E::SlowDown,
                    "Too many refreshes from this address; wait a moment.",
                    Some(*retry_after),
                );
            }
            OAuthError::Internal(cause) => {
                return internal_error(cause, "an OAuth request");
            }
        };
        json_error(StatusCode::BAD_REQUEST, code, description, None)
    }
}

/// Monzo failed during a refresh or a revocation: 503, and the client retries the same call
/// later (RFC 7009 2.2.1).
fn upstream_unavailable(cause: &MonzoError) -> Response {
    tracing::warn!(error = %cause, "Monzo call failed");
    unavailable()
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

fn token_response(token: &IssuedToken) -> Response {
    Json(TokenResponse {
        access_token: token.access_token.expose_secret().to_owned(),
        token_type: token.token_type.clone(),
        expires_in: token.expires_in,
        refresh_token: token
            .refresh_token
            .as_ref()
            .map(|t| t.expose_secret().to_owned()),
        user_id: token.user_id.clone(),
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
        Some(REFRESH_TOKEN_GRANT) => {
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

/// `POST /oauth/revoke` (RFC 7009): ends the login an access or refresh token belongs to (see
/// `Flow::revoke`; the hint says which kind to try first). 200 with an empty body once the chain
/// is dead, also for a token Monzo does not know (2.2); 503 while Monzo cannot be reached or its
/// outcome is unknown (2.2.1). Limited per address like a refresh: both spend the operator's
/// standing with Monzo.
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
    // An unknown hint is ignored (2.1).
    let first = match params.get("token_type_hint") {
        Some("refresh_token") => TokenKind::Refresh,
        _ => TokenKind::Access,
    };
    let token = AccessToken::parse(token)
        .ok_or(OAuthError::InvalidRequest("token is missing or malformed"))?;
    within_refresh_limit(refresh_limit, addr)?;
    flow.revoke(&token, first).await?;
    Ok(StatusCode::OK)
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
        grant_types_supported: vec![DEVICE_CODE_GRANT.into(), REFRESH_TOKEN_GRANT.into()],
        token_endpoint_auth_methods_supported: vec!["none".into()],
        revocation_endpoint_auth_methods_supported: vec!["none".into()],
        monzo_api_url: Some(
            flow.monzo_api_url()
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
        ),
        response_types_supported: Vec::new(),
    }))
}
