//! The login session: its secrets, how they derive from one another, and its record in the store.
//!
//! Only the app ever holds the poll id. Everything the service stores derives from it one way:
//! `state = HKDF(id, "state")` (after the id's creation time) keys the table and travels in the
//! login URL (so it lands in browser histories), and `HKDF(id, "seal")` is the secret half of the
//! key pair the authorization code is sealed to. Knowing a state, or dumping the whole table,
//! yields neither the id nor a usable code.

mod id;
mod input;
mod lifecycle;
mod pkce;
mod random;
mod seal;
mod user_code;

pub use id::{PollId, State};
pub use input::{AccessToken, AuthCode, ClientId, CodeVerifier, MAX_FORWARDED_TOKEN, RefreshToken};
pub use lifecycle::{DeviceGrant, Lease, Pace, Session, Status};
pub use pkce::CodeChallenge;
pub use random::{random_bytes, random_token};
pub use seal::{SealPublicKey, SealingKey};
pub use user_code::{UserCode, UserCodeRecord};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_secrets() {
        let id = PollId::generate(0);
        let shown = format!("{:?} {:?}", id, id.state());
        assert!(!shown.contains(&id.expose()));
        assert!(!shown.contains(&id.state().as_text()));
        let secret = "s3cr3t-value";
        let shown = format!(
            "{:?} {:?} {:?}",
            AuthCode::parse(secret).unwrap(),
            RefreshToken::parse(secret).unwrap(),
            CodeVerifier::parse(secret).unwrap()
        );
        assert_eq!(
            shown,
            "AuthCode(<redacted>) RefreshToken(<redacted>) CodeVerifier(<redacted>)"
        );
    }
}
