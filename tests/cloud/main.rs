//! The AWS shape on moto: the three Lambda functions under `cargo lambda`, and the DynamoDB store
//! against the conformance suite every store passes.

mod lambda;
mod store_conformance;
