//! A person in a real browser: Debian's headless Chromium, driven by playwright-core
//! (`tests/browser/person.mjs`). Every hop (Monzo's login page, Approve, the redirect to the
//! callback, the page after it) happens in the browser, none by a plain HTTP request.
//! Screenshots and the pages' text land in `artifacts/`.

use std::path::PathBuf;

use e2e_tests::*;
use serde_json::Value;

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("browser")
}

fn artifacts_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../artifacts")
}

/// The script, after checking that Chromium and playwright-core are there (`make test` puts
/// them there).
fn person_script() -> PathBuf {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{chromium} is missing: `make test` installs Debian's chromium"
    );
    assert!(
        browser_dir().join("node_modules/playwright-core").exists(),
        "playwright-core is missing: `make test` runs npm ci in tests/browser"
    );
    browser_dir().join("person.mjs")
}

fn summary(mode: &str) -> Value {
    let path = artifacts_dir().join(format!("{mode}-summary.json"));
    serde_json::from_slice(&std::fs::read(&path).expect("the browser wrote its summary")).unwrap()
}

fn assert_screenshot(name: &str) {
    let png = std::fs::read(artifacts_dir().join(name)).expect(name);
    assert!(
        png.starts_with(b"\x89PNG") && png.len() > 1000,
        "{name} is not a screenshot"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_logs_in_through_a_real_browser() {
    let script = person_script();
    let app = spawn_app().await;
    let home = tempfile::tempdir().unwrap();
    let browser = format!(
        "node {} approve",
        shell_words::quote(script.to_str().unwrap())
    );
    let mut command = clean_command(&workspace_binary("monzo-auth"));
    command
        .env("BROWSER", browser)
        .env("BROWSER_ARTIFACTS", artifacts_dir())
        .env("HOME", home.path())
        .args(["login", "--no-store", "--service", app.base.as_str()]);
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "monzo-auth login failed: {stderr}");

    let token: Value = serde_json::from_slice(&output.stdout).expect("the token as JSON on stdout");
    assert_eq!(token["user_id"], DEMO_USER);
    assert!(
        app.fake()
            .is_access_token_live(token["access_token"].as_str().unwrap())
    );

    let summary = summary("approve");
    assert!(
        summary["doneText"]
            .as_str()
            .unwrap()
            .contains("You're logged in"),
        "{summary}"
    );
    let hops: Vec<&str> = summary["navigations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h.as_str().unwrap())
        .collect();
    let service = app.base.as_str().trim_end_matches('/');
    let auth = app.monzo.auth_url.as_str().trim_end_matches('/');
    for expected in [
        format!("GET {auth}/"),
        format!("POST {auth}/authorize"),
        format!("GET {service}/callback"),
        format!("GET {service}/callback/done"),
    ] {
        assert!(
            hops.contains(&expected.as_str()),
            "the browser never did {expected}: {hops:?}"
        );
    }
    assert_eq!(
        summary["consoleErrors"],
        serde_json::json!([]),
        "CSP or script errors in the pages"
    );
    assert_screenshot("approve-monzo-login.png");
    assert_screenshot("approve-done.png");
}

#[test]
fn the_demo_page_walks_a_login_in_a_real_browser() {
    let script = person_script();
    let server = demo_server();
    let home = tempfile::tempdir().unwrap();
    let output = clean_command(std::path::Path::new("node"))
        .arg(&script)
        .args(["demo", server.base.as_str()])
        .env("BROWSER_ARTIFACTS", artifacts_dir())
        .env("HOME", home.path())
        .output()
        .expect("node");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let summary = summary("demo");
    let landing = summary["landingText"].as_str().unwrap();
    assert!(
        landing.contains("demo mode") && landing.contains("Start a login"),
        "{landing}"
    );
    assert!(
        summary["doneText"]
            .as_str()
            .unwrap()
            .contains("You're logged in")
    );
    assert!(
        summary["resultText"]
            .as_str()
            .unwrap()
            .contains("the token arrived"),
        "{summary}"
    );
    assert!(
        summary["maskedToken"]
            .as_str()
            .unwrap()
            .contains('\u{2026}'),
        "the token is shown masked"
    );
    assert_eq!(
        summary["consoleErrors"],
        serde_json::json!([]),
        "CSP or script errors in the pages"
    );
    // WCAG AA for the buttons' text (4.5:1), and no value broken mid-token at 390 px.
    for button in ["startContrast", "loginContrast"] {
        let ratio = summary[button].as_f64().unwrap();
        assert!(ratio >= 4.5, "{button}: {ratio:.2}:1");
    }
    assert_eq!(summary["wrappedValues"], serde_json::json!([]), "{summary}");
    assert_eq!(summary["landingTitle"], "monzo-auth demo", "not doubled");
    // A browser asking for a page that is not there gets a page.
    assert_eq!(summary["missingStatus"], 404);
    assert!(
        summary["missingType"]
            .as_str()
            .unwrap()
            .starts_with("text/html"),
        "{summary}"
    );
    assert!(
        summary["missingText"]
            .as_str()
            .unwrap()
            .contains("Page not found"),
        "{summary}"
    );
    assert_screenshot("demo-landing.png");
    assert_screenshot("demo-token.png");
}
