//! Assembling a running service from its configuration; shared by the local server and tests.

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use url::Url;

use crate::config::{Config, ConfigError, SecretSetting, StoreSpec};
use crate::flow::{Flow, FlowSettings, GuessLimits};
use crate::http::{self, AppState};
use crate::monzo::{MonzoApi, MonzoClient, MonzoSettings, NoMonzoApi};
use crate::secret::{ClientSecretSource, NoSecret, PlainSecret};
use crate::store::{MemoryStore, Store};

/// A KMS-encrypted secret, opened (one decrypt is tried at once, so a cold start pays for it
/// rather than the first poll; a failure is logged and retried later).
pub type OpenKms = dyn Fn(Vec<u8>) -> OpeningSecret + Send + Sync;

/// A secret being opened.
pub type OpeningSecret = Pin<Box<dyn Future<Output = Arc<dyn ClientSecretSource>> + Send>>;

/// Opens the SQLite file `STORE=sqlite:PATH` names, or says why it cannot.
pub type OpenSqlite = dyn Fn(&Path) -> Result<Arc<dyn Store>, String> + Sync;

/// Opens the DynamoDB table `STORE=dynamodb:TABLE` (or `TABLE_NAME`) names.
pub type OpenDynamoDb = dyn Fn(&str) -> Arc<dyn Store> + Sync;

/// Builds the client for Monzo's API (crate `monzo-auth-monzo-http`), or says why it cannot.
pub type OpenMonzoApi = dyn Fn(&MonzoSettings) -> Result<Arc<dyn MonzoApi>, String> + Sync;

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
}

/// Monzo for the flow: its settings, and its API when the host links it.
pub fn monzo_client(
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
pub fn open_store(
    spec: &StoreSpec,
    adapters: &Adapters<'_>,
) -> Result<Arc<dyn Store>, ConfigError> {
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
pub async fn secret_source(
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

/// The local server's whole app: every route over one store, talking to `monzo`, with
/// `return_url` as the registered callback, listening on `local_addr`.
pub fn local_service(
    config: &Config,
    store: Arc<dyn Store>,
    monzo: MonzoEndpoint,
    return_url: Url,
    local_addr: SocketAddr,
    demo: bool,
    adapters: &Adapters<'_>,
) -> Result<Router, ConfigError> {
    let client = monzo_client(
        monzo_settings(config, &monzo.client_id, monzo.auth_url, monzo.api_url),
        adapters,
    )?;
    let flow = Flow::new(
        store,
        client,
        monzo.secret,
        flow_settings(config, Some(return_url.clone())),
    );
    Ok(local_app(
        Arc::new(flow),
        demo,
        config,
        &return_url,
        local_addr,
    ))
}

/// The flow's settings from the configuration; `return_url` is the one the host settled on.
pub fn flow_settings(config: &Config, return_url: Option<Url>) -> FlowSettings {
    // PUBLIC_BASE_URL, else RETURN_URL without its last segment (an API Gateway stage stays).
    let public_base = match &config.public_base_url {
        Some(base) if base.path().ends_with('/') => Some(base.clone()),
        Some(base) => Url::parse(&format!("{base}/")).ok(),
        None => return_url.as_ref().and_then(|url| url.join(".").ok()),
    };
    FlowSettings {
        public_base,
        guess_limits: GuessLimits {
            per_address: config.guess_limit_per_address,
            global: config.guess_limit_global,
            window: config.guess_window,
        },
        return_url,
        session_ttl: config.session_ttl,
        poll_interval: config.poll_interval,
        lease: FlowSettings::lease_for(config.monzo_timeout),
        allowed_user_ids: config.allowed_user_ids.clone(),
    }
}

/// The Monzo client's settings for a client id and Monzo's two base URLs.
pub fn monzo_settings(
    config: &Config,
    client_id: &str,
    auth_url: Url,
    api_url: Url,
) -> MonzoSettings {
    MonzoSettings {
        client_id: client_id.to_owned(),
        auth_url,
        api_url,
        connect_timeout: config.monzo_timeout.min(std::time::Duration::from_secs(5)),
        total_timeout: config.monzo_timeout,
    }
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

/// Every route in one app: what the local server serves, on `local_addr`, for `return_url`.
pub fn local_app(
    flow: Arc<Flow>,
    demo: bool,
    config: &Config,
    return_url: &Url,
    local_addr: SocketAddr,
) -> Router {
    let hosts = http::AllowedHosts::new(
        std::iter::once(return_url).chain(config.public_base_url.as_ref()),
        local_addr.port(),
    );
    let mut routes = http::new_routes()
        .merge(http::device_code_routes())
        .merge(http::callback_routes())
        .merge(http::device_page_routes())
        .merge(http::token_routes())
        .merge(http::oauth_token_routes())
        .merge(http::local_routes(demo));
    if let Some(limit) = http::limit::RefreshLimit::per_second(config.refresh_limit_per_address) {
        routes = routes.layer(axum::Extension(Arc::new(limit)));
    }
    let routes = routes
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(config.trusted_proxies.clone()),
            http::local_client_addr,
        ))
        .layer(axum::middleware::from_fn_with_state(
            Arc::new(hosts),
            http::check_host,
        ));
    http::into_app(routes, flow as AppState)
}

/// Serves `app` on `listener` within the configuration's connection limits until `shutdown`
/// resolves, then lets requests in flight finish.
pub fn serve(
    listener: TcpListener,
    app: Router,
    config: &Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> impl Future<Output = std::io::Result<()>> + Send + 'static {
    crate::serve::serve(
        listener,
        app,
        crate::serve::ServerLimits::from_config(config),
        shutdown,
    )
}
