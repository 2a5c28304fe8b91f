//! `monzo-auth`: log in to Monzo through a monzo-auth service and print the token, or refresh
//! a saved one.
//!
//! Everything happens in [`cli::run`]; `main` only turns its result into an exit code (the
//! codes are documented in `cli.rs`, `--help` and the crate docs).

mod approval;
mod browser;
mod cli;
mod input;
mod output;
mod profiles;
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
