//! Slow and greedy clients cannot starve an honest one: header and body read timeouts, an idle
//! timeout, a header size limit, an immediate 413 for a declared body over the limit, and a
//! connection cap that sheds connections without a complete request head before it refuses
//! anyone. Each attack is small and bounded in time; an honest client must be answered while it
//! runs. (How fast, measured, is for the benchmarks.)

use std::time::{Duration, Instant};

use e2e_tests::*;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The honest client: a fresh connection, a generous deadline, and `/new` must answer 200.
async fn honest_new(base: &url::Url) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(8))
        .build()
        .unwrap();
    let answer = client
        .post(base.join("new").unwrap())
        .send()
        .await
        .expect("the honest client was not answered");
    assert_eq!(answer.status(), 200);
}

fn tight() -> AppOptions {
    AppOptions::default()
        .env("HEADER_READ_TIMEOUT_SECS", "2")
        .env("BODY_READ_TIMEOUT_SECS", "1")
        .env("IDLE_TIMEOUT_SECS", "2")
        .env("MAX_CONNECTIONS", "30")
}

async fn connect(base: &url::Url) -> TcpStream {
    TcpStream::connect((base.host_str().unwrap(), base.port().unwrap()))
        .await
        .unwrap()
}

/// Whether the server has closed `stream` (EOF or reset) within `within`; what it sent first,
/// if anything.
async fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<String> {
    let mut seen = Vec::new();
    let deadline = Instant::now() + within;
    loop {
        let mut buf = [0u8; 4096];
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(String::from_utf8_lossy(&seen).into_owned()),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn dripped_heads_are_cut_off_and_an_honest_client_gets_in() {
    let app = spawn_app_with(tight()).await;
    let host = format!("127.0.0.1:{}", app.base.port().unwrap());
    // 60 connections (twice the cap) each sending a request head a byte every half second.
    let mut drips = tokio::task::JoinSet::new();
    for _ in 0..60 {
        let mut stream = connect(&app.base).await;
        let head = format!("POST /new HTTP/1.1\r\nHost: {host}\r\nX-Padding: ");
        drips.spawn(async move {
            let _ = stream.write_all(head.as_bytes()).await;
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(6) {
                if stream.write_all(b"a").await.is_err() {
                    return true; // cut off
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            false
        });
    }
    // No pause needed: the listener accepts in arrival order, so the drips are all the
    // server's before the honest client's connection is.
    honest_new(&app.base).await;
    let cut: Vec<bool> = drips.join_all().await;
    assert!(
        cut.iter().all(|c| *c),
        "{} dripping connections outlived the header read timeout",
        cut.iter().filter(|c| !**c).count()
    );
}

#[tokio::test]
async fn idle_connections_at_the_cap_make_room_for_an_honest_client() {
    let app = spawn_app_with(tight().env("HEADER_READ_TIMEOUT_SECS", "30")).await;
    // Twice the cap in connections that send nothing at all.
    let mut idle = Vec::new();
    for _ in 0..60 {
        idle.push(connect(&app.base).await);
    }
    // The listener accepts in arrival order: the idle connections are all the server's before
    // the honest ones are.
    for _ in 0..3 {
        honest_new(&app.base).await;
    }
    // The oldest ones were shed to make room.
    let mut shed = 0;
    for stream in idle.iter_mut().take(10) {
        if closed_within(stream, Duration::from_millis(500))
            .await
            .is_some()
        {
            shed += 1;
        }
    }
    assert!(
        shed >= 5,
        "only {shed} of the oldest idle connections were shed"
    );
}

#[tokio::test]
async fn an_oversized_head_is_431_and_closed() {
    let app = spawn_app_with(tight()).await;
    let mut stream = connect(&app.base).await;
    let host = format!("127.0.0.1:{}", app.base.port().unwrap());
    let head = format!(
        "POST /new HTTP/1.1\r\nHost: {host}\r\nX-Padding: {}\r\n\r\n",
        "a".repeat(40 * 1024)
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let seen = closed_within(&mut stream, Duration::from_secs(5))
        .await
        .expect("the connection stays open");
    assert!(seen.starts_with("HTTP/1.1 431"), "{seen}");
    honest_new(&app.base).await;
}

#[tokio::test]
async fn a_declared_body_over_the_limit_is_413_at_once() {
    let app = spawn_app_with(tight().env("BODY_READ_TIMEOUT_SECS", "60")).await;
    let mut stream = connect(&app.base).await;
    let host = format!("127.0.0.1:{}", app.base.port().unwrap());
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 99999999999\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Answered long before the (60 s) body read timeout could have run out.
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
        .await
        .expect("never answered")
        .unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"error\":\"invalid_request\""), "{answer}");
}

#[tokio::test]
async fn a_dripping_body_is_408_after_the_body_read_timeout() {
    let app = spawn_app_with(tight()).await;
    let mut stream = connect(&app.base).await;
    let host = format!("127.0.0.1:{}", app.base.port().unwrap());
    let head = format!(
        "POST /token HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nid=abc"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let seen = closed_within(&mut stream, Duration::from_secs(10))
        .await
        .unwrap_or_default();
    assert!(seen.starts_with("HTTP/1.1 408"), "{seen}");
    assert!(seen.contains("\"error\":\"invalid_request\""), "{seen}");
}

#[tokio::test]
async fn a_kept_alive_connection_is_closed_once_idle_past_the_idle_timeout() {
    let app = spawn_app_with(tight()).await;
    let mut stream = connect(&app.base).await;
    let host = format!("127.0.0.1:{}", app.base.port().unwrap());
    stream
        .write_all(format!("GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Kept alive at first...
    assert!(
        closed_within(&mut stream, Duration::from_millis(500))
            .await
            .is_none()
    );
    // ...and closed once idle for the idle timeout (2 s).
    assert!(
        closed_within(&mut stream, Duration::from_secs(6))
            .await
            .is_some(),
        "still open"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn more_idle_connections_than_file_descriptors_do_not_lock_out_an_honest_client() {
    // The real server under `ulimit -n 256`, with its default cap (the limit less what it keeps
    // for itself); 300 connections that send nothing.
    let server = ServerProcess::start_with_open_file_limit(
        &[
            ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
            ("STORE", "memory".to_owned()),
        ],
        &["--demo"],
        256,
    );
    let mut idle = Vec::new();
    for _ in 0..300 {
        match tokio::time::timeout(Duration::from_secs(2), connect(&server.base)).await {
            Ok(stream) => idle.push(stream),
            Err(_) => break,
        }
    }
    // The listener accepts in arrival order: the idle connections are the server's first.
    honest_new(&server.base).await;
    drop(idle);
}
