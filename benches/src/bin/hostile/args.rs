//! `hostile`'s command line: what each flag means, its defaults, and the checks that
//! keep the attacks on this machine.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use anyhow::{bail, Context};

pub const USAGE: &str = "\
usage: hostile --target ADDR --server-pid PID [options]
  --duration SECS            length of the run [30]
  --devices N                compliant devices [200]
  --attacks LIST             signin,issuance,slowloris, or none [all three]
  --fleet-source IP          the fleet's source address [127.0.0.2]
  --attack-source IP         the attacks' source address [127.0.0.1]
  --sign-in-in-flight N      sign-in POSTs kept in flight [512]
  --sign-in-user NAME        the username they try [demo]
  --issuance-connections N   connections of the issuance flood [64]
  --slowloris-connections N  slowloris connections [1000]
  --poll-timeout-ms MS       a fleet request unanswered this long fails [10000]
  --p99-target-ms MS         the fleet's poll p99 target [50]
  --rss-target-mb MB         the server's peak RSS target (1 MB = 10^6 bytes) [512]
  --rss-cap-mb MB            stop the run when the server's RSS passes this [6000]
  --clk-tck N                clock ticks per second of /proc/PID/stat [100]
  --strict                   exit 1 when a target is missed";

/// What to run, against what, and the targets to judge it by.
#[derive(Debug, Clone)]
pub struct Args {
    pub target: SocketAddr,
    pub server_pid: u32,
    pub duration: Duration,
    pub devices: usize,
    pub sign_in: bool,
    pub issuance: bool,
    pub slowloris: bool,
    pub fleet_source: IpAddr,
    pub attack_source: IpAddr,
    pub sign_in_in_flight: usize,
    pub sign_in_user: String,
    pub issuance_connections: usize,
    pub slowloris_connections: usize,
    pub poll_timeout: Duration,
    pub p99_target_ms: f64,
    pub rss_target_mb: f64,
    pub rss_cap_mb: f64,
    pub clk_tck: f64,
    pub strict: bool,
}

/// The arguments before any are read: every default of [`USAGE`], and no target yet.
fn defaults() -> Args {
    Args {
        target: SocketAddr::from(([127, 0, 0, 1], 0)),
        server_pid: 0,
        duration: Duration::from_secs(30),
        devices: 200,
        sign_in: true,
        issuance: true,
        slowloris: true,
        fleet_source: IpAddr::from([127, 0, 0, 2]),
        attack_source: IpAddr::from([127, 0, 0, 1]),
        sign_in_in_flight: 512,
        sign_in_user: "demo".to_owned(),
        issuance_connections: 64,
        slowloris_connections: 1000,
        poll_timeout: Duration::from_secs(10),
        p99_target_ms: 50.0,
        rss_target_mb: 512.0,
        rss_cap_mb: 6000.0,
        clk_tck: 100.0,
        strict: false,
    }
}

pub fn parse_args(mut argv: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let mut target = None;
    let mut server_pid = None;
    let mut a = defaults();
    while let Some(arg) = argv.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
            None => (arg.clone(), None),
        };
        match name.as_str() {
            "-h" | "--help" => {
                deviceflow_reports::outln!("{USAGE}")?;
                std::process::exit(0);
            }
            "--strict" => {
                a.strict = true;
                continue;
            }
            _ => {}
        }
        let value = match inline {
            Some(v) => v,
            None => argv
                .next()
                .with_context(|| format!("{name} needs a value\n{USAGE}"))?,
        };
        let bad = || format!("{name}: {value:?} is not valid");
        match name.as_str() {
            "--target" => target = Some(value.parse().with_context(bad)?),
            "--server-pid" => server_pid = Some(value.parse().with_context(bad)?),
            "--duration" => a.duration = Duration::from_secs(value.parse().with_context(bad)?),
            "--devices" => a.devices = value.parse().with_context(bad)?,
            "--attacks" => (a.sign_in, a.issuance, a.slowloris) = parse_attacks(&value)?,
            "--fleet-source" => a.fleet_source = value.parse().with_context(bad)?,
            "--attack-source" => a.attack_source = value.parse().with_context(bad)?,
            "--sign-in-in-flight" => a.sign_in_in_flight = value.parse().with_context(bad)?,
            "--sign-in-user" => a.sign_in_user = value,
            "--issuance-connections" => a.issuance_connections = value.parse().with_context(bad)?,
            "--slowloris-connections" => {
                a.slowloris_connections = value.parse().with_context(bad)?
            }
            "--poll-timeout-ms" => {
                a.poll_timeout = Duration::from_millis(value.parse().with_context(bad)?)
            }
            "--p99-target-ms" => a.p99_target_ms = value.parse().with_context(bad)?,
            "--rss-target-mb" => a.rss_target_mb = value.parse().with_context(bad)?,
            "--rss-cap-mb" => a.rss_cap_mb = value.parse().with_context(bad)?,
            "--clk-tck" => a.clk_tck = value.parse().with_context(bad)?,
            other => bail!("unexpected argument {other:?}\n{USAGE}"),
        }
    }
    a.target = target.with_context(|| format!("--target is required\n{USAGE}"))?;
    a.server_pid = server_pid.with_context(|| format!("--server-pid is required\n{USAGE}"))?;
    check(a)
}

/// Refuses arguments that would point the attacks anywhere but this machine, or make
/// the fleet and the attacks indistinguishable to the server.
fn check(a: Args) -> anyhow::Result<Args> {
    // Loopback only: this is an attack tool, pointed at our own server.
    for (what, ip) in [
        ("--target", a.target.ip()),
        ("--fleet-source", a.fleet_source),
        ("--attack-source", a.attack_source),
    ] {
        if !ip.is_loopback() {
            bail!("{what} {ip} is not a loopback address; hostile only runs on 127.0.0.0/8");
        }
    }
    if a.fleet_source == a.attack_source {
        bail!("the fleet and the attacks need different source addresses (per-IP limits)");
    }
    if a.duration.is_zero() || a.clk_tck <= 0.0 {
        bail!("--duration and --clk-tck must be positive");
    }
    Ok(a)
}

/// `"signin,issuance"` as (sign-in, issuance, slowloris); `"none"` or `""` for none.
fn parse_attacks(list: &str) -> anyhow::Result<(bool, bool, bool)> {
    let mut on = (false, false, false);
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        match name {
            "signin" | "sign-in" => on.0 = true,
            "issuance" => on.1 = true,
            "slowloris" => on.2 = true,
            "none" => {}
            other => bail!("unknown attack {other:?}: signin, issuance, slowloris or none"),
        }
    }
    Ok(on)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attacks_are_chosen_by_name() {
        assert_eq!(
            parse_attacks("signin,slowloris").unwrap(),
            (true, false, true)
        );
        assert_eq!(parse_attacks("none").unwrap(), (false, false, false));
        assert_eq!(parse_attacks("").unwrap(), (false, false, false));
        assert!(parse_attacks("ddos").is_err());
    }

    #[test]
    fn only_loopback_is_accepted() {
        let args = |t: &str| {
            parse_args(
                ["--target", t, "--server-pid", "1"]
                    .map(String::from)
                    .into_iter(),
            )
        };
        assert!(args("127.0.0.1:8080").is_ok());
        assert!(args("10.0.0.1:8080").is_err());
    }
}
