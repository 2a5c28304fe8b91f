//! What a client sends that the service forwards or judges: parsed and bounded at the edge, and
//! never shown by `Debug`.

use std::fmt;

use secrecy::{ExposeSecret as _, SecretString};

/// Defines a secret a client sends, parsed at the edge: held as a [`SecretString`], so its
/// `Debug` shows nothing, and exposed only where it is sent on.
macro_rules! secret_input {
    ($(#[$doc:meta])* $name:ident, $valid:expr) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(SecretString);

        impl $name {
            /// `None` unless the text is well formed.
            pub fn parse(text: impl Into<String>) -> Option<Self> {
                let text: String = text.into();
                let valid: fn(&str) -> bool = $valid;
                valid(&text).then(|| Self(text.into()))
            }

            pub fn expose(&self) -> &str {
                self.0.expose_secret()
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(concat!(stringify!($name), "(<redacted>)"))
            }
        }
    };
}

/// Longest authorization code or refresh token accepted (Monzo's are a few hundred bytes).
pub const MAX_FORWARDED_TOKEN: usize = 4096;

fn is_forwardable(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= MAX_FORWARDED_TOKEN
        && text.bytes().all(|b| b.is_ascii_graphic())
}

secret_input!(
    /// The single-use authorization code Monzo hands the callback (any text Monzo sends, up to
    /// the bound: Monzo judges it at the exchange).
    AuthCode,
    |text| !text.is_empty() && text.len() <= MAX_FORWARDED_TOKEN
);

secret_input!(
    /// A refresh token a client sends to be refreshed at Monzo with the service's secret:
    /// bounded before it is forwarded.
    RefreshToken,
    is_forwardable
);

secret_input!(
    /// An access token a client asks the service to revoke at Monzo (RFC 7009): bounded
    /// before it is forwarded.
    AccessToken,
    is_forwardable
);

secret_input!(
    /// An RFC 7636 code verifier as sent; [`crate::session::CodeChallenge::is_met_by`] judges it (a malformed
    /// one simply does not match).
    CodeVerifier,
    |text| !text.is_empty() && text.len() <= MAX_FORWARDED_TOKEN
);

/// Longest `client_id` accepted; there is no registration, so this only bounds the input.
const MAX_CLIENT_ID_LEN: usize = 255;

/// The `client_id` a device login is started with (RFC 6749 A.1: printable ASCII). Not a
/// secret: there is no client registration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientId(String);

impl ClientId {
    pub fn parse(text: &str) -> Option<Self> {
        (!text.is_empty()
            && text.len() <= MAX_CLIENT_ID_LEN
            && text.bytes().all(|b| (0x20..=0x7e).contains(&b)))
        .then(|| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forwarded_tokens_and_client_ids_are_bounded() {
        assert!(AuthCode::parse("").is_none());
        assert!(AuthCode::parse("c".repeat(MAX_FORWARDED_TOKEN + 1)).is_none());
        assert!(RefreshToken::parse("a b").is_none());
        assert!(RefreshToken::parse("x".repeat(MAX_FORWARDED_TOKEN + 1)).is_none());
        assert!(RefreshToken::parse("x".repeat(MAX_FORWARDED_TOKEN)).is_some());
        assert!(ClientId::parse("my app").is_some());
        assert!(ClientId::parse("").is_none());
        assert!(ClientId::parse("tab\there").is_none());
        assert!(ClientId::parse(&"c".repeat(256)).is_none());
    }
}
