//! The client secret as KMS ciphertext (the token function's `MONZO_CLIENT_SECRET_KMS`),
//! decrypted at cold start with the encryption context `app=monzo-auth`.

use async_trait::async_trait;
use monzo_auth_domain::secret::{ClientSecretSource, SecretUnavailable};
use secrecy::SecretString;

/// The encryption context the secret is encrypted under; KMS refuses to decrypt without it.
pub const KMS_ENCRYPTION_CONTEXT: (&str, &str) = ("app", "monzo-auth");

/// The client secret as KMS ciphertext, decrypted once and then kept in memory.
///
/// A failed decrypt is not final: later calls retry, after a backoff that doubles from one
/// second up to a minute, so one KMS hiccup at cold start does not poison the instance and a
/// persistent failure does not turn every request into a KMS call.
pub struct KmsSecret {
    client: aws_sdk_kms::Client,
    ciphertext: Vec<u8>,
    state: tokio::sync::Mutex<KmsState>,
}

#[derive(Default)]
struct KmsState {
    secret: Option<SecretString>,
    failures: u32,
    retry_at: Option<tokio::time::Instant>,
}

const KMS_BACKOFF_FIRST: std::time::Duration = std::time::Duration::from_secs(1);
const KMS_BACKOFF_MAX: std::time::Duration = std::time::Duration::from_secs(60);

impl KmsSecret {
    pub fn new(client: aws_sdk_kms::Client, ciphertext: Vec<u8>) -> Self {
        Self {
            client,
            ciphertext,
            state: Default::default(),
        }
    }

    async fn decrypt(&self) -> Result<SecretString, String> {
        use aws_sdk_kms::error::ProvideErrorMetadata as _;
        let (key, value) = KMS_ENCRYPTION_CONTEXT;
        let output = self
            .client
            .decrypt()
            .ciphertext_blob(aws_sdk_kms::primitives::Blob::new(self.ciphertext.clone()))
            .encryption_context(key, value)
            .send()
            .await
            .map_err(|err| match err.as_service_error() {
                // The code names the cause (InvalidCiphertextException, AccessDeniedException...)
                // without quoting anything.
                Some(service) => service.code().unwrap_or("unknown KMS error").to_owned(),
                None => "KMS could not be reached".to_owned(),
            })?;
        let plaintext = output
            .plaintext
            .ok_or_else(|| "KMS returned no plaintext".to_owned())?
            .into_inner();
        String::from_utf8(plaintext)
            .map(SecretString::from)
            .map_err(|_| "the decrypted secret is not UTF-8".to_owned())
    }
}

#[async_trait]
impl ClientSecretSource for KmsSecret {
    async fn client_secret(&self) -> Result<SecretString, SecretUnavailable> {
        let mut state = self.state.lock().await;
        if let Some(secret) = &state.secret {
            return Ok(secret.clone());
        }
        let now = tokio::time::Instant::now();
        if state.retry_at.is_some_and(|at| now < at) {
            return Err(SecretUnavailable {
                reason: "decrypting MONZO_CLIENT_SECRET_KMS failed; waiting to retry".into(),
            });
        }
        match self.decrypt().await {
            Ok(secret) => {
                if state.failures > 0 {
                    tracing::info!("decrypted MONZO_CLIENT_SECRET_KMS after earlier failures");
                }
                state.secret = Some(secret.clone());
                state.failures = 0;
                state.retry_at = None;
                Ok(secret)
            }
            Err(reason) => {
                let backoff = KMS_BACKOFF_FIRST
                    .saturating_mul(1 << state.failures.min(6))
                    .min(KMS_BACKOFF_MAX);
                state.failures += 1;
                state.retry_at = Some(now + backoff);
                tracing::error!(
                    reason = %reason,
                    retry_in_secs = backoff.as_secs(),
                    "cannot decrypt MONZO_CLIENT_SECRET_KMS with KMS"
                );
                Err(SecretUnavailable {
                    reason: format!("decrypting MONZO_CLIENT_SECRET_KMS failed: {reason}"),
                })
            }
        }
    }
}

/// Opens `MONZO_CLIENT_SECRET_KMS` ciphertext with the KMS client `aws` configures, for
/// `shared::app::Adapters::kms`.
pub fn opener(
    aws: &aws_config::SdkConfig,
) -> impl Fn(Vec<u8>) -> monzo_auth_domain::secret::OpeningSecret + Send + Sync + 'static + use<> {
    let client = aws_sdk_kms::Client::new(aws);
    move |ciphertext| {
        let secret = KmsSecret::new(client.clone(), ciphertext);
        Box::pin(async move {
            // A failure is logged inside and retried on later calls.
            let _ = secret.client_secret().await;
            std::sync::Arc::new(secret) as std::sync::Arc<dyn ClientSecretSource>
        })
    }
}
