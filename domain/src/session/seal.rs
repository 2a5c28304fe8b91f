//! The key pair an authorization code is sealed to: its public half stored with the session, its
//! secret half derived from the poll id on demand.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use crypto_box::aead::OsRng;

use super::input::AuthCode;

/// The secret half of a session's sealing key pair; derived on demand, never stored.
pub struct SealingKey(pub(super) crypto_box::SecretKey);

impl SealingKey {
    /// The public half. Every login derives one, so a host that links aws-lc (feature `aws-lc`:
    /// every service binary does, for TLS) takes it from aws-lc's X25519, in under half the time
    /// of crypto_box's own (the same function: a test holds them equal).
    pub fn public_key(&self) -> SealPublicKey {
        #[cfg(feature = "aws-lc")]
        {
            use aws_lc_rs::agreement::{PrivateKey, X25519};
            let secret = secrecy::zeroize::Zeroizing::new(self.0.to_bytes());
            if let Some(public) = PrivateKey::from_private_key(&X25519, secret.as_ref())
                .ok()
                .and_then(|key| key.compute_public_key().ok())
                .and_then(|public| public.as_ref().try_into().ok())
            {
                return SealPublicKey(public);
            }
        }
        SealPublicKey(*self.0.public_key().as_bytes())
    }

    /// Opens a code sealed by [`SealPublicKey::seal`]; `None` if it was sealed to another key or
    /// tampered with.
    pub fn open(&self, sealed: &[u8]) -> Option<AuthCode> {
        let plain = self.0.unseal(sealed).ok()?;
        AuthCode::parse(String::from_utf8(plain).ok()?)
    }
}

/// The public half, stored with the session so the callback can seal the code to it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct SealPublicKey(pub [u8; 32]);

impl SealPublicKey {
    /// Seals the authorization code (a libsodium-compatible sealed box).
    pub fn seal(&self, code: &AuthCode) -> Vec<u8> {
        crypto_box::PublicKey::from(self.0)
            .seal(&mut OsRng, code.expose().as_bytes())
            .expect("sealing to a valid X25519 key cannot fail")
    }
}

impl fmt::Debug for SealPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealPublicKey({})", URL_SAFE_NO_PAD.encode(self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::PollId;

    #[test]
    fn the_public_half_is_crypto_boxs_own() {
        // RFC 7748 6.1: Alice's key pair.
        let secret: [u8; 32] =
            hex::decode("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
                .unwrap()
                .try_into()
                .unwrap();
        let alice = SealingKey(crypto_box::SecretKey::from(secret));
        assert_eq!(
            hex::encode(alice.public_key().0),
            "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
        );
        for _ in 0..64 {
            let key = PollId::generate(0).sealing_key();
            assert_eq!(key.public_key().0, *key.0.public_key().as_bytes());
        }
    }
}
