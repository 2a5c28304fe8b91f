//! The composition root: assembling the service from its configuration and the adapters a host
//! links ([`build`]), for the local server, the Lambda functions and the tests alike.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::Router;
use tracing_subscriber::EnvFilter;
pub use tracing_subscriber::fmt::writer::BoxMakeWriter;
use url::Url;

use crate::config::{Config, ConfigError, LambdaFunction, SecretSetting, StoreSpec};
use crate::http;
use monzo_auth_domain::clock::Clock;
use monzo_auth_domain::flow::{Flow, FlowSettings, GuessLimits};
use monzo_auth_domain::monzo::{MonzoApi, MonzoClient, MonzoSettings, NoMonzoApi};
use monzo_auth_domain::secret::{ClientSecretSource, NoSecret, OpeningSecret, PlainSecret};
use monzo_auth_domain::store::{MemoryStore, Store};
use monzo_auth_domain::urls::UrlResolver;

/// A KMS-encrypted secret, opened (one decrypt is tried at once, so a cold start pays for it
/// rather than the first poll; a failure is logged and retried later).
pub type OpenKms = dyn Fn(Vec<u8>) -> OpeningSecret + Send + Sync;

/// Opens the SQLite file `STORE=sqlite:PATH` names, or says why it cannot.
pub type OpenSqlite = dyn Fn(&Path) -> Result<Arc<dyn Store>, String> + Sync;

/// Opens the DynamoDB table `STORE=dynamodb:TABLE` (or `TABLE_NAME`) names.
pub type OpenDynamoDb = dyn Fn(&str) -> Arc<dyn Store> + Sync;

/// Builds the client for Monzo's API (crate `monzo-auth-monzo-http`), or says why it cannot.
pub type OpenMonzoApi = dyn Fn(&MonzoSettings) -> Result<Arc<dyn MonzoApi>, String> + Sync;

/// What a browser sees (crate `monzo-auth-pages`, linked by the `callback` function and the local
/// server): each a set of routes, and the page for a browser at an unknown route.
pub struct Pages {
    /// `/callback` and the pages it redirects to.
    pub callback: fn() -> Router<http::AppState>,
    /// `/device` and `/device/confirm`.
    pub device: fn() -> Router<http::AppState>,
    /// The local server's landing page, `GET /` (the demo's when asked).
    pub landing: fn(bool) -> Router<http::AppState>,
    pub not_found: fn() -> axum::response::Response,
}

/// The limit `REFRESH_LIMIT_PER_ADDRESS` sets (`None` for 0).
pub type OpenRefreshLimit = dyn Fn(u32) -> Option<Arc<dyn http::RefreshLimiter>> + Sync;

/// The adapters a host links (each its own crate, so a binary carries only those it uses). A
/// setting whose adapter the host left out is refused, naming the variable.
#[derive(Default)]
pub struct Adapters<'a> {
    /// `STORE=sqlite:PATH`.
    pub sqlite: Option<&'a OpenSqlite>,
    /// `STORE=dynamodb:TABLE` (and `TABLE_NAME` on Lambda).
    pub dynamodb: Option<&'a OpenDynamoDb>,
    /// `MONZO_CLIENT_SECRET_KMS`.
    pub kms: Option<&'a OpenKms>,
    /// Monzo's API, where codes are exchanged (without it every call to Monzo fails).
    pub monzo: Option<&'a OpenMonzoApi>,
    /// The pages: needed by the shapes that serve them (the local server, `callback`).
    pub pages: Option<&'a Pages>,
    /// The local server's limit on refreshes and revocations per client address
    /// (`REFRESH_LIMIT_PER_ADDRESS`); without it there is none.
    pub refresh_limit: Option<&'a OpenRefreshLimit>,
}

/// Monzo for the flow: its settings, and its API when the host links it.
fn monzo_client(
    settings: MonzoSettings,
    adapters: &Adapters<'_>,
) -> Result<MonzoClient, ConfigError> {
    let api = match adapters.monzo {
        Some(open) => open(&settings).map_err(|problem| ConfigError {
            variable: "MONZO_API_URL",
            problem: format!("cannot build an HTTP client for it: {problem}"),
        })?,
        None => Arc::new(NoMonzoApi),
    };
    Ok(MonzoClient::new(settings, api))
}

/// Whether this configuration talks to AWS (a DynamoDB store or a KMS-encrypted secret), so the
/// caller knows to load the SDK's configuration.
pub fn needs_aws(config: &Config) -> bool {
    matches!(config.store, StoreSpec::DynamoDb { .. })
        || matches!(config.client_secret, Some(SecretSetting::Kms(_)))
}

fn not_linked(variable: &'static str, what: &str) -> ConfigError {
    ConfigError {
        variable,
        problem: format!("{what} is not built into this program"),
    }
}

/// Opens the store `STORE` (or, on Lambda, `TABLE_NAME`) names.
fn open_store(spec: &StoreSpec, adapters: &Adapters<'_>) -> Result<Arc<dyn Store>, ConfigError> {
    match spec {
        StoreSpec::Memory => Ok(Arc::new(MemoryStore::new())),
        StoreSpec::Sqlite(path) => {
            let open = adapters
                .sqlite
                .ok_or_else(|| not_linked("STORE", "the SQLite store"))?;
            open(path).map_err(|problem| ConfigError {
                variable: "STORE",
                problem: format!(
                    "cannot open the SQLite database {}: {problem}",
                    path.display()
                ),
            })
        }
        StoreSpec::DynamoDb { table } => {
            let open = adapters
                .dynamodb
                .ok_or_else(|| not_linked("STORE", "the DynamoDB store"))?;
            Ok(open(table))
        }
    }
}

/// The client secret's source for a setting: as given, or KMS ciphertext to decrypt. `None` (the
/// functions that never exchange codes) refuses.
async fn secret_source(
    setting: Option<&SecretSetting>,
    adapters: &Adapters<'_>,
) -> Result<Arc<dyn ClientSecretSource>, ConfigError> {
    match setting {
        None => Ok(Arc::new(NoSecret)),
        Some(SecretSetting::Plain(secret)) => Ok(Arc::new(PlainSecret::new(secret.clone()))),
        Some(SecretSetting::Kms(ciphertext)) => {
            let open = adapters
                .kms
                .ok_or_else(|| not_linked("MONZO_CLIENT_SECRET_KMS", "KMS decryption"))?;
            Ok(open(ciphertext.clone()).await)
        }
    }
}

/// Who the service is to Monzo, and where Monzo is (the real one, or the demo's stand-in).
pub struct MonzoEndpoint {
    pub client_id: String,
    pub secret: Arc<dyn ClientSecretSource>,
    pub auth_url: Url,
    pub api_url: Url,
}

/// Which app to build.
#[derive(Clone, Copy, Debug)]
pub enum Shape {
    /// The local server (and the tests' in-process service): every route, for a listener on
    /// `local_addr`.
    Local { local_addr: SocketAddr, demo: bool },
    /// One Lambda function's routes.
    Lambda(LambdaFunction),
}

/// What the host hands the composition root besides the configuration.
pub struct Host<'a> {
    pub shape: Shape,
    /// The adapters the host links.
    pub adapters: Adapters<'a>,
    /// Where Monzo is and who the service is to it; `None`: as configured (`MONZO_CLIENT_ID`,
    /// the secret setting, `MONZO_AUTH_URL`, `MONZO_API_URL`).
    pub monzo: Option<MonzoEndpoint>,
    /// A store the host opened itself (tests); `None`: the one `STORE` names.
    pub store: Option<Arc<dyn Store>>,
    /// Where time comes from ([`monzo_auth_domain::clock::SystemClock`] in service).
    pub clock: Arc<dyn Clock>,
}

impl<'a> Host<'a> {
    /// A host that takes everything from the configuration, on the system clock.
    pub fn new(shape: Shape, adapters: Adapters<'a>) -> Self {
        Self {
            shape,
            adapters,
            monzo: None,
            store: None,
            clock: Arc::new(monzo_auth_domain::clock::SystemClock),
        }
    }
}

/// The composition root: the whole app for a configuration and a host, for the local server,
/// each Lambda function and the tests alike.
pub async fn build(config: &Config, host: Host<'_>) -> Result<Router, ConfigError> {
    let adapters = &host.adapters;
    let store = match host.store {
        Some(store) => store,
        None => open_store(&config.store, adapters)?,
    };
    let monzo = match host.monzo {
        Some(monzo) => monzo,
        None => MonzoEndpoint {
            client_id: config.client_id.clone().unwrap_or_default(),
            secret: secret_source(config.client_secret.as_ref(), adapters).await?,
            auth_url: config.monzo_auth_url.clone(),
            api_url: config.monzo_api_url.clone(),
        },
    };
    let client = monzo_client(
        MonzoSettings {
            client_id: monzo.client_id,
            auth_url: monzo.auth_url,
            api_url: monzo.api_url,
            connect_timeout: config.monzo_timeout.min(std::time::Duration::from_secs(5)),
            total_timeout: config.monzo_timeout,
        },
        adapters,
    )?;
    let urls = url_resolver(config, host.shape);
    let settings = FlowSettings {
        urls: urls.clone(),
        guess_limits: GuessLimits {
            per_address: config.guess_limit_per_address,
            per_network: config.guess_limit_per_network,
            global: config.guess_limit_global,
            window: config.guess_window,
        },
        session_ttl: config.session_ttl,
        poll_interval: config.poll_interval,
        lease: FlowSettings::lease_for(config.monzo_timeout),
        allowed_user_ids: config.allowed_user_ids.clone(),
    };
    let secret = Arc::clone(&monzo.secret);
    let flow = Arc::new(Flow::new(store, client, monzo.secret, host.clock, settings));
    // A build matter, not a setting: the host that serves pages links them.
    let pages = || {
        adapters.pages.ok_or(ConfigError {
            variable: "the pages",
            problem: "not built into this program (crate monzo-auth-pages)".into(),
        })
    };
    let (routes, not_found_page) = match host.shape {
        Shape::Local { local_addr, demo } => {
            let pages = pages()?;
            (
                local_routes(config, adapters, pages, &urls, local_addr, demo),
                Some(pages.not_found),
            )
        }
        Shape::Lambda(LambdaFunction::New) => {
            (http::new_routes().merge(http::device_code_routes()), None)
        }
        Shape::Lambda(LambdaFunction::Callback) => {
            let pages = pages()?;
            (
                (pages.callback)().merge((pages.device)()),
                Some(pages.not_found),
            )
        }
        Shape::Lambda(LambdaFunction::Token) => (
            http::token_routes()
                .merge(http::oauth_token_routes())
                .layer(axum::middleware::from_fn_with_state(
                    secret,
                    http::require_secret,
                )),
            None,
        ),
    };
    Ok(http::into_app(routes, flow, not_found_page))
}

/// The service's public URLs for a shape: as configured, the local server's defaulting
/// `RETURN_URL` to its listener ([`local_return_url`]), a Lambda function's deriving what is not
/// configured per request.
pub fn url_resolver(config: &Config, shape: Shape) -> UrlResolver {
    let return_url = match shape {
        Shape::Local { local_addr, .. } => Some(
            config
                .return_url
                .clone()
                .unwrap_or_else(|| local_return_url(local_addr)),
        ),
        Shape::Lambda(_) => config.return_url.clone(),
    };
    UrlResolver::new(return_url, config.public_base_url.clone())
}

/// The default return URL for a local listener: `http://{addr}/callback`, with an unspecified
/// address (0.0.0.0, ::) replaced by loopback so the URL can be opened.
pub fn local_return_url(addr: SocketAddr) -> Url {
    let mut addr = addr;
    if addr.ip().is_unspecified() {
        addr.set_ip(if addr.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    Url::parse(&format!("http://{addr}/callback")).expect("a socket address makes a valid URL")
}

/// Every route: what the local server serves, on `local_addr`.
fn local_routes(
    config: &Config,
    adapters: &Adapters<'_>,
    pages: &Pages,
    urls: &UrlResolver,
    local_addr: SocketAddr,
    demo: bool,
) -> Router<http::AppState> {
    let hosts = http::AllowedHosts::new(urls.configured(), local_addr.port());
    let mut routes = http::new_routes()
        .merge(http::device_code_routes())
        .merge((pages.callback)())
        .merge((pages.device)())
        .merge(http::token_routes())
        .merge(http::oauth_token_routes())
        .merge(http::local_routes((pages.landing)(demo)));
    if let Some(limit) = adapters
        .refresh_limit
        .and_then(|open| open(config.refresh_limit_per_address))
    {
        routes = routes.layer(axum::Extension(limit));
    }
    routes
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(config.trusted_proxies.clone()),
            http::local_client_addr,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(hosts),
            http::check_host,
        ))
}

/// The crates whose logs follow the asked level all the way to TRACE; every other crate (the
/// runtime, hyper, the AWS SDK: a TRACE runtime log can carry a request's payload) stops at DEBUG.
const OWN_CRATES: &[&str] = &[
    "shared",
    "lambda_common",
    "monzo_auth",
    "monzo_auth_new",
    "monzo_auth_callback",
    "monzo_auth_token",
];

/// How a function logs, from what Lambda sets from the template's `LoggingConfig`:
/// `AWS_LAMBDA_LOG_FORMAT` (`JSON` or `Text`) and `AWS_LAMBDA_LOG_LEVEL` (`TRACE` ... `FATAL`,
/// only with JSON; INFO when unset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    pub json: bool,
    pub level: tracing::Level,
}

impl LogSettings {
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let json = lookup("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json"));
        let level = match lookup("AWS_LAMBDA_LOG_LEVEL")
            .unwrap_or_default()
            .to_ascii_uppercase()
            .as_str()
        {
            "TRACE" => tracing::Level::TRACE,
            "DEBUG" => tracing::Level::DEBUG,
            "WARN" => tracing::Level::WARN,
            "ERROR" | "FATAL" => tracing::Level::ERROR,
            _ => tracing::Level::INFO,
        };
        Self { json, level }
    }

    /// The filter: the asked level for this project's crates, at most DEBUG for the others.
    pub fn filter(&self) -> EnvFilter {
        let others = self.level.min(tracing::Level::DEBUG);
        let directives: Vec<String> = std::iter::once(others.to_string())
            .chain(
                OWN_CRATES
                    .iter()
                    .map(|krate| format!("{krate}={}", self.level)),
            )
            .collect();
        EnvFilter::builder().parse_lossy(directives.join(","))
    }
}

/// Where the logs go, set up once at start.
pub enum Logs {
    /// The local server: lines for stderr through `writer` (the server hands them to a thread
    /// of their own, see its `main`), filtered by `RUST_LOG` (INFO by default), colours when
    /// stderr is a terminal.
    Local(BoxMakeWriter),
    /// A Lambda function, for CloudWatch: JSON lines when Lambda's log format is JSON (Lambda
    /// then filters by their `level`), else plain text without colours or timestamps
    /// (CloudWatch adds its own); the level as [`LogSettings`] reads it.
    Lambda,
}

/// Sets up logging for the whole process.
pub fn init_logging(logs: Logs) {
    match logs {
        Logs::Local(writer) => tracing_subscriber::fmt()
            .with_env_filter(
                EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
            )
            .with_writer(writer)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
        Logs::Lambda => {
            let settings = LogSettings::from_lookup(|name| std::env::var(name).ok());
            let builder = tracing_subscriber::fmt()
                .with_env_filter(settings.filter())
                .with_ansi(false);
            if settings.json {
                builder
                    .json()
                    .flatten_event(true)
                    .with_current_span(false)
                    .init();
            } else {
                builder.without_time().init();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(format: Option<&str>, level: Option<&str>) -> LogSettings {
        LogSettings::from_lookup(|name| match name {
            "AWS_LAMBDA_LOG_FORMAT" => format.map(str::to_owned),
            "AWS_LAMBDA_LOG_LEVEL" => level.map(str::to_owned),
            _ => None,
        })
    }

    #[test]
    fn log_settings_follow_lambdas_logging_config() {
        assert_eq!(
            settings(None, None),
            LogSettings {
                json: false,
                level: tracing::Level::INFO
            }
        );
        let json_trace = settings(Some("JSON"), Some("TRACE"));
        assert!(json_trace.json);
        assert_eq!(json_trace.level, tracing::Level::TRACE);
        assert_eq!(
            settings(Some("JSON"), Some("FATAL")).level,
            tracing::Level::ERROR
        );
        assert_eq!(
            settings(Some("Text"), Some("warn")).level,
            tracing::Level::WARN
        );
    }

    #[test]
    fn other_crates_stop_at_debug_whatever_level_is_asked() {
        let filter = settings(Some("JSON"), Some("TRACE")).filter().to_string();
        assert!(filter.contains("shared=trace"), "{filter}");
        assert!(filter.contains("monzo_auth_token=trace"), "{filter}");
        assert!(filter.split(',').any(|d| d == "debug"), "{filter}");
        let quiet = settings(Some("JSON"), Some("ERROR")).filter().to_string();
        assert!(quiet.split(',').any(|d| d == "error"), "{quiet}");
    }
}
