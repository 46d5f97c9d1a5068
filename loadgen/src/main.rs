//! The `deviceflow-loadgen` command: goose's own options (`--host`, `-u` devices,
//! `-r` increase (hatch) rate, `-t` run time, ...) plus the device-flow ones.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use clap::Parser;
use deviceflow_conformance::approver::ApproverArgs;
use deviceflow_conformance::client::AuthMethod;
use deviceflow_conformance::http::Http;
use deviceflow_conformance::{resolve, Approver, Client, TargetSpec};
use deviceflow_loadgen::device::People;
use deviceflow_loadgen::fleet::{self, Expectations, Fleet};
use deviceflow_loadgen::results::{self, Setup};
use deviceflow_loadgen::{render, Mix};
use goose::config::GooseConfiguration;

/// Simulated device fleets for the OAuth 2.0 Device Authorization Grant (RFC 8628): each
/// goose user is one device running the flow once, as its behaviour dictates, while a
/// simulated person approves, denies or never looks. Writes a report folder.
#[derive(Parser)]
#[command(about, disable_version_flag = true)]
struct Cli {
    #[command(flatten)]
    goose: GooseConfiguration,
    /// Device authorization endpoint (default: from --host's RFC 8414 metadata).
    #[arg(long, help_heading = "Device flow")]
    device_authorization_endpoint: Option<String>,
    /// Token endpoint (default: from the metadata).
    #[arg(long, help_heading = "Device flow")]
    token_endpoint: Option<String>,
    /// The devices' client_id.
    #[arg(long, default_value = "demo-device", help_heading = "Device flow")]
    client_id: String,
    /// Client secret, for a confidential client (sent as client_secret_basic).
    #[arg(
        long,
        env = "DEVICEFLOW_CLIENT_SECRET",
        hide_env_values = true,
        help_heading = "Device flow"
    )]
    client_secret: Option<String>,
    /// Scope to request.
    #[arg(long, help_heading = "Device flow")]
    scope: Option<String>,
    /// Behaviour mix in percent: compliant, jittery, eager, deaf, abandoned.
    #[arg(
        long,
        default_value = "compliant=60,jittery=15,eager=10,deaf=5,abandoned=10",
        help_heading = "Device flow"
    )]
    mix: Mix,
    /// Seconds before a person decides: MIN..MAX, drawn uniformly.
    #[arg(long, default_value = "5..30", value_parser = parse_range, help_heading = "People")]
    decide_after: (u64, u64),
    /// Percent of people (of non-abandoned devices) who deny.
    #[arg(long, default_value_t = 10, help_heading = "People")]
    deny_percent: u32,
    /// Percent who never look at the code.
    #[arg(long, default_value_t = 5, help_heading = "People")]
    never_percent: u32,
    #[command(flatten, next_help_heading = "People")]
    approver: ApproverArgs,
    /// The expires_in the server should hand out; devices report a mismatch.
    #[arg(long, help_heading = "Expectations")]
    expect_expires_in: Option<u64>,
    /// The interval the server should hand out.
    #[arg(long, help_heading = "Expectations")]
    expect_interval: Option<u64>,
    /// Do not poll once more after the token to check single use (TS-08).
    #[arg(long, help_heading = "Device flow")]
    no_replay_check: bool,
    /// A device gives up after this many seconds without a final answer (counted
    /// unfinished); bounds runs against servers with long expires_in.
    #[arg(long, help_heading = "Device flow")]
    max_flow: Option<u64>,
    /// Where the report goes (default: reports/loadgen/run-<time>).
    #[arg(long, help_heading = "Report")]
    report_dir: Option<PathBuf>,
    /// Seconds between progress lines (0: none).
    #[arg(long, default_value_t = 5, help_heading = "Report")]
    progress_every: u64,
}

fn parse_range(s: &str) -> Result<(u64, u64), String> {
    let (a, b) = s
        .split_once("..")
        .ok_or_else(|| format!("\"{s}\": write MIN..MAX in seconds, e.g. 5..30"))?;
    let a: u64 = a
        .trim()
        .parse()
        .map_err(|_| format!("\"{a}\" is not a number of seconds"))?;
    let b: u64 = b
        .trim()
        .parse()
        .map_err(|_| format!("\"{b}\" is not a number of seconds"))?;
    if a > b {
        return Err(format!("{a}..{b}: MIN is larger than MAX"));
    }
    Ok((a, b))
}

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("deviceflow-loadgen: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    if let Err(e) = runtime.block_on(real_main(cli)) {
        eprintln!("deviceflow-loadgen: {e:#}");
        std::process::exit(1);
    }
}

async fn real_main(cli: Cli) -> anyhow::Result<()> {
    let Some(host) = cli.goose.host.clone() else {
        bail!("give --host (the server's issuer URL, e.g. http://127.0.0.1:8080)");
    };
    if cli.deny_percent + cli.never_percent > 100 {
        bail!("--deny-percent and --never-percent add up to more than 100");
    }
    let client = Client {
        id: cli.client_id.clone(),
        secret: cli.client_secret.clone(),
        method: if cli.client_secret.is_some() {
            AuthMethod::Basic
        } else {
            AuthMethod::None
        },
    };
    let http = Http::new(Duration::from_secs(10));
    let target = resolve(
        TargetSpec {
            issuer: Some(host.clone()),
            device_authorization_endpoint: cli.device_authorization_endpoint.clone(),
            token_endpoint: cli.token_endpoint.clone(),
            client: Some(client.clone()),
            ..TargetSpec::default()
        },
        &http,
    )
    .await?;
    let approver = cli
        .approver
        .build(Some(&host))
        .map_err(anyhow::Error::msg)?;
    let setup = Setup {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        commit: results::git_commit(),
        cpu: results::cpu_model(),
        started_at_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        device_authorization_endpoint: target.device_authorization_endpoint.clone(),
        token_endpoint: target.token_endpoint.clone(),
        client_id: client.id.clone(),
        devices: cli.goose.users.unwrap_or(0),
        mix: cli.mix.0.clone(),
        people: People {
            approve_delay_ms: (cli.decide_after.0 * 1000, cli.decide_after.1 * 1000),
            deny_pct: cli.deny_percent,
            never_pct: cli.never_percent,
        },
        expect: Expectations {
            expires_in: cli.expect_expires_in,
            interval: cli.expect_interval,
        },
        approver: approver.describe(),
    };
    let report_dir = cli
        .report_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("reports/loadgen/run-{}", setup.started_at_unix)));
    let outcome = run_fleet(cli, target, approver, setup, &host).await?;
    render::write(&outcome, &report_dir)?;
    println!("{}", render::terminal(&outcome));
    println!(
        "report: {}/index.html (and summary.md, run.json)",
        report_dir.display()
    );
    Ok(())
}

async fn run_fleet(
    cli: Cli,
    target: deviceflow_conformance::target::Target,
    approver: Approver,
    setup: Setup,
    host: &str,
) -> anyhow::Result<results::RunData> {
    // The timeline holds the run and the longest tail a flow can have after it.
    let horizon = Duration::from_secs(4 * 3600);
    let mut fleet = Fleet::new(
        target.device_authorization_endpoint,
        target.token_endpoint,
        target.client,
        cli.scope.clone(),
        approver,
        setup.people.clone(),
        setup.expect.clone(),
        !cli.no_replay_check,
        horizon,
    );
    fleet.max_flow = cli.max_flow.map(Duration::from_secs);
    let fleet = Arc::new(fleet);
    let metrics = fleet::run(
        Arc::clone(&fleet),
        &cli.mix,
        cli.goose,
        host,
        Duration::from_secs(cli.progress_every),
    )
    .await?;
    let duration = fleet.start.elapsed().as_secs_f64();
    Ok(results::compute(
        setup,
        &fleet.records(),
        &fleet.timeline,
        &metrics,
        duration,
    ))
}
