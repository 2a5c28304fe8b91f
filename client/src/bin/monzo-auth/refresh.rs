//! `monzo-auth refresh`: a saved token (`login --output`) traded for a new one.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use clap::Args;
use monzo_auth_client::{Cancel, Error};

use crate::error::CliError;
use crate::input::{self, ReadError};
use crate::output::{self, Format, PendingFile, check_output_dir};
use crate::service::{ServiceArg, service_client};
use crate::signals::forward_signals;
use crate::status::{Status, describe};

#[derive(Args, Debug)]
pub struct RefreshArgs {
    #[command(flatten)]
    pub(crate) service: ServiceArg,

    /// Read the refresh token from FILE, as `monzo-auth login --output FILE` wrote it (JSON or
    /// env) [default: stdin].
    #[arg(long, value_name = "FILE")]
    pub(crate) input: Option<PathBuf>,

    /// How to print the new token [default: the input's format, json or env; json for a bare
    /// refresh token].
    #[arg(long, value_enum)]
    pub(crate) format: Option<Format>,

    /// Write the new token to FILE (readable by its owner only) instead of stdout. The file is
    /// replaced whole (a new file renamed over it), so it may be the --input file.
    #[arg(long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
}

pub async fn refresh(args: RefreshArgs) -> Result<(), CliError> {
    let client = service_client(&args.service.service)?;
    let found = read_refresh_token(args.input.as_deref())?;
    // Made before the refresh uses the old refresh token up: a file that cannot be written
    // must not cost the new token.
    let pending = match &args.output {
        Some(path) => {
            check_output_dir(path)?;
            Some(PendingFile::create(path).map_err(|error| {
                CliError::Usage(format!(
                    "--output: cannot write {}: {error}",
                    path.display()
                ))
            })?)
        }
        None => None,
    };
    let cancel = Cancel::new();
    forward_signals(&cancel)?;
    let status = Status::new(std::io::stderr().is_terminal());
    let result = client
        .refresh_with(&found.refresh_token, &cancel, |progress| {
            status.set(describe(progress))
        })
        .await;
    status.clear();
    let token = result.map_err(|error| match error {
        Error::InvalidGrant => CliError::RefreshRefused,
        Error::UnexpectedResponse { status: 404 } => CliError::NoRefresh,
        error => error.into(),
    })?;
    let text = output::render(&token, args.format.or(found.format).unwrap_or(Format::Json));
    // Past this point the old refresh token no longer works.
    let lost = |what: String| {
        CliError::Output(format!(
            "{what}; the new token is lost and the old refresh token is used up: log in again"
        ))
    };
    match (pending, &args.output) {
        (Some(pending), Some(path)) => {
            pending
                .commit(&text)
                .map_err(|error| lost(format!("cannot write {}: {error}", path.display())))?;
            eprintln!(
                "Refreshed the token of {}; written to {}",
                token.user_id,
                path.display()
            );
        }
        _ => output::to_stdout(&text)
            .map_err(|error| lost(format!("cannot write to stdout: {error}")))?,
    }
    if let Some(input) = &args.input {
        let rotated = token.refresh_token.as_deref() != Some(found.refresh_token.as_str());
        let in_place = args
            .output
            .as_deref()
            .is_some_and(|output| same_file(input, output));
        if rotated && !in_place {
            eprintln!(
                "monzo-auth: note: the refresh token in {} is used up now; keep the new one",
                input.display()
            );
        }
    }
    Ok(())
}

/// The refresh token from `--input FILE`, or from stdin unless it is a terminal (where it
/// would be echoed).
fn read_refresh_token(path: Option<&Path>) -> Result<input::Found, CliError> {
    let (source, read) = match path {
        Some(path) => {
            let read = std::fs::File::open(path)
                .map_err(ReadError::Io)
                .and_then(input::read_text);
            (path.display().to_string(), read)
        }
        None if std::io::stdin().is_terminal() => {
            return Err(CliError::Usage(
                "no refresh token: give --input FILE, or pipe in what `monzo-auth login` printed"
                    .into(),
            ));
        }
        None => (
            "stdin".to_owned(),
            input::read_text(std::io::stdin().lock()),
        ),
    };
    let text = read.map_err(|error| match error {
        ReadError::Io(error) => CliError::Usage(format!("cannot read {source}: {error}")),
        ReadError::Input(why) => CliError::Usage(format!("no refresh token in {source}: {why}")),
    })?;
    input::refresh_token_in(&text)
        .map_err(|why| CliError::Usage(format!("no refresh token in {source}: {why}")))
}

/// Whether `a` and `b` name the same file (after the write, so both exist if they are).
fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
