//! HTML for the auth side: the login page and error pages.
//!
//! Every page is self-contained (inline style, no scripts, no third-party
//! resources) and every echoed value is HTML-escaped, so the strict headers
//! below can be applied to all of them.

use axum::http::{HeaderName, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use crate::{ClientRegistration, FakeUser};

/// Headers for every auth-side page. The CSP forbids scripts and any
/// third-party load, only lets forms post back to the fake (and, on the login page, redirect
/// on to the client's origin), and forbids
/// framing (clickjacking of the Approve button). `no-referrer` keeps the
/// login URL, which carries the state, from leaking; `no-store` keeps it out
/// of caches.
pub(crate) const PAGE_HEADERS: [(HeaderName, &str); 4] = [
    (
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
    ),
    (header::REFERRER_POLICY, "no-referrer"),
    (header::CACHE_CONTROL, "no-store"),
    (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
];

const STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:32rem;margin:2rem auto;\
padding:0 1rem;color:#14233c}.banner{background:#fff3cd;border:1px solid #e0c36a;\
padding:.75rem;border-radius:.5rem}button{font-size:1rem;padding:.5rem 1.25rem;margin-right:.5rem}\
#approve{background:#14233c;color:#fff;border:0;border-radius:.5rem}\
#deny{background:#fff;border:1px solid #14233c;border-radius:.5rem}code{word-break:break-all}";

const BANNER: &str = "<p class=\"banner\"><strong>This is Fake Monzo, a stand-in for testing and \
demonstrations.</strong> It is not a real bank and not Monzo: no real account, money or personal \
data is involved.</p>";

/// Escapes text for use in element content and in double- or single-quoted
/// attribute values.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

fn document(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{BANNER}\n{body}\n</body>\n</html>\n",
        title = escape(title),
    )
}

/// The login and consent page: pick a user, then approve or deny.
pub(crate) fn login(
    client: &ClientRegistration,
    users: &[FakeUser],
    redirect_uri: &str,
    state: &str,
) -> Response {
    let options: String = users
        .iter()
        .enumerate()
        .map(|(i, user)| {
            format!(
                "<option value=\"{id}\"{selected}>{name} ({id})</option>",
                id = escape(&user.user_id),
                name = escape(&user.name),
                selected = if i == 0 { " selected" } else { "" },
            )
        })
        .collect();
    let body = format!(
        "<h1>Fake Monzo</h1>\n\
         <p>The application <code>{client_id}</code> asks to access your (fake) Monzo account.\n\
         After you decide you will be sent back to <code>{redirect}</code>.</p>\n\
         <form method=\"post\" action=\"/authorize\">\n\
         <input type=\"hidden\" name=\"client_id\" value=\"{client_id}\">\n\
         <input type=\"hidden\" name=\"redirect_uri\" value=\"{redirect}\">\n\
         <input type=\"hidden\" name=\"state\" value=\"{state}\">\n\
         <p><label for=\"user_id\">Log in as</label>\n\
         <select id=\"user_id\" name=\"user_id\">{options}</select></p>\n\
         <p><button id=\"approve\" name=\"decision\" value=\"approve\">Approve</button>\n\
         <button id=\"deny\" name=\"decision\" value=\"deny\">Deny</button></p>\n\
         </form>",
        client_id = escape(&client.client_id),
        redirect = escape(redirect_uri),
        state = escape(state),
    );
    let mut response = (
        StatusCode::OK,
        PAGE_HEADERS,
        Html(document("Fake Monzo", &body)),
    )
        .into_response();
    // Browsers apply form-action to the redirect that follows the form post too, so the
    // client's origin must be allowed or the person would never get back to the app.
    let origin = url::Url::parse(redirect_uri)
        .map(|url| url.origin().ascii_serialization())
        .unwrap_or_default();
    let csp = format!(
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {origin}; frame-ancestors 'none'"
    );
    if let Ok(value) = axum::http::HeaderValue::from_str(&csp) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}

/// An error page. Used instead of redirecting whenever the client or the
/// redirect URI cannot be trusted (RFC 6749 §4.1.2.1), and for anything else
/// a person can only fix by starting over.
pub(crate) fn error(status: StatusCode, message: &str) -> Response {
    let body = format!(
        "<h1>Fake Monzo: this request cannot be completed</h1>\n<p>{}</p>",
        escape(message)
    );
    (
        status,
        PAGE_HEADERS,
        Html(document("Fake Monzo - error", &body)),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
        assert_eq!(escape("plain"), "plain");
    }
}
