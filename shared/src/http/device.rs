//! `/device`: where a person enters the code their device shows (RFC 8628 3.3), confirms it
//! matches (5.4: remote phishing), and goes on to Monzo.
//!
//! Every form carries a CSRF token that must equal a `SameSite=Strict` cookie, so another site
//! can neither auto-submit a code nor send the person straight to Monzo. Wrong codes are
//! limited per address and overall (5.1); the limits live in the store, not in this process.

use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use subtle::ConstantTimeEq as _;

use super::pages::{self, CSRF_FIELD, Page};
use super::params::{FormParams, Params, ParamsError};
use super::{AppState, RequestBase};
use crate::flow::{ClientAddr, DeviceError};
use crate::session::{UserCode, random_token};

const CSRF_COOKIE: &str = "monzo_auth_csrf";

/// The request's CSRF token from its cookie, if it has a well-formed one.
fn csrf_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == CSRF_COOKIE)
        .map(|(_, value)| value.to_owned())
        .filter(|value| {
            value.len() == 43
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
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
    fn new(flow: &AppState, headers: &HeaderMap, derived: Option<&RequestBase>) -> Self {
        let (csrf, set_cookie) = match csrf_cookie(headers) {
            Some(csrf) => (csrf, None),
            None => {
                let csrf = random_token::<32>();
                let https = flow
                    .public_base(derived.map(|base| &base.0))
                    .is_some_and(|base| base.scheme() == "https");
                let cookie = format!(
                    "{CSRF_COOKIE}={csrf}; Path=/; HttpOnly; SameSite=Strict; Max-Age=3600{}",
                    if https { "; Secure" } else { "" }
                );
                (csrf, HeaderValue::from_str(&cookie).ok())
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

    fn entry_page(&self, status: StatusCode, problem: Option<&str>) -> Response {
        self.respond(pages::device_entry(status, &self.csrf, problem))
    }

    fn confirm_page(&self, code: &UserCode) -> Response {
        self.respond(pages::device_confirm(&self.csrf, &code.display()))
    }

    /// The one place where `/device` failures become pages.
    fn failure(&self, err: DeviceError) -> Response {
        match err {
            DeviceError::WrongCode => self.entry_page(
                StatusCode::BAD_REQUEST,
                Some("That code is not right, or its login has ended. Check your device and try again."),
            ),
            DeviceError::TooManyGuesses { retry_after_secs } => {
                let mut response =
                    self.respond(pages::too_many_guesses(retry_after_secs.div_ceil(60)));
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                response
            }
            DeviceError::Expired => self.respond(pages::expired()),
            DeviceError::AlreadyUsed => self.respond(pages::already_used()),
            DeviceError::NoReturnUrl => {
                tracing::error!("no return URL for a device session");
                pages::unavailable().into_response()
            }
            DeviceError::Store(err) => {
                tracing::error!(error = %super::error::ErrorChain(&err), "/device could not reach the session store");
                pages::unavailable().into_response()
            }
        }
    }

    fn forged(&self) -> Response {
        self.respond(pages::forged())
    }
}

#[derive(serde::Deserialize)]
pub(super) struct EntryQuery {
    user_code: Option<String>,
}

/// `GET /device` (to type a code) and `GET /device?user_code=…` (RFC 8628's
/// `verification_uri_complete`): either way the person sees the code before going on.
pub(super) async fn entry(
    State(flow): State<AppState>,
    headers: HeaderMap,
    derived: Option<Extension<RequestBase>>,
    addr: Option<Extension<ClientAddr>>,
    query: Result<Query<EntryQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let context = Context::new(&flow, &headers, derived.as_deref());
    let typed = query
        .ok()
        .and_then(|Query(q)| q.user_code)
        .filter(|c| !c.is_empty());
    match typed {
        Some(typed) => show_code(&flow, &context, &typed, addr).await,
        None => context.entry_page(StatusCode::OK, None),
    }
}

/// `POST /device`: a typed code.
pub(super) async fn typed(
    State(flow): State<AppState>,
    headers: HeaderMap,
    derived: Option<Extension<RequestBase>>,
    addr: Option<Extension<ClientAddr>>,
    params: Result<FormParams, ParamsError>,
) -> Response {
    let context = Context::new(&flow, &headers, derived.as_deref());
    match checked_code(&headers, params) {
        Some(typed) => show_code(&flow, &context, &typed, addr).await,
        None => context.forged(),
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
        .find_device_session(typed, addr.map(|Extension(a)| a))
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
pub(super) async fn confirm(
    State(flow): State<AppState>,
    headers: HeaderMap,
    derived: Option<Extension<RequestBase>>,
    addr: Option<Extension<ClientAddr>>,
    params: Result<FormParams, ParamsError>,
) -> Response {
    let context = Context::new(&flow, &headers, derived.as_deref());
    let Some(typed) = checked_code(&headers, params) else {
        return context.forged();
    };
    match flow
        .device_login_url(&typed, addr.map(|Extension(a)| a))
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
