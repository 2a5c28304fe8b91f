//! The commands that use a stored login: `token`, `exec`, `status`, `logout`, and the storing
//! half of `login` (including `--import`).
//!
//! The profile is the one holder of its refresh token: nothing here prints it. Whoever
//! refreshes holds the profile's lock from reading the old pair to saving the new one, so that
//! many processes asking at once make exactly one refresh; the others wait and read the new
//! token. Ctrl-C and SIGTERM are held off from sending the refresh until the new pair is saved.

use std::io::Write as _;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, ValueEnum};
use monzo_auth_client::profile::{
    Backend, Profile, ProfileError, ProfileLock, ProfileName, Secrets, Store,
};
use monzo_auth_client::{Cancel, Error, Token, Url};
use serde::Serialize;

use crate::error::CliError;
use crate::status::{Status, describe};

use crate::monzo::MONZO_API;

/// How `token` prints the access token. None carries the refresh token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TokenFormat {
    /// The access token alone.
    Token,
    /// `{"access_token", "expires_at" (epoch seconds), "user_id"}`.
    Json,
    /// `export MONZO_ACCESS_TOKEN='…'` lines, for `eval "$(monzo-auth token --format env)"`.
    Env,
    /// `MONZO_ACCESS_TOKEN=…` lines, for `--env-file` and systemd's `EnvironmentFile`.
    Dotenv,
}

/// Monzo asks users to approve an app's access again every 90 days (Strong Customer
/// Authentication, 2019).
const REAPPROVAL: Duration = Duration::from_secs(90 * 86_400);
/// `status` warns this long before.
const REAPPROVAL_WARNING: Duration = Duration::from_secs(14 * 86_400);

/// `--monzo-api-url` of `token` and `exec`: a flag beats the profile. Never read from this
/// process's environment: a child of `exec` (which gets MONZO_API_URL) would hand its parent's
/// value back.
#[derive(Args, Debug)]
pub struct MonzoApiArg {
    // The help is an attribute: rustdoc wants URLs in a doc comment to be links.
    #[arg(
        long = "monzo-api-url",
        value_name = "URL",
        help = "Monzo's API to hand on as MONZO_API_URL [default: the profile's, as its service \
                advertised it: the demo's stand-in, or https://api.monzo.com]"
    )]
    pub(crate) url: Option<String>,
}

impl MonzoApiArg {
    /// The flag's URL, or the profile's, or Monzo's; without a trailing slash, so that
    /// `$MONZO_API_URL/ping/whoami` is right.
    pub fn for_profile(&self, profile: &Profile) -> Result<String, CliError> {
        let url = match &self.url {
            Some(flag) => {
                let url = crate::service::parse_url("--monzo-api-url", flag)?;
                crate::monzo::accounts_url(&url)?;
                url
            }
            None => profile
                .monzo_api_url
                .clone()
                .unwrap_or_else(|| Url::parse(MONZO_API).expect("a URL")),
        };
        Ok(url.as_str().trim_end_matches('/').to_owned())
    }
}

/// `--profile`.
#[derive(Args, Debug)]
pub struct ProfileArg {
    /// The stored login to use.
    #[arg(long, env = "MONZO_AUTH_PROFILE", default_value = "default")]
    pub(crate) profile: String,
}

pub fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs())
}

/// `2026-12-01T15:22:03Z` for a time in seconds since the epoch.
pub fn rfc3339(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|secs| time::OffsetDateTime::from_unix_timestamp(secs).ok())
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| secs.to_string())
}

pub fn profile_name(text: &str) -> Result<ProfileName, CliError> {
    ProfileName::parse(text).map_err(|error| CliError::Usage(format!("--profile: {error}")))
}

pub fn store() -> Result<Store, CliError> {
    Store::open().map_err(CliError::Profile)
}

/// Takes the profile's lock, waiting for another process that holds it; Ctrl-C stops the wait.
pub async fn lock(
    store: &Store,
    name: &ProfileName,
    cancel: &Cancel,
) -> Result<ProfileLock, CliError> {
    let (store, name) = (store.clone(), name.clone());
    let locking = tokio::task::spawn_blocking(move || store.lock(&name));
    tokio::select! {
        biased;
        () = cancel.cancelled() => Err(CliError::Interrupted),
        locked = locking => locked
            .map_err(|_| CliError::Runtime("the profile lock failed".into()))?
            .map_err(CliError::Profile),
    }
}

/// The profile's token, refreshed first when it has `min_valid` or less left; the rotated
/// pair is saved before this returns. Call with the profile's lock held.
pub async fn fresh(
    store: &Store,
    name: &ProfileName,
    min_valid: Duration,
    cancel: &Cancel,
) -> Result<Profile, CliError> {
    let profile = store.load(name).map_err(CliError::Profile)?;
    if let Some(at) = profile.rejected_at {
        return Err(dead(name, at));
    }
    if profile.expires_at > now_secs().saturating_add(min_valid.as_secs()) {
        return Ok(profile);
    }
    let Some(refresh_token) = profile.secrets.refresh_token.clone() else {
        return Err(CliError::LoginInvalid(format!(
            "profile {name}'s token has expired and it has no refresh token: log in again with \
             `monzo-auth login --profile {name}`"
        )));
    };
    let client = crate::service::service_client(profile.service.as_str())?;
    let status = Status::new(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    status.set("Refreshing the token…");
    // Not cancellable: once the request is out, the old refresh token may be used up, and only
    // saving the answer keeps the login. A Ctrl-C meanwhile takes effect after the save.
    let asked = now_secs();
    let refreshed = client
        .refresh_with(&refresh_token, &Cancel::new(), |progress| {
            status.set(describe(progress))
        })
        .await;
    status.clear();
    let token = match refreshed {
        Ok(token) => token,
        Err(Error::InvalidGrant) => {
            mark_rejected(store, name, profile);
            return Err(CliError::LoginInvalid(format!(
                "Monzo no longer accepts profile {name}'s refresh token (used elsewhere, revoked, \
                 or lost in an interrupted refresh): log in again with `monzo-auth login \
                 --profile {name}`"
            )));
        }
        Err(error) => return Err(error.into()),
    };
    let renewed = Profile {
        user_id: token.user_id.clone(),
        expires_at: asked.saturating_add(token.expires_in),
        secrets: Secrets {
            access_token: token.access_token,
            refresh_token: token.refresh_token.or(Some(refresh_token)),
        },
        rejected_at: None,
        ..profile
    };
    store.save(name, &renewed).map_err(|error| {
        CliError::LoginInvalid(format!(
            "the refreshed login could not be saved ({error}); the old refresh token is used up: \
             log in again with `monzo-auth login --profile {name}`"
        ))
    })?;
    if cancel.is_cancelled() {
        return Err(CliError::Interrupted);
    }
    Ok(renewed)
}

/// The error for a login Monzo was seen refusing at `at`.
fn dead(name: &ProfileName, at: u64) -> CliError {
    CliError::LoginInvalid(format!(
        "Monzo refused profile {name}'s login ({}): log in again with `monzo-auth login \
         --profile {name}`",
        rfc3339(at)
    ))
}

/// Records that Monzo refused `profile`'s login, so that `token` and `exec` stop handing out a
/// dead token. Best effort: the caller reports the refusal either way. Call with the lock held.
fn mark_rejected(store: &Store, name: &ProfileName, profile: Profile) {
    let marked = Profile {
        rejected_at: Some(now_secs()),
        ..profile
    };
    if let Err(error) = store.save(name, &marked) {
        warn(&format!(
            "could not record that profile {name}'s login is dead: {error}"
        ));
    }
}

/// A warning on stderr (the CLI has no logger).
fn warn(text: &str) {
    eprintln!("warning: {text}");
}

/// `monzo-auth token`: prints the profile's access token in `format`.
pub async fn token(
    name: &ProfileName,
    min_valid: Duration,
    format: TokenFormat,
    api: &MonzoApiArg,
    cancel: &Cancel,
) -> Result<(), CliError> {
    let store = store()?;
    let profile = {
        let _lock = lock(&store, name, cancel).await?;
        fresh(&store, name, min_valid, cancel).await?
    };
    let text = render(&profile, format, &api.for_profile(&profile)?);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
        .map_err(|error| CliError::Output(format!("cannot write to stdout: {error}")))
}

fn render(profile: &Profile, format: TokenFormat, api: &str) -> String {
    let access = &profile.secrets.access_token;
    let user = &profile.user_id;
    match format {
        TokenFormat::Token => format!("{access}\n"),
        TokenFormat::Json => {
            #[derive(Serialize)]
            struct Printed<'a> {
                access_token: &'a str,
                expires_at: u64,
                user_id: &'a str,
                monzo_api_url: &'a str,
            }
            let printed = Printed {
                access_token: access,
                expires_at: profile.expires_at,
                user_id: user,
                monzo_api_url: api,
            };
            format!(
                "{}\n",
                serde_json::to_string(&printed).expect("JSON from strings")
            )
        }
        TokenFormat::Env => format!(
            "export MONZO_ACCESS_TOKEN={}\nexport MONZO_USER_ID={}\nexport MONZO_API_URL={}\n",
            single_quoted(access),
            single_quoted(user),
            single_quoted(api)
        ),
        TokenFormat::Dotenv => {
            format!("MONZO_ACCESS_TOKEN={access}\nMONZO_USER_ID={user}\nMONZO_API_URL={api}\n")
        }
    }
}

/// `'value'` for a POSIX shell, whatever the value holds.
fn single_quoted(value: &str) -> String {
    format!("'{}'", value.replace('\'', "'\\''"))
}

/// `monzo-auth exec -- CMD ARGS...`: runs CMD with the token in its environment and exits as it
/// did.
pub async fn exec(
    name: &ProfileName,
    min_valid: Duration,
    command: &[String],
    api: &MonzoApiArg,
    cancel: &Cancel,
) -> Result<u8, CliError> {
    let store = store()?;
    let profile = {
        let _lock = lock(&store, name, cancel).await?;
        fresh(&store, name, min_valid, cancel).await?
    };
    let (program, args) = command
        .split_first()
        .ok_or_else(|| CliError::Usage("exec: no command given (monzo-auth exec -- CMD)".into()))?;
    let mut child = std::process::Command::new(program);
    child
        .args(args)
        .env("MONZO_ACCESS_TOKEN", &profile.secrets.access_token)
        .env("MONZO_USER_ID", &profile.user_id)
        .env("MONZO_API_URL", api.for_profile(&profile)?);
    // Ctrl-C reaches the child (same process group); this process waits for it to finish.
    let status = tokio::task::spawn_blocking(move || child.status())
        .await
        .map_err(|_| CliError::Runtime("the command could not be waited for".into()))?
        .map_err(|error| CliError::Usage(format!("exec: cannot run {program}: {error}")))?;
    if let Some(code) = status.code() {
        return Ok(u8::try_from(code).unwrap_or(1));
    }
    #[cfg(unix)]
    if let Some(signal) = std::os::unix::process::ExitStatusExt::signal(&status) {
        return Ok(u8::try_from(128 + signal).unwrap_or(1));
    }
    Ok(1)
}

/// Keeps a login just received under `name` in `backend` (chosen before the login started). A
/// keyring that fails to keep it now (locked since the login started, say) does not lose it: it
/// goes to the owner-only file, with a warning that names the file and says it is plain text.
/// The token is never printed.
pub fn keep(
    name: &ProfileName,
    service: &Url,
    monzo_api_url: Option<Url>,
    token: &Token,
    backend: Backend,
    (issued_at, approved_at): (u64, Option<u64>),
) -> Result<(Backend, std::path::PathBuf), CliError> {
    let store = store()?;
    let profile = Profile {
        service: service.clone(),
        monzo_api_url,
        user_id: token.user_id.clone(),
        expires_at: issued_at.saturating_add(token.expires_in),
        backend,
        secrets: Secrets {
            access_token: token.access_token.clone(),
            refresh_token: token.refresh_token.clone(),
        },
        rejected_at: None,
        approved_at,
    };
    let _lock = store.lock(name).map_err(CliError::Profile)?;
    // A login replaced here leaves its keyring item behind if it was kept elsewhere.
    if let Ok(old) = store.facts(name)
        && old.backend != backend
    {
        let _ = store.remove(name, old.backend);
    }
    let path = store.path_of(name);
    match store.save(name, &profile) {
        Ok(()) => Ok((backend, path)),
        Err(error) if backend == Backend::Keyring => {
            let file = Profile {
                backend: Backend::File,
                ..profile
            };
            store.save(name, &file).map_err(CliError::Profile)?;
            warn(&format!(
                "the keyring could not keep the login ({error}), so it is in {} instead: a \
                 plain-text file readable by you only",
                path.display()
            ));
            Ok((Backend::File, path))
        }
        Err(error) => Err(CliError::Profile(error)),
    }
}

/// The stored facts of a profile and what Monzo says of its token.
#[derive(Serialize)]
struct Report {
    profile: String,
    user_id: Option<String>,
    service: Option<String>,
    backend: Option<Backend>,
    file: String,
    expires_at: Option<u64>,
    /// `valid`, `expired`, `evicted`, `rejected`, `unchecked`, `unreachable`, `unknown`.
    monzo: &'static str,
    approval_pending: Option<bool>,
    /// When the login was approved at Monzo, and the day 90 days on by which Monzo may ask
    /// for approval again (seconds since the epoch).
    approved_at: Option<u64>,
    reapprove_by: Option<u64>,
    problem: Option<String>,
    /// The exit code the problem maps to.
    #[serde(skip)]
    exit: u8,
}

/// `monzo-auth status`: what is stored, and whether Monzo still accepts it. Stored facts are
/// printed even when the keyring, the service or Monzo cannot be reached.
pub async fn status(names: Vec<ProfileName>, json: bool, cancel: &Cancel) -> Result<u8, CliError> {
    let store = store()?;
    let http = crate::monzo::monzo_http()?;
    let mut reports = Vec::new();
    let mut worst = 0;
    for name in &names {
        let report = report(&store, name, &http, cancel).await;
        worst = crate::error::worst(worst, report.exit);
        reports.push(report);
    }
    let mut out = String::new();
    if json {
        out = serde_json::to_string(&reports).expect("JSON") + "\n";
    } else if reports.is_empty() {
        out.push_str("No profiles: run `monzo-auth login`.\n");
    } else {
        for r in &reports {
            out.push_str(&format!("{}:\n", r.profile));
            if let Some(user) = &r.user_id {
                out.push_str(&format!("  user:     {user}\n"));
            }
            if let Some(service) = &r.service {
                out.push_str(&format!("  service:  {service}\n"));
            }
            if let Some(backend) = r.backend {
                let place = match backend {
                    Backend::Keyring => "the OS keyring (facts in the file)".to_owned(),
                    Backend::File => "file (plain text, readable by you only)".to_owned(),
                };
                out.push_str(&format!("  stored:   {place}: {}\n", r.file));
            }
            if let Some(at) = r.expires_at.filter(|_| r.monzo != "rejected") {
                let left = at.saturating_sub(now_secs());
                let when = rfc3339(at);
                out.push_str(&format!(
                    "  expires:  {when} ({})\n",
                    if left == 0 {
                        "expired; `monzo-auth token` refreshes it".to_owned()
                    } else {
                        format!("{} min left", left / 60)
                    }
                ));
            }
            out.push_str(&format!("  monzo:    {}\n", monzo_line(r)));
            if let (Some(approved), Some(by)) = (r.approved_at, r.reapprove_by) {
                out.push_str(&format!(
                    "  approved: {}; Monzo may ask you to approve again by {} (in the Monzo \
                     app, or log in again)\n",
                    rfc3339(approved),
                    rfc3339(by)
                ));
                let left = by.saturating_sub(now_secs());
                if left <= REAPPROVAL_WARNING.as_secs() {
                    out.push_str(&format!(
                        "  warning:  {} days to go: approve in the Monzo app when it asks, or \
                         log in again\n",
                        left / 86_400
                    ));
                }
            }
            if let Some(problem) = &r.problem {
                out.push_str(&format!("  problem:  {problem}\n"));
            }
        }
    }
    print!("{out}");
    Ok(worst)
}

fn monzo_line(r: &Report) -> String {
    let mut line = match r.monzo {
        "valid" => "accepts the token".to_owned(),
        "expired" => "the token has expired; `monzo-auth token` refreshes it".to_owned(),
        "evicted" => {
            "logged in elsewhere (Monzo keeps one login per user and client): run `monzo-auth \
             login` again"
                .to_owned()
        }
        "rejected" => "no longer accepts the token: run `monzo-auth login` again".to_owned(),
        "unreachable" => "not reachable from here just now".to_owned(),
        _ => "not checked".to_owned(),
    };
    if r.approval_pending == Some(true) {
        line.push_str("; access is waiting for approval in the Monzo app");
    }
    line
}

impl Report {
    /// The report of a profile that could not be read: the problem and its exit code.
    fn failed(mut self, error: ProfileError) -> Self {
        self.problem = Some(error.to_string());
        self.exit = CliError::Profile(error).exit_code();
        self
    }
}

/// The `code` of a Monzo error answer.
async fn monzo_code(answer: reqwest::Response) -> Option<String> {
    let body = answer.json::<serde_json::Value>().await.ok()?;
    body["code"].as_str().map(str::to_owned)
}

async fn report(
    store: &Store,
    name: &ProfileName,
    http: &reqwest::Client,
    cancel: &Cancel,
) -> Report {
    let mut report = Report {
        profile: name.to_string(),
        user_id: None,
        service: None,
        backend: None,
        file: store.path_of(name).display().to_string(),
        expires_at: None,
        monzo: "unchecked",
        approval_pending: None,
        approved_at: None,
        reapprove_by: None,
        problem: None,
        exit: 0,
    };
    let facts = match store.facts(name) {
        Ok(facts) => facts,
        Err(error) => return report.failed(error),
    };
    report.user_id = Some(facts.user_id.clone());
    report.service = Some(facts.service.to_string());
    report.backend = Some(facts.backend);
    report.expires_at = Some(facts.expires_at);
    report.approved_at = facts.approved_at;
    report.reapprove_by = facts
        .approved_at
        .map(|at| at.saturating_add(REAPPROVAL.as_secs()));
    if facts.rejected_at.is_some() {
        report.monzo = "rejected";
        report.exit = crate::error::EXIT_LOGIN_INVALID;
        return report;
    }
    // An expired token is refreshed (as `token` would) before it is checked.
    let profile = match lock(store, name, cancel).await {
        Ok(_lock) => fresh(store, name, Duration::ZERO, cancel).await,
        Err(error) => Err(error),
    };
    let profile = match profile {
        Ok(profile) => profile,
        Err(CliError::Profile(error)) => return report.failed(error),
        Err(error @ CliError::LoginInvalid(_)) => {
            report.monzo = "rejected";
            report.exit = error.exit_code();
            return report;
        }
        Err(error) => {
            report.monzo = "unreachable";
            report.problem = Some(error.to_string());
            report.exit = match error.exit_code() {
                crate::error::EXIT_UNAVAILABLE => crate::error::EXIT_CANNOT_CHECK,
                code => code,
            };
            return report;
        }
    };
    report.expires_at = Some(profile.expires_at);
    let api = crate::monzo::api_base(
        &profile
            .monzo_api_url
            .clone()
            .unwrap_or_else(|| Url::parse(MONZO_API).expect("a URL")),
    );
    let ask = |path: &str| {
        http.get(api.join(path).expect("a relative path"))
            .bearer_auth(&profile.secrets.access_token)
            .send()
    };
    report.monzo = match ask("ping/whoami").await {
        Err(_) => "unreachable",
        Ok(answer) => match (answer.status().as_u16(), monzo_code(answer).await) {
            (200, _) => "valid",
            (401, Some(code)) if code == "unauthorized.bad_access_token.evicted" => "evicted",
            (401, _) => "rejected",
            // Access not yet approved in the Monzo app: alive, and never marked dead.
            (403, Some(code)) if code.starts_with("forbidden.insufficient_permissions") => {
                report.approval_pending = Some(true);
                "valid"
            }
            _ => "unknown",
        },
    };
    match report.monzo {
        "evicted" | "rejected" => {
            if let Ok(_lock) = lock(store, name, cancel).await
                && let Ok(current) = store.load(name)
                // Only the token that was checked: a login saved meanwhile is not dead.
                && current.secrets.access_token == profile.secrets.access_token
            {
                mark_rejected(store, name, current);
            }
            report.exit = crate::error::EXIT_LOGIN_INVALID;
            return report;
        }
        "unreachable" | "unknown" => {
            report.exit = crate::error::EXIT_CANNOT_CHECK;
            return report;
        }
        _ => {}
    }
    if report.approval_pending.is_none()
        && let Ok(answer) = ask("accounts").await
    {
        let pending = answer.status() == 403
            && monzo_code(answer)
                .await
                .is_some_and(|code| code.starts_with("forbidden.insufficient_permissions"));
        report.approval_pending = Some(pending);
    }
    report
}

/// `monzo-auth logout`: revokes at Monzo, then forgets the profile. An access token that has
/// expired is refreshed first and the new one revoked, so that no live refresh token is left.
pub async fn logout(names: Vec<ProfileName>, cancel: &Cancel) -> Result<(), CliError> {
    let store = store()?;
    for name in &names {
        let _lock = lock(&store, name, cancel).await?;
        let facts = store.facts(name).map_err(CliError::Profile)?;
        if facts.rejected_at.is_some() {
            // Monzo already ended it: nothing left to revoke.
            store
                .remove(name, facts.backend)
                .map_err(CliError::Profile)?;
            eprintln!(
                "Forgot profile {name} ({}): Monzo had already ended that login",
                facts.user_id
            );
            continue;
        }
        let profile = fresh(&store, name, Duration::from_secs(60), cancel).await?;
        let client = crate::service::service_client(profile.service.as_str())?;
        client
            .revoke(&profile.secrets.access_token)
            .await
            .map_err(CliError::from)?;
        store
            .remove(name, profile.backend)
            .map_err(CliError::Profile)?;
        eprintln!(
            "Logged out profile {name} ({}): revoked at Monzo and forgotten here",
            profile.user_id
        );
    }
    Ok(())
}
