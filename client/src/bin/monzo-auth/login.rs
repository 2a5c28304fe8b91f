//! `monzo-auth login`: through the browser, or with a code typed on any device (RFC 8628), then
//! kept in a profile, printed or written to `--output`; `login --import` takes a token file.

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Args;
use monzo_auth_client::profile::{Backend, ProfileError};
use monzo_auth_client::{Cancel, Client, DeviceLogin, Login, Progress, Token, Url};
use qrcode::QrCode;
use qrcode::render::unicode::Dense1x2;

use crate::approval::Approval;
use crate::error::CliError;
use crate::output::{self, Format, check_output_dir};
use crate::profiles::ProfileArg;
use crate::service::{parse_url, service_client};
use crate::signals::forward_signals;
use crate::status::{Status, WAITING, WAITING_FOR_CODE, describe};
use crate::{browser, monzo, profiles};

#[derive(Args, Debug)]
pub struct LoginArgs {
    // Optional here: a profile logging in again remembers its service.
    #[arg(
        long,
        env = "MONZO_AUTH_SERVICE",
        value_name = "URL",
        help = "The monzo-auth service's base URL, e.g. http://127.0.0.1:3000/ or \
                https://abc123.execute-api.eu-west-2.amazonaws.com/ [default: the \
                profile's, when it logged in before]"
    )]
    pub(crate) service: Option<String>,

    #[command(flatten)]
    pub(crate) profile: ProfileArg,

    /// Print the token (or write it to --output) instead of storing it in the profile. Implied
    /// by --format and --output; `monzo-auth refresh` is then the token's tool.
    #[arg(long)]
    pub(crate) no_store: bool,

    /// Where the profile keeps its tokens [default: the OS keyring when one is reachable,
    /// else a plain-text file readable by you only].
    #[arg(long, value_enum, conflicts_with = "no_store")]
    pub(crate) store: Option<StoreChoice>,

    /// Move a login saved by `login --output FILE` (its JSON) into the profile, without logging
    /// in again.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["no_store", "output", "format"])]
    pub(crate) import: Option<PathBuf>,

    /// Log in on any device instead of this one's browser: prints a short code to enter at
    /// the service's /device page (the service's device flow).
    #[arg(long)]
    pub(crate) no_browser: bool,

    /// Like --no-browser, and draws the page (code filled in) as a QR code on stderr, to log in
    /// on a phone.
    #[arg(long)]
    pub(crate) qr: bool,

    /// Print the token in this format instead of keeping it in a profile [default when
    /// printing: json].
    #[arg(long, value_enum)]
    pub(crate) format: Option<Format>,

    /// Write the token to FILE (readable by its owner only) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,

    /// Before printing the token, wait until access is approved in the Monzo app (Strong
    /// Customer Authentication), checking Monzo's /accounts.
    #[arg(long)]
    pub(crate) wait_for_approval: bool,

    /// How long --wait-for-approval waits, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 300)]
    pub(crate) approval_timeout: u64,

    // The help is an attribute: rustdoc wants URLs in a doc comment to be links.
    #[arg(
        long,
        value_name = "URL",
        help = "Monzo's API, for --wait-for-approval and the profile [default: the one the \
                service advertises (the demo's stand-in, or https://api.monzo.com)]. Not read \
                from MONZO_API_URL: `exec` sets that for its command."
    )]
    pub(crate) monzo_api_url: Option<String>,

    /// Milliseconds between checks of --wait-for-approval (for tests).
    #[arg(
        long,
        env = "MONZO_AUTH_APPROVAL_POLL_MS",
        default_value_t = 2000,
        hide = true
    )]
    pub(crate) approval_poll_ms: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum StoreChoice {
    Keyring,
    File,
}

pub async fn login(args: LoginArgs) -> Result<(), CliError> {
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
    // Found out now, not once Monzo has issued the token (and ended the user's previous login)
    // and there is nowhere to keep it.
    let backend = if stored {
        profiles::store()?;
        Some(where_to_keep(&name, wanted)?)
    } else {
        None
    };
    if let (Some(path), Some(backend)) = (&args.import, backend) {
        return import(&client, &service, &name, path, backend).await;
    }
    // Monzo's API: the flag, else where the service says its tokens are used.
    let flagged = args
        .monzo_api_url
        .as_deref()
        .map(|url| parse_url("--monzo-api-url", url))
        .transpose()?;
    let monzo_api_url = match flagged {
        Some(url) => Some(url),
        None if stored || args.wait_for_approval => client.monzo_api_url().await.ok().flatten(),
        None => None,
    };
    let accounts = monzo::accounts_url(
        &monzo_api_url
            .clone()
            .unwrap_or_else(|| Url::parse(monzo::MONZO_API).expect("a URL")),
    )?;
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
    // Monzo's documented limit on what a new login may read: said once, when it matters.
    eprintln!(
        "For the next 5 minutes this login can fetch your whole transaction history; after that, \
         Monzo allows the last 90 days only."
    );
    if let Some(backend) = backend {
        let (backend, path) = profiles::keep(
            &name,
            &service,
            monzo_api_url,
            &token,
            backend,
            (issued_at, Some(issued_at)),
        )?;
        let place = match backend {
            Backend::Keyring => format!("the OS keyring (facts in {})", path.display()),
            Backend::File => format!("{} (plain text, readable by you only)", path.display()),
        };
        eprintln!(
            "Logged in as {} (valid until {}); kept in profile {name}, in {place}.\n\
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

/// Where a login about to start will be kept: `wanted` if it can be, else the keyring when it
/// can keep one, else (no keyring here at all) the owner-only file. A keyring that is there but
/// locked, without a collection or silent stops the login before it starts (exit 10), naming
/// `--store file`: nothing is lost yet.
fn where_to_keep(
    name: &monzo_auth_client::profile::ProfileName,
    wanted: Option<Backend>,
) -> Result<Backend, CliError> {
    use monzo_auth_client::profile::{KeyringState, keyring_state};
    if wanted == Some(Backend::File) {
        return Ok(Backend::File);
    }
    match (keyring_state(), wanted) {
        (KeyringState::Usable, _) => Ok(Backend::Keyring),
        (KeyringState::Absent, None) => Ok(Backend::File),
        (KeyringState::Absent, _) => Err(CliError::Profile(ProfileError::KeyringUnreachable(
            name.clone(),
        ))),
        (KeyringState::Unusable(why), _) => {
            Err(CliError::Profile(ProfileError::KeyringUnusable(why)))
        }
    }
}

/// `login --import FILE`: a token file from `login --output` becomes the profile's login.
async fn import(
    client: &Client,
    service: &Url,
    name: &monzo_auth_client::profile::ProfileName,
    path: &Path,
    backend: Backend,
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
    let (backend, stored) = profiles::keep(
        name,
        service,
        monzo_api_url,
        &token,
        backend,
        (issued_at, None),
    )?;
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
        let http = monzo::monzo_http()?;
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
