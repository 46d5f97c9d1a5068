//! What happened each second of a run: polls by answer, and request latency, kept in
//! fixed arrays of atomics so thousands of devices can record without a lock.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use serde::Serialize;

/// The answers a poll can get, as recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Pending,
    SlowDown,
    Token,
    Denied,
    Expired,
    /// Any other error, a non-JSON answer or no answer.
    Error,
}

impl Answer {
    pub const ALL: [Answer; 6] = [
        Answer::Pending,
        Answer::SlowDown,
        Answer::Token,
        Answer::Denied,
        Answer::Expired,
        Answer::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Answer::Pending => "authorization_pending",
            Answer::SlowDown => "slow_down",
            Answer::Token => "token",
            Answer::Denied => "access_denied",
            Answer::Expired => "expired_token",
            Answer::Error => "error",
        }
    }
}

/// Latency buckets: powers of 2^(1/4) from 64 µs, about 19 % wide, to ~ 60 s.
const BUCKETS: usize = 80;

fn bucket_of(us: u64) -> usize {
    if us <= 64 {
        return 0;
    }
    let b = ((us as f64 / 64.0).log2() * 4.0).ceil() as usize;
    b.min(BUCKETS - 1)
}

/// The upper bound of a bucket, in microseconds.
pub fn bucket_upper_us(b: usize) -> f64 {
    64.0 * 2f64.powf(b as f64 / 4.0)
}

/// A lock-free latency histogram.
pub struct Histogram {
    counts: [AtomicU64; BUCKETS],
}

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

impl Histogram {
    pub fn record(&self, d: Duration) {
        self.counts[bucket_of(d.as_micros() as u64)].fetch_add(1, Relaxed);
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().map(|c| c.load(Relaxed)).sum()
    }

    /// The `q` quantile (0..=1) in milliseconds, as the upper bound of its bucket;
    /// `None` when empty.
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (b, c) in self.counts.iter().enumerate() {
            seen += c.load(Relaxed);
            if seen >= rank {
                return Some(bucket_upper_us(b) / 1000.0);
            }
        }
        Some(bucket_upper_us(BUCKETS - 1) / 1000.0)
    }
}

/// Per-second counters for a run of at most `seconds` seconds (later events land in
/// the last second).
pub struct Timeline {
    answers: Vec<[AtomicU64; 6]>,
    authorizations: Vec<AtomicU64>,
    latency: Vec<Histogram>,
}

impl Timeline {
    pub fn new(seconds: usize) -> Timeline {
        let n = seconds.max(1);
        Timeline {
            answers: (0..n)
                .map(|_| std::array::from_fn(|_| AtomicU64::new(0)))
                .collect(),
            authorizations: (0..n).map(|_| AtomicU64::new(0)).collect(),
            latency: (0..n).map(|_| Histogram::default()).collect(),
        }
    }

    fn slot(&self, at: Duration) -> usize {
        (at.as_secs() as usize).min(self.answers.len() - 1)
    }

    pub fn poll(&self, at: Duration, answer: Answer, latency: Duration) {
        let s = self.slot(at);
        let i = Answer::ALL.iter().position(|a| *a == answer).unwrap_or(5);
        self.answers[s][i].fetch_add(1, Relaxed);
        self.latency[s].record(latency);
    }

    pub fn authorization(&self, at: Duration, latency: Duration) {
        let s = self.slot(at);
        self.authorizations[s].fetch_add(1, Relaxed);
        self.latency[s].record(latency);
    }

    /// Seconds up to the last one with any activity.
    pub fn seconds_used(&self) -> usize {
        (0..self.answers.len())
            .rev()
            .find(|&s| self.latency[s].count() > 0)
            .map_or(0, |s| s + 1)
    }

    pub fn answers_at(&self, s: usize, answer: Answer) -> u64 {
        let i = Answer::ALL.iter().position(|a| *a == answer).unwrap_or(5);
        self.answers[s][i].load(Relaxed)
    }

    pub fn authorizations_at(&self, s: usize) -> u64 {
        self.authorizations[s].load(Relaxed)
    }

    pub fn latency_at(&self, s: usize) -> &Histogram {
        &self.latency[s]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_land_in_the_right_bucket() {
        let h = Histogram::default();
        for ms in 1..=100 {
            h.record(Duration::from_millis(ms));
        }
        let p50 = h.quantile_ms(0.5).unwrap();
        let p99 = h.quantile_ms(0.99).unwrap();
        assert!((50.0..=60.0).contains(&p50), "{p50}");
        assert!((99.0..=120.0).contains(&p99), "{p99}");
        assert!(Histogram::default().quantile_ms(0.5).is_none());
    }

    #[test]
    fn events_are_counted_per_second() {
        let t = Timeline::new(10);
        t.poll(
            Duration::from_millis(1500),
            Answer::Pending,
            Duration::from_millis(1),
        );
        t.poll(
            Duration::from_millis(1900),
            Answer::SlowDown,
            Duration::from_millis(1),
        );
        t.poll(
            Duration::from_secs(99),
            Answer::Token,
            Duration::from_millis(1),
        );
        assert_eq!(t.answers_at(1, Answer::Pending), 1);
        assert_eq!(t.answers_at(1, Answer::SlowDown), 1);
        assert_eq!(
            t.answers_at(9, Answer::Token),
            1,
            "late events land in the last second"
        );
        assert_eq!(t.seconds_used(), 10);
    }
}
