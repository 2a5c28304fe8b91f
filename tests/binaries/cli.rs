//! `monzo-auth login` as a person runs it: the real binary against the service in this process
//! and its fake-monzo, with `fake-monzo approve` standing in for the person at the browser.

use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use assert_cmd::assert::Assert;
use e2e_tests::*;
use fake_monzo::Failure;
use serde_json::Value;

/// Long enough for a loaded CI machine, short enough that a hang fails the test.
const LIMIT: Duration = Duration::from_secs(60);

/// `monzo-auth login --no-store` (the token printed, as before profiles) in a clean
/// environment (PATH only) aimed at `app`. `profiles.rs` tests the stored logins.
fn login(app: &TestApp) -> Command {
    let mut command = clean_command(&workspace_binary("monzo-auth"));
    command
        .args(["login", "--no-store"])
        .env("MONZO_AUTH_SERVICE", app.base.as_str())
        .stdin(Stdio::null());
    command
}

/// A `BROWSER` value that runs `fake-monzo approve` with `extra` flags on the login URL.
pub(crate) fn person(extra: &str) -> String {
    let fake = workspace_binary("fake-monzo");
    let fake = shell_words::quote(fake.to_str().expect("UTF-8 path")).into_owned();
    format!("{fake} approve {extra}")
}

/// Runs `command` to the end off the async runtime, which must keep serving the app meanwhile.
async fn run(command: Command) -> Assert {
    tokio::task::spawn_blocking(move || {
        assert_cmd::Command::from_std(command)
            .timeout(LIMIT)
            .assert()
    })
    .await
    .expect("the command ran")
}

fn stdout(assert: &Assert) -> String {
    String::from_utf8(assert.get_output().stdout.clone()).expect("UTF-8 stdout")
}

fn stderr(assert: &Assert) -> String {
    String::from_utf8(assert.get_output().stderr.clone()).expect("UTF-8 stderr")
}

/// The last line on stderr: where the one-line error goes, after any status lines.
fn last_line(text: &str) -> &str {
    text.trim_end().lines().last().unwrap_or("")
}

fn token_json(text: &str) -> Value {
    assert_eq!(text.lines().count(), 1, "one line of JSON: {text}");
    serde_json::from_str(text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

fn secrets_of(token: &Value) -> Vec<(&'static str, String)> {
    let mut secrets = vec![(
        "access token",
        token["access_token"].as_str().unwrap().to_owned(),
    )];
    if let Some(refresh) = token["refresh_token"].as_str() {
        secrets.push(("refresh token", refresh.to_owned()));
    }
    secrets
}

/// The binary running in the background, its output collected as it comes.
struct Running {
    child: Child,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    collectors: Vec<std::thread::JoinHandle<()>>,
}

fn collect(
    mut stream: impl std::io::Read + Send + 'static,
    into: Arc<Mutex<String>>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buffer = [0u8; 4096];
        while let Ok(n) = stream.read(&mut buffer) {
            if n == 0 {
                break;
            }
            into.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buffer[..n]));
        }
    })
}

impl Running {
    fn start(mut command: Command) -> Self {
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start monzo-auth");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let collectors = vec![
            collect(child.stdout.take().unwrap(), Arc::clone(&stdout)),
            collect(child.stderr.take().unwrap(), Arc::clone(&stderr)),
        ];
        Self {
            child,
            stdout,
            stderr,
            collectors,
        }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits (without blocking the runtime) until stderr contains `needle`; returns stderr.
    async fn wait_for_stderr(&mut self, needle: &str) -> String {
        let deadline = Instant::now() + LIMIT;
        loop {
            let text = self.stderr();
            if text.contains(needle) {
                return text;
            }
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("monzo-auth exited ({status}) before printing {needle:?}; stderr: {text}");
            }
            assert!(Instant::now() < deadline, "no {needle:?} on stderr: {text}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// Waits (without blocking the runtime) for the exit; returns the code, stdout and stderr.
    async fn finish(mut self) -> (Option<i32>, String, String) {
        let deadline = Instant::now() + LIMIT;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "monzo-auth did not exit; stderr: {}",
                self.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        // The collecting threads take what the process wrote last, up to the end of its output
        // (a browser it launched may hold stderr open longer: then what has come so far).
        let collectors = std::mem::take(&mut self.collectors);
        let ended = || collectors.iter().all(|c| c.is_finished());
        let deadline = Instant::now() + Duration::from_secs(5);
        while !ended() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let out = self.stdout.lock().unwrap().clone();
        (status.code(), out, self.stderr())
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn login_prints_the_token_as_json_and_nothing_secret_on_stderr() {
    let app = spawn_app().await;
    let mut command = login(&app);
    command.env("BROWSER", person(""));
    let assert = run(command).await.success();
    let token = token_json(&stdout(&assert));
    assert_eq!(token["user_id"], DEMO_USER);
    assert_eq!(token["token_type"], "Bearer");
    assert!(token["expires_in"].as_u64().unwrap() > 0);
    assert!(token["expires"].as_str().unwrap().ends_with('Z'));
    assert!(token["refresh_token"].is_string(), "{token}");
    assert!(token.get("token").is_none(), "{token}");
    let access = token["access_token"].as_str().unwrap();
    assert!(app.fake().is_access_token_live(access));

    let err = stderr(&assert);
    assert!(
        err.contains("Waiting for you to approve in the browser"),
        "{err}"
    );
    assert_no_secret("stderr", err.as_bytes(), &secrets_of(&token));
}

#[tokio::test]
async fn login_prints_env_lines_or_the_bare_token() {
    let app = spawn_app().await;

    let mut command = login(&app);
    command.env("BROWSER", person("")).args(["--format", "env"]);
    let env = stdout(&run(command).await.success());
    let names = env_names(&env);
    assert_eq!(
        names,
        [
            "MONZO_ACCESS_TOKEN",
            "MONZO_REFRESH_TOKEN",
            "MONZO_USER_ID",
            "MONZO_TOKEN_EXPIRES"
        ],
        "{env}"
    );
    // What a shell would make of the lines.
    let value = |name: &str| {
        let line = env.lines().find(|l| l.starts_with(name)).unwrap();
        let words = shell_words::split(line).expect("shell-safe");
        assert_eq!(words.len(), 1, "{line}");
        words[0].split_once('=').unwrap().1.to_owned()
    };
    assert_eq!(value("MONZO_USER_ID="), DEMO_USER);
    assert!(
        app.fake()
            .is_access_token_live(&value("MONZO_ACCESS_TOKEN="))
    );

    let mut command = login(&app);
    command
        .env("BROWSER", person(""))
        .args(["--format", "token"]);
    let bare = stdout(&run(command).await.success());
    assert!(
        bare.ends_with('\n') && bare.lines().count() == 1,
        "{bare:?}"
    );
    assert!(app.fake().is_access_token_live(bare.trim_end()));
}

#[cfg(unix)]
#[tokio::test]
async fn output_goes_to_a_private_file_and_nothing_secret_to_stdout() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token.json");
    // An old, world-readable file with longer content: narrowed and truncated.
    std::fs::write(&path, "x".repeat(4096)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();

    let mut command = login(&app);
    command
        .env("BROWSER", person(""))
        .arg("--output")
        .arg(&path);
    let assert = run(command).await.success();
    assert_eq!(stdout(&assert), "", "stdout must stay empty");
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let token = token_json(&std::fs::read_to_string(&path).unwrap());
    assert!(
        app.fake()
            .is_access_token_live(token["access_token"].as_str().unwrap())
    );
    let err = stderr(&assert);
    assert!(last_line(&err).contains("written to"), "{err}");
    assert_no_secret("stderr", err.as_bytes(), &secrets_of(&token));

    let fresh = dir.path().join("fresh.env");
    let mut command = login(&app);
    command
        .env("BROWSER", person(""))
        .args(["--format", "env", "--output"])
        .arg(&fresh);
    let assert = run(command).await.success();
    assert_eq!(stdout(&assert), "");
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(
        std::fs::read_to_string(&fresh)
            .unwrap()
            .starts_with("MONZO_ACCESS_TOKEN=")
    );
}

#[tokio::test]
async fn a_denied_login_exits_3_with_one_line() {
    let app = spawn_app().await;
    let mut command = login(&app);
    command.env("BROWSER", person("--deny"));
    let assert = run(command).await.code(3);
    assert_eq!(stdout(&assert), "");
    let err = stderr(&assert);
    assert_eq!(
        last_line(&err),
        "monzo-auth: access was denied at Monzo",
        "{err}"
    );
}

#[tokio::test]
async fn an_expired_session_exits_4() {
    let app = spawn_app_with(AppOptions::default().env("SESSION_TTL_SECS", "1")).await;
    let mut command = login(&app);
    // A browser that opens nothing: nobody ever logs in.
    command.env("BROWSER", "true");
    let assert = run(command).await.code(4);
    assert_eq!(stdout(&assert), "");
    let err = stderr(&assert);
    assert!(
        last_line(&err).starts_with("monzo-auth: the login session expired"),
        "{err}"
    );
}

#[tokio::test]
async fn https_to_an_http_service_and_a_server_that_is_not_monzo_auth_are_named() {
    let app = spawn_app().await;
    let mut https = app.base.clone();
    https.set_scheme("https").unwrap();
    let mut command = login(&app);
    command
        .args(["--service", https.as_str()])
        .env("BROWSER", "true");
    let err = stderr(&run(command).await.code(5));
    assert!(err.contains("does not speak HTTPS there"), "{err}");
    assert!(
        !err.to_lowercase().contains("corrupt"),
        "no TLS jargon: {err}"
    );

    // The stand-in's API is a web server, but no monzo-auth service.
    let mut command = login(&app);
    command
        .args(["--service", app.monzo.api_url.as_str()])
        .env("BROWSER", "true");
    let err = stderr(&run(command).await.code(6));
    assert!(
        err.contains("does not look like a monzo-auth service (HTTP 404 to POST /new)"),
        "{err}"
    );
}

#[tokio::test]
async fn an_unreachable_service_exits_5_with_one_line() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let mut command = clean_command(&workspace_binary("monzo-auth"));
    command
        .args(["login", "--service", &format!("http://127.0.0.1:{port}/")])
        .env("BROWSER", "true")
        .stdin(Stdio::null());
    let assert = run(command).await.code(5);
    assert_eq!(stdout(&assert), "");
    let err = stderr(&assert);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(&format!(
            "monzo-auth: cannot reach the service at http://127.0.0.1:{port}/ ("
        )),
        "{err}"
    );
}

#[tokio::test]
async fn bad_or_missing_flags_are_usage_errors() {
    for service in ["not a url", "ftp://example.com/", "localhost:3000"] {
        let mut command = clean_command(&workspace_binary("monzo-auth"));
        command
            .args(["login", "--service", service])
            .stdin(Stdio::null());
        let assert = run(command).await.code(2);
        let err = stderr(&assert);
        assert_eq!(err.lines().count(), 1, "{service}: {err}");
        assert!(err.starts_with("monzo-auth: --service: "), "{err}");
    }
    // A bare host and port: the URL that was meant.
    for (service, meant) in [
        ("127.0.0.1:3000", "http://127.0.0.1:3000/"),
        ("localhost:3000/", "http://localhost:3000/"),
    ] {
        let mut command = clean_command(&workspace_binary("monzo-auth"));
        command
            .args(["login", "--service", service])
            .stdin(Stdio::null());
        let err = stderr(&run(command).await.code(2));
        assert!(err.contains(&format!("did you mean {meant} ?")), "{err}");
    }
    // An --output that cannot be written is found out before anyone logs in.
    let mut command = clean_command(&workspace_binary("monzo-auth"));
    command
        .args(["login", "--service", "http://127.0.0.1:9/"])
        .args(["--output", "/nonexistent/dir/token.json"])
        .stdin(Stdio::null());
    let err = stderr(&run(command).await.code(2));
    assert_eq!(
        err,
        "monzo-auth: --output: the directory /nonexistent/dir does not exist\n"
    );
    // Neither flag nor MONZO_AUTH_SERVICE: clap's usage error.
    let mut command = clean_command(&workspace_binary("monzo-auth"));
    command.arg("login").stdin(Stdio::null());
    let assert = run(command).await.code(2);
    assert!(stderr(&assert).contains("--service"), "{}", stderr(&assert));
}

#[tokio::test]
async fn help_documents_the_exit_codes() {
    let mut command = clean_command(&workspace_binary("monzo-auth"));
    command.args(["login", "--help"]);
    let help = stdout(&run(command).await.success());
    for line in [
        "Exit codes:",
        "3    access was denied",
        "7    --wait-for-approval",
        "130",
    ] {
        assert!(help.contains(line), "{line:?} missing from: {help}");
    }
    assert!(!help.contains("approval-poll-ms"), "{help}");
}

#[cfg(unix)]
#[tokio::test]
async fn ctrl_c_and_sigterm_stop_the_wait_cleanly() {
    let app = spawn_app().await;
    for signal in ["INT", "TERM"] {
        let mut command = login(&app);
        command.env("BROWSER", "true");
        let mut running = Running::start(command);
        running
            .wait_for_stderr("Waiting for you to approve in the browser")
            .await;
        running.signal(signal);
        let (code, out, err) = running.finish().await;
        assert_eq!(code, Some(130), "SIG{signal}: {err}");
        assert_eq!(out, "", "SIG{signal}");
        assert_eq!(
            last_line(&err),
            "monzo-auth: interrupted",
            "SIG{signal}: {err}"
        );
    }
}

#[tokio::test]
async fn wait_for_approval_holds_the_token_until_access_is_approved() {
    let app = spawn_app().await;
    let mut command = login(&app);
    command
        .env("BROWSER", person(""))
        // Never configuration for the CLI (a child of `exec` would hand it back): the service's
        // metadata says where Monzo's API is, here the stand-in's.
        .env("MONZO_API_URL", "http://127.0.0.1:9/")
        .env("MONZO_AUTH_APPROVAL_POLL_MS", "100")
        .arg("--wait-for-approval");
    let mut running = Running::start(command);
    // Seen only after /accounts answered 403 insufficient_permissions.
    running
        .wait_for_stderr("Approve access in your Monzo app")
        .await;
    assert_eq!(
        running.stdout.lock().unwrap().as_str(),
        "",
        "token printed too early"
    );
    app.fake().approve_sca(DEMO_USER);
    let (code, out, err) = running.finish().await;
    assert_eq!(code, Some(0), "{err}");
    let token = token_json(&out);
    assert!(
        app.fake()
            .is_access_token_live(token["access_token"].as_str().unwrap())
    );
    assert_no_secret("stderr", err.as_bytes(), &secrets_of(&token));
}

#[tokio::test]
async fn wait_for_approval_gives_up_with_its_own_exit_code() {
    let app = spawn_app().await;
    let mut command = login(&app);
    command
        .env("BROWSER", person(""))
        .env("MONZO_AUTH_APPROVAL_POLL_MS", "100")
        .args(["--wait-for-approval", "--approval-timeout", "1"]);
    let assert = run(command).await.code(7);
    assert_eq!(stdout(&assert), "");
    let err = stderr(&assert);
    assert!(
        last_line(&err)
            .starts_with("monzo-auth: access was not approved in the Monzo app within 1 s"),
        "{err}"
    );
}

#[tokio::test]
async fn no_browser_with_qr_shows_a_device_code_and_a_qr_code_for_a_phone() {
    let app = spawn_app().await;
    let mut command = login(&app);
    // Would fail loudly if it were used.
    command
        .env("BROWSER", "false")
        .args(["--no-browser", "--qr"]);
    let mut running = Running::start(command);
    let err = running.wait_for_stderr("Waiting for the code").await;
    assert!(err.contains("enter the code"), "{err}");
    let code = err
        .lines()
        .map(str::trim)
        .find(|line| line.len() == 9 && line.as_bytes()[4] == b'-')
        .unwrap_or_else(|| panic!("no XXXX-XXXX code in: {err}"));
    assert!(
        err.contains(&format!(
            "open {} on any device",
            app.base.join("device").unwrap()
        )),
        "{err}"
    );
    // A loopback service: the person is told a phone cannot reach it.
    assert!(err.contains("is this machine only"), "{err}");
    let complete = app.base.join(&format!("device?user_code={code}")).unwrap();
    assert!(err.contains(complete.as_str()), "{err}");
    assert!(
        err.contains('█') && err.contains('▀'),
        "no QR code in: {err}"
    );
    assert!(!err.contains("Could not open a browser"), "{err}");

    // The person scans the code and logs in on their phone.
    app.driver()
        .approve_device(&complete, DEMO_USER, Decision::Approve)
        .await;
    let (code, out, err) = running.finish().await;
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(token_json(&out)["user_id"], DEMO_USER);
    assert!(
        last_line(&err).starts_with(&format!("Logged in as {DEMO_USER} (valid until ")),
        "{err}"
    );
}

#[tokio::test]
async fn the_login_url_is_always_printed_and_no_browser_starts_without_a_display() {
    let app = spawn_app_with(AppOptions::default().env("SESSION_TTL_SECS", "2")).await;
    // No BROWSER, no DISPLAY: nothing is launched (no xdg-open noise), the URL is printed.
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("launched");
    let fake_opener = dir.path().join("xdg-open");
    std::fs::write(
        &fake_opener,
        format!("#!/bin/sh\ntouch {}\n", marker.display()),
    )
    .unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&fake_opener, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let path = format!(
        "{}:{}",
        dir.path().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = login(&app);
    command.env("PATH", &path);
    let err = stderr(&run(command).await.code(4));
    assert!(
        err.contains(&format!("\n  {}", app.monzo.auth_url)),
        "no URL in: {err}"
    );
    assert!(!marker.exists(), "a browser was started without a display");
    // With a display the platform's opener runs, and the URL is printed all the same.
    let mut command = login(&app);
    command.env("PATH", &path).env("DISPLAY", ":0");
    let err = stderr(&run(command).await.code(4));
    assert!(err.contains("Opening your browser."), "{err}");
    assert!(
        err.contains(&format!("\n  {}", app.monzo.auth_url)),
        "no URL in: {err}"
    );
    assert!(marker.exists(), "the opener was not started");
}

#[tokio::test]
async fn a_monzo_outage_while_redeeming_is_retried() {
    let app = spawn_app().await;
    // The first exchange fails; the service answers 502 and keeps the session.
    app.fake().fail_next(1, Failure::Status(503));
    let mut command = login(&app);
    command.env("BROWSER", person(""));
    let assert = run(command).await.success();
    let err = stderr(&assert);
    assert!(err.contains("Monzo unavailable, retrying in"), "{err}");
    let token = token_json(&stdout(&assert));
    assert!(
        app.fake()
            .is_access_token_live(token["access_token"].as_str().unwrap())
    );
    assert_eq!(app.fake().stats().successful_code_exchanges, 1);
}

#[tokio::test]
async fn a_browser_that_fails_leads_to_the_url_being_printed() {
    let app = spawn_app_with(AppOptions::default().env("SESSION_TTL_SECS", "2")).await;
    let mut command = login(&app);
    // The first alternative cannot run, the second fails: the person gets the URL.
    command.env("BROWSER", "/nonexistent/browser:false");
    let assert = run(command).await.code(4);
    let err = stderr(&assert);
    assert!(
        err.contains("Could not open a browser (false failed"),
        "{err}"
    );
    assert!(
        err.contains(&format!("\n  {}", app.monzo.auth_url)),
        "no URL in: {err}"
    );
}

/// `monzo-auth refresh` in a clean environment (PATH only) aimed at `app`.
fn refresh(app: &TestApp) -> Command {
    let mut command = clean_command(&workspace_binary("monzo-auth"));
    command
        .arg("refresh")
        .env("MONZO_AUTH_SERVICE", app.base.as_str());
    command
}

/// Like [`run`], with `input` on stdin.
async fn run_with_stdin(command: Command, input: String) -> Assert {
    tokio::task::spawn_blocking(move || {
        assert_cmd::Command::from_std(command)
            .write_stdin(input)
            .timeout(LIMIT)
            .assert()
    })
    .await
    .expect("the command ran")
}

/// Logs in (the person approves at once) and returns what `login --format FORMAT` printed.
async fn logged_in(app: &TestApp, format: &str) -> String {
    let mut command = login(app);
    command
        .env("BROWSER", person(""))
        .args(["--format", format]);
    stdout(&run(command).await.success())
}

/// The value of `NAME=` in env lines, as a shell would read it.
fn env_value(env: &str, name: &str) -> String {
    let line = env
        .lines()
        .find(|line| line.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} in: {env}"));
    let words = shell_words::split(line).expect("shell-safe");
    words[0].split_once('=').unwrap().1.to_owned()
}

const REFUSED: &str = "monzo-auth: Monzo refused the refresh token (expired, already used or \
                       revoked); log in again with `monzo-auth login`\n";

#[cfg(unix)]
#[tokio::test]
async fn refresh_in_place_rotates_the_token_file() {
    use std::os::unix::fs::PermissionsExt as _;
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token.json");
    let mut command = login(&app);
    command
        .env("BROWSER", person(""))
        .arg("--output")
        .arg(&path);
    run(command).await.success();
    let old = token_json(&std::fs::read_to_string(&path).unwrap());

    let mut command = refresh(&app);
    command
        .arg("--input")
        .arg(&path)
        .arg("--output")
        .arg(&path)
        .stdin(Stdio::null());
    let assert = run(command).await.success();
    assert_eq!(stdout(&assert), "", "stdout must stay empty");
    let err = stderr(&assert);
    assert_eq!(
        err,
        format!(
            "Refreshed the token of {DEMO_USER}; written to {}\n",
            path.display()
        )
    );

    let new = token_json(&std::fs::read_to_string(&path).unwrap());
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(new["refresh_token"].is_string(), "{new}");
    assert_ne!(new["refresh_token"], old["refresh_token"]);
    assert_eq!(new["user_id"], DEMO_USER);
    assert_eq!(new["token_type"], "Bearer");
    assert!(new["expires_in"].as_u64().unwrap() > 0);
    let expires = new["expires"].as_str().unwrap();
    assert!(expires.len() == 20 && expires.ends_with('Z'), "{expires}");
    assert!(
        app.fake()
            .is_access_token_live(new["access_token"].as_str().unwrap())
    );
    assert!(
        !app.fake()
            .is_access_token_live(old["access_token"].as_str().unwrap())
    );
    assert_eq!(app.fake().stats().refreshes, 1);
    // Replaced whole: no temporary file is left beside it.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    let secrets = [secrets_of(&old), secrets_of(&new)].concat();
    assert_no_secret("stderr", err.as_bytes(), &secrets);
}

#[tokio::test]
async fn refresh_reads_stdin_and_prints_the_bare_access_token() {
    let app = spawn_app().await;
    let printed = logged_in(&app, "json").await;
    let old = token_json(&printed);
    let mut command = refresh(&app);
    command.args(["--format", "token"]);
    let assert = run_with_stdin(command, printed).await.success();
    let bare = stdout(&assert);
    assert!(
        bare.ends_with('\n') && bare.lines().count() == 1,
        "{bare:?}"
    );
    assert!(app.fake().is_access_token_live(bare.trim_end()));
    assert!(
        !app.fake()
            .is_access_token_live(old["access_token"].as_str().unwrap())
    );
    assert_eq!(stderr(&assert), "");
}

#[tokio::test]
async fn refresh_keeps_the_env_format_and_takes_a_bare_refresh_token() {
    let app = spawn_app().await;
    let env = logged_in(&app, "env").await;
    // Env lines in, env lines out.
    let assert = run_with_stdin(refresh(&app), env.clone()).await.success();
    let renewed = stdout(&assert);
    let names = env_names(&renewed);
    assert_eq!(
        names,
        [
            "MONZO_ACCESS_TOKEN",
            "MONZO_REFRESH_TOKEN",
            "MONZO_USER_ID",
            "MONZO_TOKEN_EXPIRES"
        ],
        "{renewed}"
    );
    assert_ne!(
        env_value(&renewed, "MONZO_REFRESH_TOKEN"),
        env_value(&env, "MONZO_REFRESH_TOKEN")
    );
    assert!(
        app.fake()
            .is_access_token_live(&env_value(&renewed, "MONZO_ACCESS_TOKEN"))
    );

    // The refresh token alone in, JSON out.
    let bare = format!("{}\n", env_value(&renewed, "MONZO_REFRESH_TOKEN"));
    let assert = run_with_stdin(refresh(&app), bare).await.success();
    let token = token_json(&stdout(&assert));
    assert_eq!(token["user_id"], DEMO_USER);
    assert!(
        app.fake()
            .is_access_token_live(token["access_token"].as_str().unwrap())
    );
    assert!(
        !app.fake()
            .is_access_token_live(&env_value(&renewed, "MONZO_ACCESS_TOKEN"))
    );
}

#[tokio::test]
async fn refresh_with_a_used_refresh_token_exits_6_with_one_line() {
    let app = spawn_app().await;
    let printed = logged_in(&app, "json").await;
    let first = run_with_stdin(refresh(&app), printed.clone())
        .await
        .success();
    let renewed = token_json(&stdout(&first));

    // The refresh token of the login was used up by the first refresh.
    let assert = run_with_stdin(refresh(&app), printed.clone()).await.code(6);
    assert_eq!(stdout(&assert), "");
    let err = stderr(&assert);
    assert_eq!(err, REFUSED);
    let secrets = [secrets_of(&token_json(&printed)), secrets_of(&renewed)].concat();
    assert_no_secret("stderr", err.as_bytes(), &secrets);
    // Monzo refused it: no retry.
    assert_eq!(app.fake().stats().refreshes, 2);
}

#[tokio::test]
async fn refresh_without_a_refresh_token_in_the_input_exits_2() {
    // Nothing listens here: a refresh that got as far as asking would exit 5.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let service = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let no_refresh = dir.path().join("token.json");
    std::fs::write(
        &no_refresh,
        r#"{"access_token":"acc","expires":"2026-11-29T15:22:03Z","expires_in":21600,"token_type":"Bearer","user_id":"user_00009"}"#,
    )
    .unwrap();
    let env_without = dir.path().join("token.env");
    std::fs::write(&env_without, "MONZO_ACCESS_TOKEN=acc\nMONZO_USER_ID=u\n").unwrap();
    let missing = dir.path().join("missing.json");
    let command = || {
        let mut command = clean_command(&workspace_binary("monzo-auth"));
        command.args(["refresh", "--service", &service]);
        command
    };

    let cases: Vec<(Command, &str, String)> = vec![
        (
            command(),
            "",
            "monzo-auth: no refresh token in stdin: it is empty\n".into(),
        ),
        (
            command(),
            "secret-ish garbage\nover two lines\n",
            "monzo-auth: no refresh token in stdin: expected what `monzo-auth login` printed \
             (JSON or env lines), or a refresh token alone on one line\n"
                .into(),
        ),
        (
            {
                let mut c = command();
                c.arg("--input").arg(&no_refresh);
                c
            },
            "",
            format!(
                "monzo-auth: no refresh token in {}: the token has no refresh_token (the \
                 service's Monzo client gets none unless it is confidential)\n",
                no_refresh.display()
            ),
        ),
        (
            {
                let mut c = command();
                c.arg("--input").arg(&env_without);
                c
            },
            "",
            format!(
                "monzo-auth: no refresh token in {}: there is no MONZO_REFRESH_TOKEN= line (the \
                 service's Monzo client gets none unless it is confidential)\n",
                env_without.display()
            ),
        ),
    ];
    for (command, input, expected) in cases {
        let assert = run_with_stdin(command, input.to_owned()).await.code(2);
        assert_eq!(stdout(&assert), "");
        assert_eq!(stderr(&assert), expected);
    }

    let mut unreadable = command();
    unreadable.arg("--input").arg(&missing);
    let err = stderr(&run_with_stdin(unreadable, String::new()).await.code(2));
    assert!(
        err.starts_with(&format!("monzo-auth: cannot read {}: ", missing.display())),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");

    // There is no flag for the refresh token itself: ps and shell history would keep it.
    let mut flag = command();
    flag.args(["--refresh-token", "eyJr"]);
    let err = stderr(&run_with_stdin(flag, String::new()).await.code(2));
    assert!(err.contains("--refresh-token"), "{err}");
}

#[tokio::test]
async fn refresh_after_a_login_without_a_refresh_token_exits_2() {
    let app = spawn_app_with(AppOptions {
        confidential_client: false,
        ..AppOptions::default()
    })
    .await;
    let printed = logged_in(&app, "json").await;
    assert!(!printed.contains("refresh_token"), "{printed}");
    let assert = run_with_stdin(refresh(&app), printed).await.code(2);
    assert_eq!(stdout(&assert), "");
    assert_eq!(
        stderr(&assert),
        "monzo-auth: no refresh token in stdin: the token has no refresh_token (the service's \
         Monzo client gets none unless it is confidential)\n"
    );
}

#[tokio::test]
async fn refresh_leaves_the_file_alone_when_the_service_is_unreachable() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let service = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token.json");
    let saved = r#"{"access_token":"acc","refresh_token":"eyJr","expires":"2026-11-29T15:22:03Z","expires_in":21600,"token_type":"Bearer","user_id":"user_00009"}"#;
    std::fs::write(&path, saved).unwrap();
    let mut command = clean_command(&workspace_binary("monzo-auth"));
    command
        .args(["refresh", "--service", &service, "--input"])
        .arg(&path)
        .arg("--output")
        .arg(&path)
        .stdin(Stdio::null());
    let assert = run(command).await.code(5);
    assert_eq!(stdout(&assert), "");
    let err = stderr(&assert);
    assert!(
        last_line(&err).starts_with(&format!(
            "monzo-auth: cannot reach the service at {service} ("
        )),
        "{err}"
    );
    // Tried three times in all.
    assert_eq!(
        err.matches("Service unreachable, retrying in").count(),
        2,
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&path).unwrap(), saved);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);

    // An --output whose directory is missing is found out before anything is asked.
    let mut command = clean_command(&workspace_binary("monzo-auth"));
    command
        .args(["refresh", "--service", &service, "--input"])
        .arg(&path)
        .args(["--output", "/nonexistent/dir/token.json"])
        .stdin(Stdio::null());
    let err = stderr(&run(command).await.code(2));
    assert_eq!(
        err,
        "monzo-auth: --output: the directory /nonexistent/dir does not exist\n"
    );
}

#[tokio::test]
async fn refresh_help_documents_where_the_token_comes_from() {
    let mut command = clean_command(&workspace_binary("monzo-auth"));
    command.args(["refresh", "--help"]);
    let help = stdout(&run(command).await.success());
    for text in [
        "--input <FILE>",
        "--output <FILE>",
        "never from the command line",
        "monzo-auth refresh --service \"$SERVICE\" --input token.json --output token.json",
        "Exit codes:",
        "6    Monzo refused the login or the refresh token",
    ] {
        assert!(help.contains(text), "{text:?} missing from: {help}");
    }
}

#[tokio::test]
async fn refresh_rides_out_a_monzo_outage() {
    let app = spawn_app().await;
    let printed = logged_in(&app, "json").await;
    // The service answers 503 temporarily_unavailable with Retry-After; the token is kept.
    app.fake().fail_next(1, Failure::Status(503));
    let assert = run_with_stdin(refresh(&app), printed.clone())
        .await
        .success();
    let err = stderr(&assert);
    assert!(err.contains("Monzo unavailable, retrying in"), "{err}");
    let token = token_json(&stdout(&assert));
    assert!(
        app.fake()
            .is_access_token_live(token["access_token"].as_str().unwrap())
    );
    assert_ne!(
        token["refresh_token"],
        token_json(&printed)["refresh_token"]
    );
}

/// The variable names of `--format env` output, in order.
fn env_names(text: &str) -> Vec<&str> {
    text.lines()
        .map(|line| line.split_once('=').expect("NAME=value").0)
        .collect()
}
