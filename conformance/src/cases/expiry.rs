//! A.7: expiry (RFC 8628 §3.2, §3.5, §5.4). These cases wait past `expires_in`; the
//! runner skips them when that does not fit the `--max-wait` budget.

use std::time::Duration;

use super::{authorize, case, decided, expect_error};
use crate::approver::{Action, NotDecided};
use crate::case::{Case, Check, Level, Status, Verdict};
use crate::context::{Authorization, Ctx};

pub fn cases() -> Vec<Case> {
    vec![
        case!(
            "EX-01",
            "rfc8628/3.5/expired-token-after-expires-in",
            "A.7",
            "RFC 8628 §3.5",
            Must,
            None,
            Expiry,
            "After expires_in, polls get expired_token, and not before",
            ex_01
        ),
        case!(
            "EX-02",
            "rfc8628/3.5/expiry-beats-approval",
            "A.7",
            "RFC 8628 §3.5",
            DerivedMust,
            Approve,
            Expiry,
            "A code approved before expiry and redeemed after it yields no token",
            ex_02
        ),
        case!(
            "EX-03",
            "rfc8628/3.5/late-approval-refused",
            "A.7",
            "RFC 8628 §3.5",
            DerivedMust,
            Approve,
            Expiry,
            "An expired user code cannot be approved, and a late approval issues nothing",
            ex_03
        ),
        case!(
            "EX-04",
            "rfc8628/3.5/expiry-is-final",
            "A.7",
            "RFC 8628 §3.5",
            DerivedShould,
            None,
            Expiry,
            "After expired_token, the code never again yields pending or a token",
            ex_04,
            waits = [0, 0]
        ),
        case!(
            "EX-05",
            "rfc8628/5.4/lifetime",
            "A.7",
            "RFC 8628 §5.4",
            Info,
            None,
            None,
            "expires_in is long enough to use and short enough to limit phishing",
            ex_05
        ),
    ]
}

fn lifetime(a: &Authorization) -> Duration {
    Duration::from_secs(a.expires_in.unwrap_or(0))
}

/// Two seconds past the code's lifetime. `expires_in` is the server's number: the
/// sum saturates (the runner skips these cases when it does not fit --max-wait).
fn past_lifetime(a: &Authorization) -> Duration {
    lifetime(a).saturating_add(Duration::from_secs(2))
}

async fn ex_01(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Must);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let issued = std::time::Instant::now();
    let life = lifetime(&a);
    let after = life.saturating_add(Duration::from_secs(3));
    // RFC 8628 §3.5 (CL-01): the two polls are an interval apart at least, so the one
    // before expiry goes early enough for the one 3 s past it to keep the pace; shortly
    // before expiry (10 s, or a third of the lifetime) when the interval allows.
    let before = life
        .saturating_sub(Duration::from_secs(10).min(life / 3))
        .min(after.saturating_sub(ctx.compliant_wait(a.interval, 0)));
    ctx.wait(
        "EX-01",
        before.saturating_sub(issued.elapsed()),
        "until shortly before expires_in",
    )
    .await;
    let mut pace = super::Pace::new(&a);
    let e = pace
        .poll(&ctx, "EX-01", "poll before expiry", &a.device_code, "")
        .await;
    expect_error(&mut c, &e, &["authorization_pending", "slow_down"]);
    // 3 s past expires_in, or later when a slow_down (+5 s) asks for more.
    let due = after
        .saturating_sub(issued.elapsed())
        .max(pace.due_in(&ctx));
    ctx.wait("EX-01", due, "until 3 s past expires_in, at the interval")
        .await;
    let past = issued.elapsed().saturating_sub(life).as_secs();
    let e = ctx
        .poll(&format!("poll {past} s after expiry"), &a.device_code)
        .await;
    expect_error(&mut c, &e, &["expired_token"]);
    c.finish("pending before expires_in, expired_token after")
}

async fn ex_02(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedMust);
    let Some(a) = decided(&ctx, &mut c, Action::Approve).await else {
        return c.finish("");
    };
    ctx.wait(
        "EX-02",
        past_lifetime(&a),
        "past expires_in, approved but not redeemed",
    )
    .await;
    let e = ctx.poll("first poll after expiry", &a.device_code).await;
    c.expect(
        !super::grants_access(&e),
        format!("an expired code yields no token (got {})", e.brief()),
    );
    expect_error(&mut c, &e, &["expired_token", "invalid_grant"]);
    c.finish("no token after expiry")
}

async fn ex_03(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedMust);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    ctx.wait("EX-03", past_lifetime(&a), "past expires_in")
        .await;
    // Checklist EX-03: only the server's refusal, on the record, shows the expired
    // code refused; an approver that breaks (unreachable, a 5xx, a page it does not
    // know) shows nothing either way, and the case is inconclusive, never a pass.
    match ctx.attempt(&a.prompt(), Action::Approve).await {
        Ok(()) => {
            c.expect(
                false,
                "an expired user code cannot be approved (got: the approval was taken)",
            );
        }
        Err(NotDecided::Refused(why)) => {
            c.expect(
                true,
                format!("an expired user code cannot be approved ({why})"),
            );
        }
        Err(NotDecided::Failed(why)) => c.inconclusive(format!(
            "the approver could not try the late approval, so whether the server refuses an expired code is unknown: {why}"
        )),
    }
    let e = ctx
        .poll("poll after the late approval", &a.device_code)
        .await;
    c.expect(
        !super::grants_access(&e),
        format!("a late approval issues no token (got {})", e.brief()),
    );
    c.evidence(e);
    c.finish("the expired code was refused and nothing was issued")
}

async fn ex_04(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::DerivedShould);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    ctx.wait("EX-04", past_lifetime(&a), "past expires_in")
        .await;
    let mut pace = super::Pace::new(&a);
    // The rule is about what follows `expired_token`: polled until the server says it
    // (at most three times), then twice more. A server that never says it is EX-01's
    // finding; here it leaves nothing to judge (it had been a warning, on polls that
    // all got pending: review helper-98 against django-oauth-toolkit).
    let mut expired = false;
    for i in 0..3 {
        let e = pace
            .poll(
                &ctx,
                "EX-04",
                &format!("poll {} after expiry", i + 1),
                &a.device_code,
                "polling again",
            )
            .await;
        expired = e.error_code().as_deref() == Some("expired_token");
        c.evidence(e);
        if expired {
            break;
        }
    }
    if !expired {
        return c.skip(
            Status::NotApplicable,
            "no poll after expiry was answered expired_token, so nothing follows it to judge (EX-01 judges the expiry)",
        );
    }
    for i in 0..2 {
        let e = pace
            .poll(
                &ctx,
                "EX-04",
                &format!("poll {} after expired_token", i + 1),
                &a.device_code,
                "polling again",
            )
            .await;
        let code = e.error_code().unwrap_or_default();
        c.expect(
            !super::grants_access(&e) && code != "authorization_pending" && code != "slow_down",
            format!(
                "poll {} after expired_token gets neither pending nor a token (got {})",
                i + 1,
                e.brief()
            ),
        );
        c.evidence(e);
    }
    c.finish("after expired_token the code stays expired")
}

async fn ex_05(ctx: Ctx) -> Verdict {
    let mut c = Check::new(Level::Info);
    let Some(a) = authorize(&ctx, &mut c).await else {
        return c.finish("");
    };
    let Some(n) = a.expires_in else {
        return c.finish("expires_in is missing or not above 0 (see DR-05)");
    };
    c.measure("expires_in", n);
    let note = if n < 120 {
        "shorter than 2 minutes: little time to type a code"
    } else if n > 1800 {
        "longer than 30 minutes: a long window for phishing"
    } else {
        "within 2 to 30 minutes"
    };
    c.finish(format!("expires_in = {n} s, {note}"))
}
