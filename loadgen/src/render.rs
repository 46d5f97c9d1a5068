//! The run's report folder: `index.html` (self-contained, inline SVG charts),
//! `summary.md`, and `run.json` (schema `deviceflow-loadgen/1`); and the terminal summary.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context;

use crate::results::{RunData, Spread};

fn ms(v: Option<f64>) -> String {
    v.map_or("–".to_owned(), |x| {
        if x >= 1000.0 {
            format!("{:.1} s", x / 1000.0)
        } else {
            format!("{x:.1} ms")
        }
    })
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".to_owned(), |x| format!("{:.0} %", x * 100.0))
}

fn spread(s: &Spread) -> String {
    if s.count == 0 {
        return "–".to_owned();
    }
    format!("p50 {} · p90 {} · max {}", ms(s.p50), ms(s.p90), ms(s.max))
}

/// The rows of the per-behaviour table.
pub fn behaviour_rows(r: &RunData) -> (Vec<String>, Vec<Vec<String>>) {
    let headers = [
        "behaviour",
        "devices",
        "token",
        "denied",
        "expired",
        "error",
        "unfinished",
        "time to token",
        "polls/device (mean)",
        "slow_downs",
        "devices slowed",
        "early polls slowed",
        "max interval",
        "expiry lateness",
        "violations",
    ]
    .map(str::to_owned)
    .to_vec();
    let rows = r
        .behaviours
        .iter()
        .map(|b| {
            vec![
                b.behaviour.as_str().to_owned(),
                b.devices.to_string(),
                b.outcomes["token"].to_string(),
                b.outcomes["denied"].to_string(),
                b.outcomes["expired"].to_string(),
                b.outcomes["error"].to_string(),
                b.outcomes["unfinished"].to_string(),
                spread(&b.time_to_token_ms),
                b.polls_per_device
                    .mean
                    .map_or("–".to_owned(), |m| format!("{m:.1}")),
                b.slow_downs.to_string(),
                b.devices_slowed_down.to_string(),
                format!(
                    "{} of {} ({})",
                    b.early_polls_slowed,
                    b.early_polls,
                    pct(b.early_slowed_share)
                ),
                format!("{} s", b.max_required_interval_s),
                spread(&b.expiry_lateness_ms),
                b.violations.to_string(),
            ]
        })
        .collect();
    (headers, rows)
}

/// The rows of the per-request table (goose's figures).
pub fn request_rows(r: &RunData) -> (Vec<String>, Vec<Vec<String>>) {
    let headers = [
        "request",
        "count",
        "ok",
        "failed",
        "per second",
        "mean",
        "p50",
        "p90",
        "p99",
        "max",
        "p99 (CO corrected)",
    ]
    .map(str::to_owned)
    .to_vec();
    let rows = r
        .requests
        .iter()
        .map(|q| {
            vec![
                q.name.clone(),
                q.count.to_string(),
                q.success.to_string(),
                q.fail.to_string(),
                format!("{:.1}", q.per_second),
                ms(Some(q.mean_ms)),
                ms(q.p50_ms),
                ms(q.p90_ms),
                ms(q.p99_ms),
                ms(Some(q.max_ms)),
                ms(q.co_p99_ms),
            ]
        })
        .collect();
    (headers, rows)
}

/// The findings, as sentences.
pub fn findings(r: &RunData) -> Vec<String> {
    let mut out = Vec::new();
    out.push(format!(
        "{} devices in {:.0} s: {} tokens, {} denied, {} expired, {} errors, {} unfinished.",
        r.devices,
        r.duration_s,
        r.outcomes["token"],
        r.outcomes["denied"],
        r.outcomes["expired"],
        r.outcomes["error"],
        r.outcomes["unfinished"]
    ));
    out.push(if r.compliant_slow_downs == 0 {
        "Compliant devices were never answered slow_down (checklist PL-02).".to_owned()
    } else {
        format!("Compliant devices were answered slow_down {} times: the server demands more than RFC 8628 §3.5 (checklist PL-02, PL-03).", r.compliant_slow_downs)
    });
    for b in &r.behaviours {
        if b.early_polls > 0 {
            out.push(format!(
                "{} devices sent {} early polls; {} of them ({}) were answered slow_down.",
                b.behaviour.as_str(),
                b.early_polls,
                b.early_polls_slowed,
                pct(b.early_slowed_share)
            ));
        }
    }
    if let Some(b) = r.behaviours.iter().find(|b| b.expiry_lateness_ms.count > 0) {
        out.push(format!(
            "First expired_token after issued + expires_in ({}): {}.",
            b.behaviour.as_str(),
            spread(&b.expiry_lateness_ms)
        ));
    }
    let people: usize = r.behaviours.iter().map(|b| b.decision_errors).sum();
    if people > 0 {
        out.push(format!(
            "{people} decisions could not be carried out by the approver; the first: {}.",
            r.decision_errors.first().map_or("", |v| v.what.as_str())
        ));
    }
    out.push(if r.violations_total == 0 {
        "No violations: no token after expiry or denial, no second token for a code, no pending after a denial.".to_owned()
    } else {
        format!("{} violations; the first: {}.", r.violations_total, r.violations.first().map_or("", |v| v.what.as_str()))
    });
    if let Some(rss) = r.loadgen_peak_rss_mb {
        out.push(format!("The load generator peaked at {rss:.0} MB RSS."));
    }
    out
}

pub fn terminal(r: &RunData) -> String {
    let mut out = String::new();
    for f in findings(r) {
        let _ = writeln!(out, "- {f}");
    }
    let (h, rows) = behaviour_rows(r);
    let _ = writeln!(out, "\n{}", h[..7].join(" | "));
    for row in rows {
        let _ = writeln!(out, "{}", row[..7].join(" | "));
    }
    out
}

pub fn markdown(r: &RunData) -> String {
    use deviceflow_reports::markdown::table;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Device fleet run: {}\n",
        r.setup.device_authorization_endpoint
    );
    let _ = writeln!(out, "- command: `{}`", r.setup.command);
    let _ = writeln!(out, "- commit: {}; CPU: {}", r.setup.commit, r.setup.cpu);
    let _ = writeln!(out, "- approver: {}\n", r.setup.approver);
    let _ = writeln!(out, "## Findings\n");
    for f in findings(r) {
        let _ = writeln!(out, "- {f}");
    }
    let (h, rows) = behaviour_rows(r);
    let _ = writeln!(out, "\n## By behaviour\n\n{}", table(&h, &rows));
    let (h, rows) = request_rows(r);
    let _ = writeln!(out, "\n## Requests (goose)\n\n{}", table(&h, &rows));
    if !r.violations.is_empty() {
        let _ = writeln!(out, "\n## Violations (first {})\n", r.violations.len());
        for v in &r.violations {
            let _ = writeln!(
                out,
                "- device {} ({}): {}",
                v.device,
                v.behaviour.as_str(),
                v.what
            );
        }
    }
    out
}

/// Writes `index.html`, `summary.md` and `run.json` into `dir`.
pub fn write(r: &RunData, dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = serde_json::to_string_pretty(r).context("encoding run.json")?;
    std::fs::write(dir.join("run.json"), json)
        .with_context(|| format!("writing {}", dir.display()))?;
    std::fs::write(dir.join("summary.md"), markdown(r))?;
    std::fs::write(dir.join("index.html"), crate::html::page(r))?;
    Ok(())
}
