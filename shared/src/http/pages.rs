//! The HTML a person sees: the pages after Monzo's redirect, and the local landing page.
//!
//! Pages are self-contained: the style (and the demo's script) are inline and allowed by their
//! SHA-256 in the Content-Security-Policy, so there is no asset route to serve from each Lambda
//! function and no third-party resource anywhere.

use std::sync::LazyLock;

use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use sha2::{Digest as _, Sha256};

const STYLE: &str = "\
:root{color-scheme:light dark;--accent:#ff4f40}\
body{font:16px/1.5 system-ui,sans-serif;margin:0;display:flex;min-height:100vh;align-items:center;justify-content:center;background:Canvas;color:CanvasText}\
main{max-width:34rem;padding:2rem;margin:1rem;border:1px solid color-mix(in srgb,CanvasText 20%,transparent);border-radius:12px}\
h1{font-size:1.5rem;margin:0 0 .75rem}\
.ok h1{color:#1a7f37}.bad h1{color:var(--accent)}\
button,.button{font:inherit;padding:.5rem 1rem;border-radius:8px;border:0;background:var(--accent);color:#fff;cursor:pointer;text-decoration:none;display:inline-block}\
button[disabled]{opacity:.5;cursor:default}\
code{font-family:ui-monospace,monospace;word-break:break-all}\
.code{font:700 2rem/1.2 ui-monospace,monospace;letter-spacing:.15em;margin:.5rem 0 1rem}\
input{font:inherit;padding:.45rem .6rem;border-radius:8px;border:1px solid color-mix(in srgb,CanvasText 35%,transparent);text-transform:uppercase;letter-spacing:.1em;width:11ch}\
form{margin:1rem 0}\
.note{font-size:.875rem;opacity:.75}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.25rem 1rem}dt{font-weight:600}dd{margin:0}";

/// The demo page's script: start a session, link to the login, poll until the token arrives.
const DEMO_SCRIPT: &str = r#"
(() => {
  const $ = (id) => document.getElementById(id);
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const mask = (t) => t.length > 12 ? t.slice(0, 6) + "\u2026" + t.slice(-4) : "\u2026";
  const say = (text) => { $("status").textContent = text; };
  async function postForm(path, fields) {
    const response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(fields),
    });
    let body = {};
    try { body = await response.json(); } catch (_) { /* not JSON: report the status */ }
    return { status: response.status, body };
  }
  $("start").addEventListener("click", async () => {
    $("start").disabled = true;
    say("Starting a login session\u2026");
    const started = await postForm("new", {});
    if (started.status !== 200) {
      say("Could not start: " + (started.body.error_description || started.status));
      $("start").disabled = false;
      return;
    }
    $("login").href = started.body.login_url;
    $("step-login").hidden = false;
    say("Waiting for you to approve at the stand-in for Monzo\u2026");
    let interval = Math.max(1, started.body.interval || 2);
    for (;;) {
      await sleep(interval * 1000);
      const poll = await postForm("token", { id: started.body.id });
      if (poll.status === 202) { interval = Math.max(1, poll.body.interval || interval); continue; }
      if (poll.status === 200) {
        $("token").textContent = mask(poll.body.token);
        $("user").textContent = poll.body.user_id;
        $("expires").textContent = poll.body.expires;
        $("refresh").textContent = poll.body.refresh_token ? "yes (" + mask(poll.body.refresh_token) + ")" : "no";
        $("step-token").hidden = false;
        say("Done: the token arrived. Your app would have it now.");
        $("start").disabled = false;
        return;
      }
      say("The login ended: " + (poll.body.error_description || ("HTTP " + poll.status)));
      $("start").disabled = false;
      return;
    }
  });
})();
"#;

fn csp_hash(source: &str) -> String {
    format!(
        "'sha256-{}'",
        STANDARD.encode(Sha256::digest(source.as_bytes()))
    )
}

static STYLE_HASH: LazyLock<String> = LazyLock::new(|| csp_hash(STYLE));
static DEMO_SCRIPT_HASH: LazyLock<String> = LazyLock::new(|| csp_hash(DEMO_SCRIPT));
static CSP_PLAIN: LazyLock<String> = LazyLock::new(|| csp(None, None));

/// The Content-Security-Policy of a page: nothing but its own inline style (and script, by
/// hash); forms post to this origin and, where a form leads on to Monzo, to `form_action`.
fn csp(script: Option<&str>, form_action: Option<&str>) -> String {
    let scripts = match script {
        Some(_) => format!("script-src {}; connect-src 'self'; ", *DEMO_SCRIPT_HASH),
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

/// Escapes text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page. `body` is trusted HTML written in this module; anything else must go through
/// [`escape`] first.
pub struct Page {
    pub status: StatusCode,
    pub title: &'static str,
    /// `ok` or `bad`, for the heading's colour.
    pub tone: &'static str,
    pub body: String,
    pub script: Option<&'static str>,
    /// An origin the page's forms may lead to besides this one (Monzo's login).
    pub form_action: Option<String>,
}

impl Page {
    /// A page of plain text and markup from this module, without script or foreign forms.
    pub fn plain(
        status: StatusCode,
        title: &'static str,
        tone: &'static str,
        body: String,
    ) -> Self {
        Self {
            status,
            title,
            tone,
            body,
            script: None,
            form_action: None,
        }
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let script = self
            .script
            .map(|s| format!("<script>{s}</script>"))
            .unwrap_or_default();
        let html = format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <link rel=\"icon\" href=\"data:,\"><title>{title} \u{b7} monzo-auth</title>\
             <style>{STYLE}</style></head><body><main class=\"{tone}\"><h1>{title}</h1>{body}</main>\
             {script}</body></html>",
            title = escape(self.title),
            tone = self.tone,
            body = self.body,
        );
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html,
        )
            .into_response();
        let csp = csp(self.script, self.form_action.as_deref());
        browser_headers(response.headers_mut(), &csp);
        response
    }
}

/// The CSP for responses that are not pages (redirects).
pub fn plain_csp() -> &'static str {
    &CSP_PLAIN
}

pub fn logged_in() -> Page {
    Page {
        status: StatusCode::OK,
        title: "You're logged in",
        tone: "ok",
        body: "<p>Monzo has let your app in. You can close this window and go back to your app; \
               it will pick up the login on its own.</p>"
            .into(),
        script: None,
        form_action: None,
    }
}

pub fn denied() -> Page {
    Page {
        status: StatusCode::OK,
        title: "Access denied",
        tone: "bad",
        body: "<p>You declined access at Monzo, so your app gets no token. You can close this \
               window; your app will be told.</p>"
            .into(),
        script: None,
        form_action: None,
    }
}

pub fn callback_refused(reason: &'static str) -> Page {
    Page {
        status: StatusCode::BAD_REQUEST,
        title: "This login link can't be used",
        tone: "bad",
        body: format!(
            "<p>{}</p><p>Go back to your app and start the login again.</p>",
            escape(reason)
        ),
        script: None,
        form_action: None,
    }
}

pub fn unavailable() -> Page {
    Page {
        status: StatusCode::SERVICE_UNAVAILABLE,
        title: "Temporarily unavailable",
        tone: "bad",
        body: "<p>The service could not record your login just now. Reload this page in a \
               moment to try again.</p>"
            .into(),
        script: None,
        form_action: None,
    }
}

pub fn server_error() -> Page {
    Page {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        title: "Something went wrong",
        tone: "bad",
        body: "<p>The service failed unexpectedly. Go back to your app and start the login \
               again.</p>"
            .into(),
        script: None,
        form_action: None,
    }
}

/// The local server's `/`: what this is, and in demo mode a walk through the whole flow.
pub fn landing(demo: bool) -> Page {
    if !demo {
        return Page {
            status: StatusCode::OK,
            title: "monzo-auth",
            tone: "ok",
            body: "<p>This service gets Monzo tokens for desktop and command-line apps. Apps \
                   call <code>/new</code>, send you to Monzo, and poll <code>/token</code>; \
                   there is nothing to do on this page.</p>"
                .into(),
            script: None,
            form_action: None,
        };
    }
    Page {
        status: StatusCode::OK,
        title: "monzo-auth demo",
        tone: "ok",
        body: "<p>This server runs in <strong>demo mode</strong>: a built-in stand-in plays \
               Monzo, so no bank and no real account are involved. Walk the flow an app would \
               use:</p>\
               <ol><li><button id=\"start\" type=\"button\">Start a login</button></li>\
               <li id=\"step-login\" hidden><a id=\"login\" class=\"button\" target=\"_blank\" \
               rel=\"noopener noreferrer\">Log in at the stand-in for Monzo</a> \
               <span class=\"note\">(opens a new tab: approve there)</span></li>\
               <li id=\"step-token\" hidden><dl><dt>Access token</dt><dd><code id=\"token\"></code></dd>\
               <dt>User</dt><dd><code id=\"user\"></code></dd><dt>Expires</dt><dd id=\"expires\"></dd>\
               <dt>Refresh token</dt><dd id=\"refresh\"></dd></dl>\
               <p class=\"note\">Tokens are masked here. monzo-auth stores no token: it hands \
               each one to the single poll that redeems the login.</p></li></ol>\
               <p id=\"status\" role=\"status\" aria-live=\"polite\"></p>"
            .into(),
        script: Some(DEMO_SCRIPT),
        form_action: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">'&'</a>"),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
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
