//! A fleet: its configuration, the live counters every lane reports into, the health
//! sampler, and the goose attack whose users are the lanes.
//!
//! goose drives the run: its users (one per lane, all started at once) each run one
//! transaction, "device fleet lane", that multiplexes a share of the devices
//! (`lane/`). The devices' own hatch rate is goose's `-r` (or `-s`), applied per
//! device; `-u` is the number of devices.

pub mod shard;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use deviceflow_conformance::approver::Approver;
use serde::{Deserialize, Serialize};

use crate::device::behaviour::Mix;
use crate::device::People;
use crate::fleet::shard::Shard;
use crate::measure::health::HealthSample;
use crate::measure::stats::RunStats;
use crate::transport::Target;

/// What the operator expects the server to hand out; a mismatch is reported.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expectations {
    pub expires_in: Option<u64>,
    pub interval: Option<u64>,
}

/// The admin endpoint of deviceflow-server, when the approver is `admin`: decisions
/// go out on the fleet's own connections (see README, "Scale").
#[derive(Debug, Clone)]
pub struct AdminEndpoint {
    pub target: Target,
    pub uri: Arc<str>,
    pub authorization: Arc<str>,
    pub user: String,
}

/// How a fleet runs. Built once, shared by every lane.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    /// The `--host`s: devices spread their requests over them.
    pub targets: Vec<Target>,
    pub issue_path: String,
    pub token_path: String,
    /// The same, parsed once.
    pub issue_uri: Arc<str>,
    pub token_uri: Arc<str>,
    /// The device authorization request's body (client and scope), form-encoded.
    pub issue_body: String,
    /// `&client_id=…` (or nothing, with Basic), appended to each poll.
    pub client_params: String,
    pub client_authorization: Option<Arc<str>>,
    pub approver: Approver,
    pub admin: Option<AdminEndpoint>,
    pub people: People,
    pub expect: Expectations,
    pub mix: Mix,
    /// Poll once more after the token, to catch a second token for one code.
    pub verify_single_use: bool,
    /// A device gives up (unfinished) after this long without a final answer.
    pub max_flow: Option<Duration>,
    /// Devices in the whole run (all shards).
    pub devices: u64,
    /// Devices started per second, in the whole run.
    pub hatch_rate: f64,
    pub shard: Shard,
    /// Seeds every device's draws: behaviour, person, jitter.
    pub seed: u64,
    pub lanes: usize,
    /// Connections per target, all lanes together.
    pub connections: usize,
    /// Requests written at once on one connection, at most (HTTP/1.1 pipelining).
    pub pipeline: usize,
    pub request_timeout: Duration,
    /// With `-t`: each device slot starts a new device when its flow ends, until then.
    pub run_time: Option<Duration>,
}

/// The process when the run began.
#[derive(Debug, Clone, Copy)]
pub struct Begun {
    pub at: Instant,
    pub cpu: Duration,
    pub rss_mb: Option<f64>,
}

/// Counters for the progress line and the health samples.
#[derive(Debug, Default)]
pub struct Live {
    pub started: AtomicU64,
    pub finished: AtomicU64,
    pub tokens: AtomicU64,
    pub polls: AtomicU64,
    pub transport_errors: AtomicU64,
    pub connections: AtomicU64,
    /// The longest the lanes' own work held their thread at once since the last
    /// health sample, µs (a stall of the generator, not a wait for the server).
    pub longest_busy_us: AtomicU64,
}

/// Watches the device authorizations answered for a run in which no device gets a
/// code (a wrong `--client-id` or endpoint, an error page): once enough were refused,
/// with none giving a code, to be sure, the run is stopped early instead of lasting
/// its whole `-t` (README, "Numbers you can trust"). The rule, in the order the
/// generator read the answers: the first [`NoCodeWatch::REFUSALS`] all refused, or,
/// when the devices start too slowly to reach that soon, every one answered by
/// [`NoCodeWatch::SLOW_AFTER_MS`] into the run (at least [`NoCodeWatch::SLOW_REFUSALS`]).
/// One code, before or after, and the run is measured to its end: a server whose quota
/// refuses part of the fleet is measured, not stopped.
#[derive(Debug, Default)]
pub struct NoCodeWatch {
    /// Refusals so far, and [`NoCodeWatch::CODE`] once a code came: one word, so that
    /// lanes on several threads agree on which came first.
    state: AtomicU64,
}

impl NoCodeWatch {
    const CODE: u64 = 1 << 63;
    /// Refusals in a row, from the first answer, that stop the run.
    pub const REFUSALS: u64 = 20;
    /// With fewer devices answered by then, this many refusals stop it at this time.
    pub const SLOW_REFUSALS: u64 = 3;
    pub const SLOW_AFTER_MS: u32 = 30_000;

    /// A device authorization was answered with a code.
    pub fn code(&self) {
        if self.state.load(Relaxed) & Self::CODE == 0 {
            self.state.fetch_or(Self::CODE, Relaxed);
        }
    }

    /// A device authorization was answered without a code at `now_ms` into the run,
    /// of at most `devices` the run makes (`None`: no end to them, with -t): why the
    /// run should stop now, when the rule is met and devices remain to run.
    pub fn refused(&self, now_ms: u32, devices: Option<u64>) -> Option<String> {
        if self.state.load(Relaxed) & Self::CODE != 0 {
            return None;
        }
        let before = self.state.fetch_add(1, Relaxed);
        if before & Self::CODE != 0 {
            return None;
        }
        let n = before + 1;
        if devices.is_some_and(|d| n >= d) {
            // That was the last device: the run ends now anyway.
            None
        } else if n == Self::REFUSALS {
            Some(format!(
                "the first {n} device authorizations answered were all refused, none with a code"
            ))
        } else if (Self::SLOW_REFUSALS..Self::REFUSALS).contains(&n)
            && now_ms >= Self::SLOW_AFTER_MS
        {
            // Each refusal past the time says so; the fleet keeps the first.
            Some(format!(
                "all {n} device authorizations answered in the run's first {} s were refused, none with a code",
                now_ms / 1000
            ))
        } else {
            None
        }
    }
}

pub struct Fleet {
    pub config: FleetConfig,
    /// When the first lane began: time 0 of the schedule, and the CPU time and RSS
    /// the process had then.
    begun: OnceLock<Begun>,
    pub live: Live,
    pub(crate) next_lane: AtomicUsize,
    stats: Mutex<RunStats>,
    pub health: Mutex<Vec<HealthSample>>,
    pub no_code: NoCodeWatch,
    /// When (s into the run) and why the generator stopped the run before its end.
    stopped_early: OnceLock<(f64, String)>,
}

impl Fleet {
    pub fn new(config: FleetConfig) -> Fleet {
        Fleet {
            config,
            begun: OnceLock::new(),
            live: Live::default(),
            next_lane: AtomicUsize::new(0),
            stats: Mutex::new(RunStats::default()),
            health: Mutex::new(Vec::new()),
            no_code: NoCodeWatch::default(),
            stopped_early: OnceLock::new(),
        }
    }

    /// Stops the run now (`at_s` into it) for `why`, through goose's killswitch, as
    /// Ctrl-C and a lane's panic do: every lane stops sending and waits for what it
    /// has out. Not when the run was already stopped (Ctrl-C, a panic): the first
    /// reason is the run's.
    pub fn stop_early(&self, at_s: f64, why: String) {
        if goose::is_killswitch_triggered()
            || crate::stop::requested().is_some()
            || self.stopped_early.get().is_some()
        {
            return;
        }
        if self.stopped_early.set((at_s, why)).is_ok() {
            goose::trigger_killswitch("the generator stopped the run early");
        }
    }

    /// When and why the generator stopped the run early ([`Fleet::stop_early`]).
    pub fn stopped_early(&self) -> Option<&(f64, String)> {
        self.stopped_early.get()
    }

    /// Time 0 of the run, set when the first lane begins.
    pub fn start(&self) -> Instant {
        self.begun().at
    }

    pub fn begun(&self) -> &Begun {
        self.begun.get_or_init(|| Begun {
            at: Instant::now(),
            cpu: crate::measure::resources::cpu_time(),
            rss_mb: crate::measure::resources::rss_mb(),
        })
    }

    pub fn has_begun(&self) -> bool {
        self.begun.get().is_some()
    }

    /// A lane's statistics, added when it ends.
    pub fn add_lane(&self, stats: RunStats) {
        self.stats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .add(&stats, 0);
    }

    pub fn stats(&self) -> RunStats {
        self.stats.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST_20: &str =
        "the first 20 device authorizations answered were all refused, none with a code";

    #[test]
    fn the_first_20_answers_all_refused_stop_the_run_once() {
        let w = NoCodeWatch::default();
        for _ in 0..19 {
            assert_eq!(w.refused(1_000, None), None);
        }
        assert_eq!(w.refused(1_000, None).as_deref(), Some(FIRST_20));
        assert_eq!(w.refused(1_000, None), None);
        assert_eq!(w.refused(40_000, None), None);
    }

    #[test]
    fn one_code_first_and_no_number_of_refusals_stops_the_run() {
        let w = NoCodeWatch::default();
        w.code();
        for _ in 0..100 {
            assert_eq!(w.refused(60_000, None), None);
        }
        // A code after refusals: the rule is on the first 20 answers.
        let w = NoCodeWatch::default();
        for _ in 0..5 {
            assert_eq!(w.refused(1_000, None), None);
        }
        w.code();
        for _ in 0..100 {
            assert_eq!(w.refused(1_000, None), None);
        }
    }

    /// Devices started slowly (-r 0.1): 3 or more refusals, all there were in the
    /// first 30 s, stop it then.
    #[test]
    fn a_slow_fleet_refused_throughout_its_first_30_seconds_stops() {
        let w = NoCodeWatch::default();
        assert_eq!(w.refused(0, None), None);
        assert_eq!(w.refused(10_000, None), None);
        assert_eq!(w.refused(20_000, None), None);
        assert_eq!(
            w.refused(30_000, None).as_deref(),
            Some("all 4 device authorizations answered in the run's first 30 s were refused, none with a code")
        );
        // Two answers are too few to be sure, whenever they came.
        let w = NoCodeWatch::default();
        assert_eq!(w.refused(0, None), None);
        assert_eq!(w.refused(90_000, None), None);
        assert!(w.refused(100_000, None).is_some());
    }

    /// Without -t, the refusal of the run's last device stops nothing: the run ends
    /// then anyway, and a report saying "stopped early" would be wrong.
    #[test]
    fn the_last_device_refused_does_not_stop_a_run_that_ends_anyway() {
        let w = NoCodeWatch::default();
        for _ in 0..19 {
            assert_eq!(w.refused(1_000, Some(20)), None);
        }
        assert_eq!(w.refused(1_000, Some(20)), None);
        let w = NoCodeWatch::default();
        for _ in 0..19 {
            assert_eq!(w.refused(1_000, Some(21)), None);
        }
        assert_eq!(w.refused(1_000, Some(21)).as_deref(), Some(FIRST_20));
    }
}
