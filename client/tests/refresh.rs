//! `Client::refresh` against a scripted service on loopback: what it sends, how it reads each
//! answer of RFC 6749 section 5.2, and when it tries again.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use monzo_auth_client::{Cancel, Client, Error, Progress, RetryReason, Url};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

/// A refresh token with characters that need form encoding.
const OLD_REFRESH: &str = "old+refresh/token=";

/// One scripted answer.
struct Answer {
    status: u16,
    retry_after: Option<&'static str>,
    body: String,
}

fn answer(status: u16, body: serde_json::Value) -> Answer {
    Answer {
        status,
        retry_after: None,
        body: body.to_string(),
    }
}

fn error(status: u16, code: &str) -> Answer {
    answer(
        status,
        serde_json::json!({"error": code, "error_description": "a fixed text"}),
    )
}

fn refreshed() -> Answer {
    answer(
        200,
        serde_json::json!({
            "access_token": "new-access",
            "token_type": "Bearer",
            "expires_in": 21600,
            "refresh_token": "new-refresh",
            "user_id": "user_00009",
        }),
    )
}

/// A request as the service saw it.
struct Seen {
    request_line: String,
    head: String,
    body: String,
}

/// Serves `answers` in order, one connection each, under `/Prod/`; then stops listening.
async fn service(answers: Vec<Answer>) -> (Client, Arc<Mutex<Vec<Seen>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/Prod", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    tokio::spawn(async move {
        for answer in answers {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buffer = Vec::new();
            let mut chunk = [0u8; 4096];
            let head_end = loop {
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the request ended early");
                buffer.extend_from_slice(&chunk[..n]);
                if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                    break at + 4;
                }
            };
            let head = String::from_utf8(buffer[..head_end].to_vec()).unwrap();
            let length: usize = head
                .lines()
                .find_map(|line| {
                    let (name, value) = line.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .unwrap_or(0);
            while buffer.len() < head_end + length {
                let n = stream.read(&mut chunk).await.unwrap();
                assert!(n > 0, "the body ended early");
                buffer.extend_from_slice(&chunk[..n]);
            }
            let body = String::from_utf8(buffer[head_end..head_end + length].to_vec()).unwrap();
            log.lock().unwrap().push(Seen {
                request_line: head.lines().next().unwrap_or("").to_owned(),
                head: head.clone(),
                body,
            });
            let retry_after = answer
                .retry_after
                .map(|secs| format!("Retry-After: {secs}\r\n"))
                .unwrap_or_default();
            let response = format!(
                "HTTP/1.1 {} Scripted\r\nContent-Type: application/json\r\n\
                 Cache-Control: no-store\r\n{retry_after}Content-Length: {}\r\n\
                 Connection: close\r\n\r\n{}",
                answer.status,
                answer.body.len(),
                answer.body
            );
            stream.write_all(response.as_bytes()).await.unwrap();
            stream.shutdown().await.unwrap();
        }
    });
    let client = Client::new(Url::parse(&base).unwrap()).unwrap();
    (client, seen)
}

fn assert_secret_free(error: &Error) {
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains("old+refresh"), "{shown}");
        assert!(!shown.contains("old%2Brefresh"), "{shown}");
    }
}

#[tokio::test]
async fn a_refresh_posts_the_form_and_reads_the_token() {
    let (client, seen) = service(vec![refreshed()]).await;
    let token = client.refresh(OLD_REFRESH).await.unwrap();
    assert_eq!(token.access_token, "new-access");
    assert_eq!(token.refresh_token.as_deref(), Some("new-refresh"));
    assert_eq!(token.expires_in, 21600);
    assert_eq!(token.token_type, "Bearer");
    assert_eq!(token.user_id, "user_00009");
    // RFC 3339 UTC to the second; the arithmetic itself is unit-tested.
    let expires = token.expires.as_bytes();
    assert_eq!(expires.len(), 20, "{}", token.expires);
    assert_eq!(
        (expires[10], expires[19]),
        (b'T', b'Z'),
        "{}",
        token.expires
    );
    assert!(!format!("{token:?}").contains("new-refresh"));

    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].request_line, "POST /Prod/oauth/token HTTP/1.1");
    assert!(
        seen[0]
            .head
            .to_ascii_lowercase()
            .contains("content-type: application/x-www-form-urlencoded"),
        "{}",
        seen[0].head
    );
    assert_eq!(
        seen[0].body,
        "grant_type=refresh_token&refresh_token=old%2Brefresh%2Ftoken%3D"
    );
}

#[tokio::test]
async fn a_refused_refresh_token_is_an_invalid_grant_at_once() {
    let (client, seen) = service(vec![error(400, "invalid_grant")]).await;
    let error = client.refresh(OLD_REFRESH).await.unwrap_err();
    assert!(matches!(error, Error::InvalidGrant), "{error:?}");
    assert_secret_free(&error);
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn final_answers_are_not_tried_again() {
    for (answer, expected) in [
        (error(403, "access_denied"), "Denied"),
        (error(400, "invalid_request"), "InvalidRequest"),
        (error(400, "unsupported_grant_type"), "InvalidRequest"),
        // A service from before refresh existed.
        (error(404, "not_found"), "UnexpectedResponse"),
        // The service itself broke: it may have used the token up already.
        (error(500, "internal_error"), "ServiceUnavailable"),
        (
            answer(200, serde_json::json!({"access_token": "x"})),
            "UnexpectedResponse",
        ),
    ] {
        let (client, seen) = service(vec![answer]).await;
        let error = client.refresh(OLD_REFRESH).await.unwrap_err();
        assert!(
            format!("{error:?}").starts_with(expected),
            "{expected}: {error:?}"
        );
        assert_secret_free(&error);
        assert_eq!(seen.lock().unwrap().len(), 1, "{expected}");
    }
}

#[tokio::test]
async fn outages_are_tried_again_honouring_retry_after() {
    let mut busy = error(503, "temporarily_unavailable");
    busy.retry_after = Some("2");
    let gateway = answer(502, serde_json::json!({"message": "Internal server error"}));
    let (client, seen) = service(vec![busy, gateway, refreshed()]).await;
    let mut pauses = Vec::new();
    let started = Instant::now();
    let token = client
        .refresh_with(OLD_REFRESH, &Cancel::new(), |progress| {
            pauses.push(progress)
        })
        .await
        .unwrap();
    assert_eq!(token.access_token, "new-access");
    assert_eq!(seen.lock().unwrap().len(), 3);
    match pauses.as_slice() {
        [
            Progress::Retrying {
                reason: RetryReason::MonzoUnavailable,
                after: first,
            },
            Progress::Retrying {
                reason: RetryReason::ServiceUnavailable,
                after: second,
            },
        ] => {
            assert_eq!(*first, Duration::from_secs(2), "Retry-After wins");
            assert!(
                (Duration::from_secs(1)..Duration::from_secs(2)).contains(second),
                "{second:?}"
            );
            assert!(started.elapsed() >= *first + *second);
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn three_failed_tries_end_in_service_unavailable() {
    let (client, seen) = service(vec![
        error(503, "temporarily_unavailable"),
        error(503, "temporarily_unavailable"),
        error(503, "temporarily_unavailable"),
        refreshed(),
    ])
    .await;
    let error = client.refresh(OLD_REFRESH).await.unwrap_err();
    assert!(matches!(error, Error::ServiceUnavailable), "{error:?}");
    assert_eq!(seen.lock().unwrap().len(), 3);
}

#[tokio::test]
async fn a_retry_after_too_long_to_wait_for_ends_the_refresh() {
    let mut busy = error(503, "temporarily_unavailable");
    busy.retry_after = Some("3600");
    let (client, seen) = service(vec![busy, refreshed()]).await;
    let started = Instant::now();
    let error = client.refresh(OLD_REFRESH).await.unwrap_err();
    assert!(matches!(error, Error::ServiceUnavailable), "{error:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn an_unreachable_service_is_tried_three_times() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let client = Client::new(Url::parse(&format!("http://127.0.0.1:{port}/")).unwrap()).unwrap();
    let mut tries = 0;
    let error = client
        .refresh_with(OLD_REFRESH, &Cancel::new(), |progress| {
            assert!(matches!(
                progress,
                Progress::Retrying {
                    reason: RetryReason::ServiceUnreachable,
                    ..
                }
            ));
            tries += 1;
        })
        .await
        .unwrap_err();
    assert_eq!(tries, 2, "two pauses between three tries");
    match &error {
        Error::Unreachable { service, .. } => {
            assert_eq!(service, &format!("http://127.0.0.1:{port}/"))
        }
        other => panic!("{other:?}"),
    }
    assert_secret_free(&error);
}

#[tokio::test]
async fn a_cancelled_refresh_sends_nothing() {
    let (client, seen) = service(vec![refreshed()]).await;
    let cancel = Cancel::new();
    cancel.cancel();
    let error = client
        .refresh_with(OLD_REFRESH, &cancel, |_| {})
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Cancelled), "{error:?}");
    assert!(seen.lock().unwrap().is_empty());
}
