//! Stored logins as a person uses them: `monzo-auth login` keeps the login in a profile,
//! `token`, `exec`, `status` and `logout` use it. The real binary against the service in this
//! process and its fake-monzo, each test with its own configuration directory and no session
//! bus (so the owner-only file holds the login), except the keyring test, which runs a real
//! Secret Service (gnome-keyring) on a private session bus.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use e2e_tests::*;
use serde_json::Value;

use crate::cli::person;

/// A person's machine: a configuration directory, a runtime directory, and no session bus.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["config", "runtime"] {
            std::fs::create_dir(dir.path().join(sub)).unwrap();
        }
        Self { dir }
    }

    /// `monzo-auth ARGS` as this person, aimed at `app`.
    fn command(&self, app: &TestApp, args: &[&str]) -> Command {
        let mut command = clean_command(&workspace_binary("monzo-auth"));
        command
            .args(args)
            .env("MONZO_AUTH_SERVICE", app.base.as_str())
            .env("XDG_CONFIG_HOME", self.dir.path().join("config"))
            .env("XDG_RUNTIME_DIR", self.dir.path().join("runtime"))
            // No Secret Service here (and never the real one of whoever runs the tests).
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                format!("unix:path={}", self.dir.path().join("no-bus").display()),
            )
            .stdin(Stdio::null());
        command
    }

    fn profile_file(&self, name: &str) -> PathBuf {
        self.dir
            .path()
            .join("config/monzo-auth/profiles")
            .join(format!("{name}.json"))
    }

    fn profile(&self, name: &str) -> Value {
        serde_json::from_str(&std::fs::read_to_string(self.profile_file(name)).unwrap()).unwrap()
    }

    /// One of the profile's stored tokens (the file holds them: no keyring here).
    fn secret(&self, name: &str, which: &str) -> String {
        self.profile(name)["secrets"][which]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Makes the stored access token due, as hours passing would.
    fn make_due(&self, name: &str) {
        let mut profile = self.profile(name);
        profile["expires_at"] = Value::from(1);
        std::fs::write(self.profile_file(name), profile.to_string()).unwrap();
    }
}

/// Waits until the stand-in has had a token call more than `calls`: a refresh is at Monzo.
async fn refresh_reached_monzo(app: &TestApp, calls: u64) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while app.fake().stats().token_calls == calls {
        assert!(
            std::time::Instant::now() < deadline,
            "the refresh never reached Monzo"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
}

/// A refresh of `refresh_token` straight at the service, as another copy of it would do.
async fn refresh_at_service(app: &TestApp, refresh_token: &str) -> u16 {
    app.http
        .post(app.base.join("oauth/token").unwrap())
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn output(mut command: Command) -> Output {
    tokio::task::spawn_blocking(move || command.output().expect("monzo-auth runs"))
        .await
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

/// `monzo-auth login` (stored), the demo user approving at the stand-in.
async fn logged_in(app: &TestApp, home: &Home, extra: &[&str]) -> Output {
    let mut args = vec!["login"];
    args.extend_from_slice(extra);
    let mut command = home.command(app, &args);
    command.env("BROWSER", person(""));
    let out = output(command).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    out
}

#[tokio::test]
async fn login_stores_the_profile_and_token_prints_it_without_asking_anyone() {
    let app = spawn_app().await;
    let home = Home::new();
    let out = logged_in(&app, &home, &[]).await;
    assert_eq!(text(&out.stdout), "", "nothing on stdout when stored");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("Logged in as {DEMO_USER} (valid until ")),
        "{stderr}"
    );
    assert!(stderr.contains("kept in profile default"), "{stderr}");

    let profile = home.profile("default");
    assert_eq!(profile["backend"], "file", "no keyring here");
    assert_eq!(profile["user_id"], DEMO_USER);
    assert_eq!(profile["service"], app.base.as_str());
    assert_eq!(
        profile["monzo_api_url"]
            .as_str()
            .unwrap()
            .trim_end_matches('/'),
        app.monzo.api_url.as_str().trim_end_matches('/')
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(home.profile_file("default"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let access = profile["secrets"]["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let refresh = profile["secrets"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_owned();

    let before = app.fake().stats().refreshes;
    let token = output(home.command(&app, &["token"])).await;
    assert!(token.status.success(), "{}", text(&token.stderr));
    assert_eq!(text(&token.stdout), format!("{access}\n"));
    let json = output(home.command(&app, &["token", "--format", "json"])).await;
    let json: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(json["access_token"], access.as_str());
    assert_eq!(json["user_id"], DEMO_USER);
    assert!(json["expires_at"].as_u64().unwrap() > 1_700_000_000);
    for format in ["env", "dotenv"] {
        let lines = output(home.command(&app, &["token", "--format", format])).await;
        let lines = text(&lines.stdout);
        assert!(
            lines.contains("MONZO_ACCESS_TOKEN=") && lines.contains(DEMO_USER),
            "{lines}"
        );
        assert_eq!(lines.starts_with("export "), format == "env", "{lines}");
        if format == "env" {
            assert!(
                lines.contains(&format!("export MONZO_ACCESS_TOKEN='{access}'\n")),
                "{lines}"
            );
        } else {
            assert!(
                lines.contains(&format!("MONZO_ACCESS_TOKEN={access}\n")),
                "{lines}"
            );
        }
        assert!(!lines.contains(&refresh), "never the refresh token");
    }
    assert!(!text(&json.to_string().into_bytes()).contains(&refresh));
    assert_eq!(
        app.fake().stats().refreshes,
        before,
        "within the margin: no call"
    );
}

#[tokio::test]
async fn a_due_token_is_refreshed_once_and_the_rotated_pair_kept() {
    let app = spawn_app().await;
    let home = Home::new();
    logged_in(&app, &home, &[]).await;
    let old = home.profile("default");
    home.make_due("default");
    let token = output(home.command(&app, &["token"])).await;
    assert!(token.status.success(), "{}", text(&token.stderr));
    let new = home.profile("default");
    let printed = text(&token.stdout);
    assert_eq!(
        printed.trim(),
        new["secrets"]["access_token"].as_str().unwrap()
    );
    assert_ne!(
        new["secrets"]["refresh_token"],
        old["secrets"]["refresh_token"]
    );
    assert!(app.fake().is_access_token_live(printed.trim()));
    assert_eq!(app.fake().stats().refreshes, 1);
    // Valid again: the next call asks no one.
    output(home.command(&app, &["token"])).await;
    assert_eq!(app.fake().stats().refreshes, 1);
    // --min-valid asks for more than is left: a refresh.
    output(home.command(&app, &["token", "--min-valid", "86400"])).await;
    assert_eq!(app.fake().stats().refreshes, 2);
}

#[tokio::test]
async fn twenty_processes_asking_at_once_make_exactly_one_refresh() {
    let app = spawn_app().await;
    let home = Home::new();
    logged_in(&app, &home, &[]).await;
    home.make_due("default");
    let before = app.fake().stats().refreshes;
    let children: Vec<_> = (0..20)
        .map(|_| {
            home.command(&app, &["token"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let outputs = tokio::task::spawn_blocking(move || {
        children
            .into_iter()
            .map(|child| child.wait_with_output().unwrap())
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let printed: Vec<String> = outputs
        .iter()
        .map(|out| {
            assert!(out.status.success(), "{}", text(&out.stderr));
            text(&out.stdout)
        })
        .collect();
    assert_eq!(
        app.fake().stats().refreshes - before,
        1,
        "exactly one refresh"
    );
    assert!(
        printed.iter().all(|p| p == &printed[0]),
        "all print the same token"
    );
    assert!(app.fake().is_access_token_live(printed[0].trim()));
}

#[tokio::test]
async fn exec_runs_the_command_with_the_token_and_passes_its_exit_code() {
    let app = spawn_app().await;
    let home = Home::new();
    logged_in(&app, &home, &[]).await;
    let access = home.secret("default", "access_token");
    let out = output(home.command(
        &app,
        &[
            "exec",
            "--",
            "sh",
            "-c",
            "echo \"$MONZO_USER_ID $MONZO_ACCESS_TOKEN ${MONZO_REFRESH_TOKEN:-none}\"; exit 7",
        ],
    ))
    .await;
    assert_eq!(out.status.code(), Some(7), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), format!("{DEMO_USER} {access} none\n"));
    assert_eq!(
        text(&out.stderr),
        "",
        "the command's exit is not an error of ours"
    );
}

#[tokio::test]
async fn status_reports_valid_pending_approval_and_evicted() {
    let app = spawn_app().await;
    let home = Home::new();
    logged_in(&app, &home, &[]).await;
    let status = output(home.command(&app, &["status", "--format", "json"])).await;
    assert!(status.status.success(), "{}", text(&status.stderr));
    let report: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report[0]["monzo"], "valid");
    assert_eq!(report[0]["backend"], "file");
    assert_eq!(
        report[0]["approval_pending"], true,
        "not yet approved in the app"
    );
    app.fake().approve_sca(DEMO_USER);
    let report: Value = serde_json::from_slice(
        &output(home.command(&app, &["status", "--format", "json"]))
            .await
            .stdout,
    )
    .unwrap();
    assert_eq!(report[0]["approval_pending"], false);

    // The same user logs in again elsewhere (another profile): Monzo evicts this login, and
    // status says so with exit 9 (text and JSON), recording it in the profile.
    logged_in(&app, &home, &["--profile", "laptop"]).await;
    let text_status = output(home.command(&app, &["status"])).await;
    let shown = text(&text_status.stdout);
    assert!(shown.contains("logged in elsewhere"), "{shown}");
    assert!(shown.contains(DEMO_USER), "{shown}");
    assert_eq!(text_status.status.code(), Some(9), "{shown}");
    let json_status = output(home.command(&app, &["status", "--format", "json"])).await;
    assert_eq!(json_status.status.code(), Some(9));
    // token and exec stop handing out the dead token.
    let token = output(home.command(&app, &["token"])).await;
    assert_eq!(token.status.code(), Some(9), "{}", text(&token.stderr));
    assert_eq!(text(&token.stdout), "", "no dead token printed");
    assert!(
        text(&token.stderr).contains("log in again"),
        "{}",
        text(&token.stderr)
    );
    let exec = output(home.command(&app, &["exec", "--", "true"])).await;
    assert_eq!(exec.status.code(), Some(9));
    // status --all exits with the worst: the dead login.
    let all_status = output(home.command(&app, &["status", "--all", "--format", "json"])).await;
    assert_eq!(all_status.status.code(), Some(9));
    let all: Value = serde_json::from_slice(&all_status.stdout).unwrap();
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["profile"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["default", "laptop"]);
    assert_eq!(all[1]["monzo"], "valid");

    // A refresh Monzo refuses marks the login dead too: its refresh token revoked elsewhere.
    home.make_due("laptop");
    let refresh = home.secret("laptop", "refresh_token");
    let revoked = app
        .http
        .post(app.base.join("oauth/revoke").unwrap())
        .form(&[("token", refresh.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    let expired = output(home.command(&app, &["status", "--profile", "laptop"])).await;
    assert_eq!(expired.status.code(), Some(9), "{}", text(&expired.stdout));
    let token = output(home.command(&app, &["token", "--profile", "laptop"])).await;
    assert_eq!(token.status.code(), Some(9));

    // A new login clears the mark.
    logged_in(&app, &home, &[]).await;
    let token = output(home.command(&app, &["token"])).await;
    assert!(token.status.success(), "{}", text(&token.stderr));
    assert!(app.fake().is_access_token_live(text(&token.stdout).trim()));
}

#[tokio::test]
async fn logout_revokes_at_monzo_even_from_an_expired_token_and_forgets_the_profile() {
    let app = spawn_app().await;
    let home = Home::new();
    logged_in(&app, &home, &[]).await;
    home.make_due("default");
    let stale = home.secret("default", "refresh_token");
    let out = output(home.command(&app, &["logout"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Logged out profile default"));
    assert!(!home.profile_file("default").exists());
    // It refreshed first and revoked the new login: nothing live is left behind.
    assert_eq!(app.fake().stats().refreshes, 1);
    assert_eq!(app.fake().stats().logouts, [DEMO_USER]);
    assert_eq!(refresh_at_service(&app, &stale).await, 400);

    let token = output(home.command(&app, &["token"])).await;
    assert_eq!(token.status.code(), Some(8), "not logged in");
    assert!(
        text(&token.stderr).contains("not logged in"),
        "{}",
        text(&token.stderr)
    );
    let status = output(home.command(&app, &["status"])).await;
    assert_eq!(status.status.code(), Some(8), "{}", text(&status.stdout));

    // A live token: revoked as it is, and Monzo refuses it after.
    logged_in(&app, &home, &["--profile", "live"]).await;
    let access = home.secret("live", "access_token");
    assert!(app.fake().is_access_token_live(&access));
    let out = output(home.command(&app, &["logout", "--all"])).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        !app.fake().is_access_token_live(&access),
        "whoami refuses it"
    );
    assert!(!home.profile_file("live").exists());
}

#[tokio::test]
async fn a_login_monzo_no_longer_accepts_says_log_in_again() {
    let app = spawn_app().await;
    let home = Home::new();
    logged_in(&app, &home, &[]).await;
    // Someone spent the refresh token elsewhere (a copy, an interrupted refresh).
    let refresh = home.secret("default", "refresh_token");
    assert_eq!(refresh_at_service(&app, &refresh).await, 200);
    home.make_due("default");
    let token = output(home.command(&app, &["token"])).await;
    assert_eq!(token.status.code(), Some(9), "{}", text(&token.stderr));
    assert!(
        text(&token.stderr).contains("log in again"),
        "{}",
        text(&token.stderr)
    );
}

#[tokio::test]
async fn import_moves_a_token_file_into_a_profile() {
    let app = spawn_app().await;
    let home = Home::new();
    let file = home.dir.path().join("monzo.json");
    let mut command = home.command(&app, &["login", "--output", file.to_str().unwrap()]);
    command.env("BROWSER", person(""));
    assert!(output(command).await.status.success());
    assert!(
        !home.profile_file("default").exists(),
        "--output does not store"
    );
    let saved: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();

    let out = output(home.command(
        &app,
        &[
            "login",
            "--import",
            file.to_str().unwrap(),
            "--profile",
            "pi",
        ],
    ))
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("Delete"),
        "{}",
        text(&out.stderr)
    );
    let token = output(home.command(&app, &["token", "--profile", "pi"])).await;
    assert_eq!(
        text(&token.stdout).trim(),
        saved["access_token"].as_str().unwrap()
    );
}

#[tokio::test]
async fn the_keyring_holds_the_login_and_is_reported_unreachable_without_a_bus() {
    let app = spawn_app().await;
    let home = Home::new();
    // A real Secret Service on a private session bus: gnome-keyring, its login keyring
    // created and unlocked with a throwaway password.
    let script = format!(
        "set -e; {UNLOCKED_KEYRING}; \"$MONZO\" login; \"$MONZO\" token; \
         \"$MONZO\" status --format json"
    );
    let out = on_a_private_bus(&app, &home, &script, &person("")).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let profile = home.profile("default");
    assert_eq!(profile["backend"], "keyring");
    assert!(
        profile.get("secrets").is_none(),
        "no token in the file: {profile}"
    );
    let lines = text(&out.stdout);
    let mut lines = lines.lines();
    let token = lines.next().unwrap();
    assert!(app.fake().is_access_token_live(token));
    let report: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    assert_eq!(report[0]["backend"], "keyring");
    assert_eq!(report[0]["monzo"], "valid");

    // From cron or systemd (no session bus): never another place, never a new login.
    let cron = output(home.command(&app, &["token"])).await;
    assert_eq!(cron.status.code(), Some(10), "{}", text(&cron.stderr));
    assert!(
        text(&cron.stderr).contains("the keyring is not reachable from here"),
        "{}",
        text(&cron.stderr)
    );
    // status still prints what is stored.
    let status = output(home.command(&app, &["status"])).await;
    let shown = text(&status.stdout);
    assert!(
        shown.contains(DEMO_USER) && shown.contains("keyring"),
        "{shown}"
    );
}

#[tokio::test]
async fn a_token_process_killed_before_monzo_answers_leaves_a_working_profile() {
    let app = spawn_app().await;
    let home = Home::new();
    logged_in(&app, &home, &[]).await;
    home.make_due("default");
    let before = home.profile("default");
    // Monzo is down for the first try: the refresh waits to try again, and is killed meanwhile.
    app.fake().fail_next(1, fake_monzo::Failure::Status(503));
    let calls = app.fake().stats().token_calls;
    let mut child = home
        .command(&app, &["token"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    refresh_reached_monzo(&app, calls).await;
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(home.profile("default"), before, "the profile is untouched");
    let token = output(home.command(&app, &["token"])).await;
    assert!(token.status.success(), "{}", text(&token.stderr));
    assert!(app.fake().is_access_token_live(text(&token.stdout).trim()));
}

#[tokio::test]
async fn status_prints_the_stored_facts_when_monzo_cannot_be_reached() {
    let app = spawn_app().await;
    let home = Home::new();
    logged_in(&app, &home, &[]).await;
    let mut profile = home.profile("default");
    profile["monzo_api_url"] = Value::from("http://127.0.0.1:9/");
    std::fs::write(home.profile_file("default"), profile.to_string()).unwrap();
    drop(app);
    let home_app = spawn_app().await; // a service elsewhere: status needs none
    let status = output(home.command(&home_app, &["status"])).await;
    let shown = text(&status.stdout);
    assert_eq!(
        status.status.code(),
        Some(11),
        "could not check: {}",
        text(&status.stderr)
    );
    assert!(
        shown.contains(DEMO_USER) && shown.contains("expires:"),
        "{shown}"
    );
    assert!(shown.contains("not reachable"), "{shown}");
}

#[tokio::test]
async fn logging_in_again_remembers_the_profiles_service() {
    let app = spawn_app().await;
    let home = Home::new();
    logged_in(&app, &home, &["--profile", "pi"]).await;
    let mut again = home.command(&app, &["login", "--profile", "pi"]);
    again
        .env_remove("MONZO_AUTH_SERVICE")
        .env("BROWSER", person(""));
    let out = output(again).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(app.fake().stats().successful_code_exchanges, 2);
    // A profile never logged in has no service to remember.
    let mut fresh = home.command(&app, &["login", "--profile", "new"]);
    fresh.env_remove("MONZO_AUTH_SERVICE");
    let out = output(fresh).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--service URL is required"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn sigterm_during_a_refresh_waits_for_the_save_so_the_login_survives() {
    let app = spawn_app().await;
    let home = Home::new();
    logged_in(&app, &home, &[]).await;
    home.make_due("default");
    let old_refresh = home.secret("default", "refresh_token");
    // Monzo rotates the pair at once and answers 1.5 s later: the window a signal must not cut.
    app.fake().fail_next(
        1,
        fake_monzo::Failure::Delay(std::time::Duration::from_millis(1500)),
    );
    let calls = app.fake().stats().token_calls;
    let child = home
        .command(&app, &["token"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    refresh_reached_monzo(&app, calls).await;
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::task::spawn_blocking(move || child.wait_with_output().unwrap())
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out.stderr));
    // The rotated pair was saved before it stopped: the login works on.
    assert_ne!(home.secret("default", "refresh_token"), old_refresh);
    let token = output(home.command(&app, &["token"])).await;
    assert!(token.status.success(), "{}", text(&token.stderr));
    assert!(app.fake().is_access_token_live(text(&token.stdout).trim()));
}

/// Runs `script` (with `$MONZO` the command) on a private session bus, `home`'s config and
/// keyrings, aimed at `app`; `browser` is the `BROWSER` it sees.
async fn on_a_private_bus(app: &TestApp, home: &Home, script: &str, browser: &str) -> Output {
    let program = Path::new("/usr/bin/dbus-run-session");
    assert!(
        program.exists(),
        "dbus-run-session is missing: `make test` installs dbus and gnome-keyring"
    );
    let mut session = clean_command(program);
    session
        .args(["--", "sh", "-c", script])
        .env("MONZO", workspace_binary("monzo-auth"))
        .env("MONZO_AUTH_SERVICE", app.base.as_str())
        .env("XDG_CONFIG_HOME", home.dir.path().join("config"))
        .env("XDG_RUNTIME_DIR", home.dir.path().join("runtime"))
        .env("HOME", home.dir.path())
        .env("BROWSER", browser)
        .stdin(Stdio::null());
    output(session).await
}

/// Starts gnome-keyring with its login keyring created and unlocked (a throwaway password).
const UNLOCKED_KEYRING: &str = "echo throwaway | gnome-keyring-daemon --unlock \
    --components=secrets --daemonize >/dev/null";
/// Locks the login keyring, as a screen lock or a timeout would.
const LOCK_KEYRING: &str = "dbus-send --session --dest=org.freedesktop.secrets --print-reply \
    /org/freedesktop/secrets org.freedesktop.Secret.Service.Lock \
    array:objpath:/org/freedesktop/secrets/collection/login >/dev/null";

/// A keyring that is there but cannot keep a login (no collection, or locked) is found before
/// the login starts: exit 10 naming `--store file`, and Monzo is never asked for a token (a new
/// token would end the user's previous login). `--store file` then works.
#[tokio::test]
async fn a_keyring_that_cannot_keep_the_login_stops_it_before_it_starts() {
    let app = spawn_app().await;
    for (what, setup) in [
        (
            "no collection",
            "gnome-keyring-daemon --start --components=secrets --daemonize >/dev/null".to_owned(),
        ),
        ("locked", format!("{UNLOCKED_KEYRING}; {LOCK_KEYRING}")),
    ] {
        let home = Home::new();
        let script = format!(
            "{setup}; \"$MONZO\" login; echo \"login=$?\"; \"$MONZO\" login --store file; \
             echo \"file=$?\""
        );
        let out = on_a_private_bus(&app, &home, &script, &person("")).await;
        let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
        assert!(stdout.contains("login=10\n"), "{what}: {stdout} {stderr}");
        assert!(stderr.contains("--store file"), "{what}: {stderr}");
        assert!(stdout.contains("file=0\n"), "{what}: {stdout} {stderr}");
        assert_eq!(home.profile("default")["backend"], "file", "{what}");
    }
    assert_eq!(
        app.fake().stats().successful_code_exchanges,
        2,
        "only the two --store file logins reached Monzo"
    );
}

/// A keyring that locks while the person is at Monzo: the login is kept in the owner-only file
/// with a warning that says so (plain text), never lost and never printed; status shows where.
#[tokio::test]
async fn a_keyring_that_fails_after_approval_leaves_the_login_in_the_file() {
    let app = spawn_app().await;
    let home = Home::new();
    let browser = home.dir.path().join("lock-then-approve.sh");
    std::fs::write(
        &browser,
        format!("{LOCK_KEYRING}\nexec {} \"$1\"\n", person("")),
    )
    .unwrap();
    let script = format!("{UNLOCKED_KEYRING}; \"$MONZO\" login; \"$MONZO\" status");
    let out = on_a_private_bus(
        &app,
        &home,
        &script,
        &format!("sh {} %s", browser.display()),
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout} {stderr}");
    let profile = home.profile("default");
    assert_eq!(profile["backend"], "file");
    let access = home.secret("default", "access_token");
    assert!(app.fake().is_access_token_live(&access));
    assert!(
        stderr.contains("plain-text file") && stderr.contains("default.json"),
        "{stderr}"
    );
    assert!(
        !stdout.contains(&access) && !stderr.contains(&access),
        "never printed"
    );
    assert!(stdout.contains("file (plain text"), "{stdout}");
}

/// Monzo's windows, from stored times only: `login` says once that the next 5 minutes are the
/// window for a full history; `status` shows when the login was approved and the date 90 days
/// on by which Monzo may ask again, warning from 14 days before.
#[tokio::test]
async fn login_and_status_tell_monzos_five_minutes_and_ninety_days() {
    let app = spawn_app().await;
    let home = Home::new();
    let login = logged_in(&app, &home, &[]).await;
    let said = text(&login.stderr);
    assert_eq!(said.matches("next 5 minutes").count(), 1, "{said}");
    let approved = home.profile("default")["approved_at"].as_u64().unwrap();
    let status = output(home.command(&app, &["status", "--format", "json"])).await;
    let report: Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(report[0]["approved_at"], approved);
    assert_eq!(report[0]["reapprove_by"], approved + 90 * 86_400);
    let shown = text(&output(home.command(&app, &["status"])).await.stdout);
    assert!(shown.contains("approve again by"), "{shown}");
    assert!(!shown.contains("warning:"), "{shown}");
    // Approved 80 days ago: 10 days to go.
    let mut profile = home.profile("default");
    profile["approved_at"] = Value::from(approved - 80 * 86_400);
    std::fs::write(home.profile_file("default"), profile.to_string()).unwrap();
    let shown = text(&output(home.command(&app, &["status"])).await.stdout);
    assert!(
        shown.contains("warning:  10 days to go") || shown.contains("warning:  9 days to go"),
        "{shown}"
    );
}
