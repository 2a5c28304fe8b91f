//! A client of one monzo-auth service: its endpoints and HTTP client. What it asks is in
//! [`crate::login`] (`/new`, `/token`), [`crate::refresh`] (`/oauth/token`, `/oauth/revoke`, the
//! metadata) and [`crate::device`] (RFC 8628); how it reads the answers in [`crate::answers`].

use std::fmt;
use std::time::Duration;

use url::Url;

use crate::Error;
use crate::error::root_cause;

/// How long to wait for a TCP (and TLS) connection to the service.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest one request may take. The service answers at once, except a redeeming poll or
/// a refresh, which wait for Monzo (its own timeout is 10 s by default); past this the
/// request counts as failed and is retried.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A client of one monzo-auth service.
///
/// Cheap to clone (the HTTP connection pool is shared).
///
/// # Example
///
/// ```no_run
/// use monzo_auth_client::{Client, Url};
///
/// # async fn example() -> Result<(), monzo_auth_client::Error> {
/// // An API Gateway stage works too; the trailing slash is optional.
/// let service = Url::parse("https://abc123.execute-api.eu-west-2.amazonaws.com").unwrap();
/// let client = Client::new(service)?;
/// let login = client.start_login().await?;
/// eprintln!("Open {}", login.login_url());
/// let token = client.wait(&login).await?;
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Client {
    pub(crate) http: reqwest::Client,
    /// The service's base URL (with a trailing slash).
    base: Url,
    pub(crate) new_url: Url,
    pub(crate) token_url: Url,
    pub(crate) refresh_url: Url,
    pub(crate) revoke_url: Url,
    pub(crate) metadata_url: Url,
    /// The service URL without credentials, for messages.
    pub(crate) service_label: String,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("service", &self.service_label)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for the service at `service`, its base URL (e.g. `http://127.0.0.1:3000/` or
    /// `https://abc123.execute-api.eu-west-2.amazonaws.com/`). `new`, `token` and
    /// `oauth/token` are resolved under it, keeping any path prefix; a trailing slash is added if it is missing.
    ///
    /// Uses its own HTTP client with connect and request timeouts and no redirects (a redirect
    /// would turn a POST into a GET that carries no form).
    ///
    /// # Errors
    ///
    /// [`Error::InvalidServiceUrl`] unless `service` is an http(s) URL without query or
    /// fragment; [`Error::Setup`] if no HTTP client can be built (TLS setup).
    ///
    /// ```
    /// use monzo_auth_client::{Client, Error, Url};
    ///
    /// assert!(Client::new(Url::parse("http://127.0.0.1:3000").unwrap()).is_ok());
    /// assert!(matches!(
    ///     Client::new(Url::parse("ftp://example.com/").unwrap()),
    ///     Err(Error::InvalidServiceUrl { .. })
    /// ));
    /// ```
    pub fn new(service: Url) -> Result<Self, Error> {
        let http = reqwest::Client::builder()
            .user_agent(concat!("monzo-auth-client/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(REQUEST_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|_| Error::Setup {
                what: "set up an HTTP client",
            })?;
        Self::with_http(service, http)
    }

    /// Like [`Client::new`], with an HTTP client of the caller's (proxies, extra root
    /// certificates, other timeouts). It should not follow redirects.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidServiceUrl`] as for [`Client::new`].
    ///
    /// ```
    /// use monzo_auth_client::{Client, Url};
    ///
    /// let http = reqwest::Client::builder()
    ///     .redirect(reqwest::redirect::Policy::none())
    ///     .build()
    ///     .unwrap();
    /// let client = Client::with_http(Url::parse("http://127.0.0.1:3000/").unwrap(), http);
    /// assert!(client.is_ok());
    /// ```
    pub fn with_http(service: Url, http: reqwest::Client) -> Result<Self, Error> {
        let base = service_base(service)?;
        let join = |path| {
            base.join(path).map_err(|_| Error::InvalidServiceUrl {
                reason: "it cannot be a base for relative paths",
            })
        };
        Ok(Self {
            new_url: join("new")?,
            token_url: join("token")?,
            refresh_url: join("oauth/token")?,
            revoke_url: join("oauth/revoke")?,
            metadata_url: join(".well-known/oauth-authorization-server")?,
            service_label: label(&base),
            base,
            http,
        })
    }

    /// `path` under the service's base URL.
    pub(crate) fn url(&self, path: &str) -> Url {
        self.base
            .join(path)
            .expect("a relative path joins onto the checked base")
    }

    pub(crate) fn unreachable(&self, error: &reqwest::Error) -> Error {
        Error::Unreachable {
            service: self.service_label.clone(),
            cause: root_cause(error),
        }
    }
}

/// Checks the service URL and makes it a base for `join`: without a trailing slash, `join`
/// would replace the last path segment (`/Prod` + `new` = `/new`).
fn service_base(mut service: Url) -> Result<Url, Error> {
    if !matches!(service.scheme(), "http" | "https") {
        return Err(Error::InvalidServiceUrl {
            reason: "it must be an http or https URL",
        });
    }
    if service.query().is_some() || service.fragment().is_some() {
        return Err(Error::InvalidServiceUrl {
            reason: "it must not have a query or a fragment",
        });
    }
    if !service.path().ends_with('/') {
        let path = format!("{}/", service.path());
        service.set_path(&path);
    }
    Ok(service)
}

/// The URL without user name and password, for messages.
fn label(url: &Url) -> String {
    let mut url = url.clone();
    // Both fail only for URLs that cannot have credentials, which then have none to hide.
    let _ = url.set_username("");
    let _ = url.set_password(None);
    url.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    fn endpoints(service: &str) -> (String, String) {
        let client = Client::new(Url::parse(service).unwrap()).unwrap();
        (client.new_url.to_string(), client.token_url.to_string())
    }

    #[test]
    fn endpoints_keep_the_path_prefix_with_or_without_a_trailing_slash() {
        assert_eq!(
            endpoints("http://127.0.0.1:3000/"),
            (
                "http://127.0.0.1:3000/new".into(),
                "http://127.0.0.1:3000/token".into()
            )
        );
        assert_eq!(
            endpoints("http://127.0.0.1:3000"),
            (
                "http://127.0.0.1:3000/new".into(),
                "http://127.0.0.1:3000/token".into()
            )
        );
        for base in ["https://x.example/Prod", "https://x.example/Prod/"] {
            assert_eq!(
                endpoints(base),
                (
                    "https://x.example/Prod/new".into(),
                    "https://x.example/Prod/token".into()
                )
            );
        }
    }

    #[test]
    fn refresh_goes_to_oauth_token_under_the_path_prefix() {
        for (base, refresh) in [
            ("http://127.0.0.1:3000", "http://127.0.0.1:3000/oauth/token"),
            (
                "https://x.example/Prod",
                "https://x.example/Prod/oauth/token",
            ),
            (
                "https://x.example/Prod/",
                "https://x.example/Prod/oauth/token",
            ),
        ] {
            let client = Client::new(Url::parse(base).unwrap()).unwrap();
            assert_eq!(client.refresh_url.as_str(), refresh);
        }
    }

    #[test]
    fn unusable_service_urls_are_refused() {
        for bad in [
            "ftp://x.example/",
            "file:///tmp/x",
            "mailto:a@b.example",
            "https://x.example/?a=b",
            "https://x.example/#f",
        ] {
            assert!(
                matches!(
                    Client::new(Url::parse(bad).unwrap()),
                    Err(Error::InvalidServiceUrl { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn messages_name_the_service_without_credentials() {
        let client = Client::new(Url::parse("https://me:pw@x.example/Prod").unwrap()).unwrap();
        assert_eq!(client.service_label, "https://x.example/Prod/");
        assert!(!format!("{client:?}").contains("pw"));
    }
}
