//! The fake refuses what Monzo refuses and does what Monzo does: login page,
//! consent form, token endpoint, whoami, logout and SCA-gated accounts.

mod common;

use std::time::Duration;

use common::*;
use fake_monzo::FakeMonzoConfig;
use reqwest::StatusCode;
use url::Url;

fn login_query<'a>(client_id: &'a str, redirect_uri: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("response_type", "code"),
        ("state", "st4te"),
    ]
}

async fn assert_error_page(response: reqwest::Response) {
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(
        response.headers().get("location").is_none(),
        "an untrusted request must never be redirected"
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let body = response.text().await.unwrap();
    assert!(body.contains("Fake Monzo"), "{body}");
}

#[tokio::test]
async fn login_page_refuses_unknown_client() {
    let fake = start().await;
    assert_error_page(
        fake.login_page(&login_query("oauth2client_nope", REDIRECT))
            .await,
    )
    .await;
}

#[tokio::test]
async fn login_page_refuses_a_redirect_uri_that_is_not_exactly_the_registered_one() {
    let fake = start().await;
    for redirect in [
        "http://127.0.0.1:9/callback",
        "http://127.0.0.1:9/callback?app=desktop&x=1",
        "http://127.0.0.1:9/callback/?app=desktop",
        "http://evil.example/callback?app=desktop",
        "HTTP://127.0.0.1:9/callback?app=desktop",
    ] {
        assert_error_page(fake.login_page(&login_query(CLIENT_ID, redirect)).await).await;
    }
    // The public client's URI is not valid for the confidential client.
    assert_error_page(
        fake.login_page(&login_query(CLIENT_ID, PUBLIC_REDIRECT))
            .await,
    )
    .await;
}

#[tokio::test]
async fn login_page_refuses_other_response_types_and_a_missing_state() {
    let fake = start().await;
    let mut token_flow = login_query(CLIENT_ID, REDIRECT);
    token_flow[2] = ("response_type", "token");
    assert_error_page(fake.login_page(&token_flow).await).await;

    let no_state = &login_query(CLIENT_ID, REDIRECT)[..3];
    assert_error_page(fake.login_page(no_state).await).await;

    let mut empty_state = login_query(CLIENT_ID, REDIRECT);
    empty_state[3] = ("state", "");
    assert_error_page(fake.login_page(&empty_state).await).await;

    let mut doubled = login_query(CLIENT_ID, REDIRECT);
    doubled.push(("state", "second"));
    assert_error_page(fake.login_page(&doubled).await).await;
}

#[tokio::test]
async fn login_page_is_a_safe_self_contained_form() {
    let fake = start().await;
    let hostile_state = r#""><script>alert('x')</script>"#;
    let mut query = login_query(CLIENT_ID, REDIRECT);
    query[3] = ("state", hostile_state);
    let response = fake.login_page(&query).await;
    assert_eq!(response.status(), StatusCode::OK);
    let headers = response.headers().clone();
    // The form posts here, and the browser follows the redirect on to the client's origin.
    let redirect_origin = url::Url::parse(REDIRECT)
        .unwrap()
        .origin()
        .ascii_serialization();
    assert_eq!(
        headers["content-security-policy"],
        format!(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {redirect_origin}; frame-ancestors 'none'"
        )
        .as_str()
    );
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["cache-control"], "no-store");

    let body = response.text().await.unwrap();
    assert!(body.contains("<title>Fake Monzo</title>"), "{body}");
    assert!(body.contains("not a real bank"), "{body}");
    assert!(body.contains(CLIENT_ID), "the page names the app asking");
    assert!(body.contains(r#"<form method="post" action="/authorize">"#));
    assert!(body.contains(r#"<select id="user_id" name="user_id">"#));
    assert!(body.contains(r#"<option value="user_0000demo" selected>Demo User"#));
    assert!(body.contains(r#"<option value="user_0000other">Other User"#));
    assert!(
        body.contains(r#"<button id="approve" name="decision" value="approve">Approve</button>"#)
    );
    assert!(body.contains(r#"<button id="deny" name="decision" value="deny">Deny</button>"#));
    assert!(
        body.contains(r#"<input type="hidden" name="client_id" value="oauth2client_00009test">"#)
    );
    assert!(body.contains(
        r#"<input type="hidden" name="redirect_uri" value="http://127.0.0.1:9/callback?app=desktop">"#
    ));
    assert!(body.contains(
        r#"<input type="hidden" name="state" value="&quot;&gt;&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;">"#
    ));
    assert!(
        !body.contains("<script"),
        "no script, and the state is escaped"
    );
    for third_party in ["src=", "<link", "@import", "url("] {
        assert!(!body.contains(third_party), "{third_party} in page");
    }
}

#[tokio::test]
async fn approve_redirects_with_code_and_state_keeping_the_registered_query() {
    let fake = start().await;
    let response = fake
        .authorize(&[
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("state", "a b&c=d"),
            ("user_id", DEMO),
            ("decision", "approve"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    assert_eq!(location.path(), "/callback");
    let pairs: Vec<(String, String)> = location.query_pairs().into_owned().collect();
    assert_eq!(pairs.len(), 3, "{pairs:?}");
    assert_eq!(pairs[0], ("app".to_owned(), "desktop".to_owned()));
    assert_eq!(pairs[1].0, "code");
    assert!(pairs[1].1.len() >= 22, "at least 128 bits");
    assert_eq!(pairs[2], ("state".to_owned(), "a b&c=d".to_owned()));
}

#[tokio::test]
async fn codes_are_distinct() {
    let fake = start().await;
    let first = fake.login().await;
    let second = fake.login().await;
    assert_ne!(first, second);
}

#[tokio::test]
async fn deny_redirects_with_access_denied() {
    let fake = start().await;
    let response = fake
        .authorize(&[
            ("client_id", PUBLIC_ID),
            ("redirect_uri", PUBLIC_REDIRECT),
            ("state", "s1"),
            ("user_id", DEMO),
            ("decision", "deny"),
        ])
        .await;
    assert_eq!(response.status(), StatusCode::FOUND);
    assert_eq!(
        response.headers()["location"],
        "http://127.0.0.1:9/public-callback?error=access_denied&state=s1"
    );
}

#[tokio::test]
async fn authorize_revalidates_everything_and_never_redirects_when_refusing() {
    let fake = start().await;
    let good = [
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("state", "s"),
        ("user_id", DEMO),
        ("decision", "approve"),
    ];
    let cases: [(usize, &str, &str); 6] = [
        (0, "client_id", "oauth2client_nope"),
        (
            1,
            "redirect_uri",
            "http://evil.example/callback?app=desktop",
        ),
        (2, "state", ""),
        (3, "user_id", "user_nobody"),
        (4, "decision", "maybe"),
        (4, "decision", ""),
    ];
    for (index, name, value) in cases {
        let mut form = good;
        form[index] = (name, value);
        assert_error_page(fake.authorize(&form).await).await;
    }
    assert_eq!(fake.authorize(&good).await.status(), StatusCode::FOUND);
}

#[tokio::test]
async fn token_endpoint_refuses_a_json_body() {
    let fake = start().await;
    let code = fake.login().await;
    let response = fake
        .http
        .post(fake.api("oauth2/token"))
        .json(&serde_json::json!({
            "grant_type": "authorization_code",
            "client_id": CLIENT_ID,
            "client_secret": SECRET,
            "redirect_uri": REDIRECT,
            "code": code,
        }))
        .send()
        .await
        .unwrap();
    assert_monzo_error(
        response,
        StatusCode::BAD_REQUEST,
        "bad_request.bad_content_type",
    )
    .await;
    // Refusing the body did not burn the code.
    fake.exchange_ok(&code).await;
}

#[tokio::test]
async fn token_endpoint_refuses_an_oversized_body_but_counts_the_call() {
    let fake = start().await;
    let response = fake
        .http
        .post(fake.api("oauth2/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!(
            "grant_type=authorization_code&pad={}",
            "x".repeat(100_000)
        ))
        .send()
        .await
        .unwrap();
    assert_monzo_error(response, StatusCode::BAD_REQUEST, "bad_request.bad_body").await;
    assert_eq!(fake.monzo().stats().token_calls, 1);
}

#[tokio::test]
async fn token_endpoint_names_missing_parameters() {
    let fake = start().await;
    let response = fake
        .token(&[
            ("grant_type", "authorization_code"),
            ("client_id", CLIENT_ID),
        ])
        .await;
    let body = assert_monzo_error(
        response,
        StatusCode::BAD_REQUEST,
        "bad_request.missing_param",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("client_secret"));

    let response = fake
        .token(&[
            ("grant_type", "password"),
            ("client_id", CLIENT_ID),
            ("client_secret", SECRET),
        ])
        .await;
    assert_monzo_error(
        response,
        StatusCode::BAD_REQUEST,
        "bad_request.unsupported_grant_type",
    )
    .await;
}

#[tokio::test]
async fn exchange_with_a_wrong_secret_is_refused_without_echoing_it() {
    let fake = start().await;
    let code = fake.login().await;
    let response = fake
        .exchange_as(CLIENT_ID, "wrong-secret-value", REDIRECT, &code)
        .await;
    let body = assert_monzo_error(
        response,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_client_credentials",
    )
    .await;
    let text = body.to_string();
    assert!(!text.contains("wrong-secret-value") && !text.contains(&code));

    // Another client's valid credentials do not redeem this client's code.
    let response = fake
        .exchange_as(PUBLIC_ID, PUBLIC_SECRET, REDIRECT, &code)
        .await;
    assert_monzo_error(
        response,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_authorization_code",
    )
    .await;
    // Neither attempt used the code up.
    fake.exchange_ok(&code).await;
}

#[tokio::test]
async fn exchange_with_a_different_redirect_uri_is_refused() {
    let fake = start().await;
    let code = fake.login().await;
    let response = fake
        .exchange_as(CLIENT_ID, SECRET, "http://127.0.0.1:9/callback", &code)
        .await;
    let body = assert_monzo_error(
        response,
        StatusCode::BAD_REQUEST,
        "bad_request.bad_redirect_uri",
    )
    .await;
    assert!(!body.to_string().contains(&code));
}

#[tokio::test]
async fn successful_exchange_returns_monzos_fields() {
    let fake = start().await;
    let code = fake.login().await;
    let response = fake.exchange(&code).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let tokens = json(response).await;
    let mut keys: Vec<&str> = tokens
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "access_token",
            "client_id",
            "expires_in",
            "refresh_token",
            "token_type",
            "user_id"
        ]
    );
    assert_eq!(tokens["client_id"], CLIENT_ID);
    assert_eq!(tokens["user_id"], DEMO);
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["expires_in"], 21600);
    let access = str_field(&tokens, "access_token");
    let refresh = str_field(&tokens, "refresh_token");
    assert!(access.len() >= 22 && refresh.len() >= 22);
    assert_ne!(access, refresh);
    assert!(fake.monzo().is_access_token_live(access));

    let stats = fake.monzo().stats();
    assert_eq!(stats.token_calls, 1);
    assert_eq!(stats.code_exchanges, 1);
    assert_eq!(stats.successful_code_exchanges, 1);
}

#[tokio::test]
async fn a_reused_code_is_refused_and_revokes_what_it_issued() {
    let fake = start().await;
    let code = fake.login().await;
    let tokens = fake.exchange_ok(&code).await;
    let access = str_field(&tokens, "access_token");
    assert_eq!(fake.whoami_status(access).await, StatusCode::OK);

    let response = fake.exchange(&code).await;
    assert_monzo_error(
        response,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_authorization_code",
    )
    .await;
    assert_eq!(fake.whoami_status(access).await, StatusCode::UNAUTHORIZED);
    assert!(!fake.monzo().is_access_token_live(access));
    let response = fake.refresh(str_field(&tokens, "refresh_token")).await;
    assert_monzo_error(
        response,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_refresh_token",
    )
    .await;

    let stats = fake.monzo().stats();
    assert_eq!(stats.code_exchanges, 2);
    assert_eq!(stats.successful_code_exchanges, 1);
}

#[tokio::test]
async fn a_reused_code_also_revokes_tokens_refreshed_from_it() {
    let fake = start().await;
    let code = fake.login().await;
    let tokens = fake.exchange_ok(&code).await;
    let refreshed = json(fake.refresh(str_field(&tokens, "refresh_token")).await).await;
    let access = str_field(&refreshed, "access_token");
    assert_eq!(fake.whoami_status(access).await, StatusCode::OK);

    assert_eq!(
        fake.exchange(&code).await.status(),
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(fake.whoami_status(access).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let fake = start_with(FakeMonzoConfig {
        code_ttl: Duration::from_millis(50),
        ..config()
    })
    .await;
    let code = fake.login().await;
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_monzo_error(
        fake.exchange(&code).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_authorization_code",
    )
    .await;
    // A code redeemed in time still works with the same settings.
    let fresh = fake.login().await;
    fake.exchange_ok(&fresh).await;
}

#[tokio::test]
async fn an_unknown_code_is_refused() {
    let fake = start().await;
    assert_monzo_error(
        fake.exchange("not-a-code").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_authorization_code",
    )
    .await;
}

#[tokio::test]
async fn a_public_client_gets_no_refresh_token() {
    let fake = start().await;
    let code = fake.login_as(PUBLIC_ID, PUBLIC_REDIRECT, DEMO).await;
    let response = fake
        .exchange_as(PUBLIC_ID, PUBLIC_SECRET, PUBLIC_REDIRECT, &code)
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let tokens = json(response).await;
    assert!(tokens.get("refresh_token").is_none(), "{tokens}");
    assert_eq!(tokens["client_id"], PUBLIC_ID);
    assert_eq!(
        fake.whoami_status(str_field(&tokens, "access_token")).await,
        StatusCode::OK
    );
}

#[tokio::test]
async fn refresh_rotates_the_pair_and_retires_the_old_one() {
    let fake = start().await;
    let first = fake.tokens().await;
    let old_access = str_field(&first, "access_token");
    let old_refresh = str_field(&first, "refresh_token");

    let response = fake.refresh(old_refresh).await;
    assert_eq!(response.status(), StatusCode::OK);
    let second = json(response).await;
    let new_access = str_field(&second, "access_token");
    let new_refresh = str_field(&second, "refresh_token");
    assert_ne!(new_access, old_access);
    assert_ne!(new_refresh, old_refresh);
    assert_eq!(second["user_id"], DEMO);
    assert_eq!(second["token_type"], "Bearer");

    assert_eq!(
        fake.whoami_status(old_access).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(fake.whoami_status(new_access).await, StatusCode::OK);
    assert_monzo_error(
        fake.refresh(old_refresh).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_refresh_token",
    )
    .await;
    // The failed reuse did not disturb the current pair.
    assert_eq!(fake.whoami_status(new_access).await, StatusCode::OK);
    assert_eq!(fake.refresh(new_refresh).await.status(), StatusCode::OK);
    assert_eq!(fake.monzo().stats().refreshes, 3);
}

#[tokio::test]
async fn refresh_needs_the_clients_own_credentials() {
    let fake = start().await;
    let tokens = fake.tokens().await;
    let refresh = str_field(&tokens, "refresh_token");
    let wrong_secret = fake
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", CLIENT_ID),
            ("client_secret", "nope"),
            ("refresh_token", refresh),
        ])
        .await;
    assert_monzo_error(
        wrong_secret,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_client_credentials",
    )
    .await;
    let other_client = fake
        .token(&[
            ("grant_type", "refresh_token"),
            ("client_id", PUBLIC_ID),
            ("client_secret", PUBLIC_SECRET),
            ("refresh_token", refresh),
        ])
        .await;
    assert_monzo_error(
        other_client,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_refresh_token",
    )
    .await;
    assert_eq!(fake.refresh(refresh).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn one_live_token_per_user_and_client() {
    let fake = start().await;
    let first = fake.tokens().await;
    let other_user = {
        let code = fake.login_as(CLIENT_ID, REDIRECT, OTHER).await;
        fake.exchange_ok(&code).await
    };
    let other_client = {
        let code = fake.login_as(PUBLIC_ID, PUBLIC_REDIRECT, DEMO).await;
        json(
            fake.exchange_as(PUBLIC_ID, PUBLIC_SECRET, PUBLIC_REDIRECT, &code)
                .await,
        )
        .await
    };
    let second = fake.tokens().await;

    // Monzo tells a token a newer login replaced apart from a bad one.
    assert_monzo_error(
        fake.whoami(str_field(&first, "access_token")).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_access_token.evicted",
    )
    .await;
    assert_eq!(
        fake.refresh(str_field(&first, "refresh_token"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    for live in [&second, &other_user, &other_client] {
        assert_eq!(
            fake.whoami_status(str_field(live, "access_token")).await,
            StatusCode::OK
        );
    }
}

#[tokio::test]
async fn whoami_reports_the_token_owner_and_refuses_bad_tokens() {
    let fake = start().await;
    let tokens = fake.tokens().await;
    let response = fake.whoami(str_field(&tokens, "access_token")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        json(response).await,
        serde_json::json!({"authenticated": true, "client_id": CLIENT_ID, "user_id": DEMO})
    );

    assert_monzo_error(
        fake.whoami("made-up-token").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_access_token",
    )
    .await;
    // A logged-out token is not evicted, just bad.
    let logged_out = fake.tokens().await;
    let logout = fake
        .http
        .post(fake.api("oauth2/logout"))
        .bearer_auth(str_field(&logged_out, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(logout.status(), StatusCode::OK);
    assert_monzo_error(
        fake.whoami(str_field(&logged_out, "access_token")).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_access_token",
    )
    .await;
    let no_header = fake.http.get(fake.api("ping/whoami")).send().await.unwrap();
    assert_monzo_error(
        no_header,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_access_token",
    )
    .await;
    // The refresh token is not an access token.
    assert_eq!(
        fake.whoami_status(str_field(&tokens, "refresh_token"))
            .await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(fake.monzo().stats().whoami_calls, 5);
}

#[tokio::test]
async fn access_tokens_expire_but_can_be_refreshed() {
    let fake = start_with(FakeMonzoConfig {
        access_token_ttl: Duration::from_millis(50),
        ..config()
    })
    .await;
    let tokens = fake.tokens().await;
    let access = str_field(&tokens, "access_token");
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(fake.whoami_status(access).await, StatusCode::UNAUTHORIZED);
    assert!(!fake.monzo().is_access_token_live(access));
    assert_eq!(
        fake.refresh(str_field(&tokens, "refresh_token"))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn logout_invalidates_the_session_and_is_recorded() {
    let fake = start().await;
    let tokens = fake.tokens().await;
    let access = str_field(&tokens, "access_token");
    let response = fake.logout(access).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(json(response).await, serde_json::json!({}));
    assert_eq!(fake.whoami_status(access).await, StatusCode::UNAUTHORIZED);
    // Monzo: once logged out, the session cannot be refreshed either.
    assert_eq!(
        fake.refresh(str_field(&tokens, "refresh_token"))
            .await
            .status(),
        StatusCode::UNAUTHORIZED
    );
    assert_monzo_error(
        fake.logout(access).await,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_access_token",
    )
    .await;
    assert_eq!(fake.monzo().stats().logouts, vec![DEMO.to_owned()]);
}

#[tokio::test]
async fn accounts_need_strong_customer_authentication() {
    let fake = start().await;
    let tokens = fake.tokens().await;
    let access = str_field(&tokens, "access_token");
    assert_monzo_error(
        fake.accounts(access).await,
        StatusCode::FORBIDDEN,
        "forbidden.insufficient_permissions",
    )
    .await;

    // Another user's approval does not count.
    fake.monzo().approve_sca(OTHER);
    assert_eq!(fake.accounts(access).await.status(), StatusCode::FORBIDDEN);

    fake.monzo().approve_sca(DEMO);
    let response = fake.accounts(access).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body = json(response).await;
    let account = &body["accounts"][0];
    assert!(str_field(account, "id").starts_with("acc_"));
    assert!(!str_field(account, "description").is_empty());
    let created = str_field(account, "created");
    assert!(created.contains('T') && created.ends_with('Z'), "{created}");

    // Approval survives a refresh...
    let refreshed = json(fake.refresh(str_field(&tokens, "refresh_token")).await).await;
    assert_eq!(
        fake.accounts(str_field(&refreshed, "access_token"))
            .await
            .status(),
        StatusCode::OK
    );
    // ...but not a fresh login.
    let fresh = fake.tokens().await;
    assert_eq!(
        fake.accounts(str_field(&fresh, "access_token"))
            .await
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_monzo_error(
        fake.accounts("bogus").await,
        StatusCode::UNAUTHORIZED,
        "unauthorized.bad_access_token",
    )
    .await;
}

#[tokio::test]
async fn unknown_routes_are_monzo_shaped_404s() {
    let fake = start().await;
    let response = fake
        .http
        .get(fake.api("nope/nothing"))
        .send()
        .await
        .unwrap();
    assert_monzo_error(response, StatusCode::NOT_FOUND, "not_found").await;
    let response = fake
        .http
        .get(fake.api("oauth2/token"))
        .send()
        .await
        .unwrap();
    assert_monzo_error(
        response,
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
    )
    .await;
    let response = fake.http.get(fake.auth("nope")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
}
