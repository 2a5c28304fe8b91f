//! How the client reads the service's answers: an error answer becomes an [`Error`] only when
//! both its status and its code are the contract's ([`ErrorCode`], shared with the service), so
//! a proxy's 403 or 404 is never mistaken for the service's.

use std::time::Duration;

use monzo_auth_protocol::{ErrorBody, ErrorCode};
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::Error;
use crate::error::sanitize_description;

/// A final error answer of `/oauth/token` (RFC 6749 section 5.2), matched on status and code
/// like [`contract_error`]. A 404 is a service without refresh, not an unknown session.
pub(crate) fn refresh_error(status: u16, body: Option<ErrorBody>) -> Error {
    use ErrorCode as E;
    match (status, body.as_ref().map(|body| body.error)) {
        (400, Some(E::InvalidGrant)) => Error::InvalidGrant,
        (403, Some(E::AccessDenied)) => Error::Denied,
        (400 | 413 | 415, Some(E::InvalidRequest)) | (400, Some(E::UnsupportedGrantType)) => {
            invalid_request(body.as_ref())
        }
        _ => Error::UnexpectedResponse { status },
    }
}

/// A final error answer of the contract, matched on status *and* error code, so that a proxy's
/// 403 or 404 (with some other body) is not mistaken for the service's.
pub(crate) fn contract_error(status: u16, body: Option<ErrorBody>) -> Error {
    use ErrorCode as E;
    match (status, body.as_ref().map(|body| body.error)) {
        (403, Some(E::AccessDenied)) => Error::Denied,
        (410, Some(E::ExpiredToken)) => Error::Expired,
        (404, Some(E::NotFound)) => Error::NotFound,
        (400, Some(E::InvalidGrant)) => Error::InvalidGrant,
        (400 | 413 | 415, Some(E::InvalidRequest)) => invalid_request(body.as_ref()),
        _ => Error::UnexpectedResponse { status },
    }
}

/// `invalid_request`, with the service's description cleaned for a terminal.
fn invalid_request(body: Option<&ErrorBody>) -> Error {
    Error::InvalidRequest {
        description: sanitize_description(
            body.and_then(|body| body.error_description.as_deref())
                .unwrap_or(""),
        ),
    }
}

/// `Retry-After` in its delta-seconds form (the only one the service sends).
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
        .map(Duration::from_secs)
}

#[cfg(test)]
mod tests {
    use super::*;
    /// An error body as the service would send it (an unknown code reads as `Other`).
    fn body(code: &str, description: Option<&str>) -> Option<ErrorBody> {
        serde_json::from_value(
            serde_json::json!({ "error": code, "error_description": description }),
        )
        .ok()
    }

    #[test]
    fn refresh_errors_follow_rfc_6749() {
        assert!(matches!(
            refresh_error(400, body("invalid_grant", Some("used"))),
            Error::InvalidGrant
        ));
        assert!(matches!(
            refresh_error(403, body("access_denied", None)),
            Error::Denied
        ));
        for code in ["invalid_request", "unsupported_grant_type"] {
            match refresh_error(400, body(code, Some("refresh_token is missing"))) {
                Error::InvalidRequest { description } => {
                    assert_eq!(description, "refresh_token is missing")
                }
                other => panic!("{code}: {other}"),
            }
        }
        // A service without /oauth/token, a proxy, or a code out of place.
        for (status, code) in [
            (404, "not_found"),
            (405, "method_not_allowed"),
            (403, "forbidden"),
            (400, "expired_token"),
            (401, "invalid_client"),
        ] {
            assert!(
                matches!(
                    refresh_error(status, body(code, None)),
                    Error::UnexpectedResponse { status: s } if s == status
                ),
                "{status} {code}"
            );
        }
        assert!(matches!(
            refresh_error(400, None),
            Error::UnexpectedResponse { status: 400 }
        ));
    }

    #[test]
    fn contract_errors_need_the_right_status_and_code() {
        assert!(matches!(
            contract_error(403, body("access_denied", None)),
            Error::Denied
        ));
        assert!(matches!(
            contract_error(410, body("expired_token", None)),
            Error::Expired
        ));
        assert!(matches!(
            contract_error(404, body("not_found", None)),
            Error::NotFound
        ));
        assert!(matches!(
            contract_error(400, body("invalid_grant", None)),
            Error::InvalidGrant
        ));
        match contract_error(400, body("invalid_request", Some("id is missing\u{7}"))) {
            Error::InvalidRequest { description } => assert_eq!(description, "id is missing"),
            other => panic!("{other}"),
        }
        // A proxy's answers are not the service's.
        assert!(matches!(
            contract_error(403, None),
            Error::UnexpectedResponse { status: 403 }
        ));
        assert!(matches!(
            contract_error(404, body("NotFound", None)),
            Error::UnexpectedResponse { status: 404 }
        ));
        assert!(matches!(
            contract_error(418, body("access_denied", None)),
            Error::UnexpectedResponse { status: 418 }
        ));
    }

    #[test]
    fn retry_after_reads_delta_seconds_only() {
        let mut headers = HeaderMap::new();
        assert_eq!(retry_after(&headers), None);
        headers.insert(RETRY_AFTER, "5".parse().unwrap());
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(5)));
        headers.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers), None);
    }
}
