//! The simple API: `GET|POST /new` starts a login, `POST /token` polls it.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `/new`'s 200 answer. `id` is the poll secret: only the app ever sees it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewSession {
    pub id: String,
    pub login_url: String,
    pub expires_in: u64,
    pub interval: u64,
}

impl fmt::Debug for NewSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewSession")
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// What [`Pending::status`] says.
pub const AUTHORIZATION_PENDING: &str = "authorization_pending";

/// `/token`'s 202 answer while the person has not finished at Monzo (with `Retry-After`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    /// [`AUTHORIZATION_PENDING`].
    #[serde(default)]
    pub status: String,
    /// The advised polling interval in seconds (an older service may leave it out).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<u64>,
}

/// `/token`'s 200 answer, sent exactly once per login.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Token {
    /// The access token.
    pub token: String,
    /// When it expires, RFC 3339 UTC.
    pub expires: String,
    pub expires_in: u64,
    pub token_type: String,
    pub user_id: String,
    /// Present when the service's Monzo client is confidential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Token")
            .field("expires", &self.expires)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}
