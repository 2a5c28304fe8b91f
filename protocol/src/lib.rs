//! The wire contract between a monzo-auth service and its clients, written once for both sides:
//! the service serializes these types, the client (`monzo-auth-client`) deserializes them.
//!
//! - [`ErrorCode`] and [`ErrorBody`]: every error answer, `{"error", "error_description"}`
//! - [`simple`]: `/new` and `/token`, the service's own API
//! - [`oauth`]: RFC 8628's device authorization, RFC 6749's token answer, RFC 8414 metadata
//!
//! Bodies that carry a token have a `Debug` that shows none of it.

mod error;
pub mod oauth;
pub mod simple;

pub use error::{ErrorBody, ErrorCode};
