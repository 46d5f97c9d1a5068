//! A lane: one goose user driving a share of the fleet's devices, multiplexed on one
//! task. Devices are small records (`device/`) in a vector; what each waits for is
//! an entry in a hashed timer wheel (`wheel.rs`); requests go out on a bounded pool of
//! keep-alive connections per target (`connections.rs`, over `transport.rs`) and come
//! back through one set of futures (`answers.rs`). No task, no timer and no connection
//! per device: that is what lets a million devices run on one machine (README,
//! "Scale").
//!
//! Owns scheduling and bookkeeping (`books.rs`); the device-side RFC 8628 rules are
//! `device/`'s.

mod answers;
mod books;
mod connections;
mod devices;
pub mod wheel;

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use rand::rngs::SmallRng;
use rand::Rng;
use tokio::sync::mpsc;

use crate::device::behaviour::Behaviour;
use crate::device::flow::{Kind, Outcome};
use crate::device::{self, Device, Phase, Plan};
use crate::fleet::Fleet;
use crate::measure::stats::RunStats;
use crate::transport;
use wheel::Wheel;

use connections::{InFlight, Pool};
use devices::Devices;

/// The timers' granularity, ms. A wake-up serves every device due in its tick, so the
/// coarser the tick, the more requests share a wake-up of the generator (and of the
/// server), for at most one tick of lateness (README, "Scale").
pub const TICK_MS: u32 = 10;

/// How often at least a lane wakes to see whether the run was stopped (Ctrl-C,
/// SIGTERM), ms.
const STOP_CHECK_MS: u32 = 200;

/// What a timer entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Poll,
    ReplayCheck,
    Decide,
    /// With -t: the slot of a device that could not reach the server, or whose flow
    /// an error ended, starts its next device (a second later, so a failing server is
    /// not hammered).
    Restart,
}

/// A request to send (or waiting for a connection).
#[derive(Debug, Clone, Copy)]
struct Out {
    slot: u32,
    kind: Kind,
    target: u16,
    intended_ms: u32,
    early: bool,
    /// How much later than due the lane took the request up, when that was a stall
    /// of the lane ([`STALL_MS`] or more; 0 below): a poll's device waits that much
    /// longer before its next one ([`Device::polled`]).
    lag_ms: u32,
    /// The lane's stall clock ([`Lane::stalled_ms`]) when the request was written:
    /// how long the lane was stalled during its window is the clock's move since.
    stalled_ms: u32,
}

type Decision = (u32, Result<(), String>);

pub struct Lane {
    fleet: Arc<Fleet>,
    devices: Devices,
    timers: Wheel<(u32, Due)>,
    /// Timers taken from the wheel, reused.
    due: Vec<(u32, (u32, Due))>,
    /// The next device id this lane starts, and the step between its ids.
    next_id: u64,
    step: u64,
    live: u64,
    /// Slots waiting to start their next device (with -t, a second after an error or
    /// the network ended a flow): the lane has work to come though no device is alive.
    restarting: u64,
    pools: Vec<Pool>,
    /// Per target (the admin endpoint last): requests sent and answered.
    per_target: Vec<(u64, u64)>,
    max_per_pool: usize,
    inflight: FuturesUnordered<InFlight>,
    /// Buffers of batches that are over, for the next batches.
    spare: Vec<transport::Requests>,
    spare_outs: Vec<Vec<Out>>,
    /// A form body being written, reused.
    body: Vec<u8>,
    /// Decisions made by a non-admin approver's tasks: (device slot, result).
    decisions: (
        mpsc::UnboundedSender<Decision>,
        mpsc::UnboundedReceiver<Decision>,
    ),
    /// Those tasks (a person's delay, then the approver): aborted when the lane
    /// ends, which kills the approver commands they still run (each spawned with
    /// `kill_on_drop`), so that none outlives the run.
    approvals: tokio::task::JoinSet<()>,
    stats: RunStats,
    rng: SmallRng,
    /// Running sum and count of the required interval of polling devices, per
    /// behaviour, sampled every 5 s.
    intervals: [(u64, u64); 5],
    next_sample_ms: u32,
    /// The run time is up: no request goes out any more, and those already out are
    /// waited for (each ends within `--request-timeout`).
    closing: bool,
    /// The lane's stall clock: how long, in all, it woke later than it meant to, ms
    /// (stretches of at least [`STALL_MS`]; see [`Lane::note_stall`]).
    stalled_ms: u32,
}

/// The shortest late wake-up of a lane counted as a stall, ms: a timer's own
/// rounding and a busy tick stay below it.
const STALL_MS: u32 = 50;

/// How late a request due at `due` is taken up at `now`, when that is a stall
/// ([`STALL_MS`] or more), else 0: see [`Out::lag_ms`].
fn lag(due: u32, now: u32) -> u32 {
    Some(now.saturating_sub(due))
        .filter(|&late| late >= STALL_MS)
        .unwrap_or(0)
}

fn behaviour_index(b: Behaviour) -> usize {
    Behaviour::ALL.iter().position(|x| *x == b).unwrap_or(0)
}

impl Lane {
    /// Lane `index` of `lanes`: of the shard's devices, every `lanes`-th.
    pub fn new(fleet: Arc<Fleet>, index: u64, lanes: u64) -> Lane {
        let c = &fleet.config;
        let first = c.shard.index + index * c.shard.count;
        let step = lanes * c.shard.count;
        let pools = (0..c.targets.len() + 1).map(|_| Pool::default()).collect();
        let max_per_pool = (c.connections / lanes as usize).max(1);
        let seed = c.seed ^ index;
        Lane {
            devices: Devices::default(),
            timers: Wheel::new(TICK_MS),
            due: Vec::new(),
            next_id: first,
            step,
            live: 0,
            restarting: 0,
            per_target: vec![(0, 0); c.targets.len() + 1],
            pools,
            max_per_pool,
            inflight: FuturesUnordered::new(),
            spare: Vec::new(),
            spare_outs: Vec::new(),
            body: Vec::new(),
            decisions: mpsc::unbounded_channel(),
            approvals: tokio::task::JoinSet::new(),
            stats: RunStats::default(),
            rng: device::rng_for(seed, u64::MAX),
            intervals: [(0, 0); 5],
            next_sample_ms: 0,
            closing: false,
            stalled_ms: 0,
            fleet,
        }
    }

    fn now_ms(&self) -> u32 {
        self.fleet.start().elapsed().as_millis() as u32
    }

    fn at(&self, ms: u32) -> Instant {
        self.fleet.start() + Duration::from_millis(u64::from(ms))
    }

    /// When device `id` is due to start (the whole fleet hatches at `-r` a second,
    /// in id order, whatever the shard).
    fn start_ms(&self, id: u64) -> u32 {
        (id as f64 * 1000.0 / self.fleet.config.hatch_rate) as u32
    }

    /// Runs until every device of the lane has finished (or the run time is up and
    /// the requests already sent have ended), then hands its statistics to the fleet.
    pub async fn run(mut self) {
        self.fleet.begun();
        let deadline = self.fleet.config.run_time.map(|t| t.as_millis() as u32);
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        loop {
            let woke = Instant::now();
            let now = woke
                .saturating_duration_since(self.fleet.start())
                .as_millis() as u32;
            // The run time is up, or the run was stopped: Ctrl-C or SIGTERM
            // (`stop.rs`), the generator (`Fleet::stop_early`), or a lane's panic, all
            // through goose's killswitch, which goose clears as its run begins: a
            // signal from before then is in `stop::requested`.
            if (deadline.is_some_and(|d| now >= d)
                || goose::is_killswitch_triggered()
                || crate::stop::requested().is_some())
                && !self.closing
            {
                self.close();
            }
            if self.closing {
                // What was sent before the end is counted when it ends: answered, or
                // timed out (a server that stopped answering is seen as one).
                match self.inflight.next().await {
                    Some((outs, x)) => self.complete(outs, x),
                    None => break,
                }
                continue;
            }
            self.step(now);
            self.dispatch();
            self.busy_since(woke);
            if self.next_id >= self.fleet.config.devices
                && self.live == 0
                && self.restarting == 0
                && self.inflight.is_empty()
                && self.pools.iter().all(|p| p.is_quiet())
            {
                break;
            }
            let wake = self
                .wake_ms(deadline)
                .min(now.saturating_add(STOP_CHECK_MS));
            let planned = self.at(wake);
            sleep.as_mut().reset(planned.into());
            tokio::select! {
                Some((outs, x)) = self.inflight.next(), if !self.inflight.is_empty() => {
                    let began = Instant::now();
                    self.note_stall(planned, began);
                    self.complete(outs, x);
                    // Take whatever else is ready before looking at timers again.
                    while let Some(Some((outs, x))) = futures_util::FutureExt::now_or_never(self.inflight.next()) {
                        self.complete(outs, x);
                    }
                    self.busy_since(began);
                }
                Some((slot, result)) = self.decisions.1.recv() => {
                    self.note_stall(planned, Instant::now());
                    self.decided(slot, result);
                }
                _ = &mut sleep => self.note_stall(planned, Instant::now()),
            }
        }
        // The people still to decide (or deciding) when the run ends decide nothing
        // more: their tasks end here, and with them the approver commands they ran
        // (`kill_on_drop`: SIGKILL to each child's own pid). They had run on, past
        // the report, and the process's exit left them behind.
        self.approvals.shutdown().await;
        self.wind_up();
    }

    /// The lane meant to wake by `planned` and woke at `woke`: a wake-up later by
    /// [`STALL_MS`] or more is a stall (the thread held by the lane's own work, by
    /// another task, a pause such as SIGSTOP, a starved CPU), added to the stall
    /// clock before anything that came meanwhile is counted. One subtraction a
    /// wake-up: the hot path stays as it was.
    fn note_stall(&mut self, planned: Instant, woke: Instant) {
        let late = woke.saturating_duration_since(planned).as_millis() as u32;
        if late >= STALL_MS {
            self.stalled_ms = self.stalled_ms.wrapping_add(late);
        }
    }

    /// The lane's work since `began` held the thread: kept for the health sample if it
    /// is the longest yet (a load, and a write only then).
    fn busy_since(&self, began: Instant) {
        let us = began.elapsed().as_micros() as u64;
        let longest = &self.fleet.live.longest_busy_us;
        if us > longest.load(Relaxed) {
            longest.fetch_max(us, Relaxed);
        }
    }

    /// Everything due by `now`: the intervals' sample, devices to start (without -t,
    /// each id once; with -t, a slot's next device starts when the last one ends: see
    /// `finish`), and the timers.
    fn step(&mut self, now: u32) {
        while now >= self.next_sample_ms {
            self.sample_intervals();
        }
        while self.next_id < self.fleet.config.devices && self.start_ms(self.next_id) <= now {
            let id = self.next_id;
            self.next_id += self.step;
            let due = self.start_ms(id);
            self.start(id, due, lag(due, now));
        }
        let mut due = std::mem::take(&mut self.due);
        self.timers.take_due(now, &mut due);
        for (at, (slot, what)) in due.drain(..) {
            self.fire(slot, what, at, now);
        }
        self.due = due;
    }

    /// When the lane next has something to do, in ms (a tick boundary): timers fire
    /// on TICK_MS boundaries, never early, so the thread sleeps and wakes far less
    /// often than once per request, for at most TICK_MS of lateness.
    fn wake_ms(&self, deadline: Option<u32>) -> u32 {
        let mut wake = self.timers.next_fire().unwrap_or(u32::MAX);
        if self.next_id < self.fleet.config.devices {
            wake = wake.min(self.start_ms(self.next_id));
        }
        wake = wake.min(self.next_sample_ms);
        if let Some(d) = deadline {
            wake = wake.min(d);
        }
        wake.saturating_add(TICK_MS - 1) / TICK_MS * TICK_MS
    }

    /// The run time is up: what waits for a connection is never sent (but its wait is
    /// counted), and no device starts or asks for anything more.
    fn close(&mut self) {
        self.closing = true;
        for pool in &mut self.pools {
            let (waited, longest_ms) = pool.drop_queue();
            self.stats.never_sent += waited;
            self.stats.max_connection_wait_ms = self.stats.max_connection_wait_ms.max(longest_ms);
        }
    }

    /// The lane stops: whatever is still running is unfinished (a device that has its
    /// token and waited for its replay check got a token), and the lane's statistics
    /// go to the fleet.
    fn wind_up(mut self) {
        for slot in 0..self.devices.len() {
            let d = &mut self.devices[slot];
            match d.phase {
                Phase::Done => continue,
                // It has its token; only the replay check (TS-08) was still to come.
                Phase::ReplayCheck => d.finish(Outcome::Token),
                Phase::Issuing | Phase::Polling => d.finish(Outcome::Unfinished),
            }
            self.fold(slot as u32);
        }
        self.sample_intervals();
        let c = &self.fleet.config;
        for (i, (sent, answered)) in self.per_target.iter().enumerate() {
            if *sent > 0 {
                let e = self
                    .stats
                    .hosts
                    .entry(c.target(i).host.to_string())
                    .or_default();
                e.0 += sent;
                e.1 += answered;
            }
        }
        self.fleet.add_lane(self.stats);
    }

    fn sample_intervals(&mut self) {
        let step = (self.next_sample_ms / 5000) as usize;
        for (i, b) in Behaviour::ALL.iter().enumerate() {
            if self.intervals[i].1 == 0 && !self.stats.intervals.contains_key(b) {
                continue;
            }
            let steps = &mut self.stats.intervals.entry(*b).or_default().steps;
            if steps.len() <= step {
                steps.resize(step + 1, (0, 0));
            }
            steps[step] = self.intervals[i];
        }
        self.next_sample_ms += 5000;
    }

    /// Starts device `id`, due at `intended_ms` and taken up `lag_ms` late.
    fn start(&mut self, id: u64, intended_ms: u32, lag_ms: u32) {
        let c = &self.fleet.config;
        let mut rng = device::rng_for(c.seed, id);
        let behaviour = c.mix.pick(rng.gen_range(0..100));
        // Without an approver nobody decides: every token is one nobody approved.
        let plan = match c.people.plan(behaviour, &mut rng) {
            _ if c.admin.is_none() && !c.approver.is_available() => Plan::Never,
            plan => plan,
        };
        let slot = self.devices.push(Device::new(id, behaviour, plan));
        self.live += 1;
        self.stats.behaviour(behaviour).devices += 1;
        self.fleet.live.started.fetch_add(1, Relaxed);
        let target = (id % c.targets.len() as u64) as u16;
        self.send(Out {
            slot,
            kind: Kind::Issue,
            target,
            intended_ms,
            early: false,
            lag_ms,
            stalled_ms: 0,
        });
    }

    /// When the person in front of device `slot` gives up on it (`--max-flow` after
    /// its codes came): a poll due then or later is not sent.
    fn gives_up_ms(&self, slot: u32) -> u32 {
        self.fleet.config.max_flow.map_or(u32::MAX, |m| {
            let issued = self.devices[slot as usize].issued_ms;
            let flow = u32::try_from(m.as_millis()).unwrap_or(u32::MAX);
            issued.saturating_add(flow).saturating_add(1)
        })
    }

    /// A timer of device `slot`, `due` then, fires `now`.
    fn fire(&mut self, slot: u32, what: Due, due: u32, now: u32) {
        let d = &mut self.devices[slot as usize];
        let targets = self.fleet.config.targets.len() as u64;
        let (kind, target, early) = match what {
            Due::Restart => {
                self.restarting -= 1;
                let id = d.id + self.fleet.config.devices;
                self.start(id, due, lag(due, now));
                return;
            }
            Due::Decide if d.phase == Phase::Done => return,
            // The admin endpoint is the last pool.
            Due::Decide => (Kind::Approve, self.pools.len() as u16 - 1, false),
            Due::Poll if d.phase != Phase::Polling => return,
            Due::Poll => {
                // The person in front of the device gives up after --max-flow.
                if due >= self.gives_up_ms(slot) {
                    let d = &mut self.devices[slot as usize];
                    d.finish(Outcome::Unfinished);
                    self.finish(slot);
                    return;
                }
                let d = &mut self.devices[slot as usize];
                let early = d.poll_going_out(due);
                let target = (d.id + u64::from(d.requests)) % targets;
                (Kind::Poll, target as u16, early)
            }
            Due::ReplayCheck => (Kind::ReplayCheck, ((d.id + 1) % targets) as u16, false),
        };
        self.send(Out {
            slot,
            kind,
            target,
            intended_ms: due,
            early,
            lag_ms: lag(due, now),
            stalled_ms: 0,
        });
    }
}
