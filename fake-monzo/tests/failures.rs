//! Injected failures of the token endpoint, concurrency accounting, and the
//! `/_fake/...` HTTP controls.

mod common;

use std::time::{Duration, Instant};

use common::*;
use fake_monzo::{ClientRegistration, Failure};
use reqwest::StatusCode;

#[tokio::test]
async fn an_injected_status_leaves_the_code_usable() {
    let fake = start().await;
    let code = fake.login().await;
    fake.monzo().fail_next(2, Failure::Status(503));

    for _ in 0..2 {
        assert_monzo_error(
            fake.exchange(&code).await,
            StatusCode::SERVICE_UNAVAILABLE,
            "internal_service.unavailable",
        )
        .await;
    }
    fake.exchange_ok(&code).await;

    let stats = fake.monzo().stats();
    assert_eq!(stats.token_calls, 3);
    assert_eq!(
        stats.code_exchanges, 1,
        "injected failures never reach code checking"
    );
    assert_eq!(stats.successful_code_exchanges, 1);
}

#[tokio::test]
async fn an_injected_401_looks_like_a_spent_code_but_is_not_one() {
    let fake = start().await;
    let code = fake.login().await;
    fake.monzo().fail_next(1, Failure::Status(401));
    let body = assert_monzo_error(
        fake.exchange(&code).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_authorization_code",
    )
    .await;
    assert_eq!(
        body["message"],
        "The authorization code has been used or expired"
    );
    fake.exchange_ok(&code).await;
}

/// An exchange of `code` by a client that gives up after `patience`.
async fn impatient_exchange(fake: &Fake, code: &str, patience: Duration) {
    let impatient = reqwest::Client::builder()
        .timeout(patience)
        .build()
        .unwrap();
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", CLIENT_ID),
        ("client_secret", SECRET),
        ("redirect_uri", REDIRECT),
        ("code", code),
    ];
    let error = impatient
        .post(fake.api("oauth2/token"))
        .form(&form)
        .send()
        .await
        .expect_err("the answer comes too late");
    assert!(error.is_timeout(), "{error}");
}

#[tokio::test]
async fn a_delay_uses_up_the_code_so_a_retry_is_refused() {
    let fake = start().await;
    let code = fake.login().await;
    fake.monzo()
        .fail_next(1, Failure::Delay(Duration::from_secs(5)));

    impatient_exchange(&fake, &code, Duration::from_millis(200)).await;
    assert_eq!(fake.monzo().stats().successful_code_exchanges, 1);

    // The retry is a second use of the code: refused.
    assert_monzo_error(
        fake.exchange(&code).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_authorization_code",
    )
    .await;
}

#[tokio::test]
async fn a_late_processed_call_uses_the_code_after_the_client_gave_up() {
    let fake = start().await;
    let code = fake.login().await;
    fake.monzo()
        .fail_next(1, Failure::ProcessLate(Duration::from_millis(600)));
    impatient_exchange(&fake, &code, Duration::from_millis(100)).await;
    // Not yet acted on: a second exchange now gets a token, and is in flight beside the first.
    assert_eq!(fake.monzo().stats().code_exchanges, 0);
    assert_eq!(fake.monzo().stats().token_calls_in_flight, 1);
    let second = fake.exchange_ok(&code).await;
    let token = str_field(&second, "access_token").to_owned();
    assert_eq!(fake.whoami_status(&token).await, StatusCode::OK);

    // Then Monzo acts on the first call: the code is reused, so the token issued from it is
    // revoked (RFC 6749 4.1.2), as a real server does.
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.monzo().stats().token_calls_in_flight != 0 {
        assert!(Instant::now() < deadline, "the late call never ran");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let stats = fake.monzo().stats();
    assert_eq!(stats.code_exchanges, 2);
    assert_eq!(stats.max_concurrent_token_calls, 2);
    assert_eq!(fake.whoami_status(&token).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_delayed_answer_still_arrives_for_a_patient_client() {
    let fake = start().await;
    let code = fake.login().await;
    fake.monzo()
        .fail_next(1, Failure::Delay(Duration::from_millis(150)));
    let started = Instant::now();
    let tokens = fake.exchange_ok(&code).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(
        fake.whoami_status(str_field(&tokens, "access_token")).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn garbage_is_a_200_that_is_not_json_and_leaves_the_code_usable() {
    let fake = start().await;
    let code = fake.login().await;
    fake.monzo().fail_next(1, Failure::Garbage);
    let response = fake.exchange(&code).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    assert!(
        serde_json::from_str::<serde_json::Value>(&body).is_err(),
        "{body}"
    );
    fake.exchange_ok(&code).await;
}

#[tokio::test]
async fn concurrent_token_calls_are_counted() {
    let fake = start().await;
    fake.monzo()
        .fail_next(3, Failure::Delay(Duration::from_millis(300)));
    let form = [("grant_type", "refresh_token")];
    let (a, b, c) = tokio::join!(fake.token(&form), fake.token(&form), fake.token(&form));
    for response in [a, b, c] {
        // The requests lack parameters; only the overlap matters here.
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    }
    let stats = fake.monzo().stats();
    assert_eq!(stats.token_calls, 3);
    assert_eq!(stats.max_concurrent_token_calls, 3);
    assert_eq!(stats.token_calls_in_flight, 0);
}

#[tokio::test]
async fn a_handler_abandoned_by_its_client_stops_counting() {
    let fake = start().await;
    fake.monzo()
        .fail_next(1, Failure::Delay(Duration::from_secs(30)));
    let impatient = reqwest::Client::builder()
        .timeout(Duration::from_millis(150))
        .build()
        .unwrap();
    let error = impatient
        .post(fake.api("oauth2/token"))
        .form(&[("grant_type", "refresh_token")])
        .send()
        .await
        .expect_err("times out");
    assert!(error.is_timeout(), "{error}");
    drop(impatient);

    // The server notices the hang-up and drops the handler; give it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    while fake.monzo().stats().token_calls_in_flight != 0 {
        assert!(
            Instant::now() < deadline,
            "the cancelled handler still counts as in flight"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A later call runs alone.
    fake.exchange(&fake.login().await).await;
    let stats = fake.monzo().stats();
    assert_eq!(stats.token_calls, 2);
    assert_eq!(stats.max_concurrent_token_calls, 1);
}

#[tokio::test]
async fn http_controls_drive_the_fake() {
    let fake = start_with(fake_monzo::FakeMonzoConfig::default()).await;
    let post =
        |path: &str, body: serde_json::Value| fake.http.post(fake.api(path)).json(&body).send();

    // Register a client late, as demo mode does.
    let response = post(
        "_fake/clients",
        serde_json::json!({
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "redirect_uri": REDIRECT,
        }),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let tokens = fake.tokens().await;
    assert!(
        tokens.get("refresh_token").is_some(),
        "confidential by default"
    );
    let access = str_field(&tokens, "access_token");

    // Queue one of each failure kind.
    for body in [
        serde_json::json!({"count": 1, "status": 503}),
        serde_json::json!({"count": 1, "garbage": true}),
        serde_json::json!({"count": 1, "delay_ms": 100}),
    ] {
        assert_eq!(
            post("_fake/fail", body).await.unwrap().status(),
            StatusCode::OK
        );
    }
    let code = fake.login().await;
    assert_eq!(
        fake.exchange(&code).await.status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    let garbage = fake.exchange(&code).await;
    assert_eq!(garbage.status(), StatusCode::OK);
    assert!(serde_json::from_str::<serde_json::Value>(&garbage.text().await.unwrap()).is_err());
    let started = Instant::now();
    let late = fake.exchange(&code).await;
    assert_eq!(late.status(), StatusCode::OK);
    assert!(started.elapsed() >= Duration::from_millis(100));
    let access = {
        // The new login replaced the first token.
        assert_eq!(fake.whoami_status(access).await, StatusCode::UNAUTHORIZED);
        str_field(&json(late).await, "access_token").to_owned()
    };

    // Bad control requests are refused, Monzo-style.
    for (body, code) in [
        (serde_json::json!({"count": 1}), "bad_request.bad_param"),
        (
            serde_json::json!({"count": 1, "status": 503, "garbage": true}),
            "bad_request.bad_param",
        ),
        (
            serde_json::json!({"count": 1, "status": 200}),
            "bad_request.bad_param",
        ),
        (
            serde_json::json!({"count": 1, "stauts": 503}),
            "bad_request.bad_json",
        ),
    ] {
        assert_monzo_error(
            post("_fake/fail", body).await.unwrap(),
            StatusCode::BAD_REQUEST,
            code,
        )
        .await;
    }

    // SCA approval over HTTP.
    assert_eq!(fake.accounts(&access).await.status(), StatusCode::FORBIDDEN);
    let response = post("_fake/approve-sca", serde_json::json!({"user_id": DEMO}))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(fake.accounts(&access).await.status(), StatusCode::OK);
    assert_monzo_error(
        post(
            "_fake/approve-sca",
            serde_json::json!({"user_id": "user_nobody"}),
        )
        .await
        .unwrap(),
        StatusCode::NOT_FOUND,
        "not_found.user",
    )
    .await;

    // Stats over HTTP match the library's view.
    let response = fake.http.get(fake.api("_fake/stats")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let stats = json(response).await;
    let expected = serde_json::to_value(fake.monzo().stats()).unwrap();
    assert_eq!(stats, expected);
    assert_eq!(stats["token_calls"], 4);
    assert_eq!(stats["successful_code_exchanges"], 2);
}

#[tokio::test]
async fn registering_a_client_again_replaces_it() {
    let fake = start().await;
    fake.monzo().register_client(ClientRegistration {
        redirect_uri: "http://127.0.0.1:9/moved?a=1&b=2".to_owned(),
        ..confidential_client()
    });
    let response = fake
        .login_page(&[
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("response_type", "code"),
            ("state", "s"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let response = fake
        .login_page(&[
            ("client_id", CLIENT_ID),
            ("redirect_uri", "http://127.0.0.1:9/moved?a=1&b=2"),
            ("response_type", "code"),
            ("state", "s"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.text().await.unwrap();
    assert!(body.contains(r#"value="http://127.0.0.1:9/moved?a=1&amp;b=2""#));
}
