//! The standard OAuth face: RFC 8628 device flow, refresh, RFC 8414 metadata. Driven by client
//! libraries nobody here wrote (the Rust `oauth2` crate, Python's requests-oauth2client) as well
//! as by hand for the error cases.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use base64::Engine as _;
use e2e_tests::*;
use fake_monzo::Failure;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, DeviceAuthorizationUrl, EndpointNotSet, EndpointSet, RefreshToken,
    RequestTokenError, StandardDeviceAuthorizationResponse, TokenResponse as _, TokenUrl,
};
use serde_json::{Value, json};
use url::Url;

const DEVICE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
const APP: &str = "my-cli";

type HttpFuture = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<oauth2::HttpResponse, reqwest::Error>> + Send>,
>;

/// The oauth2 crate's HTTP client, over our reqwest. It counts the `slow_down` answers the
/// crate sees, and can slip in one extra poll of its own just before the crate's first, so
/// the crate's poll comes too fast and must cope with `slow_down`.
#[derive(Clone, Default)]
struct CrateHttp {
    slow_downs: Arc<AtomicUsize>,
    rogue_first_poll: bool,
    polls: Arc<AtomicUsize>,
}

impl CrateHttp {
    fn client(&self) -> impl Fn(oauth2::HttpRequest) -> HttpFuture + Clone {
        let this = self.clone();
        let http = http_client();
        move |request: oauth2::HttpRequest| {
            let (this, http) = (this.clone(), http.clone());
            Box::pin(async move {
                let (parts, body) = request.into_parts();
                let is_poll = String::from_utf8_lossy(&body).contains("device_code=");
                if is_poll
                    && this.rogue_first_poll
                    && this.polls.fetch_add(1, Ordering::SeqCst) == 0
                {
                    http.post(parts.uri.to_string())
                        .headers(parts.headers.clone())
                        .body(body.clone())
                        .send()
                        .await?;
                }
                let response = http
                    .request(parts.method, parts.uri.to_string())
                    .headers(parts.headers)
                    .body(body)
                    .send()
                    .await?;
                let mut builder = http_response_builder(response.status());
                for (name, value) in response.headers() {
                    builder = builder.header(name, value);
                }
                let bytes = response.bytes().await?.to_vec();
                if String::from_utf8_lossy(&bytes).contains("\"slow_down\"") {
                    this.slow_downs.fetch_add(1, Ordering::SeqCst);
                }
                Ok(builder.body(bytes).unwrap())
            }) as HttpFuture
        }
    }
}

fn http_response_builder(status: reqwest::StatusCode) -> axum::http::response::Builder {
    axum::http::Response::builder().status(status.as_u16())
}

fn oauth_client(
    app: &TestApp,
) -> BasicClient<EndpointNotSet, EndpointSet, EndpointNotSet, EndpointNotSet, EndpointSet> {
    BasicClient::new(ClientId::new(APP.into()))
        .set_auth_type(AuthType::RequestBody)
        .set_device_authorization_url(
            DeviceAuthorizationUrl::new(app.base.join("device/code").unwrap().into()).unwrap(),
        )
        .set_token_uri(TokenUrl::new(app.base.join("oauth/token").unwrap().into()).unwrap())
}

/// The error code of a failed crate request, e.g. `access_denied`.
fn crate_error<E: std::error::Error + 'static>(
    err: RequestTokenError<E, oauth2::DeviceCodeErrorResponse>,
) -> String {
    match err {
        RequestTokenError::ServerResponse(response) => response.error().to_string(),
        other => panic!("not a server answer: {other:?}"),
    }
}

/// Starts a device login with the crate and has a person approve (or deny) it meanwhile.
async fn crate_device_login(
    app: &TestApp,
    http: &CrateHttp,
    decision: Option<Decision>,
) -> Result<oauth2::basic::BasicTokenResponse, String> {
    let client = oauth_client(app);
    let details: StandardDeviceAuthorizationResponse = client
        .exchange_device_code()
        .request_async(&http.client())
        .await
        .expect("device code");
    let complete: Url = details
        .verification_uri_complete()
        .expect("complete URI")
        .secret()
        .parse()
        .unwrap();
    if let Some(decision) = decision {
        let driver = app.driver();
        let (store, state) = (
            Arc::clone(&app.store),
            monzo_auth_domain::session::PollId::parse(details.device_code().secret())
                .expect("one of the service's device codes")
                .state(),
        );
        tokio::spawn(async move {
            // The crate's loop polls first (and hears authorization_pending), as a person needs
            // a moment too: the session records its first poll.
            wait_until("the crate's first poll", Duration::from_secs(30), || {
                let (store, state) = (Arc::clone(&store), state.clone());
                async move {
                    let session = store.get(&state).await.ok().flatten();
                    session
                        .and_then(|session| session.device)
                        .is_some_and(|device| device.next_poll_ms.is_some())
                }
            })
            .await;
            driver.approve_device(&complete, DEMO_USER, decision).await;
        });
    }
    client
        .exchange_device_access_token(&details)
        .request_async(
            &http.client(),
            tokio::time::sleep,
            Some(Duration::from_secs(60)),
        )
        .await
        .map_err(crate_error)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth2_crate_logs_in_and_copes_with_slow_down() {
    let app = spawn_app().await;
    let http = CrateHttp {
        rogue_first_poll: true,
        ..Default::default()
    };
    let token = crate_device_login(&app, &http, Some(Decision::Approve))
        .await
        .unwrap();
    assert!(
        http.slow_downs.load(Ordering::SeqCst) >= 1,
        "the crate never met slow_down"
    );
    assert!(
        app.fake()
            .is_access_token_live(token.access_token().secret())
    );
    assert!(token.refresh_token().is_some());
    assert_eq!(token.expires_in(), Some(Duration::from_secs(21600)));
    assert_eq!(app.fake().stats().code_exchanges, 1, "exactly one exchange");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth2_crate_hears_access_denied() {
    let app = spawn_app().await;
    let err = crate_device_login(&app, &CrateHttp::default(), Some(Decision::Deny))
        .await
        .unwrap_err();
    assert_eq!(err, "access_denied");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth2_crate_hears_expired_token() {
    let app = spawn_app_with(AppOptions::default().env("SESSION_TTL_SECS", "1")).await;
    let err = crate_device_login(&app, &CrateHttp::default(), None)
        .await
        .unwrap_err();
    assert_eq!(err, "expired_token");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_oauth2_crate_refreshes_and_the_old_refresh_token_stops_working() {
    let app = spawn_app().await;
    let http = CrateHttp::default();
    let first = crate_device_login(&app, &http, Some(Decision::Approve))
        .await
        .unwrap();
    let old_refresh = first.refresh_token().unwrap().clone();
    let client = oauth_client(&app);
    let second = client
        .exchange_refresh_token(&old_refresh)
        .request_async(&http.client())
        .await
        .expect("refresh");
    let new_refresh = second.refresh_token().expect("a rotated refresh token");
    assert_ne!(new_refresh.secret(), old_refresh.secret());
    assert_ne!(
        second.access_token().secret(),
        first.access_token().secret()
    );
    assert!(
        app.fake()
            .is_access_token_live(second.access_token().secret())
    );
    assert!(
        !app.fake()
            .is_access_token_live(first.access_token().secret()),
        "the old access token died"
    );

    let again = client
        .exchange_refresh_token(&RefreshToken::new(old_refresh.secret().clone()))
        .request_async(&http.client())
        .await;
    match again {
        Err(RequestTokenError::ServerResponse(response)) => {
            assert_eq!(response.error().to_string(), "invalid_grant")
        }
        other => panic!("the old refresh token still worked: {other:?}"),
    }
}

async fn post_form(app: &TestApp, path: &str, form: &[(&str, &str)]) -> JsonAnswer {
    JsonAnswer::read(
        app.http
            .post(app.base.join(path).unwrap())
            .form(form)
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A device code whose login the demo user has approved at the stand-in.
async fn approved_device_code(app: &TestApp) -> String {
    let started = device_code(app).await;
    let complete: Url = started["verification_uri_complete"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    app.driver()
        .approve_device(&complete, DEMO_USER, Decision::Approve)
        .await;
    started["device_code"].as_str().unwrap().to_owned()
}

/// One device-flow poll of `/oauth/token` by the app the device code was issued to.
async fn poll_device(app: &TestApp, device_code: &str) -> JsonAnswer {
    post_form(
        app,
        "oauth/token",
        &[
            ("grant_type", DEVICE_GRANT),
            ("device_code", device_code),
            ("client_id", APP),
        ],
    )
    .await
}

fn assert_oauth_error(answer: &JsonAnswer, error: &str) {
    answer.assert_error(400, error);
    assert_eq!(answer.headers["cache-control"], "no-store");
    assert_eq!(answer.headers["pragma"], "no-cache");
}

async fn device_code(app: &TestApp) -> Value {
    let answer = post_form(
        app,
        "device/code",
        &[("client_id", APP), ("scope", "ignored")],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body
}

#[tokio::test]
async fn device_code_answers_as_rfc_8628_says() {
    let app = spawn_app().await;
    let answer = post_form(&app, "device/code", &[("client_id", APP)]).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.headers["cache-control"], "no-store");
    let body = &answer.body;
    let device_code = body["device_code"].as_str().unwrap();
    assert!(
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(device_code)
            .unwrap()
            .len()
            * 8
            >= 128
    );
    let user_code = body["user_code"].as_str().unwrap();
    assert_eq!(user_code.len(), 9);
    assert!(
        user_code.chars().enumerate().all(|(i, c)| if i == 4 {
            c == '-'
        } else {
            "BCDFGHJKLMNPQRSTVWXZ".contains(c)
        }),
        "{user_code}"
    );
    assert_eq!(
        body["verification_uri"],
        app.base.join("device").unwrap().as_str()
    );
    assert_eq!(
        body["verification_uri_complete"],
        format!("{}device?user_code={user_code}", app.base)
    );
    assert_eq!(body["expires_in"], 600);
    assert_eq!(body["interval"], 1);

    post_form(&app, "device/code", &[])
        .await
        .assert_error(400, "invalid_request");
    post_form(
        &app,
        "device/code",
        &[("client_id", "a"), ("client_id", "b")],
    )
    .await
    .assert_error(400, "invalid_request");
    let json = app
        .http
        .post(app.base.join("device/code").unwrap())
        .json(&serde_json::json!({"client_id": APP}))
        .send()
        .await
        .unwrap();
    JsonAnswer::read(json)
        .await
        .assert_error(400, "invalid_request");
    let get = app
        .http
        .get(app.base.join("device/code").unwrap())
        .send()
        .await
        .unwrap();
    JsonAnswer::read(get)
        .await
        .assert_error(405, "method_not_allowed");
}

#[tokio::test]
async fn every_token_endpoint_error_is_a_400_with_an_error_code() {
    let clock = ManualClock::new();
    let app = spawn_app_with(AppOptions::default().clock(&clock)).await;
    let driver = app.driver();
    let started = device_code(&app).await;
    let device_code = started["device_code"].as_str().unwrap();
    let poll = |client_id: &'static str| {
        let app = &app;
        async move {
            post_form(
                app,
                "oauth/token",
                &[
                    ("grant_type", DEVICE_GRANT),
                    ("device_code", device_code),
                    ("client_id", client_id),
                ],
            )
            .await
        }
    };

    let unknown = monzo_auth_domain::session::PollId::generate(0).expose();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[], "invalid_request"),
        (&[("grant_type", "password")], "unsupported_grant_type"),
        (
            &[("grant_type", DEVICE_GRANT), ("client_id", APP)],
            "invalid_request",
        ),
        (
            &[("grant_type", DEVICE_GRANT), ("device_code", device_code)],
            "invalid_request",
        ),
        (
            &[
                ("grant_type", DEVICE_GRANT),
                ("device_code", device_code),
                ("device_code", device_code),
                ("client_id", APP),
            ],
            "invalid_request",
        ),
        (
            &[
                ("grant_type", DEVICE_GRANT),
                ("device_code", &unknown),
                ("client_id", APP),
            ],
            "invalid_grant",
        ),
        (&[("grant_type", "refresh_token")], "invalid_request"),
        (
            &[
                ("grant_type", "refresh_token"),
                ("refresh_token", "not-a-monzo-token"),
            ],
            "invalid_grant",
        ),
    ];
    for (form, error) in cases {
        assert_oauth_error(&post_form(&app, "oauth/token", form).await, error);
    }

    // A wrong client_id does not use up the session: the right one right after is on time.
    assert_oauth_error(&poll("someone-else").await, "invalid_client");
    assert_oauth_error(&poll(APP).await, "authorization_pending");
    assert_oauth_error(&poll(APP).await, "slow_down");

    let json = app
        .http
        .post(app.base.join("oauth/token").unwrap())
        .json(&serde_json::json!({"grant_type": "refresh_token", "refresh_token": "x"}))
        .send()
        .await
        .unwrap();
    // RFC 6749 5.2: whatever the endpoint cannot read is a 400 like any other client error: JSON,
    // no body and no content type at all, a body too large, a GET.
    JsonAnswer::read(json)
        .await
        .assert_error(400, "invalid_request");
    let url = app.base.join("oauth/token").unwrap();
    for request in [
        app.http.post(url.clone()),
        app.http
            .post(url.clone())
            .header("content-type", "text/plain")
            .body("grant_type=refresh_token"),
        app.http
            .post(url.clone())
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!(
                "grant_type=refresh_token&refresh_token={}",
                "a".repeat(100_000)
            )),
    ] {
        let answer = JsonAnswer::read(request.send().await.unwrap()).await;
        assert_oauth_error(&answer, "invalid_request");
    }

    // Denied, then (another session) redeemed, then expired.
    let complete: Url = started["verification_uri_complete"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    driver
        .approve_device(&complete, DEMO_USER, Decision::Deny)
        .await;
    clock.advance(Duration::from_secs(6)); // the interval grew to 6 s above
    assert_oauth_error(&poll(APP).await, "access_denied");
}

#[tokio::test]
async fn redeemed_and_expired_device_codes_answer_their_errors() {
    let clock = ManualClock::new();
    let app = spawn_app_with(
        AppOptions::default()
            .env("SESSION_TTL_SECS", "2")
            .clock(&clock),
    )
    .await;
    let code = approved_device_code(&app).await;
    let answer = poll_device(&app, &code).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["user_id"], DEMO_USER);
    assert!(answer.body["refresh_token"].is_string());
    clock.advance(Duration::from_secs(1));
    assert_oauth_error(&poll_device(&app, &code).await, "invalid_grant");

    let late = device_code(&app).await;
    clock.advance(Duration::from_secs(2));
    let polled = late["device_code"].as_str().unwrap().to_owned();
    assert_oauth_error(&poll_device(&app, &polled).await, "expired_token");
}

#[tokio::test]
async fn a_monzo_outage_during_a_device_exchange_is_slow_down_and_loses_nothing() {
    let clock = ManualClock::new();
    let app = spawn_app_with(AppOptions::default().clock(&clock)).await;
    let polled = approved_device_code(&app).await;
    app.fake().fail_next(1, Failure::Status(503));
    assert_oauth_error(&poll_device(&app, &polled).await, "slow_down");
    clock.advance(Duration::from_secs(1));
    let answer = poll_device(&app, &polled).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn after_a_device_exchange_of_unknown_outcome_polls_are_pending_until_the_lease_lapses() {
    let clock = ManualClock::new();
    let app = spawn_app_with(
        AppOptions::default()
            .env("MONZO_TIMEOUT_SECS", "1")
            .clock(&clock),
    )
    .await;
    let polled = approved_device_code(&app).await;
    // A 502 from Monzo: it may have taken the code.
    app.fake().fail_next(1, Failure::Status(502));
    assert_oauth_error(&poll_device(&app, &polled).await, "slow_down");
    clock.advance(Duration::from_secs(1));
    assert_oauth_error(&poll_device(&app, &polled).await, "authorization_pending");
    assert_eq!(
        app.fake().stats().token_calls,
        1,
        "no second exchange during the lease"
    );
    let lease = monzo_auth_domain::flow::FlowSettings::lease_for(Duration::from_secs(1));
    clock.advance(lease - Duration::from_secs(2));
    assert_oauth_error(&poll_device(&app, &polled).await, "authorization_pending");
    clock.advance(Duration::from_secs(1));
    let answer = poll_device(&app, &polled).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn a_monzo_outage_during_a_refresh_is_503_with_retry_after() {
    let app = spawn_app().await;
    let driver = app.driver();
    let (started, _) = driver.authorized_session(DEMO_USER).await;
    let token = driver.poll(&started.id).await;
    let refresh = token.body["refresh_token"].as_str().unwrap();
    app.fake().fail_next(1, Failure::Status(503));
    let answer = post_form(
        &app,
        "oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    answer.assert_error(503, "temporarily_unavailable");
    assert!(answer.headers.contains_key("retry-after"));
    // Nothing was used up: the same refresh token still works.
    let answer = post_form(
        &app,
        "oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh),
            ("client_id", "anything"),
        ],
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_ne!(
        answer.body["refresh_token"].as_str().unwrap(),
        refresh,
        "the pair rotated"
    );
}

// ---- The /device pages.

async fn open_device_page(
    app: &TestApp,
    path: &str,
    xff: Option<&str>,
) -> (
    reqwest::StatusCode,
    String,
    Option<String>,
    reqwest::header::HeaderMap,
) {
    let mut request = app.http.get(app.base.join(path).unwrap());
    if let Some(xff) = xff {
        request = request.header("x-forwarded-for", xff);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let cookie = headers
        .get("set-cookie")
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned());
    (status, response.text().await.unwrap(), cookie, headers)
}

/// Types `code` into the entry form (with the cookie and token a fresh visit got).
async fn type_code(app: &TestApp, code: &str, xff: Option<&str>) -> (reqwest::StatusCode, String) {
    let (_, html, cookie, _) = open_device_page(app, "device", xff).await;
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let mut request = app
        .http
        .post(app.base.join("device").unwrap())
        .header("cookie", cookie.unwrap())
        .form(&[("csrf", csrf.as_str()), ("user_code", code)]);
    if let Some(xff) = xff {
        request = request.header("x-forwarded-for", xff);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn a_typed_code_in_any_spelling_reaches_the_confirmation() {
    let app = spawn_app().await;
    let started = device_code(&app).await;
    let code = started["user_code"].as_str().unwrap();
    let (status, _, cookie, headers) = open_device_page(&app, "device", None).await;
    assert_eq!(status, 200);
    let cookie_header = headers["set-cookie"].to_str().unwrap();
    assert!(
        cookie_header.contains("HttpOnly") && cookie_header.contains("SameSite=Strict"),
        "{cookie_header}"
    );
    assert!(cookie.is_some());
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains(&format!(
            "form-action 'self' {}",
            app.monzo.auth_url.origin().ascii_serialization()
        )),
        "{csp}"
    );
    for spelling in [
        code.to_owned(),
        code.to_lowercase(),
        code.replace('-', ""),
        format!(" {} ", code.replace('-', " ")),
    ] {
        let (status, html) = type_code(&app, &spelling, None).await;
        assert_eq!(status, 200, "{spelling:?}");
        assert!(
            html.contains(code) && html.contains("continue to Monzo"),
            "{spelling:?}: {html}"
        );
    }
}

#[tokio::test]
async fn a_cross_site_form_post_is_refused() {
    let app = spawn_app().await;
    let started = device_code(&app).await;
    let code = started["user_code"].as_str().unwrap();
    let confirm = app.base.join("device/confirm").unwrap();
    // Another site can post the form, but the browser sends no SameSite=Strict cookie with it.
    let forged = app
        .http
        .post(confirm.clone())
        .form(&[("csrf", "x".repeat(43).as_str()), ("user_code", code)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(forged.headers().get("location").is_none());
    // Nor does a token from another visit match this visitor's cookie.
    let (_, _, cookie, _) = open_device_page(&app, "device", None).await;
    let mismatched = app
        .http
        .post(confirm)
        .header("cookie", cookie.unwrap())
        .form(&[
            (
                "csrf",
                monzo_auth_domain::session::random_token::<32>().as_str(),
            ),
            ("user_code", code),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(mismatched.status(), 403);
    let polled = started["device_code"].as_str().unwrap().to_owned();
    assert_oauth_error(&poll_device(&app, &polled).await, "authorization_pending");
}

#[tokio::test]
async fn wrong_codes_are_limited_per_address_and_overall() {
    let app = spawn_app_with(
        AppOptions::default()
            .env("TRUST_FORWARDED_FOR", "true")
            .env("DEVICE_GUESS_LIMIT_PER_ADDRESS", "10")
            .env("DEVICE_GUESS_LIMIT_GLOBAL", "25"),
    )
    .await;
    let started = device_code(&app).await;
    let right = started["user_code"].as_str().unwrap();

    // One person mistyping a few times is not locked out.
    for _ in 0..3 {
        assert_eq!(
            type_code(&app, "BCDF-GHJK", Some("198.51.100.1")).await.0,
            400
        );
    }
    assert_eq!(type_code(&app, right, Some("198.51.100.1")).await.0, 200);

    // An address guessing is stopped by its own limit, right code or not; others carry on.
    for n in 0..7 {
        assert_eq!(
            type_code(&app, "ZZZZ-ZZZZ", Some("198.51.100.1")).await.0,
            400,
            "guess {n}"
        );
    }
    let (status, html) = type_code(&app, right, Some("198.51.100.1")).await;
    assert_eq!(status, 429, "{html}");
    assert!(html.contains("Too many wrong codes"));
    assert_eq!(
        type_code(&app, right, Some("198.51.100.2")).await.0,
        200,
        "another address is unaffected"
    );

    // IPv6 counts per /64: two addresses of one /64 share a limit.
    for _ in 0..10 {
        assert_eq!(
            type_code(&app, "ZZZZ-ZZZZ", Some("2001:db8:5:6::1"))
                .await
                .0,
            400
        );
    }
    assert_eq!(
        type_code(&app, right, Some("2001:db8:5:6::abcd")).await.0,
        429
    );
    // 20 wrong so far; five more from fresh addresses spend the global budget for everyone.
    for n in 0..5 {
        assert_eq!(
            type_code(&app, "ZZZZ-ZZZZ", Some(&format!("203.0.113.{n}")))
                .await
                .0,
            400
        );
    }
    assert_eq!(
        type_code(&app, right, Some("203.0.113.99")).await.0,
        429,
        "the global budget is spent, and this network has failures already"
    );
    // A network with no failure this window still gets its one check: the right code passes,
    // a guess gets one try and no second.
    assert_eq!(type_code(&app, right, Some("192.0.2.50")).await.0, 200);
    assert_eq!(
        type_code(&app, "ZZZZ-ZZZZ", Some("198.18.0.1")).await.0,
        400
    );
    assert_eq!(
        type_code(&app, "ZZZZ-ZZZZ", Some("198.18.0.2")).await.0,
        429
    );
}

#[tokio::test]
async fn two_hundred_concurrent_wrong_codes_from_one_address_get_ten_checks() {
    let app = spawn_app_with(AppOptions::default().env("TRUST_FORWARDED_FOR", "true")).await;
    device_code(&app).await;
    let app = Arc::new(app);
    let guesses = (0..200).map(|_| {
        let app = Arc::clone(&app);
        tokio::spawn(async move { type_code(&app, "ZZZZ-ZZZZ", Some("198.51.100.77")).await.0 })
    });
    let mut checked = 0;
    for guess in guesses {
        match guess.await.unwrap().as_u16() {
            400 => checked += 1,
            429 => {}
            other => panic!("{other}"),
        }
    }
    assert_eq!(checked, 10, "DEVICE_GUESS_LIMIT_PER_ADDRESS is 10");
}

#[tokio::test]
async fn the_metadata_has_what_rfc_8414_requires() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(
            app.base
                .join(".well-known/oauth-authorization-server")
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let metadata: Value = response.json().await.unwrap();
    let issuer: Url = metadata["issuer"].as_str().unwrap().parse().unwrap();
    assert!(
        issuer.query().is_none() && issuer.fragment().is_none(),
        "RFC 8414 2: no query or fragment"
    );
    assert_eq!(
        issuer.as_str().trim_end_matches('/'),
        app.base.as_str().trim_end_matches('/')
    );
    assert!(
        metadata["response_types_supported"].is_array(),
        "REQUIRED by RFC 8414 2"
    );
    for endpoint in ["token_endpoint", "device_authorization_endpoint"] {
        let url: Url = metadata[endpoint].as_str().unwrap().parse().unwrap();
        assert!(
            url.as_str()
                .starts_with(metadata["issuer"].as_str().unwrap()),
            "{endpoint}"
        );
    }
    assert_eq!(
        metadata["token_endpoint"],
        app.base.join("oauth/token").unwrap().as_str()
    );
    assert_eq!(
        metadata["device_authorization_endpoint"],
        app.base.join("device/code").unwrap().as_str()
    );
    assert_eq!(
        metadata["revocation_endpoint"],
        app.base.join("oauth/revoke").unwrap().as_str()
    );
    assert_eq!(
        metadata["revocation_endpoint_auth_methods_supported"],
        json!(["none"])
    );
    // Where the tokens are for: the stand-in's API here (Monzo's in service).
    assert_eq!(
        metadata["monzo_api_url"],
        app.monzo.api_url.as_str().trim_end_matches('/')
    );
    let grants: Vec<&str> = metadata["grant_types_supported"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g.as_str().unwrap())
        .collect();
    assert!(grants.contains(&DEVICE_GRANT) && grants.contains(&"refresh_token"));
    assert_eq!(
        metadata["token_endpoint_auth_methods_supported"],
        serde_json::json!(["none"])
    );
    assert!(
        metadata.get("authorization_endpoint").is_none(),
        "the login is Monzo's, not ours"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_requests_oauth2client_logs_in_with_its_own_polling_job() {
    let app = spawn_app().await;
    let python = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python");
    assert!(
        python.exists(),
        "run `make test`: it installs requests-oauth2client into .venv"
    );
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("python/device_login.py");
    let mut child = clean_command(&python)
        .arg(script)
        .args([app.base.as_str(), APP])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let first: Value = tokio::task::block_in_place(|| {
        serde_json::from_str(&lines.next().expect("the user code line").unwrap()).unwrap()
    });
    let complete: Url = first["verification_uri_complete"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    app.driver()
        .approve_device(&complete, DEMO_USER, Decision::Approve)
        .await;
    let token: Value = tokio::task::block_in_place(|| {
        let line = lines.next().expect("the token line").unwrap();
        wait_with_timeout(&mut child, Duration::from_secs(60));
        serde_json::from_str(&line).unwrap()
    });
    // The library's refresh rotated the pair: the first access token died with it.
    assert!(
        !app.fake()
            .is_access_token_live(token["access_token"].as_str().unwrap())
    );
    assert!(
        app.fake()
            .is_access_token_live(token["refreshed_access_token"].as_str().unwrap())
    );
    assert_ne!(token["refresh_token"], token["refreshed_refresh_token"]);
}

// ---- RFC 7009 revocation.

async fn revoke(app: &TestApp, form: &[(&str, &str)]) -> reqwest::Response {
    app.http
        .post(app.base.join("oauth/revoke").unwrap())
        .form(form)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn revoking_an_access_token_logs_it_out_at_monzo_and_ends_its_refresh_token() {
    let app = spawn_app().await;
    let token = poll_device(&app, &approved_device_code(&app).await).await;
    assert_eq!(token.status, 200, "{}", token.body);
    let access = token.body["access_token"].as_str().unwrap();
    let refresh = token.body["refresh_token"].as_str().unwrap();
    assert!(app.fake().is_access_token_live(access));

    let answer = revoke(
        &app,
        &[("token", access), ("token_type_hint", "access_token")],
    )
    .await;
    assert_eq!(answer.status(), 200);
    assert_eq!(answer.headers()["cache-control"], "no-store");
    assert_eq!(answer.text().await.unwrap(), "");
    assert!(!app.fake().is_access_token_live(access));
    assert_eq!(app.fake().stats().logouts, [DEMO_USER]);
    // Monzo ends the whole login: the refresh token issued with it is gone too.
    let refreshed = post_form(
        &app,
        "oauth/token",
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
    )
    .await;
    assert_oauth_error(&refreshed, "invalid_grant");
    // A token Monzo does not know (again, or never) is as revoked as it gets: 200 (2.2).
    assert_eq!(revoke(&app, &[("token", access)]).await.status(), 200);
    assert_eq!(
        revoke(
            &app,
            &[("token", "not-a-token"), ("token_type_hint", "other")]
        )
        .await
        .status(),
        200
    );
}

#[tokio::test]
async fn revocation_errors_are_rfc_7009s_and_a_monzo_outage_is_503() {
    let app = spawn_app().await;
    let read = |response: reqwest::Response| JsonAnswer::read(response);
    let missing = read(revoke(&app, &[("token_type_hint", "access_token")]).await).await;
    assert_oauth_error(&missing, "invalid_request");
    // A token Monzo knows as neither kind, hinted as a refresh token: as revoked as it gets.
    assert_eq!(
        revoke(
            &app,
            &[("token", "x"), ("token_type_hint", "refresh_token")],
        )
        .await
        .status(),
        200
    );
    let huge = "a".repeat(monzo_auth_domain::session::MAX_FORWARDED_TOKEN + 1);
    let oversized = read(revoke(&app, &[("token", &huge)]).await).await;
    assert_oauth_error(&oversized, "invalid_request");
    let spaced = read(revoke(&app, &[("token", "a b")]).await).await;
    assert_oauth_error(&spaced, "invalid_request");
    let json = read(
        app.http
            .post(app.base.join("oauth/revoke").unwrap())
            .json(&serde_json::json!({"token": "x"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_oauth_error(&json, "invalid_request");
    assert!(
        app.fake().stats().logouts.is_empty(),
        "nothing was logged out at Monzo"
    );

    let token = poll_device(&app, &approved_device_code(&app).await).await;
    let access = token.body["access_token"].as_str().unwrap();
    app.fake().fail_next_logout(1, 503);
    let outage = read(revoke(&app, &[("token", access)]).await).await;
    outage.assert_error(503, "temporarily_unavailable");
    assert!(outage.headers.contains_key("retry-after"));
    assert!(app.fake().is_access_token_live(access), "not revoked yet");
    assert_eq!(revoke(&app, &[("token", access)]).await.status(), 200);
    assert!(!app.fake().is_access_token_live(access));
}

/// A refresh token ends its whole chain whatever the hint says: hinted, not hinted (Authlib's and
/// openid-client's default), or hinted as an access token. The service trades it once at Monzo
/// and logs out the access token that comes back, which it never hands out.
#[tokio::test]
async fn revoking_a_refresh_token_ends_its_chain_whatever_the_hint() {
    let app = spawn_app().await;
    for hint in [
        Some("refresh_token"),
        None,
        Some("access_token"),
        Some("other"),
    ] {
        let token = poll_device(&app, &approved_device_code(&app).await).await;
        assert_eq!(token.status, 200, "{}", token.body);
        let access = token.body["access_token"].as_str().unwrap();
        let refresh = token.body["refresh_token"].as_str().unwrap();
        let logouts = app.fake().stats().logouts.len();
        let mut form = vec![("token", refresh)];
        form.extend(hint.map(|hint| ("token_type_hint", hint)));
        let answer = revoke(&app, &form).await;
        assert_eq!(answer.status(), 200, "{hint:?}");
        assert_eq!(answer.text().await.unwrap(), "", "no token comes back");
        let refreshed = post_form(
            &app,
            "oauth/token",
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
        assert_oauth_error(&refreshed, "invalid_grant");
        assert!(!app.fake().is_access_token_live(access), "{hint:?}");
        // The pair the trade brought back was logged out at Monzo.
        assert_eq!(app.fake().stats().logouts.len(), logouts + 1, "{hint:?}");
    }
    // An access token hinted as a refresh token: Monzo refuses the trade, so it is logged out.
    let token = poll_device(&app, &approved_device_code(&app).await).await;
    let access = token.body["access_token"].as_str().unwrap();
    let answer = revoke(
        &app,
        &[("token", access), ("token_type_hint", "refresh_token")],
    )
    .await;
    assert_eq!(answer.status(), 200);
    assert!(!app.fake().is_access_token_live(access));
}

/// Monzo failing during the trade leaves its outcome unknown: 503, and the retry answers 200 once
/// the chain is dead (the trade done then, or already).
#[tokio::test]
async fn a_refresh_token_revocation_of_unknown_outcome_is_503_then_200() {
    let app = spawn_app().await;
    for failure in [Failure::Status(502), Failure::Garbage] {
        let token = poll_device(&app, &approved_device_code(&app).await).await;
        let refresh = token.body["refresh_token"].as_str().unwrap();
        app.fake().fail_next(1, failure);
        let form = [("token", refresh), ("token_type_hint", "refresh_token")];
        let outage = JsonAnswer::read(revoke(&app, &form).await).await;
        outage.assert_error(503, "temporarily_unavailable");
        assert_eq!(revoke(&app, &form).await.status(), 200);
        let refreshed = post_form(
            &app,
            "oauth/token",
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        )
        .await;
        assert_oauth_error(&refreshed, "invalid_grant");
    }
}
