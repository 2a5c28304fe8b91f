//! `monzo-auth`: log in to Monzo through a monzo-auth service and print the token, or refresh
//! a saved one.
//!
//! Everything happens in [`cli::run`]; `main` only turns its result into an exit code (the
//! codes are documented in `error.rs`, `--help` and the crate docs).

mod approval;
mod browser;
mod cli;
mod error;
mod input;
mod login;
mod monzo;
mod output;
mod profiles;
mod refresh;
mod service;
mod signals;
mod status;

use std::process::ExitCode;

fn main() -> ExitCode {
    match cli::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            error.report();
            ExitCode::from(error.exit_code())
        }
    }
}
