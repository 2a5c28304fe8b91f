//! `monzo-auth-server`: the whole service in one local process.
//!
//! Reads the configuration once, opens the store, binds the listener, and serves every route
//! until Ctrl-C or SIGTERM. `--demo` starts the stand-in for Monzo on a second loopback port and
//! points the service at it, so the flow can be tried with no Monzo account.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser;
use shared::app;
use shared::config::{Config, Mode};
use tokio::net::TcpListener;
use url::Url;

/// Gets Monzo OAuth tokens for desktop and command-line apps.
///
/// Configuration comes from the environment (MONZO_CLIENT_ID, MONZO_CLIENT_SECRET, RETURN_URL,
/// STORE, LISTEN_ADDR, ...); see the README for the full table.
#[derive(Parser)]
#[command(name = "monzo-auth-server", version)]
struct Args {
    /// Run against a built-in stand-in for Monzo instead of the real one (no account needed).
    #[arg(long)]
    demo: bool,
}

/// The OAuth client the demo registers with its stand-in.
#[cfg(feature = "demo")]
const DEMO_CLIENT_ID: &str = "oauth2client_demo";

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    // A log line per request: formatted on the worker, written by a thread of its own, which
    // writes whatever has queued up in one go (a write per line cost a quarter of a pending
    // poll's CPU). Never lossy: a full queue makes the worker wait.
    let (writer, flush) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .thread_name("log-writer")
        .finish(std::io::BufWriter::new(std::io::stderr()));
    app::init_logging(app::Logs::Local(app::BoxMakeWriter::new(writer)));
    let outcome = run(args).await;
    // Every queued line is out before the last one.
    drop(flush);
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // One line: the context names the setting, the chain says why.
            eprintln!("monzo-auth-server: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The demo's stand-in for Monzo (kept running with the server) and how to reach it.
struct StandIn {
    endpoint: app::MonzoEndpoint,
    /// Keeps the stand-in serving while it is held.
    running: Box<dyn std::any::Any + Send>,
}

async fn run(args: Args) -> anyhow::Result<()> {
    let mode = if args.demo { Mode::Demo } else { Mode::Local };
    let config = Config::from_env(mode)?;
    let shutdown = shutdown_signal().context("cannot install the signal handlers")?;
    // The connection cap follows the open-file limit: take all the system allows.
    let descriptors = monzo_auth_server::connections::raise_descriptor_limit();
    tracing::debug!(descriptors, "open-file limit");
    // SQLite always; DynamoDB and KMS only in a build with the `aws` feature, and only a
    // configuration that uses them makes the server load the AWS configuration.
    #[cfg(feature = "aws")]
    let aws = if app::needs_aws(&config) {
        Some(
            monzo_auth_dynamodb::load_aws_config(monzo_auth_dynamodb::Credentials::DefaultChain)
                .await,
        )
    } else {
        None
    };
    #[cfg(feature = "aws")]
    let (dynamodb, kms) = (
        aws.as_ref().map(monzo_auth_dynamodb::opener),
        aws.as_ref().map(monzo_auth_kms::opener),
    );
    #[cfg_attr(feature = "aws", allow(clippy::needless_update))]
    let adapters = app::Adapters {
        sqlite: Some(&monzo_auth_sqlite::open_store),
        monzo: Some(&monzo_auth_monzo_http::open_api),
        refresh_limit: Some(&monzo_auth_server::limit::open),
        pages: Some(&monzo_auth_pages::PAGES),
        #[cfg(feature = "aws")]
        dynamodb: dynamodb.as_ref().map(|open| open as _),
        #[cfg(feature = "aws")]
        kms: kms.as_ref().map(|open| open as _),
        ..Default::default()
    };
    let listener = TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("LISTEN_ADDR: cannot listen on {}", config.listen_addr))?;
    let local_addr = listener.local_addr()?;
    let shape = app::Shape::Local {
        local_addr,
        demo: args.demo,
    };
    let urls = app::url_resolver(&config, shape)
        .resolve(None)
        .context("RETURN_URL: no public base URL can be worked out from it")?;
    let return_url = urls.callback().clone();

    // The demo's stand-in plays Monzo; otherwise the client is as configured.
    let stand_in = if args.demo {
        Some(start_stand_in(&return_url).await?)
    } else {
        None
    };
    let stand_in_urls = stand_in
        .as_ref()
        .map(|s| (s.endpoint.auth_url.clone(), s.endpoint.api_url.clone()));
    let mut host = app::Host::new(shape, adapters);
    let _stand_in = stand_in.map(|side| {
        host.monzo = Some(side.endpoint);
        side.running
    });
    let app = app::build(&config, host).await?;

    let base = urls.base();
    // The first line names the address in both modes (tests and scripts read it).
    if let Some((stand_in_url, stand_in_api)) = stand_in_urls {
        let api = stand_in_api.as_str().trim_end_matches('/');
        println!(
            "monzo-auth demo: listening on {local_addr}; a built-in stand-in plays Monzo at {stand_in_url} (no real bank involved).\n\
             The stand-in's API (instead of https://api.monzo.com): {api}\n\
             Open {base} in a browser to walk through a login, or try the CLI (`cargo install --locked --path client` puts monzo-auth on your PATH):\n  \
             monzo-auth login --service {base} && monzo-auth exec -- sh -c 'curl -s -H \"Authorization: Bearer $MONZO_ACCESS_TOKEN\" \"$MONZO_API_URL/ping/whoami\"'\n\
             Ctrl-C stops."
        );
    } else {
        println!(
            "monzo-auth listening on {local_addr}; register {return_url} as the redirect URL of your Monzo client."
        );
    }
    tracing::info!(addr = %local_addr, demo = args.demo, "serving");
    monzo_auth_server::serve(listener, app, &config, shutdown)
        .await
        .context("the server stopped")?;
    tracing::info!("shut down");
    Ok(())
}

#[cfg(feature = "demo")]
async fn start_stand_in(return_url: &Url) -> anyhow::Result<StandIn> {
    use std::sync::Arc;

    use monzo_auth_domain::secret::PlainSecret;
    use monzo_auth_domain::session;

    let secret = session::random_token::<32>();
    let mut stand_in_config = fake_monzo::FakeMonzoConfig::default();
    stand_in_config
        .clients
        .push(fake_monzo::ClientRegistration {
            client_id: DEMO_CLIENT_ID.into(),
            client_secret: secret.clone(),
            redirect_uri: return_url.to_string(),
            confidential: true,
        });
    let running = fake_monzo::FakeMonzo::start_on_loopback(stand_in_config)
        .await
        .context("cannot start the demo's stand-in for Monzo")?;
    Ok(StandIn {
        endpoint: app::MonzoEndpoint {
            client_id: DEMO_CLIENT_ID.into(),
            secret: Arc::new(PlainSecret::new(secret.into())),
            auth_url: running.auth_url.clone(),
            api_url: running.api_url.clone(),
        },
        running: Box::new(running),
    })
}

/// A build without the stand-in (`--no-default-features`) has no demo mode.
#[cfg(not(feature = "demo"))]
async fn start_stand_in(_: &Url) -> anyhow::Result<StandIn> {
    anyhow::bail!("--demo: this build has no stand-in for Monzo (the server's feature `demo`)")
}

/// Resolves on Ctrl-C or SIGTERM. The handlers are installed when this is called, not when the
/// future is first polled, so a signal sent right after the banner is not lost.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {},
                _ = terminate.recv() => {},
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}
