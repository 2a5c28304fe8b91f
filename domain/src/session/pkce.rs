//! RFC 7636: a session bound to a code challenge is redeemed only with its verifier.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::input::CodeVerifier;

/// Length of a 32-byte token (a code challenge) as unpadded base64url text.
const TOKEN_TEXT_LEN: usize = 43;

fn decode_token(text: &str) -> Option<[u8; 32]> {
    if text.len() != TOKEN_TEXT_LEN {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
    bytes.try_into().ok()
}

/// An RFC 7636 S256 code challenge: base64url(SHA-256(verifier)), 43 characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    pub fn parse(text: &str) -> Option<Self> {
        decode_token(text).map(|_| Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `verifier` (RFC 7636: 43 to 128 unreserved characters) hashes to this challenge.
    pub fn is_met_by(&self, verifier: &CodeVerifier) -> bool {
        let verifier = verifier.expose();
        let well_formed = (43..=128).contains(&verifier.len())
            && verifier
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
        if !well_formed {
            return false;
        }
        let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
        computed.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_challenge_checks_the_verifier() {
        // RFC 7636 appendix B.
        let verifier_text = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge =
            CodeChallenge::parse("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM").unwrap();
        let verifier = |text: &str| CodeVerifier::parse(text).unwrap();
        assert!(challenge.is_met_by(&verifier(verifier_text)));
        assert!(!challenge.is_met_by(&verifier("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj")));
        assert!(!challenge.is_met_by(&verifier("short")));
        assert!(CodeChallenge::parse("plain-text-challenge").is_none());
    }
}
