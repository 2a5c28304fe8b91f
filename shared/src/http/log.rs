//! One access-log line per request: method, route template, status, latency.
//!
//! Never the URI: its query can carry a code, a state or a poll id. Unmatched requests are
//! logged as `<unmatched>` for the same reason (their path is whatever a client sent).
//!
//! tower-http's `TraceLayer` times the request and writes the line. Its `on_response` sees only
//! the response, the latency and the span `make_span_with` made from the request; a span's
//! fields would print as the span's (`request{method=… route=…}:` before the target in text,
//! a `spans` list in Lambda's JSON) and prefix every other line of the request, not as fields of
//! this one. So the span is none, and the one custom part, `RequestLine::carry`, hands the
//! request's method and route template to `on_response` in the response's extensions.

use std::time::Duration;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::Route;
use std::convert::Infallible;
use tower::{Layer, Service, ServiceBuilder};
use tower_http::trace::TraceLayer;

/// All the access log takes from a request.
#[derive(Clone)]
struct RequestLine {
    method: Method,
    route: String,
}

impl RequestLine {
    async fn carry(req: Request, next: Next) -> Response {
        let line = Self {
            method: req.method().clone(),
            route: req
                .extensions()
                .get::<MatchedPath>()
                .map(|path| path.as_str().to_owned())
                .unwrap_or_else(|| "<unmatched>".to_owned()),
        };
        let mut response = next.run(req).await;
        response.extensions_mut().insert(line);
        response
    }
}

fn log_response<B>(response: &axum::http::Response<B>, latency: Duration, _: &tracing::Span) {
    let (method, route) = match response.extensions().get::<RequestLine>() {
        Some(line) => (line.method.as_str(), line.route.as_str()),
        None => ("<unknown>", "<unmatched>"),
    };
    tracing::info!(
        target: "monzo_auth::access",
        method = %method,
        route = %route,
        status = response.status().as_u16(),
        latency_ms = %format_args!("{:.1}", latency.as_secs_f64() * 1000.0),
        "request"
    );
}

/// What `Router::layer` asks of a layer's service.
pub trait RouteService:
    Service<
        Request,
        Response: IntoResponse + 'static,
        Error: Into<Infallible> + 'static,
        Future: Send + 'static,
    > + Clone
    + Send
    + Sync
    + 'static
{
}

impl<T> RouteService for T where
    T: Service<
            Request,
            Response: IntoResponse + 'static,
            Error: Into<Infallible> + 'static,
            Future: Send + 'static,
        > + Clone
        + Send
        + Sync
        + 'static
{
}

/// The access log, for `Router::layer` outside every other layer (it logs the final status).
pub fn access_log() -> impl Layer<Route, Service: RouteService> + Clone + Send + Sync + 'static {
    ServiceBuilder::new()
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|_: &Request| tracing::Span::none())
                .on_request(())
                .on_response(log_response)
                .on_body_chunk(())
                .on_eos(())
                .on_failure(()),
        )
        .layer(middleware::from_fn(RequestLine::carry))
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::body::Body;
    use axum::routing::get;
    use tower::ServiceExt as _;

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn one_line_per_request_with_the_route_template_and_never_the_uri() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .without_time()
            .with_writer(move || writer.clone())
            .finish();
        let _default = tracing::subscriber::set_default(subscriber);
        let app: Router = Router::new()
            .route(
                "/session/{id}",
                get(|| async {
                    tracing::info!("inside");
                    "ok"
                }),
            )
            .layer(access_log());
        for uri in [
            "/session/SECRET1?code=SECRET2",
            "/nowhere/SECRET3?state=SECRET4",
        ] {
            app.clone()
                .oneshot(axum::http::Request::get(uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
        }
        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = logs.lines().collect();
        assert_eq!(lines.len(), 3, "{logs}");
        assert_eq!(lines[0], " INFO shared::http::log::tests: inside", "{logs}");
        for (line, route, status) in [
            (lines[1], "/session/{id}", 200),
            (lines[2], "<unmatched>", 404),
        ] {
            let prefix = format!(
                " INFO monzo_auth::access: request method=GET route={route} status={status} latency_ms="
            );
            assert!(line.starts_with(&prefix), "{line}");
            let latency = &line[prefix.len()..];
            assert!(
                latency.parse::<f64>().is_ok() && latency.contains('.'),
                "{line}"
            );
        }
        assert!(!logs.contains("SECRET") && !logs.contains('?'), "{logs}");
    }
}
