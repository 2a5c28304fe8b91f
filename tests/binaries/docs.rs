//! The README and `docs/` say what a person needs first, and their examples work as written.

use e2e_tests::*;

fn read(doc: &str) -> String {
    std::fs::read_to_string(format!("{}/../{doc}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

/// The first fenced block of `language` after `heading` in `doc`.
fn doc_block(doc: &str, heading: &str, language: &str) -> String {
    let text = read(doc);
    let section = &text[text
        .find(heading)
        .unwrap_or_else(|| panic!("{doc} lost {heading:?}"))..];
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
    std::fs::write(
        &script,
        doc_block("docs/api.md", "## Over plain HTTP", "python"),
    )
    .unwrap();
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

#[test]
fn the_readme_starts_where_a_hobbyist_starts() {
    let readme = read("README.md");
    let first_heading = readme
        .lines()
        .position(|line| line.starts_with("## "))
        .expect("sections");
    assert!(
        first_heading <= 60,
        "the first section starts at line {first_heading}"
    );
    let top = readme
        .lines()
        .take(first_heading)
        .collect::<Vec<_>>()
        .join("\n");
    for needed in [
        "Do you need it?",
        "cargo install",
        "monzo-auth login",
        "monzo-auth token",
        "monzo-auth exec",
        "```python",
        "curl",
    ] {
        assert!(top.contains(needed), "the README's top lacks {needed:?}");
    }
    for doc in [
        "docs/api.md",
        "docs/configuration.md",
        "docs/security.md",
        "docs/aws.md",
    ] {
        assert!(readme.contains(&format!("]({doc})")), "no link to {doc}");
        assert!(read(doc).contains("](../README.md)"), "{doc} links back");
    }
}

#[test]
fn no_example_uses_service_before_defining_it_or_puts_a_secret_on_a_command_line() {
    for doc in [
        "README.md",
        "docs/api.md",
        "docs/aws.md",
        "docs/configuration.md",
    ] {
        let text = read(doc);
        if let Some(used) = text.find("\"$SERVICE\"") {
            let defined = text.find("SERVICE=").unwrap_or(usize::MAX);
            assert!(defined < used, "{doc} uses $SERVICE before defining it");
        }
        for line in text.lines() {
            assert!(
                !line.contains("MONZO_CLIENT_SECRET=mnzconf"),
                "{doc}: a client secret on a command line: {line}"
            );
        }
        // The trap: refreshing a saved login and keeping only the access token.
        assert!(
            !text.contains("refresh --service \"$SERVICE\" --format token <"),
            "{doc} refreshes and throws the new refresh token away"
        );
    }
}

/// The README's blocks marked `<!-- runnable: NAME -->`: (name, language, code).
fn runnable_blocks(doc: &str) -> Vec<(String, String, String)> {
    let text = read(doc);
    let mut blocks = Vec::new();
    let mut rest = text.as_str();
    while let Some(at) = rest.find("<!-- runnable: ") {
        rest = &rest[at + "<!-- runnable: ".len()..];
        let name = rest[..rest.find(" -->").expect("marker end")].to_owned();
        let open = rest.find("```").expect("a block after the marker") + 3;
        let language = rest[open..open + rest[open..].find('\n').unwrap()].to_owned();
        let start = open + language.len() + 1;
        let end = start + rest[start..].find("\n```").expect("closing fence");
        blocks.push((name, language, rest[start..end].to_owned()));
        rest = &rest[end..];
    }
    blocks
}

/// The README's runnable examples run exactly as written, against a service whose Monzo is a
/// stand-in (as `make run`'s is): `MONZO_API_URL` from `token --format env|json` finds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readmes_runnable_examples_run_as_written() {
    let app = spawn_app().await;
    let home = tempfile::tempdir().unwrap();
    let binary = workspace_binary("monzo-auth");
    let path = format!(
        "{}:{}",
        binary.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut login = clean_command(&binary);
    login
        .arg("login")
        .env("PATH", &path)
        .env("HOME", home.path())
        .env("MONZO_AUTH_SERVICE", app.base.as_str())
        .env("BROWSER", crate::cli::person(""))
        .stdin(std::process::Stdio::null());
    let logged_in = tokio::task::spawn_blocking(move || login.output().unwrap())
        .await
        .unwrap();
    assert!(
        logged_in.status.success(),
        "{}",
        String::from_utf8_lossy(&logged_in.stderr)
    );
    let blocks = runnable_blocks("README.md");
    let names: Vec<&str> = blocks.iter().map(|(name, ..)| name.as_str()).collect();
    assert_eq!(names, ["curl", "python"]);
    for (name, language, code) in blocks {
        let interpreter = match language.as_str() {
            "sh" => "sh",
            "python" => "python3",
            other => panic!("{name}: no way to run a {other} block"),
        };
        let mut command = clean_command(std::path::Path::new(interpreter));
        command
            .args(["-c", &code])
            .env("PATH", &path)
            .env("HOME", home.path());
        let out = tokio::task::spawn_blocking(move || command.output().unwrap())
            .await
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && stdout.contains(DEMO_USER),
            "{name}: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The flags `--help` shows are the ones the README's tables name, both ways.
#[test]
fn the_help_and_the_readme_name_the_same_flags() {
    let readme = read("README.md");
    let long_flags = |text: &str| -> std::collections::BTreeSet<String> {
        text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
            .filter(|word| {
                word.starts_with("--") && word[2..].starts_with(|c: char| c.is_ascii_lowercase())
            })
            .map(str::to_owned)
            .collect()
    };
    let named = long_flags(&readme);
    for command in ["login", "token", "exec", "status", "logout", "refresh"] {
        let help = std::process::Command::new(workspace_binary("monzo-auth"))
            .args([command, "--help"])
            .output()
            .unwrap();
        let help = String::from_utf8_lossy(&help.stdout).into_owned();
        let options = &help[help.find("Options:").expect("an options section")..];
        let options = &options[..options.find("Exit codes:").unwrap_or(options.len())];
        for flag in long_flags(options) {
            if flag == "--help" || flag == "--version" {
                continue;
            }
            assert!(
                named.contains(&flag),
                "`monzo-auth {command} --help` shows {flag}, which the README never names"
            );
        }
    }
    let login_help = String::from_utf8_lossy(
        &std::process::Command::new(workspace_binary("monzo-auth"))
            .args(["login", "--help"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    let table = &readme[readme.find("Login flags:").expect("the login flags table")..];
    let table = &table[table.find("|---").unwrap()..];
    let table = &table[..table.find("\n\n").unwrap()];
    for flag in long_flags(table) {
        assert!(
            login_help.contains(&flag),
            "the README's login flags name {flag}, which `login --help` lacks"
        );
    }
    let exit_codes = &readme[readme
        .find("Exit codes: 0 success")
        .expect("the exit codes")..];
    for code in ["9 ", "10 ", "11 "] {
        assert!(
            exit_codes.contains(code),
            "the README lacks exit code {code}"
        );
    }
}
