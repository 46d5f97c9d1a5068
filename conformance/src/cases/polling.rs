//! A.6: polling, interval and slow_down (RFC 8628 §3.2, §3.5; checklist A.0).
//!
//! The suite polls as a careful client: at `interval + margin` (checklist A.0: "poll at
//! interval + margin"), adding 5 s per slow_down, so that any slow_down it gets while
//! compliant is the server's fault.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{approver_failed, authorize, case, expect_error};
use crate::approver::Action;
use crate::case::{Case, Check, Level, Status, Verdict};
use crate::context::{Authorization, Ctx};
use crate::http::Exchange;

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "PL-01",
            "rfc8628/3.5/slow-down-capability",
            "A.6",
            "RFC 8628 §3.5",
            May,
            None,
            Interval,
            "Does the server answer too-fast polling with slow_down?",
            pl_01
        ),
        case!(
            "PL-02",
            "rfc8628/3.5/compliant-client-never-slowed",
            "A.6",
            "RFC 8628 §3.5",
            DerivedMust,
            None,
            Interval,
            "A client that waits the interval never gets slow_down",
            pl_02,
            waits = [0, 0]
        ),
        case!(
            "PL-03",
            "rfc8628/3.5/no-more-than-interval-plus-5k",
            "A.6",
            "RFC 8628 §3.5",
            DerivedMust,
            None,
            Interval,
            "After k slow_downs, waiting interval + 5k is enough",
            pl_03,
            waits = [1]
        ),
        case!(
            "PL-04",
            "rfc8628/3.5/no-livelock-with-jitter",
            "A.6",
            "RFC 8628 §3.5",
            DerivedMust,
            None,
            Soak,
            "A compliant client with realistic jitter never drifts into slow_down",
            pl_04
        ),
        case!(
            "PL-05",
            "rfc8628/3.2/first-poll-not-early",
            "A.6",
            "RFC 8628 §3.2",
            Should,
            None,
            None,
            "The first poll right after authorization is not slow_down",
            pl_05
        ),
        case!(
            "PL-06",
            "rfc8628/3.5/slow-down-only-while-pending",
            "A.6",
            "RFC 8628 §3.5",
            DerivedShould,
            Approve,
            Interval,
            "Approved and denied codes get their final answer even when polled early",
            pl_06
        ),
        case!(
            "PL-07",
            "rfc8628/3.5/server-tracks-increment",
            "A.6",
            "RFC 8628 §3.5",
            Info,
            None,
            Interval,
            "Does the server track the +5 s itself?",
            pl_07,
            waits = [0, 2, 0]
        ),
        case!(
            "PL-08",
            "rfc8628/3.5/slow-down-extras",
            "A.6",
            "RFC 8628 §3.5",
            Info,
            None,
            Interval,
            "Non-standard extras on slow_down (interval member, Retry-After)",
            pl_08
        ),
        case!(
            "PL-09",
            "rfc6749/5.2/slow-down-format",
            "A.6",
            "RFC 6749 §5.2",
            Must,
            None,
            Interval,
            "slow_down is a 400 JSON error",
            pl_09
        ),
        case!(
            "PL-10",
            "rfc8628/3.5/infrastructure-limits",
            "A.6",
            "RFC 8628 §3.5",
            Info,
            None,
            Interval,
            "Rate limits in front of the token endpoint (429, HTML)",
            pl_10
        ),
    ]
}

/// Polls once (accepted), then at once again. Returns both answers.
async fn provoke(ctx: &Ctx, a: &Authorization) -> (Exchange, Exchange) {
    let first = ctx.poll_raw("first poll", &a.device_code).await;
    let second = ctx.poll_raw("immediate second poll", &a.device_code).await;
    (first, second)
}

/// Whether a poll sent as soon as one of `answered` was answered came sooner than the
/// interval after it (RFC 8628 §3.5: only such a poll is too fast). A server that
/// takes the interval or longer to answer never sees a poll sent that way early: its
/// pending answers then say nothing about its slow_down policy, either way.
fn sent_early(answered: &[&Exchange], interval_secs: u64) -> bool {
    let interval_ms = interval_secs.saturating_mul(1000);
    answered.iter().any(|e| e.elapsed_ms < interval_ms)
}

/// Why a slow_down policy could not be judged: [`sent_early`] was false.
fn not_early(answered: &[&Exchange], interval_secs: u64) -> String {
    let took: Vec<String> = answered
        .iter()
        .map(|e| format!("{} ms", e.elapsed_ms))
        .collect();
    format!(
        "no poll was too fast: each was sent when the one before was answered, and the server took {} to answer, not less than its interval of {interval_secs} s (RFC 8628 §3.5)",
        took.join(" and ")
    )
}

/// The verdict of a check of the slow_down answer when the poll sent at once after
/// `first` got none: not applicable when that poll was too fast (the server does not
/// send slow_down, PL-01), inconclusive when it was not (helper-102: under load the
/// "immediate" poll went out 1,027 ms after a 1 s interval's, was rightly pending,
/// and PL-08 and PL-09 said the server sends no slow_down, against PL-01's finding).
fn without_slow_down(mut c: Check, first: &Exchange, interval_secs: u64) -> Verdict {
    if sent_early(&[first], interval_secs) {
        c.skip(
            Status::NotApplicable,
            "the server does not send slow_down (PL-01)",
        )
    } else {
        c.inconclusive(not_early(&[first], interval_secs));
        c.finish("")
    }
}

fn is_slow_down(e: &Exchange) -> bool {
    e.error_code().as_deref() == Some("slow_down")
}

async fn pl_01(ctx: Ctx) -> Verdict {
    // A MAY of the server (RFC 8628 §3.5), a MUST where the operator declared it.
    let level = ctx.options.level_for("PL-01", Level::May);
    let mut c = Check::new(level);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let (first, second) = provoke(&ctx, &a).await;
    let third = ctx
        .poll_raw("third poll within a second", &a.device_code)
        .await;
    let sends = is_slow_down(&second) || is_slow_down(&third);
    c.measure("sends_slow_down", sends);
    if !sends && !sent_early(&[&first, &second], a.interval) {
        c.inconclusive(not_early(&[&first, &second], a.interval));
    } else if level == Level::Must {
        c.expect(
            sends,
            format!(
                "too-fast polls get slow_down, as declared with --expect slow-down (got {})",
                third.brief()
            ),
        );
    }
    for e in [first, second, third] {
        c.evidence(e);
    }
    c.finish(if sends {
        "early polls get slow_down"
    } else {
        "early polls are not slowed down (slow_down is never sent)"
    })
}

async fn pl_02(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedMust);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let issued = Instant::now();
    let wait = ctx.compliant_wait(a.interval, 0);
    // Ten polls, or as many as the code's lifetime and --max-wait allow (the interval
    // is the server's choice, RFC 8628 §3.2: a long one is no fault).
    let room = ctx.usable_for(&a, issued).min(ctx.options.max_wait);
    let polls = polls_that_fit(room, wait).min(10);
    if polls < 3 {
        return c.skip(
            Status::Skip,
            format!(
                "3 polls at the server's interval ({} s) plus the margin, {:.1} s apart, do not fit: {} and --max-wait {} s leave {:.1} s",
                a.interval,
                wait.as_secs_f64(),
                expires_in_words(a.expires_in),
                ctx.options.max_wait.as_secs(),
                room.as_secs_f64()
            ),
        );
    }
    // The first poll goes at once after the authorization: no interval was waited, so
    // a slow_down to it is PL-05's (a SHOULD), not this row's. From then on the suite
    // waits interval + 5·k after its last poll, k counting every slow_down (RFC 8628
    // §3.5), and every such poll must be pending.
    let mut pace = super::Pace::new(&a);
    let first = pace
        .poll(&ctx, "PL-02", "first poll, at once", &a.device_code, "")
        .await;
    let first_ok = c.expect(
        matches!(
            first.error_code().as_deref(),
            Some("authorization_pending" | "slow_down")
        ),
        format!(
            "the first poll, sent at once, gets authorization_pending (or slow_down: see PL-05) (got {})",
            first.brief()
        ),
    );
    c.evidence(first);
    let mut compliant = 0;
    while first_ok && compliant + 1 < polls {
        let wait = pace.wait(&ctx);
        if issued.elapsed().saturating_add(wait) > room {
            break;
        }
        let k = pace.slow_downs();
        let e = pace
            .poll(
                &ctx,
                "PL-02",
                &format!("compliant poll {}", compliant + 2),
                &a.device_code,
                &format!("poll {}/{polls}", compliant + 2),
            )
            .await;
        compliant += 1;
        let ok = e.error_code().as_deref() == Some("authorization_pending");
        c.expect(
            ok,
            format!(
                "compliant poll {} (interval + 5·{k} + {:.1} s after the poll before) gets authorization_pending (got {})",
                compliant + 1,
                ctx.options.poll_margin.as_secs_f64(),
                e.brief()
            ),
        );
        c.evidence(e);
        if !ok {
            break;
        }
    }
    c.measure("slow_downs_before_compliant_polls", pace.slow_downs());
    if first_ok && compliant == 0 {
        return c.skip(
            Status::Skip,
            format!(
                "the first poll got slow_down, and a poll at interval + 5 s ({:.1} s) no longer fits: {} and --max-wait {} s",
                pace.wait(&ctx).as_secs_f64(),
                expires_in_words(a.expires_in),
                ctx.options.max_wait.as_secs()
            ),
        );
    }
    c.finish(format!(
        "{compliant} polls at the interval after the first: all authorization_pending"
    ))
}

/// How many polls `wait` apart fit in `room` (the first at once). Saturating: the
/// interval behind `wait` is the server's number.
fn polls_that_fit(room: Duration, wait: Duration) -> usize {
    if wait.is_zero() {
        return usize::MAX;
    }
    usize::try_from(room.as_nanos() / wait.as_nanos())
        .unwrap_or(usize::MAX)
        .saturating_add(1)
}

/// `expires_in 600 s`, or that the server gave none: for findings, in words.
fn expires_in_words(expires_in: Option<u64>) -> String {
    expires_in.map_or("no expires_in".to_owned(), |n| format!("expires_in {n} s"))
}

async fn pl_03(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedMust);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let issued = Instant::now();
    // Every slow_down counts (RFC 8628 §3.5: +5 s "for this and all subsequent
    // requests"): the first poll may get one too (PL-05), and the suite keeps both.
    let mut pace = super::Pace::new(&a);
    let (first, second) = provoke(&ctx, &a).await;
    pace.record(&first);
    pace.record(&second);
    let provoked = is_slow_down(&first) || is_slow_down(&second);
    let first_sent = first.clone();
    c.evidence(first);
    c.evidence(second);
    if !provoked {
        return without_slow_down(c, &first_sent, a.interval);
    }
    let mut waited = Duration::ZERO;
    let mut rounds = 0;
    loop {
        let k = pace.slow_downs();
        let wait = pace.wait(&ctx);
        let budget = ctx.options.max_wait.saturating_sub(waited);
        if wait > ctx.usable_for(&a, issued) || wait > budget {
            c.measure("checked_up_to_k", if rounds == 0 { 0 } else { k - 1 });
            if rounds == 0 {
                return c.skip(
                    Status::Skip,
                    format!(
                        "the wait after {k} slow_down(s), the server's interval ({} s) + 5·{k} s, does not fit: {} and --max-wait {} s",
                        a.interval,
                        expires_in_words(a.expires_in),
                        ctx.options.max_wait.as_secs()
                    ),
                );
            }
            break;
        }
        waited = waited.saturating_add(wait);
        let e = pace
            .poll(
                &ctx,
                "PL-03",
                &format!("poll after interval + 5·{k}"),
                &a.device_code,
                &format!("interval + 5·{k} after {k} slow_down(s)"),
            )
            .await;
        rounds += 1;
        let ok = e.error_code().as_deref() == Some("authorization_pending");
        c.expect(
            ok,
            format!(
                "after {k} slow_down(s), waiting interval + 5·{k} the answer is authorization_pending (got {})",
                e.brief()
            ),
        );
        c.evidence(e);
        if !ok || rounds == 2 {
            break;
        }
        let e = ctx
            .poll_raw("immediate poll for another slow_down", &a.device_code)
            .await;
        pace.record(&e);
        let again = is_slow_down(&e);
        c.evidence(e);
        if !again {
            break;
        }
    }
    c.measure("slow_downs", pace.slow_downs());
    c.finish(format!(
        "waiting interval + 5k after k slow_downs was enough (k up to {})",
        pace.slow_downs()
    ))
}

async fn pl_04(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedMust);
    let Some(mut a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let mut issued = Instant::now();
    // Deterministic jitter in [-300, +300] ms around interval + 0.2 s (the run stops at
    // the first slow_down, so k stays 0).
    let jitter = [0i64, 300, -300, 150, -150, 290, -290, 80, -80, 220];
    let polls = 40;
    let mut slow_downs = 0;
    let mut codes = 1;
    // When the previous poll of the same code was sent, and how long after it the one
    // slowed down went: what a reader needs to judge the server's tolerance.
    let mut previous: Option<Instant> = None;
    let mut slowed_after = None;
    for i in 0..polls {
        let sent = Instant::now();
        let e = ctx
            .poll_raw(&format!("poll {}", i + 1), &a.device_code)
            .await;
        let code = e.error_code().unwrap_or_default();
        if code == "slow_down" {
            slowed_after = previous.map(|p| sent.duration_since(p));
            // One is enough to judge: a compliant client was slowed down. Going on
            // would only wait out a growing interval.
            slow_downs += 1;
            c.evidence(e);
            break;
        } else if code != "authorization_pending" {
            c.expect(
                false,
                format!(
                    "poll {} gets authorization_pending (got {})",
                    i + 1,
                    e.brief()
                ),
            );
            c.evidence(e);
            break;
        }
        previous = Some(sent);
        let base = Duration::from_secs(a.interval).saturating_add(Duration::from_millis(200));
        let j = jitter[i % jitter.len()];
        let wait = if j >= 0 {
            base.saturating_add(Duration::from_millis(j.unsigned_abs()))
        } else {
            base.saturating_sub(Duration::from_millis(j.unsigned_abs()))
        };
        if i + 1 < polls {
            ctx.wait("PL-04", wait, &format!("soak poll {}/{polls}", i + 2))
                .await;
            // A soak outlives a code: carry on with a fresh one, as a device would.
            if ctx.usable_for(&a, issued) < Duration::from_secs(1) {
                match authorize(&ctx, &mut c).await {
                    Some(next) => {
                        a = next;
                        issued = Instant::now();
                        previous = None;
                        codes += 1;
                    }
                    None => break,
                }
            }
        }
    }
    c.measure("slow_downs", slow_downs);
    c.measure("device_codes_used", codes);
    // Checklist PL-04: the jitter is request latency's, which moves when a poll reaches
    // the server by ±300 ms (H2CK/oidc#716); a server must allow for it, or a client at
    // the right cadence is told slow_down.
    let when = match slowed_after {
        Some(gap) => format!(
            ", to a poll sent {:.2} s after the one before, the interval being {} s",
            gap.as_secs_f64(),
            a.interval
        ),
        None => String::new(),
    };
    c.expect(
        slow_downs == 0,
        format!(
            "no slow_down to a client polling at interval + 0.2 s ± 0.3 s, request latency's jitter (got {slow_downs}{when})"
        ),
    );
    c.finish(format!("{polls} jittered polls, no slow_down"))
}

async fn pl_05(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Should);
    if let Some(a) = authorize(&ctx, &mut c).await {
        let e = ctx
            .poll_raw("poll right after authorization", &a.device_code)
            .await;
        c.expect(
            !is_slow_down(&e),
            format!("the first poll is not slow_down (got {})", e.brief()),
        );
        c.evidence(e);
    }
    c.finish("the first poll is not early")
}

async fn pl_06(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedShould);
    for (action, want) in [
        (Action::Approve, None),
        (Action::Deny, Some("access_denied")),
    ] {
        let Some(a) = authorize(&ctx, &mut c).await else {
            return c.finish("");
        };
        let first = ctx.poll_raw("poll while pending", &a.device_code).await;
        c.evidence(first);
        if let Err(why) = ctx.decide(&a, action).await {
            approver_failed(&mut c, action, &why);
            return c.finish("");
        }
        let e = ctx
            .poll_raw(
                &format!("early poll right after {}", action.as_str()),
                &a.device_code,
            )
            .await;
        let ok = match want {
            None => super::grants_access(&e),
            Some(code) => e.error_code().as_deref() == Some(code),
        };
        c.expect(
            ok,
            format!(
                "an early poll after {} gets the final answer (got {})",
                action.as_str(),
                e.brief()
            ),
        );
        c.evidence(e);
    }
    c.finish("approved and denied codes get their final answer at once")
}

async fn pl_07(ctx: Ctx) -> Verdict {
    // RFC 8628 §3.5: after slow_down "the interval MUST be increased by 5 seconds for
    // this and all subsequent requests". Whether the server holds clients to it is its
    // choice (Info), unless the operator declared it (--expect slow-down).
    let level = ctx.options.level_for("PL-07", Level::Info);
    let declared = level == Level::Must;
    let mut c = Check::new(level);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let (first, second) = provoke(&ctx, &a).await;
    let provoked = is_slow_down(&second);
    let first_answer = first.clone();
    let unjudged = (!sent_early(&[&first], a.interval)).then(|| not_early(&[&first], a.interval));
    c.evidence(first);
    c.evidence(second);
    if !provoked {
        c.measure("tracks_increment", Value::Null);
        if let Some(why) = unjudged {
            c.inconclusive(why);
            return c.finish("");
        }
        if declared {
            c.expect(
                false,
                "too-fast polls get slow_down, as declared (got none: see PL-01)",
            );
            return c.finish("");
        }
        return c.skip(
            Status::NotApplicable,
            "the server does not send slow_down (PL-01)",
        );
    }
    // Every slow_down counts, the first poll's too (RFC 8628 §3.5, CL-01).
    let mut k = 1 + u64::from(is_slow_down(&first_answer));
    // (1) The old interval, without the +5 s: still early for a server that tracks.
    ctx.wait(
        "PL-07",
        ctx.compliant_wait(a.interval, 0),
        "the old interval, without the +5 s",
    )
    .await;
    let e = ctx
        .poll_raw("poll after the old interval", &a.device_code)
        .await;
    let tracks = is_slow_down(&e);
    let tracks_got = e.brief();
    k += u64::from(tracks);
    c.measure("tracks_increment", tracks);
    c.evidence(e);
    // (2) A compliant gap (interval + 5k), then (3) the old interval again: the +5 s
    // holds "for all subsequent requests", so that poll is still early.
    ctx.wait(
        "PL-07",
        ctx.compliant_wait(a.interval, k),
        "interval + 5k, compliant",
    )
    .await;
    let e = ctx.poll_raw("compliant poll", &a.device_code).await;
    c.evidence(e);
    ctx.wait(
        "PL-07",
        ctx.compliant_wait(a.interval, 0),
        "the old interval again",
    )
    .await;
    let e = ctx
        .poll_raw("poll after the old interval, later", &a.device_code)
        .await;
    let kept = is_slow_down(&e);
    let kept_got = e.brief();
    c.measure("kept_for_later_polls", kept);
    c.evidence(e);
    if declared {
        // RFC 8628 §3.5: slow_down, and the interval 5 s longer for this and all
        // subsequent requests: the old interval is early, so slow_down again.
        c.expect(
            tracks,
            format!("the +5 s is tracked: the old interval after a slow_down is still early, so slow_down (got {tracks_got})"),
        );
        c.expect(
            kept,
            format!("the +5 s is kept for all later polls, after a compliant one too, so slow_down (got {kept_got})"),
        );
    }
    c.finish(match (tracks, kept) {
        (true, true) => "the server tracks the +5 s and keeps it for all later polls",
        (true, false) => "the server tracks the +5 s but drops it after a compliant poll",
        (false, _) => "the server does not track the +5 s (a fixed window)",
    })
}

async fn pl_08(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Info);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let (first, second) = provoke(&ctx, &a).await;
    if !is_slow_down(&second) {
        c.evidence(second);
        return without_slow_down(c, &first, a.interval);
    }
    let interval = second.json().value.and_then(|v| v.get("interval").cloned());
    let retry_after = second.header("retry-after").map(str::to_owned);
    c.measure("interval_member", interval.clone().unwrap_or(Value::Null));
    c.measure(
        "retry_after",
        retry_after.clone().map(Value::from).unwrap_or(Value::Null),
    );
    c.evidence(second);
    c.finish(match (interval, retry_after) {
        (None, None) => "plain slow_down, no extras".to_owned(),
        (i, r) => format!(
            "extras: interval {}, Retry-After {}",
            i.map_or("absent".to_owned(), |v| v.to_string()),
            r.map_or("absent".to_owned(), |v| format!("{v:?}"))
        ),
    })
}

async fn pl_09(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let (first, second) = provoke(&ctx, &a).await;
    if !is_slow_down(&second) {
        c.evidence(second);
        return without_slow_down(c, &first, a.interval);
    }
    expect_error(&mut c, &second, &["slow_down"]);
    c.finish("400 JSON slow_down")
}

async fn pl_10(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Info);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let mut seen = std::collections::BTreeMap::<String, usize>::new();
    for i in 0..20 {
        let e = ctx
            .poll_raw(&format!("burst poll {}", i + 1), &a.device_code)
            .await;
        let label = match (e.status(), e.error_code()) {
            (Some(429), _) => "429".to_owned(),
            (Some(s), Some(code)) => format!("{s} {code}"),
            (Some(s), None) => format!("{s} non-JSON"),
            (None, _) => "no response".to_owned(),
        };
        if label.starts_with("429") || label.contains("non-JSON") || label == "no response" {
            c.evidence(e);
        }
        *seen.entry(label).or_default() += 1;
    }
    let summary: Vec<String> = seen.iter().map(|(k, n)| format!("{n}× {k}")).collect();
    c.measure(
        "burst_of_20",
        serde_json::to_value(&seen).unwrap_or_default(),
    );
    c.finish(format!("20 polls in a burst: {}", summary.join(", ")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn polls_fit_the_room_left_and_a_huge_interval_fits_one() {
        let s = Duration::from_secs;
        assert_eq!(polls_that_fit(s(90), Duration::from_millis(5_500)), 17);
        assert_eq!(polls_that_fit(s(90), Duration::from_millis(60_500)), 2);
        assert_eq!(
            polls_that_fit(Duration::MAX, Duration::from_millis(1)),
            usize::MAX
        );
        assert_eq!(polls_that_fit(s(90), Duration::MAX), 1);
    }

    #[test]
    fn expires_in_reads_as_words_not_as_rust() {
        assert_eq!(expires_in_words(Some(600)), "expires_in 600 s");
        assert_eq!(expires_in_words(None), "no expires_in");
    }
}
