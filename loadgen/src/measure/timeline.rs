//! What happened each second of a run, per request kind: answers, transport errors,
//! latency from the intended send time, and the generator's own lateness. Plain
//! counters and fixed log-bucket histograms, so two timelines (two lanes, two shards)
//! add up exactly.

use serde::{Deserialize, Serialize};

use crate::device::flow::{Answer, Kind};

/// Latency buckets: powers of 2^(1/4) from 64 µs, about 19 % wide, to ~ 60 s.
pub const BUCKETS: usize = 80;

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

/// A small latency histogram (80 log buckets): cheap enough for one per second per
/// request kind, and exact to merge. Serialized sparse, as `[bucket, count]` pairs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Buckets(pub [u64; BUCKETS]);

impl Default for Buckets {
    fn default() -> Buckets {
        Buckets([0; BUCKETS])
    }
}

impl Buckets {
    pub fn record_us(&mut self, us: u64) {
        self.0[bucket_of(us)] += 1;
    }

    pub fn count(&self) -> u64 {
        self.0.iter().sum()
    }

    pub fn add(&mut self, other: &Buckets) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
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
        for (b, c) in self.0.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_upper_us(b) / 1000.0);
            }
        }
        Some(bucket_upper_us(BUCKETS - 1) / 1000.0)
    }
}

impl Serialize for Buckets {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let sparse: Vec<(usize, u64)> = self
            .0
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(b, c)| (b, *c))
            .collect();
        sparse.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Buckets {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Buckets, D::Error> {
        let sparse: Vec<(usize, u64)> = Vec::deserialize(d)?;
        let mut b = Buckets::default();
        for (i, c) in sparse {
            if i >= BUCKETS {
                return Err(serde::de::Error::custom(format!(
                    "latency bucket {i} is past the last ({BUCKETS})"
                )));
            }
            b.0[i] += c;
        }
        Ok(b)
    }
}

/// One request kind in one second.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KindSecond {
    /// Requests meant to go out this second that got an answer.
    pub answered: u64,
    pub transport_errors: u64,
    /// From the intended send time to the whole answer.
    pub latency: Buckets,
    /// From the intended send time to the moment the request went out: the
    /// generator's own delay (timers, a wait for a connection).
    pub lateness: Buckets,
}

impl KindSecond {
    fn add(&mut self, o: &KindSecond) {
        self.answered += o.answered;
        self.transport_errors += o.transport_errors;
        self.latency.add(&o.latency);
        self.lateness.add(&o.lateness);
    }
}

/// One second of the run (by intended send time).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Second {
    /// Token polls by answer (replay checks excluded), indexed as [`Answer::ALL`].
    pub answers: [u64; 6],
    /// Per request kind, indexed as [`Kind::ALL`].
    pub kinds: [KindSecond; 4],
}

impl Second {
    /// The generator's lateness of every request due in this second.
    pub fn lateness(&self) -> Buckets {
        let mut b = Buckets::default();
        for k in &self.kinds {
            b.add(&k.lateness);
        }
        b
    }

    fn add(&mut self, o: &Second) {
        for (a, b) in self.answers.iter_mut().zip(o.answers.iter()) {
            *a += b;
        }
        for (a, b) in self.kinds.iter_mut().zip(o.kinds.iter()) {
            a.add(b);
        }
    }
}

/// Seconds since the run started, grown as needed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeline {
    pub seconds: Vec<Second>,
}

impl Timeline {
    pub fn at(&mut self, ms: u32) -> &mut Second {
        let s = (ms / 1000) as usize;
        if self.seconds.len() <= s {
            self.seconds.resize_with(s + 1, Second::default);
        }
        &mut self.seconds[s]
    }

    /// A request of `kind` meant for `intended_ms`: answered or not, when it went out
    /// (µs after intended), and its latency when it has one (an answer, or a timeout
    /// the server is charged with: `KindStats::timeouts_in_latency`).
    pub fn request(
        &mut self,
        kind: Kind,
        intended_ms: u32,
        answered: bool,
        late_us: u64,
        latency_us: Option<u64>,
    ) {
        let k = &mut self.at(intended_ms).kinds[kind.index()];
        if answered {
            k.answered += 1;
        } else {
            k.transport_errors += 1;
        }
        if let Some(us) = latency_us {
            k.latency.record_us(us);
        }
        k.lateness.record_us(late_us);
    }

    pub fn poll_answer(&mut self, intended_ms: u32, answer: Answer) {
        self.at(intended_ms).answers[answer.index()] += 1;
    }

    /// Adds `other`, whose second 0 is `offset` seconds into this one.
    pub fn add(&mut self, other: &Timeline, offset: usize) {
        if self.seconds.len() < other.seconds.len() + offset {
            self.seconds
                .resize_with(other.seconds.len() + offset, Second::default);
        }
        for (i, s) in other.seconds.iter().enumerate() {
            self.seconds[i + offset].add(s);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_land_in_the_right_bucket() {
        let mut h = Buckets::default();
        for ms in 1..=100 {
            h.record_us(ms * 1000);
        }
        let p50 = h.quantile_ms(0.5).unwrap();
        let p99 = h.quantile_ms(0.99).unwrap();
        assert!((50.0..=60.0).contains(&p50), "{p50}");
        assert!((99.0..=120.0).contains(&p99), "{p99}");
        assert!(Buckets::default().quantile_ms(0.5).is_none());
    }

    #[test]
    fn timelines_add_up_exactly_with_an_offset() {
        let mut a = Timeline::default();
        a.request(Kind::Poll, 1500, true, 10, Some(900));
        a.poll_answer(1500, Answer::Pending);
        let mut b = Timeline::default();
        b.request(Kind::Poll, 200, false, 5, None);
        b.poll_answer(200, Answer::SlowDown);
        let json = serde_json::to_string(&b).unwrap();
        let b: Timeline = serde_json::from_str(&json).unwrap();
        a.add(&b, 1);
        let s = &a.seconds[1];
        assert_eq!(s.answers[Answer::Pending.index()], 1);
        assert_eq!(s.answers[Answer::SlowDown.index()], 1);
        assert_eq!(s.kinds[Kind::Poll.index()].answered, 1);
        assert_eq!(s.kinds[Kind::Poll.index()].transport_errors, 1);
        assert_eq!(s.kinds[Kind::Poll.index()].lateness.count(), 2);
    }
}
