//! The token a login (or a refresh) ends with.

use std::fmt;
use std::time::{SystemTime, UNIX_EPOCH};

use monzo_auth_protocol::oauth::TokenResponse;
use monzo_auth_protocol::simple;
use serde::{Deserialize, Serialize};

/// A Monzo access token, as the service hands it over exactly once.
///
/// Serializes as
/// `{"access_token","refresh_token"?,"expires","expires_in","token_type","user_id"}`
/// (the form `monzo-auth login` prints); deserializes from that form or from the service's own
/// answer, which names the access token `token`. Its `Debug` shows neither token.
///
/// # Example
///
/// ```
/// use monzo_auth_client::Token;
///
/// let from_service = r#"{"token":"eyJ-access","expires":"2026-11-29T15:22:03Z",
///     "expires_in":21600,"token_type":"Bearer","user_id":"user_00009"}"#;
/// let token: Token = serde_json::from_str(from_service).unwrap();
/// assert_eq!(token.access_token, "eyJ-access");
/// assert_eq!(token.refresh_token, None);
/// assert!(!format!("{token:?}").contains("eyJ-access"));
///
/// let printed = serde_json::to_string(&token).unwrap();
/// assert!(printed.starts_with(r#"{"access_token":"eyJ-access","expires":"#));
/// assert_eq!(serde_json::from_str::<Token>(&printed).unwrap(), token);
/// ```
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The bearer token for Monzo's API (`Authorization: Bearer …`).
    #[serde(alias = "token")]
    pub access_token: String,
    /// Present when the service's Monzo client is confidential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// When the access token expires, RFC 3339 UTC with seconds (`2026-11-29T15:22:03Z`): as
    /// the service sent it after a login, worked out from `expires_in` after a refresh.
    pub expires: String,
    /// The access token's lifetime in seconds, as Monzo gave it.
    pub expires_in: u64,
    /// Always `Bearer` with Monzo.
    pub token_type: String,
    /// The Monzo user the token belongs to.
    pub user_id: String,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("access_token", &"<redacted>")
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires", &self.expires)
            .field("expires_in", &self.expires_in)
            .field("token_type", &self.token_type)
            .field("user_id", &self.user_id)
            .finish()
    }
}

impl Token {
    /// The token of a fresh login (a device flow's), its expiry counted from `asked`.
    pub(crate) fn issued(body: TokenResponse, asked: SystemTime) -> Self {
        Self {
            expires: expires_after(asked, body.expires_in),
            access_token: body.access_token,
            refresh_token: body.refresh_token,
            expires_in: body.expires_in,
            token_type: body.token_type,
            user_id: body.user_id,
        }
    }

    /// A refresh's token, its expiry counted from `asked` (the service does not send one), and
    /// the refresh token that was used kept if no new one came: a server that issues none
    /// leaves the old one working (RFC 6749 section 6).
    pub(crate) fn refreshed(body: TokenResponse, asked: SystemTime, used: &str) -> Self {
        let mut token = Self::issued(body, asked);
        token.refresh_token.get_or_insert_with(|| used.to_owned());
        token
    }
}

/// `/token`'s answer at the end of a login.
impl From<simple::Token> for Token {
    fn from(body: simple::Token) -> Self {
        Self {
            access_token: body.token,
            refresh_token: body.refresh_token,
            expires: body.expires,
            expires_in: body.expires_in,
            token_type: body.token_type,
            user_id: body.user_id,
        }
    }
}

/// The latest instant [`rfc3339_utc`] writes: 9999-12-31T23:59:59Z. RFC 3339 has four-digit
/// years only.
const MAX_RFC3339_SECS: u64 = 253_402_300_799;

/// `expires_in` seconds after `now`, as [`Token::expires`] writes it. `now` should be taken
/// before the request was sent, so that the time is never later than the token's real expiry.
pub(crate) fn expires_after(now: SystemTime, expires_in: u64) -> String {
    // A clock before 1970 is broken; counting from 1970 then errs on the early side.
    let now = now
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    rfc3339_utc(now.saturating_add(expires_in))
}

/// Seconds since the Unix epoch as RFC 3339 UTC (`2026-11-29T15:22:03Z`), clamped to the
/// last second of year 9999.
pub(crate) fn rfc3339_utc(unix_secs: u64) -> String {
    let secs = i64::try_from(unix_secs.min(MAX_RFC3339_SECS)).unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|at| {
            at.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        for (secs, text) in [
            (0, "1970-01-01T00:00:00Z"),
            (951_782_400, "2000-02-29T00:00:00Z"),
            (1_709_251_199, "2024-02-29T23:59:59Z"),
            (1_795_965_723, "2026-11-29T15:22:03Z"),
            // 2100 is not a leap year.
            (4_107_542_399, "2100-02-28T23:59:59Z"),
            (4_107_542_400, "2100-03-01T00:00:00Z"),
            (253_402_300_799, "9999-12-31T23:59:59Z"),
        ] {
            assert_eq!(rfc3339_utc(secs), text, "{secs}");
        }
    }

    #[test]
    fn rfc3339_never_runs_past_year_9999() {
        assert_eq!(rfc3339_utc(u64::MAX), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn expires_counts_from_now() {
        let now = UNIX_EPOCH + Duration::from_millis(1_795_944_123_900);
        // Fractions of the current second are dropped: never later than the real expiry.
        assert_eq!(expires_after(now, 21_600), "2026-11-29T15:22:03Z");
        assert_eq!(expires_after(now, 0), "2026-11-29T09:22:03Z");
        assert_eq!(expires_after(now, u64::MAX), "9999-12-31T23:59:59Z");
        assert_eq!(
            expires_after(UNIX_EPOCH - Duration::from_secs(5), 60),
            "1970-01-01T00:01:00Z"
        );
    }

    #[test]
    fn a_refreshed_token_gets_its_expiry_and_keeps_an_unrotated_refresh_token() {
        let body = |refresh: Option<&str>| -> TokenResponse {
            serde_json::from_value(serde_json::json!({
                "access_token": "new-access",
                "token_type": "Bearer",
                "expires_in": 21600,
                "refresh_token": refresh,
                "user_id": "user_00009",
            }))
            .unwrap()
        };
        let asked = std::time::UNIX_EPOCH + Duration::from_secs(1_795_944_123);
        let token = Token::refreshed(body(Some("new-refresh")), asked, "old-refresh");
        assert_eq!(token.access_token, "new-access");
        assert_eq!(token.refresh_token.as_deref(), Some("new-refresh"));
        assert_eq!(token.expires, "2026-11-29T15:22:03Z");
        assert_eq!(token.expires_in, 21600);
        assert_eq!(token.user_id, "user_00009");
        // The serialized form is the one a login gives.
        let printed = serde_json::to_value(&token).unwrap();
        let mut names: Vec<&str> = printed
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        names.sort_unstable();
        assert_eq!(
            names,
            [
                "access_token",
                "expires",
                "expires_in",
                "refresh_token",
                "token_type",
                "user_id"
            ]
        );
        let kept = Token::refreshed(body(None), asked, "old-refresh");
        assert_eq!(kept.refresh_token.as_deref(), Some("old-refresh"));
    }
}
