//! The cases, one module per section of the checklist (A.1–A.10), each case tied to
//! its row id. The cases restate the RFCs; they never call a server's logic.

use std::time::Duration;

use crate::case::{Case, Check, Level, Status, Verdict};
use crate::context::{Authorization, Ctx};
use crate::http::json::{is_error_char, is_error_uri_char};
use crate::http::Exchange;

mod authorization_request;
mod authorization_response;
mod expiry;
mod metadata;
mod polling;
mod security;
mod token_request;
mod token_response;
mod verification;

/// Declares a case: `case!(ID, slug, group, rfc, level, human, wait, title, fn)`, and
/// `, waits = [k, …]` after `fn` for a case that waits at the interval (see
/// [`CaseInfo::interval_waits`](crate::case::CaseInfo::interval_waits)).
macro_rules! case {
    ($id:literal, $slug:literal, $group:literal, $rfc:literal, $level:ident, $human:ident, $wait:ident, $title:literal, $f:path $(, waits = [$($k:literal),*])?) => {
        $crate::case::Case {
            info: $crate::case::CaseInfo {
                id: $id,
                slug: $slug,
                group: $group,
                rfc: $rfc,
                level: $crate::case::Level::$level,
                title: $title,
                human: $crate::case::Human::$human,
                wait: $crate::case::Wait::$wait,
                interval_waits: &[$($($k),*)?],
            },
            run: |ctx| Box::pin($f(ctx)),
        }
    };
}
pub(crate) use case;

/// Every case, in checklist order.
pub fn all() -> Vec<Case> {
    let mut v = Vec::new();
    v.extend(authorization_request::cases());
    v.extend(authorization_response::cases());
    v.extend(verification::cases());
    v.extend(token_request::cases());
    v.extend(token_response::cases());
    v.extend(polling::cases());
    v.extend(expiry::cases());
    v.extend(metadata::cases());
    v.extend(security::cases());
    v
}

/// The checklist's section titles, by group.
pub fn group_title(group: &str) -> &'static str {
    match group {
        "A.1" => "Device authorization request (RFC 8628 §3.1)",
        "A.2" => "Device authorization response (RFC 8628 §3.2)",
        "A.3" => "Verification page and user interaction (RFC 8628 §3.3)",
        "A.4" => "Device access token request (RFC 8628 §3.4)",
        "A.5" => "Token responses and the state machine (RFC 8628 §3.5)",
        "A.6" => "Polling, interval and slow_down (RFC 8628 §3.5)",
        "A.7" => "Expiry (RFC 8628 §3.2, §3.5)",
        "A.8" => "Discovery metadata (RFC 8628 §4, RFC 8414)",
        "A.9" => "Security considerations (RFC 8628 §5)",
        "A.10" => "RFC 9700 as it applies to the device flow",
        _ => "Other",
    }
}

/// RFC 6749 §5.2: what is wrong with an error response's shape, if anything: the
/// status (400, or 401 for `invalid_client`), the media type, a JSON object with one
/// `error` string, and `error`/`error_description`/`error_uri` within their characters.
pub fn error_shape_problems(e: &Exchange) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(status) = e.status() else {
        return vec![e.brief()];
    };
    let json = e.json();
    if let Some(p) = &json.problem {
        problems.push(p.clone());
    }
    let Some(obj) = json.value.as_ref().and_then(|v| v.as_object()) else {
        return problems;
    };
    match obj.get("error").and_then(|v| v.as_str()) {
        None => problems.push("no \"error\" string member".to_owned()),
        Some(code) => {
            if code.is_empty() || !code.bytes().all(is_error_char) {
                problems.push(format!(
                    "\"error\" {code:?} has characters outside %x20-21/%x23-5B/%x5D-7E"
                ));
            }
            let ok_status = status == 400 || (status == 401 && code == "invalid_client");
            if !ok_status {
                problems.push(format!(
                    "HTTP {status} (RFC 6749 §5.2: 400, or 401 for invalid_client)"
                ));
            }
        }
    }
    for member in ["error_description", "error_uri"] {
        // RFC 6749 §5.2: error_uri, a URI reference, has error's set without the space.
        let (allowed, set): (fn(u8) -> bool, _) = match member {
            "error_uri" => (is_error_uri_char, "%x21/%x23-5B/%x5D-7E, no space"),
            _ => (is_error_char, "%x20-21/%x23-5B/%x5D-7E"),
        };
        match obj.get(member) {
            None => {}
            Some(v) => match v.as_str() {
                Some(s) if s.bytes().all(allowed) => {}
                Some(s) => problems.push(format!(
                    "\"{member}\" has characters outside the allowed set ({set}): {s:?}"
                )),
                None => problems.push(format!("\"{member}\" is not a string")),
            },
        }
    }
    if !e.is_json_media_type() {
        problems.push(format!(
            "Content-Type is {:?}, not application/json",
            e.header("content-type").unwrap_or("absent")
        ));
    }
    problems
}

/// The authentication schemes of the challenges in one `WWW-Authenticate` field value,
/// lower-cased, in order. RFC 9110 §11.6.1: the value is a list of challenges, each
/// `auth-scheme [ 1*SP ( token68 / #auth-param ) ]`, so that after a comma comes
/// either another `auth-param` of the same challenge (`name = value`) or a new scheme:
/// `Bearer realm="api", error="invalid_token", Basic realm="as"` is Bearer, then Basic.
pub fn challenge_schemes(value: &str) -> Vec<String> {
    // The comma-separated elements, commas inside quoted strings kept.
    let mut elements = Vec::new();
    let mut element = String::new();
    let (mut quoted, mut escaped) = (false, false);
    for ch in value.chars() {
        if quoted {
            element.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                quoted = false;
            }
            continue;
        }
        match ch {
            '"' => {
                quoted = true;
                element.push(ch);
            }
            ',' => elements.push(std::mem::take(&mut element)),
            _ => element.push(ch),
        }
    }
    elements.push(element);
    // RFC 9110 §5.6.2 `tchar`.
    let tchar = |c: char| c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c);
    let mut schemes = Vec::new();
    for element in &elements {
        let element = element.trim();
        let end = element.find(|c| !tchar(c)).unwrap_or(element.len());
        let (token, rest) = element.split_at(end);
        // `name = value` continues the challenge before it.
        if !token.is_empty() && !rest.trim_start().starts_with('=') {
            schemes.push(token.to_ascii_lowercase());
        }
    }
    schemes
}

/// Every challenge scheme `e` carries, over all its `WWW-Authenticate` field lines.
pub fn challenges(e: &Exchange) -> Vec<String> {
    e.header_lines("www-authenticate")
        .flat_map(challenge_schemes)
        .collect()
}

/// RFC 9110 §15.5.2: "The server generating a 401 response MUST send a
/// WWW-Authenticate header field containing at least one challenge"; RFC 6749 §5.2
/// allows the 401 for `invalid_client` "to indicate which HTTP authentication schemes
/// are supported". A 401 without one is recorded as a warning (the rows that demand
/// the challenge for a failed Basic attempt, DA-07 and TR-06, fail on it); nothing is
/// recorded for other statuses.
pub fn expect_challenge_on_401(c: &mut Check, e: &Exchange) {
    if e.status() != Some(401) {
        return;
    }
    let schemes = challenges(e);
    let mut what = format!(
        "{}: the HTTP 401 carries a WWW-Authenticate challenge (RFC 9110 §15.5.2)",
        e.label
    );
    if schemes.is_empty() {
        what.push_str(&format!(
            " (got {})",
            e.header_list("www-authenticate")
                .map_or("none".to_owned(), |v| format!("{v:?}"))
        ));
    }
    c.expect_soft(!schemes.is_empty(), what);
}

/// Expects `e` to be a well-formed RFC 6749 §5.2 error with one of `codes`. Records the
/// exchange as evidence; a 401 without a challenge is a warning
/// ([`expect_challenge_on_401`]).
pub fn expect_error(c: &mut Check, e: &Exchange, codes: &[&str]) -> bool {
    c.evidence(e.clone());
    expect_challenge_on_401(c, e);
    let problems = error_shape_problems(e);
    let code = e.error_code();
    let code_ok = code.as_deref().is_some_and(|got| codes.contains(&got));
    let want = codes.join(" or ");
    let mut what = format!("{}: a well-formed {want} error", e.label);
    if !code_ok || !problems.is_empty() {
        what.push_str(&format!(" (got {}", e.brief()));
        if !problems.is_empty() {
            what.push_str(&format!("; {}", problems.join("; ")));
        }
        what.push(')');
    }
    c.expect(code_ok && problems.is_empty(), what)
}

/// RFC 6749 §5.2's shape alone (checklist TS-02): an error object with a well-formed
/// `error`, its status and media type, whatever the code. A code other than `usual`
/// (none given: any) is said in the check's words, not judged: the rows that name a
/// code for a request (TR-04, TS-01, TS-08…) judge it.
pub fn expect_well_formed_error(c: &mut Check, e: &Exchange, usual: &[&str]) -> bool {
    c.evidence(e.clone());
    expect_challenge_on_401(c, e);
    let problems = error_shape_problems(e);
    let code = e.error_code();
    let mut what = format!("{}: a well-formed error", e.label);
    match code.as_deref() {
        _ if !problems.is_empty() => {
            what.push_str(&format!(" (got {}; {})", e.brief(), problems.join("; ")));
        }
        None => what.push_str(&format!(" (got {}: no error object)", e.brief())),
        Some(got) if !usual.is_empty() && !usual.contains(&got) => what.push_str(&format!(
            " ({got}, where {} is usual: TS-02 judges the shape, not the code)",
            usual.join(" or ")
        )),
        Some(_) => {}
    }
    c.expect(problems.is_empty() && code.is_some(), what)
}

/// Whether `e` issued a token: HTTP 200 with a JSON object holding a non-empty
/// `access_token` (RFC 6749 §5.1). The one notion of "a token was issued" every case
/// uses: a 200 carrying an `error` (or nothing) is no token but an error sent with the
/// wrong status, RFC 6749 §5.2's breach (TS-02, DR-12), never a security finding.
pub fn issued_token(e: &Exchange) -> bool {
    e.status() == Some(200)
        && e.json()
            .value
            .as_ref()
            .and_then(|v| v.get("access_token"))
            .and_then(|v| v.as_str())
            .is_some_and(|t| !t.is_empty())
}

/// Whether `e` answered with a token RFC 6749 §5.1 does not allow as one: a success
/// of another status (201) or an empty `access_token` member, what TS-03 fails. It
/// still grants access, so where tokens are counted it counts; and a case that needs a
/// token to judge its own rule is left inconclusive by it, not failed: TS-03 is the
/// one finding (helper-102: a 201 token had failed eleven MUST rows).
pub fn malformed_token(e: &Exchange) -> bool {
    !issued_token(e)
        && e.status().is_some_and(|s| (200..300).contains(&s))
        && e.json()
            .value
            .as_ref()
            .and_then(|v| v.get("access_token"))
            .is_some()
}

/// Leaves `c` inconclusive when the token it needs came malformed
/// ([`malformed_token`]): TS-03's finding, not this case's. Whether it did.
pub fn needed_token_malformed(c: &mut Check, e: &Exchange) -> bool {
    let malformed = malformed_token(e);
    if malformed {
        c.inconclusive(format!(
            "the token this case needs came malformed ({}; TS-03 judges the token response): nothing is known of the rule it judges",
            e.brief()
        ));
    }
    malformed
}

/// Whether `e` grants access: a token, well formed ([`issued_token`]) or not
/// ([`malformed_token`]).
pub fn grants_access(e: &Exchange) -> bool {
    issued_token(e) || malformed_token(e)
}

/// Whether `e` says the request is still pending: `authorization_pending`, or its
/// variant `slow_down` (RFC 8628 §3.5), whatever the status it came with.
pub fn still_pending(e: &Exchange) -> bool {
    !issued_token(e)
        && e.error_code()
            .as_deref()
            .is_some_and(|c| c == "authorization_pending" || c == "slow_down")
}

/// Expects `e` to be a success response as RFC 6749 §5.1 (token) and RFC 8628 §3.2
/// (device authorization) define it: HTTP 200, `application/json`, a JSON object
/// with no repeated member, and each of `required` a non-empty string. Records the
/// exchange as evidence.
pub fn expect_success(c: &mut Check, e: &Exchange, required: &[&str]) -> bool {
    c.evidence(e.clone());
    let label = &e.label;
    let mut ok = c.expect(
        e.status() == Some(200),
        format!("{label}: HTTP 200 (got {})", e.brief()),
    );
    ok &= c.expect(
        e.is_json_media_type(),
        format!(
            "{label}: Content-Type application/json (got {})",
            e.header("content-type").unwrap_or("none")
        ),
    );
    let json = e.json();
    let object = json.object();
    ok &= c.expect(
        object.is_some(),
        format!(
            "{label}: the body is one JSON object{}",
            json.problem
                .as_deref()
                .map_or(String::new(), |p| format!(" (got: {p})"))
        ),
    );
    for member in required {
        let v = object.and_then(|o| o.get(*member));
        // A credential (an access token, a device code) is shown masked, as in the
        // evidence: a report must never hold one that still works.
        let got = match v {
            Some(serde_json::Value::String(s)) if crate::redact::is_secret_name(member) => {
                format!("\"{}\"", crate::redact::mask(s))
            }
            v => v.map_or("nothing".to_owned(), |v| v.to_string()),
        };
        ok &= c.expect(
            v.and_then(|v| v.as_str()).is_some_and(|s| !s.is_empty()),
            format!("{label}: {member} is a non-empty string, REQUIRED (got {got})"),
        );
    }
    ok
}

/// A JSON member's value as a finding shows it: `600`, `the string "600"`, or
/// `nothing` when absent (never Rust's `Some(..)`/`None`).
pub fn json_words(v: Option<&serde_json::Value>) -> String {
    match v {
        None => "nothing".to_owned(),
        Some(s @ serde_json::Value::String(_)) => format!("the string {s}"),
        Some(v) => v.to_string(),
    }
}

/// The fewest sampled device authorizations a judgement on uniqueness or entropy is
/// made from (fewer asked for with `--samples`: that many).
pub const MIN_SAMPLES: usize = 20;

/// The run's sampled device authorizations, or the verdict for a case that must not
/// judge from too few (a server that refused most of them): skipped, saying how many
/// succeeded. Never a judgement from zero samples.
pub async fn enough_samples(ctx: &Ctx, level: Level) -> Result<&[Authorization], Verdict> {
    let samples = ctx.samples().await;
    let needed = MIN_SAMPLES.min(ctx.options.samples).max(2);
    if samples.len() < needed {
        let mut c = Check::new(level);
        c.measure("samples", samples.len());
        return Err(c.skip(
            Status::Skip,
            format!(
                "only {} of {} sample device authorizations succeeded; judging needs at least {needed}",
                samples.len(),
                ctx.options.samples
            ),
        ));
    }
    Ok(samples)
}

/// DA-02's empty POST to the device authorization endpoint, without Content-Type
/// (labelled `EMPTY_POST`): a client error, which DA-02 and DR-12 both judge.
pub async fn empty_post(ctx: &Ctx) -> Exchange {
    ctx.http
        .send(crate::http::Request {
            label: EMPTY_POST,
            method: reqwest::Method::POST,
            url: &ctx.target.device_authorization_endpoint,
            content_type: None,
            headers: vec![],
            body: None,
        })
        .await
}

/// The label of [`empty_post`].
pub const EMPTY_POST: &str = "empty POST without Content-Type";

/// A device authorization as the configured client that the case depends on; a
/// failure is recorded as a broken expectation, with its evidence.
pub async fn authorize(ctx: &Ctx, c: &mut Check) -> Option<Authorization> {
    match ctx.authorize("device authorization").await {
        Ok(a) => {
            c.evidence(a.exchange.clone());
            Some(a)
        }
        Err(e) => {
            if e.still_rate_limited().is_some() {
                // A 429 or 503 after the retries says nothing of this case's rule:
                // the evidence makes the case inconclusive (`Check::evidence`).
            } else if e.response.is_none() && e.not_connected().is_none() {
                // No answer (a timeout, a reset) to a request the preflight showed
                // works: nothing is known of the rule this case judges.
                c.inconclusive(format!(
                    "the device authorization this case needs got no answer ({}): nothing is known of the rule it judges",
                    e.brief()
                ));
            } else {
                c.expect(
                    false,
                    format!(
                        "the device authorization this case needs succeeds (got {})",
                        e.brief()
                    ),
                );
            }
            c.evidence(*e);
            None
        }
    }
}

/// Polls `auth` as a compliant client (waiting `interval + 5·k` plus the margin
/// between polls; the first poll at once) until the answer is anything but
/// `authorization_pending` / `slow_down`, or `max_wait` is spent. Returns every poll.
pub async fn poll_until_final(
    ctx: &Ctx,
    case: &str,
    auth: &Authorization,
    client: &crate::client::Client,
) -> Vec<Exchange> {
    poll_until_final_paced(ctx, case, auth, client, &mut Pace::new(auth)).await
}

/// [`poll_until_final`] for a code already polled: `pace` holds those polls (RFC 8628
/// §3.5: the interval, and every slow_down's +5 s, run from the last of them), so the
/// first poll here waits what is left of it, and `pace` is kept up to date.
pub async fn poll_until_final_paced(
    ctx: &Ctx,
    case: &str,
    auth: &Authorization,
    client: &crate::client::Client,
    pace: &mut Pace,
) -> Vec<Exchange> {
    let now = std::time::Instant::now();
    let deadline = now.checked_add(ctx.options.max_wait);
    let fits = |wait: Duration| {
        deadline.is_some_and(|d| {
            std::time::Instant::now()
                .checked_add(wait)
                .is_some_and(|t| t <= d)
        })
    };
    let mut polls = Vec::new();
    let mut due = pace.due_in(ctx);
    loop {
        if !due.is_zero() {
            ctx.wait(case, due, "polling at the interval").await;
        }
        let e = ctx
            .poll_at_pace("poll", client, &auth.device_code, pace.wait(ctx))
            .await;
        pace.record(&e);
        let go_on = still_pending(&e);
        polls.push(e);
        due = pace.due_in(ctx);
        if !go_on || !fits(due) {
            return polls;
        }
    }
}

/// The suite's own pace as a polling client (RFC 8628 §3.5, checklist CL-01): it waits
/// `interval + 5·k` (plus the margin) after its last poll, `k` counting every slow_down
/// it has received for the code, whichever poll got it (a deliberately early one too).
pub struct Pace {
    interval: u64,
    slow_downs: u64,
    last: Option<std::time::Instant>,
}

impl Pace {
    pub fn new(auth: &Authorization) -> Pace {
        Pace {
            interval: auth.interval,
            slow_downs: 0,
            last: None,
        }
    }

    /// The slow_downs received so far.
    pub fn slow_downs(&self) -> u64 {
        self.slow_downs
    }

    /// What the suite waits between two polls now: `interval + 5·k` plus the margin.
    pub fn wait(&self, ctx: &Ctx) -> Duration {
        ctx.compliant_wait(self.interval, self.slow_downs)
    }

    /// How long until the next poll may go (zero before the first poll).
    pub fn due_in(&self, ctx: &Ctx) -> Duration {
        self.last.map_or(Duration::ZERO, |t| {
            self.wait(ctx).saturating_sub(t.elapsed())
        })
    }

    /// Records a poll's answer `e`, just received: its time, and a slow_down (one in
    /// an answer waited out before it, a slow_down sent as 429, counts too).
    pub fn record(&mut self, e: &Exchange) {
        self.last = Some(std::time::Instant::now());
        for answer in e.earlier.iter().chain(std::iter::once(e)) {
            if answer.error_code().as_deref() == Some("slow_down") {
                self.slow_downs += 1;
            }
        }
    }

    /// Waits until a poll is due (saying so as `why`), polls, and records the answer.
    pub async fn poll(
        &mut self,
        ctx: &Ctx,
        case: &str,
        label: &str,
        device_code: &str,
        why: &str,
    ) -> Exchange {
        self.poll_as(ctx, case, label, ctx.client(), device_code, why)
            .await
    }

    /// [`Pace::poll`] as `client`: the pace is the code's, whoever polls it (RFC 8628
    /// §3.5; a server may judge it before it looks at the client, as Keycloak does).
    pub async fn poll_as(
        &mut self,
        ctx: &Ctx,
        case: &str,
        label: &str,
        client: &crate::client::Client,
        device_code: &str,
        why: &str,
    ) -> Exchange {
        let due = self.due_in(ctx);
        if !due.is_zero() {
            ctx.wait(case, due, why).await;
        }
        let e = ctx
            .poll_at_pace(label, client, device_code, self.wait(ctx))
            .await;
        self.record(&e);
        e
    }
}

/// A device authorization the approver then decided with `action`. `None` if a step
/// failed: a failed authorization is recorded in `c` as the server's, a failed
/// approver as the suite's ([`approver_failed`]).
pub async fn decided(
    ctx: &Ctx,
    c: &mut Check,
    action: crate::approver::Action,
) -> Option<Authorization> {
    let a = authorize(ctx, c).await?;
    if let Err(why) = ctx.decide(&a, action).await {
        approver_failed(c, action, &why);
        return None;
    }
    Some(a)
}

/// Records that the approver could not `action` a request the server had just
/// handed out: the suite cannot go on, and the case ends inconclusive with the
/// approver's message (a wrong --admin-token, a missing program), never as a failure
/// of the server.
pub fn approver_failed(c: &mut Check, action: crate::approver::Action, why: &str) {
    c.inconclusive(format!(
        "the approver could not {} a fresh request: {why}",
        action.as_str()
    ));
}

/// Authorizes, approves through the approver and polls until the token (or another
/// final answer). `None` if a step failed; the failure is recorded in `c`. With the
/// code's [`Pace`] after those polls, for a case that polls it again.
pub async fn approved_token(
    ctx: &Ctx,
    c: &mut Check,
    case: &str,
) -> Option<(Authorization, Exchange, Pace)> {
    let a = decided(ctx, c, crate::approver::Action::Approve).await?;
    let mut pace = Pace::new(&a);
    let mut polls = poll_until_final_paced(ctx, case, &a, ctx.client(), &mut pace).await;
    let last = polls.pop()?;
    for p in polls {
        c.evidence(p);
    }
    Some((a, last, pace))
}

/// RFC 7662 introspection of `token`, if the target has an endpoint and a client for it.
pub async fn introspect(ctx: &Ctx, token: &str) -> Option<Exchange> {
    let url = ctx.target.introspection_endpoint.as_deref()?;
    let client = ctx.target.introspection_client.as_ref()?;
    Some(
        ctx.http
            .post_form("introspection", url, Some(client), &[("token", token)])
            .await,
    )
}

/// Expects a specific status code with anything in the body, for non-error answers.
pub fn expect_status(c: &mut Check, e: &Exchange, status: u16) -> bool {
    c.evidence(e.clone());
    let ok = e.status() == Some(status);
    c.expect(
        ok,
        format!(
            "{}: HTTP {status} (got {})",
            e.label,
            if ok {
                format!("HTTP {status}")
            } else {
                e.brief()
            }
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn challenges_are_read_as_a_list_of_schemes_with_their_parameters() {
        // RFC 9110 §11.6.1's example, a comma in a quoted string and a token68.
        assert_eq!(
            challenge_schemes(
                r#"Newauth realm="apps", type=1, title="Login to \"apps\", ok", Basic realm="simple""#
            ),
            ["newauth", "basic"]
        );
        assert_eq!(
            challenge_schemes(
                r#"Bearer realm="x", error="invalid_token", Basic realm="as", charset="UTF-8""#
            ),
            ["bearer", "basic"]
        );
        assert_eq!(challenge_schemes("Basic"), ["basic"]);
        assert_eq!(
            challenge_schemes("Negotiate abc==, basic realm = x"),
            ["negotiate", "basic"]
        );
        assert_eq!(challenge_schemes(""), Vec::<String>::new());
        assert_eq!(challenge_schemes("Basicx realm=a"), ["basicx"]);
    }

    #[test]
    fn error_uri_is_held_to_its_own_set_which_has_no_space() {
        // RFC 6749 §5.2: error_description may hold a space, error_uri may not.
        let said = |member: &str, value: &str| {
            let body = serde_json::json!({"error": "invalid_request", member: value});
            error_shape_problems(&crate::http::tests::answered(body.to_string().into_bytes()))
                .join("; ")
        };
        assert!(!said("error_uri", "https://as.example/errors#x").contains("error_uri"));
        assert!(said("error_uri", "https://as.example/a b")
            .contains("\"error_uri\" has characters outside the allowed set"));
        assert!(!said("error_description", "a b").contains("error_description"));
    }

    #[test]
    fn json_values_read_as_json_never_as_rust_options() {
        let v = serde_json::json!({"n": 600, "s": "600"});
        assert_eq!(json_words(v.get("n")), "600");
        assert_eq!(json_words(v.get("s")), "the string \"600\"");
        assert_eq!(json_words(v.get("absent")), "nothing");
    }

    #[test]
    fn every_case_with_interval_waits_exists() {
        let cases = all();
        for id in [
            "TS-01", "TS-08", "TS-09", "TS-11", "PL-02", "PL-03", "PL-07", "EX-04",
        ] {
            let case = cases.iter().find(|c| c.info.id == id);
            assert!(case.is_some(), "{id}");
            assert!(!case.unwrap().info.interval_waits.is_empty(), "{id}");
        }
    }

    #[test]
    fn ids_and_slugs_are_unique_and_cite_an_rfc() {
        let cases = all();
        let mut ids = HashSet::new();
        let mut slugs = HashSet::new();
        for c in &cases {
            assert!(ids.insert(c.info.id), "{} twice", c.info.id);
            assert!(slugs.insert(c.info.slug), "{} twice", c.info.slug);
            assert!(c.info.rfc.starts_with("RFC "), "{}", c.info.id);
            assert!(group_title(c.info.group) != "Other", "{}", c.info.id);
        }
        assert!(cases.len() >= 60, "{}", cases.len());
    }
}
