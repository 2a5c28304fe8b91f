//! monzo-auth's service logic, shared by the Lambda functions and the local server.
//!
//! - [`session`]: the session's secrets and record
//! - [`store`]: where sessions live ([`store::Store`] and its implementations)
//! - [`monzo`]: Monzo's OAuth endpoints
//! - [`secret`]: the client secret's source
//! - [`flow`]: the login flow, free of HTTP
//! - [`http`]: routers, the error-to-response mapping and the pages
//! - [`config`]: typed settings from the environment
//! - [`urls`]: the service's public URLs, configured or derived per request
//! - [`app`]: assembling the pieces from a [`config::Config`]

pub mod app;
pub mod config;
pub mod flow;
pub mod http;
pub mod monzo;
pub mod secret;
pub mod serve;
pub mod session;
pub mod store;
pub mod urls;
