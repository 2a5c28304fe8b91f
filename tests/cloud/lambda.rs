//! The AWS shape: the three real Lambda binaries under `cargo lambda`, DynamoDB and KMS on moto
//! through the real SDK, fake-monzo for Monzo. Also the token function's KMS start-up, in
//! process, against moto.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Body;
use axum::http::Request;
use e2e_tests::aws::{self, ProxyMode, RecordingProxy, TestCa};
use e2e_tests::lambda::{FunctionProcess, granted_actions, rest_event};
use e2e_tests::*;
use lambda_common::{Function, function_app};
use serde_json::Value;
use tower::ServiceExt as _;

/// Everything the Lambda shape needs: moto with a table and a key, fake-monzo, a home.
pub(crate) struct World {
    pub(crate) moto: String,
    pub(crate) aws: aws_config::SdkConfig,
    pub(crate) table: String,
    pub(crate) client_secret: String,
    pub(crate) ciphertext: String,
    pub(crate) fake: fake_monzo::RunningFakeMonzo,
    pub(crate) home: tempfile::TempDir,
}

impl World {
    pub(crate) async fn new() -> Self {
        let moto = aws::moto_endpoint();
        let aws = aws::sdk_config(&moto);
        let table = aws::create_sessions_table(&aws).await;
        let client_secret = new_client_secret();
        let (_, ciphertext) =
            aws::encrypt_secret(&aws, &client_secret, ("app", "monzo-auth")).await;
        Self {
            moto,
            aws,
            table,
            client_secret,
            ciphertext,
            fake: start_fake_monzo().await,
            home: tempfile::tempdir().unwrap(),
        }
    }

    /// The settings the template gives every function, plus `extra`.
    fn env(&self, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("TABLE_NAME", self.table.clone()),
            ("MONZO_CLIENT_ID", CLIENT_ID.to_owned()),
            ("MONZO_AUTH_URL", self.fake.auth_url.to_string()),
            ("MONZO_API_URL", self.fake.api_url.to_string()),
            // As the template's LoggingConfig makes Lambda set them, at the most verbose level
            // the template allows.
            ("AWS_LAMBDA_LOG_FORMAT", "JSON".to_owned()),
            ("AWS_LAMBDA_LOG_LEVEL", "TRACE".to_owned()),
        ];
        env.extend_from_slice(extra);
        env
    }

    async fn function(
        &self,
        name: &'static str,
        extra: &[(&'static str, String)],
    ) -> FunctionProcess {
        FunctionProcess::start(name, &self.moto, self.home.path(), &self.env(extra)).await
    }

    /// Each function called exactly the AWS actions the template grants it.
    fn assert_least_privilege(&self, functions: &[&FunctionProcess]) {
        let granted = granted_actions();
        for function in functions {
            let binary = format!("monzo-auth-{}", function.name);
            assert_eq!(
                function.actions(),
                granted[&binary],
                "{binary}: the actions it called (left) differ from what template.yaml grants (right)"
            );
        }
    }

    async fn assert_no_secret_stored_or_logged(
        &self,
        functions: &[&FunctionProcess],
        secrets: &[(&str, String)],
    ) {
        // The state is the sessions table's key by design (DESIGN.md: it is in every browser
        // history anyway, and reveals neither the poll id nor the sealing key); every other
        // secret must be absent from the table.
        let stored: Vec<(&str, String)> = secrets
            .iter()
            .filter(|(name, _)| *name != "state")
            .cloned()
            .collect();
        let table = aws::dump_table(&self.aws, &self.table).await;
        assert_no_secret("the sessions table", table.as_bytes(), &stored);
        for function in functions {
            let logs = function.logs();
            assert!(
                logs.contains("monzo_auth::access"),
                "{} logged no request: {logs}",
                function.name
            );
            assert_no_secret(
                &format!("the {} function's logs", function.name),
                logs.as_bytes(),
                secrets,
            );
            assert_json_logs_capped(function.name, &logs);
        }
    }
}

/// Every line a function logs is a JSON object with a level (Lambda filters on it); the asked
/// level (TRACE) is honoured, so DEBUG lines appear, but only this project's crates may log at
/// TRACE: other crates stop at DEBUG.
fn assert_json_logs_capped(function: &str, logs: &str) {
    let mut debug_lines = 0;
    for line in logs.lines().filter(|line| !line.trim().is_empty()) {
        let entry: Value = serde_json::from_str(line)
            .unwrap_or_else(|_| panic!("{function} logged a line that is not JSON: {line}"));
        let target = entry["target"].as_str().expect("a target");
        match entry["level"].as_str().expect("a level") {
            "DEBUG" => debug_lines += 1,
            "TRACE" => assert!(
                ["shared", "lambda_common", "monzo_auth"]
                    .iter()
                    .any(|krate| target.starts_with(krate)),
                "{function}: {target} logged at TRACE: {line}"
            ),
            _ => {}
        }
    }
    assert!(
        debug_lines > 0,
        "{function} logged nothing at DEBUG: {logs}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_api_events_complete_the_flow() {
    let world = World::new().await;
    let callback = world.function("callback", &[]).await;
    let return_url = callback.url().join("callback").unwrap();
    register_client(&world.fake.monzo, &world.client_secret, &return_url, true);
    let common = [("RETURN_URL", return_url.to_string())];
    let new = world.function("new", &common).await;
    let mut token_env = common.to_vec();
    token_env.push(("MONZO_CLIENT_SECRET_KMS", world.ciphertext.clone()));
    let token = world.function("token", &token_env).await;

    let driver = Driver {
        base: new.url(),
        new_url: new.url().join("new").unwrap(),
        token_url: token.url().join("token").unwrap(),
        http: http_client(),
    };
    let started = driver.start().await;
    let pending = driver.poll(&started.id).await;
    assert_eq!(pending.status, 202, "{}", pending.body);
    let redirect = driver
        .at_monzo(&started.login_url, DEMO_USER, Decision::Approve)
        .await;
    let response = driver.callback(&redirect.callback_url).await;
    assert_eq!(response.status(), 303);
    let done = return_url
        .join(response.headers()["location"].to_str().unwrap())
        .unwrap();
    let page = driver.http.get(done).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("close this window"));

    let answer = driver.poll(&started.id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["user_id"], DEMO_USER);
    driver
        .poll(&started.id)
        .await
        .assert_error(404, "not_found");

    // Each function serves only its routes, and answers the rest in the contract's shape.
    let stray = JsonAnswer::read(
        driver
            .http
            .get(token.url().join("new").unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    stray.assert_error(404, "not_found");
    let wrong = driver
        .http
        .delete(driver.token_url.clone())
        .send()
        .await
        .unwrap();
    JsonAnswer::read(wrong)
        .await
        .assert_error(405, "method_not_allowed");

    world.assert_least_privilege(&[&new, &callback, &token]);
    world
        .assert_no_secret_stored_or_logged(
            &[&new, &callback, &token],
            &[
                ("client secret", world.client_secret.clone()),
                ("poll id", started.id.clone()),
                ("state", started.state()),
                ("code", redirect.code.unwrap()),
                (
                    "access token",
                    answer.body["token"].as_str().unwrap().to_owned(),
                ),
                (
                    "refresh token",
                    answer.body["refresh_token"].as_str().unwrap().to_owned(),
                ),
            ],
        )
        .await;
}

/// The body of an invoke response, as JSON.
fn json_body(response: &Value) -> Value {
    serde_json::from_str(response["body"].as_str().expect("body")).expect("JSON body")
}

/// One cold request per function, each reaching DynamoDB (and the token function KMS) over TLS
/// and trusting them only through Amazon Linux's CA bundle, as on Lambda: a function that reads
/// the wrong trust store fails here, not on AWS. With another CA in that bundle the same
/// function cannot reach AWS, and says so (503).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cold_functions_reach_aws_over_tls_trusting_amazon_linuxs_bundle() {
    let world = World::new().await;
    let ca = TestCa::new();
    let trusted = ca.certificate();
    let start = |name, env: Vec<(&'static str, String)>| {
        let (world, ca, trusted) = (&world, &ca, &trusted);
        async move {
            FunctionProcess::start_over_tls(
                name,
                &world.moto,
                world.home.path(),
                &world.env(&env),
                (ca, trusted),
            )
            .await
        }
    };
    let callback = start("callback", vec![]).await;
    let return_url = callback.url().join("callback").unwrap();
    register_client(&world.fake.monzo, &world.client_secret, &return_url, true);
    let common = vec![("RETURN_URL", return_url.to_string())];
    let new = start("new", common.clone()).await;
    let mut token_env = common.clone();
    token_env.push(("MONZO_CLIENT_SECRET_KMS", world.ciphertext.clone()));
    let token = start("token", token_env).await;
    let driver = Driver {
        base: new.url(),
        new_url: new.url().join("new").unwrap(),
        token_url: token.url().join("token").unwrap(),
        http: http_client(),
    };

    let started = driver.start().await;
    let redirect = driver
        .at_monzo(&started.login_url, DEMO_USER, Decision::Approve)
        .await;
    assert_eq!(driver.callback(&redirect.callback_url).await.status(), 303);
    let answer = driver.poll(&started.id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["user_id"], DEMO_USER);
    for function in [&new, &callback, &token] {
        assert!(
            function
                .actions()
                .iter()
                .any(|a| a.starts_with("dynamodb:")),
            "{} did not reach DynamoDB over TLS",
            function.name
        );
    }
    assert!(token.actions().contains("kms:Decrypt"));

    // Another CA in Amazon Linux's bundle: the handshake fails, so no AWS call is made.
    let stranger = TestCa::new();
    let untrusting = FunctionProcess::start_over_tls(
        "new",
        &world.moto,
        world.home.path(),
        &world.env(&common),
        (&ca, &stranger.certificate()),
    )
    .await;
    let answer = JsonAnswer::read(
        driver
            .http
            .post(untrusting.url().join("new").unwrap())
            .send()
            .await
            .unwrap(),
    )
    .await;
    answer.assert_error(503, "temporarily_unavailable");
    assert!(
        untrusting.actions().is_empty(),
        "{:?}",
        untrusting.actions()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_api_events_with_a_stage_derive_the_return_url() {
    let world = World::new().await;
    let domain = "abc123defg.execute-api.eu-west-2.amazonaws.com";
    let derived: url::Url = format!("https://{domain}/Prod/callback").parse().unwrap();
    register_client(&world.fake.monzo, &world.client_secret, &derived, true);
    // No RETURN_URL anywhere: `new` derives it from the request, the session records it.
    let new = world.function("new", &[]).await;
    let callback = world.function("callback", &[]).await;
    let token = world
        .function(
            "token",
            &[("MONZO_CLIENT_SECRET_KMS", world.ciphertext.clone())],
        )
        .await;
    let driver = Driver::new(new.url(), http_client());

    let started = new.invoke(&rest_event("POST", "/new", &[], None, domain, "Prod"));
    assert_eq!(started["statusCode"], 200, "{started}");
    let started = json_body(&started);
    let id = started["id"].as_str().unwrap().to_owned();
    let login_url: url::Url = started["login_url"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        query_param(&login_url, "redirect_uri").as_deref(),
        Some(derived.as_str())
    );

    let redirect = driver
        .at_monzo(&login_url, DEMO_USER, Decision::Approve)
        .await;
    assert!(redirect.callback_url.as_str().starts_with(derived.as_str()));
    let code = redirect.code.clone().unwrap();
    let state = redirect.state.clone().unwrap();
    let landed = callback.invoke(&rest_event(
        "GET",
        "/callback",
        &[("code", &code), ("state", &state)],
        None,
        domain,
        "Prod",
    ));
    assert_eq!(landed["statusCode"], 303, "{landed}");
    let location = landed["headers"]["location"]
        .as_str()
        .or(landed["multiValueHeaders"]["location"][0].as_str());
    assert_eq!(location, Some("callback/done"), "{landed}");

    let poll = |body: String| {
        token.invoke(&rest_event(
            "POST",
            "/token",
            &[],
            Some(&body),
            domain,
            "Prod",
        ))
    };
    let answer = poll(format!("id={id}"));
    assert_eq!(answer["statusCode"], 200, "{answer}");
    let answer = json_body(&answer);
    assert_eq!(answer["user_id"], DEMO_USER);
    let gone = poll(format!("id={id}"));
    assert_eq!(gone["statusCode"], 404);

    world.assert_least_privilege(&[&new, &callback, &token]);
    world
        .assert_no_secret_stored_or_logged(
            &[&new, &callback, &token],
            &[
                ("client secret", world.client_secret.clone()),
                ("poll id", id),
                ("state", state),
                ("code", code),
                ("access token", answer["token"].as_str().unwrap().to_owned()),
                (
                    "refresh token",
                    answer["refresh_token"].as_str().unwrap().to_owned(),
                ),
            ],
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_function_that_cannot_decrypt_its_secret_logs_one_line_and_answers_503() {
    let world = World::new().await;
    let garbage = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 64]);
    let token = world
        .function("token", &[("MONZO_CLIENT_SECRET_KMS", garbage.clone())])
        .await;
    let response = http_client()
        .post(token.url().join("token").unwrap())
        .form(&[("id", "x")])
        .send()
        .await
        .unwrap();
    let answer = JsonAnswer::read(response).await;
    answer.assert_error(503, "temporarily_unavailable");
    assert!(answer.headers.contains_key("retry-after"));
    let logs = token.logs();
    let lines: Vec<&str> = logs
        .lines()
        .filter(|l| l.contains("MONZO_CLIENT_SECRET_KMS"))
        .collect();
    assert_eq!(
        lines.len(),
        1,
        "one line about the secret at cold start: {logs}"
    );
    assert!(lines[0].contains("ERROR"), "{}", lines[0]);
    assert!(!logs.contains(&garbage), "the ciphertext was logged");
}

// ---- In process: the token function's KMS start-up against moto through a switchable proxy.

/// What the token function links beyond the others: KMS and Monzo's API.
pub(crate) fn token_adapters(kms: &shared::app::OpenKms) -> shared::app::Adapters<'_> {
    shared::app::Adapters {
        kms: Some(kms),
        monzo: Some(&monzo_auth_monzo_http::open_api),
        ..Default::default()
    }
}

async fn token_app(world: &World, proxy: &RecordingProxy, ciphertext: &str) -> axum::Router {
    let vars: HashMap<&str, String> = world
        .env(&[("MONZO_CLIENT_SECRET_KMS", ciphertext.to_owned())])
        .into_iter()
        .collect();
    let aws = aws::sdk_config(&proxy.url);
    let kms = monzo_auth_kms::opener(&aws);
    function_app(
        Function::Token,
        |name| vars.get(name).cloned(),
        &aws,
        token_adapters(&kms),
    )
    .await
}

async fn poll_unknown(app: &axum::Router) -> (u16, Value) {
    let request = Request::post("/token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Body::from(format!(
            "id={}",
            monzo_auth_domain::session::PollId::generate(0).expose()
        )))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

#[tokio::test]
async fn the_secret_decrypts_with_the_context_at_cold_start() {
    let world = World::new().await;
    let proxy = RecordingProxy::start(&world.moto).await;
    let app = token_app(&world, &proxy, &world.ciphertext).await;
    assert!(
        proxy.actions().contains("kms:Decrypt"),
        "decrypted at cold start"
    );
    let (status, body) = poll_unknown(&app).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("not_found")),
        "served, not 503"
    );
}

#[tokio::test]
async fn garbage_or_another_context_gives_503() {
    let world = World::new().await;
    let proxy = RecordingProxy::start(&world.moto).await;
    let (_, other_context) =
        aws::encrypt_secret(&world.aws, &world.client_secret, ("app", "other")).await;
    let garbage = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, [7u8; 64]);
    for ciphertext in [other_context, garbage] {
        let app = token_app(&world, &proxy, &ciphertext).await;
        let (status, body) = poll_unknown(&app).await;
        assert_eq!(
            (status, body["error"].as_str()),
            (503, Some("temporarily_unavailable"))
        );
        assert!(
            body["error_description"]
                .as_str()
                .is_some_and(|d| !d.is_empty())
        );
    }
}

#[tokio::test]
async fn kms_coming_back_heals_the_instance() {
    let world = World::new().await;
    let proxy = RecordingProxy::start(&world.moto).await;
    proxy.set_mode(ProxyMode::FailKms);
    let app = token_app(&world, &proxy, &world.ciphertext).await;
    assert_eq!(poll_unknown(&app).await.0, 503);
    proxy.set_mode(ProxyMode::Forward);
    // The first retry waits out a one-second backoff.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _) = poll_unknown(&app).await;
        if status == 404 {
            break;
        }
        assert_eq!(status, 503);
        assert!(std::time::Instant::now() < deadline, "never recovered");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_misconfigured_function_answers_503_json_to_everything() {
    let aws = aws::sdk_config("http://127.0.0.1:9");
    // `new` without MONZO_CLIENT_ID, `callback` without TABLE_NAME.
    for (function, vars) in [
        (Function::New, vec![("TABLE_NAME", "sessions-x")]),
        (Function::Callback, vec![]),
    ] {
        let vars: HashMap<&str, &str> = vars.into_iter().collect();
        let app = function_app(
            function,
            |name| vars.get(name).map(|v| v.to_string()),
            &aws,
            Default::default(),
        )
        .await;
        for path in ["/new", "/callback", "/anything"] {
            let response = app
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), 503);
            let body = axum::body::to_bytes(response.into_body(), 1 << 16)
                .await
                .unwrap();
            let body: Value = serde_json::from_slice(&body).unwrap();
            assert_eq!(body["error"], "temporarily_unavailable");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_local_server_runs_on_dynamodb_with_a_kms_secret() {
    // In process, through the same composition as `monzo-auth-server --features aws` (the binary
    // the other tests run is the default build, which links no AWS SDK).
    let world = World::new().await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let return_url = shared::app::local_return_url(addr);
    register_client(&world.fake.monzo, &world.client_secret, &return_url, true);
    let vars: HashMap<&str, String> = HashMap::from([
        ("MONZO_CLIENT_ID", CLIENT_ID.to_owned()),
        ("MONZO_CLIENT_SECRET_KMS", world.ciphertext.clone()),
        ("MONZO_AUTH_URL", world.fake.auth_url.to_string()),
        ("MONZO_API_URL", world.fake.api_url.to_string()),
        ("STORE", format!("dynamodb:{}", world.table)),
    ]);
    let config = shared::config::Config::from_lookup(shared::config::Mode::Local, |name| {
        vars.get(name).cloned()
    })
    .unwrap();
    let dynamodb = monzo_auth_dynamodb::opener(&world.aws);
    let kms = monzo_auth_kms::opener(&world.aws);
    let adapters = shared::app::Adapters {
        dynamodb: Some(&dynamodb),
        kms: Some(&kms),
        monzo: Some(&monzo_auth_monzo_http::open_api),
        refresh_limit: Some(&monzo_auth_server::limit::open),
        pages: Some(&monzo_auth_pages::PAGES),
        ..Default::default()
    };
    // The composition root opens the DynamoDB store and the KMS secret from the settings.
    let host = shared::app::Host::new(
        shared::app::Shape::Local {
            local_addr: addr,
            demo: false,
        },
        adapters,
    );
    let router = shared::app::build(&config, host).await.unwrap();
    tokio::spawn(monzo_auth_server::serve(
        listener,
        router,
        &config,
        std::future::pending(),
    ));
    let driver = Driver::new(format!("http://{addr}/").parse().unwrap(), http_client());
    let (started, _) = driver.authorized_session(DEMO_USER).await;
    assert!(
        aws::dump_table(&world.aws, &world.table)
            .await
            .contains("authorized"),
        "the session is in DynamoDB"
    );
    let answer = driver.poll(&started.id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    driver
        .poll(&started.id)
        .await
        .assert_error(404, "not_found");
}

#[tokio::test]
async fn dynamodb_throttling_is_503_and_passes() {
    let world = World::new().await;
    let proxy = RecordingProxy::start(&world.moto).await;
    let vars: HashMap<&str, String> = world
        .env(&[("RETURN_URL", "https://api.example/callback".to_owned())])
        .into_iter()
        .collect();
    let app = function_app(
        Function::New,
        |name| vars.get(name).cloned(),
        &aws::sdk_config(&proxy.url),
        Default::default(),
    )
    .await;
    let new = || Request::post("/new").body(Body::empty()).unwrap();
    proxy.set_mode(ProxyMode::ThrottleDynamoDb);
    let response = app.clone().oneshot(new()).await.unwrap();
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["error"],
        "temporarily_unavailable"
    );
    proxy.set_mode(ProxyMode::Forward);
    assert_eq!(app.oneshot(new()).await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_device_flow_and_refresh_run_on_the_functions() {
    let world = World::new().await;
    let callback = world.function("callback", &[]).await;
    let return_url = callback.url().join("callback").unwrap();
    register_client(&world.fake.monzo, &world.client_secret, &return_url, true);
    // The device pages live on the callback function, so that is where people are sent.
    // A one-second interval (recorded by `new`): the poll after the approval waits only that.
    let common = [
        ("RETURN_URL", return_url.to_string()),
        ("PUBLIC_BASE_URL", callback.url().to_string()),
        ("POLL_INTERVAL_SECS", "1".to_owned()),
    ];
    let new = world.function("new", &common).await;
    let mut token_env = common.to_vec();
    token_env.push(("MONZO_CLIENT_SECRET_KMS", world.ciphertext.clone()));
    let token = world.function("token", &token_env).await;
    let driver = Driver::new(callback.url(), http_client());

    let started = driver
        .start_device_at(new.url().join("device/code").unwrap(), "my-cli")
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    let device_code = started.body["device_code"].as_str().unwrap().to_owned();
    let user_code = started.body["user_code"].as_str().unwrap().to_owned();
    let complete: url::Url = started.body["verification_uri_complete"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        complete.as_str().starts_with(callback.url().as_str()),
        "{complete}"
    );

    let token_url = token.url().join("oauth/token").unwrap();
    let poll = || driver.poll_device_at(&token_url, &device_code, "my-cli");
    poll().await.assert_error(400, "authorization_pending");
    let redirect = driver
        .approve_device(&complete, DEMO_USER, Decision::Approve)
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let answer = poll().await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let first_refresh = answer.body["refresh_token"].as_str().unwrap().to_owned();

    let refreshed = JsonAnswer::read(
        driver
            .http
            .post(token_url.clone())
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", &first_refresh),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    assert!(
        world
            .fake
            .monzo
            .is_access_token_live(refreshed.body["access_token"].as_str().unwrap())
    );

    let metadata = JsonAnswer::read(
        driver
            .http
            .get(
                new.url()
                    .join(".well-known/oauth-authorization-server")
                    .unwrap(),
            )
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        metadata.body["device_authorization_endpoint"],
        callback.url().join("device/code").unwrap().as_str()
    );
    assert_eq!(
        metadata.body["revocation_endpoint"],
        callback.url().join("oauth/revoke").unwrap().as_str()
    );

    // RFC 7009 on the token function: the refreshed refresh token, sent without a hint as
    // Authlib and openid-client send it, ends its chain.
    let refreshed_access = refreshed.body["access_token"].as_str().unwrap();
    let refreshed_refresh = refreshed.body["refresh_token"].as_str().unwrap();
    let revoked = driver
        .http
        .post(token.url().join("oauth/revoke").unwrap())
        .form(&[("token", refreshed_refresh)])
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), 200);
    assert!(!world.fake.monzo.is_access_token_live(refreshed_access));
    let after = JsonAnswer::read(
        driver
            .http
            .post(token.url().join("oauth/token").unwrap())
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refreshed_refresh),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    after.assert_error(400, "invalid_grant");

    world.assert_least_privilege(&[&new, &callback, &token]);
    world
        .assert_no_secret_stored_or_logged(
            &[&new, &callback, &token],
            &[
                ("client secret", world.client_secret.clone()),
                ("device code", device_code.clone()),
                ("user code", user_code.clone()),
                ("user code without its dash", user_code.replace('-', "")),
                ("state", redirect.state.unwrap()),
                ("code", redirect.code.unwrap()),
                (
                    "access token",
                    answer.body["access_token"].as_str().unwrap().to_owned(),
                ),
                ("refresh token", first_refresh),
                (
                    "refreshed access token",
                    refreshed.body["access_token"].as_str().unwrap().to_owned(),
                ),
                (
                    "refreshed refresh token",
                    refreshed.body["refresh_token"].as_str().unwrap().to_owned(),
                ),
            ],
        )
        .await;
}

/// The token function's Timeout covers its worst poll, and stays under API Gateway's 30 s: a KMS
/// decrypt retried after a failed cold start, reading and claiming the session, the exchange, a
/// refused user's logout (two Monzo calls, each `MONZO_TIMEOUT_SECS`), settling the session (four
/// AWS calls, each bounded by the SDK's operation timeout), and a margin.
#[test]
fn the_token_functions_timeout_covers_its_worst_poll() {
    let template: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../template.yaml"),
        )
        .unwrap(),
    )
    .unwrap();
    let secs = |value: &serde_yaml::Value| -> u64 {
        match value {
            serde_yaml::Value::Number(n) => n.as_u64().unwrap(),
            serde_yaml::Value::String(s) => s.parse().unwrap(),
            other => panic!("not a number of seconds: {other:?}"),
        }
    };
    let monzo =
        secs(&template["Globals"]["Function"]["Environment"]["Variables"]["MONZO_TIMEOUT_SECS"]);
    let token = secs(&template["Resources"]["TokenFunction"]["Properties"]["Timeout"]);
    let aws_call = monzo_auth_dynamodb::AWS_OPERATION_TIMEOUT.as_secs();
    assert!(
        monzo_auth_dynamodb::AWS_ATTEMPT_TIMEOUT < monzo_auth_dynamodb::AWS_OPERATION_TIMEOUT,
        "an attempt fits in the operation, so a retry can happen"
    );
    let worst = 2 * monzo + 4 * aws_call;
    assert!(
        token > worst,
        "token Timeout {token} s does not cover 2 x {monzo} s + 4 x {aws_call} s = {worst} s plus a margin"
    );
    assert!(
        token <= 29,
        "token Timeout {token} s reaches API Gateway's 30 s"
    );
    // The redeem lease outlives the exchange, so no second exchange starts while Monzo may still
    // be working on the first.
    let lease = monzo_auth_domain::flow::FlowSettings::lease_for(Duration::from_secs(monzo));
    assert!(lease > Duration::from_secs(monzo + aws_call));
    // new and callback make at most a handful of store calls.
    let others = secs(&template["Globals"]["Function"]["Timeout"]);
    assert!(others >= 5 * aws_call && others <= 29, "{others}");
}

/// Serves an in-process function app on loopback; its base URL.
async fn serve_function(app: axum::Router) -> url::Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    base.parse().unwrap()
}

/// `function` in process with the world's settings plus `extra`, served on loopback.
pub(crate) async fn in_process(
    world: &World,
    function: Function,
    extra: &[(&'static str, String)],
    aws: &aws_config::SdkConfig,
    adapters: shared::app::Adapters<'_>,
) -> url::Url {
    let vars: HashMap<&str, String> = world.env(extra).into_iter().collect();
    serve_function(function_app(function, |name| vars.get(name).cloned(), aws, adapters).await)
        .await
}

/// The three functions in process: new and callback on moto, token through `proxy`; a session
/// authorized at the stand-in, ready for the token function's redeem.
async fn authorized_on_functions(world: &World, proxy: &RecordingProxy) -> (Driver, Started) {
    let direct = aws::sdk_config(&world.moto);
    let pages = shared::app::Adapters {
        pages: Some(&monzo_auth_pages::PAGES),
        ..Default::default()
    };
    let callback = in_process(world, Function::Callback, &[], &direct, pages).await;
    let return_url = callback.join("callback").unwrap();
    register_client(&world.fake.monzo, &world.client_secret, &return_url, true);
    let common = [("RETURN_URL", return_url.to_string())];
    let new = in_process(world, Function::New, &common, &direct, Default::default()).await;
    let mut token_env = common.to_vec();
    token_env.push(("MONZO_CLIENT_SECRET_KMS", world.ciphertext.clone()));
    let proxied = aws::service_sdk_config(&proxy.url);
    let kms = monzo_auth_kms::opener(&proxied);
    let token = in_process(
        world,
        Function::Token,
        &token_env,
        &proxied,
        token_adapters(&kms),
    )
    .await;
    let driver = Driver {
        base: new.clone(),
        new_url: new.join("new").unwrap(),
        token_url: token.join("token").unwrap(),
        http: http_client(),
    };
    let started = driver.start().await;
    let redirect = driver
        .at_monzo(&started.login_url, DEMO_USER, Decision::Approve)
        .await;
    assert_eq!(driver.callback(&redirect.callback_url).await.status(), 303);
    (driver, started)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_failing_mid_redeem_is_503_loses_nothing_and_exchanges_once() {
    let world = World::new().await;
    let proxy = RecordingProxy::start(&world.moto).await;
    let (driver, started) = authorized_on_functions(&world, &proxy).await;

    // The claim cannot be written: 503, and Monzo was not called.
    proxy.set_mode(ProxyMode::ThrottleDynamoDbAction("dynamodb:UpdateItem"));
    let answer = driver.poll(&started.id).await;
    answer.assert_error(503, "temporarily_unavailable");
    assert!(answer.headers.contains_key("retry-after"));
    assert_eq!(world.fake.monzo.stats().token_calls, 0);

    // DynamoDB too slow to answer at all: the SDK's timeouts give up within the function's
    // budget (the bound here is only so the test cannot hang).
    proxy.set_mode(ProxyMode::StallDynamoDb);
    let stalled = tokio::time::timeout(Duration::from_secs(20), driver.poll(&started.id))
        .await
        .expect("a stalled DynamoDB held the function past its budget");
    stalled.assert_error(503, "temporarily_unavailable");

    // Back: the session was kept, and the one exchange happens now.
    proxy.set_mode(ProxyMode::Forward);
    let answer = driver.poll(&started.id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let stats = world.fake.monzo.stats();
    assert_eq!(
        (stats.token_calls, stats.code_exchanges),
        (1, 1),
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dynamodb_failing_after_the_exchange_still_delivers_the_token() {
    let world = World::new().await;
    let proxy = RecordingProxy::start(&world.moto).await;
    let (driver, started) = authorized_on_functions(&world, &proxy).await;
    // The session cannot be deleted once Monzo has issued the token: the token (which only
    // this caller will ever see) is delivered all the same.
    proxy.set_mode(ProxyMode::ThrottleDynamoDbAction("dynamodb:DeleteItem"));
    let answer = driver.poll(&started.id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["user_id"], DEMO_USER);
    assert_eq!(world.fake.monzo.stats().code_exchanges, 1);
}
