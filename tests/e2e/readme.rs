//! The README's examples work as written.

use e2e_tests::*;

/// The first fenced block of `language` after `heading` in the README.
fn readme_block(heading: &str, language: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md")).unwrap();
    let section = &readme[readme
        .find(heading)
        .unwrap_or_else(|| panic!("README lost {heading:?}"))..];
    let fence = format!("```{language}\n");
    let start = section.find(&fence).expect("code block") + fence.len();
    let end = start + section[start..].find("\n```").expect("closing fence");
    section[start..end].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_loop_logs_in() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("login.py");
    std::fs::write(&script, readme_block("### Over plain HTTP", "python")).unwrap();
    // A person approving in a "browser": fake-monzo walks the login and the callback. Python's
    // webbrowser runs $BROWSER as one program (no arguments), hence the wrapper.
    let browser = dir.path().join("browser");
    std::fs::write(
        &browser,
        format!(
            "#!/bin/sh\nexec '{}' approve \"$1\"\n",
            workspace_binary("fake-monzo").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(
        &browser,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let mut command = clean_command(std::path::Path::new("python3"));
    command
        .arg(&script)
        .env("MONZO_AUTH_SERVICE", app.base.as_str())
        .env("BROWSER", &browser)
        .env("HOME", dir.path());
    let output = tokio::task::spawn_blocking(move || {
        let mut child = command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // A broken example would poll until the session expires; fail long before that.
        wait_with_timeout(&mut child, std::time::Duration::from_secs(60));
        child.wait_with_output().unwrap()
    })
    .await
    .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(token["user_id"], DEMO_USER);
    assert!(
        app.fake()
            .is_access_token_live(token["token"].as_str().unwrap())
    );
}
