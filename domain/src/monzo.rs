//! Monzo's OAuth endpoints as the service sees them: the login URL, and the port through which
//! the code exchange, refresh and logout reach Monzo ([`MonzoApi`]; the HTTP client is the
//! crate `monzo-auth-monzo-http`, linked only where codes are exchanged).
//!
//! Monzo's own response bodies never get past the port: callers get a typed error that says
//! whether a retry can help, and nothing Monzo wrote.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use secrecy::SecretString;
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

/// A token as Monzo issued it. `Debug` redacts the secrets.
#[derive(Debug)]
pub struct MonzoToken {
    pub access_token: SecretString,
    pub refresh_token: Option<SecretString>,
    pub expires_in: u64,
    pub token_type: String,
    pub user_id: String,
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

/// The calls that reach Monzo's API. Implementations turn every failure into a [`MonzoError`]
/// and never pass on anything Monzo wrote.
#[async_trait]
pub trait MonzoApi: Send + Sync + 'static {
    /// Exchanges a single-use authorization code for a token.
    async fn exchange_code(
        &self,
        client_secret: &SecretString,
        code: &str,
        redirect_uri: &str,
    ) -> Result<MonzoToken, MonzoError>;

    /// Exchanges a refresh token for a new pair (Monzo rotates both).
    async fn refresh(
        &self,
        client_secret: &SecretString,
        refresh_token: &str,
    ) -> Result<MonzoToken, MonzoError>;

    /// Invalidates an access token at Monzo.
    async fn logout(&self, access_token: &SecretString) -> Result<(), MonzoError>;
}

/// For the functions that never call Monzo's API (`new`, `callback`): every call fails as if
/// Monzo could not be reached.
pub struct NoMonzoApi;

#[async_trait]
impl MonzoApi for NoMonzoApi {
    async fn exchange_code(
        &self,
        _: &SecretString,
        _: &str,
        _: &str,
    ) -> Result<MonzoToken, MonzoError> {
        Err(MonzoError::Unavailable(Unavailable::Connect))
    }

    async fn refresh(&self, _: &SecretString, _: &str) -> Result<MonzoToken, MonzoError> {
        Err(MonzoError::Unavailable(Unavailable::Connect))
    }

    async fn logout(&self, _: &SecretString) -> Result<(), MonzoError> {
        Err(MonzoError::Unavailable(Unavailable::Connect))
    }
}

/// Monzo as the flow uses it: where it is, and the port to its API.
#[derive(Clone)]
pub struct MonzoClient {
    settings: MonzoSettings,
    api: Arc<dyn MonzoApi>,
}

impl MonzoClient {
    pub fn new(settings: MonzoSettings, api: Arc<dyn MonzoApi>) -> Self {
        Self { settings, api }
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

    pub async fn exchange_code(
        &self,
        client_secret: &SecretString,
        code: &str,
        redirect_uri: &str,
    ) -> Result<MonzoToken, MonzoError> {
        self.api
            .exchange_code(client_secret, code, redirect_uri)
            .await
    }

    pub async fn refresh(
        &self,
        client_secret: &SecretString,
        refresh_token: &str,
    ) -> Result<MonzoToken, MonzoError> {
        self.api.refresh(client_secret, refresh_token).await
    }

    pub async fn logout(&self, access_token: &SecretString) -> Result<(), MonzoError> {
        self.api.logout(access_token).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::PollId;

    fn client(auth: &str, api: &str) -> MonzoClient {
        MonzoClient::new(
            MonzoSettings {
                client_id: "oauth2client_1".into(),
                auth_url: auth.parse().unwrap(),
                api_url: api.parse().unwrap(),
                connect_timeout: Duration::from_secs(1),
                total_timeout: Duration::from_secs(2),
            },
            Arc::new(NoMonzoApi),
        )
    }

    #[test]
    fn login_url_keeps_the_configured_path_and_query() {
        let c = client("https://auth.example/login?tenant=a", "https://api.example");
        let state = PollId::generate(0).state();
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
}
