//! RFC 8628 user codes: what a person types at `/device`, and the record that leads to a session.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

use super::id::State;
use super::random::random_bytes;

/// The alphabet of user codes (RFC 8628 6.1): 20 consonants, no vowels (no words), no
/// look-alikes.
const USER_CODE_ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";
const USER_CODE_LEN: usize = 8;

/// The short code a person types at `/device` (about 34.6 bits). Its `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct UserCode([u8; USER_CODE_LEN]);

impl UserCode {
    pub fn generate() -> Self {
        let mut code = [0u8; USER_CODE_LEN];
        let mut filled = 0;
        while filled < USER_CODE_LEN {
            for byte in random_bytes::<16>() {
                // Rejection sampling keeps every letter equally likely (256 = 12 * 20 + 16).
                if byte < 240 && filled < USER_CODE_LEN {
                    code[filled] = USER_CODE_ALPHABET[usize::from(byte % 20)];
                    filled += 1;
                }
            }
        }
        Self(code)
    }

    /// Reads what a person typed: any case, with or without the dash, spaces ignored.
    pub fn parse(text: &str) -> Option<Self> {
        let mut code = [0u8; USER_CODE_LEN];
        let mut len = 0;
        for c in text.chars() {
            if c == '-' || c.is_whitespace() {
                continue;
            }
            let upper = c.to_ascii_uppercase();
            if !upper.is_ascii()
                || !USER_CODE_ALPHABET.contains(&(upper as u8))
                || len == USER_CODE_LEN
            {
                return None;
            }
            code[len] = upper as u8;
            len += 1;
        }
        (len == USER_CODE_LEN).then_some(Self(code))
    }

    /// `XXXX-XXXX`, as shown to people.
    pub fn display(&self) -> String {
        let text = std::str::from_utf8(&self.0).expect("ASCII");
        format!("{}-{}", &text[..4], &text[4..])
    }

    /// The key the code is stored under: a hash, so the store holds no user code.
    pub fn store_key(&self) -> String {
        let mut hasher = Sha256::new();
        hasher.update(b"monzo-auth/user-code/v1\0");
        hasher.update(self.0);
        format!("user#{}", URL_SAFE_NO_PAD.encode(hasher.finalize()))
    }
}

impl fmt::Debug for UserCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("UserCode(<redacted>)")
    }
}

/// Which session a user code leads to, for as long as that session lives.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserCodeRecord {
    /// [`UserCode::store_key`].
    pub key: String,
    pub state: State,
    pub expires_at_ms: i64,
    pub purge_at: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_codes_read_as_people_type_them() {
        let code = UserCode::generate();
        let shown = code.display();
        assert_eq!(shown.len(), 9);
        assert_eq!(&shown[4..5], "-");
        assert!(
            shown
                .replace('-', "")
                .bytes()
                .all(|b| USER_CODE_ALPHABET.contains(&b))
        );
        for typed in [
            shown.clone(),
            shown.to_lowercase(),
            shown.replace('-', ""),
            format!(" {} ", shown.replace('-', " - ")),
        ] {
            assert_eq!(UserCode::parse(&typed), Some(code.clone()), "{typed:?}");
        }
        for bad in [
            "",
            "BCDF-GHJ",
            "BCDF-GHJKL",
            "ABCD-EFGH",
            "BCDF-GHJ1",
            "ÄCDF-GHJK",
        ] {
            assert_eq!(UserCode::parse(bad), None, "{bad:?}");
        }
        assert_eq!(
            code.store_key(),
            UserCode::parse(&shown.to_lowercase()).unwrap().store_key()
        );
        assert!(!code.store_key().contains(&shown.replace('-', "")));
        assert!(!format!("{code:?}").contains(&shown[..4]));
    }

    #[test]
    fn user_codes_use_the_whole_alphabet_evenly() {
        let mut counts = [0u32; 20];
        for _ in 0..2000 {
            for b in UserCode::generate().0 {
                counts[USER_CODE_ALPHABET.iter().position(|&a| a == b).unwrap()] += 1;
            }
        }
        // 16 000 letters, 800 expected each; a biased generator lands far outside this.
        assert!(
            counts.iter().all(|&n| (600..1000).contains(&n)),
            "{counts:?}"
        );
    }
}
