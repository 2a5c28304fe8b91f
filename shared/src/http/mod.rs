//! The HTTP face of the service: one router per Lambda function, merged by the local server.
//!
//! Each `*_routes` function returns the routes one function serves; [`into_app`] adds what every
//! host needs once (JSON 404/405, no-store headers, the access log) and the state.

mod device;
pub mod error;
pub mod log;
mod oauth;
pub mod pages;
pub mod params;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use serde::Serialize;

use crate::flow::{CallbackError, CallbackOutcome, CallbackParams, ClientAddr, Flow, Poll};
use crate::session::CodeChallenge;
use error::ApiError;
use params::{Params, ParamsError};

/// What every handler shares.
pub type AppState = Arc<Flow>;

/// The service's public base URL (ending in `/`) as the host worked it out for this request,
/// when it is not configured: a Lambda function derives it from API Gateway's request context.
/// Inserted into the request's extensions by the host; `/new` and `/device/code` record
/// `{base}callback` in the session, so the code exchange sends the same redirect URI.
#[derive(Clone, Debug)]
pub struct RequestBase(pub url::Url);

impl RequestBase {
    pub fn return_url(&self) -> Option<url::Url> {
        self.0.join("callback").ok()
    }
}

/// `GET|POST /new`: the `new` function.
pub fn new_routes() -> Router<AppState> {
    Router::new().route("/new", get(new_session).post(new_session))
}

/// `GET /callback` and the pages it redirects to: the `callback` function.
pub fn callback_routes() -> Router<AppState> {
    Router::new()
        // Link checkers and previews probe with HEAD; only a real navigation (GET) may use up
        // a state, so HEAD gets the headers and touches nothing.
        .route("/callback", get(callback).head(callback_probe))
        .route("/callback/done", get(|| async { pages::logged_in() }))
        .route("/callback/denied", get(|| async { pages::denied() }))
}

/// `POST|GET /token`: the `token` function (the only one holding the client secret).
pub fn token_routes() -> Router<AppState> {
    Router::new().route("/token", get(poll_token).post(poll_token))
}

/// `POST /device/code` and the RFC 8414 metadata: the `new` function.
pub fn device_code_routes() -> Router<AppState> {
    Router::new()
        .route("/device/code", axum::routing::post(oauth::device_code))
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata),
        )
}

/// The pages where a person enters and confirms a user code: the `callback` function.
pub fn device_page_routes() -> Router<AppState> {
    Router::new()
        .route("/device", get(device::entry).post(device::typed))
        .route("/device/confirm", axum::routing::post(device::confirm))
}

/// `POST /oauth/token` (device code and refresh token grants): the `token` function.
pub fn oauth_token_routes() -> Router<AppState> {
    Router::new().route("/oauth/token", axum::routing::post(oauth::token))
}

/// Routes only the local server has: a health check and a landing page.
pub fn local_routes(demo: bool) -> Router<AppState> {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/", get(move || async move { pages::landing(demo) }))
}

/// Finishes a set of routes into a servable app.
pub fn into_app(routes: Router<AppState>, state: AppState) -> Router {
    routes
        .fallback(|| async { ApiError::route_not_found() })
        .method_not_allowed_fallback(|| async { ApiError::method_not_allowed() })
        // Layers wrap each route and the fallbacks, so they see the matched route template.
        .layer(middleware::from_fn(no_store))
        .layer(middleware::from_fn(log::access_log))
        .with_state(state)
}

/// For the local server: the client's address is the TCP peer's, or, behind a proxy the
/// deployment trusts (`TRUST_FORWARDED_FOR`), the last `X-Forwarded-For` entry, the one that
/// proxy added (earlier entries are whatever the client claimed).
pub async fn local_client_addr(
    State(trust_forwarded_for): State<bool>,
    mut req: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let forwarded = trust_forwarded_for
        .then(|| {
            req.headers()
                .get_all("x-forwarded-for")
                .iter()
                .filter_map(|value| value.to_str().ok())
                .flat_map(|value| value.split(','))
                .next_back()
                .and_then(|entry| entry.trim().parse::<std::net::IpAddr>().ok())
        })
        .flatten();
    if let Some(addr) = forwarded.or(peer) {
        req.extensions_mut().insert(ClientAddr(addr));
    }
    next.run(req).await
}

/// Answers from this service are about one session and must not be cached anywhere.
async fn no_store(req: axum::extract::Request, next: middleware::Next) -> Response {
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    headers
        .entry(header::X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    response
}

#[derive(Serialize)]
struct NewSessionBody {
    id: String,
    login_url: String,
    expires_in: u64,
    interval: u64,
}

async fn new_session(
    State(flow): State<AppState>,
    derived: Option<axum::Extension<RequestBase>>,
    params: Result<Params, ParamsError>,
) -> Result<Json<NewSessionBody>, ApiError> {
    let params = params?;
    let code_challenge = match (
        params.non_empty("code_challenge"),
        params.non_empty("code_challenge_method"),
    ) {
        (None, None) => None,
        (Some(challenge), Some("S256")) => {
            Some(CodeChallenge::parse(challenge).ok_or_else(|| {
                ApiError::invalid_request("code_challenge must be 43 base64url characters (S256)")
            })?)
        }
        (Some(_), _) => {
            return Err(ApiError::invalid_request(
                "code_challenge_method must be S256",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::invalid_request(
                "code_challenge_method was given without a code_challenge",
            ));
        }
    };
    let started = flow
        .start(
            code_challenge,
            derived.and_then(|axum::Extension(base)| base.return_url()),
        )
        .await?;
    Ok(Json(NewSessionBody {
        id: started.id.expose(),
        login_url: started.login_url.into(),
        expires_in: started.expires_in,
        interval: started.interval,
    }))
}

#[derive(Serialize)]
struct PendingBody {
    status: &'static str,
    interval: u64,
}

#[derive(Serialize)]
struct TokenBody<'a> {
    token: &'a str,
    expires: String,
    expires_in: u64,
    token_type: &'a str,
    user_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    refresh_token: Option<&'a str>,
}

async fn poll_token(
    State(flow): State<AppState>,
    params: Result<Params, ParamsError>,
) -> Result<Response, ApiError> {
    use secrecy::ExposeSecret as _;
    let params = params?;
    match flow
        .poll(params.non_empty("id"), params.non_empty("code_verifier"))
        .await?
    {
        Poll::Pending { interval } => Ok((
            StatusCode::ACCEPTED,
            [(header::RETRY_AFTER, HeaderValue::from(interval.max(1)))],
            Json(PendingBody {
                status: "authorization_pending",
                interval,
            }),
        )
            .into_response()),
        Poll::Token(token) => {
            let expires = token
                .expires_at
                .format(&time::format_description::well_known::Rfc3339)
                .map_err(|_| ApiError::invalid_request("unrepresentable expiry"))?;
            Ok(Json(TokenBody {
                token: token.access_token.expose_secret(),
                expires,
                expires_in: token.expires_in,
                token_type: &token.token_type,
                user_id: &token.user_id,
                refresh_token: token.refresh_token.as_ref().map(|t| t.expose_secret()),
            })
            .into_response())
        }
    }
}

async fn callback_probe() -> Response {
    let mut response = StatusCode::OK.into_response();
    pages::browser_headers(response.headers_mut(), pages::plain_csp());
    response
}

async fn callback(State(flow): State<AppState>, params: Result<Params, ParamsError>) -> Response {
    let Ok(params) = params else {
        return pages::callback_refused("The link Monzo sent back was malformed.").into_response();
    };
    let take = |name| params.get(name).map(str::to_owned);
    let outcome = flow
        .callback(CallbackParams {
            state: take("state"),
            code: take("code"),
            error: take("error"),
        })
        .await;
    // Relative targets keep any API Gateway stage prefix (`/Prod/callback` -> `/Prod/callback/done`).
    let target = match outcome {
        Ok(CallbackOutcome::Authorized) => "callback/done",
        Ok(CallbackOutcome::Denied) => "callback/denied",
        Err(CallbackError::MissingParameters) => {
            return pages::callback_refused("The link Monzo sent back is missing its parameters.")
                .into_response();
        }
        Err(CallbackError::UnusableState) => {
            return pages::callback_refused(
                "This login is unknown, has expired, or was already completed.",
            )
            .into_response();
        }
        Err(CallbackError::Store(err)) => {
            tracing::error!(error = %error::ErrorChain(&err), "callback could not reach the session store");
            return pages::unavailable().into_response();
        }
    };
    let mut response = Redirect::to(target).into_response();
    pages::browser_headers(response.headers_mut(), pages::plain_csp());
    response
}
