//! One run from start to report data: raise the fd limit, scrape the server's
//! `/metrics`, run the fleet through goose, scrape again, and gather the run's data.
//! Shared by `deviceflow-loadgen`, the showcase (`showcase/`) and the tests.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deviceflow_conformance::approver::Approver;
use deviceflow_conformance::http::credentials;
use deviceflow_conformance::Client;
use goose::config::GooseConfiguration;

use crate::attack;
use crate::behaviour::Mix;
use crate::device::People;
use crate::fleet::{AdminEndpoint, Expectations, Fleet, FleetConfig};
use crate::resources;
use crate::results::{self, RunData, Setup, ShardRun, SCHEMA};
use crate::scrape::{self, Window};
use crate::shard::Shard;
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

impl FleetConfig {
    /// A fleet against `hosts` (the first one's endpoint paths are used on every
    /// host), with defaults for the rest: the default mix, nobody deciding, 0 devices.
    pub fn new(
        hosts: &[String],
        device_authorization_endpoint: &str,
        token_endpoint: &str,
        client: &Client,
        scope: Option<&str>,
        approver: Approver,
    ) -> Result<FleetConfig, String> {
        let mut targets = Vec::new();
        for h in hosts {
            targets.push(target_of(h)?);
        }
        if targets.is_empty() {
            targets.push(target_of(device_authorization_endpoint)?);
        }
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
        eprintln!("deviceflow-loadgen: {fd_limit}");
    }
    let before = scrape::scrape(&config.targets).await;
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
    let cpu_s = crate::resources::cpu_time()
        .saturating_sub(begun.cpu)
        .as_secs_f64();
    // The server counts a request when it answers; let the last answers land.
    let after = scrape::scrape(&fleet.config.targets).await;
    let metrics = match (before, after) {
        (Some(before), Some(after)) => Some(Window { before, after }),
        _ => None,
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
        }],
        duration_s,
        stats: fleet.stats(),
        metrics,
    })
}

/// A setup block with what only the caller knows; the rest is filled in by [`run`].
pub fn setup(
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
        commit: results::git_commit(),
        cpu: results::cpu_model(),
        hosts,
        device_authorization_endpoint: format!("{base}{}", config.issue_path),
        token_endpoint: format!("{base}{}", config.token_path),
        client_id: client_id.to_owned(),
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
