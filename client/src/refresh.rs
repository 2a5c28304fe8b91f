//! Keeping a login alive and ending it: `POST /oauth/token` with a refresh token (RFC 6749 6),
//! `POST /oauth/revoke` (RFC 7009), and where the service says the tokens are used (RFC 8414
//! metadata).

use std::time::{Duration, SystemTime};

use monzo_auth_protocol::oauth::{Metadata, REFRESH_TOKEN_GRANT, TokenResponse};
use monzo_auth_protocol::{ErrorBody, ErrorCode};
use url::Url;

use crate::answers::{refresh_error, retry_after};
use crate::error::root_cause;
use crate::pacing::{random_jitter, refresh_pause};
use crate::{Cancel, Client, Error, Progress, RetryReason, Token};

impl Client {
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
                ("grant_type", REFRESH_TOKEN_GRANT),
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
                .json::<TokenResponse>()
                .await
                .map(|body| Refreshed::Token(Token::refreshed(body, asked, refresh_token)))
                .map_err(|_| Error::UnexpectedResponse { status }),
            429 | 502..=504 => {
                let body = response.json::<ErrorBody>().await.ok();
                let reason = match (status, body.map(|body| body.error)) {
                    (503, Some(ErrorCode::TemporarilyUnavailable))
                    | (502, Some(ErrorCode::UpstreamUnavailable)) => RetryReason::MonzoUnavailable,
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
