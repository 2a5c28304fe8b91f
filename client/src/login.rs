//! The simple API's login: `POST /new` starts a session, `POST /token` polls it at the pace
//! [`Pacer`] keeps.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use monzo_auth_protocol::ErrorBody;
use monzo_auth_protocol::simple::{NewSession, Pending};
use reqwest::StatusCode;
use tokio::time::Instant;
use url::Url;

use crate::answers::{contract_error, retry_after};
use crate::pacing::{Answer, Next, Pacer, random_jitter};
use crate::{Cancel, Client, Error, Progress, RetryReason, Token, pkce};

impl Client {
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
        let body: NewSession = response
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
        let pacer = Pacer::new(login.interval, login.expires_in);
        poll_paced(pacer, login.started, cancel, &mut on_progress, || {
            self.poll_once(login)
        })
        .await
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
        let request = self.http.post(self.token_url.clone()).form(&[
            ("id", login.id.as_str()),
            ("code_verifier", login.verifier.as_str()),
        ]);
        let response = match send_poll(request).await {
            Ok(response) => response,
            Err(again) => return Ok(again),
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        let again = |answer| Ok(Polled::Again(answer));
        match status {
            200 => response
                .json::<monzo_auth_protocol::simple::Token>()
                .await
                .map(|body| Polled::Token(body.into()))
                .map_err(|_| Error::UnexpectedResponse { status }),
            202 => {
                let interval = response
                    .json::<Pending>()
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

/// What one poll came to: the token, or an answer that only sets the pace.
pub(crate) enum Polled {
    Token(Token),
    Again(Answer),
}

/// Sends one poll. Mid-wait a lost connection is worth another: the session lives on the
/// service.
pub(crate) async fn send_poll(
    request: reqwest::RequestBuilder,
) -> Result<reqwest::Response, Polled> {
    request.send().await.map_err(|_| {
        Polled::Again(Answer::Unavailable {
            reason: RetryReason::ServiceUnreachable,
            retry_after: None,
        })
    })
}

/// Polls with `poll` at the pace `pacer` keeps (both logins: `/token` and RFC 8628's
/// `/oauth/token`) until a final answer, the end of the session (counted from `started`), or
/// `cancel`, which is heard first, so a cancelled wait never starts another request.
pub(crate) async fn poll_paced<Poll, Polling>(
    mut pacer: Pacer,
    started: Instant,
    cancel: &Cancel,
    on_progress: &mut impl FnMut(Progress),
    mut poll: Poll,
) -> Result<Token, Error>
where
    Poll: FnMut() -> Polling,
    Polling: Future<Output = Result<Polled, Error>>,
{
    loop {
        let answer = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(Error::Cancelled),
            polled = poll() => match polled? {
                Polled::Token(token) => return Ok(token),
                Polled::Again(answer) => answer,
            },
        };
        match pacer.next(answer, started.elapsed(), random_jitter()) {
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
}
