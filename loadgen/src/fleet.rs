//! A fleet: its configuration, the live counters every lane reports into, the health
//! sampler, and the goose attack whose users are the lanes.
//!
//! goose drives the run: its users (one per lane, all started at once) each run one
//! transaction, "device fleet lane", that multiplexes a share of the devices
//! (`lane/`). The devices' own hatch rate is goose's `-r` (or `-s`), applied per
//! device; `-u` is the number of devices.

use std::sync::atomic::{AtomicU64, AtomicUsize};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use deviceflow_conformance::approver::Approver;
use serde::{Deserialize, Serialize};

use crate::behaviour::Mix;
use crate::device::People;
use crate::health::HealthSample;
use crate::shard::Shard;
use crate::stats::RunStats;
use crate::transport::Target;

/// What the operator expects the server to hand out; a mismatch is reported.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
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

pub struct Fleet {
    pub config: FleetConfig,
    /// When the first lane began: time 0 of the schedule, and the CPU time and RSS
    /// the process had then.
    begun: OnceLock<Begun>,
    pub live: Live,
    pub(crate) next_lane: AtomicUsize,
    stats: Mutex<RunStats>,
    pub health: Mutex<Vec<HealthSample>>,
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
        }
    }

    /// Time 0 of the run, set when the first lane begins.
    pub fn start(&self) -> Instant {
        self.begun().at
    }

    pub fn begun(&self) -> &Begun {
        self.begun.get_or_init(|| Begun {
            at: Instant::now(),
            cpu: crate::resources::cpu_time(),
            rss_mb: crate::resources::rss_mb(),
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
