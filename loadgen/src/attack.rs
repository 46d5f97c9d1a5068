//! The goose attack that drives a fleet: one goose user per lane, each running its
//! share of the devices (`lane/`), while the generator's health is sampled.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use deviceflow_reports::errln;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use goose::config::{GooseConfiguration, GooseDefault, GooseDefaultType};
use goose::prelude::*;

use crate::fleet::Fleet;
use crate::lane::Lane;
use crate::measure::health::{open_fds, HealthSample};

/// Runs `fleet` with goose and returns when every lane has ended. Prints a progress
/// line every `progress_every` unless zero. A lane that panics (a defect of the
/// generator) stops the others and makes the run an error: its devices' counts are
/// lost, so no report could be trusted.
pub async fn run(
    fleet: Arc<Fleet>,
    goose: GooseConfiguration,
    host: &str,
    progress_every: Duration,
) -> anyhow::Result<()> {
    run_lanes(fleet, goose, host, progress_every, |fleet, index, lanes| {
        Box::pin(Lane::new(fleet, index, lanes).run())
    })
    .await
}

/// What a lane runs: lane `index` of `lanes` of the fleet.
type LaneFn = dyn Fn(Arc<Fleet>, u64, u64) -> BoxFuture<'static, ()> + Send + Sync;

/// [`run`], each goose user running `lane`.
async fn run_lanes(
    fleet: Arc<Fleet>,
    goose: GooseConfiguration,
    host: &str,
    progress_every: Duration,
    lane: impl Fn(Arc<Fleet>, u64, u64) -> BoxFuture<'static, ()> + Send + Sync + 'static,
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
    let lane: Arc<LaneFn> = Arc::new(lane);
    // The first lane to panic, and what it said. goose would wait for a panicked
    // user's end forever (the process hung): the panic is caught here instead.
    let failed: Arc<OnceLock<String>> = Arc::default();
    let first_failure = Arc::clone(&failed);
    let transaction: TransactionFunction = Arc::new(move |_user| {
        let (f, lane, failed) = (
            Arc::clone(&f),
            Arc::clone(&lane),
            Arc::clone(&first_failure),
        );
        Box::pin(async move {
            let index = f.next_lane.fetch_add(1, Relaxed) as u64;
            let lanes = f.config.lanes as u64;
            if let Err(panic) = AssertUnwindSafe(lane(f, index, lanes)).catch_unwind().await {
                let said = panic_message(&*panic).lines().collect::<Vec<_>>().join(" ");
                let _ = failed.set(format!("lane {index}: {said}"));
                // The other lanes stop on it as on Ctrl-C.
                goose::trigger_killswitch("a lane of the generator panicked");
            }
            Ok(())
        })
    });
    let scenario = Scenario::new("devices")
        .register_transaction(Transaction::new(transaction).set_name("device fleet lane"));
    let attack = GooseAttack::initialize_with_config(goose)
        .map_err(goose_error)?
        .register_scenario(scenario)
        .set_default(GooseDefault::Host, host)
        .map_err(goose_error)?
        .set_default(GooseDefault::Iterations, 1)
        .map_err(goose_error)?;
    let sampler = tokio::spawn(sample(Arc::clone(&fleet), progress_every));
    let result = attack.execute().await;
    sampler.abort();
    sample_once(&fleet, &mut CpuClock::default());
    if let Some(why) = failed.get() {
        anyhow::bail!(
            "internal error, a defect of the generator and not the server's: {why}; the run is void and no report was written"
        );
    }
    result.map(|_| ()).map_err(goose_error)
}

/// goose's error in one line that says what it is about: its `Display` of an invalid
/// option is "invalid option or value specified", naming neither the option nor why.
fn goose_error(e: GooseError) -> anyhow::Error {
    let said = match &e {
        GooseError::InvalidOption {
            option,
            value,
            detail,
        } => {
            let option = option.trim_matches('`');
            let value = if value.is_empty() || value == option {
                String::new()
            } else {
                format!(" {value:?}")
            };
            format!("{option}{value}: {detail}")
        }
        GooseError::FeatureNotEnabled { feature, detail } => {
            format!("needs goose's {feature} feature, which this build lacks: {detail}")
        }
        e => e.to_string(),
    };
    anyhow::anyhow!("goose: {}", said.lines().collect::<Vec<_>>().join(" "))
}

/// What a panic said, when it said it with a string (as `panic!` and `expect` do).
fn panic_message(panic: &(dyn Any + Send)) -> &str {
    panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("a panic without a message")
}

/// Takes one sample into the fleet's list.
pub fn sample_once(fleet: &Fleet, clock: &mut CpuClock) {
    if !fleet.has_begun() {
        return;
    }
    let now = Instant::now();
    let cpu = crate::measure::resources::cpu_time();
    let polls = fleet.live.polls.load(Relaxed);
    let errors = fleet.live.transport_errors.load(Relaxed);
    let wait = crate::measure::resources::run_queue_wait();
    let Some((at, cpu0, polls0, errors0, wait0)) =
        clock.last.replace((now, cpu, polls, errors, wait))
    else {
        return;
    };
    let cpu_wait_ms = match (wait, wait0) {
        (Some(w), Some(w0)) => w.saturating_sub(w0).as_secs_f64() * 1000.0,
        _ => 0.0,
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
        cpu_wait_ms,
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

/// The process's CPU time, counters and run-queue wait, at the last sample.
#[derive(Debug, Default)]
pub struct CpuClock {
    last: Option<(Instant, Duration, u64, u64, Option<Duration>)>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fleet::FleetConfig;
    use deviceflow_conformance::{Approver, Client};

    /// goose's refusal of an option names it and says why: it had said only "GooseError:
    /// invalid option or value specified".
    #[test]
    fn a_goose_error_about_an_option_names_it_and_why_in_one_line() {
        let e = goose_error(GooseError::InvalidOption {
            option: "`configuration.threshold_abort_delay`".to_owned(),
            value: "1s".to_owned(),
            detail: "needs --threshold,\nand not --no-threshold-abort".to_owned(),
        });
        assert_eq!(
            e.to_string(),
            "goose: configuration.threshold_abort_delay \"1s\": needs --threshold, and not --no-threshold-abort"
        );
    }

    /// A lane that panics ends the run with an error that names it, and the other lanes
    /// are told to stop. goose waited for the panicked lane forever: the process hung.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lane_that_panics_ends_the_run_with_an_error_not_a_hang() {
        // Nothing listens there, and nothing is sent: these lanes make no request.
        let base = "http://127.0.0.1:9";
        let mut config = FleetConfig::new(
            &[base.to_owned()],
            &format!("{base}/oauth/device_authorization"),
            &format!("{base}/oauth/token"),
            &Client::public("tv"),
            None,
            Approver::admin(format!("{base}/admin/decisions"), "admin", "alice"),
        )
        .unwrap();
        config.lanes = 3;
        let fleet = Arc::new(Fleet::new(config));
        let run = run_lanes(
            fleet,
            GooseConfiguration::default(),
            base,
            Duration::ZERO,
            |_, index, _| {
                Box::pin(async move {
                    if index == 1 {
                        panic!("lane one broke\nin two lines");
                    }
                    // The others run until they are told to stop.
                    while !goose::is_killswitch_triggered() {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                })
            },
        );
        let result = tokio::time::timeout(Duration::from_secs(30), run).await;
        goose::reset_killswitch();
        let error = result.expect("the run hung").unwrap_err().to_string();
        assert!(
            error.contains("lane 1: lane one broke in two lines;"),
            "{error}"
        );
        assert!(error.contains("no report was written"), "{error}");
    }
}
