//! JUnit XML for CI systems: one testsuite per checklist section. Fail is a
//! `<failure>`; skip and n/a are `<skipped>`; warn and info pass, with the finding in
//! `<system-out>`. A run that could not test the target (a root cause that is no
//! case's finding) or that a signal interrupted is a failed test of its own, in a
//! suite "The run": its cases alone would all be skipped, which reads as green.

use super::{by_group, Report};
use crate::case::Status;
use crate::cases::group_title;

use deviceflow_reports::escape::escape as esc;

/// The heading of the list of hosts the server named, in every report.
pub(crate) const HOSTS: &str =
    "Other hosts the server named, and the suite talked to or was kept from";

/// The suite of the tests that say the run itself was not whole.
const RUN: &str = "The run";

pub fn junit(r: &Report) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let mut run_failures = Vec::new();
    if let Some(cause) = r
        .root_cause
        .as_ref()
        .filter(|c| c.case.is_none() || c.warns)
    {
        // A root cause that is a failing finding fails its case; one that is not (or
        // only warns: MD-01's OPTIONAL member left out) would otherwise leave only
        // skipped cases and a warning, which reads as green.
        run_failures.push((
            "the target could not be tested",
            format!("{}; no case was run", cause.summary),
        ));
    }
    if let Some(line) = r.interrupted_line() {
        run_failures.push(("run interrupted: this report is partial", line));
    }
    out.push_str(&format!(
        "<testsuites name=\"deviceflow-conformance\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" time=\"{:.3}\">\n",
        r.cases.len() + run_failures.len(),
        r.totals.fail + run_failures.len(),
        r.totals.skip + r.totals.not_applicable,
        r.duration_ms as f64 / 1000.0
    ));
    // Once, before the cases: the hosts the server named, one property each, in a
    // suite of no test.
    let hosts = r.network.lines();
    if !hosts.is_empty() {
        out.push_str(&format!(
            "  <testsuite name=\"{HOSTS}\" tests=\"0\" failures=\"0\" skipped=\"0\">\n    <properties>\n"
        ));
        for line in &hosts {
            out.push_str(&format!(
                "      <property name=\"server-named-host\" value=\"{}\"/>\n",
                esc(line)
            ));
        }
        out.push_str("    </properties>\n  </testsuite>\n");
    }
    // What makes the run itself not a whole one, each a failed test of its own, which
    // every CI system shows (the cases are all skipped, or some): a target that could
    // not be tested, an interruption.
    if !run_failures.is_empty() {
        out.push_str(&format!(
            "  <testsuite name=\"{RUN}\" tests=\"{n}\" failures=\"{n}\" skipped=\"0\">\n",
            n = run_failures.len()
        ));
        for (name, why) in &run_failures {
            out.push_str(&format!(
                "    <testcase classname=\"deviceflow-conformance.run\" name=\"{name}\" time=\"0.000\">\n      <failure message=\"{}\"/>\n    </testcase>\n",
                esc(why)
            ));
        }
        out.push_str("  </testsuite>\n");
    }
    for (group, cases) in by_group(&r.cases) {
        let failures = cases
            .iter()
            .filter(|c| c.verdict.status == Status::Fail)
            .count();
        let skipped = cases
            .iter()
            .filter(|c| matches!(c.verdict.status, Status::Skip | Status::NotApplicable))
            .count();
        out.push_str(&format!(
            "  <testsuite name=\"{} {}\" tests=\"{}\" failures=\"{failures}\" skipped=\"{skipped}\">\n",
            group,
            esc(group_title(group)),
            cases.len()
        ));
        for c in cases {
            out.push_str(&format!(
                "    <testcase classname=\"deviceflow-conformance.{}\" name=\"{}\" time=\"{:.3}\">\n",
                group,
                esc(&c.name),
                c.duration_ms as f64 / 1000.0
            ));
            let detail = format!(
                "{} [{} {}] {}",
                c.info.title,
                c.info.rfc,
                c.info.level.as_str(),
                c.verdict.summary
            );
            match c.verdict.status {
                Status::Fail => {
                    let evidence: Vec<String> = c
                        .verdict
                        .evidence
                        .iter()
                        .map(|e| format!("{} {} -> {}", e.request.method, e.request.url, e.brief()))
                        .collect();
                    out.push_str(&format!(
                        "      <failure message=\"{}\">{}</failure>\n",
                        esc(&c.verdict.summary),
                        esc(&format!("{detail}\n{}", evidence.join("\n")))
                    ));
                }
                Status::Skip | Status::NotApplicable => {
                    out.push_str(&format!(
                        "      <skipped message=\"{}\"/>\n",
                        esc(&c.verdict.summary)
                    ));
                }
                Status::Warn | Status::Info => {
                    out.push_str(&format!(
                        "      <system-out>{}: {}</system-out>\n",
                        c.verdict.status.as_str().to_uppercase(),
                        esc(&detail)
                    ));
                }
                Status::Pass => {}
            }
            out.push_str("    </testcase>\n");
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escaping_covers_markup_and_control_characters() {
        assert_eq!(
            super::esc("<a href=\"x\">&'\u{1}\u{FFFE}\u{9b}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;\u{FFFD}\u{FFFD}\u{FFFD}"
        );
    }
}
