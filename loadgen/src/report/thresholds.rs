//! `--threshold` rules, in goose's syntax (`p99<100ms`, `error-rate<1%`, `rps>=200`,
//! `… for token_poll`), judged on the devices' own requests once the report is
//! written, with a k6-style verdict: each rule, what was observed, and by how much a
//! failed one missed.
//!
//! Plus two rules of our own: `violations<N` and `lateness-pNN<T` (the generator's
//! delay, to fail a run whose generator could not keep the schedule).

use std::fmt::Write as _;
use std::str::FromStr;

use crate::device::flow::Kind;
use crate::measure::stats::{Hdr, KindStats, RunStats};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    Percentile(f64),
    Average,
    Maximum,
    ErrorRate,
    Rps,
    Violations,
    Lateness(f64),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Op {
    fn passes(self, observed: f64, limit: f64) -> bool {
        match self {
            Op::Less => observed < limit,
            Op::LessOrEqual => observed <= limit,
            Op::Greater => observed > limit,
            Op::GreaterOrEqual => observed >= limit,
        }
    }
}

/// One rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Threshold {
    rule: String,
    metric: Metric,
    op: Op,
    /// ms for times, % for error-rate, a count or a rate otherwise.
    limit: f64,
    kind: Option<Kind>,
}

impl Threshold {
    /// The request kind the rule is held to (`… for token_poll`), if one.
    pub fn kind(&self) -> Option<Kind> {
        self.kind
    }

    /// The rule as written.
    pub fn rule(&self) -> &str {
        &self.rule
    }
}

fn parse_ms(v: &str) -> Option<f64> {
    let v = v.trim();
    let (num, scale) = if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (v, 1.0)
    };
    num.trim().parse::<f64>().ok().map(|x| x * scale)
}

impl FromStr for Threshold {
    type Err = String;
    fn from_str(text: &str) -> Result<Threshold, String> {
        let rule = text.trim().to_owned();
        let (head, kind) = match rule.split_once(" for ") {
            Some((h, k)) => {
                let k = k.trim();
                let kind = Kind::ALL.into_iter().find(|x| x.as_str() == k).ok_or_else(|| {
                    format!("threshold \"{rule}\": no request \"{k}\"; use device_authorization, token_poll, token_replay_check or approve")
                })?;
                (h.trim(), Some(kind))
            }
            None => (rule.as_str(), None),
        };
        let at = head.find(['<', '>']).ok_or_else(|| {
            format!("threshold \"{rule}\": write <metric><op><value>, e.g. p99<100ms")
        })?;
        let (name, rest) = head.split_at(at);
        let (op, value) = if let Some(v) = rest.strip_prefix("<=") {
            (Op::LessOrEqual, v)
        } else if let Some(v) = rest.strip_prefix(">=") {
            (Op::GreaterOrEqual, v)
        } else if let Some(v) = rest.strip_prefix('<') {
            (Op::Less, v)
        } else {
            (Op::Greater, &rest[1..])
        };
        let bad_value = || format!("threshold \"{rule}\": \"{}\" is not a value", value.trim());
        let pct = |p: &str| -> Result<f64, String> {
            p.parse::<f64>()
                .ok()
                .filter(|p| *p > 0.0 && *p < 100.0)
                .ok_or_else(|| format!("threshold \"{rule}\": a percentile is p1 to p99.9"))
        };
        let name = name.trim();
        let metric = match name {
            "avg" => Metric::Average,
            "max" => Metric::Maximum,
            "error-rate" => Metric::ErrorRate,
            "rps" => Metric::Rps,
            "violations" => Metric::Violations,
            n if n.starts_with("lateness-p") => Metric::Lateness(pct(&n[10..])?),
            n if n.starts_with('p') => Metric::Percentile(pct(&n[1..])?),
            n => {
                return Err(format!(
                    "threshold \"{rule}\": \"{n}\" is not a metric; use pNN, avg, max, error-rate, rps, violations or lateness-pNN"
                ))
            }
        };
        let limit = match metric {
            Metric::Percentile(_) | Metric::Average | Metric::Maximum | Metric::Lateness(_) => {
                parse_ms(value).ok_or_else(bad_value)?
            }
            Metric::ErrorRate => value
                .trim()
                .trim_end_matches('%')
                .trim()
                .parse()
                .map_err(|_| bad_value())?,
            Metric::Rps | Metric::Violations => value.trim().parse().map_err(|_| bad_value())?,
        };
        // Every metric is a count, a rate, a share or a time, 0 or more: NaN fails every
        // comparison and a negative limit is always passed or always failed, which had
        // been found out only after the run.
        if !limit.is_finite() || limit < 0.0 {
            return Err(format!(
                "threshold \"{rule}\": \"{}\" is not a value of 0 or more",
                value.trim()
            ));
        }
        if metric == Metric::ErrorRate && limit > 100.0 {
            return Err(format!(
                "threshold \"{rule}\": an error rate is a percent, 0 to 100"
            ));
        }
        Ok(Threshold {
            rule,
            metric,
            op,
            limit,
            kind,
        })
    }
}

/// One rule's verdict.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub rule: String,
    pub observed: Option<f64>,
    pub unit: &'static str,
    pub passed: bool,
    /// How far a failed rule missed its limit, in its unit.
    pub by: f64,
}

impl Threshold {
    fn unit(&self) -> &'static str {
        match self.metric {
            Metric::ErrorRate => "%",
            Metric::Rps => "/s",
            Metric::Violations => "",
            _ => "ms",
        }
    }

    pub fn judge(&self, stats: &RunStats, duration_s: f64) -> Verdict {
        let kinds: Vec<&KindStats> = match self.kind {
            Some(k) => stats.kinds.get(&k).into_iter().collect(),
            None => stats.kinds.values().collect(),
        };
        let merged = |f: fn(&KindStats) -> &Hdr| {
            let mut h = Hdr::default();
            for k in &kinds {
                h.add(f(k));
            }
            h
        };
        let ms = |v: Option<u64>| v.map(|us| us as f64 / 1000.0);
        let observed = match self.metric {
            Metric::Percentile(p) => ms(merged(|k| &k.latency_us).quantile(p / 100.0)),
            Metric::Average => merged(|k| &k.latency_us).mean().map(|us| us / 1000.0),
            Metric::Maximum => ms(merged(|k| &k.latency_us).max()),
            Metric::Lateness(p) => ms(merged(|k| &k.lateness_us).quantile(p / 100.0)),
            Metric::ErrorRate => {
                let sent: u64 = kinds.iter().map(|k| k.sent).sum();
                let bad: u64 = kinds
                    .iter()
                    .map(|k| k.transport_errors() + k.unexpected.values().sum::<u64>())
                    .sum();
                (sent > 0).then(|| bad as f64 * 100.0 / sent as f64)
            }
            Metric::Rps => {
                let sent: u64 = kinds.iter().map(|k| k.answered).sum();
                (duration_s > 0.0).then(|| sent as f64 / duration_s)
            }
            Metric::Violations => Some(stats.violations_total() as f64),
        };
        let passed = observed.is_some_and(|o| self.op.passes(o, self.limit));
        Verdict {
            rule: self.rule.clone(),
            observed,
            unit: self.unit(),
            passed,
            by: observed.map_or(0.0, |o| (o - self.limit).abs()),
        }
    }
}

/// The verdict block, k6-style: `✓`/`✗`, the rule, what was observed.
pub fn verdict_text(verdicts: &[Verdict]) -> String {
    let mut out = String::from("thresholds\n");
    let width = verdicts.iter().map(|v| v.rule.len()).max().unwrap_or(0) + 2;
    for v in verdicts {
        let observed = v.observed.map_or("no samples".to_owned(), |o| {
            format!("{o:.2} {}", v.unit).trim_end().to_owned()
        });
        let _ = write!(
            out,
            "  {} {:.<width$} observed {observed}",
            if v.passed { "✓" } else { "✗" },
            format!("{} ", v.rule),
        );
        if !v.passed && v.observed.is_some() {
            let _ = write!(out, " (missed by {:.2} {})", v.by, v.unit);
        }
        out.push('\n');
    }
    let failed = verdicts.iter().filter(|v| !v.passed).count();
    let _ = write!(out, "{} of {} thresholds failed", failed, verdicts.len());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rules_parse_as_goose_writes_them() {
        let t: Threshold = "p99<100ms for token_poll".parse().unwrap();
        assert_eq!(
            (t.metric, t.op, t.limit, t.kind),
            (Metric::Percentile(99.0), Op::Less, 100.0, Some(Kind::Poll))
        );
        assert_eq!("p95<=2s".parse::<Threshold>().unwrap().limit, 2000.0);
        assert_eq!("error-rate<1%".parse::<Threshold>().unwrap().limit, 1.0);
        assert!("p100<1s"
            .parse::<Threshold>()
            .unwrap_err()
            .contains("p1 to p99.9"));
        assert!("p99<1s for nothing"
            .parse::<Threshold>()
            .unwrap_err()
            .contains("no request"));
        assert!("speed>3"
            .parse::<Threshold>()
            .unwrap_err()
            .contains("not a metric"));
    }

    /// A limit no run can meet or miss had been accepted, and the rule judged (always
    /// failed, or always passed) only after the run.
    #[test]
    fn a_limit_that_is_not_a_number_of_zero_or_more_is_refused_naming_the_rule() {
        for (rule, says) in [
            ("error-rate<NaN%", "is not a value of 0 or more"),
            ("violations<-1", "is not a value of 0 or more"),
            ("p99<infms", "is not a value of 0 or more"),
            ("rps>-5", "is not a value of 0 or more"),
            ("error-rate<150%", "an error rate is a percent, 0 to 100"),
        ] {
            let e = rule.parse::<Threshold>().unwrap_err();
            assert!(e.starts_with(&format!("threshold \"{rule}\": ")), "{e}");
            assert!(e.contains(says), "{e}");
        }
        for fine in ["violations<1", "error-rate<=0%", "p99<0.5ms", "rps>=0"] {
            assert!(fine.parse::<Threshold>().is_ok(), "{fine}");
        }
    }

    #[test]
    fn a_failed_rule_says_by_how_much() {
        let mut s = RunStats::default();
        for us in [1_000, 2_000, 300_000] {
            s.kind(Kind::Poll).latency_us.record(us);
            s.kind(Kind::Poll).sent += 1;
        }
        s.kind(Kind::Poll).transport[0] = 1;
        let v = "max<100ms".parse::<Threshold>().unwrap().judge(&s, 10.0);
        assert!(!v.passed);
        assert!((v.by - 200.0).abs() < 1.0, "{v:?}");
        let ok = "p50<10ms for token_poll"
            .parse::<Threshold>()
            .unwrap()
            .judge(&s, 10.0);
        assert!(ok.passed);
        let text = verdict_text(&[v, ok]);
        assert!(
            text.contains("✗ max<100ms") && text.contains("missed by"),
            "{text}"
        );
        assert!(text.ends_with("1 of 2 thresholds failed"), "{text}");
    }
}
