//! The device verification code: what the device holds and polls with.
//!
//! A device code is 21 bytes in base64url (28 characters): the 5-byte packed
//! [`UserCode`] of its session followed by a 16-byte secret from a CSPRNG. The user code
//! part makes the poll one hash lookup in the one session map (keyed by user code); the
//! secret, compared in constant time, is what makes the code unguessable (RFC 8628 §5.2:
//! "very high entropy"; 128 bits, checklist SC-02). The user code is not a secret from
//! the device, which displays it anyway, so carrying it reveals nothing.

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

    /// Constant-time equality, so a timing side channel cannot find the secret byte by
    /// byte. As one 128-bit number: subtle compares a byte array a byte at a time, each
    /// behind an optimization barrier (357 instructions a poll by callgrind, where one
    /// number's comparison is inlined into the store's poll).
    pub fn matches(&self, other: &Secret) -> bool {
        u128::from_le_bytes(self.0)
            .ct_eq(&u128::from_le_bytes(other.0))
            .into()
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
        base64url::encode(&raw, out);
    }

    /// Decodes a presented device code without allocating. Anything that is not one of
    /// ours (wrong length, alphabet, or an out-of-range user code) is `None`.
    pub fn parse(s: impl AsRef<[u8]>) -> Option<DeviceCode> {
        let raw = base64url::decode(s.as_ref().try_into().ok()?)?;
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

/// base64url without padding (RFC 4648 §5) for the one shape a device code has: 21
/// bytes, 28 characters, seven whole groups of three bytes, so no group is partial and
/// no character carries unused bits. Here rather than through the base64 crate: with
/// its general engine, `DeviceCode::parse` took 914 instructions a poll (callgrind,
/// inclusive), and 259 with this. A proptest holds both directions to the crate's.
mod base64url {
    use super::{ENCODED_LEN, RAW_BYTES};

    pub(super) const ALPHABET: &[u8; 64] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

    /// Not a character of the alphabet; any value with this bit set is refused.
    const INVALID: u8 = 0x80;

    /// Each byte's value in the alphabet, or [`INVALID`].
    static VALUE: [u8; 256] = {
        let mut table = [INVALID; 256];
        let mut i = 0;
        while i < ALPHABET.len() {
            table[ALPHABET[i] as usize] = i as u8;
            i += 1;
        }
        table
    };

    pub(super) fn encode(raw: &[u8; RAW_BYTES], out: &mut [u8; ENCODED_LEN]) {
        for (bytes, chars) in raw.chunks_exact(3).zip(out.chunks_exact_mut(4)) {
            let n = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
            for (k, c) in chars.iter_mut().enumerate() {
                *c = ALPHABET[(n >> (18 - 6 * k)) as usize & 63];
            }
        }
    }

    /// The bytes `chars` encode, or `None` if one of them is not in the alphabet.
    pub(super) fn decode(chars: &[u8; ENCODED_LEN]) -> Option<[u8; RAW_BYTES]> {
        let mut raw = [0u8; RAW_BYTES];
        let mut invalid = 0;
        for (group, bytes) in chars.chunks_exact(4).zip(raw.chunks_exact_mut(3)) {
            let mut n = 0u32;
            for &c in group {
                let v = VALUE[usize::from(c)];
                invalid |= v;
                n = n << 6 | u32::from(v);
            }
            bytes.copy_from_slice(&n.to_be_bytes()[1..]);
        }
        (invalid & INVALID == 0).then_some(raw)
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
        assert!(DeviceCode::parse("_".repeat(28)).is_none());
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,60}") {
            let _ = DeviceCode::parse(&s);
        }

        /// The hand-written base64url agrees with the base64 crate both ways: the same
        /// characters for any 21 bytes, and the same bytes (or the same refusal) for any
        /// 28 characters, most of them drawn near the alphabet's edges.
        #[test]
        fn base64url_agrees_with_the_base64_crate(
            raw in proptest::array::uniform21(any::<u8>()),
            chars in proptest::array::uniform28(prop_oneof![
                8 => proptest::sample::select(b"AZaz09-_".to_vec()),
                4 => proptest::sample::select(base64url::ALPHABET.to_vec()),
                1 => any::<u8>(),
            ]),
        ) {
            use base64::engine::general_purpose::URL_SAFE_NO_PAD;
            use base64::Engine;
            let mut out = [0u8; ENCODED_LEN];
            base64url::encode(&raw, &mut out);
            prop_assert_eq!(String::from_utf8_lossy(&out), URL_SAFE_NO_PAD.encode(raw));
            prop_assert_eq!(base64url::decode(&out), Some(raw));
            let theirs = URL_SAFE_NO_PAD.decode(chars).ok();
            prop_assert_eq!(base64url::decode(&chars).map(|r| r.to_vec()), theirs);
        }
    }
}
