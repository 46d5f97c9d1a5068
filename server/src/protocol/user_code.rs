//! The end-user verification code: generation, display, and normalization of what a
//! person types.
//!
//! A code is 8 characters from the 20 consonants `BCDFGHJKLMNPQRSTVWXZ` (RFC 8628 §6.1:
//! "base-20 ... 8 characters", about 34.5 bits), shown as `XXXX-XXXX`. Inside the server
//! it is a [`UserCode`]: the 8 digits packed base-20 into a `u64`, small, `Copy`, and the
//! key of the session store.

use rand::Rng;

/// RFC 8628 §6.1: consonants only, no vowels (no words) and no confusable 0/O, 1/I/L.
pub const ALPHABET: &[u8; 20] = b"BCDFGHJKLMNPQRSTVWXZ";

/// Characters in a user code.
pub const LEN: usize = 8;

/// Bytes of its display form, `XXXX-XXXX`.
pub const DISPLAY_LEN: usize = LEN + 1;

/// 20^8: how many user codes there are.
pub const SPACE: u64 = 25_600_000_000;

/// A user code, packed: the value is in `0..SPACE`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserCode(u64);

impl UserCode {
    /// A fresh code from the thread-local CSPRNG (ChaCha, reseeded from the OS).
    pub fn generate() -> UserCode {
        UserCode(rand::thread_rng().gen_range(0..SPACE))
    }

    /// The packed value, for use as a key; `None` if out of range.
    pub fn from_packed(v: u64) -> Option<UserCode> {
        (v < SPACE).then_some(UserCode(v))
    }

    /// The code as the store's key.
    pub fn packed(self) -> u64 {
        self.0
    }

    /// The 8 characters, most significant first.
    pub fn chars(self) -> [u8; LEN] {
        let mut out = [0u8; LEN];
        let mut v = self.0;
        for slot in out.iter_mut().rev() {
            *slot = ALPHABET[(v % 20) as usize];
            v /= 20;
        }
        out
    }

    /// The display form, `XXXX-XXXX`.
    pub fn display(self) -> String {
        String::from_utf8_lossy(&self.display_bytes()).into_owned()
    }

    /// [`display`](Self::display) as ASCII bytes, without allocating.
    pub fn display_bytes(self) -> [u8; DISPLAY_LEN] {
        let c = self.chars();
        let mut s = [b'-'; DISPLAY_LEN];
        s[..4].copy_from_slice(&c[..4]);
        s[5..].copy_from_slice(&c[4..]);
        s
    }

    /// Reads what a person typed, per RFC 8628 §6.1: case-insensitive, and dashes,
    /// spaces and any other character outside the alphabet are dropped ("it is
    /// RECOMMENDED to ... ignore characters that are not in the character set"). The
    /// remaining characters must be exactly 8 letters of the alphabet. The fullwidth
    /// forms an East Asian input method types (`ＷＤＪＢ－ＭＪＨＴ`, U+FF01..U+FF5E) are
    /// read as the ASCII they stand for (checklist UI-07); that adds no guess, as the
    /// code must still be exactly 8 letters of the alphabet.
    pub fn normalize(input: &str) -> Option<UserCode> {
        let mut v: u64 = 0;
        let mut n = 0;
        for ch in input.chars() {
            let ch = match ch {
                '\u{FF01}'..='\u{FF5E}' => char::from_u32(u32::from(ch) - 0xFEE0).unwrap_or(ch),
                ch => ch,
            };
            let Some(digit) = digit_of(ch.to_ascii_uppercase()) else {
                continue;
            };
            n += 1;
            if n > LEN {
                return None;
            }
            v = v * 20 + digit;
        }
        (n == LEN).then_some(UserCode(v))
    }
}

impl std::fmt::Display for UserCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

fn digit_of(ch: char) -> Option<u64> {
    let b = u8::try_from(ch).ok()?;
    ALPHABET.iter().position(|&a| a == b).map(|p| p as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fullwidth_codes_read_as_the_ascii_they_stand_for() {
        let code = UserCode::normalize("WDJB-MJHT");
        assert!(code.is_some());
        assert_eq!(UserCode::normalize("ＷＤＪＢ－ＭＪＨＴ"), code);
        assert_eq!(UserCode::normalize("ｗｄｊｂ\u{3000}ｍｊｈｔ"), code);
        // Still exactly 8 letters of the alphabet.
        assert_eq!(UserCode::normalize("ＷＤＪＢ－ＭＪＨ"), None);
        assert_eq!(UserCode::normalize("ＷＤＪＢ－ＭＪＨＴＢ"), None);
    }
    use proptest::prelude::*;

    #[test]
    fn display_is_two_groups_of_four_from_the_alphabet() {
        for _ in 0..1000 {
            let code = UserCode::generate();
            let s = code.display();
            assert_eq!(s.len(), 9);
            assert_eq!(&s[4..5], "-");
            assert!(s
                .bytes()
                .filter(|&b| b != b'-')
                .all(|b| ALPHABET.contains(&b)));
        }
    }

    #[test]
    fn normalize_accepts_what_people_type() {
        let code = UserCode::normalize("WDJB-MJHT").unwrap();
        assert_eq!(code.display(), "WDJB-MJHT");
        for typed in [
            "wdjb-mjht",
            "WDJBMJHT",
            " wdjb mjht ",
            "wd.jb_mj ht",
            "WDJB–MJHT",
            "WDJB-MJHT!",
        ] {
            assert_eq!(UserCode::normalize(typed), Some(code), "{typed:?}");
        }
    }

    #[test]
    fn normalize_rejects_codes_outside_the_alphabet_or_of_the_wrong_length() {
        for typed in [
            "",
            "WDJB-MJH",
            "WDJB-MJHTB",
            "WDJB-MJH0",
            "AAAA-BBBB",
            "WDJB-MJHÉ",
        ] {
            assert_eq!(UserCode::normalize(typed), None, "{typed:?}");
        }
    }

    #[test]
    fn extreme_values_round_trip() {
        for v in [0, 1, SPACE - 1] {
            let code = UserCode::from_packed(v).unwrap();
            assert_eq!(UserCode::normalize(&code.display()), Some(code));
        }
        assert_eq!(UserCode::from_packed(SPACE), None);
        assert_eq!(UserCode::from_packed(0).unwrap().display(), "BBBB-BBBB");
        assert_eq!(
            UserCode::from_packed(SPACE - 1).unwrap().display(),
            "ZZZZ-ZZZZ"
        );
    }

    proptest! {
        #[test]
        fn every_code_round_trips_through_its_display(v in 0..SPACE) {
            let code = UserCode::from_packed(v).unwrap();
            prop_assert_eq!(UserCode::normalize(&code.display()), Some(code));
            prop_assert_eq!(UserCode::normalize(&code.display().to_lowercase()), Some(code));
        }

        #[test]
        fn normalize_never_panics(s in "\\PC{0,40}") {
            let _ = UserCode::normalize(&s);
        }
    }
}
