//! The real binaries as a person runs them: `monzo-auth` (the CLI, its profiles and docs'
//! recipes) against the service, `monzo-auth-server` as its own process, the pages in a
//! browser, and what the binaries leave behind.

mod artefacts;
mod browser;
mod cli;
mod docs;
mod process;
mod profiles;
mod secrets;
