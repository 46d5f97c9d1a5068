//! `deviceflow-showcase`: all three parts in one go, on embedded defaults. Starts our
//! server on loopback, runs the RFC 8628 conformance suite against it with the admin
//! approver, then a fleet of simulated devices for about a minute, and writes both
//! reports.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use deviceflow_conformance::http::Http;
use deviceflow_conformance::{
    report, resolve, Approver, Client, Options, Report, Selection, TargetSpec,
};
use deviceflow_loadgen::device::People;
use deviceflow_loadgen::fleet::{Expectations, FleetConfig};
use deviceflow_loadgen::report::render;
use deviceflow_loadgen::report::results::{RunData, Setup};
use deviceflow_loadgen::runner;
use deviceflow_reports::{errln, outln, stdio};
use deviceflow_server::config::DEMO_CONFIDENTIAL_SECRET;
use deviceflow_server::{App, Clock, FileConfig, Settings};
use goose::config::GooseConfiguration;
use rand::RngCore;

/// Our server, the conformance suite against it, and a device fleet against it: one command.
#[derive(Parser)]
#[command(about)]
struct Cli {
    /// Devices in the fleet.
    #[arg(long, default_value_t = 2000)]
    devices: usize,
    /// Devices started per second.
    #[arg(long, default_value_t = 100)]
    hatch_rate: usize,
    /// The device codes' lifetime, seconds (short, so abandoned devices expire within the run).
    #[arg(long, default_value_t = 45)]
    expires_in: u64,
    /// Where the reports go.
    #[arg(long, default_value = "reports/showcase")]
    out: PathBuf,
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("deviceflow-showcase: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    match runtime.block_on(showcase(cli)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            errln!("deviceflow-showcase: {e:#}");
            std::process::exit(2);
        }
    }
}

async fn showcase(cli: Cli) -> anyhow::Result<i32> {
    let (issuer, admin) = start_server(&cli).await?;
    let (conformance, conformance_dir) = run_conformance(&cli, &issuer, &admin).await?;
    let (run, fleet_dir) = run_fleet(&cli, &issuer, admin).await?;

    outln!("Reports:")?;
    outln!(
        "  {}/report.md (and report.json, junit.xml)",
        conformance_dir.display()
    )?;
    outln!(
        "  {}/index.html (and summary.md, run.json)",
        fleet_dir.display()
    )?;
    let compliant_slow_downs: u64 = run
        .stats
        .behaviours
        .iter()
        .filter(|(b, _)| b.is_compliant())
        .map(|(_, b)| b.slow_downs)
        .sum();
    let ok = conformance.exit_code() == 0
        && run.stats.violations_total() == 0
        && compliant_slow_downs == 0
        && run.untrusted_reason().is_none();
    outln!(
        "\n{}",
        if ok {
            "All three parts worked: no MUST failure, no violation, no slow_down for compliant devices."
        } else {
            "Something is wrong: see the reports."
        }
    )?;
    Ok(i32::from(!ok))
}

/// Part 1: the server, on the demo defaults, with an admin token for this run. Returns
/// its issuer URL and the admin token.
async fn start_server(cli: &Cli) -> anyhow::Result<(String, String)> {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    let admin: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let mut file = FileConfig::demo();
    file.device.expires_in = cli.expires_in;
    file.admin.token = Some(admin.clone());
    // The whole fleet comes from one loopback address, which the per-source quota
    // exists to stop: it is off here, and the per-client quota and share stay on.
    file.quotas.per_source_rate = 0.0;
    let settings = Settings::from_file(file).context("the demo configuration")?;
    let listener =
        deviceflow_server::listen(([127, 0, 0, 1], 0).into()).context("binding 127.0.0.1:0")?;
    let issuer = format!("http://{}", listener.local_addr()?);
    let app = Arc::new(App::new(settings, issuer.clone(), Clock::System));
    tokio::spawn(deviceflow_server::serve(
        listener,
        app,
        std::future::pending(),
    ));
    outln!(
        "1/3 deviceflow-server on {issuer} (demo defaults; expires_in {} s, interval 5 s)\n",
        cli.expires_in
    )?;
    Ok((issuer, admin))
}

/// Part 2: the conformance suite against `issuer`, its reports written under
/// `conformance/`. Returns the report and that folder.
async fn run_conformance(
    cli: &Cli,
    issuer: &str,
    admin: &str,
) -> anyhow::Result<(Report, PathBuf)> {
    outln!("2/3 RFC 8628 conformance suite, admin approver (about a minute)")?;
    let options = Options {
        max_wait: Duration::from_secs(cli.expires_in + 30),
        ..Options::default()
    };
    let confidential = format!("demo-confidential:{DEMO_CONFIDENTIAL_SECRET}");
    let spec = TargetSpec {
        issuer: Some(issuer.to_owned()),
        client: Some(Client::public("demo-device")),
        second_client: Some(Client::parse(&confidential).map_err(anyhow::Error::msg)?),
        introspection_client: Some(Client::parse(&confidential).map_err(anyhow::Error::msg)?),
        scope: Some("openid profile".to_owned()),
        ..TargetSpec::default()
    };
    // The suite's address rule, as its command line applies it.
    let http = Http::new(options.request_timeout, spec.reach(false).await);
    let target = resolve(spec, &http).await?;
    let approver = Approver::admin(format!("{issuer}/admin/decisions"), admin, "demo");
    let conformance =
        deviceflow_conformance::run(target, approver, options, &Selection::default(), false).await;
    let dir = cli.out.join("conformance");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("report.md"), report::markdown(&conformance))?;
    std::fs::write(dir.join("report.json"), conformance.json())?;
    std::fs::write(dir.join("junit.xml"), report::junit(&conformance))?;
    stdio::output(format_args!(
        "{}",
        report::terminal(&conformance, false, 110)
    ))?;
    Ok((conformance, dir))
}

/// Part 3: the fleet against `issuer`, its report written under `fleet/`. Returns the
/// run's data and that folder.
async fn run_fleet(cli: &Cli, issuer: &str, admin: String) -> anyhow::Result<(RunData, PathBuf)> {
    outln!(
        "\n3/3 {} simulated devices, {} started per second",
        cli.devices,
        cli.hatch_rate
    )?;
    let mut config = FleetConfig::new(
        &[issuer.to_owned()],
        &format!("{issuer}/oauth/device_authorization"),
        &format!("{issuer}/oauth/token"),
        &Client::public("demo-device"),
        None,
        Approver::admin(format!("{issuer}/admin/decisions"), admin, "demo"),
    )
    .map_err(anyhow::Error::msg)?;
    config.devices = cli.devices as u64;
    config.hatch_rate = cli.hatch_rate as f64;
    config.people = People {
        approve_delay_ms: (3_000, 20_000),
        deny_pct: 10,
        never_pct: 5,
    };
    config.expect = Expectations {
        expires_in: Some(cli.expires_in),
        interval: Some(5),
    };
    let setup = Setup::new(
        std::env::args().collect::<Vec<_>>().join(" "),
        vec![issuer.to_owned()],
        &config,
        "demo-device",
        0.01,
    );
    let run = runner::run(
        config,
        GooseConfiguration::default(),
        setup,
        Duration::from_secs(5),
    )
    .await?;
    let fleet_dir = cli.out.join("fleet");
    deviceflow_loadgen::report::write(&run, &fleet_dir)?;
    outln!("{}", render::terminal(&run))?;
    Ok((run, fleet_dir))
}
