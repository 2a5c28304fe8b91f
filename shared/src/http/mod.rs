//! The HTTP face of the service: one router per Lambda function, merged by the local server.
//!
//! Each `*_routes` function returns the routes one function serves; [`into_app`] adds what every
//! host needs once (JSON 404/405, no-store headers, the access log) and the state.

pub mod error;
pub mod log;
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

use crate::flow::{CallbackError, CallbackOutcome, CallbackParams, Flow, Poll};
use crate::session::CodeChallenge;
use error::ApiError;
use params::{Params, ParamsError};

/// What every handler shares.
pub type AppState = Arc<Flow>;

/// The `/callback` URL as the host worked it out for this request, when `RETURN_URL` is not
/// configured (a Lambda function derives it from API Gateway's request context). Inserted into
/// the request's extensions by the host; `/new` records it in the session.
#[derive(Clone, Debug)]
pub struct RequestReturnUrl(pub url::Url);

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
    derived: Option<axum::Extension<RequestReturnUrl>>,
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
        .start(code_challenge, derived.map(|axum::Extension(url)| url.0))
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
