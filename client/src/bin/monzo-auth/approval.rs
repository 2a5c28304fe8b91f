//! `--wait-for-approval`: after Monzo issues a token, its owner must still approve access in
//! the Monzo app (Strong Customer Authentication) before data endpoints answer. Until then
//! `GET /accounts` answers 403 `forbidden.insufficient_permissions`; this polls it until 200.

use std::time::Duration;

use monzo_auth_client::{Cancel, Token};
use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use crate::error::CliError;
use crate::status::Status;

/// Retries after Monzo fails stop growing here.
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// How the wait is paced and bounded.
pub struct Approval<'a> {
    pub http: &'a reqwest::Client,
    /// Monzo's `/accounts`, from [`crate::monzo::accounts_url`].
    pub accounts: &'a Url,
    pub timeout: Duration,
    pub poll: Duration,
    pub cancel: &'a Cancel,
    pub status: &'a Status,
}

/// Monzo's error shape.
#[derive(Deserialize)]
struct MonzoError {
    #[serde(default)]
    code: String,
}

/// What one look at `/accounts` found.
enum Check {
    Approved,
    NotYet,
    /// Monzo failed or could not be reached: try again, more slowly.
    Unavailable(&'static str),
}

impl Approval<'_> {
    /// Waits until `token` can read `/accounts`, the timeout passes, or the wait is cancelled.
    pub async fn wait(&self, token: &Token) -> Result<(), CliError> {
        let deadline = Instant::now() + self.timeout;
        let mut failures: u32 = 0;
        loop {
            let check = tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Err(CliError::Interrupted),
                check = self.check(self.accounts, token) => check?,
            };
            let (delay, last_problem) = match check {
                Check::Approved => return Ok(()),
                Check::NotYet => {
                    failures = 0;
                    self.status.set("Approve access in your Monzo app…");
                    (self.poll, None)
                }
                Check::Unavailable(what) => {
                    failures = failures.saturating_add(1);
                    let delay = self
                        .poll
                        .saturating_mul(1 << failures.min(8))
                        .min(BACKOFF_CAP)
                        .max(self.poll);
                    self.status.set(format!(
                        "{what}, retrying in {} s…",
                        delay.as_secs_f64().ceil()
                    ));
                    (delay, Some(what))
                }
            };
            let now = Instant::now();
            if now >= deadline {
                return Err(CliError::ApprovalTimeout {
                    timeout: self.timeout,
                    last_problem,
                });
            }
            // The last look happens at the deadline itself, not a whole interval after it.
            let wake = (now + delay).min(deadline);
            tokio::select! {
                biased;
                () = self.cancel.cancelled() => return Err(CliError::Interrupted),
                () = tokio::time::sleep_until(wake) => {}
            }
        }
    }

    async fn check(&self, accounts: &Url, token: &Token) -> Result<Check, CliError> {
        let Ok(response) = self
            .http
            .get(accounts.clone())
            .bearer_auth(&token.access_token)
            .send()
            .await
        else {
            return Ok(Check::Unavailable("Monzo unreachable"));
        };
        let status = response.status().as_u16();
        match status {
            200 => Ok(Check::Approved),
            403 => {
                let code = response
                    .json::<MonzoError>()
                    .await
                    .map(|e| e.code)
                    .unwrap_or_default();
                if code == "forbidden.insufficient_permissions" {
                    Ok(Check::NotYet)
                } else {
                    Err(CliError::Approval(
                        "Monzo refused the new token (HTTP 403)".into(),
                    ))
                }
            }
            401 => Err(CliError::Approval(
                "Monzo did not accept the new token (HTTP 401); it may have been replaced by a newer login"
                    .into(),
            )),
            429 | 500..=599 => Ok(Check::Unavailable("Monzo unavailable")),
            status => Err(CliError::Approval(format!(
                "Monzo answered HTTP {status} when checking access"
            ))),
        }
    }
}
