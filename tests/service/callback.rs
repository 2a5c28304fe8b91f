//! `/callback`: write-once, refuses what it cannot use, and never overwrites a code.

use std::sync::Arc;

use async_trait::async_trait;
use e2e_tests::*;
use monzo_auth_domain::session::{Lease, Pace, PollId, Session, State, UserCodeRecord};
use monzo_auth_domain::store::{Claimed, CounterStore, SessionStore, StoreError, UserCodeStore};
use url::Url;

fn callback_url(app: &TestApp, params: &[(&str, &str)]) -> Url {
    let mut url = app.return_url.clone();
    for (k, v) in params {
        url.query_pairs_mut().append_pair(k, v);
    }
    url
}

async fn assert_refused_page(response: reqwest::Response) {
    assert_eq!(response.status(), 400);
    assert!(response.headers().get("location").is_none());
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("start the login again")
    );
}

#[tokio::test]
async fn an_unknown_or_malformed_state_writes_nothing() {
    let app = spawn_app().await;
    let driver = app.driver();
    let unknown = PollId::generate(0).state();
    let response = driver
        .callback(&callback_url(
            &app,
            &[("code", "c0de"), ("state", &unknown.as_text())],
        ))
        .await;
    assert_refused_page(response).await;
    assert_eq!(app.store.get(&unknown).await.unwrap(), None);

    for params in [
        vec![("code", "c0de"), ("state", "not-a-state")],
        vec![("code", "c0de")],
        vec![("state", unknown.as_text().leak() as &str)],
        vec![],
        vec![("code", ""), ("state", unknown.as_text().leak() as &str)],
    ] {
        assert_refused_page(driver.callback(&callback_url(&app, &params)).await).await;
    }
}

#[tokio::test]
async fn a_second_callback_is_refused_and_the_first_code_wins() {
    let app = spawn_app().await;
    let driver = app.driver();
    let started = driver.start().await;
    let redirect = driver
        .at_monzo(&started.login_url, DEMO_USER, Decision::Approve)
        .await;
    assert_eq!(driver.callback(&redirect.callback_url).await.status(), 303);

    // The exact same URL again (a reload, or an attacker replaying history).
    assert_refused_page(driver.callback(&redirect.callback_url).await).await;
    // A forged code for the same state.
    let forged = callback_url(
        &app,
        &[("code", "forged-code"), ("state", &started.state())],
    );
    assert_refused_page(driver.callback(&forged).await).await;
    // A late denial for the same state.
    let denial = callback_url(
        &app,
        &[("error", "access_denied"), ("state", &started.state())],
    );
    assert_refused_page(driver.callback(&denial).await).await;

    // Only the first, real code can have been kept: a forged one would fail at Monzo.
    let answer = driver.poll(&started.id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(app.fake().stats().code_exchanges, 1);
}

#[tokio::test]
async fn a_code_after_a_denial_is_refused() {
    let app = spawn_app().await;
    let driver = app.driver();
    let started = driver.start().await;
    let denial = driver
        .at_monzo(&started.login_url, DEMO_USER, Decision::Deny)
        .await;
    assert_eq!(driver.callback(&denial.callback_url).await.status(), 303);
    let code = callback_url(&app, &[("code", "late-code"), ("state", &started.state())]);
    assert_refused_page(driver.callback(&code).await).await;
    driver
        .poll(&started.id)
        .await
        .assert_error(403, "access_denied");
}

#[tokio::test]
async fn the_code_is_stored_sealed() {
    let app = spawn_app().await;
    let driver = app.driver();
    let (started, code) = driver.authorized_session(DEMO_USER).await;
    let state = State::parse(&started.state()).unwrap();
    let session = app.store.get(&state).await.unwrap().unwrap();
    let shown = format!("{session:?}");
    assert!(!shown.contains(&code) && !shown.contains(&started.id));
    let monzo_auth_domain::session::Status::Authorized { sealed_code } = &session.status else {
        panic!("not authorized: {session:?}");
    };
    assert!(
        !sealed_code
            .windows(code.len())
            .any(|w| w == code.as_bytes())
    );
    let id = PollId::parse(&started.id).unwrap();
    assert_eq!(
        id.sealing_key()
            .open(sealed_code)
            .map(|opened| opened.expose().to_owned()),
        Some(code)
    );
}

/// A store whose backend is down: every call fails the way an unreachable database does.
struct UnavailableStore;

fn down() -> StoreError {
    StoreError::unavailable(std::io::Error::new(
        std::io::ErrorKind::ConnectionRefused,
        "store down",
    ))
}

#[async_trait]
impl SessionStore for UnavailableStore {
    async fn create(&self, _: &Session) -> Result<(), StoreError> {
        Err(down())
    }
    async fn health(&self) -> Result<(), StoreError> {
        Err(down())
    }
    async fn get(&self, _: &State) -> Result<Option<Session>, StoreError> {
        Err(down())
    }
    async fn authorize(&self, _: &State, _: &[u8], _: i64) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn deny(&self, _: &State, _: i64) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn claim(&self, _: &State, _: &Lease, _: i64) -> Result<Option<Claimed>, StoreError> {
        Err(down())
    }
    async fn release(&self, _: &State, _: &str) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn finish(&self, _: &State, _: &str) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn pace_poll(&self, _: &State, _: i64, _: i64) -> Result<Pace, StoreError> {
        Err(down())
    }
}

#[async_trait]
impl UserCodeStore for UnavailableStore {
    async fn create_user_code(&self, _: &UserCodeRecord, _: i64) -> Result<bool, StoreError> {
        Err(down())
    }
    async fn find_user_code(&self, _: &str) -> Result<Option<UserCodeRecord>, StoreError> {
        Err(down())
    }
    async fn create_with_user_code(
        &self,
        _: &Session,
        _: &UserCodeRecord,
        _: i64,
    ) -> Result<bool, StoreError> {
        Err(down())
    }
}

#[async_trait]
impl CounterStore for UnavailableStore {
    async fn failures(&self, _: &str) -> Result<u64, StoreError> {
        Err(down())
    }
    async fn add_failure(&self, _: &str, _: i64) -> Result<u64, StoreError> {
        Err(down())
    }
    async fn refund_failure(&self, _: &str) -> Result<(), StoreError> {
        Err(down())
    }
}

#[tokio::test]
async fn a_store_outage_is_503_everywhere() {
    let app = spawn_app_with(AppOptions {
        store: Some(Arc::new(UnavailableStore)),
        ..Default::default()
    })
    .await;
    let driver = app.driver();
    let new = JsonAnswer::read(app.http.post(driver.url("new")).send().await.unwrap()).await;
    new.assert_error(503, "temporarily_unavailable");
    assert!(new.headers.contains_key("retry-after"));
    let id = PollId::generate(0).expose();
    let poll = driver.poll(&id).await;
    poll.assert_error(503, "temporarily_unavailable");
    assert!(poll.headers.contains_key("retry-after"));
    let state = PollId::generate(0).state().as_text();
    let page = driver
        .callback(&callback_url(&app, &[("code", "c"), ("state", &state)]))
        .await;
    assert_eq!(page.status(), 503);
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let health = JsonAnswer::read(app.http.get(driver.url("healthz")).send().await.unwrap()).await;
    health.assert_error(503, "temporarily_unavailable");
}

#[tokio::test]
async fn a_head_probe_of_the_callback_uses_nothing_up() {
    let app = spawn_app().await;
    let driver = app.driver();
    let started = driver.start().await;
    let redirect = driver
        .at_monzo(&started.login_url, DEMO_USER, Decision::Approve)
        .await;
    let probe = app
        .http
        .head(redirect.callback_url.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(probe.status(), 200);
    driver.poll(&started.id).await;
    assert_eq!(
        driver.poll(&started.id).await.status,
        202,
        "the probe recorded nothing"
    );
    assert_eq!(driver.callback(&redirect.callback_url).await.status(), 303);
    assert_eq!(driver.poll(&started.id).await.status, 200);
}
