//! Unguessable values: authorization codes and tokens.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// 256 bits from the OS CSPRNG, well above the 128 bits RFC 6749 §10.10 asks
/// of values an attacker must not guess.
const RANDOM_BYTES: usize = 32;

/// A fresh random value, base64url without padding so that it can sit in a
/// query string or a form unescaped.
pub(crate) fn random_token() -> String {
    let mut bytes = [0u8; RANDOM_BYTES];
    // Without an OS RNG nothing here can be made safely; that only happens on
    // a broken system, where failing loudly is the right outcome.
    getrandom::fill(&mut bytes).expect("the OS random number generator failed");
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Compares a presented secret with the registered one without an early exit
/// on the first differing byte.
pub(crate) fn secrets_match(presented: &str, expected: &str) -> bool {
    use subtle::ConstantTimeEq as _;
    presented.as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_distinct_and_url_safe() {
        let a = random_token();
        let b = random_token();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        );
    }

    #[test]
    fn secrets_match_only_when_equal() {
        assert!(secrets_match("s3cret", "s3cret"));
        assert!(!secrets_match("s3cret", "s3creT"));
        assert!(!secrets_match("s3cre", "s3cret"));
        assert!(!secrets_match("", "s3cret"));
    }
}
