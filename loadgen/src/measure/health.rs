//! The generator's own health, once a second: its CPU, open file descriptors and
//! connections, devices alive, and the progress line. With the lateness in the
//! timeline, it tells whether the generator or the server was the bottleneck.

use serde::{Deserialize, Serialize};

/// One second of the generator.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthSample {
    /// Seconds since the run started.
    pub t: f64,
    /// CPU used since the last sample, in % of one core (200 = two cores busy).
    pub cpu_pct: f64,
    pub open_fds: u64,
    pub connections: u64,
    pub devices_alive: u64,
    pub polls_per_s: f64,
    pub transport_errors_per_s: f64,
    /// The longest the lanes' own work (timers, sending, reading answers) held the
    /// generator's thread at once in this second, ms: when requests went out late, a
    /// long one says the generator stalled, a short one that it was waiting.
    #[serde(default)]
    pub longest_busy_ms: f64,
    /// How long the generator's threads waited for a CPU while runnable in this
    /// second, ms (`resources::run_queue_wait`; 0 where unknown): a starved
    /// generator reads answers late, and the server's time would take that in.
    #[serde(default)]
    pub cpu_wait_ms: f64,
}

/// Open file descriptors of this process (Linux), 0 where unknown.
pub fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}
