//! The RFC 8628 device flow through the service: a short code the person types at the
//! service's `/device` page on any device (a phone), while this process polls.

use std::fmt;
use std::time::{Duration, Instant, SystemTime};

use serde::Deserialize;
use url::Url;

use crate::client::RefreshedBody;
use crate::error::root_cause;
use crate::pacing::{BACKOFF_CAP, MIN_DELAY, SLOW_DOWN_STEP, backoff, random_jitter};
use crate::{Cancel, Client, Error, Progress, RetryReason, Token};

/// The `client_id` the CLI's device logins carry (there is no registration: it names the app).
const CLIENT_ID: &str = "monzo-auth-cli";
const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";

/// A started device login: the code to show, where to enter it, and (kept inside) the device
/// code this process polls with. `Debug` does not show the device code.
pub struct DeviceLogin {
    device_code: String,
    /// The short code the person types, `XXXX-XXXX`.
    pub user_code: String,
    /// Where to type it (the service's `/device` page).
    pub verification_uri: Url,
    /// The same page with the code filled in, for a QR code or a link.
    pub verification_uri_complete: Url,
    expires_in: Duration,
    interval: Duration,
    started: Instant,
}

impl fmt::Debug for DeviceLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceLogin")
            .field("device_code", &"<redacted>")
            .field("verification_uri", &self.verification_uri.as_str())
            .field("expires_in", &self.expires_in)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct Started {
    device_code: String,
    user_code: String,
    verification_uri: String,
    verification_uri_complete: String,
    expires_in: u64,
    interval: u64,
}

#[derive(Deserialize)]
struct OAuthError {
    error: String,
}

/// A web URL from the service, or none (never `file:` or anything a shell could misread).
fn web_url(text: &str) -> Option<Url> {
    Url::parse(text)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https"))
}

impl Client {
    /// Starts a device login: `POST {service}/device/code`.
    ///
    /// # Errors
    ///
    /// [`Error::Unreachable`], [`Error::ServiceUnavailable`] on a 5xx or 429,
    /// [`Error::NotMonzoAuth`] when the server there does not do device logins.
    pub async fn start_device_login(&self) -> Result<DeviceLogin, Error> {
        let started = Instant::now();
        let response = self
            .http
            .post(self.url("device/code"))
            .form(&[("client_id", CLIENT_ID)])
            .send()
            .await
            .map_err(|error| self.unreachable(&error))?;
        let status = response.status().as_u16();
        let not_ours = || Error::NotMonzoAuth {
            service: self.service_label.clone(),
            status,
        };
        match status {
            200 => {}
            429 | 500..=599 if status != 501 => return Err(Error::ServiceUnavailable),
            _ => return Err(not_ours()),
        }
        let body: Started = response.json().await.map_err(|_| not_ours())?;
        Ok(DeviceLogin {
            verification_uri: web_url(&body.verification_uri).ok_or_else(not_ours)?,
            verification_uri_complete: web_url(&body.verification_uri_complete)
                .ok_or_else(not_ours)?,
            device_code: body.device_code,
            user_code: body.user_code,
            expires_in: Duration::from_secs(body.expires_in),
            interval: Duration::from_secs(body.interval).max(MIN_DELAY),
            started,
        })
    }

    /// Polls `POST {service}/oauth/token` at the pace the service asks (growing the interval
    /// by 5 s at each `slow_down`) until the person has entered the code and logged in, and
    /// returns the token. Outages are ridden out with backoff; the wait ends at the code's
    /// expiry, or promptly when `cancel` fires.
    ///
    /// # Errors
    ///
    /// [`Error::Denied`], [`Error::Expired`], [`Error::InvalidGrant`] as the service answers;
    /// [`Error::ServiceUnavailable`] if it was still failing when the code expired;
    /// [`Error::Cancelled`]; [`Error::UnexpectedResponse`] for an answer outside RFC 8628.
    pub async fn wait_for_device_token(
        &self,
        login: &DeviceLogin,
        cancel: &Cancel,
        mut on_progress: impl FnMut(Progress),
    ) -> Result<Token, Error> {
        let mut interval = login.interval;
        let mut failures = 0;
        let mut last_failure = None;
        loop {
            if login.started.elapsed() >= login.expires_in {
                return Err(last_failure.unwrap_or(Error::Expired));
            }
            let asked = SystemTime::now();
            let sent = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Error::Cancelled),
                sent = self
                    .http
                    .post(self.url("oauth/token"))
                    .form(&[
                        ("grant_type", DEVICE_GRANT),
                        ("device_code", login.device_code.as_str()),
                        ("client_id", CLIENT_ID),
                    ])
                    .send() => sent,
            };
            let pause = match sent {
                Err(error) => {
                    failures += 1;
                    last_failure = Some(self.unreachable(&error));
                    let after = backoff(failures, random_jitter()).min(BACKOFF_CAP);
                    on_progress(Progress::Retrying {
                        reason: RetryReason::ServiceUnreachable,
                        after,
                    });
                    after
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    if status == 200 {
                        return response
                            .json::<RefreshedBody>()
                            .await
                            .map(|issued| issued.into_new_token(asked))
                            .map_err(|_| Error::UnexpectedResponse { status });
                    }
                    let code = response.json::<OAuthError>().await.ok().map(|e| e.error);
                    match (status, code.as_deref()) {
                        (400, Some("authorization_pending")) => {
                            failures = 0;
                            on_progress(Progress::Waiting {
                                elapsed: login.started.elapsed(),
                            });
                            interval
                        }
                        (400 | 429, Some("slow_down")) => {
                            interval += SLOW_DOWN_STEP;
                            on_progress(Progress::Retrying {
                                reason: RetryReason::SlowDown,
                                after: interval,
                            });
                            interval
                        }
                        (_, Some("access_denied")) => return Err(Error::Denied),
                        (_, Some("expired_token")) => return Err(Error::Expired),
                        (_, Some("invalid_grant")) => return Err(Error::InvalidGrant),
                        (429 | 500..=599, _) => {
                            failures += 1;
                            last_failure = Some(Error::ServiceUnavailable);
                            let after = backoff(failures, random_jitter())
                                .clamp(interval, BACKOFF_CAP.max(interval));
                            on_progress(Progress::Retrying {
                                reason: RetryReason::ServiceUnavailable,
                                after,
                            });
                            after
                        }
                        _ => return Err(Error::UnexpectedResponse { status }),
                    }
                }
            };
            let left = login.expires_in.saturating_sub(login.started.elapsed());
            tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(Error::Cancelled),
                () = tokio::time::sleep(pause.min(left)) => {}
            }
        }
    }

    pub(crate) fn unreachable(&self, error: &reqwest::Error) -> Error {
        Error::Unreachable {
            service: self.service_label.clone(),
            cause: root_cause(error),
        }
    }
}
