//! The `auth.monzo.com` side: the login page and the form it posts.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use url::Url;

use crate::params::Params;
use crate::{FakeMonzo, page};

pub(crate) fn router(monzo: FakeMonzo) -> Router {
    Router::new()
        .route("/", get(login_page))
        .route("/authorize", post(authorize))
        .fallback(|| async { page::error(StatusCode::NOT_FOUND, "There is no such page.") })
        .method_not_allowed_fallback(|| async {
            page::error(
                StatusCode::METHOD_NOT_ALLOWED,
                "This page cannot be used that way.",
            )
        })
        .layer(axum::middleware::from_fn_with_state(
            "auth",
            crate::logging::log_request,
        ))
        .with_state(monzo)
}

/// A refusal shown to the person as a page, never as a redirect: when the
/// client or redirect URI is not trusted, redirecting would hand an attacker
/// an open redirector (RFC 6749 §4.1.2.1).
struct Refusal(&'static str);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        page::error(StatusCode::BAD_REQUEST, self.0)
    }
}

/// The parts of an authorization request that were checked against the
/// client's registration.
struct CheckedRequest {
    client: crate::ClientRegistration,
    redirect: Url,
    state: String,
}

/// Validates client, redirect URI and state, for the page and again for the
/// form post (which anyone can forge, so the page's checks do not carry over).
fn check_request(monzo: &FakeMonzo, params: &Params) -> Result<CheckedRequest, Refusal> {
    let client_id = params
        .get("client_id")
        .ok_or(Refusal("The request has no client_id."))?;
    let client = monzo
        .lock()
        .client(client_id)
        .cloned()
        .ok_or(Refusal("Unknown client."))?;
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or(Refusal("The request has no redirect_uri."))?;
    // Exact string comparison, as Monzo does: no normalisation, no prefixes.
    if redirect_uri != client.redirect_uri {
        return Err(Refusal(
            "The redirect_uri does not match the one registered for this client.",
        ));
    }
    // Appending code and state must leave a valid URL; a fragment would
    // swallow them (RFC 6749 §3.1.2 forbids fragments in redirect URIs).
    let redirect = Url::parse(redirect_uri)
        .ok()
        .filter(|url| url.fragment().is_none())
        .ok_or(Refusal(
            "The redirect_uri registered for this client is not a valid redirect URI.",
        ))?;
    // Monzo requires a state: without one the client has no CSRF protection.
    let state = params
        .get("state")
        .ok_or(Refusal("The request has no state."))?
        .to_owned();
    Ok(CheckedRequest {
        client,
        redirect,
        state,
    })
}

/// `GET /?client_id=..&redirect_uri=..&response_type=code&state=..`
async fn login_page(State(monzo): State<FakeMonzo>, RawQuery(query): RawQuery) -> Response {
    let params = match Params::parse(query.unwrap_or_default().as_bytes()) {
        Ok(params) => params,
        Err(_) => return Refusal("A parameter was given more than once.").into_response(),
    };
    let checked = match check_request(&monzo, &params) {
        Ok(checked) => checked,
        Err(refusal) => return refusal.into_response(),
    };
    // Checked after the client so that an unknown client is always reported
    // as such; either way the answer is a page, not a redirect.
    if params.get("response_type") != Some("code") {
        return Refusal("response_type must be code.").into_response();
    }
    let users = monzo.lock().users().to_vec();
    page::login(
        &checked.client,
        &users,
        &checked.client.redirect_uri,
        &checked.state,
    )
}

/// `POST /authorize` from the login page's form.
async fn authorize(State(monzo): State<FakeMonzo>, body: Bytes) -> Response {
    let params = match Params::parse(&body) {
        Ok(params) => params,
        Err(_) => return Refusal("A parameter was given more than once.").into_response(),
    };
    match decide(&monzo, &params) {
        Ok(redirect) => (
            StatusCode::FOUND,
            [
                (header::LOCATION, redirect.as_str()),
                (header::CACHE_CONTROL, "no-store"),
                (header::REFERRER_POLICY, "no-referrer"),
            ],
        )
            .into_response(),
        Err(refusal) => refusal.into_response(),
    }
}

/// What the login form's decision leads to: the redirect back to the client (with a code, or
/// `error=access_denied`), or a refusal page.
fn decide(monzo: &FakeMonzo, params: &Params) -> Result<Url, Refusal> {
    let CheckedRequest {
        client,
        mut redirect,
        state,
    } = check_request(monzo, params)?;
    match params.get("decision") {
        Some("approve") => {
            let code = {
                let mut locked = monzo.lock();
                let Some(user) = params.get("user_id").filter(|id| locked.user(id).is_some())
                else {
                    return Err(Refusal("Unknown user."));
                };
                locked.issue_code(&client.client_id, &client.redirect_uri, user)
            };
            // query_pairs_mut keeps whatever query the registered URI has.
            redirect
                .query_pairs_mut()
                .append_pair("code", &code)
                .append_pair("state", &state);
        }
        Some("deny") => {
            redirect
                .query_pairs_mut()
                .append_pair("error", "access_denied")
                .append_pair("state", &state);
        }
        _ => return Err(Refusal("decision must be approve or deny.")),
    }
    Ok(redirect)
}

impl FakeMonzo {
    /// What a person's decision at the login page `login_url` leads to, without the page or a
    /// request (for tests of the flow in process): where Monzo would redirect the browser, or
    /// why it would show a refusal page instead. The same checks as `POST /authorize`.
    pub fn decide(
        &self,
        login_url: &Url,
        user_id: &str,
        approve: bool,
    ) -> Result<Url, &'static str> {
        let mut form = form_urlencoded::Serializer::new(String::new());
        for (name, value) in login_url.query_pairs() {
            form.append_pair(&name, &value);
        }
        form.append_pair("user_id", user_id)
            .append_pair("decision", if approve { "approve" } else { "deny" });
        let params = Params::parse(form.finish().as_bytes())
            .map_err(|_| "A parameter was given more than once.")?;
        decide(self, &params).map_err(|Refusal(why)| why)
    }
}
