//! Strict JSON reading: most parsers keep the last of two members with the same name
//! without a word, which would hide a server that sends `error` twice (checklist DR-09).

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
            let start: String = String::from_utf8_lossy(bytes).chars().take(60).collect();
            return Json {
                value: None,
                problem: Some(format!("the body is not JSON ({e}); it starts {start:?}")),
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

/// The first top-level member name that repeats.
pub fn duplicate_member(bytes: &[u8]) -> Option<String> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Option<String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
            let mut seen: Vec<String> = Vec::new();
            let mut dup = None;
            while let Some(k) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                if dup.is_none() && seen.contains(&k) {
                    dup = Some(k.clone());
                }
                seen.push(k);
            }
            Ok(dup)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(bytes);
    de.deserialize_map(Keys).ok().flatten()
}

/// RFC 6749 §5.2: `error` and `error_description` use %x20-21 / %x23-5B / %x5D-7E.
pub fn is_error_char(b: u8) -> bool {
    matches!(b, 0x20 | 0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn non_json_and_non_objects_are_problems() {
        assert!(parse(b"<html>500</html>")
            .problem
            .unwrap()
            .starts_with("the body is not JSON"));
        assert!(parse(b"[1]").problem.unwrap().contains("not an object"));
        assert!(parse(b"").problem.is_some());
        assert!(parse(br#"{"a":1}"#).object().is_some());
    }
}
