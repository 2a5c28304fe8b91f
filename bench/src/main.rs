//! `login-driver BASE CONCURRENCY SECONDS`: as many complete logins as it can against a
//! `monzo-auth-server --demo` at BASE for SECONDS, CONCURRENCY at a time: `POST /new`, the
//! stand-in's login page and its approval, the callback, and `POST /token` until the token
//! comes. Prints one JSON line: logins, seconds, logins per second, p50 and p99 of a login's
//! duration in ms, and any failures. Loopback only; bounded in time.

use std::time::{Duration, Instant};

use url::Url;

/// The stand-in's demo user (fake-monzo's default users).
const USER: &str = "user_0000demo";

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, concurrency, seconds] = &args[..] else {
        eprintln!("usage: login-driver BASE CONCURRENCY SECONDS");
        std::process::exit(2);
    };
    let base: Url = base.parse().expect("BASE is a URL");
    let concurrency: usize = concurrency.parse().expect("CONCURRENCY is a number");
    let deadline = Instant::now() + Duration::from_secs(seconds.parse().expect("SECONDS"));
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client");
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (http, base) = (http.clone(), base.clone());
            tokio::spawn(async move {
                let (mut durations, mut failures) = (Vec::new(), 0u64);
                while Instant::now() < deadline {
                    let began = Instant::now();
                    match login(&http, &base).await {
                        Ok(()) => durations.push(began.elapsed()),
                        Err(err) => {
                            failures += 1;
                            if failures <= 3 {
                                eprintln!("login-driver: a login failed: {err}");
                            }
                        }
                    }
                }
                (durations, failures)
            })
        })
        .collect();
    let mut durations = Vec::new();
    let mut failures = 0;
    for worker in workers {
        let (mine, failed) = worker.await.expect("a worker");
        durations.extend(mine);
        failures += failed;
    }
    let seconds = started.elapsed().as_secs_f64();
    durations.sort();
    let percentile = |p: f64| {
        durations
            .get(((durations.len() as f64 * p) as usize).min(durations.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    println!(
        "{}",
        serde_json::json!({
            "logins": durations.len(),
            "seconds": seconds,
            "per_sec": durations.len() as f64 / seconds,
            "p50_ms": percentile(0.50),
            "p99_ms": percentile(0.99),
            "failures": failures,
        })
    );
}

/// One complete login, as an app and a person at the stand-in do it.
async fn login(http: &reqwest::Client, base: &Url) -> Result<(), String> {
    let started: serde_json::Value = http
        .post(base.join("new").map_err(|e| e.to_string())?)
        .send()
        .await
        .map_err(|e| format!("/new: {e}"))?
        .json()
        .await
        .map_err(|e| format!("/new: {e}"))?;
    let id = started["id"].as_str().ok_or("/new gave no id")?;
    let login_url: Url = started["login_url"]
        .as_str()
        .ok_or("/new gave no login_url")?
        .parse()
        .map_err(|_| "login_url is not a URL")?;
    let query = |name: &str| {
        login_url
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
            .unwrap_or_default()
    };
    let page = http
        .get(login_url.clone())
        .send()
        .await
        .map_err(|e| format!("login page: {e}"))?;
    if !page.status().is_success() {
        return Err(format!("login page: {}", page.status()));
    }
    let approved = http
        .post(login_url.join("authorize").map_err(|e| e.to_string())?)
        .form(&[
            ("client_id", query("client_id")),
            ("redirect_uri", query("redirect_uri")),
            ("state", query("state")),
            ("decision", "approve".to_owned()),
            ("user_id", USER.to_owned()),
        ])
        .send()
        .await
        .map_err(|e| format!("approval: {e}"))?;
    let callback = approved
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .ok_or("the stand-in did not redirect back")?
        .to_owned();
    let back = http
        .get(callback)
        .send()
        .await
        .map_err(|e| format!("callback: {e}"))?;
    if back.status().as_u16() != 303 {
        return Err(format!("callback: {}", back.status()));
    }
    let token = http
        .post(base.join("token").map_err(|e| e.to_string())?)
        .form(&[("id", id)])
        .send()
        .await
        .map_err(|e| format!("/token: {e}"))?;
    match token.status().as_u16() {
        200 => Ok(()),
        other => Err(format!("/token: {other}")),
    }
}
