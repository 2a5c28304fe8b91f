//! Monzo's API as the CLI calls it (`/accounts` for the approval check, `/ping/whoami` for
//! `status`).

use std::time::Duration;

use url::Url;

use crate::error::CliError;

/// Monzo's API, for a service that does not say where its tokens are used.
pub const MONZO_API: &str = "https://api.monzo.com";

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
