//! The command line: flags, the login and the refresh as the person sees them, and exit codes.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use monzo_auth_client::{
    Cancel, Client, DeviceLogin, Error, Login, Progress, RetryReason, Token, Url,
};
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

use crate::approval::{self, Approval};
use crate::browser;
use crate::input::{self, ReadError};
use crate::output::{self, Format, PendingFile};
use crate::profiles::{self, TokenFormat};
use crate::status::Status;
use monzo_auth_client::profile::{Backend, ProfileError};

// Exit codes. Clap's own usage errors exit with 2 as well.
const EXIT_USAGE: u8 = 2;
const EXIT_DENIED: u8 = 3;
const EXIT_EXPIRED: u8 = 4;
const EXIT_UNAVAILABLE: u8 = 5;
const EXIT_FAILED: u8 = 6;
const EXIT_APPROVAL_TIMEOUT: u8 = 7;
const EXIT_NOT_LOGGED_IN: u8 = 8;
const EXIT_LOGIN_INVALID: u8 = 9;
const EXIT_STORE_UNREACHABLE: u8 = 10;
/// 128 + SIGINT, as shells report a process stopped by Ctrl-C.
const EXIT_INTERRUPTED: u8 = 130;

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
  9    the stored login is no longer valid: log in again
  10   the keyring (or the profile's file) cannot be reached or is locked
  130  interrupted (Ctrl-C or SIGTERM)"
    };
}

const EXIT_CODES_HELP: &str = exit_codes_help!();

const REFRESH_HELP: &str = concat!(
    "\
Examples:
  monzo-auth login --service \"$SERVICE\" --output token.json
  monzo-auth refresh --service \"$SERVICE\" --input token.json --output token.json
  monzo-auth refresh --service \"$SERVICE\" --format token < token.json

",
    exit_codes_help!()
);

/// Monzo tokens for desktop and command-line apps, through a monzo-auth service.
#[derive(Parser, Debug)]
#[command(name = "monzo-auth", version, after_help = EXIT_CODES_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Log in to Monzo in a browser and print the token.
    ///
    /// Opens Monzo's login page (honouring BROWSER), waits while you log in and approve, and
    /// prints the token on stdout. Status goes to stderr.
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

    /// Run a command with MONZO_ACCESS_TOKEN and MONZO_USER_ID set to a valid token, and exit as
    /// it does.
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

/// `--profile`.
#[derive(Args, Debug)]
struct ProfileArg {
    /// The stored login to use.
    #[arg(long, env = "MONZO_AUTH_PROFILE", default_value = "default")]
    profile: String,
}

#[derive(Args, Debug)]
struct TokenArgs {
    #[command(flatten)]
    profile: ProfileArg,

    /// Refresh first when the token has this many seconds or fewer left.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    min_valid: u64,

    /// How to print it: the token alone, JSON (access_token, expires_at, user_id), `export`
    /// lines for eval, or NAME=value lines for an env file. Never the refresh token.
    #[arg(long, value_enum, default_value_t = TokenFormat::Token)]
    format: TokenFormat,
}

#[derive(Args, Debug)]
struct ExecArgs {
    #[command(flatten)]
    profile: ProfileArg,

    /// Refresh first when the token has this many seconds or fewer left.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    min_valid: u64,

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

/// `--service`, which both commands take.
#[derive(Args, Debug)]
struct ServiceArg {
    // The help is an attribute, not a doc comment: rustdoc wants URLs in a doc comment to be
    // links, which would look odd in --help. A string, checked in `login`: clap's own parse
    // error spans several lines.
    #[arg(
        long,
        env = "MONZO_AUTH_SERVICE",
        value_name = "URL",
        help = "The monzo-auth service's base URL, e.g. http://127.0.0.1:3000/ or \
                https://abc123.execute-api.eu-west-2.amazonaws.com/Prod/"
    )]
    service: String,
}

#[derive(Args, Debug)]
struct LoginArgs {
    // Optional here: a profile logging in again remembers its service.
    #[arg(
        long,
        env = "MONZO_AUTH_SERVICE",
        value_name = "URL",
        help = "The monzo-auth service's base URL, e.g. http://127.0.0.1:3000/ or \
                https://abc123.execute-api.eu-west-2.amazonaws.com/Prod/ [default: the \
                profile's, when it logged in before]"
    )]
    service: Option<String>,

    #[command(flatten)]
    profile: ProfileArg,

    /// Print the token (or write it to --output) instead of storing it in the profile. Implied
    /// by --format and --output; `monzo-auth refresh` is then the token's tool.
    #[arg(long)]
    no_store: bool,

    /// Where the profile keeps its tokens [default: the OS keyring when one is reachable,
    /// else a file readable by you only].
    #[arg(long, value_enum, conflicts_with = "no_store")]
    store: Option<StoreChoice>,

    /// Move a login saved by `login --output FILE` (its JSON) into the profile, without logging
    /// in again.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["no_store", "output", "format"])]
    import: Option<PathBuf>,

    /// Log in on any device instead of this one's browser: prints a short code to enter at
    /// the service's /device page (the service's device flow).
    #[arg(long)]
    no_browser: bool,

    /// Like --no-browser, and draws the page (code filled in) as a QR code on stderr, to log in
    /// on a phone.
    #[arg(long)]
    qr: bool,

    /// How to print the token (not stored) [default: json].
    #[arg(long, value_enum)]
    format: Option<Format>,

    /// Write the token to FILE (readable by its owner only) instead of stdout.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,

    /// Before printing the token, wait until access is approved in the Monzo app (Strong
    /// Customer Authentication), checking Monzo's /accounts.
    #[arg(long)]
    wait_for_approval: bool,

    /// How long --wait-for-approval waits, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    approval_timeout: u64,

    /// Monzo's API, for --wait-for-approval.
    #[arg(
        long,
        env = "MONZO_API_URL",
        value_name = "URL",
        default_value = "https://api.monzo.com"
    )]
    monzo_api_url: String,

    /// Milliseconds between checks of --wait-for-approval (for tests).
    #[arg(
        long,
        env = "MONZO_AUTH_APPROVAL_POLL_MS",
        default_value_t = 2000,
        hide = true
    )]
    approval_poll_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum StoreChoice {
    Keyring,
    File,
}

#[derive(Args, Debug)]
struct RefreshArgs {
    #[command(flatten)]
    service: ServiceArg,

    /// Read the refresh token from FILE, as `monzo-auth login --output FILE` wrote it (JSON or
    /// env) [default: stdin].
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,

    /// How to print the new token [default: the input's format, json or env; json for a bare
    /// refresh token].
    #[arg(long, value_enum)]
    format: Option<Format>,

    /// Write the new token to FILE (readable by its owner only) instead of stdout. The file is
    /// replaced whole (a new file renamed over it), so it may be the --input file.
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
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
            match profiles::status(names, args.format == StatusFormat::Json).await? {
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

/// A client of `--service`, or a usage error that says what is wrong with it (with the URL
/// the person probably meant, for `127.0.0.1:3000` or `localhost:3000`).
pub fn service_client(service: &str) -> Result<Client, CliError> {
    let bare = !service.contains("://");
    let suggest = || {
        CliError::Usage(format!(
            "--service: {service:?} is not a URL; did you mean http://{}/ ?",
            service.trim_end_matches('/')
        ))
    };
    let url = match Url::parse(service) {
        Ok(url) if bare && !matches!(url.scheme(), "http" | "https") => return Err(suggest()),
        Ok(url) => url,
        Err(_) if bare => return Err(suggest()),
        Err(error) => {
            return Err(CliError::Usage(format!(
                "--service: {service:?} is not a URL ({error})"
            )));
        }
    };
    Client::new(url).map_err(|error| match error {
        Error::InvalidServiceUrl { reason } => {
            CliError::Usage(format!("--service: the URL is not usable: {reason}"))
        }
        error => error.into(),
    })
}

/// Checks that `--output`'s directory exists: found out now rather than once the token is
/// here, which a failed write would lose.
fn check_output_dir(path: &Path) -> Result<(), CliError> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    if dir.is_dir() {
        Ok(())
    } else {
        Err(CliError::Usage(format!(
            "--output: the directory {} does not exist",
            dir.display()
        )))
    }
}

async fn login(args: LoginArgs) -> Result<(), CliError> {
    let stored = !(args.no_store || args.output.is_some() || args.format.is_some());
    let name = profiles::profile_name(&args.profile.profile)?;
    let service = match &args.service {
        Some(service) => service.clone(),
        // The service this profile logged in through before.
        None => profiles::store()
            .ok()
            .and_then(|store| store.facts(&name).ok())
            .map(|profile| profile.service.to_string())
            .ok_or_else(|| {
                CliError::Usage(
                    "--service URL is required (or MONZO_AUTH_SERVICE): the monzo-auth service \
                     to log in through"
                        .into(),
                )
            })?,
    };
    let client = service_client(&service)?;
    let service = Url::parse(&service).expect("checked by service_client");
    let wanted = args.store.map(|choice| match choice {
        StoreChoice::Keyring => Backend::Keyring,
        StoreChoice::File => Backend::File,
    });
    if let Some(path) = &args.import {
        return import(&client, &service, &name, path, wanted).await;
    }
    // Found out now, not once the token is here and nowhere to keep it.
    if stored {
        profiles::store()?;
        if wanted == Some(Backend::Keyring) && !monzo_auth_client::profile::keyring_reachable() {
            return Err(CliError::Profile(ProfileError::KeyringUnreachable(name)));
        }
    }
    let accounts = approval::accounts_url(&parse_url("--monzo-api-url", &args.monzo_api_url)?)?;
    if let Some(path) = &args.output {
        check_output_dir(path)?;
    }
    let cancel = Cancel::new();
    forward_signals(&cancel)?;
    let status = Status::new(std::io::stderr().is_terminal());
    let issued_at = profiles::now_secs();
    let result = login_with(&args, &client, &accounts, &cancel, &status).await;
    // Whatever happened, the spinner goes before the last word is printed.
    status.clear();
    let token = result?;
    if stored {
        let monzo_api_url = client.monzo_api_url().await.ok().flatten();
        let (backend, path) =
            profiles::keep(&name, &service, monzo_api_url, &token, wanted, issued_at)?;
        let place = match backend {
            Backend::Keyring => format!("the OS keyring (facts in {})", path.display()),
            Backend::File => format!("{} (readable by you only)", path.display()),
        };
        eprintln!(
            "Logged in as {} (valid until {}); kept in profile {name}, in {place}.
             Get a fresh token any time with `monzo-auth token{}`.",
            token.user_id,
            token.expires,
            if name.as_str() == "default" {
                String::new()
            } else {
                format!(" --profile {name}")
            }
        );
        return Ok(());
    }
    deliver(&args, &token)
}

/// `login --import FILE`: a token file from `login --output` becomes the profile's login.
async fn import(
    client: &Client,
    service: &Url,
    name: &monzo_auth_client::profile::ProfileName,
    path: &Path,
    wanted: Option<Backend>,
) -> Result<(), CliError> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        CliError::Usage(format!("--import: cannot read {}: {error}", path.display()))
    })?;
    let token: Token = serde_json::from_str(text.trim()).map_err(|_| {
        CliError::Usage(format!(
            "--import: {} is not a token that `monzo-auth login --output` wrote (JSON)",
            path.display()
        ))
    })?;
    let expires_at = time::OffsetDateTime::parse(
        &token.expires,
        &time::format_description::well_known::Rfc3339,
    )
    .map(|at| u64::try_from(at.unix_timestamp()).unwrap_or(0))
    .map_err(|_| CliError::Usage("--import: the token's expires is not a time".into()))?;
    let monzo_api_url = client.monzo_api_url().await.ok().flatten();
    // Stored with its own expiry: `keep` adds expires_in to the time given.
    let issued_at = expires_at.saturating_sub(token.expires_in);
    let (backend, stored) =
        profiles::keep(name, service, monzo_api_url, &token, wanted, issued_at)?;
    eprintln!(
        "Imported the login of {} into profile {name} ({backend}, {}). Delete {} now: the \
         profile holds its refresh token from here on, and a second copy would be used up.",
        token.user_id,
        stored.display(),
        path.display()
    );
    Ok(())
}

/// The part of the login that shows status; the caller clears it afterwards.
async fn login_with(
    args: &LoginArgs,
    client: &Client,
    accounts: &Url,
    cancel: &Cancel,
    status: &Status,
) -> Result<Token, CliError> {
    let token = if args.no_browser || args.qr {
        // A short code to type on any device: the service's device flow.
        let device = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(CliError::Interrupted),
            device = client.start_device_login() => device?,
        };
        show_device_code(args, &device);
        status.set(WAITING_FOR_CODE);
        client
            .wait_for_device_token(&device, cancel, |progress| {
                status.set(match progress {
                    Progress::Waiting { .. } => WAITING_FOR_CODE.to_owned(),
                    progress => describe(progress),
                })
            })
            .await?
    } else {
        let login = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(CliError::Interrupted),
            login = client.start_login() => login?,
        };
        let launch = browser::wanted();
        show_login_url(&login, launch);
        if launch {
            browser::open(login.login_url(), status.clone());
        }
        status.set(WAITING);
        client
            .wait_for_token(&login, cancel, |progress| status.set(describe(progress)))
            .await?
    };
    if args.wait_for_approval {
        status.restart_clock();
        status.set("Token received; checking access at Monzo…");
        let http = approval::monzo_http()?;
        Approval {
            http: &http,
            accounts,
            timeout: Duration::from_secs(args.approval_timeout),
            poll: Duration::from_millis(args.approval_poll_ms.max(1)),
            cancel,
            status,
        }
        .wait(&token)
        .await?;
    }
    Ok(token)
}

const WAITING: &str = "Waiting for you to approve in the browser…";
const WAITING_FOR_CODE: &str = "Waiting for the code to be entered and the login approved…";

/// The status line for a step of the wait.
pub fn describe(progress: Progress) -> String {
    match progress {
        Progress::Retrying { reason, after } => {
            let secs = after.as_secs_f64().ceil();
            match reason {
                RetryReason::SlowDown => format!("{reason}: polling every {secs} s…"),
                _ => format!("{reason}, retrying in {secs} s…"),
            }
        }
        _ => WAITING.to_owned(),
    }
}

/// The login URL on stderr, always: the browser may open elsewhere, or not at all.
fn show_login_url(login: &Login, launched: bool) {
    eprintln!(
        "{}Open this URL to log in to Monzo:\n  {}",
        if launched {
            "Opening your browser. "
        } else {
            ""
        },
        login.login_url()
    );
}

/// `--no-browser` and `--qr`: the code, where to enter it, and (with `--qr`) a QR code of the
/// page with the code filled in, on stderr.
fn show_device_code(args: &LoginArgs, device: &DeviceLogin) {
    let host = device.verification_uri.host_str().unwrap_or("");
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    eprintln!(
        "To log in, open {} on any device and enter the code\n\n    {}\n\n\
         (or open {} to have it filled in). The device must be able to reach this service{}.",
        device.verification_uri,
        device.user_code,
        device.verification_uri_complete,
        if loopback {
            format!(": {host} is this machine only, a phone cannot reach it")
        } else {
            String::new()
        }
    );
    if args.qr {
        match QrCode::new(device.verification_uri_complete.as_str()) {
            // Light modules drawn as blocks: terminals are mostly dark, and a QR code reads
            // as dark-on-light, quiet zone included.
            Ok(code) => eprintln!(
                "{}",
                code.render::<Dense1x2>()
                    .dark_color(Dense1x2::Light)
                    .light_color(Dense1x2::Dark)
                    .quiet_zone(true)
                    .build()
            ),
            Err(_) => eprintln!("(The URL is too long for a QR code.)"),
        }
    }
}

/// Prints the token, or writes it to `--output`.
fn deliver(args: &LoginArgs, token: &Token) -> Result<(), CliError> {
    let text = output::render(token, args.format.unwrap_or(Format::Json));
    match &args.output {
        Some(path) => {
            output::to_private_file(path, &text).map_err(|error| {
                CliError::Output(format!("cannot write {}: {error}", path.display()))
            })?;
            eprintln!(
                "Logged in as {} (valid until {}); token written to {}",
                token.user_id,
                token.expires,
                path.display()
            );
            Ok(())
        }
        None => {
            output::to_stdout(&text)
                .map_err(|error| CliError::Output(format!("cannot write to stdout: {error}")))?;
            eprintln!(
                "Logged in as {} (valid until {})",
                token.user_id, token.expires
            );
            Ok(())
        }
    }
}

async fn refresh(args: RefreshArgs) -> Result<(), CliError> {
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

fn parse_url(flag: &str, value: &str) -> Result<Url, CliError> {
    Url::parse(value)
        .map_err(|error| CliError::Usage(format!("{flag}: {value:?} is not a URL ({error})")))
}

/// Ctrl-C and SIGTERM cancel the login instead of killing the process, so that the spinner is
/// cleared and the exit is reported.
fn forward_signals(cancel: &Cancel) -> Result<(), CliError> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        // Registered now, before the first request, so an early Ctrl-C is not lost.
        let register = |kind| {
            signal(kind)
                .map_err(|error| CliError::Runtime(format!("cannot handle signals: {error}")))
        };
        let mut interrupt = register(SignalKind::interrupt())?;
        let mut terminate = register(SignalKind::terminate())?;
        let cancel = cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            cancel.cancel();
        });
    }
    #[cfg(not(unix))]
    {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                cancel.cancel();
            }
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

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
                    EXIT_INTERRUPTED
                ]
                .contains(&code)
            );
        }
    }

    #[test]
    fn retry_lines_say_what_and_when() {
        assert_eq!(
            describe(Progress::Retrying {
                reason: RetryReason::MonzoUnavailable,
                after: Duration::from_millis(3_200),
            }),
            "Monzo unavailable, retrying in 4 s…"
        );
        assert_eq!(
            describe(Progress::Waiting {
                elapsed: Duration::from_secs(3)
            }),
            WAITING
        );
    }
}
