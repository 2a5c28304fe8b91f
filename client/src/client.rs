//! The HTTP side: `/new` and `/token` of a monzo-auth service.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use crate::error::{root_cause, sanitize_description};
use crate::pacing::{Answer, Next, Pacer, random_jitter};
use crate::{Cancel, Error, Progress, RetryReason, Token, pkce};

/// How long to wait for a TCP (and TLS) connection to the service.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest one request may take. The service answers at once, except a redeeming poll,
/// which waits for Monzo (its own timeout is 10 s by default); past this the poll counts as
/// failed and is retried, and the session survives that.
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
    http: reqwest::Client,
    new_url: Url,
    token_url: Url,
    /// The service URL without credentials, for messages.
    service_label: String,
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

/// The service's error shape, `{"error", "error_description"}`.
#[derive(Deserialize)]
struct ErrorBody {
    error: String,
    #[serde(default)]
    error_description: Option<String>,
}

impl Client {
    /// A client for the service at `service`, its base URL (e.g. `http://127.0.0.1:3000/` or
    /// `https://abc123.execute-api.eu-west-2.amazonaws.com/Prod/`). `new` and `token` are
    /// resolved under it, keeping any path prefix; a trailing slash is added if it is missing.
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
            service_label: label(&base),
            http,
        })
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
            .map_err(|error| Error::Unreachable {
                service: self.service_label.clone(),
                cause: root_cause(&error),
            })?;
        let status = response.status();
        if status != StatusCode::OK {
            let body = response.json::<ErrorBody>().await.ok();
            return Err(match status.as_u16() {
                // A rate limit on /new passes like an outage does.
                429 | 500..=599 => Error::ServiceUnavailable,
                // On /new a 404 means a wrong URL, not an unknown session.
                404 => Error::UnexpectedResponse { status: 404 },
                status => contract_error(status, body),
            });
        }
        let body: NewSessionBody =
            response
                .json()
                .await
                .map_err(|_| Error::UnexpectedResponse {
                    status: status.as_u16(),
                })?;
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
