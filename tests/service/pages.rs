//! The pages a person sees carry the contract's headers and load nothing from elsewhere.

use e2e_tests::*;

fn assert_page_headers(response: &reqwest::Response) {
    let headers = response.headers();
    let csp = headers["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(
        !csp.contains("http"),
        "the policy allows no other host: {csp}"
    );
    assert_eq!(headers["referrer-policy"], "no-referrer");
    assert_eq!(headers["x-content-type-options"], "nosniff");
    assert_eq!(headers["cache-control"], "no-store");
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
}

/// Every `src=`/`href=`/`action=` in the page is relative, a fragment or `data:`.
fn assert_no_third_party_references(html: &str) {
    for attribute in ["src=", "href=", "action=", "url("] {
        for (at, _) in html.match_indices(attribute) {
            let value = html[at + attribute.len()..].trim_start_matches(['"', '\'']);
            assert!(
                !value.starts_with("http") && !value.starts_with("//"),
                "third-party reference: {}",
                &html[at..(at + 60).min(html.len())]
            );
        }
    }
    assert!(!html.contains("://"), "the page names another origin");
}

#[tokio::test]
async fn every_page_carries_the_headers_and_stays_self_contained() {
    let app = spawn_app().await;
    let driver = app.driver();
    let refused = {
        let mut url = app.return_url.clone();
        url.query_pairs_mut().append_pair("code", "x");
        url
    };
    for url in [
        driver.url("callback/done"),
        driver.url("callback/denied"),
        driver.url(""),
        refused,
    ] {
        let response = app.http.get(url.clone()).send().await.unwrap();
        assert_page_headers(&response);
        assert_no_third_party_references(&response.text().await.unwrap());
    }
    // The redirect after a good callback carries them too.
    let started = driver.start().await;
    let redirect = driver
        .at_monzo(&started.login_url, DEMO_USER, Decision::Approve)
        .await;
    let response = driver.callback(&redirect.callback_url).await;
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["referrer-policy"], "no-referrer");
}

#[tokio::test]
async fn the_demo_landing_page_allows_only_its_own_script() {
    let process = demo_server();
    let response = reqwest::get(process.base.clone()).await.unwrap();
    assert_page_headers(&response);
    let csp = response.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("script-src 'sha256-"), "{csp}");
    assert!(csp.contains("connect-src 'self'"), "{csp}");
    let html = response.text().await.unwrap();
    assert!(html.contains("demo mode") && html.contains("Start a login"));
    assert!(
        html.contains("<noscript>"),
        "a line for browsers without script"
    );
    assert!(html.contains("<title>monzo-auth demo</title>"), "{html}");
    assert_no_third_party_references(&html);
}

#[tokio::test]
async fn a_browser_asking_for_an_unknown_route_gets_a_page_and_api_clients_json() {
    let app = spawn_app().await;
    let url = app.base.join("no/such/page").unwrap();
    let page = app
        .http
        .get(url.clone())
        .header("accept", "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 404);
    assert_page_headers(&page);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<title>Page not found \u{b7} monzo-auth</title>"),
        "{html}"
    );
    assert_no_third_party_references(&html);
    JsonAnswer::read(app.http.get(url.clone()).send().await.unwrap())
        .await
        .assert_error(404, "not_found");
    JsonAnswer::read(
        app.http
            .get(url)
            .header("accept", "application/json")
            .send()
            .await
            .unwrap(),
    )
    .await
    .assert_error(404, "not_found");
    // The plain landing page names the service once.
    let landing = app.http.get(app.base.clone()).send().await.unwrap();
    let html = landing.text().await.unwrap();
    assert!(html.contains("<title>monzo-auth</title>"), "{html}");
}
