//! `monzo-auth-server` as a user runs it: its own process, configured by the environment.

use std::sync::Arc;

use e2e_tests::*;

/// Runs the server expecting it to refuse to start; returns its stderr.
fn refused_start(env: &[(&str, &str)]) -> String {
    let output = clean_command(&workspace_binary("monzo-auth-server"))
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run monzo-auth-server");
    assert!(!output.status.success(), "started despite {env:?}");
    let stderr = String::from_utf8(output.stderr).unwrap();
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "one line, not: {stderr}"
    );
    stderr
}

#[test]
fn a_bad_setting_stops_the_server_with_one_line_naming_it() {
    let secret = new_client_secret();
    let base = [
        ("MONZO_CLIENT_ID", "oauth2client_x"),
        ("MONZO_CLIENT_SECRET", secret.as_str()),
        ("LISTEN_ADDR", "127.0.0.1:0"),
        ("STORE", "memory"),
    ];
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken_addr = taken.local_addr().unwrap().to_string();
    // (variables to drop from the base, variables to set on top, the variable blamed)
    type Case<'a> = (Vec<&'a str>, Vec<(&'a str, &'a str)>, &'a str);
    let cases: Vec<Case> = vec![
        (vec!["MONZO_CLIENT_ID"], vec![], "MONZO_CLIENT_ID"),
        (vec!["MONZO_CLIENT_SECRET"], vec![], "MONZO_CLIENT_SECRET"),
        (vec![], vec![("RETURN_URL", "callback")], "RETURN_URL"),
        (
            vec![],
            vec![("MONZO_AUTH_URL", "auth.monzo.com")],
            "MONZO_AUTH_URL",
        ),
        (vec![], vec![("STORE", "redis://x")], "STORE"),
        (
            vec![],
            vec![("STORE", "sqlite:/nonexistent/dir/s.db")],
            "STORE",
        ),
        (vec![], vec![("LISTEN_ADDR", "everywhere")], "LISTEN_ADDR"),
        (
            vec![],
            vec![("LISTEN_ADDR", taken_addr.as_str())],
            "LISTEN_ADDR",
        ),
        (
            vec![],
            vec![("SESSION_TTL_SECS", "ten")],
            "SESSION_TTL_SECS",
        ),
        (
            vec![],
            vec![("POLL_INTERVAL_SECS", "99999")],
            "POLL_INTERVAL_SECS",
        ),
        (vec![], vec![("ALLOWED_USER_IDS", ",")], "ALLOWED_USER_IDS"),
        (
            vec![],
            vec![("MONZO_CLIENT_SECRET_KMS", "AQICAHh")],
            "MONZO_CLIENT_SECRET",
        ),
        (
            vec!["MONZO_CLIENT_SECRET"],
            vec![("MONZO_CLIENT_SECRET_KMS", "AQICAHh")],
            "MONZO_CLIENT_SECRET_KMS",
        ),
    ];
    for (drop, set, variable) in cases {
        let mut env: Vec<(&str, &str)> = base
            .iter()
            .copied()
            .filter(|(k, _)| !drop.contains(k))
            .collect();
        env.retain(|(k, _)| !set.iter().any(|(s, _)| s == k));
        env.extend(set);
        let line = refused_start(&env);
        assert!(
            line.contains(&format!("{variable}:")),
            "{variable} not named in: {line}"
        );
        assert!(!line.contains(&secret), "the secret leaked: {line}");
    }
    drop(taken);
}

#[test]
fn sigterm_and_ctrl_c_shut_down_cleanly() {
    for signal in ["TERM", "INT"] {
        let server = demo_server();
        let (code, _, stderr) = server.stop_with(signal);
        assert_eq!(code, Some(0), "SIG{signal}: {stderr}");
        assert!(stderr.contains("shut down"), "{stderr}");
    }
}

#[tokio::test]
async fn demo_mode_walks_the_whole_flow_against_its_stand_in() {
    let server = demo_server();
    let banner = server.stdout.lock().unwrap().clone();
    assert!(
        banner.contains("demo") && banner.contains("stand-in"),
        "{banner}"
    );
    let driver = server.driver();
    let (started, _) = driver.authorized_session(DEMO_USER).await;
    let answer = driver.poll(&started.id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["user_id"], DEMO_USER);
    let banner = server.stdout.lock().unwrap().clone();
    assert!(
        banner.contains(&format!("Open {}", server.base)),
        "{banner}"
    );
    // And the CLI command to try, aimed at this server, with how to get the command.
    assert!(
        banner.contains(&format!("monzo-auth login --service {} && ", server.base))
            && banner.contains("cargo install --locked --path client"),
        "{banner}"
    );
    // The stand-in's API, which recipes reach through MONZO_API_URL: it answers as Monzo's.
    let api = banner
        .lines()
        .find_map(|line| {
            line.strip_prefix("The stand-in's API (instead of https://api.monzo.com): ")
        })
        .unwrap_or_else(|| panic!("no API line: {banner}"));
    let whoami = reqwest::get(format!("{api}/ping/whoami")).await.unwrap();
    assert_eq!(whoami.status(), 401, "Monzo's API without a token");
}

#[tokio::test]
async fn a_session_authorized_before_a_restart_is_redeemed_after_it() {
    let fake = start_fake_monzo().await;
    let secret = new_client_secret();
    let dir = tempfile::tempdir().unwrap();
    let env = |return_url: Option<String>| {
        let mut env = vec![
            ("MONZO_CLIENT_ID", CLIENT_ID.to_owned()),
            ("MONZO_CLIENT_SECRET", secret.clone()),
            ("MONZO_AUTH_URL", fake.auth_url.to_string()),
            ("MONZO_API_URL", fake.api_url.to_string()),
            ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
            (
                "STORE",
                format!("sqlite:{}", dir.path().join("sessions.db").display()),
            ),
        ];
        env.extend(return_url.map(|url| ("RETURN_URL", url)));
        env
    };
    let first = ServerProcess::start(&env(None), &[]);
    let return_url = first.return_url();
    register_client(&fake.monzo, &secret, &return_url, true);
    let (started, _) = first.driver().authorized_session(DEMO_USER).await;
    let (code, _, _) = first.stop_with("TERM");
    assert_eq!(code, Some(0));

    // Same file, a new process (on another port, but the registered return URL is the same).
    let second = ServerProcess::start(&env(Some(return_url.to_string())), &[]);
    let answer = second.driver().poll(&started.id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["user_id"], DEMO_USER);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_logins_answered_before_a_kill_9_survive_it() {
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("LISTEN_ADDR", "127.0.0.1:0".to_owned()),
        (
            "STORE",
            format!("sqlite:{}", dir.path().join("sessions.db").display()),
        ),
    ];
    let first = ServerProcess::start(&env, &["--demo"]);
    // Enough device logins (two WAL frames or more each) for checkpoints to run while they
    // are written; the process is killed while 16 clients are still starting more.
    const ANSWERED: usize = 6000;
    let answered = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut clients = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let (url, http, answered) = (
            first.base.join("device/code").unwrap(),
            http_client(),
            Arc::clone(&answered),
        );
        clients.spawn(async move {
            loop {
                let Ok(response) = http
                    .post(url.clone())
                    .form(&[("client_id", "my-cli")])
                    .send()
                    .await
                else {
                    return;
                };
                let Ok(body) = response.json::<serde_json::Value>().await else {
                    return;
                };
                let code = body["device_code"]
                    .as_str()
                    .expect("a device code")
                    .to_owned();
                answered.lock().unwrap().push(code);
            }
        });
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while answered.lock().unwrap().len() < ANSWERED {
        assert!(
            std::time::Instant::now() < deadline,
            "fewer than {ANSWERED} device logins in 120 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let (code, _, _) = first.stop_with("KILL");
    assert_eq!(code, None, "killed by the signal");
    clients.join_all().await;
    let answered = answered.lock().unwrap().clone();

    // Every device code the first process answered polls as pending in the next one.
    let second = ServerProcess::start(&env, &["--demo"]);
    let url = second.base.join("oauth/token").unwrap();
    let http = http_client();
    let mut lost = Vec::new();
    for chunk in answered.chunks(64) {
        let mut polls = tokio::task::JoinSet::new();
        for device_code in chunk {
            let (http, url, device_code) = (http.clone(), url.clone(), device_code.clone());
            polls.spawn(async move {
                let form = [
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", device_code.as_str()),
                    ("client_id", "my-cli"),
                ];
                JsonAnswer::read(http.post(url).form(&form).send().await.unwrap()).await
            });
        }
        for answer in polls.join_all().await {
            if answer.body["error"] != "authorization_pending" {
                lost.push(answer.body.to_string());
            }
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {} answered device logins lost, e.g. {}",
        lost.len(),
        answered.len(),
        lost[0]
    );
}
