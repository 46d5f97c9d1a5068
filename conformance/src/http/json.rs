//! Strict JSON reading: most parsers keep the last of two members with the same name
//! without a word, which would hide a server that sends `error` twice (checklist DR-09).

use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserializer, IgnoredAny, MapAccess, Visitor};
use serde_json::Value;

/// A body read as JSON: the value if it parsed, and what is wrong with it, if anything.
#[derive(Debug, Clone, PartialEq)]
pub struct Json {
    pub value: Option<Value>,
    pub problem: Option<String>,
}

impl Json {
    /// The value when it is a JSON object with no problem.
    pub fn object(&self) -> Option<&serde_json::Map<String, Value>> {
        if self.problem.is_some() {
            return None;
        }
        self.value.as_ref()?.as_object()
    }
}

pub fn parse(bytes: &[u8]) -> Json {
    let value: Value = match serde_json::from_slice(bytes) {
        Ok(v) => v,
        Err(e) => {
            // The start of the body, redacted as the evidence is (a token response
            // starts with its access token): redacted before it is cut, so that a cut
            // never leaves the start of a credential unrecognised.
            let head = &bytes[..bytes.len().min(4096)];
            let start: String = crate::redact::redact(&String::from_utf8_lossy(head))
                .chars()
                .take(60)
                .collect();
            // RFC 8259 §6: a number past a double's range (1e400) is in JSON's grammar,
            // but not interoperable (parsers differ: an error, infinity); said as that,
            // not as something other than JSON. (serde stops at the first problem: a
            // body cut short after such a number is said by the number.)
            let what = if e.to_string().starts_with("number out of range") {
                "the body has a number past a double's range, which the suite cannot read (RFC 8259 §6: such numbers are not interoperable)"
            } else {
                "the body is not JSON"
            };
            return Json {
                value: None,
                problem: Some(format!("{what} ({e}); it starts {start:?}")),
            };
        }
    };
    if !value.is_object() {
        return Json {
            value: Some(value),
            problem: Some("the body is JSON but not an object".to_owned()),
        };
    }
    let problem = duplicate_member(bytes)
        .map(|name| format!("member \"{name}\" appears more than once (RFC 8628 §3.1 ¶7)"));
    Json {
        value: Some(value),
        problem,
    }
}

/// The first top-level member name that repeats. Linear in the number of members (a
/// hash set of the names seen): a body of 80,000 distinct names, under the 1 MiB the
/// suite reads, took 44 s of CPU with a list searched for each name.
pub fn duplicate_member(bytes: &[u8]) -> Option<String> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
            let mut seen: HashSet<String> = HashSet::new();
            let mut dup = None;
            while let Some(k) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if dup.is_none() && seen.contains(&k) {
                    dup = Some(k);
                } else {
                    seen.insert(k);
                }
            }
            Ok(dup)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.deserialize_map(Keys).ok().flatten()
}

/// A JSON number whose value is a whole, non-negative number, as a `u64`: `600`,
/// `600.0` and `6e2` alike. RFC 8259 §6 has one number type, with no integer kind: a
/// server whose encoder writes `600.0` sends the integer 600 (RFC 8628 §3.2's
/// `expires_in` and `interval` are whole seconds). A fraction, a negative number, a
/// string or anything else is `None`.
pub fn whole_number(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    // The cast saturates at u64::MAX, a lifetime no wait plans for anyway.
    (f >= 0.0 && f.fract() == 0.0).then_some(f as u64)
}

/// A number of seconds as a client must honour it, rounded up: a whole number as
/// [`whole_number`], a fraction (`2.5`) to the next second (a client waiting
/// `interval` seconds waits at least that long, RFC 8628 §3.5), and a string holding a
/// number (`"5"`) read as one, so that the flow goes on while DR-06/DR-11 report it.
pub fn seconds_up(v: &Value) -> Option<u64> {
    seconds(v, f64::ceil)
}

/// A number of seconds as a lifetime to rely on, rounded down (`599.5` lasts at least
/// 599 s); strings holding a number read as one, as in [`seconds_up`].
pub fn seconds_down(v: &Value) -> Option<u64> {
    seconds(v, f64::floor)
}

fn seconds(v: &Value, round: fn(f64) -> f64) -> Option<u64> {
    if let Some(n) = whole_number(v) {
        return Some(n);
    }
    let f = match v {
        Value::String(s) => s.trim().parse::<f64>().ok()?,
        v => v.as_f64()?,
    };
    // The cast saturates at u64::MAX, as in `whole_number`.
    (f.is_finite() && f >= 0.0).then(|| round(f) as u64)
}

/// RFC 6749 §5.2: `error` and `error_description` use %x20-21 / %x23-5B / %x5D-7E.
pub fn is_error_char(b: u8) -> bool {
    matches!(b, 0x20 | 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

/// RFC 6749 §5.2: `error_uri`, a URI reference, uses %x21 / %x23-5B / %x5D-7E: the
/// set of `error` without the space.
pub fn is_error_uri_char(b: u8) -> bool {
    b != 0x20 && is_error_char(b)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn duplicate_members_are_a_problem() {
        let j = parse(br#"{"error":"a","error":"b"}"#);
        assert!(j
            .problem
            .unwrap()
            .contains("\"error\" appears more than once"));
        assert!(parse(br#"{"error":"a","nested":{"x":1,"x":2}}"#)
            .problem
            .is_none());
    }

    /// `{"k000000":0,"k000001":0,...}`: `n` distinct members, 12 bytes each.
    pub(crate) fn distinct_members(n: usize) -> Vec<u8> {
        let members: Vec<String> = (0..n).map(|i| format!("\"k{i:06}\":0")).collect();
        format!("{{{}}}", members.join(",")).into_bytes()
    }

    #[test]
    fn eighty_thousand_distinct_members_are_checked_in_linear_time() {
        // 960 KB, under the 1 MiB the suite reads: 44 s of CPU per parse with the names
        // searched in a list; a linear check takes milliseconds (seconds allowed here,
        // for a slow, loaded debug build).
        let body = distinct_members(80_000);
        assert!(body.len() < crate::http::MAX_BODY_BYTES);
        let t = std::time::Instant::now();
        assert_eq!(duplicate_member(&body), None);
        let mut twice = body.clone();
        twice.truncate(twice.len() - 1);
        twice.extend_from_slice(b",\"k079999\":1}");
        assert_eq!(duplicate_member(&twice).as_deref(), Some("k079999"));
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
    }

    #[test]
    fn a_whole_number_is_one_however_the_encoder_wrote_it() {
        // RFC 8259 §6: 600 and 600.0 are one number; RFC 8628 §3.2's seconds.
        let n = |s: &str| whole_number(&serde_json::from_str(s).unwrap());
        assert_eq!(n("600"), Some(600));
        assert_eq!(n("600.0"), Some(600));
        assert_eq!(n("6e2"), Some(600));
        assert_eq!(n("2.5"), None);
        assert_eq!(n("-5"), None);
        assert_eq!(n("\"5\""), None);
        let up = |s: &str| seconds_up(&serde_json::from_str(s).unwrap());
        assert_eq!(up("7.0"), Some(7));
        assert_eq!(up("2.5"), Some(3));
        assert_eq!(up("\"10\""), Some(10));
        assert_eq!(up("-1"), None);
        let down = |s: &str| seconds_down(&serde_json::from_str(s).unwrap());
        assert_eq!(down("599.5"), Some(599));
        assert_eq!(down("\"600\""), Some(600));
    }

    #[test]
    fn the_start_a_problem_quotes_holds_no_credential() {
        // A token response cut short, or with a number out of range: the problem
        // quotes the body's start, which is where the access token stands.
        let live = "tok3n-abcdefghijklmnopqrstuvwxyz";
        for body in [
            format!(r#"{{"access_token":"{live}","expires_in":1e400}}"#),
            format!(r#"{{"device_code": "{live}"#),
            format!("access_token={live}&token_type=bearer"),
        ] {
            let problem = parse(body.as_bytes()).problem.unwrap();
            assert!(!problem.contains("abcdefgh"), "{problem}");
            assert!(problem.contains("redacted"), "{problem}");
        }
    }

    #[test]
    fn non_json_and_non_objects_are_problems() {
        assert!(parse(b"<html>500</html>")
            .problem
            .unwrap()
            .starts_with("the body is not JSON"));
        assert!(parse(b"[1]").problem.unwrap().contains("not an object"));
        assert!(parse(br#"{"expires_in":1e400}"#)
            .problem
            .unwrap()
            .starts_with("the body has a number past a double's range"));
        assert!(parse(b"").problem.is_some());
        assert!(parse(br#"{"a":1}"#).object().is_some());
    }
}
