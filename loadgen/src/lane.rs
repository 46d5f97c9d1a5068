//! A lane: one goose user driving a share of the fleet's devices, multiplexed on one
//! task. Devices are small records (`device.rs`) in a vector; what each waits for is
//! an entry in a timer heap (due time, device); requests go out on a bounded pool of
//! keep-alive connections per target (`transport.rs`) and come back through one set
//! of futures. No task, no timer and no connection per device: that is what lets a
//! million devices run on one machine (README, "Scale").
//!
//! Owns scheduling and bookkeeping; the device-side RFC 8628 rules are `device.rs`'s.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{FuturesUnordered, StreamExt};
use rand::rngs::SmallRng;
use rand::Rng;
use tokio::sync::mpsc;

use deviceflow_conformance::approver::{Action, Prompt};
use deviceflow_conformance::http::form_encode;

use crate::behaviour::Behaviour;
use crate::device::{self, classify, Device, Next, Phase, Plan};
use crate::fleet::Fleet;
use crate::flow::Outcome;
use crate::flow::{Kind, Rule};
use crate::stats::{Example, RunStats};
use crate::timeline::Answer;
use crate::transport::{self, Connection, Exchange, Form};
use crate::wheel::Wheel;

/// The timers' granularity, ms.
pub const TICK_MS: u32 = 4;

/// What a timer entry is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Due {
    Poll,
    ReplayCheck,
    Decide,
    /// With -t: the slot of a device that could not reach the server starts its next
    /// device (a second later, so an unreachable server is not hammered).
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
}

type Decision = (u32, Result<(), String>);

type InFlight = Pin<Box<dyn Future<Output = (Out, Exchange)> + Send>>;

/// Connections to one target.
struct Pool {
    idle: Vec<Connection>,
    open: usize,
    waiting: VecDeque<(Out, Instant)>,
}

pub struct Lane {
    fleet: Arc<Fleet>,
    devices: Vec<Device>,
    timers: Wheel<(u32, Due)>,
    /// Timers taken from the wheel, reused.
    due: Vec<(u32, (u32, Due))>,
    /// The next device id this lane starts, and the step between its ids.
    next_id: u64,
    step: u64,
    live: u64,
    pools: Vec<Pool>,
    /// Per target (the admin endpoint last): requests sent and answered.
    per_target: Vec<(u64, u64)>,
    max_per_pool: usize,
    inflight: FuturesUnordered<InFlight>,
    /// Decisions made by a non-admin approver's tasks: (device slot, result).
    decisions: (
        mpsc::UnboundedSender<Decision>,
        mpsc::UnboundedReceiver<Decision>,
    ),
    stats: RunStats,
    rng: SmallRng,
    /// Running sum and count of the required interval of polling devices, per
    /// behaviour, sampled every 5 s.
    intervals: [(u64, u64); 5],
    next_sample_ms: u32,
}

/// Appends `s` form-encoded (application/x-www-form-urlencoded), without allocating.
fn push_form_encoded(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => {
                out.push('%');
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 15)] as char);
            }
        }
    }
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
        let pools = (0..c.targets.len() + 1)
            .map(|_| Pool {
                idle: Vec::new(),
                open: 0,
                waiting: VecDeque::new(),
            })
            .collect();
        let max_per_pool = (c.connections / lanes as usize).max(1);
        let seed = c.seed ^ index;
        Lane {
            devices: Vec::new(),
            timers: Wheel::new(TICK_MS),
            due: Vec::new(),
            next_id: first,
            step,
            live: 0,
            per_target: vec![(0, 0); c.targets.len() + 1],
            pools,
            max_per_pool,
            inflight: FuturesUnordered::new(),
            decisions: mpsc::unbounded_channel(),
            stats: RunStats::default(),
            rng: device::rng_for(seed, u64::MAX),
            intervals: [(0, 0); 5],
            next_sample_ms: 0,
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

    /// Runs until every device of the lane has finished (or the run time is up), then
    /// hands its statistics to the fleet.
    pub async fn run(mut self) {
        self.fleet.begun();
        let deadline = self.fleet.config.run_time.map(|t| t.as_millis() as u32);
        let sleep = tokio::time::sleep(Duration::ZERO);
        tokio::pin!(sleep);
        loop {
            let now = self.now_ms();
            if deadline.is_some_and(|d| now >= d) {
                break;
            }
            while now >= self.next_sample_ms {
                self.sample_intervals();
            }
            // Devices due to start (without -t, each id once; with -t, a slot's next
            // device starts when the last one ends: see `finish`).
            while self.next_id < self.fleet.config.devices && self.start_ms(self.next_id) <= now {
                let id = self.next_id;
                self.next_id += self.step;
                self.start(id, self.start_ms(id));
            }
            let mut due = std::mem::take(&mut self.due);
            self.timers.take_due(now, &mut due);
            for (at, (slot, what)) in due.drain(..) {
                self.fire(slot, what, at);
            }
            self.due = due;
            if self.next_id >= self.fleet.config.devices
                && self.live == 0
                && self.inflight.is_empty()
            {
                break;
            }
            let mut wake = self.timers.next_fire().unwrap_or(u32::MAX);
            if self.next_id < self.fleet.config.devices {
                wake = wake.min(self.start_ms(self.next_id));
            }
            wake = wake.min(self.next_sample_ms);
            if let Some(d) = deadline {
                wake = wake.min(d);
            }
            // Timers fire on TICK_MS boundaries, never early: a wake-up serves every
            // device due in the tick, so the thread sleeps and wakes far less often
            // than once per request, for at most TICK_MS of lateness.
            wake = wake.saturating_add(TICK_MS - 1) / TICK_MS * TICK_MS;
            sleep.as_mut().reset(self.at(wake).into());
            tokio::select! {
                Some((out, x)) = self.inflight.next(), if !self.inflight.is_empty() => {
                    self.complete(out, x);
                    // Take whatever else is ready before looking at timers again.
                    while let Some(Some((out, x))) = futures_util::FutureExt::now_or_never(self.inflight.next()) {
                        self.complete(out, x);
                    }
                }
                Some((slot, result)) = self.decisions.1.recv() => self.decided(slot, result),
                _ = &mut sleep => {}
            }
        }
        // Whatever is still running when the lane stops is unfinished.
        for slot in 0..self.devices.len() {
            if self.devices[slot].phase != Phase::Done {
                self.devices[slot].finish(Outcome::Unfinished);
                self.fold(slot as u32);
            }
        }
        self.sample_intervals();
        let c = &self.fleet.config;
        for (i, (sent, answered)) in self.per_target.iter().enumerate() {
            let target = c.targets.get(i).or(c.admin.as_ref().map(|a| &a.target));
            if let (Some(t), true) = (target, *sent > 0) {
                let e = self.stats.hosts.entry(t.host.to_string()).or_default();
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

    fn start(&mut self, id: u64, intended_ms: u32) {
        let c = &self.fleet.config;
        let mut rng = device::rng_for(c.seed, id);
        let behaviour = c.mix.pick(rng.gen_range(0..100));
        let plan = c.people.plan(behaviour, &mut rng);
        let slot = self.devices.len() as u32;
        self.devices.push(Device::new(id, behaviour, plan));
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
        });
    }

    fn fire(&mut self, slot: u32, what: Due, due: u32) {
        let d = &mut self.devices[slot as usize];
        match what {
            Due::Restart => {
                let id = d.id + self.fleet.config.devices;
                self.start(id, due);
            }
            Due::Decide => {
                if d.phase == Phase::Done {
                    return;
                }
                let approve = self.pools.len() as u16 - 1;
                self.send(Out {
                    slot,
                    kind: Kind::Approve,
                    target: approve,
                    intended_ms: due,
                    early: false,
                });
            }
            Due::Poll => {
                if d.phase != Phase::Polling {
                    return;
                }
                // The person in front of the device gives up after --max-flow.
                if let Some(m) = self.fleet.config.max_flow {
                    if due.saturating_sub(d.issued_ms) > m.as_millis() as u32 {
                        d.finish(Outcome::Unfinished);
                        self.finish(slot);
                        return;
                    }
                }
                let early = d.poll_going_out(due);
                let target = ((d.id + u64::from(d.requests))
                    % self.fleet.config.targets.len() as u64) as u16;
                self.send(Out {
                    slot,
                    kind: Kind::Poll,
                    target,
                    intended_ms: due,
                    early,
                });
            }
            Due::ReplayCheck => {
                let target = ((d.id + 1) % self.fleet.config.targets.len() as u64) as u16;
                self.send(Out {
                    slot,
                    kind: Kind::ReplayCheck,
                    target,
                    intended_ms: due,
                    early: false,
                });
            }
        }
    }

    fn form(&self, out: &Out) -> Form {
        let c = &self.fleet.config;
        let d = &self.devices[out.slot as usize];
        match out.kind {
            Kind::Issue => Form {
                path: c.issue_uri.clone(),
                body: c.issue_body.clone(),
                authorization: c.client_authorization.clone(),
            },
            Kind::Poll | Kind::ReplayCheck => {
                // RFC 8628 §3.4: grant_type and device_code, plus the client.
                let mut body = String::with_capacity(c.client_params.len() + 120);
                body.push_str("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=");
                push_form_encoded(&mut body, &d.device_code);
                body.push_str(&c.client_params);
                Form {
                    path: c.token_uri.clone(),
                    body,
                    authorization: c.client_authorization.clone(),
                }
            }
            Kind::Approve => {
                let admin = c
                    .admin
                    .as_ref()
                    .expect("Decide is scheduled only with an admin approver");
                let action = if matches!(d.plan, Plan::Deny { .. }) {
                    "deny"
                } else {
                    "approve"
                };
                Form {
                    path: admin.uri.clone(),
                    body: format!(
                        "user_code={}&action={action}&user={}",
                        form_encode(&d.user_code),
                        form_encode(&admin.user)
                    ),
                    authorization: Some(admin.authorization.clone()),
                }
            }
        }
    }

    fn send(&mut self, out: Out) {
        let pool = &mut self.pools[out.target as usize];
        let connection = match pool.idle.pop() {
            Some(c) => Some(c),
            None if pool.open < self.max_per_pool => {
                pool.open += 1;
                self.fleet.live.connections.fetch_add(1, Relaxed);
                None
            }
            None => {
                pool.waiting.push_back((out, Instant::now()));
                self.stats.waited_for_connection += 1;
                return;
            }
        };
        self.go(out, connection);
    }

    fn go(&mut self, out: Out, connection: Option<Connection>) {
        let c = &self.fleet.config;
        let target = if (out.target as usize) < c.targets.len() {
            c.targets[out.target as usize].clone()
        } else {
            c.admin
                .as_ref()
                .map(|a| a.target.clone())
                .unwrap_or_else(|| c.targets[0].clone())
        };
        let form = self.form(&out);
        let timeout = c.request_timeout;
        self.inflight.push(Box::pin(async move {
            (
                out,
                transport::exchange(connection, target, form, timeout).await,
            )
        }));
    }

    fn complete(&mut self, out: Out, x: Exchange) {
        let now = self.now_ms();
        // The connection goes back to its pool, or is counted closed.
        let pool = &mut self.pools[out.target as usize];
        if x.opened {
            self.stats.connections_opened += 1;
        }
        match x.connection {
            Some(c) => pool.idle.push(c),
            None => {
                pool.open -= 1;
                self.fleet.live.connections.fetch_sub(1, Relaxed);
            }
        }
        if let Some((next, queued)) = pool.waiting.pop_front() {
            let waited = queued.elapsed().as_millis() as u64;
            self.stats.max_connection_wait_ms = self.stats.max_connection_wait_ms.max(waited);
            self.send(next);
        }

        let intended = self.at(out.intended_ms);
        let late_us = x.sent.saturating_duration_since(intended).as_micros() as u64;
        let total_us = x.done.saturating_duration_since(intended).as_micros() as u64;
        let server_us = x.done.saturating_duration_since(x.sent).as_micros() as u64;
        let t = &mut self.per_target[out.target as usize];
        t.0 += 1;
        t.1 += u64::from(x.result.is_ok());
        let k = self.stats.kind(out.kind);
        k.sent += 1;
        k.lateness_us.record(late_us);
        if x.retried_unsent {
            k.retried_unsent += 1;
        }
        self.stats.timeline.request(
            out.kind,
            out.intended_ms,
            x.result.is_ok(),
            late_us,
            total_us,
        );
        let answer = match x.result {
            Ok(a) => {
                let k = self.stats.kind(out.kind);
                k.answered += 1;
                *k.status.entry(a.status).or_default() += 1;
                k.latency_us.record(total_us);
                k.server_us.record(server_us);
                a
            }
            Err(e) => {
                self.stats.kind(out.kind).transport[e.cause.index()] += 1;
                self.stats
                    .transport_examples
                    .entry(e.cause)
                    .or_insert(e.message);
                self.fleet.live.transport_errors.fetch_add(1, Relaxed);
                let b = self.devices[out.slot as usize].behaviour;
                self.stats.behaviour(b).transport_errors += 1;
                self.failed(out, now);
                return;
            }
        };
        match out.kind {
            Kind::Issue => self.issued(out.slot, now, answer.status, &answer.body),
            Kind::Poll => self.polled(out, now, answer.status, &answer.body),
            Kind::ReplayCheck => {
                let (a, detail) = classify(answer.status, &answer.body);
                if a == Answer::Token {
                    self.violation(
                        out.slot,
                        Rule::SecondToken,
                        &out,
                        now,
                        answer.status,
                        &answer.body,
                        "a token for a device code already redeemed",
                    );
                } else if let Some(d) = detail.filter(|d| d != "invalid_grant") {
                    if a == Answer::Error {
                        *self
                            .stats
                            .kind(Kind::ReplayCheck)
                            .unexpected
                            .entry(d)
                            .or_default() += 1;
                    }
                }
                self.finish(out.slot);
            }
            Kind::Approve => {
                let result = if answer.status == 200 {
                    Ok(())
                } else {
                    Err(format!(
                        "the admin endpoint refused: HTTP {} {}",
                        answer.status,
                        String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
                    ))
                };
                self.decided(out.slot, result);
            }
        }
    }

    /// A request got no answer: never a poll, never a violation.
    fn failed(&mut self, out: Out, now: u32) {
        match out.kind {
            Kind::Issue => {
                self.devices[out.slot as usize].finish(Outcome::Unreached);
                self.finish(out.slot);
            }
            Kind::Poll => match self.devices[out.slot as usize].poll_failed(now) {
                Next::Poll(at) => self.timers.push(at, (out.slot, Due::Poll)),
                _ => self.finish(out.slot),
            },
            Kind::ReplayCheck => self.finish(out.slot),
            Kind::Approve => self.decided(
                out.slot,
                Err("the admin endpoint could not be reached".into()),
            ),
        }
    }

    fn issued(&mut self, slot: u32, now: u32, status: u16, body: &[u8]) {
        let parsed = (status == 200)
            .then(|| {
                serde_json::from_slice::<deviceflow_wire::DeviceAuthorizationResponse>(body).ok()
            })
            .flatten();
        let Some(auth) = parsed else {
            let (_, detail) = classify(status, body);
            let what = match (status, detail) {
                (200, _) => {
                    "a 200 answer that is not a device authorization response (RFC 8628 §3.2)"
                        .to_owned()
                }
                (_, Some(d)) => d,
                (s, None) => format!("HTTP {s}"),
            };
            *self
                .stats
                .kind(Kind::Issue)
                .unexpected
                .entry(what)
                .or_default() += 1;
            self.devices[slot as usize].finish(Outcome::Error);
            self.finish(slot);
            return;
        };
        let c = Arc::clone(&self.fleet);
        let c = &c.config;
        let d = &mut self.devices[slot as usize];
        let next = d.authorized(
            now,
            &auth.device_code,
            &auth.user_code,
            auth.expires_in,
            auth.interval,
            &mut self.rng,
        );
        let (behaviour, interval, plan) = (d.behaviour, d.interval, d.plan);
        let b = self.stats.behaviour(behaviour);
        *b.expires_in.entry(auth.expires_in).or_default() += 1;
        *b.interval.entry(u64::from(interval)).or_default() += 1;
        b.max_required_interval_s = b.max_required_interval_s.max(u64::from(interval));
        let i = behaviour_index(behaviour);
        self.intervals[i].0 += u64::from(interval);
        self.intervals[i].1 += 1;
        self.devices[slot as usize].sampled = true;
        if let Some(want) = c.expect.expires_in.filter(|&w| w != auth.expires_in) {
            let why = format!("expires_in {} where {want} was expected", auth.expires_in);
            self.violation_issue(slot, Rule::ExpiresIn, now, body, why);
        }
        if let Some(want) = c.expect.interval.filter(|&w| w != u64::from(interval)) {
            let why = format!("interval {interval} where {want} was expected");
            self.violation_issue(slot, Rule::Interval, now, body, why);
        }
        if let Next::Poll(at) = next {
            self.timers.push(at, (slot, Due::Poll));
        }
        // The person, in parallel.
        if let Plan::Approve { after_ms } | Plan::Deny { after_ms } = plan {
            if c.admin.is_some() {
                self.timers.push(now + after_ms, (slot, Due::Decide));
            } else if c.approver.is_available() {
                let action = if matches!(plan, Plan::Deny { .. }) {
                    Action::Deny
                } else {
                    Action::Approve
                };
                let prompt = Prompt {
                    user_code: auth.user_code,
                    verification_uri: auth.verification_uri,
                    verification_uri_complete: auth.verification_uri_complete,
                };
                let approver = c.approver.clone();
                let tx = self.decisions.0.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(u64::from(after_ms))).await;
                    let r = approver.decide(&prompt, action).await;
                    let _ = tx.send((slot, r));
                });
            }
        }
    }

    fn polled(&mut self, out: Out, now: u32, status: u16, body: &[u8]) {
        let (answer, detail) = classify(status, body);
        self.stats.timeline.poll_answer(out.intended_ms, answer);
        self.fleet.live.polls.fetch_add(1, Relaxed);
        if let (Answer::Error, Some(d)) = (answer, detail) {
            *self.stats.kind(Kind::Poll).unexpected.entry(d).or_default() += 1;
        }
        let d = &mut self.devices[out.slot as usize];
        let before = d.required_s();
        let (next, rule) = d.polled(out.intended_ms, now, out.early, answer, &mut self.rng);
        let (behaviour, after) = (d.behaviour, d.required_s());
        if after != before && d.sampled {
            let i = behaviour_index(behaviour);
            self.intervals[i].0 += u64::from(after - before);
            let b = self.stats.behaviour(behaviour);
            b.max_required_interval_s = b.max_required_interval_s.max(u64::from(after));
        }
        if let Some(rule) = rule {
            let why = match rule {
                Rule::PendingAfterExpiry => "pending more than 2 s after issued + expires_in",
                Rule::PendingAfterDenial => "pending though the person denied 2 intervals before",
                Rule::TokenAfterExpiry => "a token more than 2 s after issued + expires_in",
                Rule::TokenAfterDenial => "a token though the person denied",
                Rule::TokenNobodyApproved => "a token though nobody approved",
                Rule::DeniedWithoutDenial => "access_denied though the person did not deny",
                _ => "",
            };
            self.violation(out.slot, rule, &out, now, status, body, why);
        }
        match next {
            Next::Poll(at) => self.timers.push(at, (out.slot, Due::Poll)),
            Next::ReplayCheck(at) if self.fleet.config.verify_single_use => {
                self.stop_polling(out.slot);
                self.timers.push(at, (out.slot, Due::ReplayCheck));
            }
            _ => self.finish(out.slot),
        }
    }

    fn decided(&mut self, slot: u32, result: Result<(), String>) {
        let now = self.now_ms();
        let d = &mut self.devices[slot as usize];
        match result {
            Ok(()) => d.decided_ms = now,
            Err(e) => {
                let b = d.behaviour;
                self.stats.behaviour(b).decision_errors += 1;
                if self.stats.decision_errors.len() < 5 {
                    self.stats.decision_errors.push(e);
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn violation(
        &mut self,
        slot: u32,
        rule: Rule,
        out: &Out,
        now: u32,
        status: u16,
        body: &[u8],
        why: &str,
    ) {
        let d = &mut self.devices[slot as usize];
        if !d.breaks(rule) {
            return;
        }
        let (id, behaviour) = (d.id, d.behaviour);
        let code: String = d.device_code.chars().take(8).collect();
        let path = &self.fleet.config.token_path;
        let _ = out;
        self.stats.behaviour(behaviour).violations += 1;
        self.stats.violation(rule, || Example {
            device: id,
            behaviour,
            request: format!("POST {path} grant_type=…device_code&device_code={code}…"),
            at_ms: u64::from(now),
            status,
            body: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
            why: why.to_owned(),
        });
    }

    fn violation_issue(&mut self, slot: u32, rule: Rule, now: u32, body: &[u8], why: String) {
        let d = &mut self.devices[slot as usize];
        if !d.breaks(rule) {
            return;
        }
        let (id, behaviour) = (d.id, d.behaviour);
        let path = &self.fleet.config.issue_path;
        self.stats.behaviour(behaviour).violations += 1;
        self.stats.violation(rule, || Example {
            device: id,
            behaviour,
            request: format!("POST {path}"),
            at_ms: u64::from(now),
            status: 200,
            body: String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned(),
            why,
        });
    }

    /// The device no longer polls: it leaves the interval samples.
    fn stop_polling(&mut self, slot: u32) {
        let d = &mut self.devices[slot as usize];
        if d.sampled {
            d.sampled = false;
            let i = behaviour_index(d.behaviour);
            self.intervals[i].0 = self.intervals[i]
                .0
                .saturating_sub(u64::from(d.required_s()));
            self.intervals[i].1 = self.intervals[i].1.saturating_sub(1);
        }
    }

    /// The device's flow is over: its numbers go into its behaviour's.
    fn finish(&mut self, slot: u32) {
        if self.devices[slot as usize].phase == Phase::ReplayCheck {
            self.devices[slot as usize].finish(Outcome::Token);
        } else if self.devices[slot as usize].phase != Phase::Done {
            self.devices[slot as usize].finish(Outcome::Unfinished);
        }
        self.fold(slot);
        // With -t, the slot starts its next device.
        if self.fleet.config.run_time.is_some() {
            let now = self.now_ms();
            if self.devices[slot as usize].outcome == Outcome::Unreached {
                self.timers.push(now + 1000, (slot, Due::Restart));
            } else {
                let id = self.devices[slot as usize].id + self.fleet.config.devices;
                self.start(id, now);
            }
        }
    }

    fn fold(&mut self, slot: u32) {
        self.stop_polling(slot);
        let d = &mut self.devices[slot as usize];
        let b = self.stats.behaviours.entry(d.behaviour).or_default();
        b.outcomes[d.outcome.index()] += 1;
        b.polls += u64::from(d.polls);
        if d.issued_ms != u32::MAX {
            b.polls_per_device.record(u64::from(d.polls));
        }
        b.slow_downs += u64::from(d.slow_downs);
        if d.slow_downs > 0 {
            b.devices_slowed_down += 1;
        }
        b.early_polls += u64::from(d.early_polls);
        b.early_polls_slowed += u64::from(d.early_slowed);
        if let (Some(dec), true) = (d.decided(), d.token_ms != u32::MAX) {
            b.time_to_token_ms
                .record(u64::from(d.token_ms.saturating_sub(dec)));
        }
        if d.outcome == Outcome::Expired {
            if let Some(e) = d.expiry_ms() {
                if d.first_expired_ms >= e {
                    b.expiry_lateness_ms
                        .record(u64::from(d.first_expired_ms - e));
                } else {
                    b.expired_early += 1;
                }
            }
        }
        let f = &self.fleet.live;
        f.finished.fetch_add(1, Relaxed);
        if d.outcome == Outcome::Token {
            f.tokens.fetch_add(1, Relaxed);
        }
        d.release();
        self.live -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_encoding_matches_the_conformance_suites() {
        for s in ["abc-_.*", "a b", "x+y/z=%", "é"] {
            let mut out = String::new();
            push_form_encoded(&mut out, s);
            assert_eq!(out, form_encode(s));
        }
    }
}
