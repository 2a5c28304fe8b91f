//! What monzo-auth's three Lambda functions share: tracing, and building a function's app once
//! per cold start from its environment.
//!
//! A function never crashes on a bad setting (API Gateway would answer a bare 502): it logs one
//! line naming the setting and answers every request 503 `temporarily_unavailable` in the
//! contract's JSON shape. The token function also answers 503 while its KMS-encrypted secret
//! cannot be decrypted, and recovers on its own once KMS does.

use std::sync::Arc;

use aws_config::SdkConfig;
use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use lambda_http::request::RequestContext;
use shared::app::{self, OpenKms, OpenMonzoApi};
use shared::config::{Config, ConfigError, LambdaFunction, Mode};
use shared::flow::ClientAddr;
use shared::flow::Flow;
use shared::http::error::ApiError;
use shared::http::{self, RequestBase};
use shared::secret::ClientSecretSource;
use url::Url;

pub use shared::config::LambdaFunction as Function;

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
    pub fn filter(&self) -> tracing_subscriber::EnvFilter {
        let others = self.level.min(tracing::Level::DEBUG);
        let directives: Vec<String> = std::iter::once(others.to_string())
            .chain(
                OWN_CRATES
                    .iter()
                    .map(|krate| format!("{krate}={}", self.level)),
            )
            .collect();
        tracing_subscriber::EnvFilter::builder().parse_lossy(directives.join(","))
    }
}

/// Logs for CloudWatch: JSON lines when Lambda's log format is JSON (Lambda then filters by their
/// `level`), else plain text without colours or timestamps (CloudWatch adds its own).
pub fn init_tracing() {
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

/// A function's whole life: tracing, the AWS configuration from the standard variables, the
/// app, and the runtime loop. The token function passes what only it links: `kms` opens
/// `MONZO_CLIENT_SECRET_KMS` (`monzo_auth_kms::opener`), `monzo` is Monzo's API
/// (`monzo_auth_monzo_http::open_api`); the others pass `None` (see `run_without_secret`).
pub async fn run<K>(
    function: Function,
    kms: Option<fn(&SdkConfig) -> K>,
    monzo: Option<&OpenMonzoApi>,
) -> Result<(), lambda_http::Error>
where
    K: Fn(Vec<u8>) -> app::OpeningSecret + Send + Sync + 'static,
{
    init_tracing();
    let aws = monzo_auth_dynamodb::load_aws_config().await;
    let kms = kms.map(|opener| opener(&aws));
    let adapters = app::Adapters {
        kms: kms.as_ref().map(|kms| kms as &OpenKms),
        monzo,
        ..Default::default()
    };
    let app = function_app(function, |name| std::env::var(name).ok(), &aws, adapters).await;
    lambda_http::run(app).await
}

/// The functions that hold no client secret and never call Monzo's API (`new`, `callback`).
pub async fn run_without_secret(function: Function) -> Result<(), lambda_http::Error> {
    type NoKms = fn(Vec<u8>) -> app::OpeningSecret;
    run::<NoKms>(function, None, None).await
}

/// Builds `function`'s app from settings read through `lookup`, its sessions in DynamoDB through
/// `aws`, with `adapters`' KMS and Monzo API where the function links them. Never fails: a bad
/// setting becomes one log line and an app that answers 503.
pub async fn function_app(
    function: Function,
    lookup: impl Fn(&str) -> Option<String>,
    aws: &SdkConfig,
    adapters: app::Adapters<'_>,
) -> Router {
    match try_function_app(function, lookup, aws, adapters).await {
        Ok(app) => app,
        Err(err) => {
            tracing::error!("misconfigured, answering 503 to every request: {err}");
            unavailable_app()
        }
    }
}

async fn try_function_app(
    function: Function,
    lookup: impl Fn(&str) -> Option<String>,
    aws: &SdkConfig,
    adapters: app::Adapters<'_>,
) -> Result<Router, ConfigError> {
    let config = Config::from_lookup(Mode::Lambda(function), lookup)?;
    let dynamodb = monzo_auth_dynamodb::opener(aws);
    let adapters = app::Adapters {
        dynamodb: Some(&dynamodb),
        ..adapters
    };
    let store = app::open_store(&config.store, &adapters)?;
    let secret = app::secret_source(config.client_secret.as_ref(), &adapters).await?;
    let client = app::monzo_client(
        app::monzo_settings(
            &config,
            config.client_id.as_deref().unwrap_or_default(),
            config.monzo_auth_url.clone(),
            config.monzo_api_url.clone(),
        ),
        &adapters,
    )?;
    let flow = Arc::new(Flow::new(
        store,
        client,
        Arc::clone(&secret),
        app::flow_settings(&config, config.return_url.clone()),
    ));
    let routes = match function {
        LambdaFunction::New => http::new_routes().merge(http::device_code_routes()),
        LambdaFunction::Callback => http::callback_routes().merge(http::device_page_routes()),
        LambdaFunction::Token => http::token_routes()
            .merge(http::oauth_token_routes())
            .layer(middleware::from_fn(move |req: Request, next: Next| {
                let secret = Arc::clone(&secret);
                async move { require_secret(secret, req, next).await }
            })),
    };
    let routes = routes.layer(middleware::from_fn(from_request_context));
    Ok(http::into_app(routes, flow))
}

/// Answers every request 503 in the contract's JSON shape.
pub fn unavailable_app() -> Router {
    Router::new()
        .fallback(|| async { ApiError::temporarily_unavailable() })
        .layer(http::log::access_log())
}

/// The token function serves nothing without its secret: 503 until KMS decrypts it.
async fn require_secret(secret: Arc<dyn ClientSecretSource>, req: Request, next: Next) -> Response {
    match secret.client_secret().await {
        Ok(_) => next.run(req).await,
        Err(_) => ApiError::temporarily_unavailable().into_response(),
    }
}

/// What API Gateway says about the request: the public base URL it came in on (used when
/// `PUBLIC_BASE_URL`/`RETURN_URL` are not set, so one deploy suffices) and the client's source
/// address (wrong user codes are counted per address).
async fn from_request_context(mut req: Request, next: Next) -> Response {
    let context = req.extensions().get::<RequestContext>().cloned();
    if let Some(context) = context {
        if let Some(base) = derive_base(&context) {
            req.extensions_mut().insert(RequestBase(base));
        }
        if let Some(addr) = source_ip(&context) {
            req.extensions_mut().insert(ClientAddr(addr));
        }
    }
    next.run(req).await
}

/// `https://{domainName}/{stage}/`; the stage is left out for HTTP APIs' `$default` stage,
/// which has no path segment (and behind a custom domain, whose mapping hides the stage).
pub fn derive_base(context: &RequestContext) -> Option<Url> {
    let (domain, stage) = match context {
        RequestContext::ApiGatewayV1(c) => (c.domain_name.as_deref()?, c.stage.as_deref()),
        RequestContext::ApiGatewayV2(c) => (c.domain_name.as_deref()?, c.stage.as_deref()),
        _ => return None,
    };
    let is_host = |text: &str| {
        !text.is_empty()
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:".contains(&b))
    };
    if !is_host(domain) {
        return None;
    }
    let path = match stage {
        None | Some("$default") => "/".to_owned(),
        Some(stage)
            if stage
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b)) =>
        {
            format!("/{stage}/")
        }
        Some(_) => return None,
    };
    Url::parse(&format!("https://{domain}{path}")).ok()
}

/// The caller's address as API Gateway saw it.
fn source_ip(context: &RequestContext) -> Option<std::net::IpAddr> {
    match context {
        RequestContext::ApiGatewayV1(c) => c.identity.source_ip.as_deref()?.parse().ok(),
        RequestContext::ApiGatewayV2(c) => c.http.source_ip.as_deref()?.parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context_of(event: &str) -> RequestContext {
        let request = lambda_http::request::from_str(event).expect("event");
        request
            .extensions()
            .get::<RequestContext>()
            .cloned()
            .expect("context")
    }

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

    #[test]
    fn derives_the_base_url_and_address_from_a_rest_api_stage() {
        let event = r#"{"resource":"/new","path":"/new","httpMethod":"POST","headers":{"Host":"abc123.execute-api.eu-west-2.amazonaws.com"},
            "requestContext":{"resourcePath":"/new","httpMethod":"POST","stage":"Prod","domainName":"abc123.execute-api.eu-west-2.amazonaws.com","path":"/Prod/new","identity":{"sourceIp":"192.0.2.1"}},
            "body":null,"isBase64Encoded":false}"#;
        let context = context_of(event);
        assert_eq!(
            derive_base(&context).unwrap().as_str(),
            "https://abc123.execute-api.eu-west-2.amazonaws.com/Prod/"
        );
        assert_eq!(source_ip(&context), Some("192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn leaves_out_the_default_stage_of_an_http_api() {
        let event = r#"{"version":"2.0","routeKey":"POST /new","rawPath":"/new","rawQueryString":"","headers":{"host":"xyz.execute-api.eu-west-2.amazonaws.com"},
            "requestContext":{"domainName":"xyz.execute-api.eu-west-2.amazonaws.com","stage":"$default","http":{"method":"POST","path":"/new","protocol":"HTTP/1.1","sourceIp":"192.0.2.1","userAgent":"t"},"requestId":"r","routeKey":"POST /new","time":"29/Nov/2026:10:00:00 +0000","timeEpoch":1800000000000,"accountId":"123456789012","apiId":"xyz"},
            "isBase64Encoded":false}"#;
        let context = context_of(event);
        assert_eq!(
            derive_base(&context).unwrap().as_str(),
            "https://xyz.execute-api.eu-west-2.amazonaws.com/"
        );
        assert_eq!(source_ip(&context), Some("192.0.2.1".parse().unwrap()));
    }
}
