//! The run's report folder: `index.html` (self-contained, inline SVG charts),
//! `summary.md`, and `run.json`; the terminal summary; and the tables and findings the
//! three share.

use std::fmt::Write as _;

use deviceflow_reports::escape::{clip, Printable};
use deviceflow_reports::format::fmt_count;

use crate::device::flow::Kind;
use crate::device::flow::Outcome;
use crate::measure::scrape;
use crate::measure::stats::{ExpiryReasons, Hdr, RunStats, UNEXPECTED_CHARS};
use crate::report::results::{RunData, Setup};
use crate::transport::Cause;

pub fn ms(v: Option<f64>) -> String {
    v.map_or("–".to_owned(), |x| {
        if x >= 1000.0 {
            format!("{:.2} s", x / 1000.0)
        } else if x >= 10.0 {
            format!("{x:.0} ms")
        } else {
            format!("{x:.2} ms")
        }
    })
}

fn us(h: &Hdr, q: f64) -> String {
    ms(h.quantile(q).map(|u| u as f64 / 1000.0))
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        "–".to_owned()
    } else {
        format!("{:.0} %", part as f64 * 100.0 / whole as f64)
    }
}

type Table = (Vec<String>, Vec<Vec<String>>);

fn headers(h: &[&str]) -> Vec<String> {
    h.iter().map(|s| (*s).to_owned()).collect()
}

/// Outcomes per behaviour.
pub fn outcome_rows(r: &RunData) -> Table {
    let mut h = vec!["behaviour", "devices"];
    h.extend(Outcome::ALL.iter().map(|o| o.as_str()));
    h.push("violations");
    let rows = r
        .stats
        .behaviours
        .iter()
        .map(|(b, s)| {
            let mut row = vec![b.as_str().to_owned(), fmt_count(s.devices)];
            row.extend(Outcome::ALL.iter().map(|o| fmt_count(s.outcome(*o))));
            row.push(fmt_count(s.violations));
            row
        })
        .collect();
    (headers(&h), rows)
}

/// How the server paced each behaviour.
pub fn pacing_rows(r: &RunData) -> Table {
    let h = headers(&[
        "behaviour",
        "polls/device (mean)",
        "slow_downs",
        "devices slowed",
        "early polls slowed",
        // The largest interval the server asked of a device of this behaviour: as
        // its device authorization response gave it, or as its slow_downs raised it
        // (RFC 8628 §3.5, 5 s each); not how long a device waited.
        "largest interval required",
        // From the person's approval going through (not from the device's start).
        "time to token after approval p50 / p99",
        // When the device first heard expired_token, after expires_in: its own poll
        // spacing included, so not the server's lateness (that is EX-01's violation).
        "expired_token after expires_in p50 / max",
    ]);
    let rows = r
        .stats
        .behaviours
        .iter()
        .map(|(b, s)| {
            let t = |h: &Hdr, q: f64| ms(h.quantile(q).map(|v| v as f64));
            vec![
                b.as_str().to_owned(),
                s.polls_per_device_mean()
                    .map_or("–".into(), |m| format!("{m:.1}")),
                fmt_count(s.slow_downs),
                fmt_count(s.devices_slowed_down),
                format!(
                    "{} of {} ({})",
                    fmt_count(s.early_polls_slowed),
                    fmt_count(s.early_polls),
                    pct(s.early_polls_slowed, s.early_polls)
                ),
                format!("{} s", s.max_required_interval_s),
                format!(
                    "{} / {}",
                    t(&s.time_to_token_ms, 0.5),
                    t(&s.time_to_token_ms, 0.99)
                ),
                format!(
                    "{} / {}",
                    t(&s.expiry_lateness_ms, 0.5),
                    ms(s.expiry_lateness_ms.max().map(|v| v as f64))
                ),
            ]
        })
        .collect();
    (h, rows)
}

/// Counts per request: every send is counted once, answered or not.
pub fn request_count_rows(r: &RunData) -> Table {
    let h = headers(&[
        "request",
        "sent",
        "answered",
        "no answer",
        "unexpected",
        "resent",
        "answered/s",
    ]);
    let rows = r
        .stats
        .kinds
        .iter()
        .map(|(k, s)| {
            vec![
                k.as_str().to_owned(),
                fmt_count(s.sent),
                fmt_count(s.answered),
                fmt_count(s.transport_errors()),
                fmt_count(s.unexpected.values().sum()),
                fmt_count(s.retried_unsent),
                format!("{:.1}", s.answered as f64 / r.duration_s.max(1e-3)),
            ]
        })
        .collect();
    (h, rows)
}

/// Requests by host (`--host` may be given several times).
pub fn host_rows(r: &RunData) -> Table {
    let rows = r
        .stats
        .hosts
        .iter()
        .map(|(h, (sent, answered))| vec![h.clone(), fmt_count(*sent), fmt_count(*answered)])
        .collect();
    (headers(&["host", "sent", "answered"]), rows)
}

/// Latency per request, from the intended send time, and its two parts.
pub fn request_latency_rows(r: &RunData) -> Table {
    let h = headers(&[
        "request",
        "p50",
        "p90",
        "p99",
        "max",
        "generator lateness p99",
        "server p99",
        // Counted in the figures at the time they were given up on (a lower bound).
        "timed out (in the figures)",
    ]);
    let rows = r
        .stats
        .kinds
        .iter()
        .map(|(k, s)| {
            vec![
                k.as_str().to_owned(),
                us(&s.latency_us, 0.5),
                us(&s.latency_us, 0.9),
                us(&s.latency_us, 0.99),
                ms(s.latency_us.max().map(|u| u as f64 / 1000.0)),
                us(&s.lateness_us, 0.99),
                us(&s.server_us, 0.99),
                fmt_count(s.timeouts_in_latency),
            ]
        })
        .collect();
    (h, rows)
}

/// Transport errors by cause and request, with the first message of each cause.
pub fn transport_rows(r: &RunData) -> Table {
    let mut h = vec!["cause"];
    h.extend(r.stats.kinds.keys().map(|k| k.as_str()));
    h.push("first seen");
    let rows = Cause::ALL
        .iter()
        .filter(|c| r.stats.kinds.values().any(|k| k.transport[c.index()] > 0))
        .map(|c| {
            let mut row = vec![c.as_str().to_owned()];
            row.extend(
                r.stats
                    .kinds
                    .values()
                    .map(|k| fmt_count(k.transport[c.index()])),
            );
            row.push(
                r.stats
                    .transport_examples
                    .get(c)
                    .cloned()
                    .unwrap_or_default(),
            );
            row
        })
        .collect();
    (headers(&h), rows)
}

/// The most rows of unexpected answers a report shows, the commonest first: a server
/// can make every answer different (an error code with a counter in it), and the rest
/// are counted in one last row.
pub const UNEXPECTED_ROWS: usize = 20;

/// Unexpected answers (errors a request does not expect) by request and error, the
/// commonest first: at most [`UNEXPECTED_ROWS`], each answer cut to [`UNEXPECTED_CHARS`].
pub fn unexpected_rows(r: &RunData) -> Table {
    let mut all: Vec<(u64, Kind, &str)> = r
        .stats
        .kinds
        .iter()
        .flat_map(|(k, s)| s.unexpected.iter().map(move |(e, n)| (*n, *k, e.as_str())))
        .collect();
    all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(b.2)));
    let mut rows: Vec<Vec<String>> = all
        .iter()
        .take(UNEXPECTED_ROWS)
        .map(|(n, k, e)| {
            vec![
                k.as_str().to_owned(),
                clip(e, UNEXPECTED_CHARS),
                fmt_count(*n),
            ]
        })
        .collect();
    if all.len() > UNEXPECTED_ROWS {
        let rest = &all[UNEXPECTED_ROWS..];
        rows.push(vec![
            "(others)".to_owned(),
            format!("{} other answers", fmt_count(rest.len() as u64)),
            fmt_count(rest.iter().map(|(n, _, _)| n).sum()),
        ]);
    }
    (headers(&["request", "answer", "count"]), rows)
}

/// The server's /metrics beside the generator's counts. The series names are plain
/// text: Markdown tables escape every cell (backticks included, which showed as
/// literal characters in summary.md).
pub fn reconciliation_rows(r: &RunData) -> Option<Table> {
    let w = r.metrics.as_ref()?;
    let rows = scrape::reconcile(w, &r.stats);
    if rows.is_empty() {
        // Nothing reconciled: the findings say why (NO_COUNTERS).
        return None;
    }
    let rows: Vec<Vec<String>> = rows
        .into_iter()
        .map(|row| {
            vec![
                row.what.clone(),
                row.series.clone(),
                fmt_count(row.server),
                fmt_count(row.generator),
                if row.matches() {
                    "✓".into()
                } else {
                    format!("✗ ({:+})", row.generator as i64 - row.server as i64)
                },
            ]
        })
        .collect();
    Some((
        headers(&["count", "server series", "server Δ", "generator", "match"]),
        rows,
    ))
}

/// Violations by rule, with one example exchange each.
pub fn violation_rows(r: &RunData) -> Table {
    let rows = r
        .stats
        .violations
        .iter()
        .map(|(rule, v)| {
            let ex = v.example.as_ref().map_or(String::new(), |e| {
                format!(
                    "device {} ({}), {:.1} s into the run: {} → HTTP {} {} ({})",
                    e.device,
                    e.behaviour.as_str(),
                    e.at_ms as f64 / 1000.0,
                    e.request,
                    e.status,
                    e.body,
                    e.why
                )
            });
            vec![rule.describe().to_owned(), fmt_count(v.count), ex]
        })
        .collect();
    (headers(&["rule", "devices", "example exchange"]), rows)
}

/// The findings, as sentences: the trust verdict first.
pub fn findings(r: &RunData) -> Vec<String> {
    let s = &r.stats;
    let mut out = Vec::new();
    if let Some(reason) = r.untrusted_reason() {
        out.push(format!("NOT TRUSTED: {reason}."));
    }
    if let Some((t, why)) = r.stopped_early() {
        out.push(format!(
            "STOPPED EARLY at {t:.1} s by the generator: {why}, so the rest of the run could measure nothing of the server; the figures cover the run until then (requests already out were waited for; devices still in their flow are unfinished)."
        ));
    } else if let Some((t, by)) = r.stopped_by_signal() {
        out.push(format!(
            "STOPPED EARLY by {by} at {t:.0} s: the figures cover the run until then (requests already out were waited for; devices still in their flow are unfinished)."
        ));
    }
    if r.setup.debug_build {
        out.push("The generator was a debug build (cargo run without --release): its own work is several times a release build's and weighs on every latency and pace it measured; run it built with --release for figures about the server.".to_owned());
    }
    out.push(format!(
        "{} devices in {:.0} s: {} tokens, {} denied, {} expired, {} errors, {} unreached, {} unfinished.",
        fmt_count(s.devices()),
        r.duration_s,
        fmt_count(s.outcome(Outcome::Token)),
        fmt_count(s.outcome(Outcome::Denied)),
        fmt_count(s.outcome(Outcome::Expired)),
        fmt_count(s.outcome(Outcome::Error)),
        fmt_count(s.outcome(Outcome::Unreached)),
        fmt_count(s.outcome(Outcome::Unfinished)),
    ));
    let (sent, failed) = r.transport();
    let reached = s.reached_unanswered();
    let stalled = s.stalled_unanswered();
    let unreached = failed.saturating_sub(reached + stalled);
    let generators = if stalled == 0 {
        String::new()
    } else {
        format!(
            ", {} timed out while the generator was stalled (its failures)",
            fmt_count(stalled)
        )
    };
    out.push(format!(
        "{} requests sent, {} answered, {} got no answer{} (never counted as polls or violations).",
        fmt_count(sent),
        fmt_count(sent - failed),
        fmt_count(failed),
        if failed == 0 {
            String::new()
        } else if reached == 0 && stalled == 0 {
            ": none reached the server (the generator's or the network's failures)".to_owned()
        } else {
            format!(
                ": {} never reached the server{generators}, {} it had and did not answer (its failures)",
                fmt_count(unreached),
                fmt_count(reached)
            )
        }
    ));
    let timeouts = s.timeouts_in_latency();
    if timeouts > 0 {
        out.push(format!(
            "{} requests the server had and did not answer within --request-timeout are in the latency percentiles and max at the time they were given up on (a lower bound on their latency), not left out of them; the other requests without an answer have no latency (the error rate counts them).",
            fmt_count(timeouts)
        ));
    }
    out.extend(pacing(s));
    let decision_errors: u64 = s.behaviours.values().map(|b| b.decision_errors).sum();
    if decision_errors > 0 {
        out.push(format!(
            "{} decisions could not be carried out by the approver; the first: {}.",
            fmt_count(decision_errors),
            s.decision_errors.first().map_or("", String::as_str)
        ));
    }
    let v = s.violations_total();
    out.push(if v == 0 && rfc_8628_poll_answers(s) == 0 {
        // Nothing to violate a rule with: no device got a code to poll, or no poll got
        // an answer of RFC 8628 §3.5 (a wrong --token-endpoint answers something else
        // to every poll).
        "No violation could be seen: no poll was answered as RFC 8628 §3.5 answers one (pending, slow_down, a token, access_denied, expired_token).".to_owned()
    } else if v == 0 {
        "No violations: no token nobody approved, none after expiry or denial, no second token for a code, no pending after expiry, a denial or a redemption, no expiry before expires_in.".to_owned()
    } else {
        format!(
            "{} violations of RFC 8628 by the server, in {} rules (below, each with an example exchange).",
            fmt_count(v),
            s.violations.len()
        )
    });
    out.extend(unexpected(s));
    out.extend(generator_and_reconciliation(r));
    out
}

/// Answers no request expects (an HTTP 500, an error code outside RFC 8628 §3.5, a
/// 200 that is not a device authorization): each ended its device's flow, and they
/// are the server's (checklist CL-03), so the findings say so, the commonest first.
fn unexpected(s: &RunStats) -> Option<String> {
    let mut all: Vec<(u64, Kind, &str)> = s
        .kinds
        .iter()
        .flat_map(|(k, x)| x.unexpected.iter().map(move |(e, n)| (*n, *k, e.as_str())))
        .collect();
    let total: u64 = all.iter().map(|(n, _, _)| n).sum();
    if total == 0 {
        return None;
    }
    all.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let shown: Vec<String> = all
        .iter()
        .take(3)
        .map(|(n, k, e)| {
            format!(
                "{} {} to {}",
                fmt_count(*n),
                clip(e, UNEXPECTED_CHARS),
                k.as_str()
            )
        })
        .collect();
    let more = if all.len() > 3 { ", …" } else { "" };
    Some(format!(
        "The server gave {} answers that no request of a device expects, each ending its device's flow: {}{more} (table \"Unexpected answers\").",
        fmt_count(total),
        shown.join(", ")
    ))
}

/// Polls answered as RFC 8628 §3.5 answers one: anything but an error outside it.
fn rfc_8628_poll_answers(s: &RunStats) -> u64 {
    let error = crate::device::flow::Answer::Error.index();
    s.timeline
        .seconds
        .iter()
        .flat_map(|second| second.answers.iter().enumerate())
        .filter(|(i, _)| *i != error)
        .map(|(_, n)| n)
        .sum()
}

/// RFC 8628 §3.5 pacing: whether compliant devices were slowed down (checklist PL-02),
/// and how the server answered each behaviour's early polls.
fn pacing(s: &RunStats) -> Vec<String> {
    let mut out = Vec::new();
    let compliant = || s.behaviours.iter().filter(|(b, _)| b.is_compliant());
    let polled: u64 = compliant().map(|(_, b)| b.polls).sum();
    let slowed: u64 = compliant().map(|(_, b)| b.slow_downs).sum();
    // Devices that never polled (no code, say) were told nothing about their pace,
    // nor were devices whose polls got no RFC 8628 answer (a wrong endpoint).
    if polled > 0 && slowed == 0 && rfc_8628_poll_answers(s) > 0 {
        out.push("Devices keeping RFC 8628's pace (compliant and abandoned) were never answered slow_down (checklist PL-02).".to_owned());
    } else if slowed > 0 {
        // Both behaviours that keep the pace, named: the Pacing table has a row each,
        // and "compliant" alone read as that table's compliant row.
        out.push(format!("Devices keeping RFC 8628's pace (compliant and abandoned) were answered slow_down {} times: the server demands more than RFC 8628 §3.5 (checklist PL-02, PL-03).", fmt_count(slowed)));
    }
    out.extend(clamped_intervals(s));
    out.extend(expired_at_issue(s));
    out.extend(why_codes_expired(s));
    out.extend(slow_to_decide(s));
    for (b, x) in &s.behaviours {
        if x.early_polls > 0 {
            out.push(format!(
                "{} devices sent {} early polls; {} of them ({}) were answered slow_down.",
                b.as_str(),
                fmt_count(x.early_polls),
                fmt_count(x.early_polls_slowed),
                pct(x.early_polls_slowed, x.early_polls)
            ));
        }
    }
    out
}

/// How the generator was built, for the report's header.
pub fn build(setup: &Setup) -> &'static str {
    if setup.debug_build {
        "debug build (not --release)"
    } else {
        "release build"
    }
}

/// Why codes expired: by the fleet's plan (nobody was to decide, or the person only
/// once the code had expired), by the device's pace, or with an approval the server
/// did not act on, or a decision that did not go through; each part said only when
/// some code expired so.
fn why_codes_expired(s: &RunStats) -> Option<String> {
    let expired = s.outcome(Outcome::Expired);
    if expired == 0 {
        return None;
    }
    let mut by = ExpiryReasons::default();
    for b in s.behaviours.values() {
        by.add(&b.expired_because);
    }
    let parts: Vec<String> = [
        (by.nobody_decides, "nobody to decide (abandoned devices, --never-percent)"),
        (by.decides_too_late, "a person due to decide only at or after the expires_in the server gave (--decide-after reaching past it)"),
        (by.polled_too_late, "decided in time, but the device's next poll, at its interval or later where the generator held it back (lateness, a wait for a connection or a file descriptor), came after expiry"),
        (by.pending_after_decision, "still told authorization_pending (or slow_down) more than 2 s after the decision went through: the server did not act on it"),
        (by.decision_not_through, "a decision due in time that did not go through before expiry (see the approver's errors)"),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, why)| format!("{why}: {}", fmt_count(n)))
    .collect();
    Some(format!(
        "Why the {} expired codes expired: {}.",
        fmt_count(expired),
        parts.join("; ")
    ))
}

/// A server that still answers authorization_pending after the person's decision went
/// through (a store read from a lagging replica, say): RFC 8628 bounds no delay, so it
/// is no violation, but every device it happens to waits at least one more interval.
fn slow_to_decide(s: &RunStats) -> Option<String> {
    let devices: u64 = s
        .behaviours
        .values()
        .map(|b| b.pending_after_decision)
        .sum();
    (devices > 0).then(|| {
        format!(
            "{} devices were still told authorization_pending (or slow_down) more than 2 s after their person's decision went through: the server acts on decisions late (RFC 8628 sets no bound; time to token after approval shows how late; a slow_down among those answers is checklist PL-06's finding: slow_down is for a code still pending).",
            fmt_count(devices)
        )
    })
}

/// RFC 8628 §3.2: `interval` is the seconds a device waits between polls. An
/// interval of 0 (poll without pause) or one past an hour (10^9 s) is no interval a
/// device can keep literally: it polls at 5 s, or at an hour
/// (`device::kept_interval`). The report shows the server's value; this says that
/// the devices kept another.
fn clamped_intervals(s: &RunStats) -> Option<String> {
    use crate::device::MAX_INTERVAL_SECS;
    let given = || s.behaviours.values().flat_map(|b| b.interval.iter());
    let zero: u64 = given().filter(|(i, _)| **i == 0).map(|(_, n)| n).sum();
    let long: u64 = given()
        .filter(|(i, _)| **i > MAX_INTERVAL_SECS)
        .map(|(_, n)| n)
        .sum();
    let longest = given().map(|(i, _)| *i).max().unwrap_or(0);
    let mut what = Vec::new();
    if zero > 0 {
        what.push(format!(
            "{} devices an interval of 0 s, which they kept as 5 s",
            fmt_count(zero)
        ));
    }
    if long > 0 {
        what.push(format!(
            "{} devices an interval above {MAX_INTERVAL_SECS} s (up to {} s), which they kept as {MAX_INTERVAL_SECS} s",
            fmt_count(long),
            fmt_count(longest)
        ));
    }
    (!what.is_empty()).then(|| {
        format!(
            "The server gave {}: no device can keep such an interval literally (RFC 8628 §3.2: the seconds to wait between polls{}). The intervals reported are the server's; the devices polled at the ones they kept.",
            what.join(", and "),
            if zero > 0 { "; checklist DR-06: a positive integer" } else { "" }
        )
    })
}

/// RFC 8628 §3.2: `expires_in` is the codes' lifetime in seconds; 0 gives codes
/// expired when issued. The devices hold the server to that (`Device::expiry_ms`):
/// pending or a token more than 2 s later is a violation.
fn expired_at_issue(s: &RunStats) -> Option<String> {
    let n: u64 = s
        .behaviours
        .values()
        .filter_map(|b| b.expires_in.get(&0))
        .sum();
    (n > 0).then(|| {
        format!(
            "The server gave {} devices expires_in 0: codes expired when issued (RFC 8628 §3.2: their lifetime in seconds), so the devices held it to that (pending or a token more than 2 s later is a violation, EX-01/EX-02).",
            fmt_count(n)
        )
    })
}

/// What the findings say of a `/metrics` that answered with none of the counters
/// [`scrape::reconcile`] knows: nothing to set beside the generator's counts.
pub const NO_COUNTERS: &str = "No reconciliation with the server's /metrics: it has none of deviceflow-server's counters (deviceflow_device_authorizations_total, deviceflow_token_polls_total, …), so there is nothing to set beside the generator's counts.";

/// Whether the generator kept up, whether its counts match the server's /metrics, and
/// what it cost in memory and CPU.
fn generator_and_reconciliation(r: &RunData) -> Vec<String> {
    let s = &r.stats;
    let mut out = Vec::new();
    out.push(r.generator_verdict());
    let rows = r.metrics.as_ref().map(|w| scrape::reconcile(w, s));
    if rows.as_ref().is_some_and(Vec::is_empty) {
        out.push(NO_COUNTERS.to_owned());
    } else if let Some(rows) = rows {
        let off = rows.iter().filter(|x| !x.matches()).count();
        out.push(if off == 0 {
            format!("All {} counts match the server's /metrics.", rows.len())
        } else {
            format!(
                "{off} of {} counts differ from the server's /metrics (table below).",
                rows.len()
            )
        });
    } else if !r.no_reconciliation.is_empty() {
        out.push(format!(
            "No reconciliation with the server's /metrics: {}.",
            r.no_reconciliation.join("; ")
        ));
    }
    let rss: f64 = r.shards.iter().filter_map(|s| s.peak_rss_mb).sum();
    if rss > 0.0 {
        out.push(format!(
            "The generator peaked at {rss:.0} MB RSS ({} bytes per device above its RSS at start) and used {} of CPU per request.",
            r.bytes_per_device().map_or("–".into(), |b| format!("{b:.0}")),
            r.cpu_us_per_request().map_or("–".into(), |u| format!("{u:.1} µs"))
        ));
    }
    out
}

/// The findings and two tables for the terminal. What the server said (an error code,
/// a body) is in the findings, so every line goes through [`Printable`]: shown, never
/// obeyed by the terminal.
pub fn terminal(r: &RunData) -> String {
    let mut out = String::new();
    for f in findings(r) {
        let _ = writeln!(out, "- {}", Printable(&f));
    }
    for (h, rows) in [outcome_rows(r), request_latency_rows(r)] {
        let _ = writeln!(out, "\n{}", Printable(&h.join(" | ")));
        for row in rows {
            let _ = writeln!(out, "{}", Printable(&row.join(" | ")));
        }
    }
    out
}

pub fn markdown(r: &RunData) -> String {
    use deviceflow_reports::markdown::{escape, table};
    let mut out = String::new();
    // The endpoint may come from the server's metadata, and the findings quote its
    // answers: escaped, so that they stay text on their own line.
    let _ = writeln!(
        out,
        "# Device fleet run: {}\n",
        escape(&r.setup.device_authorization_endpoint)
    );
    let _ = writeln!(out, "- command: `{}`", r.setup.command);
    let _ = writeln!(
        out,
        "- commit: {}; CPU: {}; generator: {}",
        r.setup.commit,
        r.setup.cpu,
        build(&r.setup)
    );
    if r.setup.hosts.len() > 1 {
        let hosts: Vec<String> = r.setup.hosts.iter().map(|h| escape(h)).collect();
        let _ = writeln!(out, "- hosts: {}", hosts.join(", "));
    }
    let _ = writeln!(out, "- approver: {}", escape(&r.setup.approver));
    if let Some(var) = &r.setup.client_secret_from {
        let _ = writeln!(
            out,
            "- client: {} (confidential, its secret from {var})",
            escape(&r.setup.client_id)
        );
    }
    for s in &r.shards {
        let _ = writeln!(out, "- shard {}: {}", s.shard, s.fd_limit);
    }
    let _ = writeln!(out, "\n## Findings\n");
    for f in findings(r) {
        let _ = writeln!(out, "- {}", escape(&f));
    }
    let mut section = |title: &str, (h, rows): Table| {
        if !rows.is_empty() {
            let _ = writeln!(out, "\n## {title}\n\n{}", table(&h, &rows));
        }
    };
    section("Outcomes by behaviour", outcome_rows(r));
    section("Pacing by behaviour", pacing_rows(r));
    section("Requests", request_count_rows(r));
    if r.stats.hosts.len() > 1 {
        section("Requests by host", host_rows(r));
    }
    section(
        "Latency from the intended send time",
        request_latency_rows(r),
    );
    section("Transport errors by cause", transport_rows(r));
    section("Unexpected answers", unexpected_rows(r));
    if let Some(t) = reconciliation_rows(r) {
        section("Reconciliation with the server's /metrics", t);
    }
    section("Violations by rule", violation_rows(r));
    out
}

/// Request kinds present, in order.
pub fn kinds(r: &RunData) -> Vec<Kind> {
    r.stats.kinds.keys().copied().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::behaviour::Behaviour;

    #[test]
    fn expired_codes_are_told_apart_by_why() {
        let mut s = RunStats::default();
        let b = s.behaviour(Behaviour::Compliant);
        b.outcomes[Outcome::Expired.index()] = 10;
        b.expired_because = ExpiryReasons {
            nobody_decides: 4,
            decides_too_late: 3,
            pending_after_decision: 1,
            polled_too_late: 2,
            decision_not_through: 0,
        };
        let p = pacing(&s).join("\n");
        assert!(
            p.contains("Why the 10 expired codes expired: nobody to decide")
                && p.contains("--never-percent): 4; a person due to decide only at or after")
                && p.contains("decided in time, but the device's next poll, at its interval or later where the generator held it back (lateness, a wait for a connection or a file descriptor), came after expiry: 2")
                && p.contains("the server did not act on it: 1.")
                && !p.contains("did not go through"),
            "{p}"
        );
        assert!(
            pacing(&RunStats::default())
                .iter()
                .all(|f| !f.contains("expired codes") && !f.contains("acts on decisions late")),
            "no expired code, no finding"
        );
        s.behaviour(Behaviour::Eager).pending_after_decision = 3;
        let p = pacing(&s).join("\n");
        assert!(
            p.contains("3 devices were still told authorization_pending (or slow_down) more than 2 s after their person's decision went through"),
            "{p}"
        );
    }

    #[test]
    fn codes_given_expires_in_0_are_a_finding() {
        let mut s = RunStats::default();
        *s.behaviour(Behaviour::Compliant)
            .expires_in
            .entry(0)
            .or_default() += 3;
        let p = pacing(&s).join("\n");
        assert!(
            p.contains("The server gave 3 devices expires_in 0: codes expired when issued"),
            "{p}"
        );
    }

    #[test]
    fn intervals_no_device_can_keep_are_a_finding() {
        let mut s = RunStats::default();
        let b = s.behaviour(Behaviour::Compliant);
        *b.interval.entry(0).or_default() += 2;
        *b.interval.entry(1_000_000_000).or_default() += 1;
        *b.interval.entry(5).or_default() += 7;
        let p = pacing(&s).join("\n");
        assert!(
            p.contains("The server gave 2 devices an interval of 0 s, which they kept as 5 s, and 1 devices an interval above 3600 s (up to 1,000,000,000 s), which they kept as 3600 s"),
            "{p}"
        );
    }
}
