//! monzo-auth's HTTP contract, shared by the Lambda functions and the local server; the domain
//! it serves is `monzo-auth-domain`.
//!
//! - [`http`]: routers, the error-to-response mapping and the pages
//! - [`config`]: typed settings from the environment
//! - [`app`]: the composition root, assembling the pieces from a [`config::Config`]

pub mod app;
pub mod config;
pub mod http;
