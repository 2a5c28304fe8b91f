//! monzo-auth's domain: what a login is and how it proceeds, free of HTTP, AWS and SQLite.
//!
//! - [`session`]: a session's secrets (one concept a file) and its record
//! - [`store`]: the store's ports ([`store::Store`]) and the memory store
//! - [`flow`]: the login flow, simple and RFC 8628
//! - [`monzo`]: Monzo's OAuth endpoints as a port ([`monzo::MonzoApi`]) and its errors
//! - [`secret`]: the client secret's source
//! - [`urls`]: the service's public URLs, configured or derived per request
//! - [`clock`]: where time comes from

pub mod clock;
pub mod flow;
pub mod monzo;
pub mod secret;
pub mod session;
pub mod store;
pub mod urls;
