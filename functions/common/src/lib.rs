//! What monzo-auth's three Lambda functions share: tracing, and building a function's app once
//! per cold start from its environment.
//!
//! A function never crashes on a bad setting (API Gateway would answer a bare 502): it logs one
//! line naming the setting and answers every request 503 `temporarily_unavailable` in the
//! contract's JSON shape. The token function also answers 503 while its KMS-encrypted secret
//! cannot be decrypted, and recovers on its own once KMS does.

use aws_config::SdkConfig;
use axum::Router;
use axum::extract::Request;
use axum::middleware::{self, Next};
use axum::response::Response;
use lambda_http::request::RequestContext;
use monzo_auth_domain::flow::ClientAddr;
use monzo_auth_domain::urls::RequestBase;
use shared::app::{self, OpenKms, OpenMonzoApi, Pages};
use shared::config::{Config, Mode};
use shared::http::{self, error::ApiError};
use url::Url;

pub use shared::config::LambdaFunction as Function;

/// A function's whole life: logging, the AWS configuration from the standard variables (with the
/// SDK timeouts of `monzo_auth_dynamodb::load_aws_config`), the app, and the runtime loop. The
/// token function passes what only it links: `kms` opens `MONZO_CLIENT_SECRET_KMS`
/// (`monzo_auth_kms::opener`), `monzo` is Monzo's API (`monzo_auth_monzo_http::open_api`); the
/// others pass `None` (see `run_without_secret`). The callback function passes `pages`
/// (`monzo_auth_pages::PAGES`).
pub async fn run<K>(
    function: Function,
    kms: Option<fn(&SdkConfig) -> K>,
    monzo: Option<&OpenMonzoApi>,
    pages: Option<&Pages>,
) -> Result<(), lambda_http::Error>
where
    K: Fn(Vec<u8>) -> monzo_auth_domain::secret::OpeningSecret + Send + Sync + 'static,
{
    app::init_logging(app::Logs::Lambda);
    // Lambda gives a function its role's credentials in the standard variables.
    let aws =
        monzo_auth_dynamodb::load_aws_config(monzo_auth_dynamodb::Credentials::Environment).await;
    let kms = kms.map(|opener| opener(&aws));
    let adapters = app::Adapters {
        kms: kms.as_ref().map(|kms| kms as &OpenKms),
        monzo,
        pages,
        ..Default::default()
    };
    let app = function_app(function, |name| std::env::var(name).ok(), &aws, adapters).await;
    lambda_http::run(app).await
}

/// The functions that hold no client secret and never call Monzo's API (`new`, `callback`, the
/// latter with its `pages`).
pub async fn run_without_secret(
    function: Function,
    pages: Option<&Pages>,
) -> Result<(), lambda_http::Error> {
    type NoKms = fn(Vec<u8>) -> monzo_auth_domain::secret::OpeningSecret;
    run::<NoKms>(function, None, None, pages).await
}

/// Builds `function`'s app (through the composition root, `shared::app::build`) from settings
/// read through `lookup`, its sessions in DynamoDB through `aws`, with `adapters`' KMS and Monzo
/// API where the function links them. Never fails: a bad setting becomes one log line and an
/// app that answers 503.
pub async fn function_app(
    function: Function,
    lookup: impl Fn(&str) -> Option<String>,
    aws: &SdkConfig,
    adapters: app::Adapters<'_>,
) -> Router {
    let dynamodb = monzo_auth_dynamodb::opener(aws);
    let adapters = app::Adapters {
        dynamodb: Some(&dynamodb),
        ..adapters
    };
    let built = match Config::from_lookup(Mode::Lambda(function), lookup) {
        Ok(config) => {
            app::build(
                &config,
                app::Host::new(app::Shape::Lambda(function), adapters),
            )
            .await
        }
        Err(err) => Err(err),
    };
    match built {
        Ok(app) => app.layer(middleware::from_fn(from_request_context)),
        Err(err) => {
            tracing::error!("misconfigured, answering 503 to every request: {err}");
            unavailable_app()
        }
    }
}

/// Answers every request 503 in the contract's JSON shape.
pub fn unavailable_app() -> Router {
    Router::new()
        .fallback(|| async { ApiError::Unavailable })
        .layer(http::log::access_log())
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
