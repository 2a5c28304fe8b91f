//! The AWS shape on moto: the three Lambda functions under `cargo lambda`, the DynamoDB store
//! against the conformance suite every store passes, and its writes under the SDK's retries.

mod lambda;
mod retries;
mod store_conformance;
