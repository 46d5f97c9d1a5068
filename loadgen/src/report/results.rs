//! A run as it is stored (`run.json`, schema `deviceflow-loadgen/4`): its setup, the
//! raw mergeable statistics, the generator's health and the server's `/metrics`
//! window; and what is read off them: the trust verdict on transport errors and
//! whether the generator kept its schedule. `merge` adds shards' runs exactly.

use deviceflow_reports::format::fmt_count;
use serde::{Deserialize, Serialize};

use crate::device::behaviour::Behaviour;
use crate::device::flow::Kind;
use crate::device::People;
use crate::fleet::shard::Shard;
use crate::fleet::{Expectations, FleetConfig};
use crate::measure::health::HealthSample;
use crate::measure::resources::FdLimit;
use crate::measure::scrape::Window;
use crate::measure::stats::{Hdr, RunStats};
use crate::transport::Cause;

pub const SCHEMA: &str = "deviceflow-loadgen/4";

/// How the run was set up: enough to repeat it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setup {
    pub command: String,
    pub commit: String,
    pub cpu: String,
    /// Whether the generator was built with debug assertions (`cargo run` without
    /// `--release`): then its own work weighs on every latency it measures.
    pub debug_build: bool,
    pub hosts: Vec<String>,
    pub device_authorization_endpoint: String,
    pub token_endpoint: String,
    pub client_id: String,
    /// The environment variable the client's secret came from, when it did (not the
    /// command line): named in the header and where the server refuses the client,
    /// as a secret nobody typed is the last place one looks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret_from: Option<String>,
    /// Devices in the whole run (all shards).
    pub devices: u64,
    pub hatch_rate: f64,
    pub mix: Vec<(Behaviour, u32)>,
    pub people: People,
    pub expect: Expectations,
    pub approver: String,
    pub lanes: usize,
    pub connections: usize,
    /// Requests written at once on one connection, at most (1: no pipelining).
    #[serde(default = "one")]
    pub pipeline: usize,
    pub seed: u64,
    /// The share of failed sends above which the run is not trusted.
    pub max_transport_errors: f64,
}

fn one() -> usize {
    1
}

impl Setup {
    /// A setup block with what only the caller knows; the rest is filled in by
    /// [`crate::runner::run`].
    pub fn new(
        command: String,
        hosts: Vec<String>,
        config: &FleetConfig,
        client_id: &str,
        max_transport_errors: f64,
    ) -> Setup {
        let first = config.targets.first();
        let base = first.map_or(String::new(), |t| format!("http://{}", t.host));
        Setup {
            command,
            commit: git_commit(),
            cpu: cpu_model(),
            debug_build: cfg!(debug_assertions),
            hosts,
            device_authorization_endpoint: format!("{base}{}", config.issue_path),
            token_endpoint: format!("{base}{}", config.token_path),
            client_id: client_id.to_owned(),
            client_secret_from: None,
            devices: 0,
            hatch_rate: 0.0,
            mix: Vec::new(),
            people: config.people.clone(),
            expect: Expectations::default(),
            approver: String::new(),
            lanes: 0,
            connections: 0,
            pipeline: 1,
            seed: 0,
            max_transport_errors,
        }
    }

    /// What of the fleet `other` ran differs from this one's, beyond what any two
    /// shards of one run share (devices and seed are told apart before): merged, their
    /// counts would add up requests to other servers, clients or schedules, and the
    /// reconciliation would set one server's `/metrics` against another's.
    fn differs_from(&self, other: &Setup) -> Option<String> {
        let mix = |s: &Setup| {
            let parts: Vec<String> = s
                .mix
                .iter()
                .map(|(b, p)| format!("{}={p}", b.as_str()))
                .collect();
            parts.join(",")
        };
        let differ =
            |what: &str, a: String, b: String| (a != b).then(|| format!("{what} {a} against {b}"));
        differ("hosts", self.hosts.join(" "), other.hosts.join(" "))
            .or_else(|| differ("client", self.client_id.clone(), other.client_id.clone()))
            .or_else(|| {
                differ(
                    "endpoints",
                    format!(
                        "{} {}",
                        self.device_authorization_endpoint, self.token_endpoint
                    ),
                    format!(
                        "{} {}",
                        other.device_authorization_endpoint, other.token_endpoint
                    ),
                )
            })
            .or_else(|| {
                differ(
                    "-r",
                    self.hatch_rate.to_string(),
                    other.hatch_rate.to_string(),
                )
            })
            .or_else(|| differ("--mix", mix(self), mix(other)))
            .or_else(|| {
                (self.people != other.people
                    || self.expect != other.expect
                    || self.approver != other.approver)
                    .then(|| "the people, the approver or the expectations".to_owned())
            })
    }
}

/// One shard's (or a single run's) process: when, how long, and its resources.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ShardRun {
    pub shard: Shard,
    pub started_at_unix_ms: u64,
    pub duration_s: f64,
    pub fd_limit: FdLimit,
    /// VmHWM, MB (10^6 bytes).
    pub peak_rss_mb: Option<f64>,
    /// VmRSS when the run began (the generator without devices), MB.
    #[serde(default)]
    pub rss_at_start_mb: Option<f64>,
    /// User + system CPU of the process while the run went, s.
    pub cpu_s: f64,
    pub health: Vec<HealthSample>,
    /// When the run was stopped before its end (Ctrl-C, or the generator), s since
    /// it began.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_at_s: Option<f64>,
    /// Why the generator stopped the run before its end (no device got a code:
    /// `fleet::NoCodeWatch`); absent when a signal stopped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_because: Option<String>,
    /// The signal that stopped the run before its end: "Ctrl-C" or "SIGTERM"
    /// (`stop.rs`). Absent otherwise, and in runs from before SIGTERM was handled, in
    /// which a stop without `stopped_because` was Ctrl-C's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_by: Option<String>,
}

/// The whole run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunData {
    pub schema: String,
    pub setup: Setup,
    pub shards: Vec<ShardRun>,
    pub duration_s: f64,
    pub stats: RunStats,
    /// The server's `/metrics` before and after, when it has them.
    pub metrics: Option<Window>,
    /// Why there is no reconciliation with the server's `/metrics` (a scrape failed),
    /// for each shard that has none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub no_reconciliation: Vec<String>,
}

impl RunData {
    /// Merges shards' runs, each named (its file) for the errors: statistics added
    /// exactly (timelines aligned on their start times), metrics windows widened,
    /// shards listed. The shards of one run run at the same time (README, "Several
    /// machines"): runs apart in time are refused ([`MAX_MERGE_GAP_S`]).
    pub fn merge(mut named: Vec<(String, RunData)>) -> Result<RunData, String> {
        if named.is_empty() {
            return Err("nothing to merge".to_owned());
        }
        named.sort_by_key(|(_, r)| r.shards.first().map_or(0, |s| s.started_at_unix_ms));
        check_together(&named)?;
        let runs: Vec<RunData> = named.into_iter().map(|(_, r)| r).collect();
        let t0 = runs
            .iter()
            .flat_map(|r| r.shards.iter().map(|s| s.started_at_unix_ms))
            .min()
            .unwrap_or(0);
        let end = runs
            .iter()
            .flat_map(|r| {
                r.shards
                    .iter()
                    .map(|s| s.started_at_unix_ms + (s.duration_s * 1000.0) as u64)
            })
            .max()
            .unwrap_or(t0);
        let mut it = runs.into_iter();
        let first = it.next().expect("not empty");
        let mut out = RunData {
            schema: SCHEMA.to_owned(),
            setup: first.setup.clone(),
            shards: Vec::new(),
            duration_s: (end - t0) as f64 / 1000.0,
            stats: RunStats::default(),
            metrics: None,
            no_reconciliation: Vec::new(),
        };
        for r in std::iter::once(first).chain(it) {
            if r.schema != SCHEMA {
                return Err(format!(
                    "a run of schema {} cannot be merged into {SCHEMA}",
                    r.schema
                ));
            }
            if r.setup.devices != out.setup.devices || r.setup.seed != out.setup.seed {
                return Err(format!(
                    "the shards are of different runs ({} devices, seed {} against {} devices, seed {})",
                    r.setup.devices, r.setup.seed, out.setup.devices, out.setup.seed
                ));
            }
            if let Some(what) = r.setup.differs_from(&out.setup) {
                return Err(format!(
                    "the shards are of different runs: {what}; give every shard the same options but --shard"
                ));
            }
            let count = out
                .shards
                .first()
                .or(r.shards.first())
                .map(|s| s.shard.count);
            if let Some(s) = r.shards.iter().find(|s| Some(s.shard.count) != count) {
                return Err(format!(
                    "the shards are of different runs: one is shard {} and another of {} shards",
                    s.shard,
                    count.unwrap_or_default()
                ));
            }
            // One debug-built shard is enough for its latencies to weigh on the whole.
            out.setup.debug_build |= r.setup.debug_build;
            let start = r.shards.first().map_or(t0, |s| s.started_at_unix_ms);
            let offset = ((start - t0) / 1000) as usize;
            out.stats.add(&r.stats, offset);
            if let Some(w) = &r.metrics {
                out.metrics.get_or_insert_with(Window::default).merge(w);
            }
            out.no_reconciliation.extend(r.no_reconciliation);
            for s in r.shards {
                if out.shards.iter().any(|x| x.shard == s.shard) {
                    return Err(format!("shard {} is given twice", s.shard));
                }
                out.shards.push(s);
            }
        }
        out.shards.sort_by_key(|s| s.shard.index);
        Ok(out)
    }

    /// Whose failure `failed` requests without an answer were: those the server had
    /// (written whole on an open connection) are its own, the rest never reached it.
    pub fn no_answer_blame(&self, failed: u64) -> String {
        let mut blame = self.whose_failure(failed);
        if let Some(advice) = self.fd_advice() {
            blame.push_str(": ");
            blame.push_str(&advice);
        }
        blame
    }

    /// When requests failed for want of file descriptors (the generator's own limit,
    /// not the server's doing), what to do about it.
    fn fd_advice(&self) -> Option<String> {
        let fd: u64 = self
            .stats
            .kinds
            .values()
            .map(|k| k.transport[Cause::FdLimit.index()])
            .sum();
        if fd == 0 {
            return None;
        }
        let limit = self.shards.first().map(|s| s.fd_limit).unwrap_or_default();
        let which = if limit.soft == limit.hard {
            ", its hard limit".to_owned()
        } else {
            format!(", hard limit {}", fmt_count(limit.hard))
        };
        Some(format!(
            "the generator ran out of file descriptors (open-file limit {}{which}): raise it (ulimit -n; the hard limit in /etc/security/limits.conf, or LimitNOFILE for a service) or lower --connections",
            fmt_count(limit.soft)
        ))
    }

    /// [`RunData::no_answer_blame`] without the advice.
    fn whose_failure(&self, failed: u64) -> String {
        let reached = self.stats.reached_unanswered();
        let stalled = self.stats.stalled_unanswered();
        let unreached = failed.saturating_sub(reached).saturating_sub(stalled);
        if stalled > 0 {
            // The generator's own stall is named first: none of it is the server's.
            let rest = match (reached, unreached) {
                (0, 0) => String::new(),
                (0, _) => format!(", and {} never reached the server (the generator's or the network's)", fmt_count(unreached)),
                (_, 0) => format!(", and the server had {} of them and gave no answer (its failure)", fmt_count(reached)),
                _ => format!(
                    ", the server had {} of them and gave no answer (its failure), and {} never reached it (the generator's or the network's)",
                    fmt_count(reached),
                    fmt_count(unreached)
                ),
            };
            return format!(
                "{} timed out while the generator itself was stalled (paused or starved of CPU) for much of their wait, so their answers may have come unread (the generator's failure, not the server's){rest}, so the server's behaviour was not measured",
                fmt_count(stalled)
            );
        }
        // How the server failed them: an answer it sent that cannot be read (not
        // HTTP/1.1, or too large) is not a hang.
        let malformed: u64 = self
            .stats
            .kinds
            .values()
            .map(|k| k.transport[Cause::Malformed.index()])
            .sum();
        let how = match malformed {
            0 => "gave no answer in time (it hung, closed the connection, or was slower than --request-timeout".to_owned(),
            m if m >= reached => "answered what cannot be read (not HTTP/1.1, or over the size the generator reads, as the transport errors say".to_owned(),
            m => format!(
                "gave no answer that could be read ({} of them an answer that is not HTTP/1.1 or is too large; the rest hung, closed the connection, or were slower than --request-timeout",
                fmt_count(m)
            ),
        };
        match (reached, unreached) {
            (0, _) => "the devices could not reach the server, so its behaviour was not measured".to_owned(),
            (_, 0) => format!(
                "the server had all {} of them and {how}: its failure, not the generator's), so its RFC 8628 behaviour could not be measured",
                fmt_count(reached)
            ),
            _ => format!(
                "the server had {} of them and {how}: its failure), and {} never reached it (the generator's or the network's), so its behaviour was not measured",
                fmt_count(reached),
                fmt_count(unreached)
            ),
        }
    }

    /// When the run was stopped before its end (Ctrl-C, or the generator): the
    /// earliest shard's time.
    pub fn stopped_at_s(&self) -> Option<f64> {
        self.shards
            .iter()
            .filter_map(|s| s.stopped_at_s)
            .reduce(f64::min)
    }

    /// When and why the generator stopped the run before its end (no device got a
    /// code), the earliest shard's; `None` for a run that ran its course or that
    /// Ctrl-C stopped.
    pub fn stopped_early(&self) -> Option<(f64, &str)> {
        self.shards
            .iter()
            .filter_map(|s| Some((s.stopped_at_s?, s.stopped_because.as_deref()?)))
            .min_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// When a signal stopped the run, not the generator, and which: the earliest
    /// shard's, named as [`crate::stop::Signal::as_str`] ("Ctrl-C" when the run does
    /// not say, as runs from before SIGTERM was handled).
    pub fn stopped_by_signal(&self) -> Option<(f64, &str)> {
        self.shards
            .iter()
            .filter(|s| s.stopped_because.is_none())
            .filter_map(|s| Some((s.stopped_at_s?, s.stopped_by.as_deref().unwrap_or("Ctrl-C"))))
            .min_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// Requests sent, and those that got no answer.
    pub fn transport(&self) -> (u64, u64) {
        (self.stats.sent(), self.stats.transport_errors())
    }

    /// Why the run cannot be trusted, in one line: too many sends failed in transport
    /// (the generator did not reach the server), nothing was answered at all, or no
    /// device got a code ([`RunData::no_code_reason`]); and when the generator stopped
    /// the run early for it, when and why.
    pub fn untrusted_reason(&self) -> Option<String> {
        // A run cut short is not the run asked for, even were a code to come after
        // the stop (an answer already on its way).
        let early = self
            .stopped_early()
            .map(|(at_s, why)| format!("the run was stopped early, at {at_s:.1} s: {why}"));
        match (self.untrusted_by_answers(), early) {
            (Some(reason), Some(early)) => Some(format!("{reason}; {early}")),
            (reason, early) => reason.or(early),
        }
    }

    /// [`RunData::untrusted_reason`], without the early stop.
    fn untrusted_by_answers(&self) -> Option<String> {
        let (sent, failed) = self.transport();
        let share = if sent == 0 {
            1.0
        } else {
            failed as f64 / sent as f64
        };
        if sent > 0 && share <= self.setup.max_transport_errors {
            return self.no_code_reason();
        }
        let mut causes: Vec<(Cause, u64)> = Cause::ALL
            .iter()
            .map(|c| {
                (
                    *c,
                    self.stats
                        .kinds
                        .values()
                        .map(|k| k.transport[c.index()])
                        .sum(),
                )
            })
            .filter(|(_, n)| *n > 0)
            .collect();
        causes.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
        let by: Vec<String> = causes
            .iter()
            .map(|(c, n)| format!("{} {}", c.as_str(), fmt_count(*n)))
            .collect();
        Some(if sent == 0 {
            "no request was sent".to_owned()
        } else {
            format!(
                "{} of {} requests ({:.1} %) got no answer ({}), above --max-transport-errors {} %: {}",
                fmt_count(failed),
                fmt_count(sent),
                share * 100.0,
                by.join(", "),
                self.setup.max_transport_errors * 100.0,
                self.no_answer_blame(failed)
            )
        })
    }

    /// Why nothing of the server's RFC 8628 behaviour was measured though it answered:
    /// every device authorization it answered was refused (a wrong `--client-id`, a
    /// wrong endpoint, an error page), so no device got a code to poll with; or every
    /// poll it answered got an answer no device understands (RFC 8628 §3.5), so no
    /// flow went anywhere (helper-100: a new error code for every poll had been a
    /// trusted run, exit 0, "no violation could be seen"). In one line: what came
    /// instead, the commonest first, and what to check.
    pub fn no_code_reason(&self) -> Option<String> {
        if let Some(what) = self.all_unexpected(Kind::Issue, "device authorization") {
            return Some(format!(
                "no device got a code: {what}; the server's RFC 8628 behaviour was not measured"
            ));
        }
        self.all_unexpected(Kind::Poll, "poll").map(|what| {
            format!(
                "no poll got an answer a device understands (RFC 8628 §3.5): {what}; the server's RFC 8628 behaviour was not measured"
            )
        })
    }

    /// What every answered request of `kind` (`noun` in words) got instead of an
    /// answer a device understands, with what to check; `None` unless every one did.
    fn all_unexpected(&self, kind: Kind, noun: &str) -> Option<String> {
        let stats = self.stats.kinds.get(&kind)?;
        // Every answer a device does not understand is counted among the unexpected
        // ones (`lane/answers.rs`).
        let refused: u64 = stats.unexpected.values().sum();
        if stats.answered == 0 || refused < stats.answered {
            return None;
        }
        let mut answers: Vec<(&str, u64)> = stats
            .unexpected
            .iter()
            .map(|(what, n)| (what.as_str(), *n))
            .collect();
        answers.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        // The status, when one status answered them all (the error code alone does
        // not say it; the other descriptions do).
        let one_status = (stats.status.len() == 1)
            .then(|| stats.status.keys().next().copied())
            .flatten();
        let described = |what: &str| match one_status {
            Some(s) if !what.starts_with("HTTP ") && !what.starts_with("a 200 ") => {
                format!("HTTP {s} {what}")
            }
            _ => what.to_owned(),
        };
        let (option, endpoint) = match kind {
            Kind::Issue => (
                "--device-authorization-endpoint",
                "device authorization endpoint",
            ),
            _ => ("--token-endpoint", "token endpoint"),
        };
        let (commonest, _) = answers[0];
        let hint =
            match (commonest, one_status) {
                ("invalid_client" | "unauthorized_client", _) => {
                    match &self.setup.client_secret_from {
                    Some(var) => format!(
                        ": check --client-id and the secret in {var} (the client's secret came from it: unset it, or give --client-secret \"\" for a public client)"
                    ),
                    None => {
                        ": check --client-id (and --client-secret for a confidential client)"
                            .to_owned()
                    }
                }
                }
                ("invalid_scope", _) => ": check --scope".to_owned(),
                (_, Some(404 | 405)) => format!(": check {option}"),
                (_, Some(300..=399)) => {
                    format!(": check --host and {option} (is the endpoint elsewhere, or https://?)")
                }
                (_, Some(429 | 503)) => {
                    ": the server's rate limits or quotas refused them".to_owned()
                }
                (what, _)
                    if what.contains("not a JSON object")
                        || what.contains("not JSON (expected value") =>
                {
                    format!(": check {option} (is it a {endpoint}?)")
                }
                _ => String::new(),
            };
        let what = if answers.len() == 1 {
            format!(
                "{} answered {}",
                if stats.answered == 1 {
                    format!("the one {noun} was")
                } else {
                    format!("all {} {noun}s were", fmt_count(stats.answered))
                },
                described(commonest)
            )
        } else {
            let shown: Vec<String> = answers
                .iter()
                .take(3)
                .map(|(what, n)| format!("{} {}", fmt_count(*n), described(what)))
                .collect();
            format!(
                "the {} {noun}s were answered {}{}",
                fmt_count(stats.answered),
                shown.join(", "),
                if answers.len() > 3 { ", …" } else { "" }
            )
        };
        Some(format!("{what}{hint}"))
    }

    /// The generator's CPU per request sent, µs.
    pub fn cpu_us_per_request(&self) -> Option<f64> {
        let sent = self.stats.sent();
        let cpu: f64 = self.shards.iter().map(|s| s.cpu_s).sum();
        (sent > 0).then(|| cpu * 1e6 / sent as f64)
    }

    /// Lateness (intended to sent) of polls, all kinds together.
    pub fn lateness(&self, kind: Option<Kind>) -> Hdr {
        let mut h = Hdr::default();
        for (k, s) in &self.stats.kinds {
            if kind.is_none_or(|x| x == *k) {
                h.add(&s.lateness_us);
            }
        }
        h
    }

    /// Peak RSS above the RSS at start, per device, bytes (of the shards together).
    pub fn bytes_per_device(&self) -> Option<f64> {
        let grown: f64 = self
            .shards
            .iter()
            .filter_map(|s| Some(s.peak_rss_mb? - s.rss_at_start_mb.unwrap_or(0.0)))
            .sum();
        let devices = self.stats.devices();
        (devices > 0 && grown > 0.0).then(|| grown * 1e6 / devices as f64)
    }

    /// Requests went out late because every connection of the generator's pool was
    /// busy. By Little's law a pool of N connections a host, each busy for the
    /// server's time per request, carries at most N ÷ that time requests a second:
    /// a schedule that calls for more waits for a connection, however fast or slow
    /// the server is. The wait is the generator's (its `--connections`), never the
    /// server's, which the "server p99" column measures apart.
    fn pool_verdict(
        &self,
        slow_seconds: usize,
        p99: f64,
        server_p99_ms: f64,
        server_mean_us: Option<f64>,
    ) -> String {
        let connections = self.setup.connections.max(1);
        let hosts = self.setup.hosts.len().max(1);
        let carried = server_mean_us
            .filter(|us| *us > 0.0)
            .map(|us| (connections * hosts) as f64 * 1e6 / us);
        let capacity = match (carried, server_mean_us) {
            (Some(per_s), Some(us)) => format!(
                " ({} ms a request on average), so {} connections a host carry at most {} requests a second (Little's law: connections ÷ time per request), fewer than the schedule called for",
                ms_text(us / 1000.0),
                fmt_count(connections as u64),
                fmt_count(per_s.round() as u64)
            ),
            _ => String::new(),
        };
        format!(
            "Requests went out late in {slow_seconds} {} (lateness p99 over 100 ms; {p99:.0} ms over the run) because every one of the generator's {} connections a host was busy, while the server answered each in {server_p99_ms:.1} ms at p99{capacity}: the generator's pool (--connections) was the bottleneck, not the server, and the latencies from the intended send time include its wait (the server's own time is the \"server p99\" column). Real devices each have a connection of their own: raise --connections (or --pipeline) to measure the server at this load.",
            seconds(slow_seconds),
            fmt_count(connections as u64)
        )
    }

    /// Whether the generator was starved of CPU: its threads waited, runnable, for a
    /// CPU ([`HealthSample::cpu_wait_ms`]) for [`STARVED_SHARE`] of the run or more,
    /// or [`STARVED_MS_IN_A_SECOND`] in some second. Starved, it sends on time (its
    /// lateness looks fine) but reads answers late, so the server's time takes in
    /// the wait: the sentence that says so, or `None`.
    fn starved(&self) -> Option<String> {
        let health = || self.shards.iter().flat_map(|s| s.health.iter());
        let waited_ms: f64 = health().map(|h| h.cpu_wait_ms).sum();
        let worst_ms = health().map(|h| h.cpu_wait_ms).fold(0.0, f64::max);
        let run_ms: f64 = self.shards.iter().map(|s| s.duration_s * 1000.0).sum();
        let share = if run_ms > 0.0 {
            waited_ms / run_ms
        } else {
            0.0
        };
        (share >= STARVED_SHARE || worst_ms >= STARVED_MS_IN_A_SECOND).then(|| {
            format!(
                "its threads waited {waited_ms:.0} ms in all for a CPU while they could run ({:.1} % of the run, up to {worst_ms:.0} ms in one second; Linux's run-queue wait): another process or too few cores kept the generator from reading answers on time, so the latencies, the server's p99 included, hold that wait and are not the server's alone.",
                share * 100.0
            )
        })
    }

    /// Whether the generator kept its schedule, in words, with the evidence.
    pub fn generator_verdict(&self) -> String {
        let late = self.lateness(None);
        let p99 = late.quantile(0.99).map_or(0.0, |us| us as f64 / 1000.0);
        let late_seconds: Vec<f64> = self
            .stats
            .timeline
            .seconds
            .iter()
            .enumerate()
            .filter(|(_, s)| s.lateness().quantile_ms(0.99).is_some_and(|p| p > 100.0))
            .map(|(t, _)| t as f64)
            .collect();
        let slow_seconds = late_seconds.len();
        // The worst second's lateness, which a wait for a connection must explain
        // before the server is blamed for it.
        let worst_ms = self
            .stats
            .timeline
            .seconds
            .iter()
            .filter_map(|s| s.lateness().quantile_ms(0.99))
            .fold(0.0, f64::max);
        let health = || self.shards.iter().flat_map(|s| s.health.iter());
        let max_cpu = health().map(|h| h.cpu_pct).fold(0.0, f64::max);
        // The generator's own longest stretch of work around the late seconds (a
        // sample at t covers the second before it, and a stall delays what was due
        // in the second it began).
        let stalled_ms = health()
            .filter(|h| late_seconds.iter().any(|&s| h.t > s && h.t <= s + 2.0))
            .map(|h| h.longest_busy_ms)
            .fold(0.0, f64::max);
        let waited = self.stats.waited_for_connection;
        let longest_wait_ms = self.stats.max_connection_wait_ms as f64;
        // The server's own time (sent to answered) at p99, all kinds together: a pool
        // whose every connection was busy is the server's doing only if the server
        // was slow to answer on them, held to the same 100 ms as the lateness.
        let mut server = Hdr::default();
        for k in self.stats.kinds.values() {
            server.add(&k.server_us);
        }
        let server_p99_ms = server.quantile(0.99).map_or(0.0, |us| us as f64 / 1000.0);
        let starved = self.starved();
        // Waits for a connection long enough to explain the worst second's lateness.
        let waits_explain = waited > 0 && longest_wait_ms * 2.0 >= worst_ms;
        // A stall of the lane's thread leaves answers unread and so its connections
        // busy, for about as long as it lasts: waits far longer than the longest stall
        // are the pool's (1M devices at 10k/s: a 151 ms stall, waits up to 20 s), and
        // the stall is the lesser contributor.
        let pool_dominates = waits_explain && longest_wait_ms > stalled_ms;
        let mut out = if p99 < 100.0 && slow_seconds == 0 {
            match &starved {
                Some(why) => format!(
                    "The generator sent on its schedule (requests went out {p99:.1} ms after their intended time at p99, never over 100 ms in any second), but {why}"
                ),
                None => format!(
                    "The generator kept its schedule: requests went out {p99:.1} ms after their intended time at p99 (never over 100 ms in any second), so the latencies are the server's."
                ),
            }
        } else if let Some(why) = &starved {
            // Starved of CPU, the generator left answers unread and so its connections
            // busy: its pool, its own work and the server's time all hold that wait,
            // and none of them is the cause to name (helper-100: a starved run had
            // blamed the pool, and quoted a server p99 of 11 s from a server that
            // answered in 1 ms).
            format!(
                "The generator fell behind its schedule in {slow_seconds} {} (lateness p99 over 100 ms; {p99:.0} ms over the run) because {why}",
                seconds(slow_seconds)
            )
        } else if stalled_ms >= 50.0 && !pool_dominates {
            format!(
                "The generator fell behind its schedule in {slow_seconds} {} (lateness p99 over 100 ms; {p99:.0} ms over the run) because its own work held its thread for up to {stalled_ms:.0} ms at a time: in those seconds the generator, not the server, was the bottleneck, and the latencies include its delay.",
                seconds(slow_seconds)
            )
        } else if max_cpu < 90.0 && waits_explain {
            // Every connection was busy: a wait for one is the pool's, whatever the
            // server's speed. Real devices each have a connection of their own, and
            // the server's own time is measured apart (sent to answered).
            let mut v = self.pool_verdict(slow_seconds, p99, server_p99_ms, server.mean());
            if stalled_ms >= 50.0 {
                v.push_str(&format!(
                    " Besides, its own work also held its thread for up to {stalled_ms:.0} ms at a time, less than the longest wait for a connection ({} ms).",
                    fmt_count(longest_wait_ms as u64)
                ));
            }
            v
        } else if max_cpu < 90.0 {
            format!(
                "The generator fell behind its schedule in {slow_seconds} {} (lateness p99 over 100 ms; {p99:.0} ms over the run, {worst_ms:.0} ms in the worst second), and neither its own work (at most {stalled_ms:.0} ms at a time) nor waits for a connection (at most {longest_wait_ms:.0} ms) explain it: its process did not get the CPU on time (another process, a pause, a VM's steal). In those seconds the generator, not the server, was the bottleneck, and the latencies include its delay.",
                seconds(slow_seconds)
            )
        } else {
            format!(
                "The generator fell behind its schedule in {slow_seconds} {} (lateness p99 over 100 ms; {p99:.0} ms over the run; its CPU peaked at {max_cpu:.0} % of a core): in those seconds the generator, not the server, was the bottleneck, and the latencies include its delay.",
                seconds(slow_seconds)
            )
        };
        let sent: u64 = self.stats.kinds.values().map(|k| k.sent).sum();
        if self.setup.pipeline > 1 && self.stats.batches > 0 {
            out.push_str(&format!(
                " Requests were pipelined, up to {} on a connection: {} requests went out in {} batches ({:.1} a batch), each written at once, so a request's server time includes the server's time for those ahead of it in its batch.",
                self.setup.pipeline,
                fmt_count(sent),
                fmt_count(self.stats.batches),
                sent as f64 / self.stats.batches as f64
            ));
        }
        if waited > 0 {
            out.push_str(&format!(
                " {} requests waited for a free connection (longest {} ms).",
                fmt_count(waited),
                self.stats.max_connection_wait_ms
            ));
        }
        if self.stats.never_sent > 0 {
            // Never sent, they have no lateness: the schedule above is that of the
            // requests that went out (helper-100: a server that never answered had
            // its waits said as "longest 0 ms").
            out.push_str(&format!(
                " {} of them were still waiting when the run time was up, and never went out: every connection was busy with a request not answered yet.",
                fmt_count(self.stats.never_sent)
            ));
        }
        let fd = self
            .stats
            .kinds
            .values()
            .map(|k| k.transport[Cause::FdLimit.index()])
            .sum::<u64>();
        if fd > 0 {
            out.push_str(&format!(
                " {} requests failed for want of file descriptors (limit {}).",
                fmt_count(fd),
                self.shards.first().map_or(0, |s| s.fd_limit.soft)
            ));
        }
        out
    }
}

/// The share of a run its threads may wait for a CPU before the generator is
/// called starved (`RunData::starved`).
pub const STARVED_SHARE: f64 = 0.05;
/// The wait for a CPU in one second, ms, that calls the generator starved.
pub const STARVED_MS_IN_A_SECOND: f64 = 100.0;

/// The longest gap, s, between the time spans of runs that merge accepts: shards
/// started together by hand, or on machines whose clocks differ a little, may miss
/// each other by seconds; a gap beyond it is another run (the same command another
/// day), and the merged per-second timeline would hold every second of it.
pub const MAX_MERGE_GAP_S: u64 = 60;

/// Whether `named` runs (sorted by start) ran at the same time: each shard's span
/// (its start to its end) begins at most [`MAX_MERGE_GAP_S`] after the end of those
/// that began before it. The first gap beyond is refused in one line, naming both.
fn check_together(named: &[(String, RunData)]) -> Result<(), String> {
    let mut spans: Vec<(&str, &ShardRun)> = named
        .iter()
        .flat_map(|(name, r)| r.shards.iter().map(move |s| (name.as_str(), s)))
        .collect();
    spans.sort_by_key(|(_, s)| s.started_at_unix_ms);
    let end = |s: &ShardRun| s.started_at_unix_ms + (s.duration_s.max(0.0) * 1000.0) as u64;
    let mut latest: Option<(&str, &ShardRun)> = None;
    for (name, s) in spans {
        if let Some((before, b)) = latest {
            let gap_ms = s.started_at_unix_ms.saturating_sub(end(b));
            if gap_ms > MAX_MERGE_GAP_S * 1000 {
                return Err(format!(
                    "{name} (shard {}) started {} s after {before} (shard {}) ended: merge adds the shards of one run, run at the same time, and refuses a gap of more than {MAX_MERGE_GAP_S} s between them (start the shards together)",
                    s.shard,
                    fmt_count(gap_ms / 1000),
                    b.shard
                ));
            }
        }
        if latest.is_none_or(|(_, b)| end(s) > end(b)) {
            latest = Some((name, s));
        }
    }
    Ok(())
}

/// A time in ms with the digits it deserves (0.53, 12, 500).
fn ms_text(ms: f64) -> String {
    if ms >= 10.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.1}")
    }
}

fn seconds(n: usize) -> &'static str {
    if n == 1 {
        "second"
    } else {
        "seconds"
    }
}

/// The commit this run was built from, for its setup block.
pub fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The CPU model and core count, for the setup block.
pub fn cpu_model() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{model} ({cores} cores)")
}

/// Runs made up for the tests of the report's parts.
#[cfg(test)]
pub(crate) mod sample {
    use super::*;

    use deviceflow_conformance::{Approver, Client};

    /// A run whose polls due in second 5 went out 150 ms late, with the generator's
    /// longest stretch of its own work in that second and the requests that waited
    /// for a connection as given.
    pub(crate) fn late_in_second_5(busy_ms: f64, waited: u64, longest_wait_ms: u64) -> RunData {
        late_in_second_5_server(busy_ms, waited, longest_wait_ms, 150_000)
    }

    /// Second 5's polls went out 150 ms late; the server took `server_us` on each.
    pub(crate) fn late_in_second_5_server(
        busy_ms: f64,
        waited: u64,
        longest_wait_ms: u64,
        server_us: u64,
    ) -> RunData {
        let host = "http://127.0.0.1:9".to_owned();
        let config = crate::fleet::FleetConfig::new(
            std::slice::from_ref(&host),
            &format!("{host}/d"),
            &format!("{host}/t"),
            &Client::public("tv"),
            None,
            Approver::None,
        )
        .unwrap();
        let mut stats = RunStats::default();
        for _ in 0..100 {
            stats.kind(Kind::Poll).sent += 1;
            stats.kind(Kind::Poll).lateness_us.record(150_000);
            stats.kind(Kind::Poll).server_us.record(server_us);
            stats
                .timeline
                .request(Kind::Poll, 5_500, true, 150_000, Some(155_000));
        }
        stats.waited_for_connection = waited;
        stats.max_connection_wait_ms = longest_wait_ms;
        let sample = |t: f64, busy: f64| HealthSample {
            t,
            cpu_pct: 20.0,
            longest_busy_ms: busy,
            ..HealthSample::default()
        };
        RunData {
            schema: SCHEMA.into(),
            setup: Setup::new("test".into(), vec![host], &config, "tv", 0.01),
            shards: vec![ShardRun {
                shard: Shard::default(),
                started_at_unix_ms: 0,
                duration_s: 10.0,
                fd_limit: FdLimit::default(),
                peak_rss_mb: None,
                rss_at_start_mb: None,
                cpu_s: 1.0,
                health: vec![sample(5.0, 1.0), sample(6.0, busy_ms), sample(7.0, 1.0)],
                stopped_at_s: None,
                stopped_because: None,
                stopped_by: None,
            }],
            duration_s: 10.0,
            stats,
            metrics: None,
            no_reconciliation: Vec::new(),
        }
    }

    /// Shard `index` of 2 of one run, started at `start_ms` and lasting `duration_s`.
    pub(crate) fn shard_at(index: u64, start_ms: u64, duration_s: f64) -> RunData {
        let mut r = late_in_second_5(1.0, 0, 0);
        r.shards[0].shard = Shard { index, count: 2 };
        r.shards[0].started_at_unix_ms = start_ms;
        r.shards[0].duration_s = duration_s;
        r.duration_s = duration_s;
        r
    }
}

#[cfg(test)]
mod tests {
    use super::sample::{late_in_second_5, late_in_second_5_server, shard_at};
    use super::*;

    /// The same command run a day apart (or an hour) is not two shards of one run:
    /// merge had accepted them, and the per-second timeline held every second of the
    /// gap (about 5 KB each: 450 MB for a day). Refused in one line naming both runs
    /// and the gap; shards started together (a few seconds apart, clocks of two
    /// machines) still merge.
    #[test]
    fn runs_far_apart_in_time_are_not_merged() {
        let day_ms = 1_700_000_000_000;
        let e = RunData::merge(vec![
            (
                "b/run.json".to_owned(),
                shard_at(1, day_ms + 3_600_000, 10.0),
            ),
            ("a/run.json".to_owned(), shard_at(0, day_ms, 10.0)),
        ])
        .unwrap_err();
        assert_eq!(
            e,
            "b/run.json (shard 2/2) started 3,590 s after a/run.json (shard 1/2) ended: merge adds the shards of one run, run at the same time, and refuses a gap of more than 60 s between them (start the shards together)"
        );
        let merged = RunData::merge(vec![
            ("a/run.json".to_owned(), shard_at(0, day_ms, 10.0)),
            ("b/run.json".to_owned(), shard_at(1, day_ms + 15_000, 10.0)),
        ])
        .unwrap();
        assert_eq!(merged.shards.len(), 2);
        assert!(merged.stats.timeline.seconds.len() <= 30);
    }

    /// Shards of different runs (another server, client, mix or count of shards) are
    /// refused, naming what differs: merged, a run against one server and one against
    /// another had set the first's /metrics before against the second's after
    /// ("device codes issued 74,818 | 40").
    #[test]
    fn shards_of_different_fleets_are_not_merged() {
        let day_ms = 1_700_000_000_000;
        let merge = |b: RunData| {
            RunData::merge(vec![
                ("a/run.json".to_owned(), shard_at(0, day_ms, 10.0)),
                ("b/run.json".to_owned(), b),
            ])
        };
        let mut other_host = shard_at(1, day_ms, 10.0);
        other_host.setup.hosts = vec!["http://127.0.0.1:2".to_owned()];
        let e = merge(other_host).unwrap_err();
        assert!(
            e.starts_with("the shards are of different runs: hosts "),
            "{e}"
        );
        let mut other_client = shard_at(1, day_ms, 10.0);
        other_client.setup.client_id = "another".to_owned();
        let e = merge(other_client).unwrap_err();
        assert!(e.contains(" client "), "{e}");
        let mut other_mix = shard_at(1, day_ms, 10.0);
        other_mix.setup.mix = vec![(Behaviour::Compliant, 100)];
        let e = merge(other_mix).unwrap_err();
        assert!(e.contains("--mix compliant=100 against"), "{e}");
        let mut of_three = shard_at(1, day_ms, 10.0);
        of_three.shards[0].shard.count = 3;
        let e = merge(of_three).unwrap_err();
        assert!(e.contains("of 2 shards"), "{e}");
        assert!(merge(shard_at(1, day_ms, 10.0)).is_ok());
    }

    /// Requests that failed for want of file descriptors: the blame said only that the
    /// devices could not reach the server. It now says what to do, and only then.
    #[test]
    fn running_out_of_file_descriptors_says_how_to_fix_it() {
        let with = |cause: Cause| {
            let mut r = late_in_second_5(1.0, 0, 0);
            r.shards[0].fd_limit = FdLimit {
                soft_before: 1024,
                soft: 4096,
                hard: 4096,
            };
            let k = r.stats.kind(Kind::Issue);
            k.sent += 50;
            k.transport[cause.index()] += 50;
            r.untrusted_reason().expect("50 of 150 got no answer")
        };
        let fd = with(Cause::FdLimit);
        assert!(
            fd.ends_with("the devices could not reach the server, so its behaviour was not measured: the generator ran out of file descriptors (open-file limit 4,096, its hard limit): raise it (ulimit -n; the hard limit in /etc/security/limits.conf, or LimitNOFILE for a service) or lower --connections"),
            "{fd}"
        );
        let refused = with(Cause::Refused);
        assert!(
            refused.ends_with(
                "the devices could not reach the server, so its behaviour was not measured"
            ),
            "{refused}"
        );
        assert!(!refused.contains("ulimit"), "{refused}");
    }

    #[test]
    fn late_requests_are_the_generators_when_its_own_work_stalled_it() {
        // The pool was exhausted too, but only because the lane did not read the
        // answers while it was stuck.
        let v = late_in_second_5(150.0, 500, 140).generator_verdict();
        assert!(
            v.contains("its own work held its thread for up to 150 ms")
                && v.contains("the generator, not the server, was the bottleneck"),
            "{v}"
        );
    }

    /// A stall of the generator's own and waits for a connection in one run: the
    /// stall had won whatever the waits (1M devices at 10k/s: "its own work held its
    /// thread for up to 151 ms" while 1,892,916 requests waited up to 20,174 ms for a
    /// connection). A stall of 151 ms explains waits of about as long, not of 20 s:
    /// the larger contributor is named, the pool here, with what to raise.
    #[test]
    fn late_requests_are_the_pools_when_its_waits_dwarf_the_generators_stall() {
        let v = late_in_second_5(151.0, 1_892_916, 20_174).generator_verdict();
        assert!(
            v.contains("the generator's pool (--connections) was the bottleneck, not the server")
                && v.contains("raise --connections (or --pipeline)")
                && v.contains("its own work also held its thread for up to 151 ms at a time, less than the longest wait for a connection (20,174 ms)")
                && !v.contains("because its own work held its thread"),
            "{v}"
        );
    }

    /// A server that takes 150 ms a request and a pool of 4 connections: requests
    /// waited for a connection, and the verdict had said "the server was the
    /// bottleneck" (bad.py answering in 0.5 s, `--connections 4`: p50 10 s). By
    /// Little's law 4 connections carry at most 4 ÷ 0.15 s = 27 requests a second,
    /// whatever the server does: the wait is the generator's pool.
    #[test]
    fn late_requests_are_the_pools_when_a_slow_server_needs_more_connections_than_it_has() {
        let mut r = late_in_second_5(3.0, 500, 140);
        r.setup.connections = 4;
        let v = r.generator_verdict();
        assert!(
            v.contains("the generator's pool (--connections) was the bottleneck, not the server")
                && v.contains("answered each in 150.0 ms at p99")
                && v.contains("4 connections a host carry at most 27 requests a second")
                && v.contains("raise --connections (or --pipeline)")
                && !v.contains("the server was the bottleneck"),
            "{v}"
        );
    }

    #[test]
    fn late_requests_are_the_pools_when_every_connection_was_busy_on_a_fast_server() {
        // Every connection busy, yet the server answered each in 1 ms: the pool was
        // too small for the rate (a tiny --connections), the generator's limit.
        let v = late_in_second_5_server(3.0, 500, 140, 1_000).generator_verdict();
        assert!(
            v.contains("the generator's pool (--connections) was the bottleneck, not the server")
                && v.contains("answered each in 1.0 ms at p99")
                && !v.contains("the server was the bottleneck"),
            "{v}"
        );
    }

    /// A generator starved of CPU (busy loops on its core) sends on time but reads
    /// answers late: its lateness was fine, and the verdict said "so the latencies
    /// are the server's" while the server's p99 held the wait for a CPU.
    #[test]
    fn a_generator_that_waited_for_a_cpu_does_not_call_the_latencies_the_servers() {
        let mut r = late_in_second_5(1.0, 0, 0);
        let mut stats = RunStats::default();
        for _ in 0..100 {
            stats.kind(Kind::Poll).sent += 1;
            stats.kind(Kind::Poll).lateness_us.record(5_000);
            stats.kind(Kind::Poll).server_us.record(40_000);
            stats
                .timeline
                .request(Kind::Poll, 5_500, true, 5_000, Some(45_000));
        }
        r.stats = stats;
        let on_time = r.generator_verdict();
        assert!(
            on_time.contains("so the latencies are the server's"),
            "{on_time}"
        );
        // 400 ms of the 10 s run waiting for a CPU, 300 of them in one second.
        r.shards[0].health[0].cpu_wait_ms = 100.0;
        r.shards[0].health[1].cpu_wait_ms = 300.0;
        let v = r.generator_verdict();
        assert!(
            v.contains("its threads waited 400 ms in all for a CPU")
                && v.contains("4.0 % of the run, up to 300 ms in one second")
                && v.contains("are not the server's alone")
                && !v.contains("so the latencies are the server's"),
            "{v}"
        );
    }

    /// Late requests whose waits for a connection would explain them, from a generator
    /// starved of CPU: the starvation is the verdict, not the pool, and the server's
    /// p99 (which holds the wait) is not quoted as its time (helper-100).
    #[test]
    fn late_requests_of_a_generator_starved_of_cpu_are_put_on_the_starvation() {
        let mut r = late_in_second_5(3.0, 500, 140);
        let pool = r.generator_verdict();
        assert!(pool.contains("raise --connections"), "{pool}");
        r.shards[0].health[1].cpu_wait_ms = 700.0;
        let v = r.generator_verdict();
        assert!(
            v.starts_with("The generator fell behind its schedule in 1 second (lateness p99 over 100 ms; 150 ms over the run) because its threads waited 700 ms in all for a CPU")
                && !v.contains("--connections")
                && !v.contains("the server answered each in")
                && !v.contains("Besides"),
            "{v}"
        );
    }

    #[test]
    fn late_requests_that_neither_work_nor_waits_explain_are_the_generators() {
        // A process paused (SIGSTOP, a VM's steal): its work was short, and the
        // connection waits were far shorter than the lateness.
        let v = late_in_second_5(3.0, 500, 20).generator_verdict();
        assert!(
            v.contains("did not get the CPU on time")
                && v.contains("the generator, not the server, was the bottleneck"),
            "{v}"
        );
    }
}
