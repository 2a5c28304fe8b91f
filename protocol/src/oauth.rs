//! The standard OAuth face: RFC 8628's device authorization, RFC 6749's token answer (device code
//! and refresh grants), RFC 8414's metadata.

use std::fmt;

use serde::{Deserialize, Serialize};

/// RFC 8628 3.4's grant type.
pub const DEVICE_CODE_GRANT: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// RFC 6749 6's grant type.
pub const REFRESH_TOKEN_GRANT: &str = "refresh_token";

/// `POST /device/code`'s 200 answer (RFC 8628 3.2). `device_code` is the poll secret.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeviceAuthorization {
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: String,
    pub expires_in: u64,
    pub interval: u64,
}

impl fmt::Debug for DeviceAuthorization {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceAuthorization")
            .field("verification_uri", &self.verification_uri)
            .field("expires_in", &self.expires_in)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

/// `POST /oauth/token`'s 200 answer (RFC 6749 5.1): Monzo's, less its `client_id`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenResponse {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
    /// Present when the service's Monzo client is confidential.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    pub user_id: String,
}

impl fmt::Debug for TokenResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("expires_in", &self.expires_in)
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// `GET /.well-known/oauth-authorization-server` (RFC 8414 2). A member an older service leaves
/// out reads as empty.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Metadata {
    pub issuer: String,
    pub device_authorization_endpoint: String,
    pub token_endpoint: String,
    pub revocation_endpoint: String,
    pub grant_types_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
    pub revocation_endpoint_auth_methods_supported: Vec<String>,
    /// Where to use the tokens: Monzo's API (not an RFC 8414 member; `monzo-auth status` reads
    /// it).
    pub monzo_api_url: Option<String>,
    /// RFC 8414 requires the member; there is no authorization endpoint here (the login happens
    /// at Monzo), so it supports no response type.
    pub response_types_supported: Vec<String>,
}
