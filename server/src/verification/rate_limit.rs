//! Usernames as the guess limits (`storage/rate_limit.rs`) keep them.

use hmac::Mac;

use crate::storage::rate_limit::Subject;
use crate::storage::shared_secret::SharedSecret;

use super::csrf::Seal;

/// Usernames as the limits keep them: 64 bits of an HMAC-SHA256 keyed by the store's
/// shared secret, so that what is kept is small whatever was typed, and the same on
/// every instance of one store whatever its build or CPU (a hash whose output may
/// change with either would split one username's window across instances, each
/// allowing its own guesses).
pub struct UsernameHasher(Seal);

/// What the username windows' HMAC is for (see [`Seal::keyed`]).
const USERNAME_WINDOW: &[u8] = b"deviceflow sign-in window of a username\0";

impl UsernameHasher {
    /// A hasher keyed by the store's shared secret.
    pub fn new(secret: &SharedSecret) -> UsernameHasher {
        UsernameHasher(Seal::new(secret))
    }

    /// The subject for a username as typed.
    pub fn subject(&self, typed: &str) -> Subject {
        let mut mac = self.0.keyed(USERNAME_WINDOW);
        mac.update(typed.as_bytes());
        let digest = mac.finalize().into_bytes();
        Subject::Username(u64::from_le_bytes(
            digest[..8].try_into().expect("8 of 32 bytes"),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_username_is_kept_as_the_same_hmac_by_every_build() {
        // HMAC-SHA256(key, label || "alice"), its first 8 bytes little-endian: Python's
        // hmac module gives the same, and so must every instance of one store.
        let hasher = UsernameHasher::new(&SharedSecret::new([7; 32]));
        assert_eq!(
            hasher.subject("alice"),
            Subject::Username(0x0787_47f9_86b7_c219)
        );
        assert_ne!(hasher.subject("Alice"), hasher.subject("alice"));
        assert_ne!(
            UsernameHasher::new(&SharedSecret::new([8; 32])).subject("alice"),
            hasher.subject("alice")
        );
    }
}
