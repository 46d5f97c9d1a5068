//! The goose attack that drives a fleet: one goose user per lane, each running its
//! share of the devices (`lane/`), while the generator's health is sampled.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deviceflow_reports::errln;
use goose::config::{GooseConfiguration, GooseDefault, GooseDefaultType};
use goose::prelude::*;

use crate::fleet::Fleet;
use crate::health::{open_fds, HealthSample};
use crate::lane::Lane;

/// Runs `fleet` with goose and returns when every lane has ended. Prints a progress
/// line every `progress_every` unless zero.
pub async fn run(
    fleet: Arc<Fleet>,
    goose: GooseConfiguration,
    host: &str,
    progress_every: Duration,
) -> anyhow::Result<()> {
    let mut goose = goose;
    if goose.verbose == 0 && goose.quiet == 0 {
        goose.quiet = 1;
    }
    // goose's per-request tables would only show the lanes' one transaction: the
    // report has the devices' requests (and `--threshold` is judged on those).
    goose.no_print_metrics = true;
    // goose's telnet and WebSocket controllers listen on fixed ports (5116, 5117): a
    // second generator on the host (a shard, README "Scale") would fail to bind them,
    // and their user counts mean nothing to the lanes.
    goose.no_telnet = true;
    // Off unless asked for in goose 0.19, whose `no_websocket` only warns that it is
    // no longer needed (a `[WARN]` line on every run).
    goose.websocket = false;
    goose.users = Some(fleet.config.lanes);
    // Every lane at once: the devices have their own hatch rate.
    goose.increase_rate = Some("10000".to_owned());
    goose.increase_time = None;
    goose.run_time = None;
    goose.iterations = None;
    let f = Arc::clone(&fleet);
    let lane: TransactionFunction = Arc::new(move |_user| {
        let f = Arc::clone(&f);
        Box::pin(async move {
            let index = f.next_lane.fetch_add(1, Relaxed) as u64;
            let lanes = f.config.lanes as u64;
            Lane::new(f, index, lanes).run().await;
            Ok(())
        })
    });
    let scenario = Scenario::new("devices")
        .register_transaction(Transaction::new(lane).set_name("device fleet lane"));
    let attack = GooseAttack::initialize_with_config(goose)
        .map_err(|e| anyhow::anyhow!("goose: {e}"))?
        .register_scenario(scenario)
        .set_default(GooseDefault::Host, host)
        .map_err(|e| anyhow::anyhow!("goose: {e}"))?
        .set_default(GooseDefault::Iterations, 1)
        .map_err(|e| anyhow::anyhow!("goose: {e}"))?;
    let sampler = tokio::spawn(sample(Arc::clone(&fleet), progress_every));
    let result = attack.execute().await;
    sampler.abort();
    sample_once(&fleet, &mut CpuClock::default());
    result
        .map(|_| ())
        .map_err(|e| anyhow::anyhow!("goose: {e}"))
}

/// Takes one sample into the fleet's list.
pub fn sample_once(fleet: &Fleet, clock: &mut CpuClock) {
    if !fleet.has_begun() {
        return;
    }
    let now = Instant::now();
    let cpu = crate::resources::cpu_time();
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
        longest_busy_ms: fleet.live.longest_busy_us.swap(0, Relaxed) as f64 / 1000.0,
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
        if !progress_every.is_zero() && n.is_multiple_of(progress_every.as_secs().max(1)) {
            let l = &fleet.live;
            let h = fleet
                .health
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .last()
                .cloned()
                .unwrap_or_default();
            errln!(
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

/// The process's CPU time, and counters, at the last sample.
#[derive(Debug, Default)]
pub struct CpuClock {
    last: Option<(Instant, Duration, u64, u64)>,
}
