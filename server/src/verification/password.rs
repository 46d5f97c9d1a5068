//! People's passwords: argon2 PHC strings (RFC 9106), made by `deviceflow-server
//! hash-password` and checked at sign-in.
//!
//! Owns hashing, validation of configured hashes, and verification, including the
//! dummy verification that makes an unknown username cost what a wrong password costs.
//! It does not own who may sign in (`sign_in.rs`) or how often (`rate_limit.rs`).
//!
//! Verification is CPU-bound (tens of milliseconds by design): callers run it on
//! tokio's blocking pool, never on a worker thread that serves polls.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use rand::RngCore;

/// Why a configured `password_hash` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    #[error("is not a PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash)")]
    NotPhc,
    #[error("uses \"{0}\"; only argon2id, argon2i and argon2d are accepted")]
    NotArgon2(String),
    #[error("has invalid argon2 parameters: {0}")]
    BadParams(String),
}

/// Hashes `password` with argon2id and the argon2 crate's default cost (19 MiB, 2
/// passes, 1 lane: the OWASP minimum for argon2id), under a fresh 128-bit salt.
pub fn hash(password: &str) -> String {
    hash_with(password, Params::DEFAULT)
}

/// Hashes `password` with argon2id and the given cost. Tests use a small cost; a
/// deployment uses [`hash`].
pub fn hash_with(password: &str, params: Params) -> String {
    let mut salt = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut salt);
    // 16 bytes always fit a salt, and argon2id with valid `Params` cannot fail on them.
    let salt = SaltString::encode_b64(&salt).expect("a 16-byte salt is valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2id with valid parameters does not fail")
        .to_string()
}

/// Checks that `phc` is an argon2 PHC string that [`verify`] can use.
pub fn check(phc: &str) -> Result<(), HashError> {
    let parsed = PasswordHash::new(phc).map_err(|_| HashError::NotPhc)?;
    if Algorithm::new(parsed.algorithm.as_str()).is_err() {
        return Err(HashError::NotArgon2(parsed.algorithm.as_str().to_owned()));
    }
    Params::try_from(&parsed).map_err(|e| HashError::BadParams(e.to_string()))?;
    if parsed.salt.is_none() || parsed.hash.is_none() {
        return Err(HashError::NotPhc);
    }
    Ok(())
}

/// Whether `password` matches the PHC string `phc`. The argon2 output is compared in
/// constant time (`password_hash::Output`'s equality). A string that does not parse
/// never matches.
pub fn verify(phc: &str, password: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// A hash of a random password with the same algorithm and cost as `like`, to verify
/// against when the username is unknown, so that answer takes as long as a wrong
/// password for a real user.
pub fn dummy_like(like: &str) -> String {
    let params = PasswordHash::new(like)
        .ok()
        .and_then(|p| Params::try_from(&p).ok())
        .unwrap_or(Params::DEFAULT);
    let mut random = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut random);
    let password: String = random.iter().map(|b| format!("{b:02x}")).collect();
    hash_with(&password, params)
}

/// The smallest argon2id cost, for tests only: verifying takes microseconds.
pub fn test_params() -> Params {
    Params::new(Params::MIN_M_COST.max(64), 1, 1, None).expect("valid parameters")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_and_nothing_else() {
        let phc = hash_with("correct horse", test_params());
        assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
        assert_eq!(check(&phc), Ok(()));
        assert!(verify(&phc, "correct horse"));
        assert!(!verify(&phc, "correct hors"));
        assert!(!verify(&phc, ""));
        // Salted: the same password hashes differently.
        assert_ne!(phc, hash_with("correct horse", test_params()));
    }

    #[test]
    fn hashes_that_are_not_argon2_phc_strings_are_refused() {
        assert_eq!(check("hunter2"), Err(HashError::NotPhc));
        assert!(matches!(
            check("$pbkdf2-sha256$i=1000$c2FsdHNhbHQ$aGFzaGhhc2hoYXNo"),
            Err(HashError::NotArgon2(_))
        ));
        assert!(matches!(
            check("$argon2id$v=19$m=1,t=1,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"),
            Err(HashError::BadParams(_))
        ));
        assert!(!verify("not a hash", "x"));
    }

    #[test]
    fn the_dummy_hash_has_the_cost_of_the_real_one() {
        let real = hash_with("pw", test_params());
        let dummy = dummy_like(&real);
        let params = |s: &str| s.split('$').nth(3).map(str::to_owned);
        assert_eq!(params(&real), params(&dummy));
        assert!(!verify(&dummy, "pw"));
    }
}
