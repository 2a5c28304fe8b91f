//! Why a command failed, and the exit code each failure maps to (documented in `--help`, the
//! crate docs and the README).

use std::time::Duration;

use monzo_auth_client::Error;
use monzo_auth_client::profile::ProfileError;

// Exit codes. Clap's own usage errors exit with 2 as well.
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_DENIED: u8 = 3;
pub const EXIT_EXPIRED: u8 = 4;
pub const EXIT_UNAVAILABLE: u8 = 5;
pub const EXIT_FAILED: u8 = 6;
pub const EXIT_APPROVAL_TIMEOUT: u8 = 7;
pub const EXIT_NOT_LOGGED_IN: u8 = 8;
pub const EXIT_LOGIN_INVALID: u8 = 9;
pub const EXIT_STORE_UNREACHABLE: u8 = 10;
/// `status` could not check the login: Monzo or the service did not answer.
pub const EXIT_CANNOT_CHECK: u8 = 11;
/// 128 + SIGINT, as shells report a process stopped by Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

/// The exit codes for `--help`, a macro so that `refresh`'s help can add to it with `concat!`.
macro_rules! exit_codes_help {
    () => {
        "\
Exit codes:
  0    success: the token was printed (or written to --output)
  2    usage error (a bad flag, a --service that is not an http(s) URL, no refresh token in the input)
  3    access was denied at Monzo, or the service does not allow this Monzo user
  4    the login session expired before the login was completed
  5    the monzo-auth service could not be reached, or stayed unavailable
  6    Monzo refused the login or the refresh token (invalid grant), or any other failure
  7    --wait-for-approval timed out before access was approved in the Monzo app
  8    not logged in: no such profile (run monzo-auth login)
  9    the stored login is no longer valid (Monzo refused it): log in again
  10   the keyring (or the profile's file) cannot be reached or is locked
  11   status could not check the login (Monzo or the service unreachable): try again later
  130  interrupted (Ctrl-C or SIGTERM)"
    };
}

pub const EXIT_CODES_HELP: &str = exit_codes_help!();

pub const REFRESH_HELP: &str = concat!(
    "\
Examples:
  monzo-auth login --service \"$SERVICE\" --output token.json
  monzo-auth refresh --service \"$SERVICE\" --input token.json --output token.json
  monzo-auth refresh --service \"$SERVICE\" --format token < token.json

",
    exit_codes_help!()
);

/// The worse of two exit codes of `status --all`: a dead login (9) first, then a store that
/// cannot be reached (10), then any other failure, then a login that could not be checked (11).
pub fn worst(a: u8, b: u8) -> u8 {
    let rank = |code: u8| match code {
        0 => 0,
        EXIT_CANNOT_CHECK => 1,
        EXIT_STORE_UNREACHABLE => 3,
        EXIT_LOGIN_INVALID => 4,
        _ => 2,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// Why the command failed; each maps to one exit code.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Clap's own error, or `--help`/`--version` (which clap prints and exits 0 for).
    #[error(transparent)]
    Clap(#[from] clap::Error),
    #[error("{0}")]
    Usage(String),
    #[error(transparent)]
    Login(Error),
    #[error(
        "Monzo refused the refresh token (expired, already used or revoked); log in again with `monzo-auth login`"
    )]
    RefreshRefused,
    #[error(
        "the service answered 404 to /oauth/token: check the service URL, or update the service (it may predate refresh)"
    )]
    NoRefresh,
    #[error(
        "access was not approved in the Monzo app within {} s{}; no token was printed",
        .timeout.as_secs(),
        .last_problem.map(|p| format!(" (last check: {p})")).unwrap_or_default()
    )]
    ApprovalTimeout {
        timeout: Duration,
        /// Why the last check of /accounts failed, if it did not get an answer from Monzo.
        last_problem: Option<&'static str>,
    },
    #[error("{0}")]
    Approval(String),
    #[error("{0}")]
    Output(String),
    #[error("{0}")]
    Runtime(String),
    #[error(transparent)]
    Profile(ProfileError),
    #[error("{0}")]
    LoginInvalid(String),
    /// A command run by `exec` finished with this code.
    #[error("the command exited with {0}")]
    Exited(u8),
    #[error("interrupted")]
    Interrupted,
}

impl CliError {
    pub fn exit_code(&self) -> u8 {
        match self {
            // Clap uses 2 for usage errors and 0 for --help and --version.
            Self::Clap(error) => u8::try_from(error.exit_code()).unwrap_or(EXIT_USAGE),
            Self::Usage(_) => EXIT_USAGE,
            Self::Login(error) => match error {
                Error::Denied => EXIT_DENIED,
                Error::Expired => EXIT_EXPIRED,
                Error::Unreachable { .. } | Error::ServiceUnavailable => EXIT_UNAVAILABLE,
                Error::Cancelled => EXIT_INTERRUPTED,
                Error::InvalidServiceUrl { .. } => EXIT_USAGE,
                _ => EXIT_FAILED,
            },
            Self::ApprovalTimeout { .. } => EXIT_APPROVAL_TIMEOUT,
            Self::Profile(error) => match error {
                ProfileError::NotLoggedIn(_) => EXIT_NOT_LOGGED_IN,
                ProfileError::BadName(_) => EXIT_USAGE,
                ProfileError::KeyringEntryMissing(_) | ProfileError::Corrupt(..) => {
                    EXIT_LOGIN_INVALID
                }
                _ => EXIT_STORE_UNREACHABLE,
            },
            Self::LoginInvalid(_) => EXIT_LOGIN_INVALID,
            Self::Exited(code) => *code,
            Self::RefreshRefused
            | Self::NoRefresh
            | Self::Approval(_)
            | Self::Output(_)
            | Self::Runtime(_) => EXIT_FAILED,
            Self::Interrupted => EXIT_INTERRUPTED,
        }
    }

    /// Tells the person what went wrong: one line on stderr (clap formats its own).
    pub fn report(&self) {
        match self {
            Self::Clap(error) => {
                let _ = error.print();
            }
            // The command said what it had to say.
            Self::Exited(_) => {}
            other => eprintln!("monzo-auth: {other}"),
        }
    }
}

impl From<Error> for CliError {
    fn from(error: Error) -> Self {
        match error {
            Error::Cancelled => Self::Interrupted,
            error => Self::Login(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_match_the_documented_ones() {
        let code = |error: Error| CliError::from(error).exit_code();
        assert_eq!(code(Error::Denied), 3);
        assert_eq!(code(Error::Expired), 4);
        assert_eq!(code(Error::ServiceUnavailable), 5);
        assert_eq!(
            code(Error::Unreachable {
                service: String::new(),
                cause: String::new()
            }),
            5
        );
        assert_eq!(code(Error::InvalidGrant), 6);
        assert_eq!(code(Error::NotFound), 6);
        assert_eq!(code(Error::UnexpectedResponse { status: 500 }), 6);
        assert_eq!(code(Error::Cancelled), 130);
        let timeout = CliError::ApprovalTimeout {
            timeout: Duration::from_secs(9),
            last_problem: Some("Monzo unavailable"),
        };
        assert_eq!(timeout.exit_code(), 7);
        assert_eq!(
            timeout.to_string(),
            "access was not approved in the Monzo app within 9 s \
             (last check: Monzo unavailable); no token was printed"
        );
        assert_eq!(CliError::Usage(String::new()).exit_code(), 2);
        assert_eq!(CliError::RefreshRefused.exit_code(), 6);
        assert_eq!(CliError::NoRefresh.exit_code(), 6);
        let name = monzo_auth_client::profile::ProfileName::parse("p").unwrap();
        assert_eq!(
            CliError::Profile(ProfileError::NotLoggedIn(name.clone())).exit_code(),
            8
        );
        assert_eq!(CliError::LoginInvalid(String::new()).exit_code(), 9);
        assert_eq!(EXIT_CANNOT_CHECK, 11);
        // status --all: a dead login outranks a store failure, which outranks the rest.
        assert_eq!(worst(worst(0, 11), 5), 5);
        assert_eq!(worst(worst(9, 10), 11), 9);
        assert_eq!(worst(11, 10), 10);
        assert_eq!(worst(0, 0), 0);
        assert_eq!(
            CliError::Profile(ProfileError::KeyringUnreachable(name.clone())).exit_code(),
            10
        );
        assert_eq!(
            CliError::Profile(ProfileError::KeyringLocked).exit_code(),
            10
        );
        assert_eq!(CliError::Exited(42).exit_code(), 42);
        for line in EXIT_CODES_HELP.lines().skip(1) {
            let code: u8 = line.split_whitespace().next().unwrap().parse().unwrap();
            assert!(
                [
                    0,
                    EXIT_USAGE,
                    EXIT_DENIED,
                    EXIT_EXPIRED,
                    EXIT_UNAVAILABLE,
                    EXIT_FAILED,
                    EXIT_APPROVAL_TIMEOUT,
                    EXIT_NOT_LOGGED_IN,
                    EXIT_LOGIN_INVALID,
                    EXIT_STORE_UNREACHABLE,
                    EXIT_CANNOT_CHECK,
                    EXIT_INTERRUPTED
                ]
                .contains(&code)
            );
        }
    }
}
