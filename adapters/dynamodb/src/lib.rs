//! The AWS shape's session store, and how every AWS client of the service is configured.

mod store;

pub use store::{DynamoDbStore, Item};

use std::sync::Arc;

use aws_config::SdkConfig;

/// Every AWS call (DynamoDB, KMS) gives up after this, retries included, so a slow AWS cannot eat
/// a function's time budget (template.yaml's token Timeout is worked out from it).
pub const AWS_OPERATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);
/// One attempt of an AWS call gives up after this (the SDK's standard retries try again).
pub const AWS_ATTEMPT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(1);
use shared::store::Store;

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

/// The AWS SDK's configuration from the standard variables and files, with those timeouts.
pub async fn load_aws_config() -> SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .timeout_config(aws_timeouts())
        .load()
        .await
}
