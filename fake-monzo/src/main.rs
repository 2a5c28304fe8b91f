//! `fake-monzo`: runs the fake as its own process.
//!
//! On start it prints one JSON line to stdout,
//! `{"auth_url":"http://127.0.0.1:A/","api_url":"http://127.0.0.1:B"}`,
//! so that whoever started it can learn the ephemeral ports; logs go to
//! stderr. It serves until Ctrl-C or SIGTERM, then shuts down gracefully.
//!
//! `fake-monzo approve [--deny] [--user USER_ID] URL` instead plays a person
//! in a browser at a (fake) Monzo login URL; see `approve.rs`.

mod approve;

use std::io::Write as _;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use fake_monzo::{ClientRegistration, FakeMonzo, FakeMonzoConfig};
use tokio::net::TcpListener;

const ENV_HELP: &str = "\
A client can also be given through the environment, which keeps its secret off \
the command line: FAKE_MONZO_CLIENT_ID, FAKE_MONZO_CLIENT_SECRET and \
FAKE_MONZO_REDIRECT_URI (all three), plus FAKE_MONZO_CLIENT_PUBLIC=1 to make it \
non-confidential (no refresh tokens).";

#[derive(Parser)]
#[command(
    name = "fake-monzo",
    version,
    about = "A local stand-in for Monzo's OAuth endpoints (not a real bank)",
    after_help = ENV_HELP,
    // The server's flags mean nothing to `approve`; refuse rather than ignore them.
    args_conflicts_with_subcommands = true
)]
struct Args {
    /// Without a subcommand, fake-monzo serves.
    #[command(subcommand)]
    command: Option<Subcommand>,

    #[command(flatten)]
    serve: ServeArgs,
}

#[derive(clap::Subcommand)]
enum Subcommand {
    /// Act as a person in a browser: open a login URL, approve (or deny) as a
    /// user, and follow the redirects through the app's callback. For tests:
    /// BROWSER="fake-monzo approve".
    Approve(approve::ApproveArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address for the auth.monzo.com side (login page).
    #[arg(long, default_value = "127.0.0.1:0")]
    auth_addr: SocketAddr,

    /// Address for the api.monzo.com side (token endpoint, API, /_fake controls).
    #[arg(long, default_value = "127.0.0.1:0")]
    api_addr: SocketAddr,

    /// A confidential client (gets refresh tokens). Repeatable.
    // Taken as plain strings and parsed in `parse_client`: clap's own parse
    // errors quote the value, which here contains a secret.
    #[arg(long = "client", value_name = "CLIENT_ID:SECRET:REDIRECT_URI")]
    clients: Vec<String>,

    /// A non-confidential client (no refresh tokens). Repeatable.
    #[arg(long = "public-client", value_name = "CLIENT_ID:SECRET:REDIRECT_URI")]
    public_clients: Vec<String>,

    /// Lifetime of access tokens, in seconds (Monzo: 6 hours).
    #[arg(long, default_value_t = 6 * 60 * 60)]
    access_token_ttl_secs: u64,

    /// Lifetime of authorization codes, in seconds.
    #[arg(long, default_value_t = 5 * 60)]
    code_ttl_secs: u64,
}

/// Splits `CLIENT_ID:SECRET:REDIRECT_URI` at the first two colons (the URI has
/// colons of its own). Errors never include the value.
fn parse_client(spec: &str, confidential: bool) -> Result<ClientRegistration, String> {
    let mut parts = spec.splitn(3, ':');
    let (Some(client_id), Some(client_secret), Some(redirect_uri)) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err("a client must be given as CLIENT_ID:SECRET:REDIRECT_URI".to_owned());
    };
    client(client_id, client_secret, redirect_uri, confidential)
}

fn client(
    client_id: &str,
    client_secret: &str,
    redirect_uri: &str,
    confidential: bool,
) -> Result<ClientRegistration, String> {
    if client_id.is_empty() || client_secret.is_empty() {
        return Err("a client needs a non-empty client id and secret".to_owned());
    }
    if url::Url::parse(redirect_uri).is_err() {
        return Err(format!(
            "the redirect URI of client {client_id} is not an absolute URL"
        ));
    }
    Ok(ClientRegistration {
        client_id: client_id.to_owned(),
        client_secret: client_secret.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        confidential,
    })
}

fn env_client() -> Result<Option<ClientRegistration>, String> {
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let Some(client_id) = var("FAKE_MONZO_CLIENT_ID") else {
        return Ok(None);
    };
    let (Some(secret), Some(redirect_uri)) = (
        var("FAKE_MONZO_CLIENT_SECRET"),
        var("FAKE_MONZO_REDIRECT_URI"),
    ) else {
        return Err(
            "FAKE_MONZO_CLIENT_ID needs FAKE_MONZO_CLIENT_SECRET and FAKE_MONZO_REDIRECT_URI"
                .to_owned(),
        );
    };
    let public = var("FAKE_MONZO_CLIENT_PUBLIC").is_some_and(|v| v == "1" || v == "true");
    client(&client_id, &secret, &redirect_uri, !public).map(Some)
}

fn config(args: &ServeArgs) -> Result<FakeMonzoConfig, String> {
    let mut clients = Vec::new();
    for spec in &args.clients {
        clients.push(parse_client(spec, true)?);
    }
    for spec in &args.public_clients {
        clients.push(parse_client(spec, false)?);
    }
    clients.extend(env_client()?);
    Ok(FakeMonzoConfig {
        clients,
        access_token_ttl: Duration::from_secs(args.access_token_ttl_secs),
        code_ttl: Duration::from_secs(args.code_ttl_secs),
        ..FakeMonzoConfig::default()
    })
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let result = match args.command {
        Some(Subcommand::Approve(approve)) => approve::run(approve).await,
        None => serve(args.serve).await,
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("fake-monzo: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colour codes only help a person at a terminal; in a captured log
        // they get in the way of searching.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    run(args).await
}

async fn run(args: ServeArgs) -> Result<(), String> {
    let config = config(&args)?;
    let client_count = config.clients.len();
    let auth_listener = TcpListener::bind(args.auth_addr)
        .await
        .map_err(|e| format!("cannot bind the auth address {}: {e}", args.auth_addr))?;
    let api_listener = TcpListener::bind(args.api_addr)
        .await
        .map_err(|e| format!("cannot bind the API address {}: {e}", args.api_addr))?;
    let running = FakeMonzo::new(config)
        .spawn(auth_listener, api_listener)
        .await
        .map_err(|e| format!("cannot start: {e}"))?;

    // Printed without the trailing slash a `Url` always has, as documented.
    let ready = serde_json::json!({
        "auth_url": running.auth_url.as_str(),
        "api_url": running.api_url.as_str().trim_end_matches('/'),
    });
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{ready}")
        .and_then(|()| stdout.flush())
        .map_err(|e| format!("cannot write to stdout: {e}"))?;
    drop(stdout);
    tracing::info!(
        auth = %running.auth_url,
        api = %running.api_url,
        clients = client_count,
        "fake-monzo serving (a stand-in, not a real bank)"
    );

    shutdown_signal().await;
    tracing::info!("fake-monzo shutting down");
    running
        .shutdown()
        .await
        .map_err(|e| format!("server error: {e}"))
}

/// Resolves on Ctrl-C, or on SIGTERM where there is such a thing.
async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_spec_splits_at_the_first_two_colons() {
        let reg = parse_client("cid:sec:http://127.0.0.1:8080/cb?x=1", true).unwrap();
        assert_eq!(reg.client_id, "cid");
        assert_eq!(reg.client_secret, "sec");
        assert_eq!(reg.redirect_uri, "http://127.0.0.1:8080/cb?x=1");
        assert!(reg.confidential);
    }

    #[test]
    fn bad_client_specs_are_refused_without_echoing_them() {
        for spec in [
            "cid",
            "cid:topsecret",
            ":topsecret:http://x/",
            "cid:topsecret:not a url",
        ] {
            let err = parse_client(spec, false).unwrap_err();
            assert!(!err.contains("topsecret"), "{err}");
        }
    }
}
