//! One run from start to report data: raise the fd limit, scrape the server's
//! `/metrics`, run the fleet through goose, scrape again, and gather the run's data.
//! Shared by `deviceflow-loadgen`, the showcase (`showcase/`) and the tests.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deviceflow_conformance::approver::Approver;
use deviceflow_conformance::http::credentials;
use deviceflow_conformance::Client;
use deviceflow_reports::errln;
use goose::config::GooseConfiguration;

use crate::attack;
use crate::device::behaviour::Mix;
use crate::device::People;
use crate::fleet::shard::Shard;
use crate::fleet::{AdminEndpoint, Expectations, Fleet, FleetConfig};
use crate::measure::resources;
use crate::measure::scrape::{self, Window};
use crate::report::results::{RunData, Setup, ShardRun, SCHEMA};
use crate::transport::{path_of, target_of, Target};

/// A header value without line breaks or other control characters.
fn header_value(v: &str) -> Option<Arc<str>> {
    (!v.bytes().any(|b| b.is_ascii_control())).then(|| Arc::from(v))
}

fn uri_of(url: &str) -> Result<Arc<str>, String> {
    let path = path_of(url);
    if path
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(format!("{url}: its path is not a valid request target"));
    }
    Ok(Arc::from(path))
}

/// Whether two targets are one server: the same address, or the same spelling.
fn same_authority(a: &Target, b: &Target) -> bool {
    a.addr == b.addr || a.host.eq_ignore_ascii_case(&b.host)
}

/// Where the devices send: the `--host`s, each with the endpoints' paths, when every
/// endpoint is on one of them (instances of one server, the same paths behind each);
/// else, with one `--host` at most, the one authority both endpoints are on. Endpoints
/// on two other authorities, or with several `--host`s on another one than theirs,
/// cannot be sent to by one fleet and are refused with a one-line reason.
fn targets_of(
    hosts: &[String],
    device_authorization_endpoint: &str,
    token_endpoint: &str,
) -> Result<Vec<Target>, String> {
    let mut targets = Vec::new();
    for h in hosts {
        targets.push(target_of(h)?);
    }
    // A relative endpoint is on the hosts.
    let on = |url: &str| -> Result<Option<Target>, String> {
        if url.contains("://") {
            target_of(url).map(Some).map_err(|e| {
                format!("{e} (an endpoint the generator cannot reach: give the endpoints on --host with --device-authorization-endpoint and --token-endpoint)")
            })
        } else {
            Ok(None)
        }
    };
    let issue = on(device_authorization_endpoint)?;
    let token = on(token_endpoint)?;
    if targets.is_empty() {
        // No --host: the device authorization endpoint's authority is the host.
        targets.extend(issue.clone().or_else(|| token.clone()));
        if targets.is_empty() {
            return Err(format!(
                "{device_authorization_endpoint}: give --host, or the endpoints as full http:// or https:// URLs"
            ));
        }
    }
    let elsewhere = |e: &Option<Target>| {
        e.as_ref()
            .filter(|e| !targets.iter().any(|t| same_authority(t, e)))
            .cloned()
    };
    let (which, url, other) = match (elsewhere(&issue), elsewhere(&token)) {
        (Some(i), _) => ("device authorization", device_authorization_endpoint, i),
        (None, Some(t)) => ("token", token_endpoint, t),
        (None, None) => return Ok(targets),
    };
    let hosts_named = targets
        .iter()
        .map(|t| &*t.host)
        .collect::<Vec<_>>()
        .join(", ");
    if targets.len() > 1 {
        // Instances behind a load balancer advertise its URL: the paths alone send
        // the fleet to the instances named.
        let path = crate::transport::path_of;
        return Err(format!(
            "the {which} endpoint {url} is on {}, not on any --host ({hosts_named}): with several --host each gets the endpoints' paths, so give the endpoints' own authority as a --host, or, to spread the fleet over these hosts (instances behind a load balancer at {}, say), the paths alone: --device-authorization-endpoint {} --token-endpoint {}",
            other.host,
            other.host,
            path(device_authorization_endpoint),
            path(token_endpoint)
        ));
    }
    // One host, endpoints elsewhere: the requests go where the endpoints are, when
    // they are on one authority (a fleet sends every kind of request to its hosts).
    match (&issue, &token) {
        (Some(i), Some(t)) if !same_authority(i, t) => Err(format!(
            "the device authorization endpoint {device_authorization_endpoint} is on {} and the token endpoint {token_endpoint} on {}: the fleet sends both to one authority (its --host), so they must share one",
            i.host, t.host
        )),
        _ if issue.is_none() || token.is_none() => Err(format!(
            "the {which} endpoint {url} is on {}, not on --host {hosts_named}, and the other endpoint is a path on --host: the fleet sends both to one authority, so give both on the same one",
            other.host
        )),
        _ => Ok(vec![other]),
    }
}

impl FleetConfig {
    /// A fleet against `hosts` with the endpoints' paths (see `targets_of` for where
    /// the endpoints' authority wins), with defaults for the rest: the default mix,
    /// nobody deciding, 0 devices.
    pub fn new(
        hosts: &[String],
        device_authorization_endpoint: &str,
        token_endpoint: &str,
        client: &Client,
        scope: Option<&str>,
        approver: Approver,
    ) -> Result<FleetConfig, String> {
        let targets = targets_of(hosts, device_authorization_endpoint, token_endpoint)?;
        let scope_param: Vec<(&str, &str)> = scope.map(|s| vec![("scope", s)]).unwrap_or_default();
        let (headers, issue_body) = credentials(Some(client), &scope_param);
        let (_, client_body) = credentials(Some(client), &[]);
        let client_authorization = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("authorization"))
            .map(|(_, v)| Arc::from(v.as_str()));
        let admin = match &approver {
            Approver::Admin {
                url, token, user, ..
            } => Some(AdminEndpoint {
                target: target_of(url)?,
                uri: uri_of(url)?,
                authorization: header_value(&format!("Bearer {token}"))
                    .ok_or("the admin token is not a valid header value")?,
                user: user.clone(),
            }),
            _ => None,
        };
        Ok(FleetConfig {
            issue_uri: uri_of(device_authorization_endpoint)?,
            token_uri: uri_of(token_endpoint)?,
            targets,
            issue_path: path_of(device_authorization_endpoint),
            token_path: path_of(token_endpoint),
            issue_body,
            client_params: if client_body.is_empty() {
                String::new()
            } else {
                format!("&{client_body}")
            },
            client_authorization,
            approver,
            admin,
            people: People {
                approve_delay_ms: (5_000, 30_000),
                deny_pct: 0,
                never_pct: 0,
            },
            expect: Expectations::default(),
            mix: Mix::default(),
            verify_single_use: true,
            max_flow: None,
            devices: 0,
            hatch_rate: 1.0,
            shard: Shard::default(),
            seed: 0,
            lanes: std::thread::available_parallelism().map_or(2, |n| n.get()),
            connections: 64,
            pipeline: 1,
            request_timeout: Duration::from_secs(10),
            run_time: None,
        })
    }

    /// The target of a lane's pool `index`: a `--host`, or, past them, the admin
    /// endpoint (the first host when there is none; nothing is sent to it then).
    pub fn target(&self, index: usize) -> &Target {
        self.targets
            .get(index)
            .or(self.admin.as_ref().map(|a| &a.target))
            .unwrap_or(&self.targets[0])
    }
}

/// Runs `config` through goose (`goose` gives its other options) and gathers the
/// run's data. `setup` is filled in from the config where it describes it.
pub async fn run(
    config: FleetConfig,
    goose: GooseConfiguration,
    mut setup: Setup,
    progress_every: Duration,
) -> anyhow::Result<RunData> {
    let fd_limit = resources::raise_fd_limit();
    if progress_every > Duration::ZERO {
        errln!("deviceflow-loadgen: {fd_limit}");
    }
    let before = scrape::scrape(&config.targets, config.request_timeout).await;
    let started_at_unix_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let host = setup.hosts.first().cloned().unwrap_or_default();
    setup.devices = config.devices;
    setup.hatch_rate = config.hatch_rate;
    setup.mix = config.mix.0.clone();
    setup.people = config.people.clone();
    setup.expect = config.expect.clone();
    setup.approver = config.approver.describe();
    setup.lanes = config.lanes;
    setup.connections = config.connections;
    setup.pipeline = config.pipeline;
    setup.seed = config.seed;
    let shard = config.shard;
    let fleet = Arc::new(Fleet::new(config));
    attack::run(Arc::clone(&fleet), goose, &host, progress_every).await?;
    let begun = *fleet.begun();
    let duration_s = begun.at.elapsed().as_secs_f64();
    // The generator stopped the run early (no device got a code), a signal did
    // (`stop.rs`), or goose's Ctrl-C handler tripped its killswitch (where `stop.rs`
    // does not listen: the showcase): the lanes stop on each.
    let signal = crate::stop::requested();
    let (stopped_at_s, stopped_because) = match fleet.stopped_early() {
        Some((at_s, why)) => (Some(*at_s), Some(why.clone())),
        None => (
            (signal.is_some() || goose::is_killswitch_triggered()).then_some(duration_s),
            None,
        ),
    };
    let stopped_by = (stopped_at_s.is_some() && stopped_because.is_none()).then(|| {
        signal
            .unwrap_or(crate::stop::Signal::CtrlC)
            .as_str()
            .to_owned()
    });
    let cpu_s = crate::measure::resources::cpu_time()
        .saturating_sub(begun.cpu)
        .as_secs_f64();
    // The server counts a request when it answers; let the last answers land.
    let after = scrape::scrape(&fleet.config.targets, fleet.config.request_timeout).await;
    // Without both scrapes there is nothing to set beside the generator's counts;
    // the report says why (and so does a line here, as it happens).
    let (metrics, no_reconciliation) = match (before, after) {
        (Ok(before), Ok(after)) => (Some(Window { before, after }), Vec::new()),
        (before, after) => {
            let why = [("before", before.err()), ("after", after.err())]
                .into_iter()
                .filter_map(|(when, e)| Some(format!("{when} the run, {}", e?)))
                .collect::<Vec<_>>()
                .join("; ");
            errln!("deviceflow-loadgen: no reconciliation with the server's /metrics: {why}");
            (None, vec![why])
        }
    };
    let health = fleet
        .health
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(RunData {
        schema: SCHEMA.to_owned(),
        setup,
        shards: vec![ShardRun {
            shard,
            started_at_unix_ms,
            duration_s,
            fd_limit,
            peak_rss_mb: resources::peak_rss_mb(),
            rss_at_start_mb: begun.rss_mb,
            cpu_s,
            health,
            stopped_at_s,
            stopped_because,
            stopped_by,
        }],
        duration_s,
        stats: fleet.stats(),
        metrics,
        no_reconciliation,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(of: &[&str]) -> Vec<String> {
        of.iter().map(|h| (*h).to_owned()).collect()
    }

    fn authorities(targets: &[Target]) -> Vec<&str> {
        targets.iter().map(|t| &*t.host).collect()
    }

    #[test]
    fn endpoints_on_the_hosts_keep_every_host() {
        let two = hosts(&["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        let t = targets_of(&two, "http://127.0.0.1:2/dev", "http://127.0.0.1:1/tok").unwrap();
        assert_eq!(authorities(&t), ["127.0.0.1:1", "127.0.0.1:2"]);
        // The same server spelled another way, and paths: on the host.
        let t = targets_of(&two[..1], "http://127.0.0.1:1/dev", "/tok").unwrap();
        assert_eq!(authorities(&t), ["127.0.0.1:1"]);
    }

    #[test]
    fn endpoints_on_another_authority_than_the_one_host_are_sent_there() {
        // Metadata served on :1 advertising endpoints on :2.
        let one = hosts(&["http://127.0.0.1:1"]);
        let t = targets_of(&one, "http://127.0.0.1:2/dev", "http://127.0.0.1:2/tok").unwrap();
        assert_eq!(authorities(&t), ["127.0.0.1:2"]);
        let t = targets_of(&[], "http://127.0.0.1:2/dev", "http://127.0.0.1:2/tok").unwrap();
        assert_eq!(authorities(&t), ["127.0.0.1:2"]);
    }

    #[test]
    fn endpoints_a_fleet_cannot_reach_are_refused_naming_both_authorities() {
        let one = hosts(&["http://127.0.0.1:1"]);
        let e = targets_of(&one, "http://127.0.0.1:1/dev", "http://127.0.0.1:3/tok").unwrap_err();
        assert!(
            e.contains("127.0.0.1:1") && e.contains("127.0.0.1:3") && !e.contains('\n'),
            "{e}"
        );
        let two = hosts(&["http://127.0.0.1:1", "http://127.0.0.1:2"]);
        let e = targets_of(&two, "http://127.0.0.1:3/dev", "http://127.0.0.1:3/tok").unwrap_err();
        assert!(
            e.contains("127.0.0.1:3") && e.contains("127.0.0.1:1, 127.0.0.1:2"),
            "{e}"
        );
        let e = targets_of(&one, "/dev", "ftp://example.com/tok").unwrap_err();
        assert!(e.contains("http:// and https:// only"), "{e}");
    }
}
