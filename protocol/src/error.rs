//! The error shape both JSON contracts answer in.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An `error` code the service answers with (RFC 6749 5.2, RFC 8628 3.5, RFC 7009 2.2.1, and
/// the simple API's own). A client reads a code it does not know as [`ErrorCode::Other`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnsupportedGrantType,
    UnsupportedTokenType,
    AccessDenied,
    ExpiredToken,
    AuthorizationPending,
    SlowDown,
    NotFound,
    MethodNotAllowed,
    UpstreamUnavailable,
    TemporarilyUnavailable,
    ServerError,
    /// Any code this build does not know (only ever read, never sent).
    #[serde(other)]
    Other,
}

impl ErrorCode {
    /// The code as it is sent.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::InvalidClient => "invalid_client",
            ErrorCode::InvalidGrant => "invalid_grant",
            ErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            ErrorCode::UnsupportedTokenType => "unsupported_token_type",
            ErrorCode::AccessDenied => "access_denied",
            ErrorCode::ExpiredToken => "expired_token",
            ErrorCode::AuthorizationPending => "authorization_pending",
            ErrorCode::SlowDown => "slow_down",
            ErrorCode::NotFound => "not_found",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::UpstreamUnavailable => "upstream_unavailable",
            ErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            ErrorCode::ServerError => "server_error",
            ErrorCode::Other => "other",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every error answer: `{"error": "<code>", "error_description": "<human text>"}`. The service's
/// descriptions are fixed text; a client shows one only after cleaning it (it came over the
/// network).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorCode,
    #[serde(default)]
    pub error_description: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_sent_as_their_names_and_unknown_ones_read_as_other() {
        let codes = [
            ErrorCode::InvalidRequest,
            ErrorCode::InvalidClient,
            ErrorCode::InvalidGrant,
            ErrorCode::UnsupportedGrantType,
            ErrorCode::UnsupportedTokenType,
            ErrorCode::AccessDenied,
            ErrorCode::ExpiredToken,
            ErrorCode::AuthorizationPending,
            ErrorCode::SlowDown,
            ErrorCode::NotFound,
            ErrorCode::MethodNotAllowed,
            ErrorCode::UpstreamUnavailable,
            ErrorCode::TemporarilyUnavailable,
            ErrorCode::ServerError,
        ];
        for code in codes {
            let sent = serde_json::to_string(&code).unwrap();
            assert_eq!(sent, format!("\"{}\"", code.as_str()));
            assert_eq!(serde_json::from_str::<ErrorCode>(&sent).unwrap(), code);
        }
        let body: ErrorBody =
            serde_json::from_str(r#"{"error":"something_new","error_description":"x"}"#).unwrap();
        assert_eq!(body.error, ErrorCode::Other);
        let bare: ErrorBody = serde_json::from_str(r#"{"error":"not_found"}"#).unwrap();
        assert_eq!(bare.error_description, None);
    }
}
