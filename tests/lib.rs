//! Helpers for monzo-auth's end-to-end tests: start the service (in-process or as its real
//! binary) against fake-monzo on loopback, and walk a person through Monzo's login over HTTP.

pub mod aws;
pub mod lambda;

pub use monzo_auth_domain::clock::ManualClock;

use std::collections::HashMap;

use base64::Engine as _;
use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fake_monzo::{ClientRegistration, FakeMonzo, FakeMonzoConfig, RunningFakeMonzo};
use monzo_auth_domain::store::Store;
use serde_json::Value;
use shared::app;
use shared::config::{Config, Mode};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use url::Url;

pub const CLIENT_ID: &str = "oauth2client_00009test";
pub const DEMO_USER: &str = "user_0000demo";
pub const OTHER_USER: &str = "user_0000other";

/// A random client secret, so a leak of it is unmistakable in a log.
pub fn new_client_secret() -> String {
    format!(
        "mnzconf.{}",
        monzo_auth_domain::session::random_token::<24>()
    )
}

/// An HTTP client that never follows redirects (each hop is checked by hand) and gives up
/// instead of hanging a test.
pub fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .expect("reqwest client")
}

/// Starts fake-monzo on loopback with the default users and no client yet.
pub async fn start_fake_monzo() -> RunningFakeMonzo {
    FakeMonzo::start_on_loopback(FakeMonzoConfig::default())
        .await
        .expect("fake-monzo starts")
}

/// Registers our test client with fake-monzo for `redirect_uri`.
pub fn register_client(monzo: &FakeMonzo, secret: &str, redirect_uri: &Url, confidential: bool) {
    monzo.register_client(ClientRegistration {
        client_id: CLIENT_ID.into(),
        client_secret: secret.into(),
        redirect_uri: redirect_uri.to_string(),
        confidential,
    });
}

/// How to start an in-process app.
pub struct AppOptions {
    /// Extra settings, by their environment names (`SESSION_TTL_SECS`, `ALLOWED_USER_IDS`, ...).
    pub env: Vec<(&'static str, String)>,
    /// `None`: the memory store.
    pub store: Option<Arc<dyn Store>>,
    pub confidential_client: bool,
    /// `None`: the system clock.
    pub clock: Option<Arc<dyn monzo_auth_domain::clock::Clock>>,
}

impl Default for AppOptions {
    fn default() -> Self {
        Self {
            env: Vec::new(),
            store: None,
            confidential_client: true,
            clock: None,
        }
    }
}

impl AppOptions {
    pub fn env(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.env.push((name, value.into()));
        self
    }

    /// Runs the service on `clock`, which the test moves instead of sleeping.
    pub fn clock(mut self, clock: &monzo_auth_domain::clock::ManualClock) -> Self {
        self.clock = Some(Arc::new(clock.clone()));
        self
    }
}

/// The service running in this process on 127.0.0.1:0, with its own fake-monzo.
pub struct TestApp {
    pub base: Url,
    pub return_url: Url,
    pub monzo: RunningFakeMonzo,
    pub store: Arc<dyn Store>,
    pub client_secret: String,
    pub http: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(AppOptions::default()).await
}

pub async fn spawn_app_with(options: AppOptions) -> TestApp {
    let monzo = start_fake_monzo().await;
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("local addr");
    let return_url = app::local_return_url(addr);
    let client_secret = new_client_secret();
    register_client(
        &monzo.monzo,
        &client_secret,
        &return_url,
        options.confidential_client,
    );

    let mut vars: HashMap<&str, String> = HashMap::from([
        ("MONZO_CLIENT_ID", CLIENT_ID.to_owned()),
        ("MONZO_CLIENT_SECRET", client_secret.clone()),
        ("MONZO_AUTH_URL", monzo.auth_url.to_string()),
        ("MONZO_API_URL", monzo.api_url.to_string()),
        ("STORE", "memory".to_owned()),
        ("POLL_INTERVAL_SECS", "1".to_owned()),
    ]);
    vars.extend(options.env);
    let config = Config::from_lookup(Mode::Local, |name| vars.get(name).cloned()).expect("config");
    let store = options
        .store
        .unwrap_or_else(|| Arc::new(monzo_auth_domain::store::MemoryStore::new()));
    let mut host = app::Host::new(
        app::Shape::Local {
            local_addr: addr,
            demo: false,
        },
        app::Adapters {
            monzo: Some(&monzo_auth_monzo_http::open_api),
            refresh_limit: Some(&monzo_auth_server::limit::open),
            pages: Some(&monzo_auth_pages::PAGES),
            ..Default::default()
        },
    );
    host.store = Some(Arc::clone(&store));
    if let Some(clock) = options.clock {
        host.clock = clock;
    }
    let router = app::build(&config, host).await.expect("app");
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(monzo_auth_server::serve(listener, router, &config, async {
        let _ = rx.await;
    }));
    TestApp {
        base: Url::parse(&format!("http://{addr}/")).unwrap(),
        return_url,
        monzo,
        store,
        client_secret,
        http: http_client(),
        shutdown: Some(tx),
    }
}

/// The answer to `/new`.
#[derive(Debug, Clone)]
pub struct Started {
    pub id: String,
    pub login_url: Url,
    pub body: Value,
}

impl Started {
    pub fn state(&self) -> String {
        query_param(&self.login_url, "state").expect("login_url has a state")
    }
}

/// Where Monzo sent the browser back to, and what it carried.
#[derive(Debug, Clone)]
pub struct MonzoRedirect {
    pub callback_url: Url,
    pub code: Option<String>,
    pub state: Option<String>,
}

/// A JSON answer from the service.
#[derive(Debug)]
pub struct JsonAnswer {
    pub status: u16,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl JsonAnswer {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| {
            panic!("HTTP {status} answered with a body that is not JSON: {text:?}")
        });
        Self {
            status,
            body,
            headers,
        }
    }

    pub fn error(&self) -> &str {
        self.body["error"].as_str().unwrap_or("")
    }

    /// Asserts the contract's error shape and returns the error code.
    pub fn assert_error(&self, status: u16, code: &str) {
        assert_eq!(self.status, status, "body: {}", self.body);
        assert_eq!(self.error(), code, "body: {}", self.body);
        let description = self.body["error_description"].as_str().unwrap_or("");
        assert!(
            !description.is_empty(),
            "no error_description: {}",
            self.body
        );
    }
}

pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// A person's answer on Monzo's login page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Approve,
    Deny,
}

/// Talks to a service at `base` and to the fake-monzo behind it; shared by the in-process app
/// and the real binary.
#[derive(Clone)]
pub struct Driver {
    pub base: Url,
    /// Where `/new` and `/token` are: the base, unless each is its own Lambda function.
    pub new_url: Url,
    pub token_url: Url,
    pub http: reqwest::Client,
}

impl Driver {
    /// Every route under one base URL (the local server).
    pub fn new(base: Url, http: reqwest::Client) -> Self {
        Self {
            new_url: base.join("new").expect("new"),
            token_url: base.join("token").expect("token"),
            base,
            http,
        }
    }

    pub fn url(&self, path: &str) -> Url {
        self.base.join(path).expect("path")
    }

    pub async fn start(&self) -> Started {
        self.start_with(&[]).await
    }

    pub async fn start_with(&self, form: &[(&str, &str)]) -> Started {
        let answer = JsonAnswer::read(
            self.http
                .post(self.new_url.clone())
                .form(form)
                .send()
                .await
                .expect("/new"),
        )
        .await;
        assert_eq!(answer.status, 200, "/new: {}", answer.body);
        Started {
            id: answer.body["id"].as_str().expect("id").to_owned(),
            login_url: answer.body["login_url"]
                .as_str()
                .expect("login_url")
                .parse()
                .expect("url"),
            body: answer.body,
        }
    }

    /// Does at Monzo what a person does: loads the login page, picks `user`, and clicks a
    /// button. Returns where Monzo redirects the browser, without following it.
    pub async fn at_monzo(&self, login_url: &Url, user: &str, decision: Decision) -> MonzoRedirect {
        let page = self
            .http
            .get(login_url.clone())
            .send()
            .await
            .expect("login page");
        assert_eq!(
            page.status(),
            200,
            "Monzo's login page refused the login URL"
        );
        let get = |name| query_param(login_url, name).unwrap_or_default();
        let decision = match decision {
            Decision::Approve => "approve",
            Decision::Deny => "deny",
        };
        let response = self
            .http
            .post(login_url.join("authorize").expect("authorize"))
            .form(&[
                ("client_id", get("client_id")),
                ("redirect_uri", get("redirect_uri")),
                ("state", get("state")),
                ("decision", decision.to_owned()),
                ("user_id", user.to_owned()),
            ])
            .send()
            .await
            .expect("authorize");
        assert_eq!(response.status(), 302, "Monzo did not redirect back");
        let location: Url = response.headers()["location"]
            .to_str()
            .unwrap()
            .parse()
            .expect("absolute Location");
        MonzoRedirect {
            code: query_param(&location, "code"),
            state: query_param(&location, "state"),
            callback_url: location,
        }
    }

    /// The browser arriving at our callback; redirects are not followed.
    pub async fn callback(&self, url: &Url) -> reqwest::Response {
        self.http.get(url.clone()).send().await.expect("callback")
    }

    /// `/new`, approve at Monzo as `user`, and the callback; returns the session and the code.
    pub async fn authorized_session(&self, user: &str) -> (Started, String) {
        let started = self.start().await;
        let redirect = self
            .at_monzo(&started.login_url, user, Decision::Approve)
            .await;
        let response = self.callback(&redirect.callback_url).await;
        assert_eq!(
            response.status(),
            303,
            "callback should redirect to the done page"
        );
        (started, redirect.code.expect("code"))
    }

    /// Does at `/device` what a person does with the link a device shows: opens it, checks the
    /// code, confirms (with the CSRF cookie and token the page set), and logs in at Monzo.
    /// Returns where Monzo sent the browser back to, after the callback answered.
    pub async fn approve_device(
        &self,
        verification_uri_complete: &Url,
        user: &str,
        decision: Decision,
    ) -> MonzoRedirect {
        let page = self
            .http
            .get(verification_uri_complete.clone())
            .send()
            .await
            .expect("/device");
        assert_eq!(page.status(), 200, "the device page refused the code");
        let cookie = page.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let html = page.text().await.unwrap();
        let form = DeviceForm::read(&html);
        let confirm = self
            .http
            .post(verification_uri_complete.join(&form.action).unwrap())
            .header("cookie", cookie)
            .form(&[
                ("csrf", form.csrf.as_str()),
                ("user_code", form.user_code.as_str()),
            ])
            .send()
            .await
            .expect("/device/confirm");
        assert_eq!(confirm.status(), 303, "confirming did not lead to Monzo");
        let login_url: Url = confirm.headers()["location"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let redirect = self.at_monzo(&login_url, user, decision).await;
        let response = self.callback(&redirect.callback_url).await;
        assert_eq!(
            response.status(),
            303,
            "the callback did not take Monzo's answer"
        );
        redirect
    }

    pub async fn poll(&self, id: &str) -> JsonAnswer {
        self.poll_with(&[("id", id)]).await
    }

    pub async fn poll_with(&self, form: &[(&str, &str)]) -> JsonAnswer {
        JsonAnswer::read(
            self.http
                .post(self.token_url.clone())
                .form(form)
                .send()
                .await
                .expect("/token"),
        )
        .await
    }

    /// `POST /device/code` at `url` for the app `client_id` (RFC 8628 3.1).
    pub async fn start_device_at(&self, url: Url, client_id: &str) -> JsonAnswer {
        JsonAnswer::read(
            self.http
                .post(url)
                .form(&[("client_id", client_id)])
                .send()
                .await
                .expect("/device/code"),
        )
        .await
    }

    /// One device-flow poll of the token endpoint `url` by the app `client_id` (RFC 8628 3.4).
    pub async fn poll_device_at(
        &self,
        url: &Url,
        device_code: &str,
        client_id: &str,
    ) -> JsonAnswer {
        JsonAnswer::read(
            self.http
                .post(url.clone())
                .form(&[
                    ("grant_type", "urn:ietf:params:oauth:grant-type:device_code"),
                    ("device_code", device_code),
                    ("client_id", client_id),
                ])
                .send()
                .await
                .expect("/oauth/token"),
        )
        .await
    }
}

impl TestApp {
    pub fn driver(&self) -> Driver {
        Driver::new(self.base.clone(), self.http.clone())
    }

    pub fn fake(&self) -> &FakeMonzo {
        &self.monzo.monzo
    }
}

/// Waits until `done` holds, checking every 20 ms without blocking the runtime; fails the test
/// naming `what` after `limit`. For the moments a test must wait for something to have happened,
/// instead of sleeping a while and hoping it has.
pub async fn wait_until<Done>(what: &str, limit: Duration, mut done: impl FnMut() -> Done)
where
    Done: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    while !done().await {
        assert!(
            std::time::Instant::now() < deadline,
            "gave up after {limit:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Where cargo put this workspace's binaries (next to the test binary's `deps/`).
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `make build-all` (cargo build --workspace --all-targets), as `make test` does",
        path.display()
    );
    // Once a test process: the crate graph comes from `cargo metadata`.
    static CURRENT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    if !CURRENT.lock().unwrap().iter().any(|known| known == name) {
        assert_not_stale(&path, name);
        CURRENT.lock().unwrap().push(name.to_owned());
    }
    path
}

/// The directories of the workspace crates a binary is built from: its package and every
/// workspace package it links (normal and build dependencies, as cargo resolved the workspace),
/// from `cargo metadata` (which takes no build lock).
fn crates_of(binary: &str) -> Vec<PathBuf> {
    let host = Command::new("rustc")
        .arg("-vV")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| {
            text.lines()
                .find_map(|line| line.strip_prefix("host: ").map(str::to_owned))
        })
        .expect("rustc -vV names the host");
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["metadata", "--offline", "--locked", "--format-version", "1"])
        .args(["--filter-platform", &host])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo metadata runs");
    assert!(
        output.status.success(),
        "cargo metadata: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).expect("cargo metadata's JSON");
    let members: Vec<&str> = metadata["workspace_members"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    let packages: HashMap<&str, &Value> = metadata["packages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| Some((p["id"].as_str()?, p)))
        .collect();
    let owner = members
        .iter()
        .find(|id| {
            packages[*id]["targets"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|t| t["name"] == binary && t["kind"].to_string().contains("\"bin\""))
        })
        .unwrap_or_else(|| panic!("no workspace package builds a binary named {binary}"));
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| Some((n["id"].as_str()?, n)))
        .collect();
    let (mut seen, mut todo) = (std::collections::BTreeSet::new(), vec![*owner]);
    while let Some(id) = todo.pop() {
        if !members.contains(&id) || !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().into_iter().flatten() {
            let linked = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].as_str() != Some("dev"));
            if linked && let Some(pkg) = dep["pkg"].as_str() {
                todo.push(pkg);
            }
        }
    }
    seen.into_iter()
        .filter_map(|id| packages[id]["manifest_path"].as_str())
        .map(|manifest| PathBuf::from(manifest).with_file_name(""))
        .collect()
}

/// A test must never run a binary older than its sources (cargo test builds only the tests;
/// running cargo from inside a test would wait on the build lock).
fn assert_not_stale(binary: &std::path::Path, name: &str) {
    let built = std::fs::metadata(binary)
        .and_then(|m| m.modified())
        .expect("the binary's mtime");
    let mut newest: Option<(std::time::SystemTime, PathBuf)> = None;
    // Rust sources, and the templates and assets compiled into the pages.
    let mut dirs: Vec<PathBuf> = crates_of(name)
        .iter()
        .flat_map(|krate| ["src", "templates", "assets"].map(|dir| krate.join(dir)))
        .collect();
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path
                .extension()
                .is_some_and(|e| ["rs", "html", "css", "js"].iter().any(|x| e == *x))
                && let Ok(modified) = entry.metadata().and_then(|m| m.modified())
                && newest.as_ref().is_none_or(|(time, _)| modified > *time)
            {
                newest = Some((modified, path));
            }
        }
    }
    if let Some((modified, source)) = newest {
        assert!(
            modified <= built,
            "{} is older than {}: run `make build-all` (cargo build --workspace --all-targets) first",
            binary.display(),
            source.display()
        );
    }
}

/// `monzo-auth-server` running as its own process, its output captured.
pub struct ServerProcess {
    child: Child,
    pub base: Url,
    pub stdout: Arc<Mutex<String>>,
    pub stderr: Arc<Mutex<String>>,
}

/// The server in demo mode on a free port, with the memory store.
pub fn demo_server() -> ServerProcess {
    ServerProcess::start(
        &[
            ("LISTEN_ADDR", "127.0.0.1:0".into()),
            ("STORE", "memory".into()),
        ],
        &["--demo"],
    )
}

/// Environment every child process gets: nothing from the developer's shell that could point
/// it somewhere real.
pub fn clean_command(program: &std::path::Path) -> Command {
    let mut command = Command::new(program);
    command.env_clear();
    if let Ok(path) = std::env::var("PATH") {
        command.env("PATH", path);
    }
    command
}

fn capture(
    stream: impl std::io::Read + Send + 'static,
    into: Arc<Mutex<String>>,
    first_line: Option<std::sync::mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        let mut first_line = first_line;
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            {
                let mut all = into.lock().unwrap();
                all.push_str(&line);
                all.push('\n');
            }
            // Announced only once recorded, so a reader woken by it finds it in the buffer.
            if let Some(tx) = first_line.take() {
                let _ = tx.send(line);
            }
        }
    });
}

impl ServerProcess {
    /// Starts the server with exactly `env` (plus PATH) and `args`, and waits for its banner.
    pub fn start(env: &[(&str, String)], args: &[&str]) -> Self {
        Self::spawn(
            clean_command(&workspace_binary("monzo-auth-server")),
            env,
            args,
        )
    }

    /// As `start`, under an open-file limit of `limit` (soft and hard), as `ulimit -n` sets it.
    pub fn start_with_open_file_limit(env: &[(&str, String)], args: &[&str], limit: u32) -> Self {
        let mut command = clean_command(std::path::Path::new("sh"));
        command
            .arg("-c")
            .arg(format!("ulimit -n {limit} && exec \"$0\" \"$@\""))
            .arg(workspace_binary("monzo-auth-server"));
        Self::spawn(command, env, args)
    }

    fn spawn(mut command: Command, env: &[(&str, String)], args: &[&str]) -> Self {
        command
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn monzo-auth-server");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        capture(child.stdout.take().unwrap(), Arc::clone(&stdout), Some(tx));
        capture(child.stderr.take().unwrap(), Arc::clone(&stderr), None);
        let banner = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "no banner from monzo-auth-server; stderr: {}",
                    stderr.lock().unwrap()
                );
            }
        };
        let base = banner_base(&banner).unwrap_or_else(|| panic!("unexpected banner: {banner}"));
        Self {
            child,
            base,
            stdout,
            stderr,
        }
    }

    pub fn driver(&self) -> Driver {
        Driver::new(self.base.clone(), http_client())
    }

    pub fn return_url(&self) -> Url {
        self.base.join("callback").unwrap()
    }

    /// Sends `signal` (e.g. "TERM", "INT") and waits for the exit; returns the exit code.
    pub fn stop_with(mut self, signal: &str) -> (Option<i32>, String, String) {
        let status = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
        let code = wait_with_timeout(&mut self.child, Duration::from_secs(20));
        // Let the capture threads drain what the process wrote last.
        std::thread::sleep(Duration::from_millis(100));
        let out = self.stdout.lock().unwrap().clone();
        let err = self.stderr.lock().unwrap().clone();
        (code, out, err)
    }
}

/// Reads the address out of the server's first line (`... listening on ADDR; ...` or demo's
/// `... Open URL to walk ...`, which comes second).
fn banner_base(line: &str) -> Option<Url> {
    let addr = line.split("listening on ").nth(1)?.split(';').next()?;
    Url::parse(&format!("http://{addr}/")).ok()
}

pub fn wait_with_timeout(child: &mut Child, limit: Duration) -> Option<i32> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("process did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The ways a secret's bytes could be written down.
pub fn encodings(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_owned()];
    let raw_bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(secret)
        .ok();
    for bytes in [Some(secret.as_bytes().to_vec()), raw_bytes]
        .into_iter()
        .flatten()
    {
        forms.push(base64::engine::general_purpose::STANDARD.encode(&bytes));
        forms.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&bytes));
        forms.push(bytes.iter().map(|b| format!("{b:02x}")).collect());
        forms.push(bytes.iter().map(|b| format!("{b:02X}")).collect());
    }
    forms
}

pub fn contains_bytes(haystack: &[u8], needle: &[u8]) -> bool {
    needle.len() <= haystack.len() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// Asserts that none of `secrets` (named, for the message) appears in `haystack` in any form;
/// binary decodings of 32-byte ids are checked as raw bytes too.
pub fn assert_no_secret(where_: &str, haystack: &[u8], secrets: &[(&str, String)]) {
    for (name, secret) in secrets {
        for form in encodings(secret) {
            assert!(
                !contains_bytes(haystack, form.as_bytes()),
                "{name} found in {where_}"
            );
        }
        if let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(secret) {
            assert!(
                !contains_bytes(haystack, &bytes),
                "{name} (raw bytes) found in {where_}"
            );
        }
    }
}

/// The confirmation form on a `/device` page.
#[derive(Debug)]
pub struct DeviceForm {
    pub action: String,
    pub csrf: String,
    pub user_code: String,
}

impl DeviceForm {
    /// Reads the form the way a browser would see its fields (the pages are ours, so plain
    /// string search suffices).
    pub fn read(html: &str) -> Self {
        let attr = |after: &str, name: &str| -> String {
            let start = html
                .find(after)
                .unwrap_or_else(|| panic!("no {after} in {html}"));
            let rest = &html[start..];
            let at = rest.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
            rest[at..at + rest[at..].find('"').unwrap()].to_owned()
        };
        Self {
            action: attr("<form method=\"post\" action=", "action"),
            csrf: attr("name=\"csrf\"", "value"),
            user_code: attr("name=\"user_code\"", "value"),
        }
    }
}
