//! The three Lambda functions as they run on AWS: the real binaries under the real
//! `lambda_http` runtime, fed by `cargo lambda watch` (its Lambda runtime API emulator), each
//! reaching moto through its own recording proxy.

use std::collections::BTreeSet;
use std::io::Read as _;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::aws::{RecordingProxy, TestCa, child_aws_env};
use crate::{clean_command, workspace_binary};

/// The functions, by the name their binary has (`monzo-auth-{name}`).
pub const FUNCTIONS: [&str; 3] = ["new", "callback", "token"];

/// A port nobody listens on right now (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{what} did not start listening on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `cargo lambda ...`, through the cargo that runs the tests; cargo-lambda comes from the
/// project's virtualenv (`make test` puts it on PATH).
pub fn cargo_lambda() -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command.arg("lambda");
    command
}

/// Collects a child's stdout and stderr into one buffer.
fn collect(child: &mut Child, into: &Arc<Mutex<String>>) {
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let into = Arc::clone(into);
        std::thread::spawn(move || {
            let mut stream = stream;
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stream.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                into.lock()
                    .unwrap()
                    .push_str(&String::from_utf8_lossy(&buffer[..n]));
            }
        });
    }
}

/// `binary` in a private mount namespace where Amazon Linux's CA bundle holds `ca` alone.
fn amazon_linux_trust(binary: &Path, ca: &Path, scratch: &Path) -> Command {
    assert!(
        is_root(),
        "the TLS tests run a function in a private mount namespace: run them as root (CI does)"
    );
    let overlay = scratch.join(format!("etc-overlay-{}", free_port()));
    for dir in ["upper", "work"] {
        std::fs::create_dir_all(overlay.join(dir)).unwrap();
    }
    const SETUP: &str = "set -e; \
        mount -t overlay overlay -o lowerdir=/etc,upperdir=\"$1/upper\",workdir=\"$1/work\" /etc; \
        mkdir -p /etc/pki/tls/certs; cp \"$2\" /etc/pki/tls/certs/ca-bundle.crt; \
        shift 2; exec \"$@\"";
    let mut command = clean_command(Path::new("unshare"));
    command
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            SETUP,
            "sh",
        ])
        .arg(&overlay)
        .arg(ca)
        .arg(binary);
    command
}

/// Whether the tests run as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| out.stdout.trim_ascii() == b"0")
}

/// One function: its cargo lambda emulator, its process, its proxy to AWS.
pub struct FunctionProcess {
    pub name: &'static str,
    pub port: u16,
    pub proxy: RecordingProxy,
    pub logs: Arc<Mutex<String>>,
    emulator: Child,
    function: Child,
}

impl FunctionProcess {
    /// Starts `monzo-auth-{name}` with `env` (on top of what Lambda and AWS need).
    pub async fn start(
        name: &'static str,
        moto: &str,
        home: &std::path::Path,
        env: &[(&str, String)],
    ) -> Self {
        Self::start_with(name, moto, home, env, None).await
    }

    /// Starts `monzo-auth-{name}` as [`FunctionProcess::start`] does, reaching AWS over TLS
    /// (the proxy's certificate is from `ca`), with the CA certificate `trusted` as the only one
    /// in Amazon Linux's CA bundle, `/etc/pki/tls/certs/ca-bundle.crt`: how a function on
    /// Lambda trusts Amazon's. That bundle exists only in the function's private mount
    /// namespace (an overlay on /etc; the machine's files are untouched); the Debian bundle
    /// beside it lacks `ca`. Needs root, as CI runs.
    pub async fn start_over_tls(
        name: &'static str,
        moto: &str,
        home: &std::path::Path,
        env: &[(&str, String)],
        (ca, trusted): (&TestCa, &Path),
    ) -> Self {
        Self::start_with(name, moto, home, env, Some((ca, trusted))).await
    }

    async fn start_with(
        name: &'static str,
        moto: &str,
        home: &std::path::Path,
        env: &[(&str, String)],
        tls: Option<(&TestCa, &Path)>,
    ) -> Self {
        let proxy = match tls {
            Some((ca, _)) => RecordingProxy::start_tls(moto, ca).await,
            None => RecordingProxy::start(moto).await,
        };
        let port = free_port();
        let mut emulator = cargo_lambda()
            .args([
                "watch",
                "--only-lambda-apis",
                "--invoke-address",
                "127.0.0.1",
                "--invoke-port",
            ])
            .arg(port.to_string())
            .env("HOME", home)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("cargo lambda watch (is cargo-lambda on PATH? `make test` installs it)");
        let emulator_logs = Arc::new(Mutex::new(String::new()));
        collect(&mut emulator, &emulator_logs);
        wait_for_port(port, "cargo lambda watch");

        let binary = workspace_binary(&format!("monzo-auth-{name}"));
        let mut command = match tls {
            Some((_, trusted)) => amazon_linux_trust(&binary, trusted, home),
            None => clean_command(&binary),
        };
        command
            // As `cargo lambda watch --only-lambda-apis` says to set it.
            .env(
                "AWS_LAMBDA_RUNTIME_API",
                format!("http://127.0.0.1:{port}/.rt"),
            )
            .env("AWS_LAMBDA_FUNCTION_NAME", format!("monzo-auth-{name}"))
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            // As the template sets it: REST API events carry the stage in the path.
            .env("AWS_LAMBDA_HTTP_IGNORE_STAGE_IN_PATH", "true")
            .envs(child_aws_env(&proxy.url, home))
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut function = command.spawn().expect("function binary");
        let logs = Arc::new(Mutex::new(String::new()));
        collect(&mut function, &logs);
        Self {
            name,
            port,
            proxy,
            logs,
            emulator,
            function,
        }
    }

    /// Base URL of the function's URL endpoint (an API Gateway HTTP API v2 style event).
    pub fn url(&self) -> url::Url {
        format!("http://127.0.0.1:{}/lambda-url/_/", self.port)
            .parse()
            .unwrap()
    }

    /// Invokes the function with a raw event (e.g. an API Gateway REST v1 event), through
    /// `cargo lambda invoke`. Returns the function's response document.
    pub fn invoke(&self, event: &Value) -> Value {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("event.json");
        std::fs::write(&file, serde_json::to_vec(event).unwrap()).unwrap();
        let output = cargo_lambda()
            .args(["invoke", "--invoke-address", "127.0.0.1", "--invoke-port"])
            .arg(self.port.to_string())
            .arg("--data-file")
            .arg(&file)
            .args(["--output-format", "json", "_"])
            .env("HOME", dir.path())
            .output()
            .expect("cargo lambda invoke");
        assert!(
            output.status.success(),
            "cargo lambda invoke failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|_| {
            panic!(
                "invoke answered: {}",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    pub fn actions(&self) -> BTreeSet<String> {
        self.proxy.actions()
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().clone()
    }
}

impl Drop for FunctionProcess {
    fn drop(&mut self) {
        for child in [&mut self.function, &mut self.emulator] {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// An API Gateway REST API (v1) proxy event for `method path`, as it arrives through stage
/// `stage` of `domain`.
pub fn rest_event(
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    form_body: Option<&str>,
    domain: &str,
    stage: &str,
) -> Value {
    let query_map: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect();
    let multi_query: serde_json::Map<String, Value> = query
        .iter()
        .map(|(k, v)| (k.to_string(), serde_json::json!([v])))
        .collect();
    let mut headers = serde_json::json!({ "Host": domain, "User-Agent": "e2e" });
    if form_body.is_some() {
        headers["Content-Type"] = "application/x-www-form-urlencoded".into();
    }
    serde_json::json!({
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {},
        "queryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(query_map) },
        "multiValueQueryStringParameters": if query.is_empty() { Value::Null } else { Value::Object(multi_query) },
        "pathParameters": null,
        "stageVariables": null,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": domain.split('.').next().unwrap_or("api"),
            "domainName": domain,
            "httpMethod": method,
            "path": format!("/{stage}{path}"),
            "protocol": "HTTP/1.1",
            "requestId": monzo_auth_domain::session::random_token::<8>(),
            "requestTimeEpoch": 1_800_000_000_000u64,
            "resourceId": "abc",
            "resourcePath": path,
            "stage": stage,
            "identity": { "sourceIp": "192.0.2.10", "userAgent": "e2e" }
        },
        "body": form_body,
        "isBase64Encoded": false
    })
}

/// The actions `template.yaml` grants each function, keyed by binary name (`monzo-auth-new`).
pub fn granted_actions() -> std::collections::BTreeMap<String, BTreeSet<String>> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml");
    let template: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&path).expect("template.yaml"))
            .expect("YAML");
    let mut granted = std::collections::BTreeMap::new();
    for (name, resource) in template["Resources"].as_mapping().expect("Resources") {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        // `NewFunction` is built from `monzo-auth-new` (the Makefile's build-NewFunction).
        let name = name.as_str().expect("a logical id");
        let binary = format!(
            "monzo-auth-{}",
            name.strip_suffix("Function")
                .expect("functions are named <Name>Function")
                .to_lowercase()
        );
        let mut actions = BTreeSet::new();
        for policy in resource["Properties"]["Policies"]
            .as_sequence()
            .into_iter()
            .flatten()
        {
            for statement in policy["Statement"]
                .as_sequence()
                .expect("inline statements only")
            {
                assert_eq!(statement["Effect"].as_str(), Some("Allow"));
                let listed = match &statement["Action"] {
                    serde_yaml::Value::String(one) => vec![one.clone()],
                    serde_yaml::Value::Sequence(many) => many
                        .iter()
                        .map(|a| a.as_str().unwrap().to_owned())
                        .collect(),
                    other => panic!("unexpected Action {other:?}"),
                };
                for action in listed {
                    assert!(
                        !action.contains('*'),
                        "wildcard action {action} for {binary}"
                    );
                    actions.insert(action);
                }
                assert!(
                    !format!("{:?}", statement["Resource"]).contains('*'),
                    "wildcard resource for {binary}"
                );
            }
        }
        granted.insert(binary, actions);
    }
    granted
}
