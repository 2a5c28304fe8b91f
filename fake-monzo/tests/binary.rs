//! The `fake-monzo` binary: announces its URLs on stdout, serves a full
//! flow, logs nothing secret even at trace level, and stops cleanly on
//! SIGTERM.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use reqwest::StatusCode;
use url::Url;

/// Kills the child if the test fails before stopping it.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[cfg(unix)]
#[tokio::test]
async fn binary_serves_a_full_flow_logs_no_secrets_and_stops_on_sigterm() {
    let child = Command::new(env!("CARGO_BIN_EXE_fake-monzo"))
        .args([
            "--public-client",
            &format!("{PUBLIC_ID}:{PUBLIC_SECRET}:{PUBLIC_REDIRECT}"),
        ])
        // The confidential client comes from the environment.
        .env("FAKE_MONZO_CLIENT_ID", CLIENT_ID)
        .env("FAKE_MONZO_CLIENT_SECRET", SECRET)
        .env("FAKE_MONZO_REDIRECT_URI", REDIRECT)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start fake-monzo");
    let mut child = KillOnDrop(child);

    // Drain stderr on a thread so that logging can never block the child.
    let mut stderr = child.0.stderr.take().unwrap();
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        stderr.read_to_string(&mut text).unwrap();
        text
    });
    let mut stdout = BufReader::new(child.0.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).expect("ready line");
    let ready: serde_json::Value = serde_json::from_str(&line).expect("ready line is JSON");
    assert_eq!(ready.as_object().unwrap().len(), 2, "{ready}");
    let auth_url = str_field(&ready, "auth_url");
    let api_url = str_field(&ready, "api_url");
    assert!(auth_url.starts_with("http://127.0.0.1:") && auth_url.ends_with('/'));
    assert!(api_url.starts_with("http://127.0.0.1:") && !api_url.ends_with('/'));
    let auth_url = Url::parse(auth_url).unwrap();
    let api_url = Url::parse(api_url).unwrap();

    // A full flow through the confidential client, collecting every secret.
    let http = http_client();
    let mut secrets = vec![SECRET.to_owned(), PUBLIC_SECRET.to_owned()];
    let state = "binary-test-state-0123456789";
    secrets.push(state.to_owned());
    let mut login = auth_url.clone();
    login.query_pairs_mut().extend_pairs([
        ("client_id", CLIENT_ID),
        ("redirect_uri", REDIRECT),
        ("response_type", "code"),
        ("state", state),
    ]);
    assert_eq!(
        http.get(login).send().await.unwrap().status(),
        StatusCode::OK
    );
    let response = http
        .post(auth_url.join("authorize").unwrap())
        .form(&[
            ("client_id", CLIENT_ID),
            ("redirect_uri", REDIRECT),
            ("state", state),
            ("user_id", DEMO),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .unwrap()
        .1
        .into_owned();
    secrets.push(code.clone());
    let token_url = api_url.join("oauth2/token").unwrap();
    let tokens = json(
        http.post(token_url.clone())
            .form(&[
                ("grant_type", "authorization_code"),
                ("client_id", CLIENT_ID),
                ("client_secret", SECRET),
                ("redirect_uri", REDIRECT),
                ("code", &code),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let refresh = str_field(&tokens, "refresh_token").to_owned();
    secrets.push(str_field(&tokens, "access_token").to_owned());
    secrets.push(refresh.clone());
    let refreshed = json(
        http.post(token_url)
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", CLIENT_ID),
                ("client_secret", SECRET),
                ("refresh_token", &refresh),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let access = str_field(&refreshed, "access_token").to_owned();
    secrets.push(access.clone());
    secrets.push(str_field(&refreshed, "refresh_token").to_owned());
    let whoami = http
        .get(api_url.join("ping/whoami").unwrap())
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(json(whoami).await["user_id"], DEMO);
    let stats = json(
        http.get(api_url.join("_fake/stats").unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(stats["successful_code_exchanges"], 1);
    assert_eq!(stats["refreshes"], 1);

    // SIGTERM: a graceful stop with a zero exit status.
    let pid = child.0.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "fake-monzo ignored SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(status.success(), "{status}");

    let mut rest = String::new();
    stdout.read_to_string(&mut rest).unwrap();
    assert!(
        rest.is_empty(),
        "stdout carries the ready line only: {rest}"
    );
    let logs = stderr_reader.join().unwrap();
    assert!(
        logs.contains("route=/oauth2/token"),
        "requests are logged: {logs}"
    );
    for secret in &secrets {
        assert!(
            !logs.contains(secret.as_str()),
            "a secret leaked into the logs:\n{logs}"
        );
    }
    assert!(!logs.contains("code="), "{logs}");
}

#[test]
fn binary_refuses_a_malformed_client_without_echoing_it() {
    let output = Command::new(env!("CARGO_BIN_EXE_fake-monzo"))
        .args(["--client", "cid:topsecret-value"])
        .env_remove("FAKE_MONZO_CLIENT_ID")
        .stdin(Stdio::null())
        .output()
        .expect("run fake-monzo");
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("CLIENT_ID:SECRET:REDIRECT_URI"), "{stderr}");
    assert!(!stderr.contains("topsecret-value"), "{stderr}");
}
