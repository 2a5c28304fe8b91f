//! Helpers shared by the integration tests: a fake on loopback and a client
//! that talks to it the way monzo-auth (or a browser) would.

#![allow(dead_code)] // each test binary uses a different subset

use std::time::Duration;

use fake_monzo::{ClientRegistration, FakeMonzo, FakeMonzoConfig, RunningFakeMonzo};
use reqwest::StatusCode;
use serde_json::Value;
use url::Url;

pub const CLIENT_ID: &str = "oauth2client_00009test";
pub const SECRET: &str = "mnzconf.test-secret-never-logged";
/// Has a query of its own, which the fake must keep when redirecting.
pub const REDIRECT: &str = "http://127.0.0.1:9/callback?app=desktop";

pub const PUBLIC_ID: &str = "oauth2client_00009public";
pub const PUBLIC_SECRET: &str = "mnzpub.public-secret-never-logged";
pub const PUBLIC_REDIRECT: &str = "http://127.0.0.1:9/public-callback";

pub const DEMO: &str = "user_0000demo";
pub const OTHER: &str = "user_0000other";

pub fn confidential_client() -> ClientRegistration {
    ClientRegistration {
        client_id: CLIENT_ID.to_owned(),
        client_secret: SECRET.to_owned(),
        redirect_uri: REDIRECT.to_owned(),
        confidential: true,
    }
}

pub fn public_client() -> ClientRegistration {
    ClientRegistration {
        client_id: PUBLIC_ID.to_owned(),
        client_secret: PUBLIC_SECRET.to_owned(),
        redirect_uri: PUBLIC_REDIRECT.to_owned(),
        confidential: false,
    }
}

/// The default configuration with one confidential and one public client.
pub fn config() -> FakeMonzoConfig {
    FakeMonzoConfig {
        clients: vec![confidential_client(), public_client()],
        ..FakeMonzoConfig::default()
    }
}

pub struct Fake {
    pub running: RunningFakeMonzo,
    pub http: reqwest::Client,
}

/// A client that, like monzo-auth, never follows redirects: the tests look at
/// the `Location` themselves.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .expect("reqwest client")
}

pub async fn start() -> Fake {
    start_with(config()).await
}

pub async fn start_with(config: FakeMonzoConfig) -> Fake {
    let running = FakeMonzo::start_on_loopback(config)
        .await
        .expect("fake monzo starts");
    Fake {
        running,
        http: http_client(),
    }
}

pub async fn json(response: reqwest::Response) -> Value {
    let text = response.text().await.expect("body");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Asserts a Monzo-shaped error: the status and `{"code": ..., "message": ...}`.
pub async fn assert_monzo_error(
    response: reqwest::Response,
    status: StatusCode,
    code: &str,
) -> Value {
    assert_eq!(response.status(), status);
    let body = json(response).await;
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

impl Fake {
    pub fn monzo(&self) -> &FakeMonzo {
        &self.running.monzo
    }

    pub fn api(&self, path: &str) -> Url {
        self.running.api_url.join(path).expect("api path")
    }

    pub fn auth(&self, path: &str) -> Url {
        self.running.auth_url.join(path).expect("auth path")
    }

    pub async fn login_page(&self, query: &[(&str, &str)]) -> reqwest::Response {
        let mut url = self.running.auth_url.clone();
        url.query_pairs_mut().extend_pairs(query);
        self.http.get(url).send().await.expect("login page")
    }

    pub async fn authorize(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.auth("authorize"))
            .form(form)
            .send()
            .await
            .expect("authorize")
    }

    /// Approves as `user_id` for a client, returning the code from the
    /// redirect after checking its state.
    pub async fn login_as(&self, client_id: &str, redirect_uri: &str, user_id: &str) -> String {
        let state = "state-for-login-helper";
        let response = self
            .authorize(&[
                ("client_id", client_id),
                ("redirect_uri", redirect_uri),
                ("state", state),
                ("user_id", user_id),
                ("decision", "approve"),
            ])
            .await;
        assert_eq!(response.status(), StatusCode::FOUND);
        let location = Url::parse(
            response.headers()["location"]
                .to_str()
                .expect("ascii location"),
        )
        .expect("location is a URL");
        let param = |name: &str| {
            location
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned())
        };
        assert_eq!(param("state").as_deref(), Some(state));
        param("code").expect("code in redirect")
    }

    /// A login of the demo user with the confidential client.
    pub async fn login(&self) -> String {
        self.login_as(CLIENT_ID, REDIRECT, DEMO).await
    }

    pub async fn token(&self, form: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(self.api("oauth2/token"))
            .form(form)
            .send()
            .await
            .expect("token call")
    }

    pub async fn exchange_as(
        &self,
        client_id: &str,
        secret: &str,
        redirect_uri: &str,
        code: &str,
    ) -> reqwest::Response {
        self.token(&[
            ("grant_type", "authorization_code"),
            ("client_id", client_id),
            ("client_secret", secret),
            ("redirect_uri", redirect_uri),
            ("code", code),
        ])
        .await
    }

    pub async fn exchange(&self, code: &str) -> reqwest::Response {
        self.exchange_as(CLIENT_ID, SECRET, REDIRECT, code).await
    }

    /// Exchanges and expects success; returns the token response.
    pub async fn exchange_ok(&self, code: &str) -> Value {
        let response = self.exchange(code).await;
        assert_eq!(response.status(), StatusCode::OK);
        json(response).await
    }

    /// Logs the demo user in and returns the token response.
    pub async fn tokens(&self) -> Value {
        let code = self.login().await;
        self.exchange_ok(&code).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.token(&[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
            ("refresh_token", refresh_token),
        ])
        .await
    }

    pub async fn whoami(&self, access_token: &str) -> reqwest::Response {
        self.http
            .get(self.api("ping/whoami"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("whoami")
    }

    pub async fn whoami_status(&self, access_token: &str) -> StatusCode {
        self.whoami(access_token).await.status()
    }

    pub async fn accounts(&self, access_token: &str) -> reqwest::Response {
        self.http
            .get(self.api("accounts"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("accounts")
    }

    pub async fn logout(&self, access_token: &str) -> reqwest::Response {
        self.http
            .post(self.api("oauth2/logout"))
            .bearer_auth(access_token)
            .send()
            .await
            .expect("logout")
    }
}

pub fn str_field<'a>(value: &'a Value, name: &str) -> &'a str {
    value[name]
        .as_str()
        .unwrap_or_else(|| panic!("{name} missing in {value}"))
}
