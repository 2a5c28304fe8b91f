//! `lambda-floor`: the floor `make bench-lambda` compares the three functions with. The shape of
//! `cargo lambda new --http` (`lambda_http::run(service_fn(..))`) with the functions' lambda_http,
//! tokio and release profile, answering every event `200 {"message":"hello","method":..}`; no
//! logging, no AWS SDK, no store. Built by `make bench-lambda` only (never by `make build`).

use lambda_http::{Body, Error, Request, Response, service_fn};

async fn hello(event: Request) -> Result<Response<Body>, Error> {
    // The method is an HTTP token: nothing in it needs escaping in a JSON string.
    let body = format!(
        r#"{{"message":"hello","method":"{}"}}"#,
        event.method().as_str()
    );
    Ok(Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .header("cache-control", "no-store")
        .body(Body::Text(body))?)
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_http::run(service_fn(hello)).await
}
