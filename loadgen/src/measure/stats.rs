//! A run's raw statistics: counters, HDR histograms and the per-second timeline, kept
//! by each lane without locks and merged exactly, lane into fleet and shard into shard
//! (`deviceflow-loadgen merge`). `report/results.rs` turns them into findings.
//!
//! Owns what is counted, not how it is shown (`report/`).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use deviceflow_reports::escape::clip;
use hdrhistogram::serialization::{Deserializer, Serializer, V2Serializer};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::device::behaviour::Behaviour;
use crate::device::flow::{Kind, Outcome, Rule};
use crate::device::ExpiredBecause;
use crate::measure::timeline::Timeline;
use crate::transport::Cause;

/// An HDR histogram (microseconds or counts, 1 to an hour, 3 significant digits),
/// serialized as base64 of its V2 encoding so run.json files merge exactly.
#[derive(Debug, Clone)]
pub struct Hdr(pub Histogram<u64>);

impl Default for Hdr {
    fn default() -> Hdr {
        Hdr(Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("fixed, valid bounds"))
    }
}

impl PartialEq for Hdr {
    fn eq(&self, o: &Hdr) -> bool {
        self.0 == o.0
    }
}

impl Hdr {
    pub fn record(&mut self, v: u64) {
        self.0.saturating_record(v.max(1));
    }

    pub fn add(&mut self, o: &Hdr) {
        // Same bounds on both sides (Default), so this cannot fail.
        let _ = self.0.add(&o.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// The `q` quantile (0..=1), `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        (self.count() > 0).then(|| self.0.value_at_quantile(q))
    }

    pub fn max(&self) -> Option<u64> {
        (self.count() > 0).then(|| self.0.max())
    }

    pub fn mean(&self) -> Option<f64> {
        (self.count() > 0).then(|| self.0.mean())
    }
}

impl Serialize for Hdr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = Vec::new();
        V2Serializer::new()
            .serialize(&self.0, &mut buf)
            .map_err(|e| serde::ser::Error::custom(format!("encoding a histogram: {e}")))?;
        s.serialize_str(&STANDARD.encode(buf))
    }
}

impl<'de> Deserialize<'de> for Hdr {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Hdr, D::Error> {
        let text = String::deserialize(d)?;
        let bytes = STANDARD
            .decode(text)
            .map_err(|e| serde::de::Error::custom(format!("a histogram is not base64: {e}")))?;
        let h: Histogram<u64> = Deserializer::new()
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| serde::de::Error::custom(format!("a histogram does not decode: {e:?}")))?;
        let mut out = Hdr::default();
        out.0
            .add(&h)
            .map_err(|_| serde::de::Error::custom("a histogram has other bounds"))?;
        Ok(out)
    }
}

/// One request kind over the whole run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct KindStats {
    /// Requests the generator tried to send.
    pub sent: u64,
    /// Of those, answered by the server (any status).
    pub answered: u64,
    /// Answers by HTTP status.
    pub status: BTreeMap<u16, u64>,
    /// Answers that are errors this request does not expect (not the RFC 8628 §3.5
    /// answers of a poll), by `error` code or description.
    pub unexpected: BTreeMap<String, u64>,
    /// No answer, by cause (indexed as [`Cause::ALL`]).
    pub transport: [u64; Cause::ALL.len()],
    /// Of those, requests the server had (written whole on an open connection) and
    /// did not answer: its failure, where the rest never reached it.
    #[serde(default)]
    pub reached_unanswered: u64,
    /// Of those without an answer, requests that timed out while the generator itself
    /// was stalled (paused, starved of CPU, held by its own work) for much of their
    /// window (`lane/answers.rs`): its failure, never the server's, and kept out of
    /// the latency figures.
    #[serde(default)]
    pub stalled_unanswered: u64,
    /// Of those without an answer, requests the server had and did not answer within
    /// `--request-timeout`: they are in `latency_us` and `server_us` at the time they
    /// were given up on (a lower bound), not left out of them.
    #[serde(default)]
    pub timeouts_in_latency: u64,
    /// Sent again on a new connection because the pooled one had closed unwritten.
    pub retried_unsent: u64,
    /// Intended send time to whole answer, µs; a request the server had and did not
    /// answer within `--request-timeout` is here at the time it was given up on.
    pub latency_us: Hdr,
    /// Sent to whole answer (or given up on, as above), µs: the server's (and the
    /// network's) share.
    pub server_us: Hdr,
    /// Intended to sent, µs: the generator's own delay.
    pub lateness_us: Hdr,
}

/// The most distinct unexpected answers a request kind keeps, and the most characters
/// of each: a server can make every answer different (a counter in its `error`) or
/// megabytes long, and neither the generator's memory nor its reports may grow with
/// it. Answers past the count are counted together under [`OTHER_ANSWERS`].
pub const UNEXPECTED_KEPT: usize = 100;
/// See [`UNEXPECTED_KEPT`].
pub const UNEXPECTED_CHARS: usize = 200;
/// Where unexpected answers past [`UNEXPECTED_KEPT`] are counted.
pub const OTHER_ANSWERS: &str = "(other answers, past the first 100 kinds)";

impl KindStats {
    /// Counts `n` answers `what` among the unexpected ones, within
    /// [`UNEXPECTED_KEPT`] and [`UNEXPECTED_CHARS`]: when lanes and shards are merged
    /// too, where an answer already cut is cut again as it was ([`clip`] composes).
    pub fn unexpected_answer(&mut self, what: &str, n: u64) {
        let what = clip(what, UNEXPECTED_CHARS);
        let key = if self.unexpected.len() < UNEXPECTED_KEPT || self.unexpected.contains_key(&what)
        {
            what
        } else {
            OTHER_ANSWERS.to_owned()
        };
        *self.unexpected.entry(key).or_default() += n;
    }

    pub fn transport_errors(&self) -> u64 {
        self.transport.iter().sum()
    }

    fn add(&mut self, o: &KindStats) {
        self.sent += o.sent;
        self.answered += o.answered;
        for (k, v) in &o.status {
            *self.status.entry(*k).or_default() += v;
        }
        for (k, v) in &o.unexpected {
            self.unexpected_answer(k, *v);
        }
        for (a, b) in self.transport.iter_mut().zip(o.transport.iter()) {
            *a += b;
        }
        self.reached_unanswered += o.reached_unanswered;
        self.stalled_unanswered += o.stalled_unanswered;
        self.timeouts_in_latency += o.timeouts_in_latency;
        self.retried_unsent += o.retried_unsent;
        self.latency_us.add(&o.latency_us);
        self.server_us.add(&o.server_us);
        self.lateness_us.add(&o.lateness_us);
    }
}

/// Expired codes by why ([`ExpiredBecause`]), each counted once.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExpiryReasons {
    pub nobody_decides: u64,
    pub decides_too_late: u64,
    pub pending_after_decision: u64,
    pub polled_too_late: u64,
    pub decision_not_through: u64,
}

impl ExpiryReasons {
    pub fn count(&mut self, why: ExpiredBecause) {
        *match why {
            ExpiredBecause::NobodyDecides => &mut self.nobody_decides,
            ExpiredBecause::DecidesTooLate => &mut self.decides_too_late,
            ExpiredBecause::PendingAfterDecision => &mut self.pending_after_decision,
            ExpiredBecause::PolledTooLate => &mut self.polled_too_late,
            ExpiredBecause::DecisionNotThrough => &mut self.decision_not_through,
        } += 1;
    }

    pub fn add(&mut self, o: &ExpiryReasons) {
        self.nobody_decides += o.nobody_decides;
        self.decides_too_late += o.decides_too_late;
        self.pending_after_decision += o.pending_after_decision;
        self.polled_too_late += o.polled_too_late;
        self.decision_not_through += o.decision_not_through;
    }
}

/// What happened to the devices of one behaviour.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BehaviourStats {
    pub devices: u64,
    /// By outcome, indexed as [`Outcome::ALL`].
    pub outcomes: [u64; 6],
    /// Polls answered (transport errors are not polls).
    pub polls: u64,
    pub polls_per_device: Hdr,
    pub slow_downs: u64,
    pub devices_slowed_down: u64,
    /// Polls sent sooner than the interval the device had been told to keep.
    pub early_polls: u64,
    /// Of those, how many were answered slow_down.
    pub early_polls_slowed: u64,
    /// The largest interval the server came to require of one device, s.
    pub max_required_interval_s: u64,
    /// Token time minus the person's approval, ms.
    pub time_to_token_ms: Hdr,
    /// First expired_token minus (issued + expires_in), ms, when not early (an early
    /// one is a violation, EX-01).
    pub expiry_lateness_ms: Hdr,
    /// The expired devices, by why (`Device::expired_because`).
    pub expired_because: ExpiryReasons,
    /// Devices told authorization_pending (or slow_down) more than 2 s after their
    /// person's decision went through, whatever came of them after.
    pub pending_after_decision: u64,
    /// Requests of these devices that got no answer.
    pub transport_errors: u64,
    /// People whose decision the approver could not carry out.
    pub decision_errors: u64,
    /// Violations by these devices' server, counted once per device and kind.
    pub violations: u64,
    /// What the server handed out: expires_in and interval, by value.
    pub expires_in: BTreeMap<u64, u64>,
    pub interval: BTreeMap<u64, u64>,
}

impl BehaviourStats {
    fn add(&mut self, o: &BehaviourStats) {
        self.devices += o.devices;
        for (a, b) in self.outcomes.iter_mut().zip(o.outcomes.iter()) {
            *a += b;
        }
        self.polls += o.polls;
        self.polls_per_device.add(&o.polls_per_device);
        self.slow_downs += o.slow_downs;
        self.devices_slowed_down += o.devices_slowed_down;
        self.early_polls += o.early_polls;
        self.early_polls_slowed += o.early_polls_slowed;
        self.max_required_interval_s = self.max_required_interval_s.max(o.max_required_interval_s);
        self.time_to_token_ms.add(&o.time_to_token_ms);
        self.expiry_lateness_ms.add(&o.expiry_lateness_ms);
        self.expired_because.add(&o.expired_because);
        self.pending_after_decision += o.pending_after_decision;
        self.transport_errors += o.transport_errors;
        self.decision_errors += o.decision_errors;
        self.violations += o.violations;
        for (k, v) in &o.expires_in {
            *self.expires_in.entry(*k).or_default() += v;
        }
        for (k, v) in &o.interval {
            *self.interval.entry(*k).or_default() += v;
        }
    }

    pub fn outcome(&self, o: Outcome) -> u64 {
        self.outcomes[o.index()]
    }

    /// Polls per device that got a code, from the exact sum: the histogram records
    /// a device that never polled as 1 (it starts at 1), which raised the mean.
    pub fn polls_per_device_mean(&self) -> Option<f64> {
        let devices = self.polls_per_device.count();
        (devices > 0).then(|| self.polls as f64 / devices as f64)
    }
}

/// One exchange that shows a violation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Example {
    pub device: u64,
    pub behaviour: Behaviour,
    /// What the device sent, with the device code shortened, and when (ms into the run).
    pub request: String,
    pub at_ms: u64,
    pub status: u16,
    /// The answer's body, cut at 300 bytes.
    pub body: String,
    /// What made it a violation, in words.
    pub why: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RuleStats {
    pub count: u64,
    pub example: Option<Example>,
}

/// Mean required interval of the devices still polling, per behaviour, sampled every
/// 5 s as a sum and a count (so samples add up across lanes and shards).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IntervalSamples {
    /// Per 5 s step: (sum of required intervals in s, devices).
    pub steps: Vec<(u64, u64)>,
}

/// Everything one lane (or a whole run, or merged shards) counted.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunStats {
    pub kinds: BTreeMap<Kind, KindStats>,
    pub behaviours: BTreeMap<Behaviour, BehaviourStats>,
    pub violations: BTreeMap<Rule, RuleStats>,
    /// The first message seen for each transport cause.
    pub transport_examples: BTreeMap<Cause, String>,
    /// The first decision errors (at most 5).
    pub decision_errors: Vec<String>,
    pub timeline: Timeline,
    pub intervals: BTreeMap<Behaviour, IntervalSamples>,
    /// Requests that waited for a free connection (the pool was at its cap), and the
    /// longest wait, ms.
    pub waited_for_connection: u64,
    pub max_connection_wait_ms: u64,
    /// Of those, the ones still waiting when the run time was up, never sent (their
    /// wait is in the longest).
    #[serde(default)]
    pub never_sent: u64,
    /// Connections opened.
    pub connections_opened: u64,
    /// Batches of requests written, each at once on one connection (as many as
    /// requests without pipelining).
    #[serde(default)]
    pub batches: u64,
    /// Requests by target (`host:port`, as `--host` gave it): sent and answered.
    #[serde(default)]
    pub hosts: BTreeMap<String, (u64, u64)>,
}

impl RunStats {
    pub fn kind(&mut self, k: Kind) -> &mut KindStats {
        self.kinds.entry(k).or_default()
    }

    pub fn behaviour(&mut self, b: Behaviour) -> &mut BehaviourStats {
        self.behaviours.entry(b).or_default()
    }

    pub fn violation(&mut self, rule: Rule, example: impl FnOnce() -> Example) {
        let r = self.violations.entry(rule).or_default();
        r.count += 1;
        if r.example.is_none() {
            r.example = Some(example());
        }
    }

    /// Adds `o`, whose second 0 is `offset` seconds into this run.
    pub fn add(&mut self, o: &RunStats, offset: usize) {
        for (k, v) in &o.kinds {
            self.kind(*k).add(v);
        }
        for (b, v) in &o.behaviours {
            self.behaviour(*b).add(v);
        }
        for (rule, v) in &o.violations {
            let r = self.violations.entry(*rule).or_default();
            r.count += v.count;
            if r.example.is_none() {
                r.example.clone_from(&v.example);
            }
        }
        for (c, m) in &o.transport_examples {
            self.transport_examples
                .entry(*c)
                .or_insert_with(|| m.clone());
        }
        for e in &o.decision_errors {
            if self.decision_errors.len() < 5 {
                self.decision_errors.push(e.clone());
            }
        }
        self.timeline.add(&o.timeline, offset);
        let step_offset = offset / 5;
        for (b, s) in &o.intervals {
            let mine = &mut self.intervals.entry(*b).or_default().steps;
            if mine.len() < s.steps.len() + step_offset {
                mine.resize(s.steps.len() + step_offset, (0, 0));
            }
            for (i, (sum, n)) in s.steps.iter().enumerate() {
                mine[i + step_offset].0 += sum;
                mine[i + step_offset].1 += n;
            }
        }
        self.waited_for_connection += o.waited_for_connection;
        self.max_connection_wait_ms = self.max_connection_wait_ms.max(o.max_connection_wait_ms);
        self.never_sent += o.never_sent;
        self.connections_opened += o.connections_opened;
        self.batches += o.batches;
        for (h, (sent, answered)) in &o.hosts {
            let mine = self.hosts.entry(h.clone()).or_default();
            mine.0 += sent;
            mine.1 += answered;
        }
    }

    pub fn transport_errors(&self) -> u64 {
        self.kinds.values().map(KindStats::transport_errors).sum()
    }

    /// Requests the server had and did not answer (see [`KindStats::reached_unanswered`]).
    pub fn reached_unanswered(&self) -> u64 {
        self.kinds.values().map(|k| k.reached_unanswered).sum()
    }

    /// Requests that timed out while the generator was stalled (see
    /// [`KindStats::stalled_unanswered`]).
    pub fn stalled_unanswered(&self) -> u64 {
        self.kinds.values().map(|k| k.stalled_unanswered).sum()
    }

    /// Timed-out requests counted in the latency figures (see
    /// [`KindStats::timeouts_in_latency`]).
    pub fn timeouts_in_latency(&self) -> u64 {
        self.kinds.values().map(|k| k.timeouts_in_latency).sum()
    }

    pub fn sent(&self) -> u64 {
        self.kinds.values().map(|k| k.sent).sum()
    }

    pub fn devices(&self) -> u64 {
        self.behaviours.values().map(|b| b.devices).sum()
    }

    pub fn outcome(&self, o: Outcome) -> u64 {
        self.behaviours.values().map(|b| b.outcome(o)).sum()
    }

    pub fn violations_total(&self) -> u64 {
        self.violations.values().map(|v| v.count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unexpected_answer_is_cut_once_and_merging_keeps_its_count_of_what_was_left_out() {
        let long = "e".repeat(100_000);
        let mut lane = RunStats::default();
        lane.kind(Kind::Poll).unexpected_answer(&long, 2);
        // A lane into the fleet, the fleet into a shard's merge: two merges.
        let mut fleet = RunStats::default();
        fleet.add(&lane, 0);
        let mut merged = RunStats::default();
        merged.add(&fleet, 0);
        let kept: Vec<(&String, &u64)> = merged.kind(Kind::Poll).unexpected.iter().collect();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert!(
            kept[0].0.ends_with("… (99800 more characters)"),
            "{}",
            kept[0].0
        );
        assert_eq!(*kept[0].1, 2);
    }

    /// Two devices that never polled and one that polled 3 times: 1 poll a device,
    /// where the histogram's mean (0 recorded as 1) said 1.7.
    #[test]
    fn polls_per_device_is_the_exact_mean() {
        let mut b = BehaviourStats::default();
        for polls in [0, 0, 3] {
            b.polls += polls;
            b.polls_per_device.record(polls);
        }
        assert_eq!(b.polls_per_device_mean(), Some(1.0));
        assert_eq!(BehaviourStats::default().polls_per_device_mean(), None);
    }

    #[test]
    fn histograms_survive_json_and_merge_exactly() {
        let mut a = RunStats::default();
        let mut b = RunStats::default();
        for v in 1..=1000 {
            a.kind(Kind::Poll).latency_us.record(v);
            b.kind(Kind::Poll).latency_us.record(v * 1000);
        }
        b.kind(Kind::Poll).transport[Cause::Refused.index()] += 3;
        let b: RunStats = serde_json::from_str(&serde_json::to_string(&b).unwrap()).unwrap();
        let mut whole = RunStats::default();
        for v in 1..=1000 {
            whole.kind(Kind::Poll).latency_us.record(v);
            whole.kind(Kind::Poll).latency_us.record(v * 1000);
        }
        a.add(&b, 0);
        assert_eq!(
            a.kinds[&Kind::Poll].latency_us,
            whole.kinds[&Kind::Poll].latency_us
        );
        assert_eq!(a.kinds[&Kind::Poll].latency_us.count(), 2000);
        assert_eq!(a.transport_errors(), 3);
    }
}
