//! Opaque tokens (RFC 6749 §1.4, §1.5) and the secrets given with a registration: 32
//! bytes from a CSPRNG, in base64url without padding (43 characters).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;

const TOKEN_BYTES: usize = 32;

/// A token's 32 random bytes: what the store keys it by.
pub(crate) type TokenKey = [u8; TOKEN_BYTES];

/// A new token: its key and its wire form.
pub(crate) fn new_token() -> (TokenKey, String) {
    let mut key = [0u8; TOKEN_BYTES];
    rand::thread_rng().fill_bytes(&mut key);
    (key, URL_SAFE_NO_PAD.encode(key))
}

/// The key of a token in its wire form; `None` if it cannot be one of ours.
pub(crate) fn parse_token(s: &str) -> Option<TokenKey> {
    if s.len() != 43 {
        return None;
    }
    let mut key = [0u8; TOKEN_BYTES + 2];
    let n = URL_SAFE_NO_PAD.decode_slice(s, &mut key).ok()?;
    (n == TOKEN_BYTES).then(|| key[..TOKEN_BYTES].try_into().expect("32 bytes"))
}
