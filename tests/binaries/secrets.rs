//! Secrets stay secret: with every crate logging at debug, no log line holds a client secret,
//! token, refresh token, code, state or poll id, and the SQLite file and its WAL hold neither
//! a poll id nor a code in any common encoding.

use e2e_tests::*;
use fake_monzo::Failure;

#[tokio::test]
async fn logs_and_the_sqlite_file_hold_no_secret() {
    let fake = start_fake_monzo().await;
    let client_secret = new_client_secret();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sessions.db");
    let server = ServerProcess::start(
        &[
            ("RUST_LOG", "debug".into()),
            ("MONZO_CLIENT_ID", CLIENT_ID.into()),
            ("MONZO_CLIENT_SECRET", client_secret.clone()),
            ("MONZO_AUTH_URL", fake.auth_url.to_string()),
            ("MONZO_API_URL", fake.api_url.to_string()),
            ("LISTEN_ADDR", "127.0.0.1:0".into()),
            ("STORE", format!("sqlite:{}", db.display())),
            ("ALLOWED_USER_IDS", DEMO_USER.into()),
        ],
        &[],
    );
    register_client(&fake.monzo, &client_secret, &server.return_url(), true);
    let driver = server.driver();
    let mut secrets: Vec<(&str, String)> = vec![("client secret", client_secret.clone())];

    // A login that succeeds after one transient failure, redeemed through the old GET form
    // (the id in a URL).
    let (started, code) = driver.authorized_session(DEMO_USER).await;
    let mut stored = std::fs::read(&db).unwrap();
    stored.extend(std::fs::read(dir.path().join("sessions.db-wal")).unwrap_or_default());
    assert_no_secret(
        "the SQLite file or its WAL",
        &stored,
        &[("poll id", started.id.clone()), ("code", code.clone())],
    );
    fake.monzo.fail_next(1, Failure::Status(503));
    assert_eq!(driver.poll(&started.id).await.status, 502);
    let mut url = driver.url("token");
    url.query_pairs_mut().append_pair("id", &started.id);
    let answer = JsonAnswer::read(driver.http.get(url).send().await.unwrap()).await;
    assert_eq!(answer.status, 200);
    secrets.extend([
        ("poll id", started.id.clone()),
        ("state", started.state()),
        ("code", code),
        (
            "access token",
            answer.body["token"].as_str().unwrap().to_owned(),
        ),
        (
            "refresh token",
            answer.body["refresh_token"].as_str().unwrap().to_owned(),
        ),
    ]);

    // A denial, a stranger refused by ALLOWED_USER_IDS, a code Monzo rejects, a replayed
    // callback, and a poll for a session that does not exist.
    let denied = driver.start().await;
    let redirect = driver
        .at_monzo(&denied.login_url, DEMO_USER, Decision::Deny)
        .await;
    driver.callback(&redirect.callback_url).await;
    assert_eq!(driver.poll(&denied.id).await.status, 403);
    let (stranger, stranger_code) = driver.authorized_session(OTHER_USER).await;
    assert_eq!(driver.poll(&stranger.id).await.status, 403);
    let (rejected, rejected_code) = driver.authorized_session(DEMO_USER).await;
    fake.monzo.fail_next(1, Failure::Status(401));
    assert_eq!(driver.poll(&rejected.id).await.status, 400);
    let replay = driver.start().await;
    let redirect = driver
        .at_monzo(&replay.login_url, DEMO_USER, Decision::Approve)
        .await;
    driver.callback(&redirect.callback_url).await;
    assert_eq!(driver.callback(&redirect.callback_url).await.status(), 400);
    let unknown = monzo_auth_domain::session::PollId::generate(0).expose();
    assert_eq!(driver.poll(&unknown).await.status, 404);
    secrets.extend([
        ("denied poll id", denied.id.clone()),
        ("denied state", denied.state()),
        ("stranger poll id", stranger.id.clone()),
        ("stranger code", stranger_code),
        ("rejected poll id", rejected.id.clone()),
        ("rejected code", rejected_code),
        ("replayed code", redirect.code.clone().unwrap()),
        ("replayed state", replay.state()),
        ("unknown poll id", unknown),
    ]);

    // The standard face: a device login (a wrong code typed first), then two refreshes.
    let form = |pairs: &[(&str, &str)]| {
        let (http, url) = (driver.http.clone(), driver.url("oauth/token"));
        let pairs: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        async move { JsonAnswer::read(http.post(url).form(&pairs).send().await.unwrap()).await }
    };
    let started = JsonAnswer::read(
        driver
            .http
            .post(driver.url("device/code"))
            .form(&[("client_id", "my-cli")])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let device_code = started.body["device_code"].as_str().unwrap().to_owned();
    let user_code = started.body["user_code"].as_str().unwrap().to_owned();
    let mut wrong = driver.url("device");
    wrong
        .query_pairs_mut()
        .append_pair("user_code", "ZZZZ-ZZZZ");
    assert_eq!(driver.http.get(wrong).send().await.unwrap().status(), 400);
    let complete: url::Url = started.body["verification_uri_complete"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let redirect = driver
        .approve_device(&complete, DEMO_USER, Decision::Approve)
        .await;
    let mut stored = std::fs::read(&db).unwrap();
    stored.extend(std::fs::read(dir.path().join("sessions.db-wal")).unwrap_or_default());
    let device_secrets = [
        ("device code", device_code.clone()),
        ("user code", user_code.clone()),
        ("user code without its dash", user_code.replace('-', "")),
        ("device login's code", redirect.code.clone().unwrap()),
    ];
    assert_no_secret("the SQLite file or its WAL", &stored, &device_secrets);
    let token = form(&[
        ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
        ("device_code", &device_code),
        ("client_id", "my-cli"),
    ])
    .await;
    assert_eq!(token.status, 200, "{}", token.body);
    let first_refresh = token.body["refresh_token"].as_str().unwrap().to_owned();
    let refreshed = form(&[
        ("grant_type", "refresh_token"),
        ("refresh_token", &first_refresh),
    ])
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert_eq!(
        form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &first_refresh)
        ])
        .await
        .status,
        400
    );
    // RFC 7009: the refreshed token is logged out, then an unknown one.
    let revoke = |token: String| {
        let (http, url) = (driver.http.clone(), driver.url("oauth/revoke"));
        async move {
            http.post(url)
                .form(&[("token", token)])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let refreshed_access = refreshed.body["access_token"].as_str().unwrap().to_owned();
    assert_eq!(revoke(refreshed_access).await, 200);
    let unknown_token = monzo_auth_domain::session::random_token::<32>();
    assert_eq!(revoke(unknown_token.clone()).await, 200);
    secrets.push(("revoked unknown token", unknown_token));
    secrets.extend(device_secrets);
    secrets.extend([
        ("device login's state", redirect.state.unwrap()),
        (
            "device access token",
            token.body["access_token"].as_str().unwrap().to_owned(),
        ),
        ("device refresh token", first_refresh),
        (
            "refreshed access token",
            refreshed.body["access_token"].as_str().unwrap().to_owned(),
        ),
        (
            "refreshed refresh token",
            refreshed.body["refresh_token"].as_str().unwrap().to_owned(),
        ),
    ]);

    let (exit, stdout, stderr) = server.stop_with("TERM");
    assert_eq!(exit, Some(0));
    assert!(
        stderr.contains("monzo_auth::access"),
        "access log missing; RUST_LOG had no effect?"
    );
    assert!(stderr.contains("DEBUG"), "debug logging was not on");
    let logs = format!("{stdout}\n{stderr}");
    assert_no_secret("the server's logs", logs.as_bytes(), &secrets);
}
