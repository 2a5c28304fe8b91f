//! monzo-auth's `token` Lambda function: builds its state once per cold start and serves its
//! routes from `shared` (see `lambda_common`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_common::run(lambda_common::Function::Token).await
}
