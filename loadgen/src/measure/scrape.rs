//! The server's own count: its Prometheus `/metrics`, scraped before and after the
//! run, set beside the generator's counts (the reconciliation table). Servers without
//! `/metrics` (or with other names) get no table, and the report says so.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::device::flow::Answer;
use crate::device::flow::Kind;
use crate::measure::stats::RunStats;
use crate::transport::{self, Target};

/// Every sample of one scrape, by series (`name{labels}`), summed over the targets.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scrape(pub BTreeMap<String, f64>);

/// Parses the Prometheus text format: `name{labels} value` lines, comments skipped.
pub fn parse(text: &str) -> Scrape {
    let mut out = BTreeMap::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let Some((series, value)) = line.rsplit_once(' ') else {
            continue;
        };
        // Counters only: a NaN or an infinity (which Prometheus' format allows) counts
        // nothing, and the series is left out as one the server did not report. Kept,
        // it was a 0 in the reconciliation and a `null` in run.json that `merge` could
        // not read back.
        if let Some(v) = value.parse::<f64>().ok().filter(|v| v.is_finite()) {
            *out.entry(series.trim().to_owned()).or_default() += v;
        }
    }
    Scrape(out)
}

/// The series [`reconcile`] reads: the only ones a scrape keeps. The rest of a page is
/// the server's to choose (names, labels, thousands of series, even of these families
/// with labels of its own) and would be copied into run.json twice for nothing (9,000
/// series made a 2 MB run.json). A test holds this list to what `reconcile` reads.
const RECONCILED: [&str; 10] = [
    "deviceflow_http_request_duration_seconds_count{endpoint=\"device_authorization\"}",
    "deviceflow_device_authorizations_total",
    "deviceflow_http_request_duration_seconds_count{endpoint=\"token\"}",
    "deviceflow_token_polls_total{outcome=\"authorization_pending\"}",
    "deviceflow_token_polls_total{outcome=\"slow_down\"}",
    "deviceflow_token_polls_total{outcome=\"access_denied\"}",
    "deviceflow_token_polls_total{outcome=\"expired_token\"}",
    "deviceflow_token_polls_total{outcome=\"token\"}",
    "deviceflow_decisions_total{decision=\"approve\"}",
    "deviceflow_decisions_total{decision=\"deny\"}",
];

/// Whether `series` (`name{labels}`) is one [`reconcile`] reads.
fn reconciled(series: &str) -> bool {
    RECONCILED.contains(&series)
}

/// Scrapes `/metrics` of every target, summed, keeping the `RECONCILED` families,
/// each answer within `timeout` (`--request-timeout`); the error says which target
/// could not be scraped and why (no answer, or an answer other than 200), in words.
pub async fn scrape(targets: &[Target], timeout: Duration) -> Result<Scrape, String> {
    let mut all = Scrape::default();
    let mut seen = Vec::new();
    for t in targets {
        // Two --host spellings of one server are scraped once.
        if seen.contains(&t.addr) {
            continue;
        }
        seen.push(t.addr);
        let url = format!("{}://{}/metrics", t.scheme(), t.host);
        let a = transport::get(t, "/metrics", timeout)
            .await
            .map_err(|e| format!("{url} got no answer ({}: {})", e.cause.as_str(), e.message))?;
        if a.status != 200 {
            return Err(format!("{url} answered {}", a.status));
        }
        for (k, v) in parse(&String::from_utf8_lossy(&a.body)).0 {
            if reconciled(&k) {
                *all.0.entry(k).or_default() += v;
            }
        }
    }
    Ok(all)
}

/// Before and after a run (for merged shards: the earliest before and the latest
/// after of each series).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Window {
    pub before: Scrape,
    pub after: Scrape,
}

impl Window {
    pub fn merge(&mut self, o: &Window) {
        for (k, v) in &o.before.0 {
            let e = self.before.0.entry(k.clone()).or_insert(*v);
            *e = e.min(*v);
        }
        for (k, v) in &o.after.0 {
            let e = self.after.0.entry(k.clone()).or_insert(*v);
            *e = e.max(*v);
        }
    }

    fn delta(&self, series: &str) -> Option<u64> {
        let a = self.after.0.get(series)?;
        let b = self.before.0.get(series).copied().unwrap_or(0.0);
        Some((a - b).max(0.0) as u64)
    }
}

/// One row of the reconciliation table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    pub what: String,
    pub series: String,
    pub server: u64,
    pub generator: u64,
}

impl Row {
    pub fn matches(&self) -> bool {
        self.server == self.generator
    }
}

/// The generator's counts beside the server's, for deviceflow-server's metric names.
pub fn reconcile(w: &Window, s: &RunStats) -> Vec<Row> {
    let answered = |k: Kind| s.kinds.get(&k).map_or(0, |k| k.answered);
    let status = |k: Kind, code: u16| {
        s.kinds
            .get(&k)
            .and_then(|k| k.status.get(&code).copied())
            .unwrap_or(0)
    };
    let polls = |a: Answer| -> u64 {
        s.timeline
            .seconds
            .iter()
            .map(|x| x.answers[a.index()])
            .sum()
    };
    let mut rows = Vec::new();
    let mut row = |what: &str, series: &str, generator: u64| {
        if let Some(server) = w.delta(series) {
            rows.push(Row {
                what: what.to_owned(),
                series: series.to_owned(),
                server,
                generator,
            });
        }
    };
    row(
        "device authorization requests answered",
        "deviceflow_http_request_duration_seconds_count{endpoint=\"device_authorization\"}",
        answered(Kind::Issue),
    );
    row(
        "device codes issued (200)",
        "deviceflow_device_authorizations_total",
        status(Kind::Issue, 200),
    );
    row(
        "token requests answered (polls and replay checks)",
        "deviceflow_http_request_duration_seconds_count{endpoint=\"token\"}",
        answered(Kind::Poll) + answered(Kind::ReplayCheck),
    );
    for (a, label) in [
        (Answer::Pending, "authorization_pending"),
        (Answer::SlowDown, "slow_down"),
        (Answer::Denied, "access_denied"),
        (Answer::Expired, "expired_token"),
        (Answer::Token, "token"),
    ] {
        row(
            &format!("polls answered {label}"),
            &format!("deviceflow_token_polls_total{{outcome=\"{label}\"}}"),
            polls(a),
        );
    }
    // Decisions the server recorded (approvals and denials) against the admin
    // endpoint's answers 200, not against every admin request: before the run each
    // generator checks its approver with a request that decides nothing
    // (`check_approver`), and a shard's check may fall in another shard's window.
    let recorded = ["approve", "deny"]
        .map(|d| w.delta(&format!("deviceflow_decisions_total{{decision=\"{d}\"}}")));
    if let [Some(approved), Some(denied)] = recorded {
        rows.push(Row {
            what: "decisions recorded (admin endpoint answers 200)".to_owned(),
            series: "deviceflow_decisions_total".to_owned(),
            server: approved + denied,
            generator: status(Kind::Approve, 200),
        });
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_text_parses_and_windows_merge_by_extremes() {
        let a = parse("# HELP x y\nx_total 3\ny{a=\"b\"} 1.5\n\n");
        assert_eq!(a.0["x_total"], 3.0);
        assert_eq!(a.0["y{a=\"b\"}"], 1.5);
        let mut w = Window {
            before: parse("x_total 10"),
            after: parse("x_total 20"),
        };
        w.merge(&Window {
            before: parse("x_total 12"),
            after: parse("x_total 25"),
        });
        assert_eq!(w.delta("x_total"), Some(15));
        assert_eq!(w.delta("missing"), None);
    }

    #[test]
    fn a_series_that_is_not_a_finite_number_is_one_the_server_did_not_report() {
        let a = parse("a_total NaN\nb_total +Inf\nc_total -Inf\nd_total 4\n");
        assert_eq!(a.0.keys().collect::<Vec<_>>(), ["d_total"]);
        // What a run.json keeps reads back (serde_json writes a NaN as null, which
        // did not).
        let again: Scrape = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
        assert_eq!(again, a);
        let w = Window {
            before: parse("a_total 1"),
            after: parse("a_total NaN"),
        };
        assert_eq!(w.delta("a_total"), None);
    }

    #[test]
    fn a_scrape_keeps_only_the_series_it_reconciles() {
        assert!(reconciled("deviceflow_device_authorizations_total"));
        assert!(reconciled(
            "deviceflow_token_polls_total{outcome=\"slow_down\"}"
        ));
        assert!(!reconciled("deviceflow_token_polls_total{outcome=\"x1\"}"));
        assert!(!reconciled("process_resident_memory_bytes"));
        // Every series reconcile reads is kept: a window holding all of them gives a
        // row each (the decisions one row for both).
        let all = Scrape(RECONCILED.iter().map(|s| (s.to_string(), 1.0)).collect());
        let w = Window {
            before: Scrape::default(),
            after: all,
        };
        let rows = reconcile(&w, &RunStats::default());
        assert_eq!(rows.len(), 9, "{rows:#?}");
        assert!(rows.iter().all(|r| r.server >= 1), "{rows:#?}");
    }
}
