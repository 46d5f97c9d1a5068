//! `application/x-www-form-urlencoded` request bodies, parsed strictly and without
//! allocating on the common path.
//!
//! RFC 8628 §3.1 and RFC 6749 §3.2: "Request and response parameters MUST NOT be
//! included more than once" and "Parameters sent without a value MUST be treated as if
//! they were omitted from the request." So a repeated name is an error, an empty value
//! reads as absent, and unknown names are kept only to be checked for repeats.

use std::borrow::Cow;

/// More parameters than any device-flow request needs; beyond it, `invalid_request`.
pub const MAX_PARAMS: usize = 16;

/// The largest body a form is read from (offsets are kept in 16 bits).
pub const MAX_BODY: usize = u16::MAX as usize;

/// Why a body is not an acceptable form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("more than {MAX_PARAMS} parameters")]
    TooMany,
    #[error("parameter \"{0}\" is repeated (RFC 6749 §3.2)")]
    Repeated(String),
    #[error("the body is not valid percent-encoded UTF-8 (RFC 8628 §3.1)")]
    NotUtf8,
    #[error("the body has an invalid percent-escape")]
    BadEscape,
    #[error("the body is larger than {MAX_BODY} bytes")]
    TooLarge,
}

/// Where one `name=value` pair sits in the body: byte offsets, and whether each part
/// needs decoding at all.
#[derive(Clone, Copy, Default)]
struct Pair {
    start: u16,
    eq: u16,
    end: u16,
    plain_name: bool,
    plain_value: bool,
}

/// A parsed form: the validated body and an index of its pairs, 8 bytes each, so
/// that parsing the poll body builds no table of slices and lookups walk no bytes twice.
pub struct Form<'a> {
    body: &'a [u8],
    pairs: [Pair; MAX_PARAMS],
    len: u8,
}

impl<'a> Form<'a> {
    /// Validates `body`: every name and value must percent-decode to UTF-8, there are
    /// at most [`MAX_PARAMS`] parameters, and no name appears twice.
    pub fn parse(body: &'a [u8]) -> Result<Form<'a>, FormError> {
        if body.len() > MAX_BODY {
            return Err(FormError::TooLarge);
        }
        let mut form = Form {
            body,
            pairs: [Pair::default(); MAX_PARAMS],
            len: 0,
        };
        // One pass over the bytes: split the pairs, note which parts need decoding,
        // and check every escape. Parts with escapes of non-ASCII bytes are decoded and
        // checked as UTF-8 at the end of their pair; raw non-ASCII bytes, once, at the
        // end.
        let mut raw_non_ascii = false;
        let mut start = 0;
        let mut eq: Option<usize> = None;
        let (mut plain_name, mut plain_value) = (true, true);
        let (mut utf8_name, mut utf8_value) = (false, false);
        let mut i = 0;
        while i <= body.len() {
            let b = body.get(i).copied().unwrap_or(b'&');
            match b {
                b'&' => {
                    if i > start {
                        let split = eq.unwrap_or(i);
                        if utf8_name {
                            validate(&body[start..split])?;
                        }
                        if utf8_value {
                            validate(&body[(split + 1).min(i)..i])?;
                        }
                        form.push(Pair {
                            // MAX_BODY keeps every offset within u16.
                            start: start as u16,
                            eq: split as u16,
                            end: i as u16,
                            plain_name,
                            plain_value,
                        })?;
                    }
                    start = i + 1;
                    eq = None;
                    (plain_name, plain_value, utf8_name, utf8_value) = (true, true, false, false);
                }
                b'=' if eq.is_none() => eq = Some(i),
                b'%' | b'+' => {
                    let mut high = false;
                    if b == b'%' {
                        let hi = body.get(i + 1).and_then(|&h| hex(h));
                        let lo = body.get(i + 2).and_then(|&l| hex(l));
                        let (Some(hi), Some(_)) = (hi, lo) else {
                            return Err(FormError::BadEscape);
                        };
                        high = hi >= 8;
                        i += 2;
                    }
                    if eq.is_none() {
                        plain_name = false;
                        utf8_name |= high;
                    } else {
                        plain_value = false;
                        utf8_value |= high;
                    }
                }
                b if b >= 0x80 => raw_non_ascii = true,
                _ => {}
            }
            i += 1;
        }
        // Raw bytes outside escapes must be UTF-8 themselves.
        if raw_non_ascii {
            std::str::from_utf8(body).map_err(|_| FormError::NotUtf8)?;
        }
        Ok(form)
    }

    /// Adds a pair, refusing a repeated name and one too many.
    fn push(&mut self, pair: Pair) -> Result<(), FormError> {
        if usize::from(self.len) == MAX_PARAMS {
            return Err(FormError::TooMany);
        }
        let name = &self.body[usize::from(pair.start)..usize::from(pair.eq)];
        if self
            .iter()
            .any(|(p, seen, _)| same_name(seen, p.plain_name, name, pair.plain_name))
        {
            let name = percent_decode(name).map_or_else(|_| String::new(), Cow::into_owned);
            return Err(FormError::Repeated(name));
        }
        self.pairs[usize::from(self.len)] = pair;
        self.len += 1;
        Ok(())
    }

    /// The pairs: index entry, raw name, raw value.
    fn iter(&self) -> impl Iterator<Item = (Pair, &'a [u8], &'a [u8])> + '_ {
        let body = self.body;
        self.pairs[..usize::from(self.len)].iter().map(move |p| {
            let (start, eq, end) = (usize::from(p.start), usize::from(p.eq), usize::from(p.end));
            (*p, &body[start..eq], &body[(eq + 1).min(end)..end])
        })
    }

    fn find(&self, name: &str) -> Option<(Pair, &'a [u8])> {
        let wanted = name.as_bytes();
        self.iter()
            .find(|(p, n, _)| {
                if p.plain_name {
                    *n == wanted
                } else {
                    decoded_eq_str(n, name)
                }
            })
            .map(|(p, _, v)| (p, v))
            .filter(|(_, v)| !v.is_empty())
    }

    /// The raw value of `name`, still encoded; empty values read as absent.
    pub fn raw(&self, name: &str) -> Option<&'a [u8]> {
        self.find(name).map(|(_, v)| v)
    }

    /// The decoded value of `name`; borrowed from the body unless it had escapes.
    /// Empty values read as absent.
    pub fn get(&self, name: &str) -> Result<Option<Cow<'a, str>>, FormError> {
        self.raw(name).map(percent_decode).transpose()
    }

    /// Whether `name` is present with exactly `expected` as its decoded value, decided
    /// without allocating.
    pub fn is(&self, name: &str, expected: &str) -> bool {
        self.find(name).is_some_and(|(p, v)| {
            if p.plain_value {
                v == expected.as_bytes()
            } else {
                decoded_eq_str(v, expected)
            }
        })
    }

    /// Whether `name` is present (with a non-empty value).
    pub fn has(&self, name: &str) -> bool {
        self.raw(name).is_some()
    }
}

fn same_name(a: &[u8], plain_a: bool, b: &[u8], plain_b: bool) -> bool {
    if plain_a && plain_b {
        a == b
    } else {
        decoded_eq(a, b)
    }
}

/// Percent-decodes form data (`+` is a space). Borrows when nothing needs decoding.
pub fn percent_decode(raw: &[u8]) -> Result<Cow<'_, str>, FormError> {
    if !raw.iter().any(|&b| b == b'%' || b == b'+') {
        return std::str::from_utf8(raw)
            .map(Cow::Borrowed)
            .map_err(|_| FormError::NotUtf8);
    }
    let bytes = Decoded::new(raw).collect::<Result<Vec<u8>, FormError>>()?;
    String::from_utf8(bytes)
        .map(Cow::Owned)
        .map_err(|_| FormError::NotUtf8)
}

/// Checks that an escaped `raw` decodes to UTF-8. The common case, escapes of ASCII
/// (`%3A` in the grant type URN), needs only a syntax check of each escape; values with
/// escapes of bytes above 0x7F are decoded into a stack buffer and checked.
fn validate(raw: &[u8]) -> Result<(), FormError> {
    let mut non_ascii = false;
    let mut i = 0;
    while let Some(p) = raw[i..].iter().position(|&b| b == b'%') {
        let at = i + p;
        let hi = raw.get(at + 1).and_then(|&h| hex(h));
        let lo = raw.get(at + 2).and_then(|&l| hex(l));
        let (Some(hi), Some(_)) = (hi, lo) else {
            return Err(FormError::BadEscape);
        };
        non_ascii |= hi >= 8;
        i = at + 3;
    }
    if !non_ascii {
        return Ok(());
    }
    let mut buf = [0u8; 256];
    let mut n = 0;
    for b in Decoded::new(raw) {
        let b = b?;
        if n == buf.len() {
            return percent_decode(raw).map(|_| ());
        }
        buf[n] = b;
        n += 1;
    }
    std::str::from_utf8(&buf[..n])
        .map(|_| ())
        .map_err(|_| FormError::NotUtf8)
}

fn decoded_eq(a: &[u8], b: &[u8]) -> bool {
    Decoded::new(a)
        .map(Result::ok)
        .eq(Decoded::new(b).map(Result::ok))
}

fn decoded_eq_str(raw: &[u8], s: &str) -> bool {
    // A tight loop rather than the `Decoded` iterator: this compares the grant type URN
    // of every poll.
    let want = s.as_bytes();
    let (mut i, mut j) = (0, 0);
    while i < raw.len() {
        let b = match raw[i] {
            b'%' => match (
                raw.get(i + 1).and_then(|&h| hex(h)),
                raw.get(i + 2).and_then(|&l| hex(l)),
            ) {
                (Some(hi), Some(lo)) => {
                    i += 3;
                    hi << 4 | lo
                }
                _ => return false,
            },
            b'+' => {
                i += 1;
                b' '
            }
            b => {
                i += 1;
                b
            }
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
    type Item = Result<u8, FormError>;

    fn next(&mut self) -> Option<Self::Item> {
        let b = *self.raw.get(self.at)?;
        self.at += 1;
        Some(match b {
            b'+' => Ok(b' '),
            b'%' => {
                let hi = self.raw.get(self.at).and_then(|&h| hex(h));
                let lo = self.raw.get(self.at + 1).and_then(|&l| hex(l));
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        self.at += 2;
                        Ok(hi << 4 | lo)
                    }
                    _ => {
                        self.at = self.raw.len();
                        Err(FormError::BadEscape)
                    }
                }
            }
            b => Ok(b),
        })
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_escapes_and_plus() {
        let form = Form::parse(b"grant_type=urn%3Aietf%3Aparams&scope=openid+profile&x=%E2%82%AC")
            .unwrap();
        assert!(form.is("grant_type", "urn:ietf:params"));
        assert_eq!(form.get("scope").unwrap().unwrap(), "openid profile");
        assert_eq!(form.get("x").unwrap().unwrap(), "€");
        assert!(matches!(form.get("scope").unwrap().unwrap(), Cow::Owned(_)));
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
    fn empty_values_read_as_omitted() {
        // RFC 8628 §3.1: "Parameters sent without a value MUST be treated as if they
        // were omitted from the request."
        let form = Form::parse(b"client_id=tv&scope=&flag").unwrap();
        assert_eq!(form.get("scope").unwrap(), None);
        assert_eq!(form.get("flag").unwrap(), None);
        assert!(!form.has("scope"));
        assert!(form.has("client_id"));
    }

    #[test]
    fn repeated_parameters_are_refused_even_when_encoded_differently() {
        assert_eq!(
            Form::parse(b"client_id=a&client_id=a").err(),
            Some(FormError::Repeated("client_id".into()))
        );
        assert_eq!(
            Form::parse(b"scope=a&sc%6Fpe=b").err(),
            Some(FormError::Repeated("scope".into()))
        );
        assert_eq!(
            Form::parse(b"foo=1&foo=2").err(),
            Some(FormError::Repeated("foo".into()))
        );
    }

    #[test]
    fn refuses_bad_escapes_non_utf8_and_too_many_parameters() {
        assert_eq!(Form::parse(b"a=%zz").err(), Some(FormError::BadEscape));
        assert_eq!(Form::parse(b"a=%4").err(), Some(FormError::BadEscape));
        assert_eq!(Form::parse(b"a=%ff%fe").err(), Some(FormError::NotUtf8));
        assert_eq!(Form::parse(b"a=\xff").err(), Some(FormError::NotUtf8));
        let long = format!("a={}", "%C3%A9".repeat(200) + "%ff");
        assert_eq!(Form::parse(long.as_bytes()).err(), Some(FormError::NotUtf8));
        let many: Vec<String> = (0..=MAX_PARAMS).map(|i| format!("p{i}=v")).collect();
        assert_eq!(
            Form::parse(many.join("&").as_bytes()).err(),
            Some(FormError::TooMany)
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics(body in proptest::collection::vec(any::<u8>(), 0..300)) {
            if let Ok(form) = Form::parse(&body) {
                let _ = form.get("client_id");
            }
        }

        #[test]
        fn encoded_values_decode_back(value in "\\PC{0,40}") {
            let encoded: String = value.bytes().map(|b| format!("%{b:02X}")).collect();
            let body = format!("v={encoded}");
            let form = Form::parse(body.as_bytes()).unwrap();
            let got = form.get("v").unwrap().map(Cow::into_owned).unwrap_or_default();
            prop_assert_eq!(got, value);
        }
    }
}
