//! `/_fake/...` test-control routes on the API listener, so that tests can
//! drive a fake started as a separate process the way they drive a library
//! instance.
//!
//! Requests and answers are JSON; errors are Monzo-shaped like the rest of
//! the API.

use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::error::ApiError;
use crate::{ClientRegistration, Failure, FakeMonzo};

pub(crate) fn routes() -> Router<FakeMonzo> {
    Router::new()
        .route("/_fake/fail", post(fail))
        .route("/_fake/approve-sca", post(approve_sca))
        .route("/_fake/stats", get(stats))
        .route("/_fake/clients", post(register_client))
}

/// Parsed by hand rather than with `Json<T>` so that a bad body gets a
/// Monzo-shaped answer like every other error here.
fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    // serde's own message can quote the offending value, which may be a
    // secret, so only the position is reported.
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_json(format!(
            "Invalid JSON body ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        ))
    })
}

/// `{"count":N,"status":503}`, `{"count":N,"delay_ms":1500}`,
/// `{"count":N,"process_after_ms":1500}` or `{"count":N,"garbage":true}`; `count` defaults to 1.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FailRequest {
    #[serde(default = "one")]
    count: u32,
    status: Option<u16>,
    delay_ms: Option<u64>,
    process_after_ms: Option<u64>,
    #[serde(default)]
    garbage: bool,
}

fn one() -> u32 {
    1
}

impl FailRequest {
    fn failure(&self) -> Result<Failure, ApiError> {
        match (
            self.status,
            self.delay_ms,
            self.process_after_ms,
            self.garbage,
        ) {
            (Some(status), None, None, false) if (400..=599).contains(&status) => {
                Ok(Failure::Status(status))
            }
            (Some(_), None, None, false) => {
                Err(ApiError::bad_param("status must be within 400..=599"))
            }
            (None, Some(ms), None, false) => Ok(Failure::Delay(Duration::from_millis(ms))),
            (None, None, Some(ms), false) => Ok(Failure::ProcessLate(Duration::from_millis(ms))),
            (None, None, None, true) => Ok(Failure::Garbage),
            _ => Err(ApiError::bad_param(
                "give exactly one of status, delay_ms, process_after_ms or garbage:true",
            )),
        }
    }
}

/// `POST /_fake/fail`
async fn fail(State(monzo): State<FakeMonzo>, body: Bytes) -> Result<Response, ApiError> {
    let request: FailRequest = parse(&body)?;
    monzo.fail_next(request.count, request.failure()?);
    Ok(Json(json!({})).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveScaRequest {
    user_id: String,
}

/// `POST /_fake/approve-sca`
async fn approve_sca(State(monzo): State<FakeMonzo>, body: Bytes) -> Result<Response, ApiError> {
    let request: ApproveScaRequest = parse(&body)?;
    // A typo in a test should fail loudly rather than approve nobody.
    if monzo.lock().user(&request.user_id).is_none() {
        return Err(ApiError::unknown_user());
    }
    monzo.approve_sca(&request.user_id);
    Ok(Json(json!({})).into_response())
}

/// `GET /_fake/stats`
async fn stats(State(monzo): State<FakeMonzo>) -> impl IntoResponse {
    Json(monzo.stats())
}

/// `POST /_fake/clients` with a `ClientRegistration`.
async fn register_client(
    State(monzo): State<FakeMonzo>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let registration: ClientRegistration = parse(&body)?;
    if registration.client_id.is_empty()
        || registration.client_secret.is_empty()
        || registration.redirect_uri.is_empty()
    {
        return Err(ApiError::bad_param(
            "client_id, client_secret and redirect_uri must not be empty",
        ));
    }
    monzo.register_client(registration);
    Ok(Json(json!({})).into_response())
}
