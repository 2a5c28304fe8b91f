//! The wire contract between a monzo-auth service and its clients, written once for both sides:
//! the service serializes these types, the client (`monzo-auth-client`) deserializes them.
//!
//! - [`ErrorCode`] and [`ErrorBody`]: every error answer, `{"error", "error_description"}`
//! - [`simple`]: `/new` and `/token`, the service's own API
//! - [`oauth`]: RFC 8628's device authorization, RFC 6749's token answer, RFC 8414 metadata
//!
//! Bodies that carry a token have a `Debug` that shows none of it.

mod error;
pub mod oauth;
pub mod simple;

pub use error::{ErrorBody, ErrorCode};

#[cfg(test)]
mod tests {
    use super::oauth::{DeviceAuthorization, TokenResponse};
    use super::simple::{NewSession, Token};

    #[test]
    fn debug_shows_no_secret_a_body_carries() {
        let secret = "s3cr3t";
        let shown = format!(
            "{:?} {:?} {:?} {:?}",
            NewSession {
                id: secret.into(),
                login_url: format!("https://auth.example/?state={secret}"),
                expires_in: 600,
                interval: 2,
            },
            Token {
                token: secret.into(),
                expires: "2026-11-29T15:22:03Z".into(),
                expires_in: 21600,
                token_type: "Bearer".into(),
                user_id: "user_1".into(),
                refresh_token: Some(secret.into()),
            },
            DeviceAuthorization {
                device_code: secret.into(),
                user_code: secret.into(),
                verification_uri: "https://svc.example/device".into(),
                verification_uri_complete: format!("https://svc.example/device?user_code={secret}"),
                expires_in: 600,
                interval: 5,
            },
            TokenResponse {
                access_token: secret.into(),
                token_type: "Bearer".into(),
                expires_in: 21600,
                refresh_token: Some(secret.into()),
                user_id: "user_1".into(),
            },
        );
        assert!(!shown.contains(secret), "{shown}");
        assert!(
            shown.contains("user_1") && shown.contains("21600"),
            "{shown}"
        );
    }
}
