//! Monzo's API over HTTPS: the code exchange, refresh and logout (`monzo_auth_domain::monzo::MonzoApi`).
//! Linked only by what exchanges codes (the token function, the local server).
//!
//! What is Monzo-specific about its answers stays here: its error shapes, which failures are
//! worth retrying, and bounds on what is read (64 KiB) and believed (a lifetime over a year).

use std::time::Duration;

use async_trait::async_trait;
use monzo_auth_domain::monzo::{MonzoApi, MonzoError, MonzoSettings, MonzoToken, Unavailable};
use reqwest::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use url::Url;

fn from_transport(err: reqwest::Error) -> MonzoError {
    // Only the kind is kept: reqwest's Display includes the URL, which is harmless here but the
    // habit of never formatting request errors keeps queries out of logs everywhere. A
    // connection that was never made (refused, or timed out while connecting) is Connect: the
    // request never reached Monzo.
    MonzoError::Unavailable(if err.is_connect() {
        Unavailable::Connect
    } else if err.is_timeout() {
        Unavailable::Timeout
    } else if err.is_decode() {
        Unavailable::MalformedAnswer
    } else {
        Unavailable::Transport
    })
}

fn from_status(status: StatusCode) -> MonzoError {
    match status.as_u16() {
        400 | 401 | 403 => MonzoError::Rejected {
            status: status.as_u16(),
        },
        other => MonzoError::Unavailable(Unavailable::Status(other)),
    }
}

/// The most of a Monzo answer that is read: a token answer is a few hundred bytes, so anything
/// near this is not one, and reading it whole would only cost memory.
pub const MAX_ANSWER: usize = 64 * 1024;

/// The longest a refresh or logout (calls anyone can make the service send) may take.
pub const FORWARDED_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest token lifetime passed on (a year); Monzo's are hours.
pub const MAX_EXPIRES_IN: u64 = 365 * 24 * 3600;

/// Reads at most `limit` bytes of `response`'s body; a longer one is a malformed answer.
async fn read_capped(mut response: reqwest::Response, limit: usize) -> Result<Vec<u8>, MonzoError> {
    let too_long = || MonzoError::Unavailable(Unavailable::MalformedAnswer);
    if response
        .content_length()
        .is_some_and(|length| length > limit as u64)
    {
        return Err(too_long());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(from_transport)? {
        if body.len() + chunk.len() > limit {
            return Err(too_long());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    refresh_token: Option<String>,
    expires_in: u64,
    #[serde(default)]
    token_type: Option<String>,
    user_id: String,
}

/// Monzo's API over HTTPS (reqwest, rustls), with the settings' timeouts.
#[derive(Clone)]
pub struct HttpMonzoApi {
    http: reqwest::Client,
    settings: MonzoSettings,
}

impl HttpMonzoApi {
    pub fn new(settings: &MonzoSettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.total_timeout)
            // A redirect from the token endpoint would carry the form to a place we did not choose.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("monzo-auth/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            settings: settings.clone(),
        })
    }

    fn api(&self, path: &str) -> Url {
        let mut url = self.settings.api_url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}{path}"));
        url
    }

    /// Calls anyone can make the service send (refreshes, logouts) get a shorter timeout than
    /// a code exchange.
    fn forwarded_timeout(&self) -> Duration {
        self.settings.total_timeout.min(FORWARDED_TIMEOUT)
    }

    async fn token_request(
        &self,
        form: &[(&str, &str)],
        timeout: Duration,
    ) -> Result<MonzoToken, MonzoError> {
        let response = self
            .http
            .post(self.api("/oauth2/token"))
            .timeout(timeout)
            .form(form)
            .send()
            .await
            .map_err(from_transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(from_status(status));
        }
        let body = read_capped(response, MAX_ANSWER).await?;
        let answer: TokenAnswer = serde_json::from_slice(&body)
            .map_err(|_| MonzoError::Unavailable(Unavailable::MalformedAnswer))?;
        if answer.access_token.is_empty() || answer.user_id.is_empty() {
            return Err(MonzoError::Unavailable(Unavailable::MalformedAnswer));
        }
        let expires_in = if answer.expires_in > MAX_EXPIRES_IN {
            // A token was issued: keep it, with a lifetime the date arithmetic can hold.
            tracing::warn!(
                expires_in = answer.expires_in,
                "Monzo gave a token a lifetime over a year; clamped to a year"
            );
            MAX_EXPIRES_IN
        } else {
            answer.expires_in
        };
        Ok(MonzoToken {
            access_token: answer.access_token.into(),
            refresh_token: answer
                .refresh_token
                .filter(|t| !t.is_empty())
                .map(Into::into),
            expires_in,
            token_type: answer.token_type.unwrap_or_else(|| "Bearer".to_owned()),
            user_id: answer.user_id,
        })
    }
}

/// Monzo's API for `shared::app::Adapters::monzo`.
pub fn open_api(settings: &MonzoSettings) -> Result<std::sync::Arc<dyn MonzoApi>, String> {
    HttpMonzoApi::new(settings)
        .map(|api| std::sync::Arc::new(api) as std::sync::Arc<dyn MonzoApi>)
        .map_err(|err| monzo_auth_domain::flow::error::ErrorChain(&err).to_string())
}

#[async_trait]
impl MonzoApi for HttpMonzoApi {
    async fn exchange_code(
        &self,
        client_secret: &SecretString,
        code: &str,
        redirect_uri: &str,
    ) -> Result<MonzoToken, MonzoError> {
        self.token_request(
            &[
                ("grant_type", "authorization_code"),
                ("client_id", &self.settings.client_id),
                ("client_secret", client_secret.expose_secret()),
                ("redirect_uri", redirect_uri),
                ("code", code),
            ],
            self.settings.total_timeout,
        )
        .await
    }

    async fn refresh(
        &self,
        client_secret: &SecretString,
        refresh_token: &str,
    ) -> Result<MonzoToken, MonzoError> {
        self.token_request(
            &[
                ("grant_type", "refresh_token"),
                ("client_id", &self.settings.client_id),
                ("client_secret", client_secret.expose_secret()),
                ("refresh_token", refresh_token),
            ],
            self.forwarded_timeout(),
        )
        .await
    }

    async fn logout(&self, access_token: &SecretString) -> Result<(), MonzoError> {
        let response = self
            .http
            .post(self.api("/oauth2/logout"))
            .timeout(self.forwarded_timeout())
            .bearer_auth(access_token.expose_secret())
            .send()
            .await
            .map_err(from_transport)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(from_status(response.status()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(api: &str) -> HttpMonzoApi {
        HttpMonzoApi::new(&MonzoSettings {
            client_id: "oauth2client_1".into(),
            auth_url: "https://a.example/".parse().unwrap(),
            api_url: api.parse().unwrap(),
            connect_timeout: Duration::from_secs(1),
            total_timeout: Duration::from_secs(2),
        })
        .unwrap()
    }

    #[test]
    fn api_paths_join_onto_the_base() {
        assert_eq!(
            client("https://api.example").api("/oauth2/token").as_str(),
            "https://api.example/oauth2/token"
        );
        assert_eq!(
            client("http://127.0.0.1:9/monzo/")
                .api("/ping/whoami")
                .as_str(),
            "http://127.0.0.1:9/monzo/ping/whoami"
        );
    }

    #[test]
    fn statuses_split_into_rejected_and_transient() {
        for s in [400, 401, 403] {
            assert!(matches!(
                from_status(StatusCode::from_u16(s).unwrap()),
                MonzoError::Rejected { .. }
            ));
        }
        for s in [404, 429, 500, 502, 503, 504] {
            assert!(matches!(
                from_status(StatusCode::from_u16(s).unwrap()),
                MonzoError::Unavailable(_)
            ));
        }
    }
}
