//! One access-log line per request: method, route template, status, latency.
//!
//! Never the URI: its query can carry a code, a state or a poll id. Unmatched requests are
//! logged as `<unmatched>` for the same reason (their path is whatever a client sent).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

pub async fn access_log(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_else(|| "<unmatched>".to_owned());
    let response = next.run(req).await;
    tracing::info!(
        target: "monzo_auth::access",
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        latency_ms = %format_args!("{:.1}", started.elapsed().as_secs_f64() * 1000.0),
        "request"
    );
    response
}
