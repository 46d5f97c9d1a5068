//! What a run found, per behaviour, computed from the devices' records, the
//! per-second timeline and goose's request metrics. This is the report's data and the
//! run's JSON.

use std::collections::BTreeMap;

use goose::metrics::GooseMetrics;
use serde::Serialize;

use crate::behaviour::Behaviour;
use crate::device::{DeviceRecord, Outcome};
use crate::timeline::{Answer, Timeline};

/// How the run was set up: enough to repeat it.
#[derive(Debug, Clone, Serialize)]
pub struct Setup {
    pub command: String,
    pub commit: String,
    pub cpu: String,
    pub started_at_unix: u64,
    pub device_authorization_endpoint: String,
    pub token_endpoint: String,
    pub client_id: String,
    pub devices: usize,
    pub mix: Vec<(Behaviour, u32)>,
    pub people: crate::device::People,
    pub expect: crate::fleet::Expectations,
    pub approver: String,
}

/// Summary statistics of a set of durations, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Spread {
    pub count: usize,
    pub min: Option<f64>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    pub max: Option<f64>,
    pub mean: Option<f64>,
}

impl Spread {
    pub fn of(mut v: Vec<f64>) -> Spread {
        v.retain(|x| x.is_finite());
        if v.is_empty() {
            return Spread::default();
        }
        v.sort_by(f64::total_cmp);
        let q = |p: f64| v[(((v.len() as f64) * p).ceil() as usize).clamp(1, v.len()) - 1];
        Spread {
            count: v.len(),
            min: v.first().copied(),
            p50: Some(q(0.5)),
            p90: Some(q(0.9)),
            p99: Some(q(0.99)),
            max: v.last().copied(),
            mean: Some(v.iter().sum::<f64>() / v.len() as f64),
        }
    }
}

/// What happened to the devices of one behaviour.
#[derive(Debug, Clone, Serialize)]
pub struct BehaviourResult {
    pub behaviour: Behaviour,
    pub devices: usize,
    pub outcomes: BTreeMap<&'static str, usize>,
    /// Token time minus the person's approval, ms.
    pub time_to_token_ms: Spread,
    pub polls_per_device: Spread,
    pub slow_downs: u64,
    pub devices_slowed_down: usize,
    pub early_polls: u64,
    pub early_polls_slowed: u64,
    /// early_polls_slowed / early_polls.
    pub early_slowed_share: Option<f64>,
    /// The largest interval the server came to require of one device, s.
    pub max_required_interval_s: u64,
    /// First expired_token minus (issued + expires_in), ms: how exact expiry is.
    pub expiry_lateness_ms: Spread,
    pub timeouts: u64,
    pub violations: usize,
    /// People whose decision the approver could not carry out.
    pub decision_errors: usize,
}

/// One second of the run.
#[derive(Debug, Clone, Serialize)]
pub struct Second {
    pub t: usize,
    pub authorizations: u64,
    pub answers: BTreeMap<&'static str, u64>,
    /// Latency from intended send time, ms (coordinated omission corrected).
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
}

/// goose's view of each named request.
#[derive(Debug, Clone, Serialize)]
pub struct RequestStats {
    pub name: String,
    pub count: usize,
    pub success: usize,
    pub fail: usize,
    pub per_second: f64,
    pub mean_ms: f64,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: f64,
    /// goose's coordinated-omission-corrected p99, when it back-filled any.
    pub co_p99_ms: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Violation {
    pub device: usize,
    pub behaviour: Behaviour,
    pub what: String,
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct RunData {
    pub schema: &'static str,
    pub setup: Setup,
    pub duration_s: f64,
    pub devices: usize,
    pub outcomes: BTreeMap<&'static str, usize>,
    pub behaviours: Vec<BehaviourResult>,
    /// slow_down answers to devices that kept the pace: should be 0.
    pub compliant_slow_downs: u64,
    pub violations_total: usize,
    /// The first 50 violations.
    pub violations: Vec<Violation>,
    /// The first 20 decisions the approver could not carry out, with its reason.
    pub decision_errors: Vec<Violation>,
    pub timeline: Vec<Second>,
    /// Mean required interval (s) of the devices still running, per behaviour, per 5 s.
    pub interval_over_time: BTreeMap<&'static str, Vec<(f64, f64)>>,
    /// Time to token after approval, seconds: (from, to, devices).
    pub time_to_token_histogram: Vec<(f64, f64, u64)>,
    pub requests: Vec<RequestStats>,
    pub loadgen_peak_rss_mb: Option<f64>,
    pub server_values: ServerValues,
}

/// What the server handed out, as seen by the devices.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ServerValues {
    pub expires_in: BTreeMap<u64, usize>,
    pub interval: BTreeMap<u64, usize>,
}

fn ms_to_s(ms: f64) -> f64 {
    ms / 1000.0
}

pub fn compute(
    setup: Setup,
    records: &[DeviceRecord],
    timeline: &Timeline,
    goose: &GooseMetrics,
    duration_s: f64,
) -> RunData {
    let mut outcomes: BTreeMap<&'static str, usize> =
        Outcome::ALL.iter().map(|o| (o.as_str(), 0)).collect();
    for r in records {
        *outcomes.entry(r.outcome.as_str()).or_default() += 1;
    }
    let mut behaviours = Vec::new();
    let mut present: Vec<Behaviour> = records.iter().map(|r| r.behaviour).collect();
    present.sort();
    present.dedup();
    for b in &present {
        let rs: Vec<&DeviceRecord> = records.iter().filter(|r| r.behaviour == *b).collect();
        let mut oc: BTreeMap<&'static str, usize> =
            Outcome::ALL.iter().map(|o| (o.as_str(), 0)).collect();
        for r in &rs {
            *oc.entry(r.outcome.as_str()).or_default() += 1;
        }
        let ttt: Vec<f64> = rs
            .iter()
            .filter_map(|r| Some(r.token_ms? as f64 - r.decided_ms? as f64))
            .collect();
        let early: u64 = rs.iter().map(|r| u64::from(r.early_polls)).sum();
        let early_slowed: u64 = rs.iter().map(|r| u64::from(r.early_slowed)).sum();
        let lateness: Vec<f64> = rs
            .iter()
            .filter_map(|r| {
                Some(r.first_expired_ms? as f64 - (r.issued_ms? + r.expires_in? * 1000) as f64)
            })
            .collect();
        behaviours.push(BehaviourResult {
            behaviour: *b,
            devices: rs.len(),
            outcomes: oc,
            time_to_token_ms: Spread::of(ttt),
            polls_per_device: Spread::of(rs.iter().map(|r| f64::from(r.polls)).collect()),
            slow_downs: rs.iter().map(|r| u64::from(r.slow_downs)).sum(),
            devices_slowed_down: rs.iter().filter(|r| r.slow_downs > 0).count(),
            early_polls: early,
            early_polls_slowed: early_slowed,
            early_slowed_share: (early > 0).then(|| early_slowed as f64 / early as f64),
            max_required_interval_s: rs
                .iter()
                .flat_map(|r| r.interval_changes.iter().map(|(_, i)| *i))
                .max()
                .unwrap_or(0),
            expiry_lateness_ms: Spread::of(lateness),
            timeouts: rs.iter().map(|r| u64::from(r.timeouts)).sum(),
            violations: rs.iter().map(|r| r.violations.len()).sum(),
            decision_errors: rs.iter().filter(|r| r.decision_error.is_some()).count(),
        });
    }
    let compliant_slow_downs = records
        .iter()
        .filter(|r| r.behaviour.is_compliant())
        .map(|r| u64::from(r.slow_downs))
        .sum();
    let mut violations = Vec::new();
    let mut violations_total = 0;
    for (i, r) in records.iter().enumerate() {
        for v in &r.violations {
            violations_total += 1;
            if violations.len() < 50 {
                violations.push(Violation {
                    device: i,
                    behaviour: r.behaviour,
                    what: v.clone(),
                });
            }
        }
    }

    let decision_errors: Vec<Violation> = records
        .iter()
        .enumerate()
        .filter_map(|(i, r)| {
            Some(Violation {
                device: i,
                behaviour: r.behaviour,
                what: r.decision_error.clone()?,
            })
        })
        .take(20)
        .collect();

    let seconds = timeline.seconds_used();
    let timeline_out: Vec<Second> = (0..seconds)
        .map(|t| Second {
            t,
            authorizations: timeline.authorizations_at(t),
            answers: Answer::ALL
                .iter()
                .map(|a| (a.as_str(), timeline.answers_at(t, *a)))
                .collect(),
            p50_ms: timeline.latency_at(t).quantile_ms(0.5),
            p99_ms: timeline.latency_at(t).quantile_ms(0.99),
        })
        .collect();

    // Mean required interval among the devices running at each 5 s step.
    let end_ms = (duration_s * 1000.0) as u64;
    let mut interval_over_time = BTreeMap::new();
    for b in &present {
        let rs: Vec<&DeviceRecord> = records
            .iter()
            .filter(|r| r.behaviour == *b && !r.interval_changes.is_empty())
            .collect();
        let mut points = Vec::new();
        let mut t = 0;
        while t <= end_ms {
            let active: Vec<u64> = rs
                .iter()
                .filter(|r| {
                    r.issued_ms.is_some_and(|i| i <= t) && r.finished_ms.is_none_or(|f| f >= t)
                })
                .filter_map(|r| {
                    r.interval_changes
                        .iter()
                        .rev()
                        .find(|(at, _)| *at <= t)
                        .map(|(_, i)| *i)
                })
                .collect();
            if !active.is_empty() {
                points.push((
                    t as f64 / 1000.0,
                    active.iter().sum::<u64>() as f64 / active.len() as f64,
                ));
            }
            t += 5000;
        }
        interval_over_time.insert(b.as_str(), points);
    }

    // Time to token, in seconds, in 2 s bins up to the longest.
    let ttt_s: Vec<f64> = records
        .iter()
        .filter_map(|r| Some(ms_to_s(r.token_ms? as f64 - r.decided_ms? as f64)))
        .collect();
    let mut hist = Vec::new();
    if let Some(max) = ttt_s.iter().copied().reduce(f64::max) {
        let width = 1.0_f64.max((max / 20.0).ceil());
        let bins = ((max / width).floor() as usize + 1).max(1);
        for i in 0..bins {
            let lo = i as f64 * width;
            let hi = lo + width;
            let n = ttt_s
                .iter()
                .filter(|&&x| x >= lo && (x < hi || (i + 1 == bins && x <= hi)))
                .count() as u64;
            hist.push((lo, hi, n));
        }
    }

    let mut requests: Vec<RequestStats> = goose
        .requests
        .iter()
        .map(|(key, agg)| {
            let raw = &agg.raw_data;
            let q = |data: &goose::metrics::GooseRequestMetricTimingData, p: f64| -> Option<f64> {
                let total: usize = data.times_us.iter().map(|(_, c)| *c).sum();
                if total == 0 {
                    return None;
                }
                let rank = ((p * total as f64).ceil() as usize).max(1);
                let mut seen = 0;
                for (us, c) in data.times_us.iter() {
                    seen += *c;
                    if seen >= rank {
                        return Some(*us as f64 / 1000.0);
                    }
                }
                None
            };
            RequestStats {
                name: key.clone(),
                count: raw.counter,
                success: agg.success_count,
                fail: agg.fail_count,
                per_second: if duration_s > 0.0 {
                    raw.counter as f64 / duration_s
                } else {
                    0.0
                },
                mean_ms: if raw.counter > 0 {
                    raw.total_time_us as f64 / raw.counter as f64 / 1000.0
                } else {
                    0.0
                },
                p50_ms: q(raw, 0.5),
                p90_ms: q(raw, 0.9),
                p99_ms: q(raw, 0.99),
                max_ms: raw.maximum_time_us as f64 / 1000.0,
                co_p99_ms: agg
                    .coordinated_omission_data
                    .as_ref()
                    .and_then(|d| q(d, 0.99)),
            }
        })
        .collect();
    requests.sort_by(|a, b| a.name.cmp(&b.name));

    let mut server_values = ServerValues::default();
    for r in records {
        if let Some(e) = r.expires_in {
            *server_values.expires_in.entry(e).or_default() += 1;
        }
        if let Some(i) = r.interval {
            *server_values.interval.entry(i).or_default() += 1;
        }
    }
    RunData {
        schema: "deviceflow-loadgen/1",
        setup,
        duration_s,
        devices: records.len(),
        outcomes,
        behaviours,
        compliant_slow_downs,
        violations_total,
        violations,
        decision_errors,
        timeline: timeline_out,
        interval_over_time,
        time_to_token_histogram: hist,
        requests,
        loadgen_peak_rss_mb: peak_rss_mb(),
        server_values,
    }
}

/// The commit this run was built from, for its setup block.
pub fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The CPU model and core count, for the setup block.
pub fn cpu_model() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{model} ({cores} cores)")
}

/// VmHWM of this process, in MB (Linux).
pub fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spread_quantiles() {
        let s = Spread::of((1..=100).map(f64::from).collect());
        assert_eq!(
            (s.min, s.p50, s.p90, s.p99, s.max),
            (Some(1.0), Some(50.0), Some(90.0), Some(99.0), Some(100.0))
        );
        assert_eq!(Spread::of(vec![]).count, 0);
        assert_eq!(Spread::of(vec![f64::NAN, 3.0]).p50, Some(3.0));
    }
}
