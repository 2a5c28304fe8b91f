//! Request logging that cannot leak secrets.
//!
//! Codes and states travel in query strings and tokens in headers and bodies,
//! so only the method, the route *pattern* (never the URI) and the status are
//! recorded.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// `side` says which listener answered ("auth" or "api").
pub(crate) async fn log_request(
    State(side): State<&'static str>,
    req: Request,
    next: Next,
) -> Response {
    let method = req.method().clone();
    // Unmatched requests are logged without any part of their path: a
    // mistyped path could still carry a secret.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "<unmatched>".to_owned(), |p| p.as_str().to_owned());
    let started = Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        %side,
        %method,
        %route,
        status = response.status().as_u16(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "fake-monzo request"
    );
    response
}
