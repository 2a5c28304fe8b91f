//! The token a login ends with.

use std::fmt;

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
    /// When the access token expires, RFC 3339 UTC, as the service sent it.
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
