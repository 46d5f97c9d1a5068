//! Markdown for people: a summary table per section, then every finding that is not a
//! pass, with what was sent and what came back.

use super::{by_group, Report};
use crate::case::Status;
use crate::cases::group_title;
use crate::http::Exchange;
use deviceflow_reports::escape::clip;
use deviceflow_reports::markdown::{code_block_in, code_span, escape as cell};

/// The most characters of a response body an exchange shows (the JSON report keeps
/// the evidence's 2048).
const BODY_CHARS: usize = 400;

pub fn markdown(r: &Report) -> String {
    let mut out = String::new();
    write_header(&mut out, r);
    write_case_tables(&mut out, r);
    write_evidence(&mut out, r);
    out
}

/// The title, the run's setup, the root cause if there is one, and the totals.
fn write_header(out: &mut String, r: &Report) {
    let target = r
        .target
        .issuer
        .as_deref()
        .unwrap_or(&r.target.device_authorization_endpoint);
    out.push_str(&format!("# RFC 8628 conformance: {}\n\n", cell(target)));
    out.push_str(&format!(
        "deviceflow-conformance {}; client {} ({}); approver: {}; preflight: interval {} s, expires_in {}.\n\n",
        r.suite_version,
        code_span(&r.target.client_id),
        r.client_auth_words(),
        cell(&r.approver),
        r.preflight.interval_secs,
        r.preflight.expires_in.map_or("unknown".to_owned(), |n| format!("{n} s"))
    ));
    let hosts = r.network.lines();
    if !hosts.is_empty() {
        out.push_str(&format!("{}:\n\n", super::junit::HOSTS));
        for line in hosts {
            out.push_str(&format!("- {}\n", cell(&line)));
        }
        out.push('\n');
    }
    if let Some(cause) = &r.root_cause {
        let who = cause.case.map_or(String::new(), |id| format!(" ({id})"));
        out.push_str(&format!(
            "**Root cause{who}: {}**; no other case was run.\n\n",
            cell(&cause.summary)
        ));
    }
    if let Some(line) = r.interrupted_line() {
        out.push_str(&format!("**{}.**\n\n", cell(&line)));
    }
    let t = &r.totals;
    out.push_str(&format!(
        "**{} pass, {} fail, {} warn, {} info, {} skip, {} n/a; {}.**\n",
        t.pass,
        t.fail,
        t.warn,
        t.info,
        t.skip,
        t.not_applicable,
        r.must_line()
    ));
}

/// A table of cases for each checklist group: id, level, result, rule and finding.
fn write_case_tables(out: &mut String, r: &Report) {
    for (group, cases) in by_group(&r.cases) {
        out.push_str(&format!(
            "\n## {group} {}\n\n| id | level | result | rule | finding |\n|---|---|---|---|---|\n",
            group_title(group)
        ));
        for c in cases {
            out.push_str(&format!(
                "| {} | {} | {} | {} ({}) | {} |\n",
                c.id,
                c.info.level.as_str(),
                c.verdict.status.as_str(),
                cell(c.info.title),
                c.info.rfc,
                cell(&c.verdict.summary)
            ));
        }
    }
}

/// For each failure and warning, its rule and the exchanges that showed it.
fn write_evidence(out: &mut String, r: &Report) {
    let findings: Vec<_> = r
        .cases
        .iter()
        .filter(|c| matches!(c.verdict.status, Status::Fail | Status::Warn))
        .collect();
    if !findings.is_empty() {
        out.push_str("\n## Evidence for each failure and warning\n");
        for c in findings {
            out.push_str(&format!(
                "\n### {} {} — {}\n\n{} ({}, {}): {}\n",
                c.verdict.status.as_str().to_uppercase(),
                c.id,
                cell(c.info.title),
                c.info.rfc,
                c.info.level.as_str(),
                cell(c.info.slug),
                cell(&c.verdict.summary)
            ));
            // The summary is the first expectation that did not hold; a reader of
            // this section must see each of them (a second variant refused, the
            // after-approval half of a case), not only the first.
            let not_held: Vec<_> = c.verdict.checks.iter().filter(|k| !k.ok).collect();
            if not_held.len() > 1 {
                out.push_str("\nEvery expectation that did not hold:\n\n");
                for k in not_held {
                    out.push_str(&format!("- {}\n", cell(&k.what)));
                }
            }
            for e in &c.verdict.evidence {
                write_exchange(out, e);
            }
            out.push('\n');
        }
    }
}

/// One exchange as a list item: the request, then the response's status, headers and
/// (the start of its) body, or why there was none. Everything the server said is
/// quoted as text: the body in a fence it cannot close, the rest escaped.
fn write_exchange(out: &mut String, e: &Exchange) {
    out.push_str(&format!(
        "\n- {}: {}",
        cell(&e.label),
        code_span(&format!("{} {}", e.request.method, e.request.url))
    ));
    if let Some(b) = &e.request.body {
        out.push_str(&format!(" body {}", code_span(b)));
    }
    match &e.response {
        Some(resp) => {
            let headers: Vec<String> = resp
                .headers
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            let body: String = resp.body.chars().take(BODY_CHARS).collect();
            out.push_str(&format!(
                "\n  → HTTP {} ({})\n{}",
                resp.status,
                cell(&clip(&headers.join("; "), BODY_CHARS)),
                code_block_in("  ", "", &body).trim_end_matches('\n')
            ));
        }
        None => out.push_str(&format!(
            "\n  → {}",
            cell(e.error.as_deref().unwrap_or("no response"))
        )),
    }
}
