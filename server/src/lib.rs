//! The local host: what only `monzo-auth-server` (and the tests' in-process service) links.
//!
//! - [`connections`]: the connection layer (hyper-util's server within the configuration's limits) and
//!   the open-file limit it follows
//! - [`limit`]: the per-address limit on refreshes and revocations (`governor`)

pub mod connections;
pub mod limit;

use std::future::Future;

use axum::Router;
use shared::config::Config;
use tokio::net::TcpListener;

/// Serves `app` on `listener` within the configuration's connection limits until `shutdown`
/// resolves, then lets requests in flight finish.
pub fn serve(
    listener: TcpListener,
    app: Router,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = std::io::Result<()>> + Send + 'static {
    connections::serve(
        listener,
        app,
        connections::ServerLimits::from_config(config),
        shutdown,
    )
}
