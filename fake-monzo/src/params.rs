//! Parsing of `application/x-www-form-urlencoded` data (query strings and
//! form bodies) shared by both sides.

use std::collections::HashMap;

/// A parameter appeared twice. RFC 6749 §3.1 and §3.2 say request parameters
/// must not be repeated; refusing avoids guessing which copy counts.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct DuplicateParam;

pub(crate) struct Params(HashMap<String, String>);

impl Params {
    pub(crate) fn parse(input: &[u8]) -> Result<Self, DuplicateParam> {
        let mut map = HashMap::new();
        for (name, value) in form_urlencoded::parse(input) {
            if map.insert(name.into_owned(), value.into_owned()).is_some() {
                return Err(DuplicateParam);
            }
        }
        Ok(Self(map))
    }

    /// The value if present and non-empty: an empty value counts as missing,
    /// as it does at Monzo.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_and_treats_empty_as_missing() {
        let params = Params::parse(b"a=1+2&b=&c=%2Fx").unwrap();
        assert_eq!(params.get("a"), Some("1 2"));
        assert_eq!(params.get("b"), None);
        assert_eq!(params.get("c"), Some("/x"));
        assert_eq!(params.get("d"), None);
    }

    #[test]
    fn refuses_repeated_parameters() {
        assert!(Params::parse(b"a=1&a=2").is_err());
    }
}
