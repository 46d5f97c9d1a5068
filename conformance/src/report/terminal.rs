//! The table a person reads in the terminal, grouped by checklist section.

use super::{by_group, Report};
use crate::case::Status;
use crate::cases::group_title;

fn paint(status: Status, color: bool) -> String {
    let label = format!("{:<4}", status.as_str().to_uppercase());
    if !color {
        return label;
    }
    let code = match status {
        Status::Pass => "32",
        Status::Fail => "1;31",
        Status::Warn => "33",
        Status::Info => "36",
        Status::Skip | Status::NotApplicable => "2",
    };
    format!("\x1b[{code}m{label}\x1b[0m")
}

/// Renders the report; `width` bounds each summary line.
pub fn terminal(r: &Report, color: bool, width: usize) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "deviceflow-conformance {} against {}\n",
        r.suite_version,
        r.target
            .issuer
            .as_deref()
            .unwrap_or(&r.target.device_authorization_endpoint)
    ));
    out.push_str(&format!(
        "client {} ({:?}), approver: {}\n",
        r.target.client_id, r.target.client_auth, r.approver
    ));
    for (group, cases) in by_group(&r.cases) {
        out.push_str(&format!("\n{group} {}\n", group_title(group)));
        for c in cases {
            let prefix = format!(
                "  {} {:<6} {:<12} ",
                paint(c.verdict.status, color),
                c.id,
                c.info.level.as_str()
            );
            let room = width.saturating_sub(5 + 7 + 13 + 2).max(30);
            let mut text = format!("{} — {}", c.info.title, c.verdict.summary);
            if text.chars().count() > room {
                text = text
                    .chars()
                    .take(room.saturating_sub(1))
                    .collect::<String>()
                    + "…";
            }
            out.push_str(&prefix);
            out.push_str(&text);
            out.push('\n');
        }
    }
    let t = &r.totals;
    out.push_str(&format!(
        "\n{} pass, {} fail, {} warn, {} info, {} skip, {} n/a in {:.1} s; {} MUST failure(s)\n",
        t.pass,
        t.fail,
        t.warn,
        t.info,
        t.skip,
        t.not_applicable,
        r.duration_ms as f64 / 1000.0,
        r.must_failures
    ));
    out
}
