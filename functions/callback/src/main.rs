//! monzo-auth's `callback` Lambda function: builds its state once per cold start and serves its
//! routes from `shared`, and the pages (`monzo_auth_pages`), which only it and the local server link
//! (see `lambda_common`).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_common::run_without_secret(
        lambda_common::Function::Callback,
        Some(&monzo_auth_pages::PAGES),
    )
    .await
}
