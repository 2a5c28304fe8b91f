//! The Monzo client secret: where it comes from, and keeping it out of sight.
//!
//! The local server reads it in plaintext from the environment; on Lambda it arrives as KMS
//! ciphertext and is decrypted at cold start. Either way the rest of the service only asks a
//! [`ClientSecretSource`] for it when it is about to talk to Monzo.

use std::sync::Arc;

use async_trait::async_trait;
use secrecy::SecretString;

/// The secret cannot be had right now (for example KMS failed); a retry later may succeed.
#[derive(Debug, thiserror::Error)]
#[error("the client secret is not available: {reason}")]
pub struct SecretUnavailable {
    /// Why, without any secret material.
    pub reason: String,
}

#[async_trait]
pub trait ClientSecretSource: Send + Sync + 'static {
    async fn client_secret(&self) -> Result<SecretString, SecretUnavailable>;
}

/// A secret known up front (the local server's `MONZO_CLIENT_SECRET`).
pub struct PlainSecret(SecretString);

impl PlainSecret {
    pub fn new(secret: SecretString) -> Self {
        Self(secret)
    }
}

#[async_trait]
impl ClientSecretSource for PlainSecret {
    async fn client_secret(&self) -> Result<SecretString, SecretUnavailable> {
        Ok(self.0.clone())
    }
}

/// Refuses: for the functions that never talk to Monzo's token endpoint (`new`, `callback`),
/// which are given no secret at all.
pub struct NoSecret;

#[async_trait]
impl ClientSecretSource for NoSecret {
    async fn client_secret(&self) -> Result<SecretString, SecretUnavailable> {
        Err(SecretUnavailable {
            reason: "this function holds no client secret".into(),
        })
    }
}

/// A secret being opened (a KMS decrypt, tried once at a cold start; see `shared::app::OpenKms`).
pub type OpeningSecret =
    std::pin::Pin<Box<dyn std::future::Future<Output = Arc<dyn ClientSecretSource>> + Send>>;
