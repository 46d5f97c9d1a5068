//! The device authorization answer (RFC 8628 §3.2), written from a template made once
//! for the issuer: what the endpoint (`device_authorization.rs`) sends, and what the
//! app's state ([`crate::app::state::App`]) keeps.

use crate::http::paths;
use crate::protocol::device_code::{DeviceCode, ENCODED_LEN};
use crate::protocol::user_code::DISPLAY_LEN;

/// The RFC 8628 §3.2 answer, from a template: everything but the two codes is the same
/// for every answer and spelled (JSON-escaped by serde_json) once, with room left for
/// the codes, so that an answer is one copy of the template and three fixed-size
/// writes. Issuance is a hot path (issue 12); a test checks the bytes equal
/// serde_json's serialization of `DeviceAuthorizationResponse`.
pub(crate) struct DeviceAnswer {
    /// `{"device_code":"<code>","user_code":"<user code>","verification_uri":"<uri>",
    /// "verification_uri_complete":"<uri>?user_code=<user code>","expires_in":<n>,
    /// "interval":<n>}`, with placeholders for the codes.
    template: Box<[u8]>,
    /// Where the device code goes.
    device_code_at: usize,
    /// Where the user code goes, twice.
    user_code_at: [usize; 2],
}

impl DeviceAnswer {
    /// The template for `issuer` and these lifetimes.
    pub(crate) fn new(issuer: &str, expires_in_secs: u64, interval_secs: u64) -> DeviceAnswer {
        let uri = format!("{issuer}{}", paths::VERIFICATION);
        // serde_json's escaping of the URI, without its quotes.
        let escaped = serde_json::to_string(&uri).unwrap_or_default();
        let escaped = &escaped[1..escaped.len() - 1];
        let mut template = Vec::new();
        template.extend_from_slice(br#"{"device_code":""#);
        let device_code_at = template.len();
        template.extend_from_slice(&[b'-'; ENCODED_LEN]);
        template.extend_from_slice(br#"","user_code":""#);
        let first = template.len();
        template.extend_from_slice(&[b'-'; DISPLAY_LEN]);
        template.extend_from_slice(
            format!(r#"","verification_uri":"{escaped}","verification_uri_complete":"{escaped}?user_code="#)
                .as_bytes(),
        );
        let second = template.len();
        template.extend_from_slice(&[b'-'; DISPLAY_LEN]);
        template.extend_from_slice(
            format!(r#"","expires_in":{expires_in_secs},"interval":{interval_secs}}}"#).as_bytes(),
        );
        DeviceAnswer {
            template: template.into_boxed_slice(),
            device_code_at,
            user_code_at: [first, second],
        }
    }

    /// The answer for `code`. RFC 8628 §3.3.1: the complete URI carries the user code,
    /// so the person need not type it; it never carries the device code (checklist
    /// DR-14).
    pub(crate) fn render(&self, code: &DeviceCode) -> Vec<u8> {
        let mut out = self.template.to_vec();
        let at = self.device_code_at;
        code.encode_into(
            (&mut out[at..at + ENCODED_LEN])
                .try_into()
                .expect("the template has room for the device code"),
        );
        let user_code = code.user_code.display_bytes();
        for at in self.user_code_at {
            out[at..at + DISPLAY_LEN].copy_from_slice(&user_code);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use deviceflow_wire::DeviceAuthorizationResponse;

    use super::*;
    use crate::protocol::device_code::Secret;
    use crate::protocol::user_code::UserCode;

    #[test]
    fn the_written_answer_is_what_serde_json_writes() {
        for issuer in [
            "http://127.0.0.1:8080",
            "https://auth.example.test/tenant/a",
            r#"https://odd.example.test/"quoted"\path"#,
        ] {
            let answer = DeviceAnswer::new(issuer, 600, 5);
            for _ in 0..100 {
                let code = DeviceCode {
                    user_code: UserCode::generate(),
                    secret: Secret::generate(),
                };
                let uri = format!("{issuer}{}", paths::VERIFICATION);
                let user_code = code.user_code.display();
                let expected = serde_json::to_vec(&DeviceAuthorizationResponse {
                    device_code: code.encode(),
                    verification_uri_complete: Some(format!("{uri}?user_code={user_code}")),
                    verification_uri: uri,
                    user_code,
                    expires_in: 600,
                    interval: Some(5),
                })
                .unwrap();
                assert_eq!(
                    String::from_utf8(answer.render(&code)).unwrap(),
                    String::from_utf8(expected).unwrap()
                );
            }
        }
    }
}
