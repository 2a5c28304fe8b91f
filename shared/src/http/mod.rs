//! The HTTP face of the service: one router per Lambda function, merged by the local server.
//!
//! Each `*_routes` function returns the routes one function serves; [`into_app`] adds what every
//! host needs once (JSON 404/405, no-store headers, the access log) and the state.

pub mod error;
pub mod log;
mod oauth;
pub mod params;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use monzo_auth_protocol::simple::{AUTHORIZATION_PENDING, NewSession, Pending, Token};
use tower::ServiceBuilder;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::TrustedProxies;
use error::ApiError;
use monzo_auth_domain::flow::{ClientAddr, Flow, NoPublicUrl, Poll};
use monzo_auth_domain::session::{CodeChallenge, CodeVerifier, PollId};
use monzo_auth_domain::urls::{PublicUrls, RequestBase};
use params::{Params, ParamsError};

pub use oauth::OAuthError;

/// A limit on calls that reach Monzo with the operator's standing (refresh, revocation) per
/// client address. The local server sets one (`monzo-auth-server`'s `limit`); on AWS, API
/// Gateway's route throttle is the cap.
pub trait RefreshLimiter: Send + Sync {
    /// `Err(seconds to wait)` when `addr` has used its budget.
    fn check(&self, addr: &ClientAddr) -> Result<(), u64>;
}

/// What every handler shares.
pub type AppState = Arc<Flow>;

/// The service's public URLs for this request: configured, or derived from the [`RequestBase`]
/// the host put in the request's extensions (Lambda). Each contract answers a failure its own way.
pub struct RequestUrls(pub Result<PublicUrls, NoPublicUrl>);

impl axum::extract::FromRequestParts<AppState> for RequestUrls {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        flow: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Self(
            flow.settings()
                .urls
                .resolve(parts.extensions.get::<RequestBase>())
                .ok_or(NoPublicUrl),
        ))
    }
}

/// `GET|POST /new`: the `new` function.
pub fn new_routes() -> Router<AppState> {
    Router::new().route("/new", get(new_session).post(new_session))
}

/// `POST|GET /token`: the `token` function (the only one holding the client secret).
pub fn token_routes() -> Router<AppState> {
    Router::new().route("/token", get(poll_token).post(poll_token))
}

/// `POST /device/code` and the RFC 8414 metadata: the `new` function.
pub fn device_code_routes() -> Router<AppState> {
    Router::new()
        .route("/device/code", axum::routing::post(oauth::device_code))
        .route(
            "/.well-known/oauth-authorization-server",
            get(oauth::metadata),
        )
}

/// `POST /oauth/token` (device code and refresh token grants) and `POST /oauth/revoke`
/// (RFC 7009): the `token` function.
pub fn oauth_token_routes() -> Router<AppState> {
    Router::new()
        .route("/oauth/token", axum::routing::post(oauth::token))
        .route("/oauth/revoke", axum::routing::post(oauth::revoke))
}

/// An unknown route: a small page for a browser navigating there (it asks for `text/html`),
/// where the host links the pages, and the contract's JSON 404 for everyone else.
fn no_such_route(headers: &axum::http::HeaderMap, page: Option<fn() -> Response>) -> Response {
    let wants_html = headers
        .get(axum::http::header::ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"));
    match page {
        Some(page) if wants_html => page(),
        _ => ApiError::NoSuchRoute.into_response(),
    }
}

/// Routes only the local server has: a health check, and the landing page from `landing`.
pub fn local_routes(landing: Router<AppState>) -> Router<AppState> {
    Router::new().route("/healthz", get(healthz)).merge(landing)
}

/// `GET /healthz`: 200 while the store can be read; 503 in the JSON shape when it cannot (gone,
/// replaced, corrupt, unreachable). A store that reads but cannot write just now stays 200: its
/// write routes answer 503 with `Retry-After`.
async fn healthz(State(flow): State<AppState>) -> Result<&'static str, ApiError> {
    flow.store_health().await?;
    Ok("ok")
}

/// Finishes a set of routes into a servable app; `not_found_page` answers a browser at an
/// unknown route (the hosts that link the pages).
pub fn into_app(
    routes: Router<AppState>,
    state: AppState,
    not_found_page: Option<fn() -> Response>,
) -> Router {
    routes
        .fallback(move |headers: axum::http::HeaderMap| async move {
            no_such_route(&headers, not_found_page)
        })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // Layers wrap each route and the fallbacks, so they see the matched route template.
        // A panic still answers: the contract's 500 (the page routes answer a page).
        .layer(catch_panic(api_panic))
        // Answers are about one session and must not be cached anywhere: no-store and nosniff
        // unless the handler set its own, and always `Pragma: no-cache`.
        .layer(
            ServiceBuilder::new()
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CACHE_CONTROL,
                    HeaderValue::from_static("no-store"),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::PRAGMA,
                    HeaderValue::from_static("no-cache"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                )),
        )
        .layer(log::access_log())
        .with_state(state)
}

/// What answers for a handler that panicked.
pub type PanicHandler = fn(Box<dyn std::any::Any + Send>) -> Response;

/// Turns a panicking handler into an answer (never a dropped connection), logging only that it
/// happened: a panic message may quote data.
pub fn catch_panic(answer: PanicHandler) -> tower_http::catch_panic::CatchPanicLayer<PanicHandler> {
    tower_http::catch_panic::CatchPanicLayer::custom(answer)
}

fn api_panic(_: Box<dyn std::any::Any + Send>) -> Response {
    tracing::error!("a handler panicked; answered 500");
    ApiError::ServerError.into_response()
}

/// For the local server: the client's address is the TCP peer's, or, when that peer is a proxy
/// the deployment trusts (`TRUSTED_PROXIES`), the last `X-Forwarded-For` entry that is not a
/// trusted proxy (entries further left are whatever the client claimed).
pub async fn local_client_addr(
    State(proxies): State<Arc<TrustedProxies>>,
    mut req: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|info| info.0.ip());
    let addr = peer.map(|peer| client_behind(peer, req.headers(), &proxies));
    if let Some(addr) = addr {
        req.extensions_mut().insert(ClientAddr(addr));
    }
    next.run(req).await
}

fn client_behind(
    peer: std::net::IpAddr,
    headers: &axum::http::HeaderMap,
    proxies: &TrustedProxies,
) -> std::net::IpAddr {
    if !proxies.contains(peer) {
        return peer;
    }
    let mut hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|entry| entry.trim().parse::<std::net::IpAddr>().ok())
        .collect::<Vec<_>>();
    let mut nearest = peer;
    while let Some(hop) = hops.pop() {
        match hop {
            Some(hop) if proxies.contains(hop) => nearest = hop,
            Some(hop) => return hop,
            // A broken chain: believe no further than the last trusted hop.
            None => return nearest,
        }
    }
    nearest
}

/// The Host values the local server answers to: those of `RETURN_URL` and `PUBLIC_BASE_URL`,
/// and the loopback names with the listening port. A web page whose name an attacker rebinds to
/// 127.0.0.1 sends its own name, so it cannot drive the API from a person's browser (DNS
/// rebinding).
#[derive(Debug)]
pub struct AllowedHosts(std::collections::BTreeSet<String>);

impl AllowedHosts {
    pub fn new<'a>(urls: impl IntoIterator<Item = &'a url::Url>, port: u16) -> Self {
        let mut hosts = std::collections::BTreeSet::new();
        for url in urls {
            let Some(host) = url.host_str().map(str::to_ascii_lowercase) else {
                continue;
            };
            if let Some(port) = url.port_or_known_default() {
                hosts.insert(format!("{host}:{port}"));
            }
            // The scheme's own port: a Host header may leave it out.
            if url.port().is_none() {
                hosts.insert(host);
            }
        }
        for name in ["localhost", "127.0.0.1", "[::1]"] {
            hosts.insert(format!("{name}:{port}"));
            if port == 80 {
                hosts.insert(name.to_owned());
            }
        }
        Self(hosts)
    }

    fn allows(&self, host: &str) -> bool {
        self.0.contains(&host.to_ascii_lowercase())
    }
}

/// Refuses requests for other host names with 421 in the contract's shape; `/healthz` answers
/// whatever the name (probes use all sorts).
pub async fn check_host(
    State(allowed): State<Arc<AllowedHosts>>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|value| value.to_str().ok());
    if req.uri().path() == "/healthz" || host.is_some_and(|host| allowed.allows(host)) {
        return next.run(req).await;
    }
    ApiError::MisdirectedRequest.into_response()
}

/// Serves nothing without the client secret: 503 until it can be had (the token function, while
/// KMS cannot decrypt it; it recovers on its own once KMS does).
pub async fn require_secret(
    State(secret): State<Arc<dyn monzo_auth_domain::secret::ClientSecretSource>>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> Response {
    match secret.client_secret().await {
        Ok(_) => next.run(req).await,
        Err(_) => ApiError::Unavailable.into_response(),
    }
}

async fn new_session(
    State(flow): State<AppState>,
    RequestUrls(urls): RequestUrls,
    params: Result<Params, ParamsError>,
) -> Result<Json<NewSession>, ApiError> {
    let params = params?;
    let code_challenge = match (
        params.non_empty("code_challenge"),
        params.non_empty("code_challenge_method"),
    ) {
        (None, None) => None,
        (Some(challenge), Some("S256")) => Some(CodeChallenge::parse(challenge).ok_or(
            ApiError::InvalidRequest("code_challenge must be 43 base64url characters (S256)"),
        )?),
        (Some(_), _) => {
            return Err(ApiError::InvalidRequest(
                "code_challenge_method must be S256",
            ));
        }
        (None, Some(_)) => {
            return Err(ApiError::InvalidRequest(
                "code_challenge_method was given without a code_challenge",
            ));
        }
    };
    let started = flow.start(code_challenge, &urls?).await?;
    Ok(Json(NewSession {
        id: started.id.expose(),
        login_url: started.login_url.into(),
        expires_in: started.expires_in,
        interval: started.interval,
    }))
}

async fn poll_token(
    State(flow): State<AppState>,
    params: Result<Params, ParamsError>,
) -> Result<Response, ApiError> {
    use secrecy::ExposeSecret as _;
    let params = params?;
    let id = params
        .non_empty("id")
        .ok_or(ApiError::InvalidRequest("id is required"))?;
    let id = PollId::parse(id).ok_or(ApiError::InvalidRequest("id is malformed"))?;
    let verifier = params
        .non_empty("code_verifier")
        .and_then(CodeVerifier::parse);
    match flow.poll(&id, verifier.as_ref()).await? {
        Poll::Pending { interval } => Ok((
            StatusCode::ACCEPTED,
            [(header::RETRY_AFTER, HeaderValue::from(interval.max(1)))],
            Json(Pending {
                status: AUTHORIZATION_PENDING.into(),
                interval: Some(interval),
            }),
        )
            .into_response()),
        Poll::Token(token) => {
            // The code is spent: the token must go out whatever happens here. Lifetimes are
            // clamped to a year at the Monzo boundary, so the date always formats.
            let expires = token
                .expires_at
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_else(|_| {
                    tracing::error!("could not format a token's expiry; sent without it");
                    String::new()
                });
            Ok(Json(Token {
                token: token.access_token.expose_secret().to_owned(),
                expires,
                expires_in: token.expires_in,
                token_type: token.token_type.clone(),
                user_id: token.user_id.clone(),
                refresh_token: token
                    .refresh_token
                    .as_ref()
                    .map(|t| t.expose_secret().to_owned()),
            })
            .into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;
    use tower::ServiceExt as _;

    async fn boom() -> &'static str {
        panic!("boom")
    }

    async fn answer_of_a_panic(answer: PanicHandler) -> (StatusCode, String, String) {
        let app: Router = Router::new()
            .route("/boom", get(boom))
            .layer(catch_panic(answer));
        let response = app
            .oneshot(
                axum::http::Request::get("/boom")
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let content_type = response.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_owned();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (
            status,
            content_type,
            String::from_utf8_lossy(&body).into_owned(),
        )
    }

    #[test]
    fn the_client_is_the_last_forwarded_hop_that_is_not_a_trusted_proxy() {
        let proxies =
            crate::config::Config::from_lookup(crate::config::Mode::Local, |name| match name {
                "MONZO_CLIENT_ID" => Some("c".into()),
                "MONZO_CLIENT_SECRET" => Some("s".into()),
                "TRUSTED_PROXIES" => Some("10.0.0.0/8".into()),
                _ => None,
            })
            .unwrap()
            .trusted_proxies;
        let behind = |peer: &str, xff: &[&str]| {
            let mut headers = axum::http::HeaderMap::new();
            for value in xff {
                headers.append("x-forwarded-for", value.parse().unwrap());
            }
            client_behind(peer.parse().unwrap(), &headers, &proxies).to_string()
        };
        // Not a proxy: its own address, whatever it claims.
        assert_eq!(behind("192.0.2.1", &["198.51.100.9"]), "192.0.2.1");
        // A trusted proxy: the last hop it and its trusted peers did not add.
        assert_eq!(
            behind("10.0.0.1", &["203.0.113.5, 198.51.100.9"]),
            "198.51.100.9"
        );
        assert_eq!(
            behind("10.0.0.1", &["203.0.113.5", "198.51.100.9, 10.0.0.2"]),
            "198.51.100.9"
        );
        assert_eq!(behind("10.0.0.1", &["garbage, 10.0.0.2"]), "10.0.0.2");
        assert_eq!(behind("10.0.0.1", &[]), "10.0.0.1");
    }

    #[tokio::test]
    async fn a_panicking_handler_still_answers_the_contracts_500() {
        let (status, content_type, body) = answer_of_a_panic(api_panic).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(content_type, "application/json");
        let body: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["error"], "server_error");
        assert!(
            !body.to_string().contains("boom"),
            "the panic is not echoed"
        );
    }
}
