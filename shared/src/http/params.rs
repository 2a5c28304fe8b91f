//! Request parameters from a query string, a form body or a JSON object, whichever the client
//! sent: the original service's clients use `GET /token?id=..`, OAuth-minded ones POST a form,
//! others POST JSON. Repeated parameters are refused (RFC 6749 3.1), sizes are bounded.

use std::collections::HashMap;

use axum::body::to_bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{Method, header};

/// Largest body or query string accepted; every legitimate request is far smaller.
pub const MAX_PARAMS_BYTES: usize = 16 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ParamsError {
    #[error(
        "the body must be application/x-www-form-urlencoded (or, where accepted, application/json)"
    )]
    UnsupportedContentType,
    #[error("the request is too large")]
    TooLarge,
    #[error("the body did not arrive in time")]
    TooSlow,
    #[error("the parameters could not be read: {0}")]
    Malformed(&'static str),
    #[error("a parameter is repeated")]
    Repeated,
}

impl axum::response::IntoResponse for ParamsError {
    fn into_response(self) -> axum::response::Response {
        super::error::ApiError::from(self).into_response()
    }
}

/// Parameters by name; each name at most once. Its `Debug` shows the names only: the values
/// are ids, codes, verifiers and tokens.
#[derive(Default)]
pub struct Params(HashMap<String, String>);

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut names: Vec<&str> = self.0.keys().map(String::as_str).collect();
        names.sort_unstable();
        f.debug_tuple("Params").field(&names).finish()
    }
}

impl Params {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Like [`Params::get`], but an empty value counts as absent.
    pub fn non_empty(&self, name: &str) -> Option<&str> {
        self.get(name).filter(|value| !value.is_empty())
    }

    pub fn from_urlencoded(bytes: &[u8]) -> Result<Self, ParamsError> {
        if bytes.len() > MAX_PARAMS_BYTES {
            return Err(ParamsError::TooLarge);
        }
        let mut params = HashMap::new();
        for (name, value) in form_urlencoded::parse(bytes) {
            if params
                .insert(name.into_owned(), value.into_owned())
                .is_some()
            {
                return Err(ParamsError::Repeated);
            }
        }
        Ok(Self(params))
    }

    fn from_json(bytes: &[u8]) -> Result<Self, ParamsError> {
        let object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(bytes)
            .map_err(|_| ParamsError::Malformed("the body is not a JSON object"))?;
        let mut params = HashMap::with_capacity(object.len());
        for (name, value) in object {
            let value = match value {
                serde_json::Value::String(text) => text,
                serde_json::Value::Null => continue,
                _ => return Err(ParamsError::Malformed("JSON values must be strings")),
            };
            params.insert(name, value);
        }
        Ok(Self(params))
    }
}

/// How long a request body may take to arrive once its head has (the local server puts this in
/// every request's extensions; on Lambda the body has arrived with the event).
#[derive(Clone, Copy, Debug)]
pub struct BodyReadTimeout(pub std::time::Duration);

/// Parameters from a form body only, as RFC 6749 and RFC 8628 endpoints take them.
#[derive(Debug)]
pub struct FormParams(pub Params);

impl<S: Send + Sync> FromRequest<S> for FormParams {
    type Rejection = ParamsError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_form = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.split(';').next())
            .is_some_and(|essence| {
                essence
                    .trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        if !is_form || *req.method() != Method::POST {
            return Err(ParamsError::UnsupportedContentType);
        }
        Params::from_request(req, state).await.map(FormParams)
    }
}

impl<S: Send + Sync> FromRequest<S> for Params {
    type Rejection = ParamsError;

    async fn from_request(req: Request, _state: &S) -> Result<Self, Self::Rejection> {
        if matches!(*req.method(), Method::GET | Method::HEAD) {
            return Self::from_urlencoded(req.uri().query().unwrap_or("").as_bytes());
        }
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .map(|value| value.to_str().map(|s| s.to_ascii_lowercase()));
        let essence = match &content_type {
            None => None,
            Some(Ok(value)) => Some(value.split(';').next().unwrap_or("").trim().to_owned()),
            Some(Err(_)) => return Err(ParamsError::UnsupportedContentType),
        };
        // A declared length over the limit is refused before anything is read.
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if declared.is_some_and(|length| length > MAX_PARAMS_BYTES as u64) {
            return Err(ParamsError::TooLarge);
        }
        let timeout = req.extensions().get::<BodyReadTimeout>().map(|t| t.0);
        let read = to_bytes(req.into_body(), MAX_PARAMS_BYTES);
        let body = match timeout {
            Some(limit) => tokio::time::timeout(limit, read)
                .await
                .map_err(|_| ParamsError::TooSlow)?,
            None => read.await,
        }
        .map_err(|_| ParamsError::TooLarge)?;
        match essence.as_deref() {
            // No Content-Type: an empty body is simply "no parameters"; curl-style bodies sent
            // without a type are read as a form, as the original service's clients expect.
            None | Some("application/x-www-form-urlencoded") => Self::from_urlencoded(&body),
            Some("application/json") if body.is_empty() => Ok(Self::default()),
            Some("application/json") => Self::from_json(&body),
            Some(_) => Err(ParamsError::UnsupportedContentType),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::body::Body;

    async fn parse(req: Request) -> Result<Params, ParamsError> {
        Params::from_request(req, &()).await
    }

    fn post(content_type: Option<&str>, body: &str) -> Request {
        let mut builder = Request::builder().method("POST").uri("/token");
        if let Some(ct) = content_type {
            builder = builder.header("content-type", ct);
        }
        builder.body(Body::from(body.to_owned())).unwrap()
    }

    #[tokio::test]
    async fn reads_query_form_and_json() {
        let get = Request::builder()
            .uri("/token?id=abc&x=")
            .body(Body::empty())
            .unwrap();
        let params = parse(get).await.unwrap();
        assert_eq!(params.get("id"), Some("abc"));
        assert_eq!(params.non_empty("x"), None);

        let form = parse(post(
            Some("application/x-www-form-urlencoded; charset=UTF-8"),
            "id=a%2Bb",
        ))
        .await;
        assert_eq!(form.unwrap().get("id"), Some("a+b"));

        let json = parse(post(
            Some("application/json"),
            r#"{"id":"abc","code_verifier":null}"#,
        ))
        .await;
        assert_eq!(json.unwrap().get("id"), Some("abc"));

        let bare = parse(post(None, "")).await.unwrap();
        assert_eq!(bare.get("id"), None);
    }

    #[test]
    fn debug_shows_the_names_and_never_the_values() {
        let params = Params::from_urlencoded(b"id=s3cret-id&code_verifier=s3cret-v").unwrap();
        assert_eq!(format!("{params:?}"), r#"Params(["code_verifier", "id"])"#);
        let form = FormParams(params);
        assert!(!format!("{form:?}").contains("s3cret"));
    }

    #[tokio::test]
    async fn refuses_what_it_cannot_read() {
        assert!(matches!(
            parse(post(Some("text/plain"), "id=a")).await,
            Err(ParamsError::UnsupportedContentType)
        ));
        assert!(matches!(
            parse(post(Some("application/json"), "[1]")).await,
            Err(ParamsError::Malformed(_))
        ));
        assert!(matches!(
            parse(post(Some("application/json"), r#"{"id":1}"#)).await,
            Err(ParamsError::Malformed(_))
        ));
        assert!(matches!(
            parse(post(None, "id=a&id=b")).await,
            Err(ParamsError::Repeated)
        ));
        let big = format!("id={}", "a".repeat(MAX_PARAMS_BYTES));
        assert!(matches!(
            parse(post(None, &big)).await,
            Err(ParamsError::TooLarge)
        ));
    }
}
