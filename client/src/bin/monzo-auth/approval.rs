//! `--wait-for-approval`: after Monzo issues a token, its owner must still approve access in
//! the Monzo app (Strong Customer Authentication) before data endpoints answer. Until then
//! `GET /accounts` answers 403 `forbidden.insufficient_permissions`; this polls it until 200.

use std::time::Duration;

use monzo_auth_client::{Cancel, Token};
use serde::Deserialize;
use tokio::time::Instant;
use url::Url;

use crate::cli::CliError;
use crate::status::Status;

/// Retries after Monzo fails stop growing here.
const BACKOFF_CAP: Duration = Duration::from_secs(30);

/// How the wait is paced and bounded.
pub struct Approval<'a> {
    pub http: &'a reqwest::Client,
    /// Monzo's `/accounts`, from [`accounts_url`].
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

/// A client for Monzo's API (`/accounts`, `/ping/whoami`): bounded, never following a redirect.
pub fn monzo_http() -> Result<reqwest::Client, CliError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .map_err(|_| CliError::Runtime("cannot set up an HTTP client".into()))
}

/// Monzo's `/accounts` under `api`. Checked before the login starts: a bad URL found only
/// once the token is here would throw the token away.
pub fn accounts_url(api: &Url) -> Result<Url, CliError> {
    let unusable = || CliError::Usage("--monzo-api-url: it must be an http or https URL".into());
    if !matches!(api.scheme(), "http" | "https") {
        return Err(unusable());
    }
    api_base(api).join("accounts").map_err(|_| unusable())
}

/// `api` as a base to join Monzo's paths to: `join` replaces the last path segment of a base
/// without a trailing slash.
pub fn api_base(api: &Url) -> Url {
    let mut base = api.clone();
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accounts_is_found_under_any_api_base() {
        for (api, accounts) in [
            ("https://api.monzo.com", "https://api.monzo.com/accounts"),
            ("https://api.monzo.com/", "https://api.monzo.com/accounts"),
            (
                "http://127.0.0.1:9/monzo",
                "http://127.0.0.1:9/monzo/accounts",
            ),
        ] {
            let url = accounts_url(&Url::parse(api).unwrap()).unwrap();
            assert_eq!(url.as_str(), accounts);
        }
        assert!(accounts_url(&Url::parse("ftp://api.monzo.com/").unwrap()).is_err());
    }
}
