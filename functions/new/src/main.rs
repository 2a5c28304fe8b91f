//! monzo-auth's `new` Lambda function: builds its state once per cold start and serves its
//! routes from `shared` (see `lambda_common`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_common::run_without_secret(lambda_common::Function::New, None).await
}
