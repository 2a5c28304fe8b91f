//! `/device`: where a person enters the code their device shows (RFC 8628 3.3), confirms it
//! matches (5.4: remote phishing), and goes on to Monzo.
//!
//! Every form carries a CSRF token that must equal a `SameSite=Strict` cookie, so another site
//! can neither auto-submit a code nor send the person straight to Monzo. Wrong codes are
//! limited per address and overall (5.1); the limits live in the store, not in this process.

use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use cookie::{Cookie, SameSite};
use subtle::ConstantTimeEq as _;

use shared::http::params::{FormParams, Params, ParamsError};
use shared::http::{AppState, RequestUrls, catch_panic};

use crate::callback::page_panic;
use crate::page::{self as pages, CSRF_FIELD, Page, PageError};
use monzo_auth_domain::flow::{ClientAddr, NoPublicUrl};
use monzo_auth_domain::session::{UserCode, random_token};
use monzo_auth_domain::urls::PublicUrls;

const CSRF_COOKIE: &str = "monzo_auth_csrf";

/// `/device` and `/device/confirm`: where a person enters and confirms a user code.
pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/device", axum::routing::get(entry).post(typed))
        .route("/device/confirm", axum::routing::post(confirm))
        .layer(catch_panic(page_panic))
}

/// The request's CSRF token from its cookie, if it has a well-formed one.
fn csrf_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == CSRF_COOKIE)
        .map(|cookie| cookie.value().to_owned())
        .filter(|value| {
            value.len() == 43
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

/// The `Set-Cookie` that gives a visitor their CSRF token, `Secure` when the service is on https.
fn csrf_set_cookie(csrf: &str, https: bool) -> Option<HeaderValue> {
    let cookie = Cookie::build((CSRF_COOKIE, csrf))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .max_age(cookie::time::Duration::hours(1))
        .secure(https)
        .build();
    HeaderValue::from_str(&cookie.to_string()).ok()
}

/// Whether a posted form's token matches its cookie (a cross-site post carries no cookie).
fn csrf_ok(headers: &HeaderMap, params: &Params) -> bool {
    match (csrf_cookie(headers), params.get(CSRF_FIELD)) {
        (Some(cookie), Some(field)) => cookie.as_bytes().ct_eq(field.as_bytes()).into(),
        _ => false,
    }
}

/// What every `/device` page needs to render its forms.
struct Context {
    csrf: String,
    /// Set when the request had no token yet.
    set_cookie: Option<HeaderValue>,
    monzo_origin: String,
}

impl Context {
    fn new(flow: &AppState, headers: &HeaderMap, urls: &Result<PublicUrls, NoPublicUrl>) -> Self {
        let (csrf, set_cookie) = match csrf_cookie(headers) {
            Some(csrf) => (csrf, None),
            None => {
                let csrf = random_token::<32>();
                let https = urls.as_ref().is_ok_and(PublicUrls::is_https);
                let cookie = csrf_set_cookie(&csrf, https);
                (csrf, cookie)
            }
        };
        Self {
            csrf,
            set_cookie,
            monzo_origin: flow
                .monzo()
                .settings()
                .auth_url
                .origin()
                .ascii_serialization(),
        }
    }

    fn respond(&self, mut page: Page) -> Response {
        // The confirm form's answer is a redirect to Monzo, which form-action governs too.
        page.form_action = Some(self.monzo_origin.clone());
        let mut response = page.into_response();
        if let Some(cookie) = &self.set_cookie {
            response
                .headers_mut()
                .insert(header::SET_COOKIE, cookie.clone());
        }
        response
    }

    fn entry_page(&self) -> Response {
        self.respond(pages::device_entry(StatusCode::OK, &self.csrf, None))
    }

    fn confirm_page(&self, code: &UserCode) -> Response {
        self.respond(pages::device_confirm(&self.csrf, &code.display()))
    }

    /// A failure's page (`PageError::page`), with this request's form token and cookie.
    fn failure(&self, err: impl Into<PageError>) -> Response {
        self.respond(err.into().page(&self.csrf))
    }
}

#[derive(serde::Deserialize)]
pub(super) struct EntryQuery {
    user_code: Option<String>,
}

/// `GET /device` (to type a code) and `GET /device?user_code=…` (RFC 8628's
/// `verification_uri_complete`): either way the person sees the code before going on.
pub(crate) async fn entry(
    State(flow): State<AppState>,
    headers: HeaderMap,
    RequestUrls(urls): RequestUrls,
    addr: Option<Extension<ClientAddr>>,
    query: Result<Query<EntryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let context = Context::new(&flow, &headers, &urls);
    let typed = query
        .ok()
        .and_then(|Query(q)| q.user_code)
        .filter(|c| !c.is_empty());
    match typed {
        Some(typed) => show_code(&flow, &context, &typed, addr).await,
        None => context.entry_page(),
    }
}

/// `POST /device`: a typed code.
pub(crate) async fn typed(
    State(flow): State<AppState>,
    headers: HeaderMap,
    RequestUrls(urls): RequestUrls,
    addr: Option<Extension<ClientAddr>>,
    params: Result<FormParams, ParamsError>,
) -> Response {
    let context = Context::new(&flow, &headers, &urls);
    match checked_code(&headers, params) {
        Some(typed) => show_code(&flow, &context, &typed, addr).await,
        None => context.failure(PageError::Forged),
    }
}

/// The confirmation page for a code, or why there is none.
async fn show_code(
    flow: &AppState,
    context: &Context,
    typed: &str,
    addr: Option<Extension<ClientAddr>>,
) -> Response {
    match flow
        .find_device_session(UserCode::parse(typed), addr.map(|Extension(a)| a))
        .await
    {
        Ok((code, _)) => context.confirm_page(&code),
        Err(err) => context.failure(err),
    }
}

/// The user code a `/device` form posted, if its CSRF token matches the cookie.
fn checked_code(headers: &HeaderMap, params: Result<FormParams, ParamsError>) -> Option<String> {
    match params {
        Ok(FormParams(params)) if csrf_ok(headers, &params) => {
            Some(params.get("user_code").unwrap_or_default().to_owned())
        }
        _ => None,
    }
}

/// `POST /device/confirm`: the person confirmed the code; on to Monzo with the session's state.
pub(crate) async fn confirm(
    State(flow): State<AppState>,
    headers: HeaderMap,
    RequestUrls(urls): RequestUrls,
    addr: Option<Extension<ClientAddr>>,
    params: Result<FormParams, ParamsError>,
) -> Response {
    let context = Context::new(&flow, &headers, &urls);
    let Some(typed) = checked_code(&headers, params) else {
        return context.failure(PageError::Forged);
    };
    match flow
        .device_login_url(UserCode::parse(&typed), addr.map(|Extension(a)| a))
        .await
    {
        Ok(login_url) => {
            let mut response = Redirect::to(login_url.as_str()).into_response();
            pages::browser_headers(response.headers_mut(), pages::plain_csp());
            response
        }
        Err(err) => context.failure(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_cookies(values: &[&str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(header::COOKIE, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn the_csrf_cookie_is_read_among_others_and_must_be_a_token() {
        let token = random_token::<32>();
        assert_eq!(token.len(), 43);
        let read = |values: &[&str]| csrf_cookie(&with_cookies(values));
        assert_eq!(
            read(&[&format!("a=b; {CSRF_COOKIE}={token}; c=d")]),
            Some(token.clone())
        );
        assert_eq!(
            read(&["a=b", &format!("{CSRF_COOKIE}={token}")]),
            Some(token.clone())
        );
        assert_eq!(read(&[]), None);
        assert_eq!(read(&["a=b; broken; c"]), None);
        assert_eq!(read(&[&format!("{CSRF_COOKIE}={}", &token[1..])]), None);
        assert_eq!(read(&[&format!("{CSRF_COOKIE}={}=", &token[1..])]), None);
        assert_eq!(read(&[&format!("{CSRF_COOKIE}=\"{}\"", &token[2..])]), None);
        assert_eq!(read(&[&format!("other_{CSRF_COOKIE}={token}")]), None);
    }

    #[test]
    fn the_csrf_cookie_is_strict_http_only_for_an_hour_and_secure_on_https() {
        let header = |https| {
            csrf_set_cookie("t0k", https)
                .unwrap()
                .to_str()
                .unwrap()
                .to_owned()
        };
        assert_eq!(
            header(false),
            format!("{CSRF_COOKIE}=t0k; HttpOnly; SameSite=Strict; Path=/; Max-Age=3600")
        );
        assert_eq!(
            header(true),
            format!("{CSRF_COOKIE}=t0k; HttpOnly; SameSite=Strict; Secure; Path=/; Max-Age=3600")
        );
    }
}
