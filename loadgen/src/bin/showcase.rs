//! `deviceflow-showcase`: all three parts in one go, on embedded defaults. Starts our
//! server on loopback, runs the RFC 8628 conformance suite against it with the admin
//! approver, then a fleet of simulated devices for about a minute, and writes both
//! reports.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use clap::Parser;
use deviceflow_conformance::http::Http;
use deviceflow_conformance::{report, resolve, Approver, Client, Options, Selection, TargetSpec};
use deviceflow_loadgen::device::People;
use deviceflow_loadgen::fleet::{self, Expectations, Fleet};
use deviceflow_loadgen::results::{self, Setup};
use deviceflow_loadgen::{render, Mix};
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

fn main() {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("deviceflow-showcase: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    match runtime.block_on(showcase(cli)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("deviceflow-showcase: {e:#}");
            std::process::exit(2);
        }
    }
}

async fn showcase(cli: Cli) -> anyhow::Result<i32> {
    // 1. The server, on the demo defaults, with an admin token for this run.
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
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding 127.0.0.1:0")?;
    let issuer = format!("http://{}", listener.local_addr()?);
    let app = Arc::new(App::new(settings, issuer.clone(), Clock::System));
    tokio::spawn(deviceflow_server::serve(
        listener,
        app,
        std::future::pending(),
    ));
    println!(
        "1/3 deviceflow-server on {issuer} (demo defaults; expires_in {} s, interval 5 s)\n",
        cli.expires_in
    );

    // 2. The conformance suite.
    println!("2/3 RFC 8628 conformance suite, admin approver (about a minute)");
    let options = Options {
        max_wait: Duration::from_secs(cli.expires_in + 30),
        ..Options::default()
    };
    let http = Http::new(options.request_timeout);
    let confidential = format!("demo-confidential:{DEMO_CONFIDENTIAL_SECRET}");
    let target = resolve(
        TargetSpec {
            issuer: Some(issuer.clone()),
            client: Some(Client::public("demo-device")),
            second_client: Some(Client::parse(&confidential).map_err(anyhow::Error::msg)?),
            introspection_client: Some(Client::parse(&confidential).map_err(anyhow::Error::msg)?),
            scope: Some("openid profile".to_owned()),
            ..TargetSpec::default()
        },
        &http,
    )
    .await?;
    let approver = Approver::admin(format!("{issuer}/admin/decisions"), admin.clone(), "demo");
    let conformance =
        deviceflow_conformance::run(target, approver, options, &Selection::default(), false).await;
    let dir = cli.out.join("conformance");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    std::fs::write(dir.join("report.md"), report::markdown(&conformance))?;
    std::fs::write(dir.join("report.json"), conformance.json())?;
    std::fs::write(dir.join("junit.xml"), report::junit(&conformance))?;
    print!("{}", report::terminal(&conformance, false, 110));

    // 3. The fleet.
    println!(
        "\n3/3 {} simulated devices, {} started per second",
        cli.devices, cli.hatch_rate
    );
    let mix = Mix::default();
    let people = People {
        approve_delay_ms: (3_000, 20_000),
        deny_pct: 10,
        never_pct: 5,
    };
    let expect = Expectations {
        expires_in: Some(cli.expires_in),
        interval: Some(5),
    };
    let fleet = Arc::new(Fleet::new(
        format!("{issuer}/oauth/device_authorization"),
        format!("{issuer}/oauth/token"),
        Client::public("demo-device"),
        None,
        Approver::admin(format!("{issuer}/admin/decisions"), admin, "demo"),
        people.clone(),
        expect.clone(),
        true,
        Duration::from_secs(3600),
    ));
    let mut goose = GooseConfiguration::default();
    goose.users = Some(cli.devices);
    goose.increase_rate = Some(cli.hatch_rate.to_string());
    goose.no_print_metrics = true;
    let metrics = fleet::run(
        Arc::clone(&fleet),
        &mix,
        goose,
        &issuer,
        Duration::from_secs(5),
    )
    .await?;
    let setup = Setup {
        command: std::env::args().collect::<Vec<_>>().join(" "),
        commit: results::git_commit(),
        cpu: results::cpu_model(),
        started_at_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        device_authorization_endpoint: fleet.device_authorization_endpoint.clone(),
        token_endpoint: fleet.token_endpoint.clone(),
        client_id: "demo-device".to_owned(),
        devices: cli.devices,
        mix: mix.0.clone(),
        people,
        expect,
        approver: "admin endpoint as demo".to_owned(),
    };
    let run = results::compute(
        setup,
        &fleet.records(),
        &fleet.timeline,
        &metrics,
        fleet.start.elapsed().as_secs_f64(),
    );
    let fleet_dir = cli.out.join("fleet");
    render::write(&run, &fleet_dir)?;
    println!("{}", render::terminal(&run));

    println!("Reports:");
    println!("  {}/report.md (and report.json, junit.xml)", dir.display());
    println!(
        "  {}/index.html (and summary.md, run.json)",
        fleet_dir.display()
    );
    let ok =
        conformance.exit_code() == 0 && run.violations_total == 0 && run.compliant_slow_downs == 0;
    println!(
        "\n{}",
        if ok {
            "All three parts worked: no MUST failure, no violation, no slow_down for compliant devices."
        } else {
            "Something is wrong: see the reports."
        }
    );
    Ok(i32::from(!ok))
}
