//! The device verification code: what the device holds and polls with.
//!
//! A device code is 21 bytes in base64url (28 characters): the 5-byte packed
//! [`UserCode`] of its session followed by a 16-byte secret from a CSPRNG. The user code
//! part makes the poll one hash lookup in the one session map (keyed by user code); the
//! secret, compared in constant time, is what makes the code unguessable (RFC 8628 §5.2:
//! "very high entropy"; 128 bits, checklist SC-02). The user code is not a secret from
//! the device, which displays it anyway, so carrying it reveals nothing.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::protocol::user_code::UserCode;

const KEY_BYTES: usize = 5;
/// Bytes of CSPRNG output in a device code: 128 bits.
pub const SECRET_BYTES: usize = 16;
const RAW_BYTES: usize = KEY_BYTES + SECRET_BYTES;
/// Length of the encoded device code.
pub const ENCODED_LEN: usize = 28;

/// The secret half of a device code. Compared only in constant time.
#[derive(Clone, Copy)]
pub struct Secret([u8; SECRET_BYTES]);

impl Secret {
    /// 128 fresh bits from the CSPRNG.
    pub fn generate() -> Secret {
        let mut s = [0u8; SECRET_BYTES];
        rand::thread_rng().fill_bytes(&mut s);
        Secret(s)
    }

    /// The secret's bytes, as a shared store keeps them.
    pub(crate) fn to_bytes(self) -> [u8; SECRET_BYTES] {
        self.0
    }

    /// A secret a shared store kept.
    pub(crate) fn from_bytes(bytes: [u8; SECRET_BYTES]) -> Secret {
        Secret(bytes)
    }

    /// Constant-time equality, so a timing side channel cannot find the secret byte by byte.
    pub fn matches(&self, other: &Secret) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// A device code, decoded.
#[derive(Debug, Clone, Copy)]
pub struct DeviceCode {
    /// The session's user code, which is also its key in the store.
    pub user_code: UserCode,
    /// The secret that proves the device holds this code.
    pub secret: Secret,
}

impl DeviceCode {
    /// Encodes to the 28-character string handed to the device.
    pub fn encode(&self) -> String {
        let mut out = [0u8; ENCODED_LEN];
        self.encode_into(&mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// [`encode`](Self::encode) into a buffer, without allocating.
    pub fn encode_into(&self, out: &mut [u8; ENCODED_LEN]) {
        let mut raw = [0u8; RAW_BYTES];
        raw[..KEY_BYTES].copy_from_slice(&self.user_code.packed().to_be_bytes()[3..]);
        raw[KEY_BYTES..].copy_from_slice(&self.secret.0);
        let written = URL_SAFE_NO_PAD
            .encode_slice(raw, out)
            .expect("21 bytes are 28 base64 characters");
        debug_assert_eq!(written, ENCODED_LEN);
    }

    /// Decodes a presented device code without allocating. Anything that is not one of
    /// ours (wrong length, alphabet, or an out-of-range user code) is `None`.
    pub fn parse(s: &str) -> Option<DeviceCode> {
        if s.len() != ENCODED_LEN {
            return None;
        }
        let mut raw = [0u8; RAW_BYTES + 3];
        let n = URL_SAFE_NO_PAD.decode_slice(s, &mut raw).ok()?;
        if n != RAW_BYTES {
            return None;
        }
        let mut key = [0u8; 8];
        key[3..].copy_from_slice(&raw[..KEY_BYTES]);
        let user_code = UserCode::from_packed(u64::from_be_bytes(key))?;
        let mut secret = [0u8; SECRET_BYTES];
        secret.copy_from_slice(&raw[KEY_BYTES..RAW_BYTES]);
        Some(DeviceCode {
            user_code,
            secret: Secret(secret),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encode_parse_round_trip() {
        for _ in 0..1000 {
            let code = DeviceCode {
                user_code: UserCode::generate(),
                secret: Secret::generate(),
            };
            let s = code.encode();
            assert_eq!(s.len(), ENCODED_LEN);
            let back = DeviceCode::parse(&s).unwrap();
            assert_eq!(back.user_code, code.user_code);
            assert!(back.secret.matches(&code.secret));
        }
    }

    #[test]
    fn secrets_differ_and_compare_by_value() {
        let a = Secret::generate();
        let b = Secret::generate();
        assert!(!a.matches(&b));
        assert!(a.matches(&a.clone()));
    }

    #[test]
    fn parse_rejects_foreign_strings() {
        for s in [
            "",
            "short",
            &"A".repeat(27),
            &"A".repeat(29),
            "!!!!!!!!!!!!!!!!!!!!!!!!!!!!",
        ] {
            assert!(DeviceCode::parse(s).is_none(), "{s:?}");
        }
        // 28 characters of valid base64url whose user-code part is out of range.
        assert!(DeviceCode::parse(&"_".repeat(28)).is_none());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = DeviceCode::parse(&s);
        }
    }
}
