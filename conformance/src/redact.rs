//! What the evidence never shows: credentials. Every text the suite records (a request
//! or response body, a URL, a header, an error, the approver's command line) passes
//! through [`redact`] or [`redact_header`], so that the reports (JSON, JUnit, Markdown,
//! the terminal's one-line briefs) never hold a live credential; the checks read the
//! raw bytes. The loadgen's reports mask device codes the same way.

use crate::client::WRONG_SECRET;

/// Parameter and JSON member names whose values are credentials, redacted wherever
/// they appear: in form bodies, query strings and fragments, and JSON at any depth.
///
/// `device_code` is among them: until it is redeemed or expires, a device code and the
/// (public) client's id are a bearer credential for the token the person approves
/// (RFC 8628 §3.4, §5.2), and a report outlives the run and cannot tell which codes are
/// spent. `user_code` is not: it is made to be shown to people (RFC 8628 §3.3), is
/// useless without the person's own session, and the evidence of DR-07, UI-07 and SC-01
/// is about its very characters.
const SECRET_NAMES: [&str; 13] = [
    "access_token",
    "refresh_token",
    "id_token",
    "device_code",
    "token",
    "code",
    "client_secret",
    "client_assertion",
    "registration_access_token",
    "password",
    "assertion",
    "subject_token",
    "actor_token",
];

/// Headers whose values are credentials.
const SECRET_HEADERS: [&str; 4] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
];

/// Values at least this long keep their first [`MASK_PREFIX`] characters in the
/// evidence, so that a reader can tell which code a poll used; shorter ones keep
/// only their length (a prefix would give away too much of them).
const MASK_PREFIX_FROM: usize = 20;
const MASK_PREFIX: usize = 4;

/// A credential as the evidence shows it: its length, and its first characters when
/// it is long enough to spare them. One shape for every credential.
/// Empty values and values already masked are kept as they are: an empty
/// `device_code=` is evidence (TR-03), and redacting twice changes nothing.
pub fn mask(value: &str) -> String {
    if value.is_empty() || existing_mask(value) == Some(value.len()) {
        return value.to_owned();
    }
    let n = value.chars().count();
    if n >= MASK_PREFIX_FROM {
        let prefix: String = value.chars().take(MASK_PREFIX).collect();
        format!("{prefix}…<redacted, {n} chars>")
    } else {
        format!("<redacted, {n} chars>")
    }
}

/// The length in bytes of the [`mask`] that `s` starts with, if it starts with one.
fn existing_mask(s: &str) -> Option<usize> {
    const OPEN: &str = "<redacted, ";
    const CLOSE: &str = " chars>";
    let start = s.find(OPEN)?;
    let prefix = &s[..start];
    let prefix_ok =
        prefix.is_empty() || (prefix.ends_with('…') && prefix.chars().count() <= MASK_PREFIX + 1);
    let digits = &s[start + OPEN.len()..];
    let n = digits.bytes().take_while(u8::is_ascii_digit).count();
    (prefix_ok && n > 0 && digits[n..].starts_with(CLOSE))
        .then_some(start + OPEN.len() + n + CLOSE.len())
}

/// A header as the evidence shows it: credentials masked (the scheme of
/// `Authorization` kept, the cookie names and attributes kept), any other value
/// passed through [`redact`] (a `Location` may carry a code in its query).
pub fn redact_header(name: &str, value: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if !SECRET_HEADERS.contains(&lower.as_str()) {
        return redact(value);
    }
    match lower.as_str() {
        "cookie" => value
            .split(';')
            .map(|pair| mask_pair(pair.trim()))
            .collect::<Vec<_>>()
            .join("; "),
        "set-cookie" => match value.split_once(';') {
            Some((pair, attributes)) => format!("{};{attributes}", mask_pair(pair.trim())),
            None => mask_pair(value.trim()),
        },
        _ => match value.trim().split_once(' ') {
            Some((scheme, credentials)) => format!("{scheme} {}", mask(credentials.trim())),
            None => mask(value),
        },
    }
}

/// `name=value` with the value masked.
fn mask_pair(pair: &str) -> String {
    match pair.split_once('=') {
        Some((name, value)) => format!("{name}={}", mask(value)),
        None => mask(pair),
    }
}

/// The one redaction of the evidence: any text the suite records (a request or
/// response body, a URL, a header value, an error) with every credential of
/// `SECRET_NAMES` masked, whether it stands as a JSON member (at any depth, with a
/// string value) or as a `name=value` pair (form bodies, query strings, fragments,
/// even inside a JSON string). Everything else is kept as it came, byte for byte:
/// a repeated member or a malformed body stays evidence.
pub fn redact(text: &str) -> String {
    redact_pairs(&redact_json_members(text))
}

/// Whether a parameter or member called `name` holds a credential the evidence masks.
///
/// Besides `SECRET_NAMES`, a name is taken for a credential by its last word (split
/// at `_` and `-`): a server's own `session_token`, `api-key`, `jwt` or `x_auth` is one
/// too, though no RFC names it, and so is an option such as `--admin-token`; by its
/// ending for words run together (`sessiontoken`). `token_type`, `token_endpoint`,
/// `--auth-method` and `--device-authorization-endpoint` end in other words.
pub fn is_secret_name(name: &str) -> bool {
    if SECRET_NAMES.iter().any(|s| s.eq_ignore_ascii_case(name)) {
        return true;
    }
    let name = name.to_ascii_lowercase();
    let last = name.rsplit(['_', '-']).next().unwrap_or_default();
    let words = [
        "token",
        "secret",
        "password",
        "passwd",
        "passphrase",
        "pass",
        "pwd",
        "key",
        "apikey",
        "assertion",
        "jwt",
        "credential",
        "credentials",
        "cookie",
        "bearer",
        "auth",
        "authorization",
    ];
    let run_together = ["token", "secret", "password", "apikey"];
    words.contains(&last) || run_together.iter().any(|end| name.ends_with(end))
}

/// A credential named `name` as the evidence shows it: [`mask`], with no first
/// characters kept for what a person chose (a client secret, a password), where
/// even four of them say too much.
fn mask_named(name: &str, value: &str) -> String {
    let name = name.to_ascii_lowercase();
    let chosen = ["secret", "password", "passwd"]
        .iter()
        .any(|end| name.ends_with(end));
    if value == WRONG_SECRET {
        value.to_owned()
    } else if chosen && !value.is_empty() && existing_mask(value) != Some(value.len()) {
        format!("<redacted, {} chars>", value.chars().count())
    } else {
        mask(value)
    }
}

/// The end (exclusive) of the JSON string literal opening at `start`, or `None` when
/// the text ends first (a cut body).
fn json_string_end(b: &[u8], start: usize) -> Option<usize> {
    let mut i = start + 1;
    while i < b.len() {
        match b[i] {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
    None
}

fn skip_whitespace(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && b[i].is_ascii_whitespace() {
        i += 1;
    }
    i
}

/// Masks the string value of every JSON member named in [`SECRET_NAMES`], scanning the
/// text rather than parsing it, so that it works on any body: nested, repeated
/// members, not quite JSON, or cut short (an unterminated secret is masked to the end).
fn redact_json_members(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'"' {
            i += 1;
            continue;
        }
        let Some(key_end) = json_string_end(b, i) else {
            break;
        };
        // A name written with escapes (`acce\u0073s_token`) is the same name.
        let raw = &text[i + 1..key_end - 1];
        let key = match raw.contains('\\') {
            true => serde_json::from_str::<String>(&text[i..key_end])
                .map_or(std::borrow::Cow::Borrowed(raw), std::borrow::Cow::Owned),
            false => std::borrow::Cow::Borrowed(raw),
        };
        let colon = skip_whitespace(b, key_end);
        if colon < b.len() && b[colon] == b':' && is_secret_name(&key) {
            let value = skip_whitespace(b, colon + 1);
            if value < b.len() && b[value] == b'"' {
                let value_end = json_string_end(b, value).unwrap_or(b.len() + 1);
                let inner = &text[value + 1..(value_end - 1).min(b.len())];
                out.push_str(&text[copied..=value]);
                out.push_str(&mask_named(&key, inner));
                if value_end <= b.len() {
                    out.push('"');
                }
                copied = value_end.min(b.len());
                i = copied;
                continue;
            }
        }
        i = key_end;
    }
    out.push_str(&text[copied..]);
    out
}

/// Masks the value of every `name=value` pair whose name is in [`SECRET_NAMES`] and
/// starts the text or follows `&`, `?`, `#`, `;`, whitespace or a quote; the value
/// runs to the next `&`, `#`, `;`, whitespace, quote or angle bracket.
fn redact_pairs(text: &str) -> String {
    let b = text.as_bytes();
    let starts_name = |i: usize| {
        i == 0
            || matches!(
                b[i - 1],
                b'&' | b'?' | b'#' | b';' | b'"' | b'\'' | b'(' | b','
            )
            || b[i - 1].is_ascii_whitespace()
    };
    let ends_value = |c: u8| {
        matches!(
            c,
            b'&' | b'#' | b';' | b'"' | b'\'' | b'<' | b'>' | b',' | b')'
        ) || c.is_ascii_whitespace()
    };
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut i = 0;
    while i < b.len() {
        if !starts_name(i) || !(b[i].is_ascii_alphanumeric() || b[i] == b'_') {
            i += 1;
            continue;
        }
        let mut eq = i;
        // `-` too: `x-api-key=` had stopped the name at its first dash.
        while eq < b.len() && (b[eq].is_ascii_alphanumeric() || b[eq] == b'_' || b[eq] == b'-') {
            eq += 1;
        }
        if eq < b.len() && b[eq] == b'=' && is_secret_name(&text[i..eq]) {
            if let Some(n) = existing_mask(&text[eq + 1..]) {
                i = eq + 1 + n;
                continue;
            }
            let mut end = eq + 1;
            while end < b.len() && !ends_value(b[end]) {
                end += 1;
            }
            out.push_str(&text[copied..=eq]);
            out.push_str(&mask_named(&text[i..eq], &text[eq + 1..end]));
            copied = end;
            i = end;
        } else {
            i = eq.max(i + 1);
        }
    }
    out.push_str(&text[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_redacted_from_evidence() {
        assert_eq!(
            redact("client_id=x&client_secret=s3cret&scope=a"),
            "client_id=x&client_secret=<redacted, 6 chars>&scope=a"
        );
        assert_eq!(
            redact_header("Authorization", "Basic abc"),
            "Basic <redacted, 3 chars>"
        );
    }

    const LIVE: &str = "tok3n-abcdefghijklmnopqrstuvwxyz";

    #[test]
    fn credentials_in_forms_and_urls_show_only_a_prefix_and_their_length() {
        let masked = "tok3…<redacted, 32 chars>";
        assert_eq!(
            redact(&format!(
                "grant_type=refresh_token&refresh_token={LIVE}&client_id=a&user_code=WDJB-MJHT"
            )),
            format!(
                "grant_type=refresh_token&refresh_token={masked}&client_id=a&user_code=WDJB-MJHT"
            )
        );
        assert_eq!(
            redact(&format!("token={LIVE}&token_type_hint=access_token")),
            format!("token={masked}&token_type_hint=access_token")
        );
        // An empty code stays visibly empty (TR-03's evidence).
        assert_eq!(redact("device_code=&x=1"), "device_code=&x=1");
        assert_eq!(
            redact(&format!(
                "https://app/cb?state=1&code=abc#access_token={LIVE}&x=1"
            )),
            format!("https://app/cb?state=1&code=<redacted, 3 chars>#access_token={masked}&x=1")
        );
    }

    #[test]
    fn credentials_in_json_are_masked_at_any_depth_and_the_rest_kept_byte_for_byte() {
        let body = format!(
            r#"{{"access_token": "{LIVE}", "token_type":"Bearer","a":{{"refresh_token":"{LIVE}","id_token":"e\"y"}},"user_code":"WDJB-MJHT","device_code":"{LIVE}","device_code":"x","verification_uri_complete":"https://as/d?user_code=W&device_code={LIVE}","expires_in":60}}"#
        );
        let masked = "tok3…<redacted, 32 chars>";
        assert_eq!(
            redact(&body),
            format!(
                r#"{{"access_token": "{masked}", "token_type":"Bearer","a":{{"refresh_token":"{masked}","id_token":"<redacted, 4 chars>"}},"user_code":"WDJB-MJHT","device_code":"{masked}","device_code":"<redacted, 1 chars>","verification_uri_complete":"https://as/d?user_code=W&device_code={masked}","expires_in":60}}"#
            )
        );
        // A body cut inside a credential keeps none of it.
        assert_eq!(
            redact(&format!(r#"{{"refresh_token":"{}"#, &LIVE[..25])),
            r#"{"refresh_token":"tok3…<redacted, 25 chars>"#
        );
        // Redacting twice changes nothing.
        let once = redact(&body);
        assert_eq!(redact(&once), once);
        let form = redact(&format!("device_code={LIVE}&code=ab"));
        assert_eq!(redact(&form), form);
    }

    #[test]
    fn credentials_under_other_names_and_escaped_names_are_masked_too() {
        let masked = "tok3…<redacted, 32 chars>";
        let body = format!(
            r#"{{"session_token":"{LIVE}","jwt":"{LIVE}","tokens":{{"bearer_token":"{LIVE}","api_key":"{LIVE}"}},"acce\u0073s_token":"{LIVE}","token_type":"Bearer","token_endpoint":"https://as/t"}}"#
        );
        assert_eq!(
            redact(&body),
            format!(
                r#"{{"session_token":"{masked}","jwt":"{masked}","tokens":{{"bearer_token":"{masked}","api_key":"{masked}"}},"acce\u0073s_token":"{masked}","token_type":"Bearer","token_endpoint":"https://as/t"}}"#
            )
        );
        // What a person chose keeps no first characters, however long.
        assert_eq!(
            redact(&format!("client_secret={LIVE}&password={LIVE}&scope=a")),
            "client_secret=<redacted, 32 chars>&password=<redacted, 32 chars>&scope=a"
        );
        assert_eq!(
            redact(&format!(r#"{{"client_secret":"{LIVE}"}}"#)),
            r#"{"client_secret":"<redacted, 32 chars>"}"#
        );
        let once = redact(&format!("client_secret={LIVE}"));
        assert_eq!(redact(&once), once);
        // Names with dashes, a bare `key`, credentials; the suite's own wrong secret
        // is evidence, shown whole.
        assert_eq!(
            redact("x-api-key=K3Y&key=K&credentials=C&client_secret=deviceflow-conformance-wrong-secret"),
            "x-api-key=<redacted, 3 chars>&key=<redacted, 1 chars>&credentials=<redacted, 1 chars>&client_secret=deviceflow-conformance-wrong-secret"
        );
        for kept in [
            "token_type",
            "token_endpoint",
            "auth-method",
            "device-authorization-endpoint",
            "passive",
            "keyring",
            "user_code",
        ] {
            assert!(!is_secret_name(kept), "{kept}");
        }
    }

    #[test]
    fn credential_headers_keep_their_scheme_and_cookie_names() {
        assert_eq!(
            redact_header("authorization", &format!("Bearer {LIVE}")),
            "Bearer tok3…<redacted, 32 chars>"
        );
        assert_eq!(
            redact_header("Cookie", "sid=abc; theme=dark"),
            "sid=<redacted, 3 chars>; theme=<redacted, 4 chars>"
        );
        assert_eq!(
            redact_header("set-cookie", "sid=abc; Path=/; HttpOnly"),
            "sid=<redacted, 3 chars>; Path=/; HttpOnly"
        );
        assert_eq!(
            redact_header("location", "https://app/cb?code=abc&state=s"),
            "https://app/cb?code=<redacted, 3 chars>&state=s"
        );
        assert_eq!(redact_header("content-type", "text/html"), "text/html");
    }
}
