//! `application/x-www-form-urlencoded` request bodies, parsed strictly and without
//! allocating on the common path.
//!
//! RFC 8628 §3.1 and RFC 6749 §3.2: "Request and response parameters MUST NOT be
//! included more than once", "Parameters sent without a value MUST be treated as if
//! they were omitted from the request", and the server "MUST ignore unrecognized
//! request parameters" (checklist DA-09, TR-09). So only the parameters this server
//! reads ([`PARAMETERS`]) are indexed and checked: a repeated one is an error and an
//! empty value reads as absent; anything else is skipped, whatever it holds and however
//! often it repeats. The body itself stays bounded by `limits.max_body_bytes`.

use std::borrow::Cow;

/// Every parameter name that an endpoint or a page of this server reads. A name not
/// listed here is unrecognized and ignored.
pub const PARAMETERS: &[&str] = &[
    // RFC 6749 §2.3.1, §4.1.3, §6; RFC 8628 §3.1, §3.4.
    "client_id",
    "client_secret",
    "grant_type",
    "device_code",
    "scope",
    "refresh_token",
    // RFC 7662 §2.1, RFC 7009 §2.1.
    "token",
    "token_type_hint",
    // The admin endpoint and the person's pages.
    "user_code",
    "action",
    "user",
    "username",
    "password",
    "csrf",
    // The applications page's registration form.
    "client_name",
    "auth_method",
    "with_refresh",
];

/// The most parameters a form indexes: each known name at most once.
pub const MAX_PARAMS: usize = PARAMETERS.len();

// A form says which known names it holds in the bits of one `u32`.
const _: () = assert!(MAX_PARAMS <= u32::BITS as usize);

/// The longest parameter name, for decoding encoded names on the stack.
const LONGEST_NAME: usize = 16;

/// The largest body a form is read from (offsets are kept in 16 bits).
pub const MAX_BODY: usize = u16::MAX as usize;

/// Why a body is not an acceptable form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    /// A known parameter appears twice (RFC 6749 §3.2).
    #[error("parameter \"{0}\" is repeated (RFC 6749 §3.2)")]
    Repeated(String),
    /// A known parameter's value is not UTF-8.
    #[error("parameter \"{0}\" is not valid percent-encoded UTF-8 (RFC 8628 §3.1)")]
    NotUtf8(String),
    /// A known parameter's value has a `%` not followed by two hex digits.
    #[error("parameter \"{0}\" has an invalid percent-escape")]
    BadEscape(String),
    /// The body is too large to index.
    #[error("the body is larger than {MAX_BODY} bytes")]
    TooLarge,
}

/// Where one known name's value sits in the body: from `eq`, the `=` or the end of a
/// name with none, to `end`.
#[derive(Clone, Copy, Default)]
struct Span {
    eq: u16,
    end: u16,
}

/// What the scan noted about one pair's value.
#[derive(Clone, Copy)]
struct ValueNotes {
    /// Holds no `%` and no `+`: read as it is.
    plain: bool,
    /// Holds bytes above 0x7F, raw or escaped: must be checked as UTF-8.
    non_ascii: bool,
    /// Holds a `%` not followed by two hex digits.
    bad_escape: bool,
}

impl ValueNotes {
    const PLAIN: ValueNotes = ValueNotes {
        plain: true,
        non_ascii: false,
        bad_escape: false,
    };
}

/// Eight bytes at a time ("SIMD within a register"): a poll's values are 10 to 60
/// bytes, too short for memchr's set-up to pay, and most of their bytes need nothing.
mod swar {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGHS: u64 = 0x8080_8080_8080_8080;

    /// The lowest set bit is the high bit of the first byte of `x` below `n` (at most
    /// 0x80), if any (bits above it may be set wrongly, never below).
    const fn below(x: u64, n: u8) -> u64 {
        x.wrapping_sub(ONES * n as u64) & !x & HIGHS
    }

    /// Like `below`, for the bytes of `x` that are `b`: the zero bytes of `x ^ b…b`.
    const fn has(x: u64, b: u8) -> u64 {
        below(x ^ (ONES * b as u64), 1)
    }

    /// The bytes that may end a value (`&`), need decoding (`%`, `+`) or are not
    /// ASCII: every byte below `,` (0x2C), which those three are, and every byte above
    /// 0x7F. Two tests rather than one per byte value: a value's common bytes (letters,
    /// digits, `-`, `.`, `_`) are all above `,`, and the rare others below it (space,
    /// `!`, `"`, `#`, `$`, `'`, `(`, `)`, `*`) only cost the caller a look.
    pub(super) const fn notable(x: u64) -> u64 {
        below(x, b',') | (x & HIGHS)
    }

    /// The bytes that must be decoded (`%`, `+`).
    pub(super) const fn encoded(x: u64) -> u64 {
        has(x, b'%') | has(x, b'+')
    }

    /// The bytes that end a name: `=`, or the `&` of a pair with no value.
    pub(super) const fn name_end(x: u64) -> u64 {
        has(x, b'=') | has(x, b'&')
    }

    /// What pads the last word: bytes that no mask marks.
    const PAD: u64 = ONES * b'a' as u64;

    /// The eight bytes from `from` (less than `bytes.len()`), [`PAD`] past the end. A
    /// last word of one to seven bytes is read as the body's last eight bytes,
    /// shifted (copying them would call `memcpy`).
    #[inline]
    pub(super) fn word(bytes: &[u8], from: usize) -> u64 {
        if let Some(word) = bytes.get(from..from + 8) {
            return u64::from_le_bytes(word.try_into().expect("eight bytes"));
        }
        debug_assert!(from < bytes.len(), "a word from past the end");
        let left = bytes.len().saturating_sub(from);
        let word = match bytes.len().checked_sub(8) {
            Some(last) => {
                let last = u64::from_le_bytes(bytes[last..].try_into().expect("eight bytes"));
                last >> (8 * (8 - left))
            }
            None => bytes[from.min(bytes.len())..]
                .iter()
                .rev()
                .fold(0, |word, &b| word << 8 | u64::from(b)),
        };
        word | PAD << (8 * left)
    }

    /// The first byte at or after `from` that `marks` marks, or `bytes.len()`.
    #[inline]
    pub(super) fn find(bytes: &[u8], mut from: usize, marks: impl Fn(u64) -> u64) -> usize {
        while from < bytes.len() {
            let marked = marks(word(bytes, from));
            if marked != 0 {
                return from + (marked.trailing_zeros() / 8) as usize;
            }
            from += 8;
        }
        bytes.len()
    }
}

/// Scans the value that begins at `from` up to the `&` that ends it, or the end of
/// the body: where it ends, and what it holds. Eight bytes at a time; in each word,
/// every marked byte gets a look, those the mask marks wrongly included. An escape's
/// hex digits are never marked, so the scan never restarts after one.
fn scan_value(body: &[u8], from: usize) -> (usize, ValueNotes) {
    let mut notes = ValueNotes::PLAIN;
    let mut at = from;
    while at < body.len() {
        let mut marked = swar::notable(swar::word(body, at));
        while marked != 0 {
            let i = at + (marked.trailing_zeros() / 8) as usize;
            marked &= marked - 1;
            match body[i] {
                b'&' => return (i, notes),
                b'%' => {
                    notes.plain = false;
                    // A hex digit is never `&`: an escape cut short by the value's
                    // end is a bad one.
                    match escape(body, i) {
                        Some(byte) => notes.non_ascii |= byte > 0x7F,
                        None => notes.bad_escape = true,
                    }
                }
                b'+' => notes.plain = false,
                0x80.. => notes.non_ascii = true,
                // Below `,`, needing nothing, or marked wrongly.
                _ => {}
            }
        }
        at += 8;
    }
    (body.len(), notes)
}

/// The byte that the escape whose `%` is at `at` in `raw` stands for, if two hex
/// digits follow it. Both digits are looked up in one table and checked at once.
#[inline]
fn escape(raw: &[u8], at: usize) -> Option<u8> {
    const NOT_HEX: u8 = 0xFF;
    const HEX: [u8; 256] = {
        let mut values = [NOT_HEX; 256];
        let mut i = 0;
        while i < 10 {
            values[b'0' as usize + i] = i as u8;
            i += 1;
        }
        let mut i = 0;
        while i < 6 {
            values[b'a' as usize + i] = 10 + i as u8;
            values[b'A' as usize + i] = 10 + i as u8;
            i += 1;
        }
        values
    };
    let [hi, lo]: [u8; 2] = raw.get(at + 1..at + 3)?.try_into().ok()?;
    let (hi, lo) = (HEX[usize::from(hi)], HEX[usize::from(lo)]);
    ((hi | lo) <= 0xF).then_some(hi << 4 | lo)
}

/// A parsed form: the validated body and, for each known name, where its value is, so
/// that parsing the poll body builds no table of slices, and a lookup is one bit test
/// and one load, walking no bytes twice.
pub struct Form<'a> {
    body: &'a [u8],
    /// Each known name's value, at the name's index in [`PARAMETERS`]: valid where
    /// `present` has the index's bit.
    values: [Span; MAX_PARAMS],
    present: u32,
    /// The values that hold no `%` and no `+`: read as they are.
    plain: u32,
}

impl<'a> Form<'a> {
    /// Indexes `body`: every known parameter's value must percent-decode to UTF-8 and
    /// no known name appears twice; unknown parameters are skipped unread.
    pub fn parse(body: &'a [u8]) -> Result<Form<'a>, FormError> {
        if body.len() > MAX_BODY {
            return Err(FormError::TooLarge);
        }
        let mut form = Form {
            body,
            values: [Span::default(); MAX_PARAMS],
            present: 0,
            plain: 0,
        };
        // Pair by pair: a pair's name says whether it is ours to read, and only then
        // is its value scanned, in the same pass that finds its end.
        let mut start = 0;
        while start < body.len() {
            let eq = swar::find(body, start, swar::name_end);
            let has_value = body.get(eq) == Some(&b'=');
            let end = match known_name(&body[start..eq]) {
                Some(name) if has_value => {
                    let (end, notes) = scan_value(body, eq + 1);
                    form.add_pair(name, eq, end, notes)?;
                    end
                }
                Some(name) => {
                    form.add_pair(name, eq, eq, ValueNotes::PLAIN)?;
                    eq
                }
                None if has_value => {
                    memchr::memchr(b'&', &body[eq..]).map_or(body.len(), |i| eq + i)
                }
                None => eq,
            };
            start = end + 1;
        }
        Ok(form)
    }

    /// Indexes the known parameter `name`, whose value is at `eq + 1..end` (empty
    /// when `eq == end`), refusing a repeat or a value that is not UTF-8. An empty
    /// value is no occurrence: RFC 6749 §3.1, "Parameters sent without a value MUST be
    /// treated as if they were omitted from the request", so `client_id=&client_id=tv`
    /// names one client (it was refused as repeated).
    #[inline]
    fn add_pair(
        &mut self,
        name: u8,
        eq: usize,
        end: usize,
        notes: ValueNotes,
    ) -> Result<(), FormError> {
        if end <= eq + 1 {
            return Ok(());
        }
        let known = PARAMETERS[usize::from(name)];
        if notes.bad_escape {
            return Err(FormError::BadEscape(known.to_owned()));
        }
        if notes.non_ascii {
            let value = &self.body[(eq + 1).min(end)..end];
            percent_decode(value).map_err(|Undecodable| FormError::NotUtf8(known.to_owned()))?;
        }
        let bit = 1 << name;
        if self.present & bit != 0 {
            return Err(FormError::Repeated(known.to_owned()));
        }
        self.present |= bit;
        if notes.plain {
            self.plain |= bit;
        }
        self.values[usize::from(name)] = Span {
            // MAX_BODY keeps every offset within u16.
            eq: eq as u16,
            end: end as u16,
        };
        Ok(())
    }

    /// The value of the known parameter `name`, and whether it is plain; empty values
    /// read as absent. Inlined, as are the getters that call it, into callers that
    /// name a constant: the name's index in [`PARAMETERS`] is then found at compile
    /// time, not by comparing strings on every request (270 instructions a poll,
    /// callgrind).
    #[inline(always)]
    fn find(&self, name: &str) -> Option<(bool, &'a [u8])> {
        let index = PARAMETERS.iter().position(|p| *p == name)?;
        let bit = 1 << index;
        if self.present & bit == 0 {
            return None;
        }
        let span = self.values[index];
        let (eq, end) = (usize::from(span.eq), usize::from(span.end));
        let value = &self.body[(eq + 1).min(end)..end];
        (!value.is_empty()).then_some((self.plain & bit != 0, value))
    }

    /// The raw value of `name`, still encoded; empty values read as absent.
    #[inline(always)]
    pub fn raw(&self, name: &str) -> Option<&'a [u8]> {
        self.find(name).map(|(_, v)| v)
    }

    /// The decoded value of `name`; borrowed from the body unless it had escapes.
    /// Empty values read as absent.
    #[inline(always)]
    pub fn get(&self, name: &str) -> Result<Option<Cow<'a, str>>, FormError> {
        let Some((plain, raw)) = self.find(name) else {
            return Ok(None);
        };
        // `parse` refused any known value that is not UTF-8; safe Rust still checks
        // again to make a `str`, here, value by value, rather than the whole body in
        // `parse`: a poll reads two short values of a body three times as long.
        let value = if plain {
            std::str::from_utf8(raw)
                .map(Cow::Borrowed)
                .map_err(|_| Undecodable)
        } else {
            percent_decode(raw)
        };
        value
            .map(Some)
            .map_err(|Undecodable| FormError::NotUtf8(name.into()))
    }

    /// The decoded value of `name` as bytes, for a value that is checked byte by byte
    /// anyway (a device code against its alphabet): a plain value is borrowed, without
    /// `get`'s second UTF-8 check. Empty values read as absent.
    #[inline(always)]
    pub fn get_bytes(&self, name: &str) -> Result<Option<Cow<'a, [u8]>>, FormError> {
        match self.find(name) {
            None => Ok(None),
            Some((true, raw)) => Ok(Some(Cow::Borrowed(raw))),
            Some(_) => Ok(self.get(name)?.map(|value| match value {
                Cow::Borrowed(value) => Cow::Borrowed(value.as_bytes()),
                Cow::Owned(value) => Cow::Owned(value.into_bytes()),
            })),
        }
    }

    /// Whether `name` is present with exactly `expected.value` as its decoded value,
    /// decided without allocating: one comparison when the client sent it as most
    /// clients do.
    #[inline(always)]
    pub fn is(&self, name: &str, expected: &Expected) -> bool {
        self.find(name).is_some_and(|(plain, v)| {
            if plain {
                v == expected.value.as_bytes()
            } else {
                v == expected.usual.as_bytes() || decoded_eq_str(v, expected.value)
            }
        })
    }

    /// Whether `name` is present (with a non-empty value).
    #[inline(always)]
    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }
}

/// A value that requests carry often, with the encoding most clients send it in:
/// form serializers (WHATWG `URLSearchParams`, Python's `urlencode`, Go's
/// `url.Values`, Java's `URLEncoder`, curl's `--data-urlencode`) percent-encode `:` as
/// `%3A`.
pub struct Expected {
    /// The value, decoded.
    pub value: &'static str,
    /// How most clients encode it.
    pub usual: &'static str,
}

/// RFC 8628 §3.4: the device code grant type, on every poll.
pub const DEVICE_CODE_GRANT: Expected = Expected {
    value: deviceflow_wire::GRANT_TYPE_DEVICE_CODE,
    usual: "urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code",
};

/// RFC 6749 §6: the refresh token grant type.
pub const REFRESH_TOKEN_GRANT: Expected = Expected {
    value: deviceflow_wire::GRANT_TYPE_REFRESH_TOKEN,
    usual: deviceflow_wire::GRANT_TYPE_REFRESH_TOKEN,
};

/// The index in [`PARAMETERS`] of the name `raw` spells, decoded if it has escapes.
fn known_name(raw: &[u8]) -> Option<u8> {
    let find = |name: &[u8]| {
        PARAMETERS
            .iter()
            .position(|p| p.as_bytes() == name)
            // PARAMETERS has fewer than 256 names.
            .map(|i| i as u8)
    };
    // No known name holds `%` or `+`: a name that matches as it is needs no decoding.
    if let Some(known) = find(raw) {
        return Some(known);
    }
    if swar::find(raw, 0, swar::encoded) == raw.len() {
        return None;
    }
    let mut buf = [0u8; LONGEST_NAME];
    let mut n = 0;
    for b in Decoded::new(raw) {
        let slot = buf.get_mut(n)?;
        *slot = b.ok()?;
        n += 1;
    }
    find(&buf[..n])
}

/// Percent-encodes a query parameter value or a path segment: every byte but RFC
/// 3986 §2.3's unreserved characters, so that no `&`, `=`, `#`, `?` or `/` in it ends
/// it early.
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Form data that is not percent-encoded UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("not valid percent-encoded UTF-8")]
pub struct Undecodable;

/// Percent-decodes form data (`+` is a space). Borrows when nothing needs decoding.
pub fn percent_decode(raw: &[u8]) -> Result<Cow<'_, str>, Undecodable> {
    if swar::find(raw, 0, swar::encoded) == raw.len() {
        return std::str::from_utf8(raw)
            .map(Cow::Borrowed)
            .map_err(|_| Undecodable);
    }
    let bytes = Decoded::new(raw).collect::<Result<Vec<u8>, Undecodable>>()?;
    String::from_utf8(bytes)
        .map(Cow::Owned)
        .map_err(|_| Undecodable)
}

fn decoded_eq_str(raw: &[u8], s: &str) -> bool {
    // Run by run rather than through the `Decoded` iterator: this compares the grant
    // type URN of every poll. Each run of bytes that stand for themselves is compared
    // at once, then the one escape (or `+`) that ends it.
    let want = s.as_bytes();
    let (mut i, mut j) = (0, 0);
    while i < raw.len() {
        let run = swar::find(raw, i, swar::encoded) - i;
        if want.get(j..j + run) != Some(&raw[i..i + run]) {
            return false;
        }
        i += run;
        j += run;
        let b = match raw.get(i) {
            None => break,
            Some(b'+') => {
                i += 1;
                b' '
            }
            Some(_) => match escape(raw, i) {
                Some(byte) => {
                    i += 3;
                    byte
                }
                None => return false,
            },
        };
        if want.get(j) != Some(&b) {
            return false;
        }
        j += 1;
    }
    j == want.len()
}

/// The bytes of a percent-encoded form value.
struct Decoded<'a> {
    raw: &'a [u8],
    at: usize,
}

impl<'a> Decoded<'a> {
    fn new(raw: &'a [u8]) -> Decoded<'a> {
        Decoded { raw, at: 0 }
    }
}

impl Iterator for Decoded<'_> {
    type Item = Result<u8, Undecodable>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = *self.raw.get(self.at)?;
        self.at += 1;
        Some(match b {
            b'+' => Ok(b' '),
            b'%' => match escape(self.raw, self.at - 1) {
                Some(byte) => {
                    self.at += 2;
                    Ok(byte)
                }
                None => {
                    self.at = self.raw.len();
                    Err(Undecodable)
                }
            },
            b => Ok(b),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn percent_encode_keeps_only_unreserved_characters() {
        assert_eq!(percent_encode("WDJB-MJHT"), "WDJB-MJHT");
        assert_eq!(
            percent_encode("a b&c=d/é#?"),
            "a%20b%26c%3Dd%2F%C3%A9%23%3F"
        );
        assert_eq!(
            percent_decode(percent_encode("a+b %").as_bytes()).unwrap(),
            "a+b %"
        );
    }

    #[test]
    fn decodes_escapes_and_plus() {
        let form =
            Form::parse(b"grant_type=urn%3Aietf%3Aparams&scope=openid+profile&user=%E2%82%AC")
                .unwrap();
        assert!(form.is(
            "grant_type",
            &Expected {
                value: "urn:ietf:params",
                usual: "urn:ietf:params"
            }
        ));
        assert_eq!(form.get("scope").unwrap().unwrap(), "openid profile");
        assert_eq!(form.get("user").unwrap().unwrap(), "€");
        assert!(matches!(form.get("scope").unwrap().unwrap(), Cow::Owned(_)));
    }

    #[test]
    fn the_usual_encodings_decode_to_their_values() {
        for expected in [DEVICE_CODE_GRANT, REFRESH_TOKEN_GRANT] {
            assert_eq!(
                percent_decode(expected.usual.as_bytes()).unwrap(),
                expected.value
            );
            for body in [
                format!("grant_type={}", expected.usual),
                format!("grant_type={}", expected.value),
                form_urlencoded::Serializer::new(String::new())
                    .append_pair("grant_type", expected.value)
                    .finish(),
                format!("grant_type={}", expected.usual.to_lowercase()),
            ] {
                let form = Form::parse(body.as_bytes()).unwrap();
                assert!(form.is("grant_type", &expected), "{body}");
            }
        }
        let form =
            Form::parse(b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_codf")
                .unwrap();
        assert!(!form.is("grant_type", &DEVICE_CODE_GRANT));
    }

    #[test]
    fn plain_values_are_borrowed() {
        let form = Form::parse(b"device_code=abc_DEF-123&client_id=tv").unwrap();
        assert!(matches!(
            form.get("device_code").unwrap().unwrap(),
            Cow::Borrowed("abc_DEF-123")
        ));
    }

    #[test]
    fn every_marked_byte_of_a_word_is_looked_at() {
        // Several marked bytes in one word; a `,` that the mask marks wrongly after a
        // byte below it; an escape and a `+` in the last, partial word.
        let form = Form::parse(b"scope=a!,,%41&user=b%42+c&client_id=x").unwrap();
        assert_eq!(form.get("scope").unwrap().unwrap(), "a!,,A");
        assert_eq!(form.get("user").unwrap().unwrap(), "bB c");
        assert_eq!(form.get("client_id").unwrap().unwrap(), "x");
        // A bad escape after a good one in the same word, one cut short by `&` in a
        // later word, and a byte above 0x7F after an escape in the same word.
        for (body, refused) in [
            (&b"user=%41%4"[..], FormError::BadEscape("user".into())),
            (
                b"client_id=abcdefgh%4&x=1",
                FormError::BadEscape("client_id".into()),
            ),
            (b"user=%41\xff", FormError::NotUtf8("user".into())),
        ] {
            assert_eq!(Form::parse(body).err(), Some(refused), "{body:?}");
        }
    }

    #[test]
    fn values_as_bytes_are_borrowed_when_plain_and_decoded_otherwise() {
        let form = Form::parse(b"device_code=abc_DEF-123&user_code=%41B+C").unwrap();
        assert!(matches!(
            form.get_bytes("device_code").unwrap().unwrap(),
            Cow::Borrowed(b"abc_DEF-123")
        ));
        assert_eq!(&*form.get_bytes("user_code").unwrap().unwrap(), b"AB C");
        assert_eq!(form.get_bytes("client_id"), Ok(None));
    }

    #[test]
    fn empty_values_read_as_omitted() {
        // RFC 8628 §3.1: "Parameters sent without a value MUST be treated as if they
        // were omitted from the request."
        let form = Form::parse(b"client_id=tv&scope=&user").unwrap();
        assert_eq!(form.get("scope").unwrap(), None);
        assert_eq!(form.get("user").unwrap(), None);
        assert!(!form.has("scope"));
        assert!(form.has("client_id"));
    }

    #[test]
    fn repeated_parameters_are_refused_even_when_encoded_differently() {
        // RFC 6749 §3.2; checklist DA-10, TR-08.
        assert_eq!(
            Form::parse(b"client_id=a&client_id=a").err(),
            Some(FormError::Repeated("client_id".into()))
        );
        // An empty value is omitted (RFC 6749 §3.1), so it repeats nothing.
        for body in [
            &b"client_id=&client_id=tv"[..],
            b"client_id=tv&client_id",
            b"scope&scope=",
        ] {
            let form = Form::parse(body).unwrap_or_else(|e| panic!("{body:?}: {e}"));
            let client = form.get("client_id").unwrap();
            assert_eq!(
                client.as_deref(),
                (body.len() > 12).then_some("tv"),
                "{body:?}"
            );
            assert!(!form.has("scope"));
        }
        assert_eq!(
            Form::parse(b"scope=a&sc%6Fpe=b").err(),
            Some(FormError::Repeated("scope".into()))
        );
    }

    #[test]
    fn unrecognized_parameters_are_ignored_however_many_and_whatever_they_hold() {
        // RFC 8628 §3.1, RFC 6749 §3.2: "MUST ignore unrecognized request parameters"
        // (checklist DA-09, TR-09): more than MAX_PARAMS of them, repeated, with bad
        // escapes or bytes that are not UTF-8.
        let mut body: Vec<u8> = (0..40)
            .flat_map(|i| format!("p{i}=v&foo=1&").into_bytes())
            .collect();
        body.extend_from_slice(b"bad=%zz&raw=\xff&esc=%ff%fe&f%zzoo=1&client_id=tv");
        let form = Form::parse(&body).unwrap();
        assert_eq!(form.get("client_id").unwrap().unwrap(), "tv");
        assert!(!form.has("scope"));
    }

    #[test]
    fn known_parameters_with_bad_escapes_or_non_utf8_are_refused() {
        assert_eq!(
            Form::parse(b"client_id=%zz").err(),
            Some(FormError::BadEscape("client_id".into()))
        );
        assert_eq!(
            Form::parse(b"scope=%4").err(),
            Some(FormError::BadEscape("scope".into()))
        );
        // Either digit of an escape may be the bad one.
        for bad in ["%4G", "%G4", "%4&", "%%41"] {
            assert_eq!(
                Form::parse(format!("client_id={bad}").as_bytes()).err(),
                Some(FormError::BadEscape("client_id".into())),
                "{bad}"
            );
            assert_eq!(percent_decode(bad.as_bytes()), Err(Undecodable), "{bad}");
        }
        assert!(decoded_eq_str(b"urn%3Aietf", "urn:ietf"));
        assert!(!decoded_eq_str(b"urn%3Gietf", "urn:ietf"));
        assert!(!decoded_eq_str(b"urn%G3ietf", "urn:ietf"));
        assert_eq!(
            Form::parse(b"scope=%ff%fe").err(),
            Some(FormError::NotUtf8("scope".into()))
        );
        assert_eq!(
            Form::parse(b"user=\xff").err(),
            Some(FormError::NotUtf8("user".into()))
        );
        let long = format!("user={}", "%C3%A9".repeat(200) + "%ff");
        assert_eq!(
            Form::parse(long.as_bytes()).err(),
            Some(FormError::NotUtf8("user".into()))
        );
        let long = format!("user={}", "%C3%A9".repeat(200));
        assert_eq!(
            Form::parse(long.as_bytes())
                .unwrap()
                .get("user")
                .unwrap()
                .unwrap(),
            "é".repeat(200)
        );
    }

    /// A name: one of ours, or anything else.
    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            proptest::sample::select(PARAMETERS).prop_map(str::to_owned),
            "\\PC{0,12}",
        ]
    }

    proptest! {
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(form) = Form::parse(&body) {
                for p in PARAMETERS {
                    let _ = form.get(p);
                }
            }
        }

        /// The eight-at-a-time search finds exactly what a byte loop finds, wherever
        /// the bytes sit in their word and whatever surrounds them.
        #[test]
        fn swar_finds_the_first_marked_byte(
            bytes in proptest::collection::vec(
                prop_oneof![Just(b'&'), Just(b'%'), Just(b'+'), Just(b'='), Just(b','), Just(b'-'), Just(0u8), Just(1u8), Just(b'a'), any::<u8>()],
                0..40,
            ),
            from in 0usize..40,
        ) {
            let from = from.min(bytes.len());
            let naive = |f: fn(u8) -> bool| {
                bytes[from..].iter().position(|&b| f(b)).map_or(bytes.len(), |i| from + i)
            };
            prop_assert_eq!(
                swar::find(&bytes, from, swar::notable),
                naive(|b| !(b','..0x80).contains(&b))
            );
            prop_assert_eq!(swar::find(&bytes, from, swar::encoded), naive(|b| matches!(b, b'%' | b'+')));
            prop_assert_eq!(swar::find(&bytes, from, swar::name_end), naive(|b| matches!(b, b'=' | b'&')));
        }

        #[test]
        fn encoded_values_decode_back(value in "\\PC{0,40}") {
            let encoded: String = value.bytes().map(|b| format!("%{b:02X}")).collect();
            let body = format!("user={encoded}");
            let form = Form::parse(body.as_bytes()).unwrap();
            let got = form.get("user").unwrap().map(Cow::into_owned).unwrap_or_default();
            prop_assert_eq!(got, value);
        }

        /// Differential, against the `form_urlencoded` crate (the url crate's parser):
        /// any body that `form_urlencoded::Serializer` writes, with each known name at
        /// most once and anything else around it, is accepted, and every known
        /// parameter reads as `form_urlencoded::parse` reads it.
        #[test]
        fn agrees_with_form_urlencoded_on_what_it_encodes(
            pairs in proptest::collection::vec((name(), "\\PC{0,20}"), 0..30)
        ) {
            let mut seen = std::collections::HashSet::new();
            let pairs: Vec<_> = pairs
                .into_iter()
                .filter(|(n, _)| !PARAMETERS.contains(&n.as_str()) || seen.insert(n.clone()))
                .collect();
            let body = form_urlencoded::Serializer::new(String::new())
                .extend_pairs(&pairs)
                .finish();
            let form = Form::parse(body.as_bytes()).unwrap();
            for p in PARAMETERS {
                let theirs = form_urlencoded::parse(body.as_bytes())
                    .find(|(n, _)| n == p)
                    .map(|(_, v)| v.into_owned())
                    .filter(|v| !v.is_empty());
                let ours = form.get(p).unwrap().map(Cow::into_owned);
                // `is` decides by comparing, without decoding: it must agree.
                if let Some(v) = &theirs {
                    // Neither usual encoding matches: `is` must decode.
                    let is = |value: &str| {
                        let value: &'static str = Box::leak(value.to_owned().into_boxed_str());
                        form.is(p, &Expected { value, usual: "\u{0}" })
                    };
                    prop_assert!(is(v), "{} is {:?} in {}", p, v, body);
                    prop_assert!(!is(&format!("{v}x")), "{} in {}", p, body);
                    let shorter = &v[..v.len() - v.chars().last().map_or(0, char::len_utf8)];
                    prop_assert!(shorter.is_empty() || !is(shorter), "{} in {}", p, body);
                }
                prop_assert_eq!(ours, theirs, "{} in {}", p, body);
            }
        }

        /// Differential on arbitrary bytes: whatever this parser accepts, it reads every
        /// known parameter as `form_urlencoded` does, and no known name repeats there.
        #[test]
        fn agrees_with_form_urlencoded_on_what_it_accepts(
            parts in proptest::collection::vec(
                prop_oneof![
                    proptest::sample::select(PARAMETERS).prop_map(|p| format!("{p}=")),
                    "[a-z%=+&]{0,6}",
                    "[\\x00-\\xff]{0,6}",
                ],
                0..12,
            )
        ) {
            let body = parts.concat();
            let body = body.as_bytes();
            let Ok(form) = Form::parse(body) else { return Ok(()); };
            for p in PARAMETERS {
                // Empty values are omitted (RFC 6749 §3.1): they repeat nothing.
                let all: Vec<String> = form_urlencoded::parse(body)
                    .filter(|(n, v)| n == p && !v.is_empty())
                    .map(|(_, v)| v.into_owned())
                    .collect();
                prop_assert!(all.len() <= 1, "{} repeated in {:?}", p, body);
                let theirs = all.into_iter().next();
                let ours = form.get(p).unwrap().map(Cow::into_owned);
                prop_assert_eq!(ours, theirs, "{} in {:?}", p, body);
            }
        }
    }
}
