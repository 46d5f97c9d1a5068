//! A.3: the verification page and the user interaction (RFC 8628 §3.3, §3.3.1, §5.1,
//! §6.1; RFC 9700 §4.16). What a black-box client can see without signing in is checked
//! here; rows that need the pages driven as a person (sign in, type a code) are
//! reported as skipped, with the reason.

use std::collections::BTreeSet;

use super::{approver_failed, authorize, case, enough_samples};
use crate::approver::{Action, NotDecided};
use crate::case::{Case, Check, Level, Status, Verdict};
use crate::context::{Authorization, Ctx};
use crate::http::Exchange;

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "UI-01",
            "rfc8628/3.3/verification-page",
            "A.3",
            "RFC 8628 §3.3",
            Must,
            None,
            None,
            "verification_uri leads to a page where the user code is entered",
            ui_01
        ),
        case!(
            "UI-02",
            "rfc8628/3.3/approve-and-deny-offered",
            "A.3",
            "RFC 8628 §3.3",
            Should,
            Browser,
            None,
            "The person is told what is authorized and offered approve and deny",
            browser_only
        ),
        case!(
            "UI-03",
            "rfc8628/3.3/device-code-not-shown",
            "A.3",
            "RFC 8628 §3.3",
            Should,
            None,
            None,
            "The device code appears on no page reached from the verification URIs",
            ui_03
        ),
        case!(
            "UI-04",
            "rfc8628/3.3.1/complete-uri-confirms-code",
            "A.3",
            "RFC 8628 §3.3.1",
            Should,
            Browser,
            None,
            "Arriving through verification_uri_complete shows the code to confirm",
            browser_only
        ),
        case!(
            "UI-05",
            "rfc8628/3.3.1/complete-uri-does-not-approve",
            "A.3",
            "RFC 8628 §3.3.1",
            DerivedMust,
            None,
            None,
            "Visiting verification_uri_complete does not approve by itself",
            ui_05
        ),
        case!(
            "UI-06",
            "rfc8628/5.4/consent-names-client",
            "A.3",
            "RFC 8628 §5.4",
            Should,
            Browser,
            None,
            "The consent page names the client and device",
            browser_only
        ),
        case!(
            "UI-07",
            "rfc8628/6.1/input-normalization",
            "A.3",
            "RFC 8628 §6.1",
            Should,
            Approve,
            None,
            "Typed codes are normalized (case, dashes, spaces), and land on their own request",
            ui_07
        ),
        case!(
            "UI-08",
            "rfc8628/6.1/unambiguous-alphabet",
            "A.3",
            "RFC 8628 §6.1",
            Should,
            None,
            None,
            "The user-code alphabet avoids confusable characters",
            ui_08
        ),
        case!(
            "UI-09",
            "rfc8628/6.1/confusable-substitution",
            "A.3",
            "RFC 8628 §6.1",
            May,
            Browser,
            None,
            "Confusables from outside the alphabet are substituted",
            browser_only
        ),
        case!(
            "UI-10",
            "rfc8628/5.1/decided-codes-refused",
            "A.3",
            "RFC 8628 §5.1",
            DerivedMust,
            Approve,
            None,
            "A code already decided, or never issued, is refused and makes no progress",
            ui_10
        ),
        case!(
            "UI-11",
            "rfc8628/5.1/user-code-rate-limit",
            "A.3",
            "RFC 8628 §5.1",
            Should,
            Browser,
            Interval,
            "User-code attempts are rate-limited",
            browser_only
        ),
        case!(
            "UI-12",
            "rfc8628/5.1/no-code-oracle",
            "A.3",
            "RFC 8628 §5.1",
            Info,
            Browser,
            None,
            "Unknown, expired and used codes get the same answer",
            browser_only
        ),
        case!(
            "UI-13",
            "rfc9700/4.16/no-framing",
            "A.3",
            "RFC 9700 §4.16",
            Must,
            None,
            None,
            "The verification page cannot be framed",
            ui_13
        ),
        case!(
            "UI-14",
            "rfc8628/3.3/decision-bound-to-user",
            "A.3",
            "RFC 8628 §3.3",
            DerivedMust,
            Browser,
            None,
            "Only the signed-in user who entered the code can decide; CSRF protected",
            browser_only
        ),
        case!(
            "UI-15",
            "rfc8628/3.3/return-to-device",
            "A.3",
            "RFC 8628 §3.3",
            Info,
            Browser,
            None,
            "After completion the person is told to return to the device",
            browser_only
        ),
    ]
}

/// Never run: the runner skips Browser cases before calling them.
async fn browser_only(_: Ctx) -> Verdict {
    Check::new(Level::Info).skip(
        Status::Skip,
        "needs the verification pages driven as a person",
    )
}

/// GETs `url` following up to five redirects; returns every hop. Each hop, the server's
/// `Location` included, is a request of its own under the suite's address rule
/// ([`crate::http::reach`]): one the rule keeps back ends the chain, with no connection made.
async fn follow(ctx: &Ctx, label: &str, url: &str) -> Vec<Exchange> {
    let mut hops = Vec::new();
    let mut url = url.to_owned();
    // What a browser keeps between hops: a page that sets a cookie and redirects to
    // itself (to see that cookies work, or to start a session) is reached, as in a
    // browser, instead of being judged on its redirect. By name, the last value kept;
    // sent back only to the host that set it.
    let host = |url: &str| reqwest::Url::parse(url).ok()?.host_str().map(str::to_owned);
    let mut cookies: Vec<(Option<String>, String, String)> = Vec::new();
    for i in 0..6 {
        let here = host(&url);
        let jar: Vec<String> = cookies
            .iter()
            .filter(|(from, _, _)| *from == here)
            .map(|(_, n, v)| format!("{n}={v}"))
            .collect();
        let headers = if jar.is_empty() {
            Vec::new()
        } else {
            vec![("cookie".to_owned(), jar.join("; "))]
        };
        let e = ctx
            .http
            .send(crate::http::Request {
                label: &format!("{label} (hop {i})"),
                method: reqwest::Method::GET,
                url: &url,
                content_type: None,
                headers,
                body: None,
            })
            .await;
        for set in e.header_lines("set-cookie") {
            let mut parts = set.split(';');
            let pair = parts.next().unwrap_or_default();
            // RFC 6265 §5.2.2: Max-Age 0 (or less) deletes the cookie.
            let deleted = parts.any(|a| {
                a.trim().split_once('=').is_some_and(|(k, v)| {
                    k.trim().eq_ignore_ascii_case("max-age")
                        && v.trim().parse::<i64>().is_ok_and(|s| s <= 0)
                })
            });
            if let Some((name, value)) = pair.split_once('=') {
                let name = name.trim().to_owned();
                cookies.retain(|(from, n, _)| !(*from == here && *n == name));
                if !deleted {
                    cookies.push((here.clone(), name, value.trim().to_owned()));
                }
            }
        }
        let next = match e.status() {
            Some(301 | 302 | 303 | 307 | 308) => e
                .header("location")
                .and_then(|loc| reqwest::Url::parse(&url).ok()?.join(loc).ok())
                .map(|u| u.to_string()),
            _ => None,
        };
        hops.push(e);
        match next {
            Some(n) => url = n,
            None => break,
        }
    }
    hops
}

/// An HTML page: `text/html`, or XHTML (`application/xhtml+xml`, HTML's XML syntax).
fn is_html(e: &Exchange) -> bool {
    e.header("content-type").is_some_and(|ct| {
        let ct = ct.to_ascii_lowercase();
        ct.starts_with("text/html") || ct.starts_with("application/xhtml+xml")
    })
}

async fn ui_01(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let hops = follow(&ctx, "GET verification_uri", &a.verification_uri).await;
    let last = hops.last().cloned();
    for h in hops {
        c.evidence(h);
    }
    let Some(last) = last else {
        return c.finish("");
    };
    c.expect(
        last.status() == Some(200),
        format!(
            "the verification page (after redirects) answers HTTP 200 (got {})",
            last.brief()
        ),
    );
    c.expect(
        is_html(&last),
        format!(
            "the verification page is HTML (got {})",
            last.header("content-type")
                .map_or("no Content-Type".to_owned(), |v| format!("{v:?}"))
        ),
    );
    let body = String::from_utf8_lossy(&last.raw_body).to_ascii_lowercase();
    c.expect(
        body.contains("<form") || body.contains("<input"),
        "the page has a form to enter a code or sign in",
    );
    c.finish("verification_uri leads to an HTML form")
}

async fn ui_03(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Should);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let mut urls = vec![a.verification_uri.clone()];
    urls.extend(a.verification_uri_complete.clone());
    for url in urls {
        for h in follow(&ctx, "GET a verification page", &url).await {
            // A page the address rule kept the suite from is not judged, nor one the
            // request never reached (a `javascript:` URL, a refused connection): no
            // page, nothing shown. The others are.
            if h.response.is_some() {
                let shown = String::from_utf8_lossy(&h.raw_body).contains(&a.device_code);
                c.expect(
                    !shown,
                    format!("{} does not show the device_code", h.request.url),
                );
            }
            c.evidence_of_a_part(h);
        }
    }
    c.finish("no page shows the device code (pages reached without signing in)")
}

async fn ui_05(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedMust);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let Some(complete) = a.verification_uri_complete.clone() else {
        return c.skip(Status::NotApplicable, "no verification_uri_complete");
    };
    let hops = follow(&ctx, "GET verification_uri_complete", &complete).await;
    // A visit that never happened approved nothing, and says nothing of what a visit
    // would do (a `javascript:` URL, a connection refused): not a pass.
    if let Some(failed) = hops.last().filter(|h| h.response.is_none()) {
        c.inconclusive(format!(
            "verification_uri_complete could not be visited: {}",
            failed.error.as_deref().unwrap_or("no answer")
        ));
    }
    for h in hops {
        c.evidence(h);
    }
    let e = ctx
        .poll(
            "poll after visiting verification_uri_complete",
            &a.device_code,
        )
        .await;
    c.expect(
        !super::grants_access(&e),
        format!("the visit alone approves nothing (got {})", e.brief()),
    );
    c.evidence(e);
    c.finish("visiting verification_uri_complete (not signed in) approved nothing")
}

/// The user code as people type it (RFC 8628 §6.1): each variant with its name.
fn typed_variants(code: &str) -> [(&'static str, String); 3] {
    let bare: String = code.chars().filter(|c| c.is_alphanumeric()).collect();
    let has_separator = bare.len() != code.len();
    let middle = bare.chars().count() / 2;
    let split = |sep: &str| {
        let (a, b): (String, String) = (
            bare.chars().take(middle).collect(),
            bare.chars().skip(middle).collect(),
        );
        format!("{a}{sep}{b}")
    };
    [
        ("lower-cased", code.to_lowercase()),
        if has_separator {
            ("without its separator", bare.clone())
        } else {
            ("with a dash added", split("-"))
        },
        (
            "with a space for the separator",
            if has_separator {
                code.chars()
                    .map(|c| if c.is_alphanumeric() { c } else { ' ' })
                    .collect()
            } else {
                split(" ")
            },
        ),
    ]
}

/// Whether RFC 8628 §6.1 asks the server to upper-case what is typed for `code`:
///
/// > For codes using only characters in the A-Z range, as with the base 20 charset
/// > defined above, the user's input should be uppercased before a comparison
///
/// A character set with digits (django-oauth-toolkit's `0-9A-V`) is not asked it: a
/// lower-case letter is outside such a set, which §6.1 recommends stripping. `codes`
/// are codes of the server, whose characters stand for its set.
fn upper_casing_asked<'a>(codes: impl IntoIterator<Item = &'a str>) -> bool {
    codes
        .into_iter()
        .flat_map(str::chars)
        .filter(|c| c.is_alphanumeric())
        .all(|c| c.is_ascii_alphabetic())
}

async fn ui_07(ctx: Ctx) -> Verdict {
    // RFC 8628 §6.1: servers should upper-case the input for A-Z codes, strip the
    // punctuation they added, and strip "all characters outside the chosen character
    // set" (separators, spaces).
    let mut c = Check::new(Level::Should);
    let mut tried = 0;
    let mut not_asked = Vec::new();
    let Some(first) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    for (how, typed) in typed_variants(&first.user_code) {
        // A fresh request for each variant, and a bystander whose code nobody typed.
        let Some(own) = authorize(&ctx, &mut c).await else {
            return c.finish("");
        };
        let Some(bystander) = authorize(&ctx, &mut c).await else {
            return c.finish("");
        };
        let typed = typed_variants(&own.user_code)
            .into_iter()
            .find(|(h, _)| *h == how)
            .map_or(typed, |(_, t)| t);
        if typed == own.user_code {
            c.measure(how, "the same as shown: nothing to normalize");
            continue;
        }
        tried += 1;
        let prompt = crate::approver::Prompt {
            user_code: typed.clone(),
            verification_uri_complete: None,
            ..own.prompt()
        };
        match ctx.attempt(&prompt, Action::Approve).await {
            Ok(()) => {}
            // RFC 8628 §6.1 asks upper-casing of A-Z codes only: the refusal of a
            // lower-cased code with digits is recorded, not judged.
            // The set is read from the codes seen: this one, then (a code of letters
            // alone may be drawn from a set with digits) the run's samples.
            Err(NotDecided::Refused(why))
                if how == "lower-cased"
                    && !(upper_casing_asked([own.user_code.as_str()])
                        && upper_casing_asked(
                            ctx.samples().await.iter().map(|a| a.user_code.as_str()),
                        )) =>
            {
                c.measure(
                    how,
                    format!(
                        "refused ({typed:?} for {:?}: {why}); not judged: the server's codes hold digits, and RFC 8628 §6.1 asks upper-casing only of codes using only characters in the A-Z range",
                        own.user_code
                    ),
                );
                not_asked.push(how);
                continue;
            }
            Err(NotDecided::Refused(why)) => {
                c.expect(
                    false,
                    format!(
                        "the code typed {how} ({typed:?} for {:?}) should be accepted, and was refused: {why}",
                        own.user_code
                    ),
                );
                continue;
            }
            // The approver broke: nothing is known about the server's normalization.
            Err(NotDecided::Failed(why)) => {
                c.inconclusive(format!(
                    "the approver could not try the code typed {how}: {why}"
                ));
                return c.finish("");
            }
        }
        let e = ctx
            .poll(&format!("poll the request typed {how}"), &own.device_code)
            .await;
        c.expect(
            super::grants_access(&e),
            format!(
                "the approval typed {how} lands on its own request, which gets a token (got {})",
                e.brief()
            ),
        );
        c.evidence(e);
        let e = ctx
            .poll("poll a bystander request", &bystander.device_code)
            .await;
        c.expect(
            !super::grants_access(&e),
            format!(
                "and on no other request: a bystander gets no token (got {})",
                e.brief()
            ),
        );
        c.evidence(e);
    }
    c.measure("variants_tried", tried);
    let landed = tried - not_asked.len();
    let mut summary = format!("{landed} typed variants approved their own request and no other");
    for how in not_asked {
        summary.push_str(&format!(
            "; the code typed {how} was refused, which RFC 8628 §6.1 does not ask of codes with digits"
        ));
    }
    c.finish(summary)
}

async fn ui_08(ctx: Ctx) -> Verdict {
    let samples = match enough_samples(&ctx, Level::Should).await {
        Ok(s) => s,
        Err(v) => return v,
    };
    let mut c = Check::new(Level::Should);
    let alphabet: BTreeSet<char> = samples
        .iter()
        .flat_map(|a| a.user_code.chars())
        .filter(|ch| ch.is_alphanumeric())
        .collect();
    let shown: String = alphabet.iter().collect();
    c.measure("user_code_alphabet", shown.clone());
    c.measure("samples", samples.len());
    let has = |set: &[char]| set.iter().filter(|ch| alphabet.contains(ch)).count() > 1;
    for pair in [
        &['0', 'O', 'o'][..],
        &['1', 'I', 'l', 'L'],
        &['5', 'S'],
        &['2', 'Z'],
        &['8', 'B'],
    ] {
        let found: String = pair.iter().filter(|ch| alphabet.contains(ch)).collect();
        // Worded for what happened: a passing check's words must not read as a
        // failure, nor a failing one's as a pass (helper-86: "holds no confusable
        // pair (got \"0O\")").
        let what = if has(pair) {
            format!(
                "the alphabet {shown:?} holds the confusable pair {found:?}, which it should not"
            )
        } else {
            format!("the alphabet {shown:?} holds no confusable pair of {pair:?}")
        };
        c.expect(!has(pair), what);
    }
    c.finish(format!("alphabet {shown:?} has no confusable pairs"))
}

async fn ui_10(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedMust);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    if let Err(why) = ctx.decide(&a, Action::Approve).await {
        approver_failed(&mut c, Action::Approve, &why);
        return c.finish("");
    }
    // Only the server's refusal, on the record, shows the second decision refused; an
    // approver that breaks shows nothing either way (inconclusive, never a pass).
    match ctx.attempt(&a.prompt(), Action::Deny).await {
        Ok(()) => {
            c.expect(
                false,
                "a second decision (deny after approve) on the same code is refused (got: the denial was taken)",
            );
        }
        Err(NotDecided::Refused(why)) => {
            c.expect(
                true,
                "a second decision (deny after approve) on the same code is refused",
            );
            c.measure("second_decision_refused", why);
        }
        Err(NotDecided::Failed(why)) => {
            c.inconclusive(format!(
                "the approver could not try the second decision, so whether the server refuses it is unknown: {why}"
            ));
            return c.finish("");
        }
    }
    let e = ctx
        .poll("poll after the refused second decision", &a.device_code)
        .await;
    // Malformed or not (TS-03's), a token shows the approval stood.
    c.expect(
        super::grants_access(&e),
        format!(
            "the first decision (approve) stands: the poll gets a token (got {})",
            e.brief()
        ),
    );
    c.evidence(e);
    // Checklist UI-10: "Random well-formed code → error" (RFC 8628 §5.1: a code that
    // names no request must make no progress).
    never_issued_code_refused(&ctx, &mut c, &a).await;
    c.finish("a decided code cannot be decided again; a code never issued is refused")
}

/// The codes tried for UI-10's never-issued code: a server that accepts a code it never
/// issued accepts both, while a chance match of one of them with a live code (from a
/// small code space) is not taken for a finding.
const NEVER_ISSUED_TRIES: usize = 2;

/// The fewest codes of the issued code's shape for UI-10 to try one never issued.
const MIN_CODE_SPACE: f64 = 1e8;

/// UI-10's never-issued code: decisions on [`NEVER_ISSUED_TRIES`] well-formed codes no
/// request was given ([`never_issued_like`]), each of which the server must refuse. A
/// refusal on the record ends the part; every one accepted fails it; an approver that
/// breaks leaves the case inconclusive.
async fn never_issued_code_refused(ctx: &Ctx, c: &mut Check, a: &Authorization) {
    // In a small code space a random code may be someone else's pending one, and
    // approving it would connect a stranger's device to the suite's test user: tried
    // only where codes shaped as the issued one are at least 10^8 (RFC 8628 §6.1's
    // 20 letters, 10 digits).
    let space = a.user_code.chars().fold(1f64, |n, ch| {
        n * match ch {
            c if c.is_ascii_alphabetic() => 20.0,
            c if c.is_ascii_digit() => 10.0,
            _ => 1.0,
        }
    });
    if space < MIN_CODE_SPACE {
        c.not_judged(format!(
            "a code never issued was not tried: codes shaped as {} are about {space:.0}, so a random one could be another person's pending code, which approving would connect to the test user",
            a.user_code
        ));
        return;
    }
    let mut tried = Vec::new();
    for i in 0..NEVER_ISSUED_TRIES as u64 {
        let code = never_issued_like(&a.user_code, i);
        let prompt = crate::approver::Prompt {
            user_code: code.clone(),
            verification_uri: a.verification_uri.clone(),
            verification_uri_complete: None,
        };
        match ctx.attempt(&prompt, Action::Approve).await {
            Ok(()) => tried.push(code),
            Err(NotDecided::Refused(why)) => {
                c.expect(
                    true,
                    format!("a well-formed user code never issued ({code}) is refused"),
                );
                c.measure("never_issued_code_refused", why);
                return;
            }
            Err(NotDecided::Failed(why)) => {
                c.inconclusive(format!(
                    "the approver could not try a code never issued, so whether the server refuses it is unknown: {why}"
                ));
                return;
            }
        }
    }
    c.expect(
        false,
        format!(
            "a well-formed user code never issued is refused (got: the approval of each of {} was taken)",
            tried.join(", ")
        ),
    );
}

/// A user code shaped as `issued` (each letter one of its letters in the same case,
/// each digit one of its digits, the rest kept: well-formed for the server's own
/// alphabet) and not `issued` itself, drawn afresh for each `salt`.
fn never_issued_like(issued: &str, salt: u64) -> String {
    use std::hash::{BuildHasher, Hasher};
    let state = std::collections::hash_map::RandomState::new();
    let pool = |keep: fn(&char) -> bool| -> Vec<char> { issued.chars().filter(keep).collect() };
    let (upper, lower, digits) = (
        pool(char::is_ascii_uppercase),
        pool(char::is_ascii_lowercase),
        pool(char::is_ascii_digit),
    );
    let same = |a: &str, b: &str| a.eq_ignore_ascii_case(b);
    for attempt in 0..64u64 {
        let code: String = issued
            .chars()
            .enumerate()
            .map(|(i, ch)| {
                let mut h = state.build_hasher();
                h.write_u64(salt);
                h.write_u64(attempt);
                h.write_usize(i);
                let r = h.finish() as usize;
                let from = match ch {
                    'A'..='Z' => &upper,
                    'a'..='z' => &lower,
                    '0'..='9' => &digits,
                    _ => return ch,
                };
                from[r % from.len()]
            })
            .collect();
        if !same(&code, issued) {
            return code;
        }
    }
    // A code of one repeated character has no other of its shape: each character the
    // next of its class instead (still not the issued code).
    issued
        .chars()
        .map(|ch| match ch {
            'A'..='Y' | 'a'..='y' | '0'..='8' => (ch as u8 + 1) as char,
            'Z' => 'A',
            'z' => 'a',
            '9' => '0',
            _ => ch,
        })
        .collect()
}

/// The source lists of every `frame-ancestors` directive in a Content-Security-Policy
/// header (policies split by `,`, directives by `;`), lower-cased.
fn frame_ancestors(csp: &str) -> Vec<Vec<String>> {
    csp.split(',')
        .flat_map(|policy| policy.split(';'))
        .filter_map(|directive| {
            let mut words = directive.split_ascii_whitespace();
            let name = words.next()?;
            name.eq_ignore_ascii_case("frame-ancestors")
                .then(|| words.map(str::to_ascii_lowercase).collect())
        })
        .collect()
}

/// Whether a frame-ancestors source list lets any site frame the page: `*`, a bare
/// scheme (`https:`), or any host of a scheme (`https://*`).
fn lets_anyone_frame(sources: &[String]) -> bool {
    sources
        .iter()
        .any(|s| s == "*" || s.ends_with(':') || s.ends_with("://*"))
}

async fn ui_13(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let mut hops = follow(&ctx, "GET verification_uri", &a.verification_uri).await;
    // RFC 8628 §3.3.1: verification_uri_complete may lead elsewhere (straight to the
    // code's confirmation); its page must not be framable either.
    if let Some(complete) = &a.verification_uri_complete {
        hops.extend(follow(&ctx, "GET verification_uri_complete", complete).await);
    }
    let pages: Vec<&Exchange> = hops
        .iter()
        .filter(|h| h.status() == Some(200) && is_html(h))
        .collect();
    // A page reached by a redirect (a sign-in page, typically) is all a client without
    // a session sees; the code entry and consent pages behind it are not checked, and
    // every finding says so, a warning or a failure as much as a pass.
    let redirected = hops.iter().any(|h| matches!(h.status(), Some(300..=399)));
    let unseen = if redirected {
        "; the pages behind the sign-in it led to (code entry, consent) were not seen"
    } else {
        ""
    };
    let seen = pages
        .iter()
        .map(|p| p.request.url.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect::<Vec<_>>()
        .join(", ");
    // A page the address rule kept the suite from is not judged (the case is then
    // inconclusive, unless another page fails).
    let unreached = hops
        .iter()
        .any(|h| h.not_connected().is_some() || h.still_rate_limited().is_some());
    // No page at all is UI-01's finding; the framing of a page never seen is not
    // judged, neither passed nor failed.
    if pages.is_empty() && !unreached {
        c.inconclusive(
            "no HTML page was reached from verification_uri (UI-01 judges that), so no page's framing could be judged",
        );
    }
    for p in &pages {
        let xfo = p
            .header("x-frame-options")
            .unwrap_or_default()
            .trim()
            .to_ascii_uppercase();
        // Every CSP field line: an application's policy and a proxy's `frame-ancestors`
        // each enforced (CSP 3 §3.1: several policies all apply).
        let csp_header = p.header_list("content-security-policy").unwrap_or_default();
        let csp_header = csp_header.as_str();
        let ancestors = frame_ancestors(csp_header);
        // CSP 3 §6.4.2: where frame-ancestors is enforced, X-Frame-Options is ignored,
        // so a permissive frame-ancestors (`*`, a bare scheme) leaves the page framable
        // whatever X-Frame-Options says.
        let csp_protects = ancestors.iter().any(|sources| !lets_anyone_frame(sources));
        let protected = if ancestors.is_empty() {
            xfo == "DENY" || xfo == "SAMEORIGIN"
        } else {
            csp_protects
        };
        c.expect(
            protected,
            if protected {
                format!(
                    "{} sets X-Frame-Options or CSP frame-ancestors{unseen}",
                    p.request.url
                )
            } else if ancestors.is_empty() {
                // RFC 9700 §4.16: X-Frame-Options DENY/SAMEORIGIN, or CSP frame-ancestors.
                format!(
                    "{} sets X-Frame-Options or CSP frame-ancestors (got X-Frame-Options {}, no CSP frame-ancestors){unseen}",
                    p.request.url,
                    p.header("x-frame-options")
                        .map_or("none".to_owned(), |v| format!("{v:?}"))
                )
            } else {
                format!(
                    "{} limits who may frame it (got Content-Security-Policy {csp_header:?}: frame-ancestors {} lets any site frame the page, and voids X-Frame-Options){unseen}",
                    p.request.url,
                    ancestors.first().map_or(String::new(), |s| s.join(" "))
                )
            },
        );
        c.expect_soft(
            csp_protects,
            format!(
                "{} uses CSP frame-ancestors, as RFC 9700 §4.16 says it SHOULD (got {:?}){unseen}",
                p.request.url,
                p.header("content-security-policy")
                    .unwrap_or("no Content-Security-Policy")
            ),
        );
    }
    for h in hops {
        c.evidence_of_a_part(h);
    }
    c.finish(format!("framing is refused on {seen}{unseen}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_never_issued_code_has_the_issued_codes_shape_and_is_not_it() {
        for issued in ["WDJB-MJHT", "wdjb mjht", "4X7P9", "AAAA-AAAA", "1", "Z9-z"] {
            for salt in 0..20 {
                let code = never_issued_like(issued, salt);
                assert!(!code.eq_ignore_ascii_case(issued), "{issued}: {code}");
                assert_eq!(code.len(), issued.len(), "{issued}: {code}");
                for (a, b) in issued.chars().zip(code.chars()) {
                    let class = |c: char| {
                        (
                            c.is_ascii_uppercase(),
                            c.is_ascii_lowercase(),
                            c.is_ascii_digit(),
                        )
                    };
                    assert_eq!(class(a), class(b), "{issued}: {code}");
                    if !a.is_ascii_alphanumeric() {
                        assert_eq!(a, b, "{issued}: {code}");
                    }
                }
            }
        }
    }

    #[test]
    fn upper_casing_is_asked_only_of_codes_in_the_a_to_z_range() {
        assert!(upper_casing_asked(["WDJB-MJHT", "BCDF-GHJK"]));
        assert!(!upper_casing_asked(["8TOUD1JK"]));
        assert!(!upper_casing_asked(["019-450-730"]));
        // A code of letters alone, drawn from a set with digits.
        assert!(!upper_casing_asked(["LMJLAHUV", "054MDHLB"]));
    }

    #[test]
    fn frame_ancestors_that_let_anyone_frame_are_told_from_those_that_limit() {
        let judge = |csp: &str| {
            let a = frame_ancestors(csp);
            (!a.is_empty(), a.iter().any(|s| !lets_anyone_frame(s)))
        };
        assert_eq!(judge("frame-ancestors 'none'"), (true, true));
        assert_eq!(
            judge("default-src 'self'; FRAME-ANCESTORS 'self' https://a.example"),
            (true, true)
        );
        assert_eq!(
            judge("default-src 'self'; frame-ancestors *"),
            (true, false)
        );
        assert_eq!(judge("frame-ancestors https:"), (true, false));
        assert_eq!(judge("frame-ancestors https://*"), (true, false));
        assert_eq!(judge("default-src 'self'"), (false, false));
        assert_eq!(judge(""), (false, false));
    }
}
