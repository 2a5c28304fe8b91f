//! Odd answers from Monzo's token endpoint never panic a handler or balloon memory: a hostile
//! stand-in for `api.monzo.com` (a raw TCP server, so it can say anything) behind a service whose
//! logins go through fake-monzo as usual.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use e2e_tests::*;

/// What the odd token endpoint managed to send, and whether it is done sending (all of it, or
/// the service hung up).
#[derive(Default)]
struct Sent {
    bytes: AtomicU64,
    done: AtomicBool,
}

/// A token endpoint that answers every request with `head` and `body`, then `chunks` x 64 KiB
/// of `a`, counting what it managed to send, then holds the connection open a while. Plain
/// threads and std sockets: it must be able to say anything.
fn odd_monzo(head: String, body: &'static [u8], chunks: usize) -> (String, Arc<Sent>) {
    use std::io::{Read as _, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    let sent = Arc::new(Sent::default());
    let counter = Arc::clone(&sent);
    std::thread::spawn(move || {
        for mut socket in listener.incoming().map_while(Result::ok) {
            let (head, counter) = (head.clone(), Arc::clone(&counter));
            std::thread::spawn(move || {
                let mut request = [0u8; 16 * 1024];
                let _ = socket.read(&mut request);
                if socket.write_all(head.as_bytes()).is_err() || socket.write_all(body).is_err() {
                    return;
                }
                let chunk = vec![b'a'; 64 * 1024];
                for _ in 0..chunks {
                    if socket.write_all(&chunk).is_err() {
                        break;
                    }
                    counter
                        .bytes
                        .fetch_add(chunk.len() as u64, Ordering::SeqCst);
                }
                counter.done.store(true, Ordering::SeqCst);
                std::thread::sleep(Duration::from_secs(10));
            });
        }
    });
    (url, sent)
}

/// A login approved at fake-monzo, redeemed against the Monzo API at `api_url`: the poll's answer.
async fn redeem_against(api_url: &str) -> JsonAnswer {
    let app = spawn_app_with(
        AppOptions::default()
            .env("MONZO_API_URL", api_url)
            .env("MONZO_TIMEOUT_SECS", "3"),
    )
    .await;
    let driver = app.driver();
    let (started, _) = driver.authorized_session(DEMO_USER).await;
    driver.poll(&started.id).await
}

#[tokio::test]
async fn a_lifetime_beyond_any_date_is_clamped_and_the_token_delivered() {
    let body: &'static [u8] = br#"{"access_token":"t0k3n","client_id":"c","expires_in":1000000000000,"refresh_token":"r","token_type":"Bearer","user_id":"user_0000000001"}"#;
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (url, _) = odd_monzo(head, body, 0);
    let answer = redeem_against(&url).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(
        answer.body["token"], "t0k3n",
        "an issued token is never thrown away"
    );
    assert_eq!(answer.body["expires_in"], 365 * 24 * 3600);
    let expires = answer.body["expires"].as_str().unwrap();
    time::OffsetDateTime::parse(expires, &time::format_description::well_known::Rfc3339)
        .unwrap_or_else(|_| panic!("expires is not RFC 3339: {expires}"));
}

#[tokio::test]
async fn a_huge_answer_is_not_read_whole() {
    // 256 MiB, delimited by the connection's close.
    let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n";
    let (url, sent) = odd_monzo(head.to_owned(), b"", 4096);
    redeem_against(&url)
        .await
        .assert_error(502, "upstream_unavailable");
    // The service stopped reading after its cap and hung up; what the stand-in got out is the
    // cap plus what the sockets' buffers took, far from 256 MiB.
    wait_until(
        "the stand-in stopped sending",
        Duration::from_secs(30),
        || std::future::ready(sent.done.load(Ordering::SeqCst)),
    )
    .await;
    let sent = sent.bytes.load(Ordering::SeqCst);
    assert!(sent < 32 * 1024 * 1024, "{sent} bytes were taken in");
}

#[tokio::test]
async fn a_declared_length_over_the_cap_is_refused_without_waiting_for_it() {
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 99999999999\r\n\r\n";
    let (url, _) = odd_monzo(head.to_owned(), b"", 0);
    redeem_against(&url)
        .await
        .assert_error(502, "upstream_unavailable");
}
