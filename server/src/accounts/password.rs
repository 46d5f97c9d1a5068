//! People's passwords: argon2 PHC strings (RFC 9106), made by `deviceflow-server
//! hash-password` and checked at sign-in.
//!
//! Owns hashing, validation of configured hashes, and verification, including the
//! dummy verification that makes an unknown username cost what a wrong password costs.
//! It does not own who may sign in (`verification/sign_in.rs`) or how often
//! (`verification/rate_limit.rs`).
//!
//! Verification is CPU-bound (tens of milliseconds by design) and takes the hash's
//! memory cost (19 MiB by default): the server runs it on the hashing pool
//! (`verification/hash_pool.rs`) with [`verify_in`], never on a thread that serves
//! polls.

use argon2::password_hash::{
    Output, PasswordHash, PasswordHasher, PasswordVerifier, Salt, SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use rand::RngCore;
use subtle::ConstantTimeEq;

/// Why a configured `password_hash` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HashError {
    /// Not a PHC string.
    #[error("is not a PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash)")]
    NotPhc,
    /// Another algorithm than argon2.
    #[error("uses \"{0}\"; only argon2id, argon2i and argon2d are accepted")]
    NotArgon2(String),
    /// Argon2 parameters out of range.
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
    hash_salted(password, params, salt)
}

/// The hash of the demo user's password, the same at every start: its password is
/// printed for anyone to read, so a salt of its own hides nothing, and a hash drawn
/// anew at each start signed its sessions out at every restart, and on one Redis at
/// every other instance (a session is bound to the hash it was signed in with).
pub fn demo_hash(password: &str) -> String {
    hash_salted(password, Params::DEFAULT, *b"deviceflow demo!")
}

/// [`hash_with`] under `salt`.
fn hash_salted(password: &str, params: Params, salt: [u8; 16]) -> String {
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

/// [`verify`], hashing into `memory` instead of a fresh allocation: the caller keeps
/// one buffer and reuses it, growing it only for a costlier hash. Same result as
/// [`verify`] for every input; the outputs are compared in constant time.
pub fn verify_in(phc: &str, password: &str, memory: &mut Vec<Block>) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let Ok(version) = parsed
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    // Carries the output length of `expected`, as `verify` does.
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; Salt::MAX_LENGTH];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        // Freed before the larger one is made: never two buffers at once.
        *memory = Vec::new();
        memory.resize(blocks, Block::default());
    }
    let mut out = [0u8; Output::MAX_LENGTH];
    let out = &mut out[..expected.len()];
    let hashed = Argon2::new(algorithm, version, params).hash_password_into_with_memory(
        password.as_bytes(),
        salt,
        out,
        &mut memory[..blocks],
    );
    hashed.is_ok() && bool::from(out.ct_eq(expected.as_bytes()))
}

/// A PHC string with the same algorithm, version, cost and output length as `like`,
/// but a random salt and a random output, to verify against when the username is
/// unknown: verifying it costs what verifying `like` costs, so that answer takes as
/// long as a wrong password for a real user, and no password matches it (that would
/// take finding an argon2 preimage of random bytes). Making it costs no argon2 run.
pub fn dummy_like(like: &str) -> String {
    let fallback;
    let model = match PasswordHash::new(like) {
        Ok(model) if model.hash.is_some() => model,
        _ => {
            fallback = hash_with("", Params::DEFAULT);
            PasswordHash::new(&fallback).expect("our own hash parses")
        }
    };
    let mut rng = rand::thread_rng();
    let mut salt = [0u8; 16];
    rng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).expect("a 16-byte salt is valid");
    let mut output = [0u8; Output::MAX_LENGTH];
    let output = &mut output[..model.hash.map_or(Params::DEFAULT_OUTPUT_LEN, |h| h.len())];
    rng.fill_bytes(output);
    PasswordHash {
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(output).expect("the model's output length is valid")),
        ..model
    }
    .to_string()
}

/// What verifying `phc` costs, as one comparable line: the algorithm, its version, the
/// memory, passes and lanes, and the output length (`argon2id v=19 m=19456,t=2,p=1,
/// 32-byte output`). Two hashes that verify in the same time have the same line.
/// `None` for a string that does not parse.
pub fn cost(phc: &str) -> Option<String> {
    let parsed = PasswordHash::new(phc).ok()?;
    let params = Params::try_from(&parsed).ok()?;
    Some(format!(
        "{} v={} m={},t={},p={}, {}-byte output",
        parsed.algorithm,
        parsed.version.unwrap_or(Version::default() as u32),
        params.m_cost(),
        params.t_cost(),
        params.p_cost(),
        parsed.hash.map_or(Params::DEFAULT_OUTPUT_LEN, |h| h.len())
    ))
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
        assert_eq!(check(&dummy), Ok(()));
        assert!(!verify(&dummy, "pw"));
        assert!(!verify(&dummy, ""));
        assert_ne!(dummy, dummy_like(&real));
    }

    #[test]
    fn verifying_in_a_reused_buffer_agrees_with_verify() {
        let mut memory = Vec::new();
        let small = hash_with("correct horse", test_params());
        let large = hash_with(
            "correct horse",
            Params::new(1024, 1, 1, None).expect("valid parameters"),
        );
        for phc in [&small, &large, &small] {
            assert!(verify_in(phc, "correct horse", &mut memory));
            assert!(!verify_in(phc, "correct hors", &mut memory));
        }
        // Grown once to the larger cost, and kept.
        assert_eq!(memory.len(), 1024);
        assert!(!verify_in("not a hash", "x", &mut memory));
    }
}
