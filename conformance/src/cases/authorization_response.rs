//! A.2: the device authorization response (RFC 8628 §3.2; RFC 6749 §5.1/§5.2 conventions).

use std::collections::HashSet;

use serde_json::Value;

use super::{authorize, case, enough_samples, error_shape_problems, expect_success, json_words};
use crate::case::{Case, Check, Level, Status, Verdict};
use crate::client::Client;
use crate::context::Ctx;
use crate::http::reach::{is_https, is_loopback};

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "DR-01",
            "rfc8628/3.2/success-is-200-json",
            "A.2",
            "RFC 8628 §3.2",
            Must,
            None,
            None,
            "Success is 200 with an application/json body",
            dr_01
        ),
        case!(
            "DR-02",
            "rfc8628/3.2/device-code-present",
            "A.2",
            "RFC 8628 §3.2",
            Must,
            None,
            None,
            "device_code is a non-empty string",
            dr_02
        ),
        case!(
            "DR-03",
            "rfc8628/3.2/user-code-present",
            "A.2",
            "RFC 8628 §3.2",
            Must,
            None,
            None,
            "user_code is a non-empty string",
            dr_03
        ),
        case!(
            "DR-04",
            "rfc8628/3.2/verification-uri-absolute",
            "A.2",
            "RFC 8628 §3.2",
            Must,
            None,
            None,
            "verification_uri is an absolute URI",
            dr_04
        ),
        case!(
            "DR-05",
            "rfc8628/3.2/expires-in-positive",
            "A.2",
            "RFC 8628 §3.2",
            Must,
            None,
            None,
            "expires_in is a positive integer",
            dr_05
        ),
        case!(
            "DR-06",
            "rfc8628/3.2/interval-positive",
            "A.2",
            "RFC 8628 §3.2",
            Must,
            None,
            None,
            "interval, if present, is a positive integer",
            dr_06
        ),
        case!(
            "DR-07",
            "rfc8628/3.3.1/verification-uri-complete",
            "A.2",
            "RFC 8628 §3.2",
            Must,
            None,
            None,
            "verification_uri_complete, if present, is absolute and carries the user code",
            dr_07
        ),
        case!(
            "DR-08",
            "rfc8628/3.2/codes-unique",
            "A.2",
            "RFC 8628 §3.2",
            Must,
            None,
            None,
            "device codes and live user codes are unique",
            dr_08
        ),
        case!(
            "DR-09",
            "rfc8628/3.1/no-duplicate-members",
            "A.2",
            "RFC 8628 §3.1",
            Must,
            None,
            None,
            "No JSON member appears twice",
            dr_09
        ),
        case!(
            "DR-10",
            "rfc6749/5.1/authorization-response-no-store",
            "A.2",
            "RFC 6749 §5.1",
            Should,
            None,
            None,
            "The response is Cache-Control: no-store (and Pragma: no-cache)",
            dr_10
        ),
        case!(
            "DR-11",
            "rfc6749/5.1/numbers-are-json-numbers",
            "A.2",
            "RFC 6749 §5.1",
            DerivedMust,
            None,
            None,
            "expires_in and interval are JSON numbers",
            dr_11
        ),
        case!(
            "DR-12",
            "rfc6749/5.2/error-format",
            "A.2",
            "RFC 6749 §5.2",
            Must,
            None,
            None,
            "Errors are 400 (401 for invalid_client) JSON objects with a well-formed error",
            dr_12
        ),
        case!(
            "DR-13",
            "rfc8628/3.3/no-user-code-in-verification-uri",
            "A.2",
            "RFC 8628 §3.3",
            Should,
            None,
            None,
            "The user code is not put in verification_uri",
            dr_13
        ),
        case!(
            "DR-14",
            "rfc8628/3.3/device-code-not-displayed",
            "A.2",
            "RFC 8628 §3.3",
            Should,
            None,
            None,
            "The device code appears in no user-facing URI",
            dr_14
        ),
    ]
}

/// The response body as a JSON object, for member checks.
fn body(a: &crate::context::Authorization) -> serde_json::Map<String, Value> {
    a.exchange
        .json()
        .value
        .and_then(|v| v.as_object().cloned())
        .unwrap_or_default()
}

async fn dr_01(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let e = ctx
        .device_authorization(
            "device authorization",
            Some(ctx.client()),
            &ctx.scope_params(),
        )
        .await;
    // RFC 8628 §3.2: "a response with a 200 (OK) status code ... in JSON".
    expect_success(&mut c, &e, &[]);
    c.finish("200 application/json")
}

async fn member_check(ctx: Ctx, key: &'static str, what: &str) -> Verdict {
    let mut c = Check::new(Level::Must);
    if let Some(a) = authorize(&ctx, &mut c).await {
        let b = body(&a);
        let ok = b
            .get(key)
            .and_then(Value::as_str)
            .is_some_and(|s| !s.is_empty());
        c.expect(
            ok,
            format!(
                "{key} is a non-empty string (got {})",
                json_words(b.get(key))
            ),
        );
    }
    c.finish(what.to_owned())
}

async fn dr_02(ctx: Ctx) -> Verdict {
    member_check(ctx, "device_code", "device_code present").await
}

async fn dr_03(ctx: Ctx) -> Verdict {
    member_check(ctx, "user_code", "user_code present").await
}

async fn dr_04(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    if let Some(a) = authorize(&ctx, &mut c).await {
        let b = body(&a);
        let uri = b
            .get("verification_uri")
            .and_then(Value::as_str)
            .unwrap_or_default();
        // RFC 8628 §3.2: verification_uri is REQUIRED (a client may have read the
        // `verification_url` some servers send instead: it is not the member).
        c.expect(
            !uri.is_empty(),
            format!(
                "verification_uri is present (REQUIRED) (got {})",
                super::json_words(b.get("verification_uri"))
            ),
        );
        let parsed = reqwest::Url::parse(uri);
        // The url crate mends what a browser would (a space, `<`, `|`): a URI holds
        // none of them (RFC 3986 §2), and a client printing or encoding it as a QR
        // code shows what the server sent, not what the crate mended.
        let odd = not_a_uri_character(uri);
        c.expect(
            parsed.is_ok() && odd.is_none(),
            format!(
                "verification_uri is an absolute URI (got {uri:?}{})",
                odd.map_or(String::new(), |o| format!(", {o}"))
            ),
        );
        c.expect(
            is_https(uri) || is_loopback(uri),
            format!("verification_uri is https, or plain http on loopback (got {uri:?})"),
        );
        c.measure("verification_uri_length", uri.len());
        // RFC 8628 §3.2: "should be short and easy to remember" (lower case: a note).
        c.expect_soft(
            uri.len() <= 40,
            format!(
                "verification_uri is short enough to type, at most 40 characters (got {}; RFC 8628 §3.2)",
                uri.len()
            ),
        );
    }
    c.finish("verification_uri is an absolute URI")
}

async fn dr_05(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    if let Some(a) = authorize(&ctx, &mut c).await {
        let v = body(&a).get("expires_in").cloned();
        // RFC 8259 §6: `600.0` is the number 600, a whole number of seconds.
        let n = v.as_ref().and_then(crate::http::json::whole_number);
        c.expect(
            n.is_some_and(|n| n > 0),
            format!(
                "expires_in is a positive integer (got {})",
                json_words(v.as_ref())
            ),
        );
        if let Some(n) = n {
            c.measure("expires_in", n);
        }
    }
    c.finish("expires_in present and positive")
}

async fn dr_06(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    if let Some(a) = authorize(&ctx, &mut c).await {
        match body(&a).get("interval") {
            None => {
                c.measure("interval", "absent (clients use 5)");
            }
            Some(v) => {
                c.expect(
                    crate::http::json::whole_number(v).is_some_and(|n| n > 0),
                    format!("interval is a positive integer (got {v})"),
                );
                c.measure("interval", v.clone());
            }
        }
        c.measure("effective_interval", a.interval);
    }
    c.finish("interval is absent or a positive integer")
}

/// What in `uri` no URI may hold (RFC 3986 §2: unreserved and reserved characters,
/// and `%` with two hex digits), said in words; `None` when there is nothing.
fn not_a_uri_character(uri: &str) -> Option<String> {
    let bytes = uri.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let allowed = b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&b);
        if b == b'%' {
            let hex = |j: usize| bytes.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return Some("a % not followed by two hex digits (RFC 3986 §2.1)".to_owned());
            }
        } else if !allowed {
            let c = uri[i..].chars().next().unwrap_or('?');
            return Some(format!(
                "which holds {c:?}, a character no URI holds unencoded (RFC 3986 §2)"
            ));
        }
    }
    None
}

/// RFC 3986 §2.1: `s` with its percent-encoded octets decoded (a `%` not followed by
/// two hex digits is kept as it is), read as UTF-8, lossily.
fn percent_decoded(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |j: usize| b.get(j).and_then(|&c| (c as char).to_digit(16));
        match (b[i], hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// What of `uri` may carry a user code, decoded: its path (RFC 3986 §2.1), its query's
/// names and values (`application/x-www-form-urlencoded`: `+` is a space) and its
/// fragment. `None` for a URI that does not parse.
fn decoded_parts(uri: &str) -> Option<(String, Vec<(String, String)>)> {
    let u = reqwest::Url::parse(uri).ok()?;
    let mut text = percent_decoded(u.path());
    let query: Vec<(String, String)> = u.query_pairs().into_owned().collect();
    for (k, v) in &query {
        text.push_str(&format!(" {k} {v}"));
    }
    if let Some(f) = u.fragment() {
        text.push(' ');
        text.push_str(&percent_decoded(f));
    }
    Some((text, query))
}

async fn dr_07(ctx: Ctx) -> Verdict {
    // RFC 8628 §3.2: verification_uri_complete is "a verification URI that includes the
    // user_code (or other information with the same function as the user_code)":
    // OPTIONAL; when present, an absolute URI. The code, when it is there, is read from
    // the decoded URI; a handle of another form cannot be checked from outside.
    let mut c = Check::new(Level::Must);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let Some(complete) = a.verification_uri_complete.clone() else {
        c.measure("verification_uri_complete", "absent");
        return c.skip(
            crate::case::Status::Info,
            "verification_uri_complete is not provided (OPTIONAL)",
        );
    };
    c.expect(
        reqwest::Url::parse(&complete).is_ok(),
        format!("verification_uri_complete is an absolute URI (got {complete:?})"),
    );
    let norm = |s: &str| {
        s.chars()
            .filter(|c| c.is_alphanumeric())
            .collect::<String>()
            .to_uppercase()
    };
    let origin = |u: &str| {
        reqwest::Url::parse(u)
            .ok()
            .map(|u| u.origin().ascii_serialization())
    };
    c.measure(
        "same_origin_as_verification_uri",
        origin(&complete) == origin(&a.verification_uri),
    );
    let Some((decoded, query)) = decoded_parts(&complete) else {
        return c.finish("");
    };
    let code = norm(&a.user_code);
    let carries =
        decoded.contains(&a.user_code) || (!code.is_empty() && norm(&decoded).contains(&code));
    c.measure("user_code_found", carries);
    if carries {
        c.expect(
            true,
            format!(
                "verification_uri_complete {complete:?} carries the user code {:?}",
                a.user_code
            ),
        );
        return c.finish("verification_uri_complete carries the user code");
    }
    // A `user_code` parameter naming another code sends the person to a request that is
    // not this one: no handle "with the same function" as this request's user_code.
    if let Some((_, other)) = query.iter().find(|(k, _)| k == "user_code") {
        c.expect(
            false,
            format!(
                "verification_uri_complete {complete:?} carries the user code {:?} (its user_code parameter is {other:?})",
                a.user_code
            ),
        );
        return c.finish("");
    }
    if c.failed() {
        return c.finish("");
    }
    c.skip(
        crate::case::Status::Info,
        format!(
            "not checked: verification_uri_complete {complete:?} does not hold the user code {:?}, decoded; RFC 8628 §3.2 lets it carry other information with the same function (an opaque handle), which cannot be checked from outside",
            a.user_code
        ),
    )
}

async fn dr_08(ctx: Ctx) -> Verdict {
    let samples = match enough_samples(&ctx, Level::Must).await {
        Ok(s) => s,
        Err(v) => return v,
    };
    let mut c = Check::new(Level::Must);
    let mut device = HashSet::new();
    let mut user = HashSet::new();
    let (mut dup_device, mut dup_user) = (0, 0);
    for a in samples {
        if !device.insert(&a.device_code) {
            dup_device += 1;
        }
        if !user.insert(&a.user_code) {
            dup_user += 1;
        }
    }
    c.measure("samples", samples.len());
    c.expect(
        dup_device == 0,
        format!(
            "no device_code repeats among {} samples (got {dup_device} repeats)",
            samples.len()
        ),
    );
    c.expect(
        dup_user == 0,
        format!(
            "no user_code repeats among {} live samples (got {dup_user} repeats)",
            samples.len()
        ),
    );
    c.finish(format!(
        "{} device authorizations, no repeated code",
        samples.len()
    ))
}

async fn dr_09(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    if let Some(a) = authorize(&ctx, &mut c).await {
        let dup = crate::http::json::duplicate_member(&a.exchange.raw_body);
        c.expect(
            dup.is_none(),
            format!(
                "no member appears twice (got {:?} twice)",
                dup.unwrap_or_default()
            ),
        );
    }
    c.finish("no duplicate members")
}

async fn dr_10(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Should);
    if let Some(a) = authorize(&ctx, &mut c).await {
        // RFC 9110 §5.3: every field line of the list, not only the first.
        let cc = a
            .exchange
            .header_list("cache-control")
            .unwrap_or_default()
            .to_ascii_lowercase();
        c.expect(
            cc.split(',').any(|d| d.trim() == "no-store"),
            format!("Cache-Control: no-store (got {cc:?})"),
        );
        let pragma = a
            .exchange
            .header_list("pragma")
            .unwrap_or_default()
            .to_ascii_lowercase();
        c.expect_soft(
            pragma.contains("no-cache"),
            format!("Pragma: no-cache (got {pragma:?})"),
        );
    }
    c.finish("Cache-Control: no-store")
}

async fn dr_11(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedMust);
    if let Some(a) = authorize(&ctx, &mut c).await {
        let b = body(&a);
        for key in ["expires_in", "interval"] {
            if let Some(v) = b.get(key) {
                c.expect(v.is_number(), format!("{key} is a JSON number (got {v})"));
            }
        }
    }
    c.finish("numbers are JSON numbers")
}

async fn dr_12(ctx: Ctx) -> Verdict {
    // Checklist DR-12 (RFC 8628 §3.2 → RFC 6749 §5.2): the shape of every error, the
    // same validator for each. Which code a request deserves is its own row's rule
    // (DA-02, DA-03, DA-04, DA-10), and whether it is refused at all: a well-formed error with
    // another code, or a request taken, is their finding, never a malformed error.
    let mut c = Check::new(Level::Must);
    let url = &ctx.target.device_authorization_endpoint;
    let nobody = Client::public("deviceflow-conformance-no-such-client");
    let scope = ctx.target.scope.as_deref().unwrap_or("openid");
    let requests = [
        ("no client", None, vec![], "DA-03"),
        ("unknown client", Some(&nobody), vec![], "DA-04"),
        (
            "repeated scope",
            Some(ctx.client()),
            vec![("scope", scope), ("scope", scope)],
            "DA-10",
        ),
    ];
    let mut answers = Vec::new();
    for (label, client, params, row) in requests {
        answers.push((
            label,
            row,
            ctx.http.post_form(label, url, client, &params).await,
        ));
    }
    // DA-02's empty POST: what it gets is an error too (a 500 page had passed here,
    // its error judged by DA-02 alone; review helper-98 against django-oauth-toolkit).
    answers.push((super::EMPTY_POST, "DA-02", super::empty_post(&ctx).await));
    let mut judged = 0;
    for (label, row, e) in answers {
        // RFC 6749 §5.2: an `error` object is an error whatever its status; sent with a
        // 2xx it is an error with the wrong status, judged here, not a request taken.
        let error_body = e.error_code().is_some();
        if e.status().is_some_and(|s| (200..300).contains(&s)) && !error_body {
            c.measure(
                label,
                format!(
                    "not refused (HTTP {}): {row} judges that",
                    e.status().unwrap_or(0)
                ),
            );
            c.evidence(e);
            continue;
        }
        judged += 1;
        super::expect_challenge_on_401(&mut c, &e);
        let problems = error_shape_problems(&e);
        let mut what = format!("{label}: a well-formed RFC 6749 §5.2 error");
        if !problems.is_empty() {
            what.push_str(&format!(" (got {}; {})", e.brief(), problems.join("; ")));
        }
        c.expect(problems.is_empty(), what);
        c.evidence(e);
    }
    if judged == 0 {
        return c.skip(
            Status::NotApplicable,
            "no request was refused, so there is no error to judge (DA-02, DA-03, DA-04 and DA-10 judge the refusals)",
        );
    }
    c.finish("every error is a well-formed RFC 6749 §5.2 error")
}

async fn dr_13(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Should);
    if let Some(a) = authorize(&ctx, &mut c).await {
        let norm = |s: &str| {
            s.chars()
                .filter(|c| c.is_ascii_alphanumeric())
                .collect::<String>()
                .to_uppercase()
        };
        let inside = a.verification_uri.contains(&a.user_code)
            || norm(&a.verification_uri).contains(&norm(&a.user_code));
        c.expect(
            !inside,
            format!(
                "verification_uri {:?} does not hold the user code",
                a.verification_uri
            ),
        );
    }
    c.finish("the user code is only in verification_uri_complete")
}

async fn dr_14(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Should);
    if let Some(a) = authorize(&ctx, &mut c).await {
        for uri in std::iter::once(&a.verification_uri).chain(a.verification_uri_complete.as_ref())
        {
            // Masked where it stands: the finding must not hand out the code.
            let shown = uri.replace(&a.device_code, &crate::redact::mask(&a.device_code));
            c.expect(
                !uri.contains(&a.device_code),
                format!("{shown:?} does not hold the device_code"),
            );
        }
    }
    c.finish("the device code is in no user-facing URI")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// DR-04 had passed a verification_uri holding `"`, `<`, `>`, `|`, a backtick or an
    /// escape, which the url crate mends (review helper-95).
    #[test]
    fn characters_no_uri_holds_are_named() {
        for fine in [
            "https://as.example/device",
            "https://as.example/d?user_code=WDJB-MJHT&x=%2F",
            "http://[::1]:8080/device#top",
        ] {
            assert_eq!(not_a_uri_character(fine), None, "{fine}");
        }
        for (odd, says) in [
            ("https://as.example/de vice", "' '"),
            ("https://as.example/<script>", "'<'"),
            ("https://as.example/a|b", "'|'"),
            ("https://as.example/`", "'`'"),
            ("https://as.example/\u{1b}[2J", "'\\u{1b}'"),
            ("https://as.example/\"", "'\"'"),
            ("https://as.example/ü", "'ü'"),
        ] {
            let got = not_a_uri_character(odd).unwrap_or_default();
            assert!(got.contains(says), "{odd:?}: {got}");
        }
        assert!(not_a_uri_character("https://as.example/%2")
            .is_some_and(|w| w.contains("two hex digits")));
        assert!(not_a_uri_character("https://as.example/%zz").is_some());
    }
}
