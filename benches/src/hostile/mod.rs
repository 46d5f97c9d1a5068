//! The pieces of `hostile`: a compliant device fleet and three attacks, each run
//! against a live `deviceflow-server` over loopback until a shared [`Stop`] fires.
//!
//! Each part counts what it saw and hands its tally back when stopped; the binary
//! (`src/bin/hostile.rs`) starts them, watches the server process ([`process`]) and
//! prints the table. Nothing here decides a verdict. Traffic goes only to the target
//! the binary was given, which `hostile.sh` keeps on 127.0.0.0/8.

pub mod client;
pub mod fleet;
pub mod flood;
pub mod process;
pub mod sign_in;
pub mod slowloris;

use std::collections::BTreeMap;
use std::time::Duration;

use deviceflow_reports::format::fmt_count;

use tokio::sync::watch;
use tokio::time::Instant;

/// The end of a run: the deadline, or an earlier abort (the server's memory over its
/// cap). Cheap to clone; every task holds one and stops when it fires.
#[derive(Clone)]
pub struct Stop(watch::Receiver<bool>);

/// Fires a [`Stop`] and all its clones.
pub struct StopHandle(watch::Sender<bool>);

impl Stop {
    pub fn new() -> (StopHandle, Stop) {
        let (tx, rx) = watch::channel(false);
        (StopHandle(tx), Stop(rx))
    }

    pub fn is_set(&self) -> bool {
        *self.0.borrow()
    }

    /// Resolves once the stop has fired (at once if it already has).
    pub async fn fired(&mut self) {
        // An error means the handle is gone, which only happens after the run.
        let _ = self.0.wait_for(|stopped| *stopped).await;
    }

    /// Sleeps until `at`; false if the stop fired first.
    pub async fn sleep_until(&mut self, at: Instant) -> bool {
        tokio::select! {
            biased;
            _ = self.fired() => false,
            _ = tokio::time::sleep_until(at) => true,
        }
    }
}

impl StopHandle {
    pub fn fire(&self) {
        let _ = self.0.send(true);
    }
}

/// Answers counted by what they were: `"200"`, `"429"`, `"timeout"`, `"slow_down"`.
#[derive(Debug, Default, Clone)]
pub struct Tally(BTreeMap<String, u64>);

impl Tally {
    pub fn add(&mut self, key: impl Into<String>) {
        *self.0.entry(key.into()).or_default() += 1;
    }

    pub fn merge(&mut self, other: &Tally) {
        for (k, n) in &other.0 {
            *self.0.entry(k.clone()).or_default() += n;
        }
    }

    pub fn get(&self, key: &str) -> u64 {
        self.0.get(key).copied().unwrap_or(0)
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// `"400 x 20, 429 x 1,234"`, or `"none"`.
    pub fn describe(&self) -> String {
        if self.0.is_empty() {
            return "none".to_owned();
        }
        self.0
            .iter()
            .map(|(k, n)| format!("{k} x {}", fmt_count(*n)))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Percentiles of a set of durations, nearest-rank; `None` when there are none.
pub fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_is_nearest_rank() {
        let ms: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(percentile(&ms, 50.0), Some(Duration::from_millis(50)));
        assert_eq!(percentile(&ms, 99.0), Some(Duration::from_millis(99)));
        assert_eq!(percentile(&ms, 100.0), Some(Duration::from_millis(100)));
        assert_eq!(percentile(&ms[..1], 99.0), Some(Duration::from_millis(1)));
        assert_eq!(percentile(&[], 50.0), None);
    }

    #[test]
    fn tally_describes_in_key_order() {
        let mut t = Tally::default();
        t.add("429");
        t.add("400");
        t.add("429");
        assert_eq!(t.describe(), "400 x 1, 429 x 2");
        assert_eq!(t.total(), 3);
        assert_eq!(Tally::default().describe(), "none");
    }
}
