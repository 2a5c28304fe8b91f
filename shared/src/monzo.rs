//! Monzo's OAuth endpoints: the login URL, the code exchange, refresh and logout.
//!
//! What is Monzo-specific (URLs, its error shapes, which failures are worth retrying) stays here.
//! Monzo's own response bodies never leave this module: callers get a typed error that says
//! whether a retry can help, and nothing Monzo wrote.

use std::fmt;
use std::time::Duration;

use reqwest::StatusCode;
use secrecy::{ExposeSecret as _, SecretString};
use serde::Deserialize;
use url::Url;

use crate::session::State;

/// Why a call to Monzo failed.
#[derive(Debug, thiserror::Error)]
pub enum MonzoError {
    /// Monzo refused the grant (its 400, 401 or 403): retrying the same code cannot help.
    #[error("Monzo rejected the request (HTTP {status})")]
    Rejected { status: u16 },
    /// Monzo could not answer properly now (429, 5xx, timeout, refused connection, garbled
    /// answer); another attempt may succeed.
    #[error("Monzo is unavailable: {0}")]
    Unavailable(Unavailable),
}

/// The transient failures, named so logs say which one happened without echoing Monzo.
#[derive(Debug)]
pub enum Unavailable {
    Status(u16),
    Timeout,
    Connect,
    MalformedAnswer,
    Transport,
}

impl Unavailable {
    /// Whether Monzo certainly did not act on the request: the connection was never made, or
    /// Monzo said it did not take the request (429 Too Many Requests, 503 Service Unavailable).
    /// After anything else (a timeout or reset once the request was sent, 500/502/504, a garbled
    /// answer) Monzo may have acted, or may still be acting.
    pub fn certainly_not_acted(&self) -> bool {
        matches!(
            self,
            Unavailable::Connect | Unavailable::Status(429) | Unavailable::Status(503)
        )
    }
}

impl fmt::Display for Unavailable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unavailable::Status(status) => write!(f, "HTTP {status}"),
            Unavailable::Timeout => f.write_str("timed out"),
            Unavailable::Connect => f.write_str("could not connect"),
            Unavailable::MalformedAnswer => f.write_str("the answer was not a token"),
            Unavailable::Transport => f.write_str("the connection failed"),
        }
    }
}

impl MonzoError {
    fn from_transport(err: reqwest::Error) -> Self {
        // Only the kind is kept: reqwest's Display includes the URL, which is harmless here but
        // the habit of never formatting request errors keeps queries out of logs everywhere.
        // A connection that was never made (refused, or timed out while connecting) is Connect:
        // the request never reached Monzo.
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

    fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            400 | 401 | 403 => MonzoError::Rejected {
                status: status.as_u16(),
            },
            other => MonzoError::Unavailable(Unavailable::Status(other)),
        }
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
    while let Some(chunk) = response.chunk().await.map_err(MonzoError::from_transport)? {
        if body.len() + chunk.len() > limit {
            return Err(too_long());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A token as Monzo issued it. `Debug` redacts the secrets.
#[derive(Debug)]
pub struct MonzoToken {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_in: u64,
    pub token_type: String,
    pub user_id: String,
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

/// Where Monzo lives and how long to wait for it.
#[derive(Clone, Debug)]
pub struct MonzoSettings {
    pub client_id: String,
    /// The login page; the login URL adds its parameters to whatever path and query this has.
    pub auth_url: Url,
    /// The API base, e.g. `https://api.monzo.com`.
    pub api_url: Url,
    pub connect_timeout: Duration,
    /// Upper bound on one whole call; the redeem lease must outlast it.
    pub total_timeout: Duration,
}

#[derive(Clone)]
pub struct MonzoClient {
    http: reqwest::Client,
    settings: MonzoSettings,
}

impl MonzoClient {
    pub fn new(settings: MonzoSettings) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .connect_timeout(settings.connect_timeout)
            .timeout(settings.total_timeout)
            // A redirect from the token endpoint would carry the form to a place we did not choose.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("monzo-auth/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self { http, settings })
    }

    pub fn settings(&self) -> &MonzoSettings {
        &self.settings
    }

    /// The URL the user opens to log in to Monzo.
    pub fn login_url(&self, redirect_uri: &str, state: &State) -> Url {
        let mut url = self.settings.auth_url.clone();
        url.query_pairs_mut()
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", redirect_uri)
            .append_pair("response_type", "code")
            .append_pair("state", &state.as_text());
        url
    }

    fn api(&self, path: &str) -> Url {
        let mut url = self.settings.api_url.clone();
        let base = url.path().trim_end_matches('/').to_owned();
        url.set_path(&format!("{base}{path}"));
        url
    }

    /// Exchanges a single-use authorization code for a token.
    pub async fn exchange_code(
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

    /// Exchanges a refresh token for a new pair (Monzo rotates both).
    pub async fn refresh(
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
            .map_err(MonzoError::from_transport)?;
        let status = response.status();
        if !status.is_success() {
            return Err(MonzoError::from_status(status));
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

    /// Invalidates an access token at Monzo.
    pub async fn logout(&self, access_token: &SecretString) -> Result<(), MonzoError> {
        let response = self
            .http
            .post(self.api("/oauth2/logout"))
            .timeout(self.forwarded_timeout())
            .bearer_auth(access_token.expose_secret())
            .send()
            .await
            .map_err(MonzoError::from_transport)?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(MonzoError::from_status(response.status()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::PollId;

    fn client(auth: &str, api: &str) -> MonzoClient {
        MonzoClient::new(MonzoSettings {
            client_id: "oauth2client_1".into(),
            auth_url: auth.parse().unwrap(),
            api_url: api.parse().unwrap(),
            connect_timeout: Duration::from_secs(1),
            total_timeout: Duration::from_secs(2),
        })
        .unwrap()
    }

    #[test]
    fn login_url_keeps_the_configured_path_and_query() {
        let c = client("https://auth.example/login?tenant=a", "https://api.example");
        let state = PollId::generate().state();
        let url = c.login_url("https://svc.example/Prod/callback", &state);
        assert_eq!(url.path(), "/login");
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(pairs[0], ("tenant".into(), "a".into()));
        assert!(pairs.contains(&(
            "redirect_uri".into(),
            "https://svc.example/Prod/callback".into()
        )));
        assert!(pairs.contains(&("response_type".into(), "code".into())));
        assert!(pairs.contains(&("state".into(), state.as_text())));
    }

    #[test]
    fn api_paths_join_onto_the_base() {
        assert_eq!(
            client("https://a.example/", "https://api.example")
                .api("/oauth2/token")
                .as_str(),
            "https://api.example/oauth2/token"
        );
        assert_eq!(
            client("https://a.example/", "http://127.0.0.1:9/monzo/")
                .api("/ping/whoami")
                .as_str(),
            "http://127.0.0.1:9/monzo/ping/whoami"
        );
    }

    #[test]
    fn only_a_connection_never_made_429_and_503_mean_monzo_did_not_act() {
        for certain in [
            Unavailable::Connect,
            Unavailable::Status(429),
            Unavailable::Status(503),
        ] {
            assert!(certain.certainly_not_acted(), "{certain}");
        }
        for unknown in [
            Unavailable::Timeout,
            Unavailable::Transport,
            Unavailable::MalformedAnswer,
            Unavailable::Status(500),
            Unavailable::Status(502),
            Unavailable::Status(504),
        ] {
            assert!(!unknown.certainly_not_acted(), "{unknown}");
        }
    }

    #[test]
    fn statuses_split_into_rejected_and_transient() {
        for s in [400, 401, 403] {
            assert!(matches!(
                MonzoError::from_status(StatusCode::from_u16(s).unwrap()),
                MonzoError::Rejected { .. }
            ));
        }
        for s in [404, 429, 500, 502, 503, 504] {
            assert!(matches!(
                MonzoError::from_status(StatusCode::from_u16(s).unwrap()),
                MonzoError::Unavailable(_)
            ));
        }
    }
}
