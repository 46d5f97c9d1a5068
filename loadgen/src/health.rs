//! The generator's own health, once a second: its CPU, open file descriptors and
//! connections, devices alive, and the progress line. With the lateness in the
//! timeline, it tells whether the generator or the server was the bottleneck.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::sys::resource::{getrusage, UsageWho};
use serde::{Deserialize, Serialize};

use crate::fleet::Fleet;

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
}

/// The process's CPU time, and counters, at the last sample.
#[derive(Debug, Default)]
pub struct CpuClock {
    last: Option<(Instant, Duration, u64, u64)>,
}

/// User + system CPU time of this process so far.
pub fn cpu_time() -> Duration {
    getrusage(UsageWho::RUSAGE_SELF).map_or(Duration::ZERO, |u| {
        let t = |tv: nix::sys::time::TimeVal| {
            Duration::from_secs(tv.tv_sec() as u64) + Duration::from_micros(tv.tv_usec() as u64)
        };
        t(u.user_time()) + t(u.system_time())
    })
}

/// Open file descriptors of this process (Linux), 0 where unknown.
pub fn open_fds() -> u64 {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count() as u64)
}

/// Takes one sample into the fleet's list.
pub fn sample_once(fleet: &Fleet, clock: &mut CpuClock) {
    if !fleet.has_begun() {
        return;
    }
    let now = Instant::now();
    let cpu = cpu_time();
    let polls = fleet.live.polls.load(Relaxed);
    let errors = fleet.live.transport_errors.load(Relaxed);
    let Some((at, cpu0, polls0, errors0)) = clock.last.replace((now, cpu, polls, errors)) else {
        return;
    };
    let secs = now.duration_since(at).as_secs_f64().max(1e-3);
    let sample = HealthSample {
        t: now.duration_since(fleet.start()).as_secs_f64(),
        cpu_pct: cpu.saturating_sub(cpu0).as_secs_f64() / secs * 100.0,
        open_fds: open_fds(),
        connections: fleet.live.connections.load(Relaxed),
        devices_alive: fleet
            .live
            .started
            .load(Relaxed)
            .saturating_sub(fleet.live.finished.load(Relaxed)),
        polls_per_s: (polls - polls0) as f64 / secs,
        transport_errors_per_s: (errors - errors0) as f64 / secs,
    };
    fleet
        .health
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(sample);
}

/// Samples once a second until aborted, and prints a progress line every
/// `progress_every` (none when zero).
pub async fn sample(fleet: Arc<Fleet>, progress_every: Duration) {
    let mut clock = CpuClock::default();
    sample_once(&fleet, &mut clock);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    let mut n: u64 = 0;
    loop {
        tick.tick().await;
        sample_once(&fleet, &mut clock);
        n += 1;
        if !progress_every.is_zero() && n % progress_every.as_secs().max(1) == 0 {
            let l = &fleet.live;
            let h = fleet
                .health
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .last()
                .cloned()
                .unwrap_or_default();
            eprintln!(
                "[{:4.0} s] devices {} started, {} done, {} tokens; {:.0} polls/s; {} transport errors; {} connections; generator CPU {:.0} %",
                h.t,
                l.started.load(Relaxed),
                l.finished.load(Relaxed),
                l.tokens.load(Relaxed),
                h.polls_per_s,
                l.transport_errors.load(Relaxed),
                h.connections,
                h.cpu_pct
            );
        }
    }
}
