//! `hostile`: a compliant device fleet polls a running `deviceflow-server` while
//! attacks run against it; prints what the fleet and the attacks saw and the server's
//! memory and CPU, against the targets. `hostile.sh` builds and starts the server and
//! runs this; benches/README.md says what each figure means.
//!
//! The attacks (each can be left out): a sign-in flood (wrong passwords for a real
//! user, many in flight), an issuance flood (device authorizations as fast as the
//! server answers, from one address) and slowloris (request heads a byte a second).
//! The fleet comes from one loopback address and the attacks from another, so the
//! server's per-IP limits can tell them apart, as they could in production.
//!
//! The server's RSS is read ten times a second; above `--rss-cap-mb` the run stops
//! at once and says so, so a server that leaks under attack cannot take the machine.

use std::time::Duration;

use anyhow::Context;
use deviceflow_benches::hostile::fleet::{self, FleetConfig, FleetReport};
use deviceflow_benches::hostile::flood::{self, FloodReport};
use deviceflow_benches::hostile::slowloris::{self, SlowlorisConfig, SlowlorisReport};
use deviceflow_benches::hostile::{percentile, process, sign_in, Stop};
use deviceflow_reports::format::fmt_count;
use deviceflow_reports::stdio::StdoutError;
use deviceflow_reports::{errln, outln};
use tokio::task::JoinHandle;
use tokio::time::Instant;

mod args;

use args::{parse_args, Args};

/// RSS is read this often: an argon2 pile-up grows by gigabytes a second.
const WATCH_EVERY: Duration = Duration::from_millis(100);
/// A progress line on standard error this often.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

fn main() {
    match real_main() {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            errln!("hostile: {e:#}");
            std::process::exit(2);
        }
    }
}

fn real_main() -> anyhow::Result<i32> {
    let args = parse_args(std::env::args().skip(1))?;
    // The attacks share a runtime; the fleet has its own (loadgen's src/fleet/mod.rs says why).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    let run = runtime.block_on(run(&args))?;
    let missed = report(&args, &run)?;
    Ok(if args.strict && missed { 1 } else { 0 })
}

/// What each attack chosen saw (`None`: not chosen).
struct AttackReports {
    /// `Err`: the sign-in form could not be opened, so the flood did not run.
    sign_in: Option<Result<FloodReport, String>>,
    issuance: Option<FloodReport>,
    slowloris: Option<SlowlorisReport>,
}

/// Everything one run measured.
struct Run {
    elapsed: Duration,
    /// Why the run ended early, if it did.
    aborted: Option<String>,
    fleet: FleetReport,
    attacks: AttackReports,
    /// At the end; `None` if the server had exited.
    end: Option<process::Memory>,
    /// The most `VmRSS` and `VmHWM` read during the run.
    peak_rss: u64,
    peak_hwm: u64,
    cpu_seconds: Option<f64>,
}

async fn run(args: &Args) -> anyhow::Result<Run> {
    let pid = args.server_pid;
    let first = process::memory(pid).with_context(|| format!("reading server process {pid}"))?;
    let cpu_before = process::cpu_ticks(pid)?;
    let (handle, stop) = Stop::new();
    let start = Instant::now();

    let fleet = fleet::spawn(
        FleetConfig {
            devices: args.devices,
            source: args.fleet_source,
            target: args.target,
            ramp: Duration::from_secs(2),
            timeout: args.poll_timeout,
        },
        stop.clone(),
    );
    let attacks = Attacks::spawn(args, &stop);
    let mut watch = watch(args, start, first).await;
    handle.fire();
    let elapsed = start.elapsed();
    if let Some(why) = &watch.aborted {
        errln!(
            "hostile: ABORTED after {:.1} s: {why}",
            elapsed.as_secs_f64()
        );
    }
    // Read at once: the stop ends the attacks' requests, not the server's work on them.
    let end = process::memory(pid).ok();
    if let Some(m) = end {
        watch.peak_rss = watch.peak_rss.max(m.rss);
        watch.peak_hwm = watch.peak_hwm.max(m.peak);
    }
    let cpu_seconds = process::cpu_ticks(pid)
        .ok()
        .map(|t| t.saturating_sub(cpu_before) as f64 / args.clk_tck);

    let attacks = attacks.join().await?;
    let fleet = tokio::task::spawn_blocking(move || fleet.join())
        .await
        .context("joining the fleet")?
        .map_err(|_| anyhow::anyhow!("the fleet panicked"))?;
    Ok(Run {
        elapsed,
        aborted: watch.aborted,
        fleet,
        attacks,
        end,
        peak_rss: watch.peak_rss,
        peak_hwm: watch.peak_hwm,
        cpu_seconds,
    })
}

/// The attacks chosen, running on this runtime.
struct Attacks {
    sign_in: Option<JoinHandle<Result<FloodReport, String>>>,
    issuance: Option<JoinHandle<FloodReport>>,
    slowloris: Option<JoinHandle<SlowlorisReport>>,
}

impl Attacks {
    fn spawn(args: &Args, stop: &Stop) -> Attacks {
        let sign_in = args.sign_in.then(|| {
            let (a, stop) = (args.clone(), stop.clone());
            tokio::spawn(async move {
                let form = sign_in::open_form(a.attack_source, a.target).await?;
                let make = sign_in::wrong_password(form, &a.sign_in_user);
                Ok(flood::run(a.attack_source, a.target, a.sign_in_in_flight, make, stop).await)
            })
        });
        let issuance = args.issuance.then(|| {
            tokio::spawn(flood::run(
                args.attack_source,
                args.target,
                args.issuance_connections,
                flood::issuance(),
                stop.clone(),
            ))
        });
        let slowloris = args.slowloris.then(|| {
            tokio::spawn(slowloris::run(
                SlowlorisConfig {
                    connections: args.slowloris_connections,
                    source: args.attack_source,
                    target: args.target,
                    byte_every: Duration::from_secs(1),
                    ramp: Duration::from_secs(1),
                },
                stop.clone(),
            ))
        });
        Attacks {
            sign_in,
            issuance,
            slowloris,
        }
    }

    /// What each attack saw, once they have stopped.
    async fn join(self) -> anyhow::Result<AttackReports> {
        let sign_in = match self.sign_in {
            Some(t) => Some(t.await.context("the sign-in flood panicked")?),
            None => None,
        };
        let issuance = match self.issuance {
            Some(t) => Some(t.await.context("the issuance flood panicked")?),
            None => None,
        };
        let slowloris = match self.slowloris {
            Some(t) => Some(t.await.context("slowloris panicked")?),
            None => None,
        };
        Ok(AttackReports {
            sign_in,
            issuance,
            slowloris,
        })
    }
}

/// What watching the server saw: why it stopped early, if it did, and the most
/// `VmRSS` and `VmHWM` read.
struct Watch {
    aborted: Option<String>,
    peak_rss: u64,
    peak_hwm: u64,
}

/// Watches the server's memory until the deadline, or until the server is gone or
/// past the RSS cap; prints progress now and then.
async fn watch(args: &Args, start: Instant, first: process::Memory) -> Watch {
    let pid = args.server_pid;
    let deadline = start + args.duration;
    let cap = (args.rss_cap_mb * 1e6) as u64;
    let (mut peak_rss, mut peak_hwm) = (first.rss, first.peak);
    let mut next_progress = start + PROGRESS_EVERY;
    let mut tick = tokio::time::interval(WATCH_EVERY);
    let aborted = loop {
        tick.tick().await;
        let now = Instant::now();
        if now >= deadline {
            break None;
        }
        let m = match process::memory(pid) {
            Ok(m) => m,
            Err(e) => break Some(format!("the server process {pid} is gone ({e})")),
        };
        peak_rss = peak_rss.max(m.rss);
        peak_hwm = peak_hwm.max(m.peak);
        if m.rss > cap {
            break Some(format!(
                "server RSS {} MB passed the {} MB cap (RSS_CAP_MB); stopped early to spare the machine",
                mb(m.rss),
                args.rss_cap_mb
            ));
        }
        if now >= next_progress {
            errln!(
                "hostile: {:>3} s: server RSS {} MB, peak {} MB",
                (now - start).as_secs(),
                mb(m.rss),
                mb(m.peak)
            );
            next_progress += PROGRESS_EVERY;
        }
    };
    Watch {
        aborted,
        peak_rss,
        peak_hwm,
    }
}

/// Prints the table, the attacks and the verdict; true if a target was missed.
fn report(args: &Args, run: &Run) -> Result<bool, StdoutError> {
    outln!()?;
    if let Some(why) = &run.aborted {
        outln!(
            "**ABORTED after {:.1} s**: {why}.",
            run.elapsed.as_secs_f64()
        )?;
        outln!()?;
    }
    print_table(run)?;
    outln!()?;
    outln!(
        "- run: {:.1} s; attacks: {}",
        run.elapsed.as_secs_f64(),
        attack_names(args)
    )?;
    print_fleet(args, &run.fleet)?;
    print_attacks(args, &run.attacks, run.elapsed)?;
    print_verdicts(args, run)
}

/// The fleet's poll latency in ms at percentile `p`, or `-` with none.
fn poll_ms(f: &FleetReport, p: f64) -> String {
    percentile(&f.latencies, p).map_or("-".to_owned(), |d| format!("{:.1}", d.as_secs_f64() * 1e3))
}

/// The server's peak RSS: the most of `VmRSS` and `VmHWM` read.
fn peak_rss(run: &Run) -> u64 {
    run.peak_hwm.max(run.peak_rss)
}

/// One row: the fleet's polls and latency, the server's memory and CPU.
fn print_table(run: &Run) -> Result<(), StdoutError> {
    let f = &run.fleet;
    let end_rss = run.end.map_or("gone".to_owned(), |m| mb(m.rss));
    let cpu = run
        .cpu_seconds
        .map_or("-".to_owned(), |s| format!("{s:.1}"));
    outln!("| compliant polls sent | answered | failed | p50 ms | p99 ms | max ms | server peak RSS MB | RSS at end MB | server CPU s |")?;
    outln!("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")?;
    outln!(
        "| {} | {} | {} | {} | {} | {} | {} | {} | {} |",
        fmt_count(f.polls_sent),
        fmt_count(f.answers.total()),
        fmt_count(f.failures.total()),
        poll_ms(f, 50.0),
        poll_ms(f, 99.0),
        poll_ms(f, 100.0),
        mb(peak_rss(run)),
        end_rss,
        cpu
    )?;
    Ok(())
}

/// What the compliant fleet got, and how late its own timers woke.
fn print_fleet(args: &Args, f: &FleetReport) -> Result<(), StdoutError> {
    outln!(
        "- compliant fleet: {} devices from {}; device authorizations: {}; poll answers: {}; failed: {}; waiting at the end: {}{}",
        args.devices,
        args.fleet_source,
        f.authorizations.describe(),
        f.answers.describe(),
        f.failures.describe(),
        f.waiting_at_end,
        if f.finished > 0 { format!("; stopped by a final answer: {}", f.finished) } else { String::new() }
    )?;
    let late = |p| {
        percentile(&f.timer_late, p).map_or("-".to_owned(), |d| {
            format!("{:.1} ms", d.as_secs_f64() * 1e3)
        })
    };
    outln!(
        "- fleet's own timers woke late by p99 {}, max {} (client-side scheduling delay, a share of the latencies above that is not the server's)",
        late(99.0),
        late(100.0)
    )?;
    Ok(())
}

/// A line for each attack that ran.
fn print_attacks(
    args: &Args,
    attacks: &AttackReports,
    elapsed: Duration,
) -> Result<(), StdoutError> {
    match &attacks.sign_in {
        None => {}
        Some(Err(e)) => outln!("- sign-in flood: not run: {e}")?,
        Some(Ok(r)) => outln!(
            "- sign-in flood ({} in flight from {}, wrong passwords for `{}`): {}",
            r.connections,
            args.attack_source,
            args.sign_in_user,
            describe_flood(r, elapsed)
        )?,
    }
    if let Some(r) = &attacks.issuance {
        outln!(
            "- issuance flood ({} connections from {}, `demo-device`): {}",
            r.connections,
            args.attack_source,
            describe_flood(r, elapsed)
        )?;
    }
    if let Some(r) = &attacks.slowloris {
        let held = |p| {
            percentile(&r.held, p).map_or("-".to_owned(), |d| format!("{:.1} s", d.as_secs_f64()))
        };
        outln!(
            "- slowloris ({} connections from {}, a byte a second): {} opened, {} cut off by the server \
             (after {} median, {} max; {} answered something first), {} still open at the end; connects failed: {}",
            fmt_count(r.slots as u64),
            args.attack_source,
            fmt_count(r.opened),
            fmt_count(r.cut_off),
            held(50.0),
            held(100.0),
            fmt_count(r.answered_first),
            fmt_count(r.open_at_end),
            r.connect_failures.describe()
        )?;
    }
    Ok(())
}

/// The two targets, met or missed; true if one was missed.
fn print_verdicts(args: &Args, run: &Run) -> Result<bool, StdoutError> {
    let f = &run.fleet;
    let failed = f.failures.total();
    let peak = peak_rss(run);
    let fleet_ok = run.aborted.is_none()
        && failed == 0
        && percentile(&f.latencies, 99.0)
            .is_some_and(|d| d.as_secs_f64() * 1e3 < args.p99_target_ms);
    let rss_ok = run.aborted.is_none() && (peak as f64) < args.rss_target_mb * 1e6;
    let verdict = |ok: bool| if ok { "met" } else { "MISSED" };
    // No poll fell due within the run (DURATION at most the interval): nothing says
    // whether the fleet was spared, so neither "met" nor "MISSED" (which named the
    // server), and a STRICT run fails.
    let unmeasured = f.latencies.is_empty() && failed == 0 && run.aborted.is_none();
    outln!()?;
    if unmeasured {
        outln!(
            "verdict: compliant devices unaffected (poll p99 < {} ms, none failed): NOT MEASURED (no poll fell due within the run: make DURATION longer than INTERVAL)",
            args.p99_target_ms
        )?;
    } else {
        outln!(
            "verdict: compliant devices unaffected (poll p99 < {} ms, none failed): {} (p99 {} ms, {} failed)",
            args.p99_target_ms,
            verdict(fleet_ok),
            poll_ms(f, 99.0),
            fmt_count(failed)
        )?;
    }
    outln!(
        "verdict: server RSS < {} MB: {} (peak {} MB{})",
        args.rss_target_mb,
        verdict(rss_ok),
        mb(peak),
        if run.aborted.is_some() {
            ", run aborted"
        } else {
            ""
        }
    )?;
    Ok(!(fleet_ok && rss_ok))
}

fn describe_flood(r: &FloodReport, elapsed: Duration) -> String {
    let lat = |p| {
        percentile(&r.latencies, p).map_or("-".to_owned(), |d| {
            if d >= Duration::from_secs(1) {
                format!("{:.1} s", d.as_secs_f64())
            } else {
                format!("{:.1} ms", d.as_secs_f64() * 1e3)
            }
        })
    };
    let per_s = r.answers.total() as f64 / elapsed.as_secs_f64().max(1e-3);
    format!(
        "{} sent; answers: {} ({:.0}/s; answer time p50 {}, max {}); failed: {}; waiting at the end: {}",
        fmt_count(r.sent),
        r.answers.describe(),
        per_s,
        lat(50.0),
        lat(100.0),
        r.failures.describe(),
        fmt_count(r.waiting_at_end)
    )
}

fn attack_names(args: &Args) -> String {
    let names: Vec<&str> = [
        (args.sign_in, "signin"),
        (args.issuance, "issuance"),
        (args.slowloris, "slowloris"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if names.is_empty() {
        "none (the fleet alone)".to_owned()
    } else {
        names.join(",")
    }
}

/// Bytes in MB (10^6 bytes), whole.
fn mb(bytes: u64) -> String {
    format!("{:.0}", bytes as f64 / 1e6)
}
