//! Cross-site request forgery tokens: one per web session, in a hidden field of every
//! form, compared in constant time when the form comes back.
//!
//! The synchronizer-token pattern (OWASP): the token lives server-side with the web
//! session, so a forged POST from another site, which carries the cookie but cannot
//! read our pages, cannot carry the token. `SameSite=Lax` on the cookie is a second
//! layer, not the defence. Even the sign-in form has one (login CSRF): a person is
//! given an anonymous web session before signing in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use subtle::ConstantTimeEq;

/// The form field that carries the token.
pub const FIELD: &str = "csrf";

const BYTES: usize = 32;

/// A 256-bit token from the CSPRNG.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct CsrfToken([u8; BYTES]);

impl CsrfToken {
    pub fn generate() -> CsrfToken {
        let mut t = [0u8; BYTES];
        rand::thread_rng().fill_bytes(&mut t);
        CsrfToken(t)
    }

    /// The form of the token written into pages (base64url, 43 characters).
    pub fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0)
    }

    /// Whether `presented` is this token, decided in constant time.
    pub fn matches(&self, presented: Option<&str>) -> bool {
        let Some(decoded) = presented.and_then(|p| URL_SAFE_NO_PAD.decode(p).ok()) else {
            return false;
        };
        decoded.len() == BYTES && bool::from(decoded.as_slice().ct_eq(&self.0))
    }
}

impl std::fmt::Debug for CsrfToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CsrfToken(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_matches() {
        let t = CsrfToken::generate();
        assert!(t.matches(Some(&t.encode())));
        assert!(!t.matches(Some(&CsrfToken::generate().encode())));
        assert!(!t.matches(None));
        assert!(!t.matches(Some("")));
        assert!(!t.matches(Some("not base64 !")));
        assert!(!t.matches(Some(&t.encode()[..40])));
    }
}
