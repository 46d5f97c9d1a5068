//! A.8: discovery metadata (RFC 8628 §4; RFC 8414; RFC 9700 §2.6).

use serde_json::Value;

use super::{case, expect_error};
use crate::case::{Case, Check, Level, Status, Verdict};
use crate::context::{parse_authorization, Ctx, GRANT};
use crate::http::reach::{is_https, is_loopback};
use crate::target::{unusable_endpoint, Metadata};

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "MD-01",
            "rfc8628/4/device-authorization-endpoint-advertised",
            "A.8",
            "RFC 8628 §4",
            DerivedMust,
            None,
            None,
            "device_authorization_endpoint is in the metadata, as an absolute https URL",
            md_01
        ),
        case!(
            "MD-02",
            "rfc8628/4/grant-type-advertised",
            "A.8",
            "RFC 8628 §4",
            Must,
            None,
            None,
            "grant_types_supported lists the device_code grant",
            md_02
        ),
        case!(
            "MD-03",
            "rfc8414/3/metadata-response",
            "A.8",
            "RFC 8414 §3",
            Must,
            None,
            None,
            "Metadata is 200 JSON, its issuer is the issuer, no empty arrays",
            md_03
        ),
        case!(
            "MD-04",
            "rfc8414/2/token-endpoint",
            "A.8",
            "RFC 8414 §2",
            Must,
            None,
            None,
            "token_endpoint is present",
            md_04
        ),
        case!(
            "MD-05",
            "rfc8414/2/advertised-endpoints-work",
            "A.8",
            "RFC 8414 §2",
            DerivedMust,
            None,
            None,
            "The advertised endpoints are the ones that work",
            md_05
        ),
        case!(
            "MD-06",
            "rfc8414/2/auth-method-none",
            "A.8",
            "RFC 8414 §2",
            Info,
            None,
            None,
            "token_endpoint_auth_methods_supported includes none",
            md_06
        ),
        case!(
            "MD-07",
            "rfc9700/2.6/metadata-published",
            "A.8",
            "RFC 9700 §2.6",
            Should,
            None,
            None,
            "The server publishes RFC 8414 metadata",
            md_07
        ),
    ]
}

/// The metadata, or the verdict to give when there is none.
fn metadata(ctx: &Ctx, level: Level) -> Result<(&Metadata, Check), Verdict> {
    let c = Check::new(level);
    if ctx.target.issuer.is_none() {
        return Err(c.skip(
            Status::NotApplicable,
            "no --issuer given, so no metadata to check",
        ));
    }
    match &ctx.target.metadata {
        Some(m) => Ok((m, c)),
        None => Err(c.skip(Status::NotApplicable, "no metadata found (see MD-07)")),
    }
}

fn str_member<'a>(m: &'a Metadata, key: &str) -> Option<&'a str> {
    m.value.get(key).and_then(Value::as_str)
}

/// RFC 8628 §4 makes the member OPTIONAL: left out, a client that discovers cannot
/// find the device flow, a warning (the checklist's "OPTIONAL (but needed for
/// discovery)"; it had failed as a Derived MUST, review helper-98). Present, it is a
/// URL (RFC 8628 §4, RFC 8414 §2), and a value no client can use fails.
async fn md_01(ctx: Ctx) -> Verdict {
    let (m, mut c) = match metadata(&ctx, Level::DerivedMust) {
        Ok(x) => x,
        Err(v) => return v,
    };
    c.evidence(m.exchange.clone());
    match str_member(m, "device_authorization_endpoint") {
        None if m.value.get("device_authorization_endpoint").is_some() => {
            c.expect(
                false,
                format!(
                    "device_authorization_endpoint is advertised as a URL string (got {})",
                    super::json_words(m.value.get("device_authorization_endpoint"))
                ),
            );
        }
        None => {
            c.expect_soft(false, "device_authorization_endpoint is advertised (got: absent, so a client using discovery cannot find the device flow; RFC 8628 §4 makes it OPTIONAL)");
        }
        Some(url) => {
            let why = unusable_endpoint(url);
            c.expect(
                why.is_none(),
                format!(
                    "device_authorization_endpoint is an absolute http(s) URL (got {url:?}{})",
                    why.map_or(String::new(), |w| format!(", {w}"))
                ),
            );
            c.expect(
                is_https(url) || is_loopback(url),
                format!("device_authorization_endpoint is https, or plain http on loopback (got {url:?})"),
            );
        }
    }
    c.finish("advertised as an absolute URL")
}

async fn md_02(ctx: Ctx) -> Verdict {
    let (m, mut c) = match metadata(&ctx, Level::Must) {
        Ok(x) => x,
        Err(v) => return v,
    };
    c.evidence(m.exchange.clone());
    let listed = m.value.get("grant_types_supported");
    let grants: Vec<&str> = listed
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // RFC 8414 §2: an omitted grant_types_supported means ["authorization_code",
    // "implicit"], which does not list the device grant.
    let got = match listed {
        None => "absent (RFC 8414 default: authorization_code, implicit)".to_owned(),
        Some(_) => format!("{grants:?}"),
    };
    c.expect(
        grants.contains(&GRANT),
        format!("grant_types_supported lists {GRANT} (got {got})"),
    );
    c.finish("the grant URN is listed")
}

async fn md_03(ctx: Ctx) -> Verdict {
    let (m, mut c) = match metadata(&ctx, Level::Must) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let e = &m.exchange;
    c.evidence(e.clone());
    c.expect(
        e.is_json_media_type(),
        format!(
            "Content-Type application/json (got {})",
            e.header("content-type").unwrap_or("none")
        ),
    );
    // RFC 8414 §3.3: the issuer "MUST be identical to the authorization server's issuer
    // identifier value into which the well-known URI string was inserted"; §3.1 removes
    // a terminating "/" first, so `http://as/` and `http://as` build the same URL, and
    // either is the issuer the URL was built from.
    let given = ctx.target.issuer.as_deref().unwrap_or_default();
    let built_from = given.trim_end_matches('/');
    let advertised = str_member(m, "issuer").unwrap_or_default();
    let expected = if built_from == given {
        format!("{given:?}")
    } else {
        format!(
            "{built_from:?} (given as {given:?}; RFC 8414 §3.1 removes the terminating \"/\" to build the URL, so {given:?} is taken too)"
        )
    };
    // RFC 3986 §6.2.2.1: the scheme and host are case-insensitive, so an issuer that
    // differs from it only there is the same issuer (the one given was taken with
    // them lower-cased, main's `--issuer`); anything else that differs is another.
    let identical = advertised == given || advertised == built_from;
    let folded = crate::target::lower_scheme_and_host(advertised);
    let equivalent = folded == given || folded == built_from;
    c.expect(
        identical || equivalent,
        format!(
            "issuer is the issuer the metadata URL {} was built from, {expected} (got {advertised:?})",
            m.url
        ),
    );
    if equivalent && !identical {
        c.expect_soft(
            false,
            format!(
                "issuer is written as the URL was built from it, scheme and host in lower case (got {advertised:?}: the same issuer by RFC 3986 §6.2.2.1, which asks producers for lower case, but a client comparing it character by character, as RFC 8414 §3.3's \"identical\" reads, refuses it)"
            ),
        );
    }
    if let Some(obj) = m.value.as_object() {
        for (k, v) in obj {
            if v.as_array().is_some_and(|a| a.is_empty()) {
                c.expect(
                    false,
                    format!("no empty array (got {k} = []; RFC 8414 §2: omit it)"),
                );
            }
        }
    }
    c.finish("well-formed metadata")
}

async fn md_04(ctx: Ctx) -> Verdict {
    let (m, mut c) = match metadata(&ctx, Level::Must) {
        Ok(x) => x,
        Err(v) => return v,
    };
    c.evidence(m.exchange.clone());
    match m.value.get("token_endpoint") {
        Some(Value::String(url)) => {
            // RFC 8414 §2: the token endpoint's URL, one a client can send a request to.
            let why = unusable_endpoint(url);
            c.expect(
                why.is_none(),
                format!(
                    "token_endpoint is an absolute http(s) URL (got {url:?}{})",
                    why.map_or(String::new(), |w| format!(", {w}"))
                ),
            );
        }
        other => {
            c.expect(
                false,
                format!(
                    "token_endpoint is present, a URL (got {})",
                    super::json_words(other)
                ),
            );
        }
    }
    c.finish("token_endpoint present")
}

async fn md_05(ctx: Ctx) -> Verdict {
    let (m, mut c) = match metadata(&ctx, Level::DerivedMust) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let (Some(da), Some(token)) = (
        str_member(m, "device_authorization_endpoint"),
        str_member(m, "token_endpoint"),
    ) else {
        return c.skip(
            Status::NotApplicable,
            "the metadata does not advertise both endpoints (MD-01, MD-04)",
        );
    };
    let e = ctx
        .http
        .post_form(
            "device authorization at the advertised URL",
            da,
            Some(ctx.client()),
            &ctx.scope_params(),
        )
        .await;
    match parse_authorization(e) {
        Err(e) => {
            c.expect(
                false,
                format!(
                    "the advertised device_authorization_endpoint works (got {})",
                    e.brief()
                ),
            );
            c.evidence(*e);
        }
        Ok(a) => {
            c.evidence(a.exchange.clone());
            let e = ctx
                .http
                .post_form(
                    "poll at the advertised token endpoint",
                    token,
                    Some(ctx.client()),
                    &[("grant_type", GRANT), ("device_code", &a.device_code)],
                )
                .await;
            expect_error(&mut c, &e, &["authorization_pending", "slow_down"]);
        }
    }
    c.finish("the advertised endpoints work")
}

async fn md_06(ctx: Ctx) -> Verdict {
    let (m, mut c) = match metadata(&ctx, Level::Info) {
        Ok(x) => x,
        Err(v) => return v,
    };
    let methods = m
        .value
        .get("token_endpoint_auth_methods_supported")
        .cloned();
    c.measure(
        "token_endpoint_auth_methods_supported",
        methods.clone().unwrap_or(Value::Null),
    );
    let none = methods
        .as_ref()
        .and_then(Value::as_array)
        .is_some_and(|a| a.iter().any(|v| v == "none"));
    c.finish(if none {
        "\"none\" is listed: public device clients are advertised"
    } else {
        "\"none\" is not listed (default: client_secret_basic)"
    })
}

async fn md_07(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Should);
    let Some(issuer) = ctx.target.issuer.as_deref() else {
        return c.skip(Status::NotApplicable, "no --issuer given");
    };
    for e in &ctx.target.metadata_attempts {
        c.evidence(e.clone());
    }
    match &ctx.target.metadata {
        Some(m) => {
            c.evidence(m.exchange.clone());
            c.measure("metadata_url", m.url.clone());
            // RFC 8414 §3.1 names one URL (the well-known string between host and
            // path); found only at another (OpenID Connect's, or the string after the
            // path), the metadata is not where a client that follows RFC 8414 looks.
            let rfc_8414 = crate::target::metadata_urls(issuer).into_iter().next();
            if let Some(rfc_8414) = rfc_8414.filter(|u| *u != m.url) {
                // What that URL answered, as the evidence shows it: a 404 is the finding;
                // a timeout or a 5xx may be the server's bad moment, said as such.
                let answered = ctx
                    .target
                    .metadata_attempts
                    .iter()
                    .find(|e| e.request.url == rfc_8414)
                    .map_or_else(|| "nothing".to_owned(), |e| e.brief());
                c.expect(
                    false,
                    format!(
                        "the metadata is at RFC 8414 §3.1's URL, {rfc_8414} (it answered {answered}; found at {})",
                        m.url
                    ),
                );
            }
            c.finish(format!("published at {}", m.url))
        }
        None => {
            c.expect(
                false,
                "RFC 8414 or OpenID Connect metadata is at a well-known URL (got none)",
            );
            c.finish("")
        }
    }
}
