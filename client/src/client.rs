//! The HTTP side: `/new`, `/token` and `/oauth/token` of a monzo-auth service.

use std::fmt;
use std::time::{Duration, SystemTime};

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use crate::error::{root_cause, sanitize_description};
use crate::pacing::{Answer, Next, Pacer, random_jitter, refresh_pause};
use crate::token::expires_after;
use crate::{Cancel, Error, Progress, RetryReason, Token, pkce};

/// How long to wait for a TCP (and TLS) connection to the service.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest one request may take. The service answers at once, except a redeeming poll or
/// a refresh, which wait for Monzo (its own timeout is 10 s by default); past this the
/// request counts as failed and is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client of one monzo-auth service.
///
/// Cheap to clone (the HTTP connection pool is shared).
///
/// # Example
///
/// ```no_run
/// use monzo_auth_client::{Client, Url};
///
/// # async fn example() -> Result<(), monzo_auth_client::Error> {
/// // An API Gateway stage works too; the trailing slash is optional.
/// let service = Url::parse("https://abc123.execute-api.eu-west-2.amazonaws.com/Prod").unwrap();
/// let client = Client::new(service)?;
/// let login = client.start_login().await?;
/// eprintln!("Open {}", login.login_url());
/// let token = client.wait(&login).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    /// The service's base URL (with a trailing slash).
    base: Url,
    new_url: Url,
    token_url: Url,
    refresh_url: Url,
    revoke_url: Url,
    metadata_url: Url,
    /// The service URL without credentials, for messages.
    pub(crate) service_label: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("service", &self.service_label)
            .finish_non_exhaustive()
    }
}

/// The service's answer to `/new`.
#[derive(Deserialize)]
struct NewSessionBody {
    id: String,
    login_url: String,
    expires_in: u64,
    interval: u64,
}

/// The service's 202 answer to `/token`.
#[derive(Deserialize)]
struct PendingBody {
    interval: Option<u64>,
}

/// The service's 200 answer to `/oauth/token`: Monzo's, less its `client_id`.
#[derive(Deserialize)]
pub(crate) struct RefreshedBody {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    expires_in: u64,
    token_type: String,
    user_id: String,
}

impl RefreshedBody {
    /// The token of a fresh login (a device flow's), its expiry counted from `asked`.
    pub(crate) fn into_new_token(self, asked: SystemTime) -> Token {
        Token {
            expires: expires_after(asked, self.expires_in),
            access_token: self.access_token,
            refresh_token: self.refresh_token,
            expires_in: self.expires_in,
            token_type: self.token_type,
            user_id: self.user_id,
        }
    }

    /// The token, its expiry counted from `asked` (the service does not send one), and the
    /// refresh token that was used kept if no new one came: a server that issues none leaves
    /// the old one working (RFC 6749 section 6).
    fn into_token(self, asked: SystemTime, used: &str) -> Token {
        Token {
            expires: expires_after(asked, self.expires_in),
            access_token: self.access_token,
            refresh_token: Some(self.refresh_token.unwrap_or_else(|| used.to_owned())),
            expires_in: self.expires_in,
            token_type: self.token_type,
            user_id: self.user_id,
        }
    }
}

/// The service's error shape, `{"error", "error_description"}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl Client {
    /// A client for the service at `service`, its base URL (e.g. `http://127.0.0.1:3000/` or
    /// `https://abc123.execute-api.eu-west-2.amazonaws.com/Prod/`). `new`, `token` and
    /// `oauth/token` are resolved under it, keeping any path prefix; a trailing slash is added if it is missing.
    ///
    /// Uses its own HTTP client with connect and request timeouts and no redirects (a redirect
    /// would turn a POST into a GET that carries no form).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidServiceUrl`] unless `service` is an http(s) URL without query or
    /// fragment; [`Error::Setup`] if no HTTP client can be built (TLS setup).
    ///
    /// ```
    /// use monzo_auth_client::{Client, Error, Url};
    ///
    /// assert!(Client::new(Url::parse("http://127.0.0.1:3000").unwrap()).is_ok());
    /// assert!(matches!(
    ///     Client::new(Url::parse("ftp://example.com/").unwrap()),
    ///     Err(Error::InvalidServiceUrl { .. })
    /// ));
    /// ```
    pub fn new(service: Url) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("monzo-auth-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| Error::Setup {
                what: "set up an HTTP client",
            })?;
        Self::with_http(service, http)
    }

    /// Like [`Client::new`], with an HTTP client of the caller's (proxies, extra root
    /// certificates, other timeouts). It should not follow redirects.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidServiceUrl`] as for [`Client::new`].
    ///
    /// ```
    /// use monzo_auth_client::{Client, Url};
    ///
    /// let http = reqwest::Client::builder()
    ///     .redirect(reqwest::redirect::Policy::none())
    ///     .build()
    ///     .unwrap();
    /// let client = Client::with_http(Url::parse("http://127.0.0.1:3000/").unwrap(), http);
    /// assert!(client.is_ok());
    /// ```
    pub fn with_http(service: Url, http: reqwest::Client) -> Result<Self, Error> {
        let base = service_base(service)?;
        let join = |path| {
            base.join(path).map_err(|_| Error::InvalidServiceUrl {
                reason: "it cannot be a base for relative paths",
            })
        };
        Ok(Self {
            new_url: join("new")?,
            token_url: join("token")?,
            refresh_url: join("oauth/token")?,
            revoke_url: join("oauth/revoke")?,
            metadata_url: join(".well-known/oauth-authorization-server")?,
            service_label: label(&base),
            base,
            http,
        })
    }

    /// `path` under the service's base URL.
    pub(crate) fn url(&self, path: &str) -> Url {
        self.base
            .join(path)
            .expect("a relative path joins onto the checked base")
    }

    /// Starts a login session: `POST {service}/new` with a fresh S256 code challenge.
    ///
    /// The returned [`Login`] holds the poll id and the code verifier (neither ever leaves it
    /// except towards the service) and the URL the person must open.
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`] if no connection could be made; [`Error::ServiceUnavailable`] on
    /// a 5xx or 429; [`Error::InvalidRequest`] on a 400; [`Error::UnexpectedResponse`] on
    /// anything else outside the contract (a wrong service URL usually); [`Error::Setup`] if
    /// the OS has no randomness to give.
    ///
    /// ```no_run
    /// # async fn example(client: monzo_auth_client::Client) -> Result<(), monzo_auth_client::Error> {
    /// let login = client.start_login().await?;
    /// eprintln!("Open {} within {} s", login.login_url(), login.expires_in().as_secs());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn start_login(&self) -> Result<Login, Error> {
        let verifier = pkce::new_verifier().map_err(|_| Error::Setup {
            what: "get random bytes from the operating system",
        })?;
        let challenge = pkce::challenge(&verifier);
        // Measured before asking, so the session's end is never estimated later than the
        // service's own.
        let started = Instant::now();
        let response = self
            .http
            .post(self.new_url.clone())
            .form(&[
                ("code_challenge", challenge.as_str()),
                ("code_challenge_method", "S256"),
            ])
            .send()
            .await
            .map_err(|error| self.unreachable(&error))?;
        let status = response.status();
        let not_ours = |status: u16| Error::NotMonzoAuth {
            service: self.service_label.clone(),
            status,
        };
        if status != StatusCode::OK {
            let body = response.json::<ErrorBody>().await.ok();
            return Err(match status.as_u16() {
                // Routes and methods a monzo-auth service always has: another server is there.
                404 | 405 | 501 => not_ours(status.as_u16()),
                // A rate limit on /new passes like an outage does.
                429 | 500..=599 => Error::ServiceUnavailable,
                status => contract_error(status, body),
            });
        }
        let body: NewSessionBody = response
            .json()
            .await
            .map_err(|_| not_ours(status.as_u16()))?;
        // The URL goes to a browser command line: only a web URL may, never `file:` or
        // anything that could be read as an option.
        let login_url = Url::parse(&body.login_url)
            .ok()
            .filter(|url| matches!(url.scheme(), "https" | "http"))
            .ok_or(Error::UnexpectedResponse {
                status: status.as_u16(),
            })?;
        Ok(Login {
            id: body.id,
            verifier,
            login_url,
            expires_in: Duration::from_secs(body.expires_in),
            interval: Duration::from_secs(body.interval),
            started,
        })
    }

    /// Polls `POST {service}/token` until the login ends, and returns the token.
    ///
    /// Polls at once, then at the interval the service advises (its `interval` and
    /// `Retry-After`); each 429 `slow_down` adds 5 s to the interval for good. A 5xx or a
    /// failed connection is retried with exponential backoff and jitter (up to 30 s between
    /// polls). `on_progress` hears about every pause. The wait ends at the session's expiry
    /// (`expires_in` after it was started) at the latest, and promptly when `cancel` fires.
    ///
    /// # Errors
    ///
    /// [`Error::Denied`], [`Error::Expired`], [`Error::InvalidGrant`], [`Error::NotFound`],
    /// [`Error::InvalidRequest`] as the service answers; [`Error::ServiceUnavailable`] if it
    /// was still failing when the session expired; [`Error::Cancelled`];
    /// [`Error::UnexpectedResponse`] for an answer outside the contract.
    ///
    /// ```no_run
    /// use monzo_auth_client::{Cancel, Progress};
    ///
    /// # async fn example(client: monzo_auth_client::Client) -> Result<(), monzo_auth_client::Error> {
    /// let login = client.start_login().await?;
    /// let cancel = Cancel::new();
    /// let token = client
    ///     .wait_for_token(&login, &cancel, |progress| match progress {
    ///         Progress::Waiting { elapsed } => eprintln!("waiting ({} s)", elapsed.as_secs()),
    ///         Progress::Retrying { reason, after } => {
    ///             eprintln!("{reason}, retrying in {} s", after.as_secs())
    ///         }
    ///         _ => {}
    ///     })
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait_for_token(
        &self,
        login: &Login,
        cancel: &Cancel,
        mut on_progress: impl FnMut(Progress),
    ) -> Result<Token, Error> {
        let mut pacer = Pacer::new(login.interval, login.expires_in);
        loop {
            let answer = tokio::select! {
                // Cancellation first, so a cancelled wait never starts another request.
                biased;
                () = cancel.cancelled() => return Err(Error::Cancelled),
                polled = self.poll_once(login) => match polled? {
                    Polled::Token(token) => return Ok(token),
                    Polled::Again(answer) => answer,
                },
            };
            match pacer.next(answer, login.started.elapsed(), random_jitter()) {
                Next::GiveUp(error) => return Err(error),
                Next::PollAfter { delay, progress } => {
                    on_progress(progress);
                    tokio::select! {
                        biased;
                        () = cancel.cancelled() => return Err(Error::Cancelled),
                        () = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }

    /// [`Client::wait_for_token`] without a way to cancel or watch it.
    ///
    /// # Errors
    ///
    /// As for [`Client::wait_for_token`], except [`Error::Cancelled`].
    ///
    /// ```no_run
    /// # async fn example(client: monzo_auth_client::Client) -> Result<(), monzo_auth_client::Error> {
    /// let login = client.start_login().await?;
    /// let token = client.wait(&login).await?;
    /// println!("{}", token.user_id);
    /// # Ok(())
    /// # }
    /// ```
    pub async fn wait(&self, login: &Login) -> Result<Token, Error> {
        self.wait_for_token(login, &Cancel::new(), |_| {}).await
    }

    /// Trades a refresh token for a new token: `POST {service}/oauth/token` with
    /// `grant_type=refresh_token` (RFC 6749 section 6).
    ///
    /// The service asks Monzo with its own client secret and hands back what Monzo answers,
    /// keeping nothing. Monzo rotates refresh tokens: the returned [`Token`] carries a new
    /// `refresh_token` and the one passed in stops working, so store the new one before
    /// anything else. (Should a service pass on no new refresh token, the one passed in is
    /// kept in the returned token: it then stays good.) [`Token::expires`] is `expires_in`
    /// counted from just before the request.
    ///
    /// A 502, 503 (`temporarily_unavailable`: Monzo failed and the refresh token is still
    /// good), 504, 429 or failed connection is tried again, three tries in all, with backoff,
    /// jitter and the service's `Retry-After` honoured (up to 30 s; one longer ends the
    /// refresh at once).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidGrant`] if Monzo refused the refresh token (expired, already used or
    /// revoked: log in again); [`Error::Denied`] if the service does not allow the token's
    /// Monzo user; [`Error::InvalidRequest`] for `invalid_request` or
    /// `unsupported_grant_type`; [`Error::ServiceUnavailable`] or [`Error::Unreachable`] if
    /// every try failed; [`Error::UnexpectedResponse`] for an answer outside the contract (a
    /// service too old to refresh answers 404). None of them carries the refresh token.
    ///
    /// ```no_run
    /// use monzo_auth_client::{Client, Error, Token, Url};
    ///
    /// # async fn example(saved: Token) -> Result<(), Error> {
    /// let client = Client::new(Url::parse("http://127.0.0.1:3000/").unwrap())?;
    /// let refresh_token = saved.refresh_token.as_deref().expect("a confidential client");
    /// match client.refresh(refresh_token).await {
    ///     Ok(token) => println!("good until {}", token.expires), // save it at once
    ///     Err(Error::InvalidGrant) => eprintln!("the refresh token is used up: log in again"),
    ///     Err(error) => return Err(error),
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub async fn refresh(&self, refresh_token: &str) -> Result<Token, Error> {
        self.refresh_with(refresh_token, &Cancel::new(), |_| {})
            .await
    }

    /// [`Client::refresh`] that can be cancelled and reports its retries.
    ///
    /// `on_progress` hears a [`Progress::Retrying`] before each pause between tries. When
    /// `cancel` fires the refresh returns [`Error::Cancelled`] promptly; a request that was
    /// out is then abandoned, and if the service had got as far as Monzo, the refresh token
    /// is used up and its successor lost.
    ///
    /// # Errors
    ///
    /// As for [`Client::refresh`], and [`Error::Cancelled`].
    ///
    /// ```no_run
    /// use monzo_auth_client::{Cancel, Progress};
    ///
    /// # async fn example(client: monzo_auth_client::Client, refresh_token: &str) -> Result<(), monzo_auth_client::Error> {
    /// let cancel = Cancel::new(); // hand a clone to a Ctrl-C handler
    /// let token = client
    ///     .refresh_with(refresh_token, &cancel, |progress| {
    ///         if let Progress::Retrying { reason, after } = progress {
    ///             eprintln!("{reason}, retrying in {} s", after.as_secs_f64().ceil());
    ///         }
    ///     })
    ///     .await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn refresh_with(
        &self,
        refresh_token: &str,
        cancel: &Cancel,
        mut on_progress: impl FnMut(Progress),
    ) -> Result<Token, Error> {
        let mut failures = 0;
        loop {
            let tried = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Error::Cancelled),
                tried = self.refresh_once(refresh_token) => tried?,
            };
            let (reason, retry_after, error) = match tried {
                Refreshed::Token(token) => return Ok(token),
                Refreshed::Failed {
                    reason,
                    retry_after,
                    error,
                } => (reason, retry_after, error),
            };
            failures += 1;
            let Some(after) = refresh_pause(failures, retry_after, random_jitter()) else {
                return Err(error);
            };
            on_progress(Progress::Retrying { reason, after });
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Error::Cancelled),
                () = tokio::time::sleep(after) => {}
            }
        }
    }

    /// Logs `access_token` out at Monzo through the service (`POST /oauth/revoke`, RFC 7009),
    /// which ends its whole login: the refresh token issued with it stops working too. A token
    /// Monzo does not know counts as revoked.
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`], or [`Error::ServiceUnavailable`] while the service or Monzo is
    /// down (nothing was revoked: try again); [`Error::UnexpectedResponse`] from a service
    /// that does not revoke (404: an older service).
    pub async fn revoke(&self, access_token: &str) -> Result<(), Error> {
        let response = self
            .http
            .post(self.revoke_url.clone())
            .form(&[("token", access_token), ("token_type_hint", "access_token")])
            .send()
            .await
            .map_err(|error| self.unreachable(&error))?;
        match response.status().as_u16() {
            200 => Ok(()),
            429 | 500..=599 => Err(Error::ServiceUnavailable),
            status => {
                let body = response.json::<ErrorBody>().await.ok();
                Err(refresh_error(status, body))
            }
        }
    }

    /// Where the service says its tokens are used: the `monzo_api_url` of its RFC 8414
    /// metadata (`None` from a service that does not say).
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`] if no connection could be made; [`Error::ServiceUnavailable`] on
    /// a 5xx.
    pub async fn monzo_api_url(&self) -> Result<Option<Url>, Error> {
        #[derive(Deserialize)]
        struct Metadata {
            monzo_api_url: Option<String>,
        }
        let response = self
            .http
            .get(self.metadata_url.clone())
            .send()
            .await
            .map_err(|error| self.unreachable(&error))?;
        match response.status().as_u16() {
            200 => Ok(response
                .json::<Metadata>()
                .await
                .ok()
                .and_then(|metadata| metadata.monzo_api_url)
                .and_then(|url| Url::parse(&url).ok())),
            500..=599 => Err(Error::ServiceUnavailable),
            _ => Ok(None),
        }
    }

    /// One try of a refresh. A failure worth trying again comes back as `Refreshed::Failed`;
    /// every final answer as a token or an error.
    async fn refresh_once(&self, refresh_token: &str) -> Result<Refreshed, Error> {
        // Taken before asking, so that the expiry is never later than Monzo's own.
        let asked = SystemTime::now();
        let sent = self
            .http
            .post(self.refresh_url.clone())
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                return Ok(Refreshed::Failed {
                    reason: RetryReason::ServiceUnreachable,
                    retry_after: None,
                    error: Error::Unreachable {
                        service: self.service_label.clone(),
                        cause: root_cause(&error),
                    },
                });
            }
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        match status {
            200 => response
                .json::<RefreshedBody>()
                .await
                .map(|body| Refreshed::Token(body.into_token(asked, refresh_token)))
                .map_err(|_| Error::UnexpectedResponse { status }),
            429 | 502..=504 => {
                let body = response.json::<ErrorBody>().await.ok();
                let reason = match (status, body.as_ref().map(|body| body.error.as_str())) {
                    (503, Some("temporarily_unavailable"))
                    | (502, Some("upstream_unavailable")) => RetryReason::MonzoUnavailable,
                    _ => RetryReason::ServiceUnavailable,
                };
                Ok(Refreshed::Failed {
                    reason,
                    retry_after,
                    error: Error::ServiceUnavailable,
                })
            }
            // A failure of the service itself: it may have used the refresh token up, and
            // trying again would only turn this into an invalid grant.
            500..=599 => Err(Error::ServiceUnavailable),
            _ => {
                let body = response.json::<ErrorBody>().await.ok();
                Err(refresh_error(status, body))
            }
        }
    }

    /// One poll. Answers that only change the pace come back as `Polled::Again`; every final
    /// answer as a token or an error.
    async fn poll_once(&self, login: &Login) -> Result<Polled, Error> {
        let sent = self
            .http
            .post(self.token_url.clone())
            .form(&[
                ("id", login.id.as_str()),
                ("code_verifier", login.verifier.as_str()),
            ])
            .send()
            .await;
        let Ok(response) = sent else {
            // Mid-wait a lost connection is worth retrying: the session lives on the service.
            return Ok(Polled::Again(Answer::Unavailable {
                reason: RetryReason::ServiceUnreachable,
                retry_after: None,
            }));
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let again = |answer| Ok(Polled::Again(answer));
        match status {
            200 => response
                .json::<Token>()
                .await
                .map(Polled::Token)
                .map_err(|_| Error::UnexpectedResponse { status }),
            202 => {
                let interval = response
                    .json::<PendingBody>()
                    .await
                    .ok()
                    .and_then(|body| body.interval)
                    .map(Duration::from_secs);
                again(Answer::Pending {
                    interval,
                    retry_after,
                })
            }
            429 => again(Answer::SlowDown { retry_after }),
            502 => again(Answer::Unavailable {
                reason: RetryReason::MonzoUnavailable,
                retry_after,
            }),
            500..=599 => again(Answer::Unavailable {
                reason: RetryReason::ServiceUnavailable,
                retry_after,
            }),
            _ => {
                let body = response.json::<ErrorBody>().await.ok();
                Err(contract_error(status, body))
            }
        }
    }
}

enum Polled {
    Token(Token),
    Again(Answer),
}

enum Refreshed {
    Token(Token),
    /// Worth another try; `error` is what to report if there is none.
    Failed {
        reason: RetryReason,
        retry_after: Option<Duration>,
        error: Error,
    },
}

/// A final error answer of `/oauth/token` (RFC 6749 section 5.2), matched on status and code
/// like [`contract_error`]. A 404 is a service without refresh, not an unknown session.
fn refresh_error(status: u16, body: Option<ErrorBody>) -> Error {
    let code = body.as_ref().map_or("", |body| body.error.as_str());
    match (status, code) {
        (400, "invalid_grant") => Error::InvalidGrant,
        (403, "access_denied") => Error::Denied,
        (400 | 413 | 415, "invalid_request") | (400, "unsupported_grant_type") => {
            Error::InvalidRequest {
                description: sanitize_description(
                    body.as_ref()
                        .and_then(|body| body.error_description.as_deref())
                        .unwrap_or(""),
                ),
            }
        }
        _ => Error::UnexpectedResponse { status },
    }
}

/// A final error answer of the contract, matched on status *and* error code, so that a proxy's
/// 403 or 404 (with some other body) is not mistaken for the service's.
fn contract_error(status: u16, body: Option<ErrorBody>) -> Error {
    let code = body.as_ref().map_or("", |body| body.error.as_str());
    match (status, code) {
        (403, "access_denied") => Error::Denied,
        (410, "expired_token") => Error::Expired,
        (404, "not_found") => Error::NotFound,
        (400, "invalid_grant") => Error::InvalidGrant,
        (400 | 413 | 415, "invalid_request") => Error::InvalidRequest {
            description: sanitize_description(
                body.as_ref()
                    .and_then(|body| body.error_description.as_deref())
                    .unwrap_or(""),
            ),
        },
        _ => Error::UnexpectedResponse { status },
    }
}

/// `Retry-After` in its delta-seconds form (the only one the service sends).
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_secs)
}

/// Checks the service URL and makes it a base for `join`: without a trailing slash, `join`
/// would replace the last path segment (`/Prod` + `new` = `/new`).
fn service_base(mut service: Url) -> Result<Url, Error> {
    if !matches!(service.scheme(), "http" | "https") {
        return Err(Error::InvalidServiceUrl {
            reason: "it must be an http or https URL",
        });
    }
    if service.query().is_some() || service.fragment().is_some() {
        return Err(Error::InvalidServiceUrl {
            reason: "it must not have a query or a fragment",
        });
    }
    if !service.path().ends_with('/') {
        let path = format!("{}/", service.path());
        service.set_path(&path);
    }
    Ok(service)
}

/// The URL without user name and password, for messages.
fn label(url: &Url) -> String {
    let mut url = url.clone();
    // Both fail only for URLs that cannot have credentials, which then have none to hide.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

/// A login session in progress, from [`Client::start_login`].
///
/// Holds the poll id (whoever has it can take the token) and the PKCE code verifier; its
/// `Debug` shows neither, nor the login URL (its `state` is a secret for logs, too).
///
/// # Example
///
/// ```no_run
/// # async fn example(client: monzo_auth_client::Client) -> Result<(), monzo_auth_client::Error> {
/// let login = client.start_login().await?;
/// eprintln!("{login:?}"); // Login { expires_in: 600s, interval: 2s, .. }
/// eprintln!("Open {}", login.login_url());
/// # Ok(())
/// # }
/// ```
pub struct Login {
    id: String,
    verifier: String,
    login_url: Url,
    expires_in: Duration,
    interval: Duration,
    started: Instant,
}

impl Login {
    /// Monzo's login page for this session, to open in a browser (on any device).
    ///
    /// ```no_run
    /// # async fn example(client: monzo_auth_client::Client) -> Result<(), monzo_auth_client::Error> {
    /// let login = client.start_login().await?;
    /// assert!(login.login_url().query().unwrap().contains("state="));
    /// # Ok(())
    /// # }
    /// ```
    pub fn login_url(&self) -> &Url {
        &self.login_url
    }

    /// How long the session lives, from when it was started (the service's `expires_in`).
    ///
    /// ```no_run
    /// # async fn example(client: monzo_auth_client::Client) -> Result<(), monzo_auth_client::Error> {
    /// let login = client.start_login().await?;
    /// eprintln!("You have {} minutes.", login.expires_in().as_secs() / 60);
    /// # Ok(())
    /// # }
    /// ```
    pub fn expires_in(&self) -> Duration {
        self.expires_in
    }

    /// The poll interval the service advised when the session started.
    ///
    /// ```no_run
    /// # async fn example(client: monzo_auth_client::Client) -> Result<(), monzo_auth_client::Error> {
    /// let login = client.start_login().await?;
    /// assert!(login.interval().as_secs() <= 300);
    /// # Ok(())
    /// # }
    /// ```
    pub fn interval(&self) -> Duration {
        self.interval
    }
}

impl fmt::Debug for Login {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Login")
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn endpoints(service: &str) -> (String, String) {
        let client = Client::new(Url::parse(service).unwrap()).unwrap();
        (client.new_url.to_string(), client.token_url.to_string())
    }

    #[test]
    fn endpoints_keep_the_path_prefix_with_or_without_a_trailing_slash() {
        assert_eq!(
            endpoints("http://127.0.0.1:3000/"),
            (
                "http://127.0.0.1:3000/new".into(),
                "http://127.0.0.1:3000/token".into()
            )
        );
        assert_eq!(
            endpoints("http://127.0.0.1:3000"),
            (
                "http://127.0.0.1:3000/new".into(),
                "http://127.0.0.1:3000/token".into()
            )
        );
        for base in ["https://x.example/Prod", "https://x.example/Prod/"] {
            assert_eq!(
                endpoints(base),
                (
                    "https://x.example/Prod/new".into(),
                    "https://x.example/Prod/token".into()
                )
            );
        }
    }

    #[test]
    fn refresh_goes_to_oauth_token_under_the_path_prefix() {
        for (base, refresh) in [
            ("http://127.0.0.1:3000", "http://127.0.0.1:3000/oauth/token"),
            (
                "https://x.example/Prod",
                "https://x.example/Prod/oauth/token",
            ),
            (
                "https://x.example/Prod/",
                "https://x.example/Prod/oauth/token",
            ),
        ] {
            let client = Client::new(Url::parse(base).unwrap()).unwrap();
            assert_eq!(client.refresh_url.as_str(), refresh);
        }
    }

    #[test]
    fn a_refreshed_token_gets_its_expiry_and_keeps_an_unrotated_refresh_token() {
        let body = |refresh: Option<&str>| -> RefreshedBody {
            serde_json::from_value(serde_json::json!({
                "access_token": "new-access",
                "token_type": "Bearer",
                "expires_in": 21600,
                "refresh_token": refresh,
                "user_id": "user_00009",
            }))
            .unwrap()
        };
        let asked = std::time::UNIX_EPOCH + Duration::from_secs(1_795_944_123);
        let token = body(Some("new-refresh")).into_token(asked, "old-refresh");
        assert_eq!(token.access_token, "new-access");
        assert_eq!(token.refresh_token.as_deref(), Some("new-refresh"));
        assert_eq!(token.expires, "2026-11-29T15:22:03Z");
        assert_eq!(token.expires_in, 21600);
        assert_eq!(token.user_id, "user_00009");
        // The serialized form is the one a login gives.
        let printed = serde_json::to_value(&token).unwrap();
        let mut names: Vec<&str> = printed
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "access_token",
                "expires",
                "expires_in",
                "refresh_token",
                "token_type",
                "user_id"
            ]
        );
        let kept = body(None).into_token(asked, "old-refresh");
        assert_eq!(kept.refresh_token.as_deref(), Some("old-refresh"));
    }

    #[test]
    fn refresh_errors_follow_rfc_6749() {
        let body = |code: &str, description: Option<&str>| {
            Some(ErrorBody {
                error: code.into(),
                error_description: description.map(Into::into),
            })
        };
        assert!(matches!(
            refresh_error(400, body("invalid_grant", Some("used"))),
            Error::InvalidGrant
        ));
        assert!(matches!(
            refresh_error(403, body("access_denied", None)),
            Error::Denied
        ));
        for code in ["invalid_request", "unsupported_grant_type"] {
            match refresh_error(400, body(code, Some("refresh_token is missing"))) {
                Error::InvalidRequest { description } => {
                    assert_eq!(description, "refresh_token is missing")
                }
                other => panic!("{code}: {other}"),
            }
        }
        // A service without /oauth/token, a proxy, or a code out of place.
        for (status, code) in [
            (404, "not_found"),
            (405, "method_not_allowed"),
            (403, "forbidden"),
            (400, "expired_token"),
            (401, "invalid_client"),
        ] {
            assert!(
                matches!(
                    refresh_error(status, body(code, None)),
                    Error::UnexpectedResponse { status: s } if s == status
                ),
                "{status} {code}"
            );
        }
        assert!(matches!(
            refresh_error(400, None),
            Error::UnexpectedResponse { status: 400 }
        ));
    }

    #[test]
    fn unusable_service_urls_are_refused() {
        for bad in [
            "ftp://x.example/",
            "file:///tmp/x",
            "mailto:a@b.example",
            "https://x.example/?a=b",
            "https://x.example/#f",
        ] {
            assert!(
                matches!(
                    Client::new(Url::parse(bad).unwrap()),
                    Err(Error::InvalidServiceUrl { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn messages_name_the_service_without_credentials() {
        let client = Client::new(Url::parse("https://me:pw@x.example/Prod").unwrap()).unwrap();
        assert_eq!(client.service_label, "https://x.example/Prod/");
        assert!(!format!("{client:?}").contains("pw"));
    }

    #[test]
    fn login_debug_shows_no_secret() {
        let login = Login {
            id: "poll-id-secret".into(),
            verifier: "verifier-secret".into(),
            login_url: Url::parse("https://auth.example/?state=state-secret").unwrap(),
            expires_in: Duration::from_secs(600),
            interval: Duration::from_secs(2),
            started: Instant::now(),
        };
        let shown = format!("{login:?}");
        for secret in ["poll-id-secret", "verifier-secret", "state-secret"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        assert!(shown.contains("600s"), "{shown}");
    }

    #[test]
    fn contract_errors_need_the_right_status_and_code() {
        let body = |code: &str, description: Option<&str>| {
            Some(ErrorBody {
                error: code.into(),
                error_description: description.map(Into::into),
            })
        };
        assert!(matches!(
            contract_error(403, body("access_denied", None)),
            Error::Denied
        ));
        assert!(matches!(
            contract_error(410, body("expired_token", None)),
            Error::Expired
        ));
        assert!(matches!(
            contract_error(404, body("not_found", None)),
            Error::NotFound
        ));
        assert!(matches!(
            contract_error(400, body("invalid_grant", None)),
            Error::InvalidGrant
        ));
        match contract_error(400, body("invalid_request", Some("id is missing\u{7}"))) {
            Error::InvalidRequest { description } => assert_eq!(description, "id is missing"),
            other => panic!("{other}"),
        }
        // A proxy's answers are not the service's.
        assert!(matches!(
            contract_error(403, None),
            Error::UnexpectedResponse { status: 403 }
        ));
        assert!(matches!(
            contract_error(404, body("NotFound", None)),
            Error::UnexpectedResponse { status: 404 }
        ));
        assert!(matches!(
            contract_error(418, body("access_denied", None)),
            Error::UnexpectedResponse { status: 418 }
        ));
    }

    #[test]
    fn retry_after_reads_delta_seconds_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "5".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(5)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
