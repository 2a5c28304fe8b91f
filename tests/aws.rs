//! AWS for the tests: moto_server (started by `make test`), reached through the real SDK, and a
//! recording proxy that counts every AWS action a function calls and can fail, stall or lose
//! the answer to one.
//!
//! Nothing here may reach the network: every SDK configuration is explicit (region, fake
//! credentials, a loopback endpoint), so no credential or region provider chain ever runs.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_dynamodb::config::{Credentials, SharedCredentialsProvider};
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, KeySchemaElement, KeyType, ScalarAttributeType,
    TimeToLiveSpecification,
};
use axum::body::Bytes;
use axum::http::{HeaderValue, Request, Response, StatusCode};
use base64::Engine as _;
use http_body_util::BodyExt as _;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

pub const REGION: &str = "eu-west-2";

/// moto_server's endpoint, from `MOTO_ENDPOINT` (`make test` starts moto and sets it).
pub fn moto_endpoint() -> String {
    std::env::var("MOTO_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "MOTO_ENDPOINT is not set: run the tests with `make test`, which starts moto_server, \
             or start `.venv/bin/moto_server -H 127.0.0.1 -p PORT` and set MOTO_ENDPOINT=http://127.0.0.1:PORT"
        )
    })
}

/// An SDK configuration that talks only to `endpoint`, with fake credentials and the timeouts
/// the service gives every AWS client (moto under a loaded test run can take longer than their
/// 1 s per attempt, so only the tests about those timeouts use this).
pub fn service_sdk_config(endpoint: &str) -> SdkConfig {
    sdk_config(endpoint)
        .into_builder()
        .timeout_config(monzo_auth_dynamodb::aws_timeouts())
        .build()
}

/// An SDK configuration that talks only to `endpoint`, with fake credentials.
pub fn sdk_config(endpoint: &str) -> SdkConfig {
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(SharedCredentialsProvider::new(Credentials::new(
            "testing", "testing", None, None, "tests",
        )))
        .endpoint_url(endpoint)
        .build()
}

/// The environment a child process needs to reach AWS at `endpoint` and nothing else.
pub fn child_aws_env(endpoint: &str, home: &std::path::Path) -> Vec<(&'static str, String)> {
    vec![
        ("AWS_ENDPOINT_URL", endpoint.to_owned()),
        ("AWS_REGION", REGION.to_owned()),
        ("AWS_ACCESS_KEY_ID", "testing".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "testing".to_owned()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        // No ~/.aws of the developer's is read.
        ("HOME", home.display().to_string()),
    ]
}

/// A fresh sessions table, shaped as the template makes it, under a random name: tests run in
/// parallel and must not share one.
pub async fn create_sessions_table(aws: &SdkConfig) -> String {
    let client = aws_sdk_dynamodb::Client::new(aws);
    let table = format!(
        "sessions-{}",
        monzo_auth_domain::session::random_token::<9>().replace(['-', '_'], "x")
    );
    client
        .create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .unwrap(),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("create table on moto");
    client
        .update_time_to_live()
        .table_name(&table)
        .time_to_live_specification(
            TimeToLiveSpecification::builder()
                .enabled(true)
                .attribute_name("purge_at")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("enable TTL");
    table
}

/// Every item of `table`, as text (for searching it for secrets).
pub async fn dump_table(aws: &SdkConfig, table: &str) -> String {
    let output = aws_sdk_dynamodb::Client::new(aws)
        .scan()
        .table_name(table)
        .consistent_read(true)
        .send()
        .await
        .expect("scan");
    let mut text = String::new();
    for item in output.items() {
        for (name, value) in item {
            text.push_str(name);
            text.push('=');
            match value {
                aws_sdk_dynamodb::types::AttributeValue::B(blob) => {
                    // Raw bytes as they are, so a byte search finds anything stored in them.
                    text.push_str(&String::from_utf8_lossy(blob.as_ref()));
                    text.push_str(&base64::engine::general_purpose::STANDARD.encode(blob.as_ref()));
                }
                other => text.push_str(&format!("{other:?}")),
            }
            text.push('\n');
        }
    }
    text
}

/// A KMS key on moto, and `secret` encrypted under it with `context`, in base64 as
/// `MONZO_CLIENT_SECRET_KMS` takes it.
pub async fn encrypt_secret(
    aws: &SdkConfig,
    secret: &str,
    context: (&str, &str),
) -> (String, String) {
    let kms = aws_sdk_kms::Client::new(aws);
    let key = kms.create_key().send().await.expect("create key");
    let key_id = key.key_metadata().unwrap().key_id().to_owned();
    let encrypted = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(aws_sdk_kms::primitives::Blob::new(secret.as_bytes()))
        .encryption_context(context.0, context.1)
        .send()
        .await
        .expect("encrypt");
    let ciphertext = base64::engine::general_purpose::STANDARD
        .encode(encrypted.ciphertext_blob().unwrap().as_ref());
    (key_id, ciphertext)
}

/// What the proxy does with requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyMode {
    Forward,
    /// KMS answers an error that no retry fixes, as when KMS is out of reach for a while.
    FailKms,
    /// DynamoDB throttles every call.
    ThrottleDynamoDb,
    /// DynamoDB throttles this one action (e.g. `dynamodb:UpdateItem`, the redeem's claim).
    ThrottleDynamoDbAction(&'static str),
    /// DynamoDB does not answer for a minute (a slow or unreachable AWS).
    StallDynamoDb,
    /// The next request of this action (e.g. `dynamodb:PutItem`) reaches moto, which applies
    /// it, and its answer is lost as [`Lost`] says; then the proxy forwards again. The SDK
    /// resends the request, which now finds its own first attempt's effect.
    LoseAnswer(&'static str, Lost),
}

/// How [`ProxyMode::LoseAnswer`] loses an answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lost {
    /// Held back longer than the SDK's attempt timeout (the service's 1 s): the attempt times
    /// out.
    Withheld,
    /// The connection is closed instead of answering.
    Reset,
}

/// How long [`Lost::Withheld`] holds an answer back: past the service's attempt timeout.
const WITHHELD_FOR: std::time::Duration = std::time::Duration::from_millis(1500);

/// A certificate authority of the test's own (made with `openssl`, as an operator would) and a
/// certificate from it for `localhost` and 127.0.0.1, in a folder that lives as long as this.
pub struct TestCa {
    dir: tempfile::TempDir,
}

impl TestCa {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let run = |args: &[&str]| {
            let output = std::process::Command::new("openssl")
                .args(args)
                .current_dir(dir.path())
                .output()
                .expect("openssl (the README lists it)");
            assert!(
                output.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        };
        let subject = |cn: &str| format!("/CN={cn}");
        run(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            &subject("monzo-auth test CA"),
        ]);
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            &subject("localhost"),
        ]);
        std::fs::write(
            dir.path().join("server.ext"),
            "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "2",
            "-extfile",
            "server.ext",
        ]);
        Self { dir }
    }

    /// The CA's certificate (PEM): what a trust store must hold to reach the proxy.
    pub fn certificate(&self) -> std::path::PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn server_config(&self) -> Arc<rustls::ServerConfig> {
        use rustls_pki_types::pem::PemObject as _;
        use rustls_pki_types::{CertificateDer, PrivateKeyDer};
        let read = |name| std::fs::read(self.dir.path().join(name)).unwrap();
        let chain = CertificateDer::pem_slice_iter(&read("server.pem"))
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(&read("server.key")).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .unwrap();
        Arc::new(config)
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// A loopback HTTP proxy in front of moto that counts the IAM action of every call, and can
/// fail calls as [`ProxyMode`] says (it answers on its own connections, so it can also drop
/// one). Over TLS, with a certificate of a [`TestCa`], it plays AWS's HTTPS endpoints.
pub struct RecordingProxy {
    pub url: String,
    state: ProxyState,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct ProxyState {
    upstream: String,
    http: reqwest::Client,
    /// How often each action was seen.
    actions: Arc<Mutex<BTreeMap<String, usize>>>,
    mode: Arc<Mutex<ProxyMode>>,
}

impl RecordingProxy {
    pub async fn start(upstream: &str) -> Self {
        Self::serve(upstream, None).await
    }

    /// The proxy over TLS, its certificate from `ca`: `url` is `https://localhost:PORT`.
    pub async fn start_tls(upstream: &str, ca: &TestCa) -> Self {
        Self::serve(upstream, Some(ca.server_config())).await
    }

    async fn serve(upstream: &str, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let state = ProxyState {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::new(),
            actions: Arc::default(),
            mode: Arc::new(Mutex::new(ProxyMode::Forward)),
        };
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let url = match tls {
            Some(_) => format!("https://localhost:{port}"),
            None => format!("http://127.0.0.1:{port}"),
        };
        let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
        let serving = state.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (state, acceptor) = (serving.clone(), acceptor.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { forward(state, request).await }
                    });
                    // A dropped answer ends the connection with an error: that is the point.
                    let http = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(acceptor) => {
                            // A client that does not trust the CA gives up in the handshake.
                            if let Ok(stream) = acceptor.accept(stream).await {
                                let _ = http.serve_connection(TokioIo::new(stream), service).await;
                            }
                        }
                        None => {
                            let _ = http.serve_connection(TokioIo::new(stream), service).await;
                        }
                    }
                });
            }
        });
        Self { url, state, task }
    }

    /// The IAM actions seen so far, e.g. `dynamodb:PutItem`, `kms:Decrypt`.
    pub fn actions(&self) -> BTreeSet<String> {
        self.state.actions.lock().unwrap().keys().cloned().collect()
    }

    /// How many requests of `action` the proxy has seen (a resent attempt counts again).
    pub fn count(&self, action: &str) -> usize {
        self.state
            .actions
            .lock()
            .unwrap()
            .get(action)
            .copied()
            .unwrap_or(0)
    }

    pub fn set_mode(&self, mode: ProxyMode) {
        *self.state.mode.lock().unwrap() = mode;
    }

    /// The mode now (a [`ProxyMode::LoseAnswer`] that has fired is back to `Forward`).
    pub fn mode(&self) -> ProxyMode {
        *self.state.mode.lock().unwrap()
    }
}

impl Drop for RecordingProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `DynamoDB_20120810.PutItem` -> `dynamodb:PutItem`; `TrentService.Decrypt` -> `kms:Decrypt`.
pub fn iam_action(target: &str) -> String {
    match target.split_once('.') {
        Some(("DynamoDB_20120810", op)) => format!("dynamodb:{op}"),
        Some(("TrentService", op)) => format!("kms:{op}"),
        _ => format!("unknown:{target}"),
    }
}

type ProxyBody = http_body_util::Full<Bytes>;

/// A proxy error: hyper closes the connection without an answer.
#[derive(Debug)]
struct Dropped;

impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("answer dropped by the test proxy")
    }
}

impl std::error::Error for Dropped {}

fn answer(
    status: StatusCode,
    content_type: &'static str,
    body: &'static str,
) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::from(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert("content-type", HeaderValue::from_static(content_type));
    response
}

async fn forward(
    state: ProxyState,
    request: Request<hyper::body::Incoming>,
) -> Result<Response<ProxyBody>, Dropped> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await.map_err(|_| Dropped)?.to_bytes();
    let action = parts
        .headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .map(iam_action)
        .unwrap_or_else(|| format!("unknown:{} {}", parts.method, parts.uri.path()));
    *state
        .actions
        .lock()
        .unwrap()
        .entry(action.clone())
        .or_default() += 1;
    // Read and, for a one-shot fault, disarmed in one step: only one request is failed.
    let (mode, lose) = {
        let mut mode = state.mode.lock().unwrap();
        match *mode {
            ProxyMode::LoseAnswer(only, how) if only == action => {
                *mode = ProxyMode::Forward;
                (ProxyMode::Forward, Some(how))
            }
            other => (other, None),
        }
    };
    if action.starts_with("kms:") && mode == ProxyMode::FailKms {
        return Ok(answer(
            StatusCode::BAD_REQUEST,
            "application/x-amz-json-1.1",
            r#"{"__type":"KMSInvalidStateException","message":"injected by the test proxy"}"#,
        ));
    }
    if action.starts_with("dynamodb:") && mode == ProxyMode::StallDynamoDb {
        tokio::time::sleep(std::time::Duration::from_secs(60)).await;
    }
    let throttled = match mode {
        ProxyMode::ThrottleDynamoDb => action.starts_with("dynamodb:"),
        ProxyMode::ThrottleDynamoDbAction(only) => action == only,
        _ => false,
    };
    if throttled {
        return Ok(answer(
            StatusCode::BAD_REQUEST,
            "application/x-amz-json-1.0",
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"injected by the test proxy"}"#,
        ));
    }
    let mut upstream = state
        .http
        .request(
            parts.method,
            format!(
                "{}{}",
                state.upstream,
                parts
                    .uri
                    .path_and_query()
                    .map(|p| p.as_str())
                    .unwrap_or("/")
            ),
        )
        .body(body);
    for (name, value) in &parts.headers {
        if name != "host" && name != "content-length" {
            upstream = upstream.header(name, value);
        }
    }
    let Ok(upstream) = upstream.send().await else {
        return Ok(answer(
            StatusCode::BAD_GATEWAY,
            "text/plain",
            "moto is unreachable",
        ));
    };
    let status = upstream.status();
    let headers = upstream.headers().clone();
    let body = upstream.bytes().await.unwrap_or_default();
    // Moto has applied the request; now its answer is lost, if that is the mode.
    match lose {
        Some(Lost::Reset) => return Err(Dropped),
        Some(Lost::Withheld) => tokio::time::sleep(WITHHELD_FOR).await,
        None => {}
    }
    let mut response = Response::new(ProxyBody::from(body));
    *response.status_mut() = status;
    for (name, value) in &headers {
        if name != "content-length" && name != "transfer-encoding" && name != "connection" {
            response.headers_mut().insert(name, value.clone());
        }
    }
    Ok(response)
}
