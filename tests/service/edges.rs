//! The local server at its edges: the host names it answers to (DNS rebinding), whose
//! `X-Forwarded-For` it believes, and what it lets anyone make it forward to Monzo.

use e2e_tests::*;

/// `POST path` with a `Host` header of our choosing (and optionally `X-Forwarded-For`).
async fn post_as(
    app: &TestApp,
    path: &str,
    host: &str,
    forwarded_for: Option<&str>,
    form: &[(&str, &str)],
) -> JsonAnswer {
    let mut request = app
        .http
        .post(app.base.join(path).unwrap())
        .header("host", host)
        .form(form);
    if let Some(forwarded) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded);
    }
    JsonAnswer::read(request.send().await.unwrap()).await
}

fn port(app: &TestApp) -> u16 {
    app.base.port().unwrap()
}

#[tokio::test]
async fn only_the_services_own_host_names_are_answered() {
    let app = spawn_app_with(
        AppOptions::default().env("PUBLIC_BASE_URL", "https://auth.example.com/monzo/"),
    )
    .await;
    let port = port(&app);
    // A page rebinding evil.example to 127.0.0.1 sends its own name.
    for host in [
        format!("evil.example:{port}"),
        "evil.example".to_owned(),
        format!("127.0.0.1:{}", port + 1),
    ] {
        for path in ["new", "token", "device/code", "oauth/token"] {
            let answer = post_as(&app, path, &host, None, &[]).await;
            answer.assert_error(421, "invalid_request");
        }
        let page = app
            .http
            .get(app.base.join("device").unwrap())
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(page.status(), 421, "{host}");
        // Probes may use any name.
        let health = app
            .http
            .get(app.base.join("healthz").unwrap())
            .header("host", &host)
            .send()
            .await
            .unwrap();
        assert_eq!(health.status(), 200);
    }
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("LOCALHOST:{port}"),
        format!("[::1]:{port}"),
        "auth.example.com".to_owned(),
        "auth.example.com:443".to_owned(),
    ] {
        let answer = post_as(&app, "new", &host, None, &[]).await;
        assert_eq!(answer.status, 200, "{host}: {}", answer.body);
    }
}

/// Refresh grants are counted per address: `REFRESH_LIMIT_PER_ADDRESS` a second.
async fn refresh_from(app: &TestApp, forwarded_for: Option<&str>) -> JsonAnswer {
    let host = format!("127.0.0.1:{}", port(app));
    post_as(
        app,
        "oauth/token",
        &host,
        forwarded_for,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", "not-a-monzo-token"),
        ],
    )
    .await
}

#[tokio::test]
async fn refreshes_are_limited_per_address_and_forwarded_headers_count_only_from_trusted_proxies() {
    let app = spawn_app_with(
        AppOptions::default()
            .env("REFRESH_LIMIT_PER_ADDRESS", "3")
            .env("TRUSTED_PROXIES", "127.0.0.0/8"),
    )
    .await;
    // Through the trusted proxy (the loopback peer): the last hop it added counts.
    for _ in 0..3 {
        refresh_from(&app, Some("203.0.113.5, 198.51.100.7"))
            .await
            .assert_error(400, "invalid_grant");
    }
    let refused = refresh_from(&app, Some("203.0.113.5, 198.51.100.7")).await;
    refused.assert_error(429, "slow_down");
    assert!(refused.headers.contains_key("retry-after"));
    assert_eq!(
        app.fake().stats().token_calls,
        3,
        "the refused one never reached Monzo"
    );
    // Forging an earlier entry does not escape the limit; another client is unaffected.
    refresh_from(&app, Some("192.0.2.99, 198.51.100.7"))
        .await
        .assert_error(429, "slow_down");
    refresh_from(&app, Some("198.51.100.8"))
        .await
        .assert_error(400, "invalid_grant");

    // A server that trusts no proxy counts the peer, whatever the header says.
    let direct = spawn_app_with(AppOptions::default().env("REFRESH_LIMIT_PER_ADDRESS", "2")).await;
    for forged in ["198.51.100.1", "198.51.100.2"] {
        refresh_from(&direct, Some(forged))
            .await
            .assert_error(400, "invalid_grant");
    }
    refresh_from(&direct, Some("198.51.100.3"))
        .await
        .assert_error(429, "slow_down");
}

#[tokio::test]
async fn what_would_be_forwarded_to_monzo_is_bounded_first() {
    let app = spawn_app().await;
    let host = format!("127.0.0.1:{}", port(&app));
    let long = "a".repeat(4097);
    for token in [
        long.as_str(),
        "two words",
        "caf\u{e9}",
        "tab\there",
        "nul\0",
    ] {
        post_as(
            &app,
            "oauth/token",
            &host,
            None,
            &[("grant_type", "refresh_token"), ("refresh_token", token)],
        )
        .await
        .assert_error(400, "invalid_request");
    }
    assert_eq!(app.fake().stats().token_calls, 0, "nothing reached Monzo");
    let longest = "a".repeat(4096);
    post_as(
        &app,
        "oauth/token",
        &host,
        None,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", longest.as_str()),
        ],
    )
    .await
    .assert_error(400, "invalid_grant");
    assert_eq!(app.fake().stats().token_calls, 1);
}
