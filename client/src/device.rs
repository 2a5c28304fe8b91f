//! The RFC 8628 device flow through the service: a short code the person types at the
//! service's `/device` page on any device (a phone), while this process polls.

use std::fmt;
use std::time::{Duration, SystemTime};

use monzo_auth_protocol::oauth::{DEVICE_CODE_GRANT, DeviceAuthorization, TokenResponse};
use monzo_auth_protocol::{ErrorBody, ErrorCode};
use tokio::time::Instant;
use url::Url;

use crate::answers::retry_after;
use crate::login::{Polled, poll_paced, send_poll};
use crate::pacing::{Answer, MIN_DELAY, Pacer};
use crate::{Cancel, Client, Error, Progress, RetryReason, Token};

/// The `client_id` the CLI's device logins carry (there is no registration: it names the app).
const CLIENT_ID: &str = "monzo-auth-cli";

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
        let body: DeviceAuthorization = response.json().await.map_err(|_| not_ours())?;
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
        let pacer = Pacer::new(login.interval, login.expires_in);
        poll_paced(pacer, login.started, cancel, &mut on_progress, || {
            self.poll_device_once(login)
        })
        .await
    }

    /// One device poll (RFC 8628 3.4, 3.5). `authorization_pending` and `slow_down` (400s by
    /// the RFC) and outages come back as `Polled::Again`; every final answer as a token or an
    /// error.
    async fn poll_device_once(&self, login: &DeviceLogin) -> Result<Polled, Error> {
        let asked = SystemTime::now();
        let request = self.http.post(self.url("oauth/token")).form(&[
            ("grant_type", DEVICE_CODE_GRANT),
            ("device_code", login.device_code.as_str()),
            ("client_id", CLIENT_ID),
        ]);
        let response = match send_poll(request).await {
            Ok(response) => response,
            Err(again) => return Ok(again),
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(response.headers());
        if status == 200 {
            return response
                .json::<TokenResponse>()
                .await
                .map(|issued| Polled::Token(Token::issued(issued, asked)))
                .map_err(|_| Error::UnexpectedResponse { status });
        }
        let code = response.json::<ErrorBody>().await.ok().map(|e| e.error);
        let again = |answer| Ok(Polled::Again(answer));
        match (status, code) {
            (400, Some(ErrorCode::AuthorizationPending)) => again(Answer::Pending {
                interval: None,
                retry_after,
            }),
            (400 | 429, Some(ErrorCode::SlowDown)) => again(Answer::SlowDown { retry_after }),
            (_, Some(ErrorCode::AccessDenied)) => Err(Error::Denied),
            (_, Some(ErrorCode::ExpiredToken)) => Err(Error::Expired),
            (_, Some(ErrorCode::InvalidGrant)) => Err(Error::InvalidGrant),
            (429 | 500..=599, _) => again(Answer::Unavailable {
                reason: RetryReason::ServiceUnavailable,
                retry_after,
            }),
            _ => Err(Error::UnexpectedResponse { status }),
        }
    }
}
