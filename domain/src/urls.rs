//! The service's public URLs, worked out in one place: its base (device-flow links, metadata,
//! whether cookies are `Secure`) and its `/callback` (the redirect URI Monzo knows).
//!
//! Each is configured (`PUBLIC_BASE_URL`, `RETURN_URL`; the local server defaults `RETURN_URL`
//! to its listener) or, on Lambda, derived per request from API Gateway's request context
//! ([`RequestBase`]).

use url::Url;

/// The service's public base URL (ending in `/`) as the host worked it out for this request: a
/// Lambda function derives it from API Gateway's request context and inserts it into the
/// request's extensions.
#[derive(Clone, Debug)]
pub struct RequestBase(pub Url);

/// Where the service is, for one request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicUrls {
    base: Url,
    callback: Url,
}

impl PublicUrls {
    /// The base URL, ending in `/`.
    pub fn base(&self) -> &Url {
        &self.base
    }

    /// The `/callback` URL: the redirect URI of every login started now.
    pub fn callback(&self) -> &Url {
        &self.callback
    }

    /// A route under the base (`device`, `oauth/token`, ...).
    pub fn at(&self, path: &str) -> Url {
        self.base.join(path).unwrap_or_else(|_| self.base.clone())
    }

    pub fn is_https(&self) -> bool {
        self.base.scheme() == "https"
    }
}

/// Works out [`PublicUrls`] from what is configured and what the host derived.
#[derive(Clone, Debug)]
pub struct UrlResolver {
    base: Option<Url>,
    callback: Option<Url>,
}

impl UrlResolver {
    /// `return_url`: `RETURN_URL` (or the local server's default); `public_base`:
    /// `PUBLIC_BASE_URL`, by default `return_url` without its last segment (an API Gateway stage
    /// stays).
    pub fn new(return_url: Option<Url>, public_base: Option<Url>) -> Self {
        let base = match public_base {
            Some(base) => Some(with_trailing_slash(base)),
            None => return_url.as_ref().and_then(|url| url.join(".").ok()),
        };
        Self {
            base,
            callback: return_url,
        }
    }

    /// The URLs for a request: each configured one, else derived from `derived`. `None` when
    /// neither says (a misconfiguration: only Lambda derives, and it always can).
    pub fn resolve(&self, derived: Option<&RequestBase>) -> Option<PublicUrls> {
        let derived = derived.map(|RequestBase(base)| with_trailing_slash(base.clone()));
        let base = self.base.clone().or_else(|| derived.clone())?;
        let callback = match &self.callback {
            Some(configured) => configured.clone(),
            None => derived?.join("callback").ok()?,
        };
        Some(PublicUrls { base, callback })
    }

    /// The redirect URI to exchange a session's code with: the one it recorded at its start (a
    /// session from an older version may have none: then the configured one).
    pub fn redirect_uri_of(&self, recorded: Option<&str>) -> Option<String> {
        recorded
            .map(str::to_owned)
            .or_else(|| self.callback.as_ref().map(Url::to_string))
    }

    /// The configured URLs, whose host names the local server answers to.
    pub fn configured(&self) -> impl Iterator<Item = &Url> {
        self.callback.iter().chain(self.base.iter())
    }
}

fn with_trailing_slash(url: Url) -> Url {
    if url.path().ends_with('/') {
        url
    } else {
        Url::parse(&format!("{url}/")).unwrap_or(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        text.parse().unwrap()
    }

    #[test]
    fn configured_urls_win_and_the_base_follows_return_url() {
        let resolver = UrlResolver::new(Some(url("https://a.example/Prod/callback")), None);
        let urls = resolver
            .resolve(Some(&RequestBase(url("https://other.example/"))))
            .unwrap();
        assert_eq!(urls.base().as_str(), "https://a.example/Prod/");
        assert_eq!(urls.callback().as_str(), "https://a.example/Prod/callback");
        assert_eq!(urls.at("device").as_str(), "https://a.example/Prod/device");
        assert!(urls.is_https());
    }

    #[test]
    fn public_base_url_gets_its_slash_and_return_url_stays_as_registered() {
        let resolver = UrlResolver::new(
            Some(url("http://127.0.0.1:3000/callback")),
            Some(url("https://auth.example/monzo")),
        );
        let urls = resolver.resolve(None).unwrap();
        assert_eq!(urls.base().as_str(), "https://auth.example/monzo/");
        assert_eq!(urls.callback().as_str(), "http://127.0.0.1:3000/callback");
        assert_eq!(resolver.configured().count(), 2);
    }

    #[test]
    fn lambda_derives_both_per_request() {
        let resolver = UrlResolver::new(None, None);
        assert_eq!(resolver.resolve(None), None);
        let urls = resolver
            .resolve(Some(&RequestBase(url(
                "https://x.execute-api.example/Prod",
            ))))
            .unwrap();
        assert_eq!(urls.base().as_str(), "https://x.execute-api.example/Prod/");
        assert_eq!(
            urls.callback().as_str(),
            "https://x.execute-api.example/Prod/callback"
        );
        assert_eq!(resolver.redirect_uri_of(None), None);
        assert_eq!(
            resolver
                .redirect_uri_of(Some("https://r/callback"))
                .as_deref(),
            Some("https://r/callback")
        );
    }
}
