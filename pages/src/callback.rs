//! Monzo's redirect to `/callback` and the pages it leads to.

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use monzo_auth_domain::flow::{Callback, CallbackError, CallbackOutcome};
use monzo_auth_domain::session::{AuthCode, State as SessionState};

use shared::http::params::{Params, ParamsError};
use shared::http::{AppState, catch_panic};

use crate::page::{self as pages, PageError};

/// `GET /callback` and the pages it redirects to.
pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        // Link checkers and previews probe with HEAD; only a real navigation (GET) may use up
        // a state, so HEAD gets the headers and touches nothing.
        .route("/callback", get(callback).head(callback_probe))
        .route("/callback/done", get(|| async { pages::logged_in() }))
        .route("/callback/denied", get(|| async { pages::denied() }))
        .layer(catch_panic(page_panic))
}

pub(crate) fn page_panic(_: Box<dyn std::any::Any + Send>) -> Response {
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

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::header;
    use tower::ServiceExt as _;

    use super::*;

    async fn boom() -> &'static str {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panicking_page_handler_still_answers_a_page() {
        let app: Router = Router::new()
            .route("/boom", get(boom))
            .layer(catch_panic(page_panic));
        let response = app
            .oneshot(
                axum::http::Request::get("/boom")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
        let content_type = response.headers()[header::CONTENT_TYPE].to_str().unwrap();
        assert!(content_type.starts_with("text/html"), "{content_type}");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        let body = String::from_utf8_lossy(&body);
        assert!(body.contains("Something went wrong") && !body.contains("boom"));
    }
}
