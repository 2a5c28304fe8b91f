//! The `api.monzo.com` side: token endpoint, logout, whoami and accounts.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use time::format_description::well_known::Rfc3339;

use crate::error::ApiError;
use crate::params::Params;
use crate::state::AccessInfo;
use crate::{Failure, FakeMonzo};

pub(crate) fn router(monzo: FakeMonzo) -> Router {
    Router::new()
        .route("/oauth2/token", post(token))
        .route("/oauth2/logout", post(logout))
        .route("/ping/whoami", get(whoami))
        .route("/accounts", get(accounts))
        .merge(crate::control::routes())
        .fallback(|| async { ApiError::not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        .layer(axum::middleware::from_fn_with_state(
            "api",
            crate::logging::log_request,
        ))
        .with_state(monzo)
}

/// Counts a token handler as in flight for as long as it lives. Decrementing
/// on drop (not at the end of the handler) matters: when a client gives up,
/// the server drops the handler's future mid-await, and that must stop
/// counting too.
struct InFlight(FakeMonzo);

impl InFlight {
    /// Records the call and takes the next injected failure, if any.
    fn begin(monzo: &FakeMonzo) -> (Self, Option<Failure>) {
        let mut state = monzo.lock();
        let stats = &mut state.stats;
        stats.token_calls += 1;
        stats.token_calls_in_flight += 1;
        stats.max_concurrent_token_calls = stats
            .max_concurrent_token_calls
            .max(stats.token_calls_in_flight);
        let failure = state.pending_failures.pop_front();
        (Self(monzo.clone()), failure)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.lock().stats.token_calls_in_flight -= 1;
    }
}

/// Token requests are a handful of short parameters; anything much larger is
/// not a token request, and reading it unbounded would only cost memory.
const MAX_TOKEN_BODY: usize = 64 * 1024;

/// `POST /oauth2/token`
///
/// Takes the raw request, not `Bytes`, so that the call is counted (and can
/// meet an injected failure) before its body is read, whatever the body is.
async fn token(State(monzo): State<FakeMonzo>, request: Request) -> Response {
    let (in_flight, failure) = InFlight::begin(&monzo);
    match failure {
        // Injected before the request is looked at, so the code stays usable.
        Some(Failure::Status(status)) => ApiError::injected(status).into_response(),
        Some(Failure::Garbage) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<html><body><h1>502 Bad Gateway</h1>upstream hiccup</body></html>",
        )
            .into_response(),
        Some(Failure::Delay(delay)) => {
            // The state changes happen now; only the answer is late. A client
            // that times out has therefore burned its code.
            let response = grant(&monzo, request).await;
            tokio::time::sleep(delay).await;
            response
        }
        Some(Failure::ProcessLate(delay)) => {
            // Handled in a task of its own, so that a client giving up (which drops this
            // handler) does not stop it: Monzo goes on working on the request.
            let (parts, body) = request.into_parts();
            let body = match axum::body::to_bytes(body, MAX_TOKEN_BODY).await {
                Ok(body) => body,
                Err(_) => return ApiError::bad_body().into_response(),
            };
            let monzo = monzo.clone();
            let late = tokio::spawn(async move {
                let _in_flight = in_flight;
                tokio::time::sleep(delay).await;
                answer(&monzo, &parts.headers, &body)
            });
            late.await
                .unwrap_or_else(|_| ApiError::injected(500).into_response())
        }
        None => grant(&monzo, request).await,
    }
}

async fn grant(monzo: &FakeMonzo, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let body = match axum::body::to_bytes(body, MAX_TOKEN_BODY).await {
        Ok(body) => body,
        Err(_) => return ApiError::bad_body().into_response(),
    };
    answer(monzo, &parts.headers, &body)
}

fn answer(monzo: &FakeMonzo, headers: &HeaderMap, body: &[u8]) -> Response {
    match try_grant(monzo, headers, body) {
        Ok(tokens) => (
            StatusCode::OK,
            // RFC 6749 §5.1: token responses must not be cached.
            [(header::CACHE_CONTROL, "no-store")],
            Json(tokens),
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

fn try_grant(
    monzo: &FakeMonzo,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<crate::state::TokenResponse, ApiError> {
    if !is_form(headers) {
        return Err(ApiError::bad_content_type());
    }
    let params = Params::parse(body).map_err(|_| ApiError::duplicate_param())?;
    let required = |name: &'static str| params.get(name).ok_or(ApiError::missing_param(name));

    let grant_type = required("grant_type")?;
    let client_id = required("client_id")?;
    let client_secret = required("client_secret")?;
    match grant_type {
        "authorization_code" => {
            let redirect_uri = required("redirect_uri")?;
            let code = required("code")?;
            monzo
                .lock()
                .exchange_code(client_id, client_secret, redirect_uri, code)
        }
        "refresh_token" => {
            let refresh_token = required("refresh_token")?;
            monzo
                .lock()
                .refresh(client_id, client_secret, refresh_token)
        }
        _ => Err(ApiError::unsupported_grant_type()),
    }
}

/// Monzo's token endpoint takes form bodies only; a JSON body is an error,
/// not something to be guessed at.
fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.split(';').next())
        .is_some_and(|mime| {
            mime.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
}

/// The token from `Authorization: Bearer <token>`, if any.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn authenticate(monzo: &FakeMonzo, headers: &HeaderMap) -> Result<AccessInfo, ApiError> {
    let token = bearer(headers).ok_or_else(ApiError::bad_access_token)?;
    let state = monzo.lock();
    state.access(token).ok_or_else(|| state.refusal(token))
}

/// `GET /ping/whoami`
async fn whoami(State(monzo): State<FakeMonzo>, headers: HeaderMap) -> Result<Response, ApiError> {
    monzo.lock().stats.whoami_calls += 1;
    let who = authenticate(&monzo, &headers)?;
    Ok(Json(json!({
        "authenticated": true,
        "client_id": who.client_id,
        "user_id": who.user_id,
    }))
    .into_response())
}

/// `POST /oauth2/logout`
async fn logout(State(monzo): State<FakeMonzo>, headers: HeaderMap) -> Result<Response, ApiError> {
    let token = bearer(&headers).ok_or_else(ApiError::bad_access_token)?;
    let mut state = monzo.lock();
    if let Some(status) = state.pending_logout_failures.pop_front() {
        return Err(ApiError::injected(status));
    }
    state.logout(token)?;
    Ok(Json(json!({})).into_response())
}

/// `GET /accounts`: a data endpoint, so it is behind Strong Customer
/// Authentication. Monzo refuses a freshly issued token here until the user
/// approves access in the Monzo app.
async fn accounts(
    State(monzo): State<FakeMonzo>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let who = authenticate(&monzo, &headers)?;
    if !who.sca_approved {
        return Err(ApiError::insufficient_permissions());
    }
    let name = monzo
        .lock()
        .user(&who.user_id)
        .map(|user| user.name.clone())
        .unwrap_or_default();
    // Fixed and derived from the user, so that repeated calls agree.
    let id = format!(
        "acc_{}",
        who.user_id.strip_prefix("user_").unwrap_or(&who.user_id)
    );
    let created = time::macros::datetime!(2019-05-01 09:00 UTC)
        .format(&Rfc3339)
        .expect("a fixed date formats as RFC 3339");
    Ok(Json(json!({
        "accounts": [{
            "id": id,
            "description": format!("{name}'s current account"),
            "created": created,
            "type": "uk_retail",
            "currency": "GBP",
            "closed": false,
        }]
    }))
    .into_response())
}
