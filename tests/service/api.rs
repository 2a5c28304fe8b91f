//! The simple API's contract: every row of the `/token` table, `/new`, and the JSON errors.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use e2e_tests::*;
use fake_monzo::Failure;
use sha2::{Digest as _, Sha256};

#[tokio::test]
async fn new_answers_an_id_and_a_login_url_whose_state_is_not_the_id() {
    let app = spawn_app().await;
    let driver = app.driver();
    for response in [
        app.http.get(driver.url("new")).send().await.unwrap(),
        app.http.post(driver.url("new")).send().await.unwrap(),
    ] {
        let answer = JsonAnswer::read(response).await;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.headers["cache-control"], "no-store");
        assert_eq!(answer.headers["pragma"], "no-cache");
        let id = answer.body["id"].as_str().unwrap();
        // 216 random bits after the 48-bit creation time.
        assert_eq!(URL_SAFE_NO_PAD.decode(id).unwrap().len(), 33, "poll id");
        assert_eq!(answer.body["expires_in"], 600);
        assert_eq!(answer.body["interval"], 1);
        let login_url: url::Url = answer.body["login_url"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            query_param(&login_url, "client_id").as_deref(),
            Some(CLIENT_ID)
        );
        assert_eq!(
            query_param(&login_url, "response_type").as_deref(),
            Some("code")
        );
        assert_eq!(
            query_param(&login_url, "redirect_uri").as_deref(),
            Some(app.return_url.as_str())
        );
        let state = query_param(&login_url, "state").unwrap();
        assert_ne!(state, id);
        assert_eq!(state[..8], id[..8], "the creation time");
        assert_eq!(URL_SAFE_NO_PAD.decode(&state).unwrap().len(), 33);
    }
}

#[tokio::test]
async fn a_whole_login_returns_the_token_once() {
    let app = spawn_app().await;
    let driver = app.driver();
    let started = driver.start().await;

    let pending = driver.poll(&started.id).await;
    assert_eq!(pending.status, 202);
    assert_eq!(pending.body["status"], "authorization_pending");
    assert_eq!(pending.body["interval"], 1);
    assert_eq!(pending.headers["retry-after"], "1");

    let redirect = driver
        .at_monzo(&started.login_url, DEMO_USER, Decision::Approve)
        .await;
    let callback = driver.callback(&redirect.callback_url).await;
    assert_eq!(callback.status(), 303);
    let location = callback.headers()["location"].to_str().unwrap().to_owned();
    assert!(
        !location.contains("code") && !location.contains('?'),
        "{location}"
    );
    let done = app
        .http
        .get(app.return_url.join(&location).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(done.status(), 200);
    assert!(done.text().await.unwrap().contains("close this window"));

    let answer = driver.poll(&started.id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let token = answer.body["token"].as_str().unwrap();
    assert!(app.fake().is_access_token_live(token));
    assert_eq!(answer.body["token_type"], "Bearer");
    assert_eq!(answer.body["user_id"], DEMO_USER);
    assert_eq!(answer.body["expires_in"], 21600);
    assert!(
        answer.body["refresh_token"]
            .as_str()
            .is_some_and(|t| !t.is_empty())
    );
    let expires = answer.body["expires"].as_str().unwrap();
    let expires =
        time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
            .unwrap();
    let in_six_hours = time::OffsetDateTime::now_utc() + Duration::from_secs(21600);
    assert!((expires - in_six_hours).abs() < time::Duration::minutes(5));
    assert_eq!(answer.headers["cache-control"], "no-store");

    driver
        .poll(&started.id)
        .await
        .assert_error(404, "not_found");
    assert_eq!(app.fake().stats().code_exchanges, 1);
}

#[tokio::test]
async fn the_old_get_form_of_token_still_works() {
    let app = spawn_app().await;
    let driver = app.driver();
    let (started, _) = driver.authorized_session(DEMO_USER).await;
    let mut url = driver.url("token");
    url.query_pairs_mut().append_pair("id", &started.id);
    let answer = JsonAnswer::read(app.http.get(url).send().await.unwrap()).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert!(answer.body["token"].is_string() && answer.body["expires"].is_string());
}

#[tokio::test]
async fn json_bodies_work_as_well_as_forms() {
    let app = spawn_app().await;
    let driver = app.driver();
    let (started, _) = driver.authorized_session(DEMO_USER).await;
    let response = app
        .http
        .post(driver.url("token"))
        .json(&serde_json::json!({ "id": started.id }))
        .send()
        .await
        .unwrap();
    assert_eq!(JsonAnswer::read(response).await.status, 200);
}

#[tokio::test]
async fn a_public_client_gets_no_refresh_token() {
    let app = spawn_app_with(AppOptions {
        confidential_client: false,
        ..Default::default()
    })
    .await;
    let driver = app.driver();
    let (started, _) = driver.authorized_session(DEMO_USER).await;
    let answer = driver.poll(&started.id).await;
    assert_eq!(answer.status, 200);
    assert!(
        answer.body.get("refresh_token").is_none(),
        "{}",
        answer.body
    );
}

#[tokio::test]
async fn polling_with_the_state_finds_nothing() {
    let app = spawn_app().await;
    let driver = app.driver();
    let (started, _) = driver.authorized_session(DEMO_USER).await;
    driver
        .poll(&started.state())
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        driver.poll(&started.id).await.status,
        200,
        "the real id still redeems"
    );
}

#[tokio::test]
async fn a_denial_answers_403_on_every_poll() {
    let app = spawn_app().await;
    let driver = app.driver();
    let started = driver.start().await;
    let redirect = driver
        .at_monzo(&started.login_url, DEMO_USER, Decision::Deny)
        .await;
    assert_eq!(redirect.code, None);
    let callback = driver.callback(&redirect.callback_url).await;
    assert_eq!(callback.status(), 303);
    let denied_page = callback.headers()["location"].to_str().unwrap().to_owned();
    let page = app
        .http
        .get(app.return_url.join(&denied_page).unwrap())
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("denied"));
    for _ in 0..3 {
        driver
            .poll(&started.id)
            .await
            .assert_error(403, "access_denied");
    }
    assert_eq!(app.fake().stats().code_exchanges, 0);
}

#[tokio::test]
async fn expired_sessions_answer_410() {
    let clock = ManualClock::new();
    let app = spawn_app_with(
        AppOptions::default()
            .env("SESSION_TTL_SECS", "1")
            .clock(&clock),
    )
    .await;
    let driver = app.driver();
    let never_finished = driver.start().await;
    let (authorized, _) = driver.authorized_session(DEMO_USER).await;
    let late = driver.start().await;
    let late_redirect = driver
        .at_monzo(&late.login_url, DEMO_USER, Decision::Approve)
        .await;

    clock.advance(Duration::from_secs(1));
    driver
        .poll(&never_finished.id)
        .await
        .assert_error(410, "expired_token");
    driver
        .poll(&authorized.id)
        .await
        .assert_error(410, "expired_token");
    let callback = driver.callback(&late_redirect.callback_url).await;
    assert_eq!(callback.status(), 400, "a callback after expiry is refused");
    driver
        .poll(&late.id)
        .await
        .assert_error(410, "expired_token");
    assert_eq!(app.fake().stats().code_exchanges, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_polls_cause_exactly_one_exchange() {
    let app = spawn_app().await;
    let driver = app.driver();
    let (started, _) = driver.authorized_session(DEMO_USER).await;
    let mut polls = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (driver, id) = (driver.clone(), started.id.clone());
        polls.spawn(async move { driver.poll(&id).await });
    }
    let answers = polls.join_all().await;
    let ok = answers.iter().filter(|a| a.status == 200).count();
    assert_eq!(
        ok,
        1,
        "statuses: {:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    for answer in answers.iter().filter(|a| a.status != 200) {
        assert!(
            answer.status == 202 || (answer.status == 404 && answer.error() == "not_found"),
            "{}: {}",
            answer.status,
            answer.body
        );
    }
    let stats = app.fake().stats();
    assert_eq!(stats.code_exchanges, 1);
    assert_eq!(stats.max_concurrent_token_calls, 1);
}

#[tokio::test]
async fn a_failure_monzo_certainly_did_not_act_on_is_502_and_the_next_poll_succeeds() {
    for failure in [Failure::Status(503), Failure::Status(429)] {
        let app = spawn_app().await;
        let driver = app.driver();
        let (started, _) = driver.authorized_session(DEMO_USER).await;
        app.fake().fail_next(1, failure.clone());
        let answer = driver.poll(&started.id).await;
        answer.assert_error(502, "upstream_unavailable");
        assert!(answer.headers.contains_key("retry-after"));
        let answer = driver.poll(&started.id).await;
        assert_eq!(answer.status, 200, "after {failure:?}: {}", answer.body);
    }
}

/// The lease a redeem holds with `MONZO_TIMEOUT_SECS=1`.
fn lease_of_one_second_timeouts() -> Duration {
    monzo_auth_domain::flow::FlowSettings::lease_for(Duration::from_secs(1))
}

#[tokio::test]
async fn after_a_failure_of_unknown_outcome_the_claim_is_kept_until_its_lease_lapses() {
    // A 500 or a garbled answer: Monzo may have taken the code. Polls are pending until the
    // lease lapses; then the retry succeeds (the stand-in did not use the code up here).
    for failure in [Failure::Status(500), Failure::Status(504), Failure::Garbage] {
        let clock = ManualClock::new();
        let app = spawn_app_with(
            AppOptions::default()
                .env("MONZO_TIMEOUT_SECS", "1")
                .clock(&clock),
        )
        .await;
        let driver = app.driver();
        let (started, _) = driver.authorized_session(DEMO_USER).await;
        app.fake().fail_next(1, failure.clone());
        driver
            .poll(&started.id)
            .await
            .assert_error(502, "upstream_unavailable");
        let lease = lease_of_one_second_timeouts();
        clock.advance(lease - Duration::from_millis(1));
        let answer = driver.poll(&started.id).await;
        assert_eq!(answer.status, 202, "inside the lease: {}", answer.body);
        assert_eq!(
            app.fake().stats().token_calls,
            1,
            "no retry inside the lease"
        );
        clock.advance(Duration::from_millis(1));
        let answer = driver.poll(&started.id).await;
        assert_eq!(answer.status, 200, "after {failure:?}: {}", answer.body);
        assert_eq!(
            app.fake().stats().token_calls,
            2,
            "one retry, after the lease"
        );
    }
}

#[tokio::test]
async fn monzo_unreachable_is_502_and_keeps_the_session() {
    // Closed port: bind, note the port, drop the listener.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let app =
        spawn_app_with(AppOptions::default().env("MONZO_API_URL", format!("http://{closed}")))
            .await;
    let driver = app.driver();
    let (started, _) = driver.authorized_session(DEMO_USER).await;
    driver
        .poll(&started.id)
        .await
        .assert_error(502, "upstream_unavailable");
    driver
        .poll(&started.id)
        .await
        .assert_error(502, "upstream_unavailable");
}

#[tokio::test]
async fn monzo_rejecting_the_code_is_invalid_grant_then_404() {
    for status in [400, 401, 403] {
        let app = spawn_app().await;
        let driver = app.driver();
        let (started, _) = driver.authorized_session(DEMO_USER).await;
        app.fake().fail_next(1, Failure::Status(status));
        let answer = driver.poll(&started.id).await;
        answer.assert_error(400, "invalid_grant");
        let text = answer.body.to_string();
        assert!(
            !text.contains("unauthorized.") && !text.contains("bad_request."),
            "Monzo's body leaked: {text}"
        );
        driver
            .poll(&started.id)
            .await
            .assert_error(404, "not_found");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_slow_monzo_never_sees_two_exchanges_in_flight() {
    let clock = ManualClock::new();
    let app = spawn_app_with(
        AppOptions::default()
            .env("MONZO_TIMEOUT_SECS", "1")
            .clock(&clock),
    )
    .await;
    let driver = app.driver();
    let (started, _) = driver.authorized_session(DEMO_USER).await;
    // Monzo acts on the exchange only after our client has given up (it takes the code 2.5 s
    // after the request, the client waits 1 s). A second exchange started meanwhile would get a
    // token that Monzo revokes the moment it processes the first (the code reused).
    app.fake()
        .fail_next(1, Failure::ProcessLate(Duration::from_millis(2500)));

    // Three pollers that keep polling until the session ends one way or the other.
    let mut pollers = tokio::task::JoinSet::new();
    let polls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for _ in 0..3 {
        let (driver, id, polls) = (driver.clone(), started.id.clone(), Arc::clone(&polls));
        pollers.spawn(async move {
            let mut seen = Vec::new();
            let deadline = std::time::Instant::now() + Duration::from_secs(40);
            loop {
                let answer = driver.poll(&id).await;
                polls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                seen.push(answer.status);
                assert!(std::time::Instant::now() < deadline, "{seen:?}");
                match answer.status {
                    202 | 502 => tokio::time::sleep(Duration::from_millis(200)).await,
                    _ => return (seen, answer),
                }
            }
        });
    }
    // Monzo acts on the first exchange 2.5 s in (real time); the lease (on the service's clock)
    // lapses only after that, and not a moment before does anyone exchange again.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while {
        let stats = app.fake().stats();
        stats.token_calls == 0 || stats.token_calls_in_flight > 0
    } {
        assert!(std::time::Instant::now() < deadline, "Monzo never acted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let lease = lease_of_one_second_timeouts();
    clock.advance(lease - Duration::from_millis(1));
    // The pollers poll meanwhile: each of them at least twice more.
    let before = polls.load(std::sync::atomic::Ordering::SeqCst);
    wait_until(
        "the pollers polled inside the lease",
        Duration::from_secs(20),
        async || polls.load(std::sync::atomic::Ordering::SeqCst) >= before + 6,
    )
    .await;
    assert_eq!(
        app.fake().stats().token_calls,
        1,
        "an exchange inside the lease"
    );
    clock.advance(Duration::from_millis(1));
    let results = pollers.join_all().await;
    let finals: Vec<(u16, String)> = results
        .iter()
        .map(|(_, a)| (a.status, a.error().to_owned()))
        .collect();
    // Exactly one poller learns how it ended; the rest find the session gone. Monzo used the
    // code for the late call, so the retry after the lease gets invalid_grant, never a token
    // Monzo has revoked.
    let decisive: Vec<_> = finals.iter().filter(|(s, _)| *s != 404).collect();
    assert_eq!(decisive.len(), 1, "{finals:?}");
    assert_eq!(
        (decisive[0].0, decisive[0].1.as_str()),
        (400, "invalid_grant"),
        "{finals:?}"
    );
    let failed: usize = results
        .iter()
        .map(|(seen, _)| seen.iter().filter(|s| **s == 502).count())
        .sum();
    assert_eq!(failed, 1, "only the poll that timed out saw 502");

    let stats = app.fake().stats();
    assert_eq!(
        stats.max_concurrent_token_calls, 1,
        "two exchanges were in flight at once"
    );
    assert_eq!(
        stats.token_calls, 2,
        "the first, and one retry after the lease: {stats:?}"
    );
}

#[tokio::test]
async fn code_challenge_binds_the_session_to_the_verifier() {
    let app = spawn_app().await;
    let driver = app.driver();
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier));
    let started = driver
        .start_with(&[
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .await;
    let redirect = driver
        .at_monzo(&started.login_url, DEMO_USER, Decision::Approve)
        .await;
    assert_eq!(driver.callback(&redirect.callback_url).await.status(), 303);

    driver
        .poll(&started.id)
        .await
        .assert_error(400, "invalid_grant");
    let wrong = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj";
    driver
        .poll_with(&[("id", &started.id), ("code_verifier", wrong)])
        .await
        .assert_error(400, "invalid_grant");
    assert_eq!(
        app.fake().stats().code_exchanges,
        0,
        "no exchange without the verifier"
    );
    let answer = driver
        .poll_with(&[("id", &started.id), ("code_verifier", verifier)])
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

#[tokio::test]
async fn new_refuses_a_bad_code_challenge() {
    let app = spawn_app().await;
    let url = app.driver().url("new");
    let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    for form in [
        vec![
            ("code_challenge", challenge),
            ("code_challenge_method", "plain"),
        ],
        vec![("code_challenge", challenge)],
        vec![
            ("code_challenge", "short"),
            ("code_challenge_method", "S256"),
        ],
        vec![("code_challenge_method", "S256")],
    ] {
        let answer =
            JsonAnswer::read(app.http.post(url.clone()).form(&form).send().await.unwrap()).await;
        answer.assert_error(400, "invalid_request");
    }
}

#[tokio::test]
async fn a_user_outside_allowed_user_ids_is_refused_and_logged_out() {
    let app = spawn_app_with(
        AppOptions::default().env("ALLOWED_USER_IDS", format!("user_0000nobody,{DEMO_USER}")),
    )
    .await;
    let driver = app.driver();
    let (stranger, _) = driver.authorized_session(OTHER_USER).await;
    driver
        .poll(&stranger.id)
        .await
        .assert_error(403, "access_denied");
    let stats = app.fake().stats();
    assert_eq!(
        stats.logouts,
        vec![OTHER_USER.to_owned()],
        "the stranger's token was logged out"
    );
    assert_eq!(stats.successful_code_exchanges, 1);
    driver
        .poll(&stranger.id)
        .await
        .assert_error(404, "not_found");

    let (friend, _) = driver.authorized_session(DEMO_USER).await;
    let answer = driver.poll(&friend.id).await;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body["user_id"], DEMO_USER);
}

#[tokio::test]
async fn bad_ids_get_a_json_4xx() {
    let app = spawn_app().await;
    let driver = app.driver();
    let token = driver.url("token");
    let long = "A".repeat(10 * 1024);
    let valid_but_unknown = monzo_auth_domain::session::PollId::generate(0).expose();
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (app.http.post(token.clone()), 400, "invalid_request"),
        (
            app.http.post(token.clone()).form(&[("id", "")]),
            400,
            "invalid_request",
        ),
        (
            app.http.post(token.clone()).form(&[("id", long.as_str())]),
            400,
            "invalid_request",
        ),
        (
            app.http.post(token.clone()).form(&[("id", "garbage!!")]),
            400,
            "invalid_request",
        ),
        (
            app.http.post(token.clone()).form(&[("id", "%00\u{1F600}")]),
            400,
            "invalid_request",
        ),
        (
            app.http
                .post(token.clone())
                .json(&serde_json::json!({"id": 42})),
            400,
            "invalid_request",
        ),
        (
            app.http
                .post(token.clone())
                .header("content-type", "application/json")
                .body("{not json"),
            400,
            "invalid_request",
        ),
        (
            app.http.post(token.clone()).body("id=a&id=b"),
            400,
            "invalid_request",
        ),
        (
            app.http
                .post(token.clone())
                .header("content-type", "text/plain")
                .body("id=x"),
            415,
            "invalid_request",
        ),
        (
            app.http
                .post(token.clone())
                .form(&[("id", "x".repeat(20 * 1024))]),
            413,
            "invalid_request",
        ),
        (app.http.get(token.clone()), 400, "invalid_request"),
        (
            app.http.get(format!("{token}?id={long}")),
            400,
            "invalid_request",
        ),
        (
            app.http
                .post(token.clone())
                .form(&[("id", valid_but_unknown.as_str())]),
            404,
            "not_found",
        ),
    ];
    for (request, status, error) in cases {
        JsonAnswer::read(request.send().await.unwrap())
            .await
            .assert_error(status, error);
    }
}

#[tokio::test]
async fn wrong_methods_and_unknown_routes_answer_json() {
    let app = spawn_app().await;
    let url = |p: &str| app.driver().url(p);
    for (method, path) in [
        ("DELETE", "token"),
        ("PUT", "new"),
        ("POST", "callback"),
        ("PATCH", "healthz"),
    ] {
        let response = app
            .http
            .request(method.parse().unwrap(), url(path))
            .send()
            .await
            .unwrap();
        JsonAnswer::read(response)
            .await
            .assert_error(405, "method_not_allowed");
    }
    for path in ["nope", "token/extra", "callback/other", ".env"] {
        JsonAnswer::read(app.http.get(url(path)).send().await.unwrap())
            .await
            .assert_error(404, "not_found");
    }
}

#[tokio::test]
async fn healthz_says_ok() {
    let app = spawn_app().await;
    let response = app
        .http
        .get(app.driver().url("healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.unwrap(), "ok");
}

#[tokio::test]
async fn healthz_and_the_writes_notice_a_deleted_database_and_recover() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sessions.db");
    let store = monzo_auth_sqlite::SqliteStore::open(&path).unwrap();
    let app = spawn_app_with(AppOptions {
        store: Some(Arc::new(store)),
        ..Default::default()
    })
    .await;
    let driver = app.driver();
    let health = || async {
        let response = app.http.get(driver.url("healthz")).send().await.unwrap();
        response.status().as_u16()
    };
    let new = || async {
        let response = app.http.post(driver.url("new")).send().await.unwrap();
        JsonAnswer::read(response).await
    };
    assert_eq!(health().await, 200);
    assert_eq!(new().await.status, 200);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    assert_eq!(health().await, 503);
    let noticed = new().await;
    noticed.assert_error(503, "temporarily_unavailable");
    assert!(noticed.headers.contains_key("retry-after"));
    // The directory is still there: the database is created again, no restart needed.
    assert_eq!(new().await.status, 200);
    assert_eq!(health().await, 200);
    assert!(path.exists());
}

/// 1,000 complete logins, 100 at a time: every one gets its own token, for the user who
/// approved it, from exactly one exchange; nothing is lost. Bounded in count and time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_thousand_logins_a_hundred_at_a_time_each_get_their_own_token_once() {
    const LOGINS: usize = 1000;
    const AT_ONCE: usize = 100;
    let app = spawn_app().await;
    let driver = app.driver();
    let gate = std::sync::Arc::new(tokio::sync::Semaphore::new(AT_ONCE));
    let mut logins = tokio::task::JoinSet::new();
    for n in 0..LOGINS {
        let (driver, gate) = (driver.clone(), std::sync::Arc::clone(&gate));
        logins.spawn(async move {
            let _turn = gate.acquire_owned().await.unwrap();
            let user = if n % 2 == 0 {
                DEMO_USER
            } else {
                "user_0000other"
            };
            let (started, _) = driver.authorized_session(user).await;
            let answer = driver.poll(&started.id).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            assert_eq!(answer.body["user_id"], user, "someone else's token");
            // A second poll finds the session gone: the token went out once.
            driver
                .poll(&started.id)
                .await
                .assert_error(404, "not_found");
            answer.body["token"].as_str().unwrap().to_owned()
        });
    }
    let tokens = tokio::time::timeout(Duration::from_secs(240), logins.join_all())
        .await
        .expect("the load test is bounded in time");
    let distinct: std::collections::BTreeSet<&String> = tokens.iter().collect();
    assert_eq!(distinct.len(), LOGINS, "every login got its own token");
    let stats = app.fake().stats();
    assert_eq!(
        stats.code_exchanges, LOGINS as u64,
        "one exchange per code: {stats:?}"
    );
    assert_eq!(stats.successful_code_exchanges, LOGINS as u64);
}
