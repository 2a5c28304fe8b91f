//! monzo-auth's `token` Lambda function: builds its state once per cold start and serves its
//! routes from `shared` (see `lambda_common`). The only function that links KMS (it decrypts the
//! client secret) and Monzo's HTTP client (it exchanges codes).

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    lambda_common::run(
        lambda_common::Function::Token,
        Some(monzo_auth_kms::opener),
        Some(&monzo_auth_monzo_http::open_api),
        None,
    )
    .await
}
