//! The AWS shape's session store, and how every AWS client of the service is configured.

mod store;

pub use store::{DynamoDbStore, Item};

use std::sync::Arc;

use aws_config::SdkConfig;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnectorSettings, SharedHttpClient, SharedHttpConnector,
};
use aws_smithy_runtime_api::client::runtime_components::{
    RuntimeComponents, RuntimeComponentsBuilder,
};
use aws_smithy_types::config_bag::ConfigBag;

/// Every AWS call (DynamoDB, KMS) gives up after this, retries included, so a slow AWS cannot eat
/// a function's time budget (template.yaml's token Timeout is worked out from it).
pub const AWS_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// One attempt of an AWS call gives up after this (the SDK's standard retries try again).
pub const AWS_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
use monzo_auth_domain::store::Store;

/// The service's timeouts for an AWS SDK configuration: every AWS call (DynamoDB, KMS) gives up
/// after [`AWS_OPERATION_TIMEOUT`], retries included, so a slow AWS cannot eat a function's time
/// budget.
pub fn aws_timeouts() -> aws_config::timeout::TimeoutConfig {
    aws_config::timeout::TimeoutConfig::builder()
        .operation_timeout(AWS_OPERATION_TIMEOUT)
        .operation_attempt_timeout(AWS_ATTEMPT_TIMEOUT)
        .build()
}

/// `STORE=dynamodb:TABLE` for `shared::app::Adapters::dynamodb`, with the client `aws` configures.
pub fn opener(aws: &SdkConfig) -> impl Fn(&str) -> Arc<dyn Store> + Send + Sync + 'static + use<> {
    let client = aws_sdk_dynamodb::Client::new(aws);
    move |table| Arc::new(DynamoDbStore::new(client.clone(), table)) as Arc<dyn Store>
}

/// Where the AWS credentials come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credentials {
    /// The SDK's default chain (variables, profiles, web identity, containers, instance
    /// metadata): the local server's.
    DefaultChain,
    /// The standard variables only, which Lambda always sets for a function's role. Building the
    /// default chain builds a metadata client, whose HTTPS connector parses the whole CA bundle
    /// once more: about a third of a cold function's CPU.
    Environment,
}

/// The AWS SDK's configuration from the standard variables and files, with those timeouts, and
/// an HTTPS client that trusts the system's CA bundle (see `system_ca_bundle`).
pub async fn load_aws_config(credentials: Credentials) -> SdkConfig {
    let mut loader =
        aws_config::defaults(aws_config::BehaviorVersion::latest()).timeout_config(aws_timeouts());
    if credentials == Credentials::Environment {
        loader = loader.credentials_provider(
            aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
        );
    }
    if let Some(bundle) = system_ca_bundle() {
        use aws_smithy_http_client::tls;
        let trust = tls::TrustStore::empty()
            .with_native_roots(false)
            .with_pem_certificate(bundle.into_bytes());
        if let Ok(context) = tls::TlsContext::builder().with_trust_store(trust).build() {
            let https = aws_smithy_http_client::Builder::new()
                .tls_provider(tls::Provider::Rustls(
                    tls::rustls_provider::CryptoMode::AwsLc,
                ))
                .tls_context(context)
                .build_https();
            loader = loader.http_client(BuiltOnFirstUse(https));
        }
    }
    loader.load().await
}

/// The SDK's HTTPS client, with its connector built when the first call needs it and only then.
/// The SDK's own client also builds one, to throw it away, for every AWS client made from the
/// configuration (DynamoDB; KMS too in the token function), and each build parses the whole CA
/// bundle: a cold function parsed it three or four times. Every client of a function shares one
/// configuration, so they share one connector (cached by its timeouts).
#[derive(Debug)]
struct BuiltOnFirstUse(SharedHttpClient);

impl HttpClient for BuiltOnFirstUse {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        self.0.http_connector(settings, components)
    }

    /// The SDK's check only builds a connector early (its certificates are checked in
    /// `trusted_certificates`).
    fn validate_base_client_config(
        &self,
        _: &RuntimeComponentsBuilder,
        _: &ConfigBag,
    ) -> Result<(), BoxError> {
        Ok(())
    }

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.0.connector_metadata()
    }
}

/// Where systems keep all their trusted CAs in one PEM file: Amazon Linux (Lambda's
/// `provided.al2023`) and Fedora, then Debian, Ubuntu and Alpine.
const CA_BUNDLES: &[&str] = &[
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/certs/ca-certificates.crt",
];

/// The system's CA bundle, unless `SSL_CERT_FILE` or `SSL_CERT_DIR` choose otherwise (the SDK's
/// default then honours them). Left to itself, the SDK reads the bundle *and* every file of the
/// certificate directory (147 here) at each cold start: most of a function's init. Only the
/// certificates a root store accepts are kept, so the SDK's own parse of the same text cannot
/// fail (it panics on one it cannot read); no usable bundle leaves the SDK's default in place.
fn system_ca_bundle() -> Option<String> {
    if std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some() {
        return None;
    }
    CA_BUNDLES
        .iter()
        .find_map(|path| std::fs::read_to_string(path).ok())
        .and_then(|pem| trusted_certificates(&pem))
}

/// The PEM certificates of `pem` that a root store takes, or `None` if there are none. The
/// base64 is decoded with the `base64` crate, not rustls' constant-time decoder: these are
/// public certificates, and the constant-time parse of a system bundle cost more CPU than the
/// rest of a cold request (the SDK parses what is kept once more, when it builds its
/// connector).
fn trusted_certificates(pem: &str) -> Option<String> {
    use base64::Engine as _;
    use rustls_pki_types::CertificateDer;
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut kept = String::new();
    let mut roots = rustls::RootCertStore::empty();
    let mut der = Vec::new();
    let mut text = Vec::new();
    let mut rest = pem;
    while let Some(start) = rest.find(BEGIN) {
        let Some(len) = rest[start..].find(END) else {
            break;
        };
        let block = &rest[start..start + len + END.len()];
        rest = &rest[start + len + END.len()..];
        text.clear();
        text.extend(
            block[BEGIN.len()..len]
                .bytes()
                .filter(|b| !b.is_ascii_whitespace()),
        );
        der.clear();
        let accepted = base64::engine::general_purpose::STANDARD
            .decode_vec(&text, &mut der)
            .is_ok()
            && roots.add(CertificateDer::from(der.as_slice())).is_ok();
        if accepted {
            kept.push_str(block);
            kept.push('\n');
        }
    }
    (!roots.is_empty()).then_some(kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_certificates_a_root_store_takes_are_kept() {
        assert_eq!(trusted_certificates(""), None);
        assert_eq!(
            trusted_certificates("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
            None,
            "not a certificate"
        );
        // Debian's bundle (the machines this runs on have one).
        let system = CA_BUNDLES
            .iter()
            .find_map(|path| std::fs::read_to_string(path).ok())
            .expect("a system CA bundle");
        let kept = trusted_certificates(&format!(
            "junk\n-----BEGIN CERTIFICATE-----\nnot*base64\n-----END CERTIFICATE-----\n{system}"
        ))
        .expect("the system bundle has roots");
        assert!(!kept.contains("not*base64") && !kept.contains("junk"));
        assert!(kept.matches("BEGIN CERTIFICATE").count() > 10);
    }
}
