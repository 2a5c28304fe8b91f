//! The command line: its flags and subcommands, and which module runs each.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use monzo_auth_client::Cancel;

use crate::error::{CliError, EXIT_CODES_HELP, REFRESH_HELP};
use crate::login::{LoginArgs, login};
use crate::profiles::{self, ProfileArg, TokenFormat};
use crate::refresh::{RefreshArgs, refresh};
use crate::signals::forward_signals;

/// Monzo tokens for desktop and command-line apps, through a monzo-auth service.
#[derive(Parser, Debug)]
#[command(name = "monzo-auth", version, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Log in to Monzo in a browser and keep the login in a profile (or print the token with
    /// --no-store).
    ///
    /// Opens Monzo's login page (honouring BROWSER), waits while you log in and approve, and
    /// keeps the login in the profile (the OS keyring, or a plain-text file readable by you
    /// only), printing nothing on stdout; `monzo-auth token` then prints a fresh token any
    /// time. --no-browser (or --qr) logs in with a short code on any device instead (the
    /// service's device flow). --no-store, --format or --output print the token (or write
    /// it to a file) instead of keeping it. Status goes to stderr.
    #[command(after_help = EXIT_CODES_HELP)]
    Login(LoginArgs),

    /// Trade a saved refresh token for a new token, through the service.
    ///
    /// Reads the token that `monzo-auth login` printed or wrote (JSON or env) from --input
    /// FILE, or from stdin (which may also hold the refresh token alone on one line); never
    /// from the command line, where ps and shell history would keep it. Prints the new token
    /// on stdout, or writes it to --output. Monzo rotates refresh tokens: the old one stops
    /// working, so keep what this prints. The same FILE as --input and --output refreshes it
    /// in place.
    #[command(after_help = REFRESH_HELP)]
    Refresh(RefreshArgs),

    /// Print a valid access token of a stored login, refreshing it first when it is close to
    /// expiring (like `gh auth token`).
    ///
    /// Many processes asking at once make one refresh: the others wait and read the new token.
    #[command(after_help = EXIT_CODES_HELP)]
    Token(TokenArgs),

    /// Run a command with MONZO_ACCESS_TOKEN, MONZO_USER_ID and MONZO_API_URL set for a valid
    /// token, and exit as it does.
    ///
    /// The token is valid for at least --min-valid when the command starts; a command that runs
    /// longer than the token's life (six hours) must call `monzo-auth token` itself.
    #[command(after_help = EXIT_CODES_HELP)]
    Exec(ExecArgs),

    /// Show stored logins: user, service, expiry, where each is kept, and whether Monzo still
    /// accepts it.
    #[command(after_help = EXIT_CODES_HELP)]
    Status(StatusArgs),

    /// Log out at Monzo (through the service) and forget the stored login.
    #[command(after_help = EXIT_CODES_HELP)]
    Logout(LogoutArgs),
}

#[derive(Args, Debug)]
struct TokenArgs {
    #[command(flatten)]
    profile: ProfileArg,

    /// Refresh first when the token has this many seconds or fewer left.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    min_valid: u64,

    /// How to print it: the token alone, JSON (access_token, expires_at, user_id,
    /// monzo_api_url), `export` lines for eval, or NAME=value lines for an env file (with
    /// MONZO_USER_ID and MONZO_API_URL). Never the refresh token.
    #[arg(long, value_enum, default_value_t = TokenFormat::Token)]
    format: TokenFormat,

    #[command(flatten)]
    monzo_api: profiles::MonzoApiArg,
}

#[derive(Args, Debug)]
struct ExecArgs {
    #[command(flatten)]
    profile: ProfileArg,

    /// Refresh first when the token has this many seconds or fewer left.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    min_valid: u64,

    #[command(flatten)]
    monzo_api: profiles::MonzoApiArg,

    /// The command and its arguments, after `--`.
    #[arg(required = true, last = true, value_name = "CMD")]
    command: Vec<String>,
}

#[derive(Args, Debug)]
struct StatusArgs {
    /// The stored login to show [default: MONZO_AUTH_PROFILE, or default].
    #[arg(long, env = "MONZO_AUTH_PROFILE", conflicts_with = "all")]
    profile: Option<String>,

    /// Every stored login.
    #[arg(long)]
    all: bool,

    /// `text` or `json`.
    #[arg(long, value_enum, default_value_t = StatusFormat::Text)]
    format: StatusFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum StatusFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
struct LogoutArgs {
    /// The stored login to log out [default: MONZO_AUTH_PROFILE, or default].
    #[arg(long, env = "MONZO_AUTH_PROFILE", conflicts_with = "all")]
    profile: Option<String>,

    /// Every stored login.
    #[arg(long)]
    all: bool,
}

/// Parses the command line and runs it.
pub fn run() -> Result<(), CliError> {
    let cli = Cli::try_parse()?;
    // One thread is plenty for one login; the browser launcher has a thread of its own.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|error| CliError::Runtime(format!("cannot start: {error}")))?;
    match cli.command {
        Command::Login(args) => runtime.block_on(login(args)),
        Command::Refresh(args) => runtime.block_on(refresh(args)),
        Command::Token(args) => runtime.block_on(async {
            let name = profiles::profile_name(&args.profile.profile)?;
            let cancel = Cancel::new();
            forward_signals(&cancel)?;
            profiles::token(
                &name,
                Duration::from_secs(args.min_valid),
                args.format,
                &args.monzo_api,
                &cancel,
            )
            .await
        }),
        Command::Exec(args) => runtime.block_on(async {
            let name = profiles::profile_name(&args.profile.profile)?;
            let cancel = Cancel::new();
            forward_signals(&cancel)?;
            let code = profiles::exec(
                &name,
                Duration::from_secs(args.min_valid),
                &args.command,
                &args.monzo_api,
                &cancel,
            )
            .await?;
            if code == 0 {
                Ok(())
            } else {
                Err(CliError::Exited(code))
            }
        }),
        Command::Status(args) => runtime.block_on(async {
            let names = chosen(args.profile.as_deref(), args.all)?;
            let cancel = Cancel::new();
            forward_signals(&cancel)?;
            match profiles::status(names, args.format == StatusFormat::Json, &cancel).await? {
                0 => Ok(()),
                code => Err(CliError::Exited(code)),
            }
        }),
        Command::Logout(args) => runtime.block_on(async {
            let names = chosen(args.profile.as_deref(), args.all)?;
            let cancel = Cancel::new();
            forward_signals(&cancel)?;
            profiles::logout(names, &cancel).await
        }),
    }
}

/// The profiles `--profile NAME` or `--all` name (`default` when neither is given).
fn chosen(
    profile: Option<&str>,
    all: bool,
) -> Result<Vec<monzo_auth_client::profile::ProfileName>, CliError> {
    if all {
        profiles::store()?.names().map_err(CliError::Profile)
    } else {
        Ok(vec![profiles::profile_name(profile.unwrap_or("default"))?])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }
}
