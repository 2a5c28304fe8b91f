//! What a person's browser sees: Monzo's redirect to `/callback` and the pages it leads to, the
//! `/device` pages, and the local server's own routes (a landing page and a health check)
//! (feature `pages`: the `callback` function and the local server).

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use monzo_auth_domain::flow::{Callback, CallbackError, CallbackOutcome};
use monzo_auth_domain::session::{AuthCode, State as SessionState};

use super::error::ApiError;
use super::pages::{self, PageError};
use super::params::{Params, ParamsError};
use super::{AppState, catch_panic, device};

/// `GET /callback` and the pages it redirects to: the `callback` function.
pub fn callback_routes() -> Router<AppState> {
    Router::new()
        // Link checkers and previews probe with HEAD; only a real navigation (GET) may use up
        // a state, so HEAD gets the headers and touches nothing.
        .route("/callback", get(callback).head(callback_probe))
        .route("/callback/done", get(|| async { pages::logged_in() }))
        .route("/callback/denied", get(|| async { pages::denied() }))
        .layer(catch_panic(page_panic))
}

/// The pages where a person enters and confirms a user code: the `callback` function.
pub fn device_page_routes() -> Router<AppState> {
    Router::new()
        .route("/device", get(device::entry).post(device::typed))
        .route("/device/confirm", axum::routing::post(device::confirm))
        .layer(catch_panic(page_panic))
}

/// Routes only the local server has: a health check and a landing page.
pub fn local_routes(demo: bool) -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/", get(move || async move { pages::landing(demo) }))
}

/// `GET /healthz`: 200 while the store can be read; 503 in the JSON shape when it cannot (gone,
/// replaced, corrupt, unreachable). A store that reads but cannot write just now stays 200: its
/// write routes answer 503 with `Retry-After`.
async fn healthz(State(flow): State<AppState>) -> Result<&'static str, ApiError> {
    flow.store_health().await?;
    Ok("ok")
}

pub(super) fn page_panic(_: Box<dyn std::any::Any + Send>) -> Response {
    tracing::error!("a page handler panicked; answered 500");
    pages::PageError::ServerError.into_response()
}

async fn callback_probe() -> Response {
    let mut response = StatusCode::OK.into_response();
    pages::browser_headers(response.headers_mut(), pages::plain_csp());
    response
}

async fn callback(
    State(flow): State<AppState>,
    params: Result<Params, ParamsError>,
) -> Result<Response, PageError> {
    let params = params.map_err(|_| PageError::MalformedLink)?;
    let outcome = flow.callback(read_callback(&params)?).await?;
    // Relative targets keep any API Gateway stage prefix (`/Prod/callback` -> `/Prod/callback/done`).
    let target = match outcome {
        CallbackOutcome::Authorized => "callback/done",
        CallbackOutcome::Denied => "callback/denied",
    };
    let mut response = Redirect::to(target).into_response();
    pages::browser_headers(response.headers_mut(), pages::plain_csp());
    Ok(response)
}

/// What Monzo's redirect carries: a state and either a code or an error.
fn read_callback(params: &Params) -> Result<Callback, PageError> {
    let state = params.get("state").ok_or(PageError::MissingParameters)?;
    // A malformed state cannot name a session; refuse it without touching the store.
    let state =
        SessionState::parse(state).ok_or(PageError::Callback(CallbackError::UnusableState))?;
    match (params.get("code"), params.get("error")) {
        (Some(code), None) => AuthCode::parse(code).map(|code| Callback::Code { state, code }),
        // Monzo only sends access_denied, but any error means no code is coming.
        (None, Some(error)) if !error.is_empty() => Some(Callback::Refused { state }),
        _ => None,
    }
    .ok_or(PageError::MissingParameters)
}
