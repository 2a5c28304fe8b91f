//! The HTML a person sees: the pages after Monzo's redirect, `/device`'s, and the local landing
//! page.
//!
//! Each page is an askama template (`templates/`) framed by `layout.html`; askama escapes
//! every value a template shows, and that is the only escaping there is.
//!
//! Pages are self-contained: the style (and the demo's script) are files in `assets/`,
//! compiled in and placed inline as they are, and allowed by their SHA-256 in the
//! Content-Security-Policy, so there is no asset route to serve from each Lambda function and no
//! third-party resource anywhere.

use std::sync::LazyLock;

use askama::Template;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

use monzo_auth_domain::flow::{CallbackError, DeviceError, Internal};

/// Every page's style, placed in the page as it is in the file (the CSP allows it by hash).
const STYLE: &str = include_str!("../assets/style.css");

/// The demo page's script: start a session, link to the login, poll until the token arrives.
const DEMO_SCRIPT: &str = include_str!("../assets/demo.js");

/// The name of the CSRF token's field in the `/device` forms.
pub(crate) const CSRF_FIELD: &str = "csrf";

fn csp_hash(source: &str) -> String {
    format!(
        "'sha256-{}'",
        STANDARD.encode(Sha256::digest(source.as_bytes()))
    )
}

static STYLE_HASH: LazyLock<String> = LazyLock::new(|| csp_hash(STYLE));
static CSP_PLAIN: LazyLock<String> = LazyLock::new(|| csp(None, None));

/// The Content-Security-Policy of a page: nothing but its own inline style (and script, by
/// hash); forms post to this origin and, where a form leads on to Monzo, to `form_action`.
fn csp(script: Option<&str>, form_action: Option<&str>) -> String {
    let scripts = match script {
        Some(script) => format!("script-src {}; connect-src 'self'; ", csp_hash(script)),
        None => String::new(),
    };
    format!(
        "default-src 'none'; style-src {style}; {scripts}img-src data:; \
         form-action 'self'{extra}; frame-ancestors 'none'; base-uri 'none'",
        style = *STYLE_HASH,
        extra = form_action
            .map(|origin| format!(" {origin}"))
            .unwrap_or_default(),
    )
}

/// The headers every page and browser redirect carries.
pub fn browser_headers(headers: &mut HeaderMap, csp: &str) {
    let set = |headers: &mut HeaderMap, name, value: &str| {
        headers.insert(
            name,
            HeaderValue::from_str(value).expect("static header value"),
        );
    };
    set(headers, header::CONTENT_SECURITY_POLICY, csp);
    set(headers, header::REFERRER_POLICY, "no-referrer");
    set(headers, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(headers, header::X_FRAME_OPTIONS, "DENY");
    set(headers, header::CACHE_CONTROL, "no-store");
}

/// Whether a page's heading reads as good news or bad (its colour).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Ok,
    Bad,
}

impl std::fmt::Display for Tone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Tone::Ok => "ok",
            Tone::Bad => "bad",
        })
    }
}

/// The frame of every page: `main` is a page template's output, `style` and `script` the
/// assets above, exactly as the CSP hashes them. Nothing else goes in unescaped.
#[derive(Template)]
#[template(path = "layout.html")]
struct Layout<'a> {
    title: &'a str,
    /// The browser tab's: the heading, then the service's name unless it already starts with it.
    page_title: &'a str,
    tone: Tone,
    style: &'static str,
    main: &'a str,
    script: Option<&'static str>,
}

/// A whole page: a page template's output (its `<main>`) and how to frame and serve it.
pub struct Page {
    pub status: StatusCode,
    pub title: &'static str,
    pub tone: Tone,
    /// The page template's HTML: only [`Page::new`] makes one, from a template that escapes.
    main: askama::Result<String>,
    pub script: Option<&'static str>,
    /// An origin the page's forms may lead to besides this one (Monzo's login).
    pub form_action: Option<String>,
    /// Seconds for a `Retry-After` header.
    pub retry_after: Option<u64>,
}

impl Page {
    /// A page without script or foreign forms, its `<main>` rendered from `main`.
    pub fn new(status: StatusCode, title: &'static str, tone: Tone, main: &impl Template) -> Self {
        Self {
            status,
            title,
            tone,
            main: main.render(),
            script: None,
            form_action: None,
            retry_after: None,
        }
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        // Only a value's Display can fail, and the pages show text and numbers.
        let page_title = if self.title.starts_with("monzo-auth") {
            self.title.to_owned()
        } else {
            format!("{} \u{b7} monzo-auth", self.title)
        };
        let html = self.main.and_then(|main| {
            Layout {
                title: self.title,
                page_title: &page_title,
                tone: self.tone,
                style: STYLE,
                main: &main,
                script: self.script,
            }
            .render()
        });
        let html = match html {
            Ok(html) => html,
            Err(err) => {
                tracing::error!(error = %err, "a page failed to render");
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
        };
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response();
        let csp = csp(self.script, self.form_action.as_deref());
        browser_headers(response.headers_mut(), &csp);
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// The CSP for responses that are not pages (redirects).
pub fn plain_csp() -> &'static str {
    &CSP_PLAIN
}

/// Everything the pages (Monzo's redirect back, `/device`) answer besides success, each mapped to
/// a page in [`PageError::page`], the one place for this contract.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("the callback's parameters could not be read")]
    MalformedLink,
    #[error("the callback is missing its parameters")]
    MissingParameters,
    /// Monzo's redirect refused (by the flow, or a state that cannot be one).
    #[error(transparent)]
    Callback(#[from] CallbackError),
    /// A user code that leads nowhere (now).
    #[error(transparent)]
    Device(#[from] DeviceError),
    /// A `/device` form without a matching CSRF token.
    #[error("a form from elsewhere")]
    Forged,
    #[error(transparent)]
    Internal(#[from] Internal),
    /// A handler panicked (logged where it was caught).
    #[error("a handler failed")]
    ServerError,
}

impl PageError {
    /// The page that answers it. `csrf` is the `/device` form's token: a wrong code shows the
    /// entry form again.
    pub fn page(self, csrf: &str) -> Page {
        match self {
            PageError::MalformedLink => callback_refused("The link Monzo sent back was malformed."),
            PageError::MissingParameters => {
                callback_refused("The link Monzo sent back is missing its parameters.")
            }
            PageError::Callback(CallbackError::UnusableState) => {
                callback_refused("This login is unknown, has expired, or was already completed.")
            }
            PageError::Device(DeviceError::WrongCode) => device_entry(
                StatusCode::BAD_REQUEST,
                csrf,
                Some(
                    "That code is not right, or its login has ended. Check your device and try again.",
                ),
            ),
            PageError::Device(DeviceError::TooManyGuesses { retry_after_secs }) => Page {
                retry_after: Some(retry_after_secs),
                ..too_many_guesses(retry_after_secs.div_ceil(60))
            },
            PageError::Device(DeviceError::Expired) => expired(),
            PageError::Device(DeviceError::AlreadyUsed) => already_used(),
            PageError::Forged => forged(),
            PageError::Internal(cause)
            | PageError::Callback(CallbackError::Internal(cause))
            | PageError::Device(DeviceError::Internal(cause)) => {
                cause.log("a page");
                match cause {
                    Internal::Unavailable(_) => unavailable(),
                    Internal::Failed(_) => server_error(),
                }
            }
            PageError::ServerError => server_error(),
        }
    }
}

impl IntoResponse for PageError {
    /// Pages without a form (Monzo's redirect back, a panic).
    fn into_response(self) -> Response {
        self.page("").into_response()
    }
}

#[derive(Template)]
#[template(path = "logged_in.html")]
struct LoggedIn;

pub fn logged_in() -> Page {
    Page::new(StatusCode::OK, "You're logged in", Tone::Ok, &LoggedIn)
}

#[derive(Template)]
#[template(path = "not_found.html")]
struct NotFound;

/// An unknown route asked for by a browser (API clients get the JSON 404).
pub fn not_found() -> Page {
    Page::new(
        StatusCode::NOT_FOUND,
        "Page not found",
        Tone::Bad,
        &NotFound,
    )
}

#[derive(Template)]
#[template(path = "denied.html")]
struct Denied;

pub fn denied() -> Page {
    Page::new(StatusCode::OK, "Access denied", Tone::Bad, &Denied)
}

#[derive(Template)]
#[template(path = "callback_refused.html")]
struct CallbackRefused<'a> {
    reason: &'a str,
}

fn callback_refused(reason: &'static str) -> Page {
    Page::new(
        StatusCode::BAD_REQUEST,
        "This login link can't be used",
        Tone::Bad,
        &CallbackRefused { reason },
    )
}

#[derive(Template)]
#[template(path = "unavailable.html")]
struct Unavailable;

fn unavailable() -> Page {
    Page::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "Temporarily unavailable",
        Tone::Bad,
        &Unavailable,
    )
}

#[derive(Template)]
#[template(path = "server_error.html")]
struct ServerError;

fn server_error() -> Page {
    Page::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        Tone::Bad,
        &ServerError,
    )
}

#[derive(Template)]
#[template(path = "landing.html")]
struct Landing;

#[derive(Template)]
#[template(path = "landing_demo.html")]
struct LandingDemo;

/// The local server's `/`: what this is, and in demo mode a walk through the whole flow.
pub fn landing(demo: bool) -> Page {
    if !demo {
        return Page::new(StatusCode::OK, "monzo-auth", Tone::Ok, &Landing);
    }
    Page {
        script: Some(DEMO_SCRIPT),
        ..Page::new(StatusCode::OK, "monzo-auth demo", Tone::Ok, &LandingDemo)
    }
}

/// `/device`: the form to type a code, with why the last one was refused, if it was.
#[derive(Template)]
#[template(path = "device_entry.html")]
struct DeviceEntry<'a> {
    csrf: &'a str,
    problem: Option<&'a str>,
}

pub fn device_entry(status: StatusCode, csrf: &str, problem: Option<&str>) -> Page {
    Page::new(
        status,
        "Connect a device",
        Tone::Ok,
        &DeviceEntry { csrf, problem },
    )
}

/// `/device`: the code to check against the device's, and the form that goes on to Monzo.
#[derive(Template)]
#[template(path = "device_confirm.html")]
struct DeviceConfirm<'a> {
    csrf: &'a str,
    code: &'a str,
}

pub fn device_confirm(csrf: &str, code: &str) -> Page {
    Page::new(
        StatusCode::OK,
        "Is this your device's code?",
        Tone::Ok,
        &DeviceConfirm { csrf, code },
    )
}

#[derive(Template)]
#[template(path = "too_many_guesses.html")]
struct TooManyGuesses {
    minutes: u64,
}

/// The wrong-code limit is reached; `minutes` until codes are checked again.
fn too_many_guesses(minutes: u64) -> Page {
    Page::new(
        StatusCode::TOO_MANY_REQUESTS,
        "Too many wrong codes",
        Tone::Bad,
        &TooManyGuesses { minutes },
    )
}

#[derive(Template)]
#[template(path = "expired.html")]
struct Expired;

fn expired() -> Page {
    Page::new(
        StatusCode::BAD_REQUEST,
        "This login has expired",
        Tone::Bad,
        &Expired,
    )
}

#[derive(Template)]
#[template(path = "already_used.html")]
struct AlreadyUsed;

fn already_used() -> Page {
    Page::new(
        StatusCode::BAD_REQUEST,
        "This code was already used",
        Tone::Bad,
        &AlreadyUsed,
    )
}

#[derive(Template)]
#[template(path = "forged.html")]
struct Forged;

/// A `/device` form whose CSRF token does not match the visitor's cookie.
fn forged() -> Page {
    Page::new(
        StatusCode::FORBIDDEN,
        "This form cannot be used",
        Tone::Bad,
        &Forged,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn html_of(page: Page) -> (HeaderMap, String) {
        let response = page.into_response();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (headers, String::from_utf8(body.to_vec()).unwrap())
    }

    /// The text between `open` and `close` in `html`.
    fn between<'a>(html: &'a str, open: &str, close: &str) -> &'a str {
        let start = html.find(open).expect(open) + open.len();
        &html[start..start + html[start..].find(close).expect(close)]
    }

    #[tokio::test]
    async fn the_csp_hashes_exactly_the_style_and_script_in_the_page() {
        for page in [
            landing(true),
            landing(false),
            device_entry(StatusCode::OK, "t", None),
        ] {
            let (headers, html) = html_of(page).await;
            let csp = headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
            let style = between(&html, "<style>", "</style>");
            assert_eq!(style, STYLE);
            assert!(
                csp.contains(&format!("style-src {};", csp_hash(style))),
                "{csp}"
            );
            assert_eq!(
                html.matches("<script").count(),
                usize::from(csp.contains("script-src"))
            );
            if html.contains("<script>") {
                let script = between(&html, "<script>", "</script>");
                assert_eq!(script, DEMO_SCRIPT);
                assert!(
                    csp.contains(&format!("script-src {};", csp_hash(script))),
                    "{csp}"
                );
            }
        }
    }

    #[tokio::test]
    async fn every_value_a_page_shows_is_escaped() {
        let markup = "<a href=\"x\">'&'</a>";
        let escaped = "&#60;a href=&#34;x&#34;&#62;&#39;&#38;&#39;&#60;/a&#62;";
        let pages = [
            Page::new(
                StatusCode::BAD_REQUEST,
                "t",
                Tone::Bad,
                &CallbackRefused { reason: markup },
            ),
            device_entry(StatusCode::BAD_REQUEST, markup, Some(markup)),
            device_confirm(markup, markup),
        ];
        for page in pages {
            let (_, html) = html_of(page).await;
            let main = between(&html, "<main", "</main>");
            assert!(!main.contains(markup), "{main}");
            assert!(main.contains(escaped), "{main}");
        }
        let (_, html) = html_of(logged_in()).await;
        assert!(
            html.contains("<title>You&#39;re logged in \u{b7} monzo-auth</title>"),
            "{html}"
        );
    }

    #[test]
    fn csp_allows_exactly_the_inline_style_and_script() {
        assert!(CSP_PLAIN.contains(&csp_hash(STYLE)));
        assert!(!CSP_PLAIN.contains("script-src"));
        let demo = csp(Some(DEMO_SCRIPT), None);
        assert!(demo.contains(&csp_hash(DEMO_SCRIPT)));
        assert!(demo.contains("frame-ancestors 'none'"));
        assert!(!demo.contains("unsafe"));
        let device = csp(None, Some("https://auth.monzo.com"));
        assert!(
            device.contains("form-action 'self' https://auth.monzo.com;"),
            "{device}"
        );
    }
}
