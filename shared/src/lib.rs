//! monzo-auth's HTTP contract, shared by the Lambda functions and the local server; the domain
//! it serves is `monzo-auth-domain`, the pages a browser sees `monzo-auth-pages`.
//!
//! - [`http`]: routers and the error-to-response mapping of the JSON contracts
//! - [`config`]: typed settings from the environment
//! - [`app`]: the composition root, assembling the pieces from a [`config::Config`]

pub mod app;
pub mod config;
pub mod http;
