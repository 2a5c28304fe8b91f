//! `fake-monzo approve`: a headless person in a browser, for tests of apps that open one.
//!
//! Given the login URL an app would open, it does what a person does: loads Monzo's login
//! page, picks a user, presses Approve (or Deny), follows Monzo's redirect to the app's
//! callback, and follows the callback's redirect to the page the person would end on. An app
//! under test can therefore run with `BROWSER="fake-monzo approve"`.
//!
//! Part of the binary, not the library: the stand-in's library never makes requests.
//! Messages name steps and statuses, never a URL: login and callback URLs carry the state and
//! the authorization code.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::LOCATION;
use url::Url;

/// A browser gives up on a page after a while; so does this, rather than hang a test.
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(clap::Args, Debug)]
pub struct ApproveArgs {
    /// Press Deny instead of Approve.
    #[arg(long)]
    deny: bool,

    /// The Monzo user who logs in (one of the fake's users).
    #[arg(long = "user", value_name = "USER_ID", default_value = "user_0000demo")]
    user: String,

    /// The login URL, as an app opens it in a browser.
    #[arg(value_name = "URL")]
    url: String,
}

/// Walks the whole login; the error is one line for stderr.
pub async fn run(args: ApproveArgs) -> Result<(), String> {
    let login_url = Url::parse(&args.url).map_err(|_| "the login URL is not a URL".to_owned())?;
    let http = reqwest::Client::builder()
        // Each hop is taken by hand: the statuses in between are what is being checked.
        .redirect(reqwest::redirect::Policy::none())
        .timeout(TIMEOUT)
        .build()
        .map_err(|error| format!("cannot set up an HTTP client: {}", root_cause(&error)))?;

    let page = get(&http, &login_url, "the login page").await?;
    expect(page.status(), StatusCode::OK, "the login page")?;

    let param = |name: &str| {
        login_url
            .query_pairs()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.into_owned())
            .ok_or(format!("the login URL has no {name}"))
    };
    let decision = if args.deny { "deny" } else { "approve" };
    // The login page's form posts to /authorize on the same origin.
    let authorize = login_url
        .join("/authorize")
        .map_err(|_| "the login URL cannot be a base".to_owned())?;
    let form = [
        ("client_id", param("client_id")?),
        ("redirect_uri", param("redirect_uri")?),
        ("state", param("state")?),
        ("decision", decision.to_owned()),
        ("user_id", args.user),
    ];
    let answer = http
        .post(authorize.clone())
        .form(&form)
        .send()
        .await
        .map_err(|error| failed("the login form", &error))?;
    expect(answer.status(), StatusCode::FOUND, "the login form")?;
    let callback = location(&answer, &authorize, "the login form")?;

    let answer = get(&http, &callback, "the app's callback").await?;
    expect(answer.status(), StatusCode::SEE_OTHER, "the app's callback")?;
    let landing = location(&answer, &callback, "the app's callback")?;

    let page = get(&http, &landing, "the page after the callback").await?;
    expect(page.status(), StatusCode::OK, "the page after the callback")
}

async fn get(http: &reqwest::Client, url: &Url, what: &str) -> Result<reqwest::Response, String> {
    http.get(url.clone())
        .send()
        .await
        .map_err(|error| failed(what, &error))
}

fn expect(got: StatusCode, wanted: StatusCode, what: &str) -> Result<(), String> {
    if got == wanted {
        Ok(())
    } else {
        Err(format!(
            "{what} answered HTTP {}, not {}",
            got.as_u16(),
            wanted.as_u16()
        ))
    }
}

/// Where a redirect points, resolved against the URL that answered it (as a browser does).
fn location(response: &reqwest::Response, from: &Url, what: &str) -> Result<Url, String> {
    let target = response
        .headers()
        .get(LOCATION)
        .and_then(|value| value.to_str().ok())
        .ok_or(format!("{what} redirected without a Location"))?;
    from.join(target)
        .map_err(|_| format!("{what} redirected to something that is not a URL"))
}

/// A failed request, described without reqwest's outer message (it quotes the URL).
fn failed(what: &str, error: &reqwest::Error) -> String {
    format!("cannot load {what}: {}", root_cause(error))
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut current = error;
    let mut depth = 0;
    while let Some(source) = current.source() {
        current = source;
        depth += 1;
    }
    if depth == 0 {
        "request failed".to_owned()
    } else {
        current.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::RawQuery;
    use axum::response::Redirect;
    use axum::routing::get as route_get;
    use fake_monzo::{ClientRegistration, FakeMonzo, FakeMonzoConfig};

    /// An app's callback that records the query Monzo sent back and redirects to a page.
    async fn app() -> (Url, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = Arc::clone(&seen);
        let router = Router::new()
            .route(
                "/app/callback",
                route_get(move |RawQuery(query): RawQuery| {
                    let record = Arc::clone(&record);
                    async move {
                        record.lock().unwrap().push(query.unwrap_or_default());
                        // Relative, like the service's own redirect.
                        Redirect::to("callback/done")
                    }
                }),
            )
            .route("/app/callback/done", route_get(|| async { "done" }));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, router).await });
        (
            Url::parse(&format!("http://{addr}/app/callback")).unwrap(),
            seen,
        )
    }

    async fn login_url(redirect: &Url) -> (Url, fake_monzo::RunningFakeMonzo) {
        let fake = FakeMonzo::start_on_loopback(FakeMonzoConfig::default())
            .await
            .unwrap();
        fake.monzo.register_client(ClientRegistration {
            client_id: "oauth2client_test".into(),
            client_secret: "secret".into(),
            redirect_uri: redirect.to_string(),
            confidential: true,
        });
        let mut url = fake.auth_url.clone();
        url.query_pairs_mut()
            .append_pair("client_id", "oauth2client_test")
            .append_pair("redirect_uri", redirect.as_str())
            .append_pair("response_type", "code")
            .append_pair("state", "state-123");
        (url, fake)
    }

    fn args(url: &Url, deny: bool) -> ApproveArgs {
        ApproveArgs {
            deny,
            user: "user_0000demo".into(),
            url: url.to_string(),
        }
    }

    #[tokio::test]
    async fn approving_delivers_a_code_to_the_callback() {
        let (callback, seen) = app().await;
        let (url, _fake) = login_url(&callback).await;
        run(args(&url, false)).await.unwrap();
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 1);
        assert!(seen[0].contains("code=") && seen[0].contains("state=state-123"));
    }

    #[tokio::test]
    async fn denying_delivers_access_denied() {
        let (callback, seen) = app().await;
        let (url, _fake) = login_url(&callback).await;
        run(args(&url, true)).await.unwrap();
        assert!(seen.lock().unwrap()[0].contains("error=access_denied"));
    }

    #[tokio::test]
    async fn a_refused_login_page_is_a_one_line_error_without_the_url() {
        let (callback, seen) = app().await;
        let (mut url, _fake) = login_url(&callback).await;
        url.query_pairs_mut()
            .clear()
            .append_pair("client_id", "unknown")
            .append_pair("state", "state-123");
        let error = run(args(&url, false)).await.unwrap_err();
        assert_eq!(error, "the login page answered HTTP 400, not 200");
        assert!(seen.lock().unwrap().is_empty());
    }
}
