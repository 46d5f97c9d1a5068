//! The `deviceflow-loadgen` command: the goose options that act on a fleet (`--host`,
//! `-u` devices, `-r` devices started per second, `-t` run time, ...; the others are
//! refused, `goose_options`) plus the device-flow ones;
//! and `deviceflow-loadgen merge RUN.json…`, which merges shards' runs into one report.
//!
//! Exit status ([`EXIT_STATUS`], also in `--help`): 0 the run is trusted and every
//! threshold passed; 1 a `--threshold` failed; 2 the run could not be set up (nothing
//! ran; a target that cannot be reached or never answers included), its report could
//! not be written (the terminal's copy is printed), or a lane panicked (a defect of
//! the generator: no report); 3 too many requests got no answer
//! (`--max-transport-errors`), or no device got a code (every device authorization
//! refused: a wrong `--client-id`, say), or no poll an answer a device understands:
//! the server was not measured (a run without a code is
//! stopped early once that is sure: `fleet::NoCodeWatch`); 130 and 143 a run stopped
//! by Ctrl-C or SIGTERM (`stop.rs`), its report written.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context};
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser};
use deviceflow_conformance::approver::ApproverArgs;
use deviceflow_conformance::client::AuthMethod;
use deviceflow_conformance::http::Http;
use deviceflow_conformance::runner::check_approver;
use deviceflow_conformance::target::{unusable_endpoint, Target, TargetError};
use deviceflow_conformance::{resolve, Client, TargetSpec};
use deviceflow_loadgen::device::flow::Kind;
use deviceflow_loadgen::device::People;
use deviceflow_loadgen::fleet::shard::Shard;
use deviceflow_loadgen::fleet::{Expectations, FleetConfig};
use deviceflow_loadgen::measure::resources;
use deviceflow_loadgen::report::results::{self, RunData, Setup};
use deviceflow_loadgen::report::thresholds::{self, Threshold};
use deviceflow_loadgen::report::{self, render};
use deviceflow_loadgen::stop::{self, Signal};
use deviceflow_loadgen::{runner, transport, Mix};
use deviceflow_reports::escape::Printable;
use deviceflow_reports::{errln, outln};
use goose::config::GooseConfiguration;

mod goose_options;

/// Simulated device fleets for the OAuth 2.0 Device Authorization Grant (RFC 8628):
/// `-u` devices, started `-r` a second, each running the flow as its behaviour
/// dictates while a simulated person approves, denies or never looks. Writes a report
/// folder. `deviceflow-loadgen merge RUN.json…` merges shards' runs.
#[derive(Parser)]
#[command(
    about,
    disable_version_flag = true,
    after_help = EXIT_STATUS
)]
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
    /// Client secret, for a confidential client (sent as client_secret_basic). An empty
    /// one is none (a public client), so `--client-secret ""` overrides the variable;
    /// a secret from the variable is named in the run's first line and its report.
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
    /// This process runs shard i of n (1-based): the devices i-1, i-1+n, … of the -u.
    #[arg(long, default_value = "1/1", help_heading = "Scale")]
    shard: Shard,
    /// Seeds every device's behaviour, person and jitter (same seed: same fleet).
    #[arg(long, default_value_t = 1, help_heading = "Scale")]
    seed: u64,
    /// Threads of the generator's runtime (1: everything on one thread); at most 4 per CPU.
    #[arg(long, default_value_t = 1, value_parser = at_least_one(), help_heading = "Scale")]
    threads: usize,
    /// goose users that multiplex the devices (default: one per thread); at most one per
    /// device and 16 per CPU.
    #[arg(long, value_parser = at_least_one(), help_heading = "Scale")]
    lanes: Option<usize>,
    /// Keep-alive connections per host, all lanes together (devices share them; a
    /// request waits for a free one when all are busy, and the report says so). The
    /// people's decisions (--admin-token) go on a pool of their own, beside these.
    #[arg(long, default_value_t = 512, value_parser = at_least_one(), help_heading = "Scale")]
    connections: usize,
    /// Requests written at once on one connection, at most (HTTP/1.1 pipelining). 1
    /// sends one at a time, as a device does; more costs the generator about a third of
    /// the CPU per request, but the server then reads several requests at once, which
    /// real devices never make it do (README "Scale").
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256), help_heading = "Scale")]
    pipeline: u16,
    /// Seconds a request may take before it counts as a transport error; also how long
    /// discovery, the check before the run and the scrapes of /metrics wait for each
    /// answer.
    #[arg(long, default_value_t = 10, help_heading = "Scale")]
    request_timeout: u64,
    /// The share of requests (0 to 1) that may get no answer before the run is not
    /// trusted (exit 3).
    #[arg(long, default_value_t = 0.01, help_heading = "Report")]
    max_transport_errors: f64,
    /// Where the report goes (default: reports/loadgen/run-<time>): index.html,
    /// summary.md and run.json, each replaced whole, all or none (README "Report").
    #[arg(long, help_heading = "Report")]
    report_dir: Option<PathBuf>,
    /// Seconds between progress lines (0: none).
    #[arg(long, default_value_t = 5, help_heading = "Report")]
    progress_every: u64,
}

/// The end of `--help`: merging shards, and the exit statuses (as the suite lists its
/// own).
const EXIT_STATUS: &str =
    "Shards' runs (--shard K/N on several machines) are merged into one report with
  deviceflow-loadgen merge RUN.json... [--report-dir DIR]

Exit status:
  0    the run is trusted and every --threshold passed
  1    a --threshold failed
  2    the run could not be set up, and nothing ran (a bad option; a target that
       cannot be reached or never answers; a report folder, report file or -G log
       that cannot be written), or the report could not be written after the run
       (the terminal's copy is printed)
  3    the run is not trusted: too many requests got no answer
       (--max-transport-errors), or no device got a code, or no poll an
       answer a device understands
  130  stopped by Ctrl-C, 143 stopped by SIGTERM: the report covers the run until
       then and says so; a second signal exits at once, without the report";

/// A count of 1 or more: 0 threads, lanes or connections had been read as 1 without a
/// word.
fn at_least_one() -> clap::builder::RangedU64ValueParser<usize> {
    clap::builder::RangedU64ValueParser::new().range(1..)
}

/// `deviceflow-loadgen merge`: shards' run.json files into one report.
#[derive(Parser)]
// bin_name, not only name: clap takes the usage line's from argv[0] otherwise, which
// lacks `merge` ("Usage: deviceflow-loadgen <RUNS>...", a command that fails).
#[command(
    name = "deviceflow-loadgen merge",
    bin_name = "deviceflow-loadgen merge"
)]
struct MergeCli {
    /// The shards' run.json files.
    #[arg(required = true)]
    runs: Vec<PathBuf>,
    /// Where the merged report goes.
    #[arg(long, default_value = "reports/loadgen/merged")]
    report_dir: PathBuf,
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
    // The devices count time in u32 milliseconds: a longer delay wrapped (or, in a
    // debug build, panicked multiplying it into milliseconds).
    if b as f64 > MAX_RUN_S {
        return Err(format!(
            "{b} s is longer than a run can last ({MAX_RUN_S} s, about 49 days)"
        ));
    }
    Ok((a, b))
}

/// The command line: goose's options, with the help of those that mean something else
/// here (goose's users are the lanes, README "Scale") saying what they do, and those
/// that do nothing for the fleet hidden (and refused when given: `goose_options`).
fn command() -> clap::Command {
    let without_effect = goose_options::without_effect();
    // `mut_args`, not `mut_arg`, which moves an option to the end, and its heading
    // with it: goose's "Load test" had come after "Report".
    Cli::command().mut_args(|a| {
        let id = a.get_id().to_string();
        match help_here(&id) {
            Some((help, more)) => a.help(help).long_help(format!("{help}\n\n{more}")),
            None if without_effect.contains(&id) => a.hide(true),
            None => a,
        }
    })
}

/// The help, short and the rest of the long one, of goose's option `id` where it says
/// something else here than in goose.
fn help_here(id: &str) -> Option<(&'static str, &'static str)> {
    Some(match id {
        "host" => (
            "The server's issuer URL, such as http://127.0.0.1:8080; repeatable",
            "An absolute http:// or https:// URL. The endpoints come from its RFC 8414 \
             metadata unless --device-authorization-endpoint and --token-endpoint are given. \
             Given several times, for instances of one server over a shared store: device \
             id issues on host id mod n and polls the others.\n\n\
             Example: --host http://127.0.0.1:8080.",
        ),
        "users" => (
            "Devices in the run, all shards together [default: 1]",
            "How many simulated devices run the flow; goose's users are the lanes \
             (--lanes) that multiplex them. At least 1.\n\nExample: -u 10000.",
        ),
        "increase_rate" => (
            "Devices started per second [default: 1]",
            "How fast devices start, in id order. A decimal is allowed: 0.5 starts one \
             device every two seconds. Not allowed with --increase-time.\n\nExample: -r 500.",
        ),
        "increase_time" => (
            "Time to start all devices, such as 30s, in place of -r",
            "Starts the devices evenly over this time. TIME is as for -t.\n\nExample: -s 2m.",
        ),
        "run_time" => (
            "Run this long, each device that ends replaced by a new one [default: until every device's flow ends]",
            "Without it every device runs its flow once. TIME is seconds, or hours, minutes \
             and seconds such as 1h30m or 90s; above 0.\n\nExample: -t 10m.",
        ),
        // goose's said that goose checks every rule once a second and stops the run when
        // one fails: the rules are judged on the devices' requests, at the end.
        "threshold" => (
            "Pass/fail rule on the devices' requests, such as p99<100ms",
            "RULE is <metric><op><value>, with an optional \" for <request>\". The metric is \
             pNN (a latency percentile, such as p99 or p99.9), avg, max, error-rate \
             (requests that got no answer or an answer no device expects, in percent of \
             those sent), rps (answered requests per second over the run), violations (of \
             RFC 8628, each counted once per device) or lateness-pNN (the generator's delay \
             past the intended send time). The op is <, <=, > or >=. A time takes us, ms or \
             s, a bare number being ms. A rule ending \" for <request>\" judges only that \
             request: device_authorization, token_poll, token_replay_check or approve. The \
             rules are judged once, after the run's report is written, and none stops the \
             run early: the command prints a verdict and exits 1 when a rule failed. Repeat \
             the option for several rules.\n\n\
             Example: --threshold \"p99<100ms for token_poll\" --threshold \"violations<1\".",
        ),
        // goose's said "Set in code with GooseDefault::…" (goose's API, not this
        // command's), that the console shows info by default (here: warnings only,
        // `attack.rs`), and that a bare -G writes into "the run's folder".
        "verbose" => (
            "More of goose's console log (-v, -vv)",
            "goose's console log (of the lanes' start and end) shows warnings and errors              only; -v adds info and debug messages, -vv trace messages. The fleet's own              lines are not goose's and do not change.

Example: -v.",
        ),
        "goose_log" => (
            "Write goose's log to FILE",
            "Writes goose's own log messages (of the lanes' start and end, not the devices'              requests) to FILE, at the detail -g sets. FILE's folder must exist, and FILE              must be a file, not a folder or a device (checked before the run). Without              FILE, goose writes goose-runs/<time>/goose.log under the current folder (its              own run folder, not --report-dir). Without the option, there is no goose log.             

Example: -G goose.log.",
        ),
        "log_level" => (
            "More detail in goose's log (-g, -gg)",
            "The log -G writes holds warnings and errors by default; -g adds info              messages, -gg debug messages and -ggg trace messages.

Example: -G goose.log -gg.",
        ),
        "version" => (
            "Print this command's version",
            "Prints deviceflow-loadgen's version and the goose it is built on, then exits.",
        ),
        _ => return None,
    })
}

/// goose takes one `--host`; the fleet takes several. Every `--host`/`-H` is taken
/// out here, and the first is handed to goose.
fn take_hosts(args: Vec<String>) -> (Vec<String>, Vec<String>) {
    let mut hosts = Vec::new();
    let mut rest = Vec::new();
    let mut it = args.into_iter();
    while let Some(a) = it.next() {
        if a == "--" {
            // What follows is not an option (clap refuses it: no positionals here).
            rest.push(a);
            rest.extend(it.by_ref());
        } else if a == "--host" || a == "-H" {
            if let Some(h) = it.next() {
                hosts.push(h);
            }
        } else if let Some(h) = a.strip_prefix("--host=") {
            hosts.push(h.to_owned());
        } else if let Some(h) = a.strip_prefix("-H") {
            // `-Hhttp://…` and `-H=http://…`, as clap reads a short option's value:
            // they had been passed on to clap and the host never seen ("give --host").
            hosts.push(h.strip_prefix('=').unwrap_or(h).to_owned());
        } else {
            rest.push(a);
        }
    }
    if let Some(first) = hosts.first() {
        rest.push("--host".to_owned());
        rest.push(first.clone());
    }
    (hosts, rest)
}

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("merge") {
        let cli = MergeCli::try_parse_from(args[..1].iter().chain(&args[2..]))
            .unwrap_or_else(|e| usage_error("deviceflow-loadgen merge", e));
        std::process::exit(match merge(cli) {
            Ok(code) => code,
            Err(e) => {
                errln!("deviceflow-loadgen merge: {e:#}");
                2
            }
        });
    }
    let (hosts, rest) = take_hosts(args);
    let matches = command()
        .try_get_matches_from(rest)
        .unwrap_or_else(|e| usage_error("deviceflow-loadgen", e));
    if matches.get_flag("version") {
        let _ = outln!(
            "deviceflow-loadgen {} (goose 0.19)",
            env!("CARGO_PKG_VERSION")
        );
        std::process::exit(0);
    }
    if let Some(refusal) = goose_options::refused(&matches) {
        errln!("deviceflow-loadgen: {refusal}");
        std::process::exit(2);
    }
    let secret_from_env = matches.value_source("client_secret") == Some(ValueSource::EnvVariable);
    let cli =
        Cli::from_arg_matches(&matches).unwrap_or_else(|e| usage_error("deviceflow-loadgen", e));
    // Before the runtime, which starts them.
    if let Err(why) = check_threads(cli.threads) {
        errln!("deviceflow-loadgen: {why}");
        std::process::exit(2);
    }
    // One thread by default: the lanes, the connections and the timers share it, so a
    // request costs no wake-up of another thread (README, "Scale"). More cores: more
    // --threads, or more processes with --shard.
    let built = if cli.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(cli.threads)
            .enable_all()
            .build()
    };
    let runtime = match built {
        Ok(rt) => rt,
        Err(e) => {
            errln!("deviceflow-loadgen: cannot start the runtime: {e}");
            std::process::exit(2);
        }
    };
    let outcome = runtime.block_on(async {
        // From the start: a signal during the setup (discovery can take
        // --request-timeout) or while goose builds its users had killed the process
        // (goose's Ctrl-C handler comes later, and it never handled SIGTERM).
        let signals = stop::listen().context("cannot listen for Ctrl-C and SIGTERM")?;
        real_main(cli, hosts, secret_from_env, signals).await
    });
    match outcome {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // The cause may quote the server (its metadata answer): shown, not obeyed.
            errln!("deviceflow-loadgen: {}", Printable(&format!("{e:#}")));
            std::process::exit(2);
        }
    }
}

/// clap's refusal of the command line, in one line in this command's words (exit 2),
/// after `name`:
/// clap's own had several, its tip and usage included, and said a range as
/// "0 is not in 1..18446744073709551615". `--help` is printed as clap prints it.
fn usage_error(name: &str, e: clap::Error) -> ! {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) {
        e.exit();
    }
    let context = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => Some(s.clone()),
        Some(ContextValue::Strings(s)) => Some(s.join(", ")),
        _ => None,
    };
    // The option as named on the command line, without clap's `<VALUE>`.
    let option = context(ContextKind::InvalidArg)
        .map(|a| a.split(' ').next().unwrap_or_default().to_owned());
    let said = match (e.kind(), option, context(ContextKind::InvalidValue)) {
        (ErrorKind::MissingRequiredArgument, Some(_), _) => {
            let text = e.to_string();
            let usage = text
                .lines()
                .find_map(|l| l.strip_prefix("Usage: "))
                .unwrap_or_default();
            format!(
                "give {} (Usage: {usage})",
                context(ContextKind::InvalidArg).unwrap_or_default()
            )
        }
        (ErrorKind::ValueValidation | ErrorKind::InvalidValue, Some(option), Some(value)) => {
            // The validator's own words, when it had some.
            let why = std::error::Error::source(&e)
                .map(|w| w.to_string())
                .unwrap_or_default();
            let why = match why.as_str() {
                w if w.starts_with("0 is not in 1..") => "give 1 or more".to_owned(),
                "" => match context(ContextKind::ValidValue) {
                    Some(valid) => format!("give one of {valid}"),
                    None => "not a value it takes".to_owned(),
                },
                w => w.to_owned(),
            };
            format!("{option} {value:?}: {why}")
        }
        _ => {
            // The first line, which says it, without clap's "error: " and its tip.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            first.strip_prefix("error: ").unwrap_or(first).to_owned()
        }
    };
    errln!("{name}: {said} (see --help)");
    std::process::exit(2);
}

/// Prints the run, judges the thresholds and the trust bar, and returns the exit
/// status. `written` is how writing the report to `report_dir` went: the terminal's
/// copy is printed either way, and a report that could not be written is said in one
/// line naming the file, exit 2 whatever the run's verdict (a CI job must not take a
/// run whose report is missing for a measured one). A standard output that cannot be
/// written (a closed pipe, a full disk) loses only the terminal's copy: a line on
/// standard error says where the report is, and the status is 2 unless the verdicts'
/// own (1, 3, 130, 143) says more.
fn finish(
    run: &RunData,
    rules: &[Threshold],
    report_dir: &Path,
    written: anyhow::Result<()>,
) -> i32 {
    let mut code = 0;
    let verdicts: Vec<_> = rules
        .iter()
        .map(|t| t.judge(&run.stats, run.duration_s))
        .collect();
    if verdicts.iter().any(|v| !v.passed) {
        code = 1;
    }
    let printed = outln!("{}", render::terminal(run))
        .and_then(|()| match &written {
            Ok(()) => outln!(
                "report: {}/index.html (and summary.md, run.json)",
                report_dir.display()
            ),
            Err(_) => Ok(()),
        })
        .and_then(|()| {
            if verdicts.is_empty() {
                Ok(())
            } else {
                outln!("\n{}", thresholds::verdict_text(&verdicts))
            }
        });
    if let Some(reason) = run.untrusted_reason() {
        errln!(
            "deviceflow-loadgen: run not trusted: {}",
            Printable(&reason)
        );
        code = 3;
    }
    // A run the generator stopped early is said in the line above (exit 3).
    if let Some((t, by)) = run.stopped_by_signal() {
        errln!(
            "deviceflow-loadgen: stopped by {by} at {t:.0} s; the report covers the run until then"
        );
        code = Signal::named(by).unwrap_or(Signal::CtrlC).exit_code();
    }
    if let Err(e) = printed {
        match &written {
            Ok(()) => errln!(
                "deviceflow-loadgen: {e}; the report is in {}",
                report_dir.display()
            ),
            Err(_) => errln!("deviceflow-loadgen: {e}"),
        }
        if code == 0 {
            code = 2;
        }
    }
    if let Err(e) = written {
        errln!(
            "deviceflow-loadgen: the report could not be written: {}",
            Printable(&format!("{e:#}"))
        );
        code = 2;
    }
    code
}

/// The longest `-t`, in s: the lanes count time in u32 milliseconds.
const MAX_RUN_S: f64 = (u32::MAX / 1000 - 1) as f64;

/// The most lanes per CPU: a lane is a goose user, which goose builds one by one with
/// an HTTP client of its own before the run starts (5,000 took over a minute); past
/// one per thread a lane adds no parallelism, only its share of the connections.
const LANES_PER_CPU: usize = 16;

/// The most runtime threads per CPU: past the CPUs threads only take turns on them, and
/// `--threads 100000` had sat starting threads with nothing said (killed after 20 s).
const THREADS_PER_CPU: usize = 4;

/// `--threads` within what the machine runs at once, or why not.
fn check_threads(threads: usize) -> Result<(), String> {
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let most = THREADS_PER_CPU * cpus;
    if threads > most {
        return Err(format!(
            "--threads {threads}: at most {THREADS_PER_CPU} per CPU ({most} on this machine's {cpus}); more only take turns on them (more machines: --shard)"
        ));
    }
    Ok(())
}

fn merge(cli: MergeCli) -> anyhow::Result<i32> {
    let mut runs = Vec::new();
    for p in &cli.runs {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
        // The schema first: a run of another version is told as such, not as a file
        // missing this version's fields.
        #[derive(serde::Deserialize)]
        struct Schema {
            schema: String,
        }
        if let Ok(Schema { schema }) = serde_json::from_str::<Schema>(&text) {
            if schema.starts_with("deviceflow-loadgen/") && schema != results::SCHEMA {
                anyhow::bail!(
                    "{}: a run of schema {schema}, and this deviceflow-loadgen merges {} (shards are run by one build)",
                    p.display(),
                    results::SCHEMA
                );
            }
        }
        let run: RunData = serde_json::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: not a deviceflow-loadgen run ({e})", p.display()))?;
        runs.push((p.display().to_string(), run));
    }
    let merged = RunData::merge(runs).map_err(anyhow::Error::msg)?;
    let written = report::write(&merged, &cli.report_dir);
    Ok(finish(&merged, &[], &cli.report_dir, written))
}

/// What the checks of the command line alone found (`check_options`).
struct Checked {
    rules: Vec<Threshold>,
    client: Client,
    /// The environment variable the client's secret came from, when it did.
    secret_from: Option<&'static str>,
}

/// The environment variable `--client-secret` is read from when not given.
const CLIENT_SECRET_ENV: &str = "DEVICEFLOW_CLIENT_SECRET";

async fn real_main(
    mut cli: Cli,
    hosts: Vec<String>,
    secret_from_env: bool,
    mut signals: tokio::sync::watch::Receiver<Option<Signal>>,
) -> anyhow::Result<i32> {
    let Checked {
        rules,
        client,
        secret_from,
    } = check_options(&mut cli, &hosts, secret_from_env)?;
    let host = hosts.join(", ");
    // A signal before the run: nothing was sent that a report could describe, and no
    // report folder was made yet.
    let config = tokio::select! {
        config = prepare(&cli, &hosts, &client, secret_from) => config?,
        Ok(signal) = signals.wait_for(Option::is_some) => {
            let signal = signal.unwrap_or(Signal::CtrlC);
            errln!(
                "deviceflow-loadgen: stopped by {} before the run began: no device ran, and no report was written",
                signal.as_str()
            );
            return Ok(signal.exit_code());
        }
    };
    let mut setup = Setup::new(
        redacted_command(std::env::args()),
        hosts.clone(),
        &config,
        &client.id,
        cli.max_transport_errors,
    );
    setup.client_secret_from = secret_from.map(str::to_owned);
    let report_dir = cli.report_dir.clone().unwrap_or_else(|| {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        PathBuf::from(format!("reports/loadgen/run-{t}"))
    });
    // Found after the run, an unwritable folder would lose the run's results.
    let created = report_folder(&report_dir)?;
    // A run that ends in an error writes no report: the folder it made goes with it,
    // so that no empty folder is taken for a report.
    let remove_if_made = || {
        if created {
            let _ = std::fs::remove_dir(&report_dir);
        }
    };
    // A standard output that cannot be written (a full disk) would lose the run too:
    // goose prints a line there as the lanes start, with `println!`, which panics when
    // it cannot. This line finds that out before any device runs. (A pipe closed
    // later, after goose's line, costs only the terminal's copy: `finish`.)
    let secret = match secret_from {
        Some(var) => format!(" (client {}, its secret from {var})", client.id),
        None => String::new(),
    };
    if let Err(e) = outln!(
        "deviceflow-loadgen: {} devices against {host}{secret}; the report goes to {}",
        config.devices,
        report_dir.display()
    ) {
        remove_if_made();
        return Err(e.into());
    }
    let run = match runner::run(
        config,
        cli.goose,
        setup,
        Duration::from_secs(cli.progress_every),
    )
    .await
    {
        Ok(run) => run,
        Err(e) => {
            remove_if_made();
            return Err(e);
        }
    };
    let written = report::write(&run, &report_dir);
    Ok(finish(&run, &rules, &report_dir, written))
}

/// Checks what the command line alone can tell, before anything is sent: the hosts,
/// the numbers, the thresholds, goose's log, the memory the fleet needs, the client.
fn check_options(
    cli: &mut Cli,
    hosts: &[String],
    secret_from_env: bool,
) -> anyhow::Result<Checked> {
    if hosts.is_empty() {
        bail!("give --host (the server's issuer URL, e.g. http://127.0.0.1:8080)");
    }
    for h in hosts {
        check_host(h)?;
    }
    for (name, url) in [
        (
            "--device-authorization-endpoint",
            &cli.device_authorization_endpoint,
        ),
        ("--token-endpoint", &cli.token_endpoint),
    ] {
        if let Some(url) = url.as_deref().filter(|u| has_space_or_control(u)) {
            bail!("{name} {url:?} has a space or a control character in it; give the URL alone, such as http://127.0.0.1:8080/oauth/token");
        }
    }
    // As the suite refuses it: an empty client_id had the run go on to a 400 from the
    // server, "not trusted" (exit 3), as if the server were at fault.
    if cli.client_id.trim().is_empty() {
        bail!("--client-id is empty: give the client_id the server registered for the devices");
    }
    if cli.deny_percent + cli.never_percent > 100 {
        bail!("--deny-percent and --never-percent add up to more than 100");
    }
    if !(0.0..=1.0).contains(&cli.max_transport_errors) {
        bail!("--max-transport-errors is a fraction from 0 to 1, e.g. 0.01");
    }
    if cli.goose.users == Some(0) {
        bail!("-u 0: give the number of devices, 1 or more");
    }
    // A shard of more shards than devices has none: it ran, and ended "NOT TRUSTED: no
    // request was sent" (exit 3), as if the server were at fault.
    let users = cli.goose.users.unwrap_or(1) as u64;
    if cli.shard.devices_of(users) == 0 {
        bail!(
            "--shard {} with -u {users}: this shard has no device (shard i of n runs devices i-1, i-1+n, …); give -u of at least {} or fewer shards",
            cli.shard,
            cli.shard.index + 1
        );
    }
    // RFC 8628 §3.2: expires_in is a lifetime and interval a wait, both in seconds; 0
    // of either had run, then charged the server with handing out another (DR-05, DR-06).
    for (name, value) in [
        ("--expect-expires-in", cli.expect_expires_in),
        ("--expect-interval", cli.expect_interval),
    ] {
        if value == Some(0) {
            bail!("{name} 0: RFC 8628 §3.2 gives it in whole seconds above 0; give 1 or more, or leave it out");
        }
    }
    // --help says -r is not allowed with -s: -r had won without a word.
    if let (Some(r), Some(s)) = (&cli.goose.increase_rate, &cli.goose.increase_time) {
        bail!("-r {r} and -s {s} both say how fast the devices start: give one of them");
    }
    if let Some(t) = &cli.goose.run_time {
        let secs = parse_secs("-t", t)?;
        if secs <= 0.0 {
            bail!("-t {t}: give a run time above 0 (e.g. 90s), or leave -t out to run each device's flow once");
        }
        // The lanes count the run's time in u32 milliseconds: a longer -t would wrap
        // (and one past a Duration's range would panic).
        if secs > MAX_RUN_S {
            bail!("-t {t}: give a run time of at most {MAX_RUN_S} s (about 49 days)");
        }
    }
    // 0 had been read as 1 s without a word. Checked here: discovery waits this long.
    if cli.request_timeout == 0 {
        bail!("--request-timeout 0: a request needs time to be answered; give seconds above 0");
    }
    check_lanes(cli)?;
    if let Some(log) = &cli.goose.goose_log {
        check_goose_log(log)?;
    }
    check_memory(cli)?;
    // Thresholds are judged on the devices' requests, after the report: goose must
    // not judge (or abort on) its own metrics, which only see the lanes.
    let rules: Vec<Threshold> = std::mem::take(&mut cli.goose.threshold)
        .iter()
        .map(|t| t.parse())
        .collect::<Result<_, String>>()
        .map_err(anyhow::Error::msg)?;
    // A rule on the replay check, which --no-replay-check turns off, could only end
    // "observed no samples" (exit 1).
    if let Some(rule) = rules
        .iter()
        .find(|r| cli.no_replay_check && r.kind() == Some(Kind::ReplayCheck))
    {
        bail!(
            "--threshold \"{}\" is held to token_replay_check, which --no-replay-check turns off: drop one of them",
            rule.rule()
        );
    }
    // As the suite does: an empty secret is none (a public client), so an empty
    // DEVICEFLOW_CLIENT_SECRET, or `--client-secret ""` over a set one, is a public
    // client; a secret from the variable is named, as nobody typed it.
    let secret = cli.client_secret.clone().filter(|s| !s.is_empty());
    let secret_from = (secret.is_some() && secret_from_env).then_some(CLIENT_SECRET_ENV);
    let client = Client {
        id: cli.client_id.clone(),
        method: if secret.is_some() {
            AuthMethod::Basic
        } else {
            AuthMethod::None
        },
        secret,
    };
    // As the suite does: roots SSL_CERT_FILE / SSL_CERT_DIR name that cannot be read
    // would have the server's certificate said to come from an unknown CA.
    let urls = hosts
        .iter()
        .chain(&cli.device_authorization_endpoint)
        .chain(&cli.token_endpoint);
    if urls.into_iter().any(|u| u.starts_with("https://")) {
        deviceflow_device::tls::named_roots_readable().map_err(anyhow::Error::msg)?;
    }
    Ok(Checked {
        rules,
        client,
        secret_from,
    })
}

/// Whether `s` has whitespace or a control character in it.
fn has_space_or_control(s: &str) -> bool {
    s.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// A `--host` the fleet can use, or why not in one line.
fn check_host(h: &str) -> anyhow::Result<()> {
    // Before the URL parser, which drops spaces at either end: a trailing one had
    // failed as "invalid port number", as if the server could not be reached, and a
    // leading one as "the load generator speaks http:// and https:// only".
    if has_space_or_control(h) {
        bail!("--host {h:?} has a space or a control character in it; give the URL alone, such as http://127.0.0.1:8080");
    }
    // As the suite says it: `127.0.0.1:8080` had been tried, and failed as "relative URL
    // without a base", as if the server could not be reached.
    match unusable_endpoint(h) {
        // Not echoed, as the suite does: the password would be in every log after.
        Some(why) if why.contains("user:password@") => {
            bail!("--host: a URL {why}; give the client's secret with --client-secret")
        }
        Some(why) => bail!("--host {h:?}, {why}; give one like http://127.0.0.1:8080"),
        None => {}
    }
    // RFC 8414 §2: an issuer "has no query or fragment components"; the metadata URL
    // made from it had the query inside its path (`…/?x=1/.well-known/…`).
    if h.contains(['?', '#']) {
        bail!("--host {h:?} has a query or fragment, which the server's issuer URL never has (RFC 8414 §2); give it as the server's metadata names it, such as http://127.0.0.1:8080");
    }
    Ok(())
}

/// `--lanes` within what a lane is for: at most one per device this process runs
/// (a lane without a device does nothing) and [`LANES_PER_CPU`] per CPU. The default
/// (one per thread) is kept to the devices without a word.
fn check_lanes(cli: &Cli) -> anyhow::Result<()> {
    let Some(lanes) = cli.lanes else {
        return Ok(());
    };
    let devices = cli.shard.devices_of(cli.goose.users.unwrap_or(1) as u64);
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let most = (LANES_PER_CPU * cpus) as u64;
    if lanes as u64 > devices.min(most) {
        bail!(
            "--lanes {lanes}: at most one per device this process runs ({devices}) and {LANES_PER_CPU} per CPU ({most} on this machine's {cpus}); a lane multiplexes many devices, so one per --threads (the default) is enough"
        );
    }
    Ok(())
}

/// goose's log at `path` (`-G`) can be written: checked before the run, as goose
/// opens it only as the run starts, and panicked (exit 101, a backtrace, an empty
/// report folder) on a folder or a missing folder, and wrote to a device such as
/// /dev/full without a word while the log was lost.
fn check_goose_log(path: &str) -> anyhow::Result<()> {
    // A bare -G (goose's own run folder) or an empty one (none).
    if path == goose::config::RUN_FOLDER || path.is_empty() {
        return Ok(());
    }
    let p = Path::new(path);
    match std::fs::metadata(p) {
        Ok(m) if m.is_dir() => {
            bail!("-G {path}: is a folder; give a file, such as -G {path}/goose.log")
        }
        Ok(m) if !m.is_file() => bail!(
            "-G {path}: not a regular file (a device, a pipe or a socket), where goose's log could be lost without a word; give a file, such as -G goose.log"
        ),
        _ => {}
    }
    let folder = p
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    if !folder.is_dir() {
        bail!(
            "-G {path}: its folder {} does not exist (goose does not make it)",
            folder.display()
        );
    }
    let existed = p.exists();
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(p)
        .with_context(|| format!("-G {path}: cannot be written"))?;
    if !existed {
        let _ = std::fs::remove_file(p);
    }
    Ok(())
}

/// Finds the target and checks it answers, before anything is sent that counts:
/// discovery, the fleet's config, the approver, a `GET /` to every host (each within
/// `--request-timeout`).
async fn prepare(
    cli: &Cli,
    hosts: &[String],
    client: &Client,
    secret_from: Option<&'static str>,
) -> anyhow::Result<FleetConfig> {
    let host = &hosts[0];
    let timeout = Duration::from_secs(cli.request_timeout);
    let spec = TargetSpec {
        issuer: Some(host.clone()),
        device_authorization_endpoint: cli.device_authorization_endpoint.clone(),
        token_endpoint: cli.token_endpoint.clone(),
        client: Some(client.clone()),
        client_secret_from: secret_from,
        ..TargetSpec::default()
    };
    // The suite's address rule: the metadata may name endpoints only at addresses of
    // the kinds the hosts named here are at (public ones always).
    let http = Http::new(timeout, spec.reach(false).await);
    let target = match resolve(spec, &http).await {
        Ok(target) => target,
        Err(e) => bail!(discovery_failed(e, host, timeout).await),
    };
    // RFC 8628 §4: metadata without an endpoint nobody gave (MD-01, MD-04): the
    // fleet had posted to the host's root. (An endpoint at an address the suite would
    // not reach is the suite's rule, not the fleet's: the fleet sends to the host.)
    if let Some(cause) = target
        .root_cause
        .as_ref()
        .filter(|c| matches!(c.case, Some("MD-01" | "MD-04")))
    {
        bail!(cause
            .summary
            .replace("to test the rest", "to run the fleet"));
    }
    let config = fleet_config(cli, hosts, host, &target, client)?;
    // The server first: a server that cannot be reached had been said as an approver
    // that does not work (its admin endpoint is the server's).
    for t in &config.targets {
        transport::check(t, timeout)
            .await
            .map_err(anyhow::Error::msg)?;
    }
    // As the suite does: a wrong --admin-token had every decision refused, and the
    // fleet polled on until its codes expired.
    if let Some(problem) = check_approver(&config.approver).await {
        bail!("the approver does not work: {problem}");
    }
    Ok(config)
}

/// Why discovery at `host` found no target, in this command's words: the suite's
/// said "check --issuer", an option this command does not have, and "cannot reach …:
/// timed out" of a server that took the connection and never answered.
async fn discovery_failed(e: TargetError, host: &str, timeout: Duration) -> String {
    match e {
        TargetError::NoMetadata(url, tried) => format!(
            "no OAuth metadata at {url} ({tried}): check --host, or give --device-authorization-endpoint and --token-endpoint"
        ),
        TargetError::Unreachable(issuer, why) if why.starts_with("timed out") => {
            match transport::target_of(host) {
                Ok(t) if transport::connects(&t, timeout).await => format!(
                    "{issuer} accepted the connection but sent no answer within {} s (--request-timeout): is it an HTTP server, and is it up?",
                    timeout.as_secs()
                ),
                _ => format!(
                    "cannot reach {issuer}: no connection within {} s (--request-timeout): is the server up, and is --host right?",
                    timeout.as_secs()
                ),
            }
        }
        TargetError::Unreachable(issuer, why) => {
            format!("cannot reach {issuer}: {why}: is the server up, and is --host right?")
        }
        e => e.to_string(),
    }
}

/// The fleet the command line asks for, against `target` (resolved from `host`, the
/// first of `hosts`): goose's users and rates read as devices, the rest from our flags.
fn fleet_config(
    cli: &Cli,
    hosts: &[String],
    host: &str,
    target: &Target,
    client: &Client,
) -> anyhow::Result<FleetConfig> {
    let approver = cli.approver.build(Some(host)).map_err(anyhow::Error::msg)?;
    let mut config = FleetConfig::new(
        hosts,
        &target.device_authorization_endpoint,
        &target.token_endpoint,
        client,
        cli.scope.as_deref(),
        approver,
    )
    .map_err(anyhow::Error::msg)?;
    let devices = cli.goose.users.unwrap_or(1) as u64;
    config.devices = devices;
    config.hatch_rate = hatch_rate(cli, devices)?;
    config.run_time = cli
        .goose
        .run_time
        .as_deref()
        .map(|t| parse_secs("-t", t))
        .transpose()?
        .map(Duration::from_secs_f64);
    // Without -t every device starts: the last one must start within what the lanes
    // count (u32 ms), or the run waits for it for ever, to the user (and its start
    // time saturates). With -t, the devices due after it never start.
    let last_start_s = devices.saturating_sub(1) as f64 / config.hatch_rate;
    if config.run_time.is_none() && last_start_s > MAX_RUN_S {
        let asked = match (&cli.goose.increase_rate, &cli.goose.increase_time) {
            (Some(r), _) => format!("-r {r}"),
            (None, Some(s)) => format!("-s {s}"),
            (None, None) => format!("-u {devices} at -r 1 (the default)"),
        };
        bail!(
            "{asked}: the last of the {devices} devices would start {last_start_s:.0} s into the run, later than a run can last ({MAX_RUN_S} s, about 49 days): start them faster, or give -t"
        );
    }
    config.mix = cli.mix.clone();
    config.people = People {
        approve_delay_ms: (cli.decide_after.0 * 1000, cli.decide_after.1 * 1000),
        deny_pct: cli.deny_percent,
        never_pct: cli.never_percent,
    };
    config.expect = Expectations {
        expires_in: cli.expect_expires_in,
        interval: cli.expect_interval,
    };
    config.verify_single_use = !cli.no_replay_check;
    // 0 would end every device's flow before its first answer (all "unfinished").
    if cli.max_flow == Some(0) {
        bail!("--max-flow 0: every device would give up before its first answer; give seconds above 0, or leave it out");
    }
    config.max_flow = cli.max_flow.map(Duration::from_secs);
    config.shard = cli.shard;
    config.seed = cli.seed;
    // The default, one lane per thread, at most one per device (`check_lanes` refuses
    // more given with --lanes).
    config.lanes = cli
        .lanes
        .unwrap_or_else(|| {
            cli.threads
                .min(cli.shard.devices_of(devices).max(1) as usize)
        })
        .max(1);
    config.connections = cli.connections.max(config.lanes);
    config.pipeline = usize::from(cli.pipeline);
    config.request_timeout = Duration::from_secs(cli.request_timeout);
    Ok(config)
}

/// Devices started a second, from `-r` or `-s` (1 when neither is given).
fn hatch_rate(cli: &Cli, devices: u64) -> anyhow::Result<f64> {
    Ok(match (&cli.goose.increase_rate, &cli.goose.increase_time) {
        (Some(r), _) => r
            .parse::<f64>()
            .ok()
            .filter(|r| r.is_finite() && *r > 0.0)
            .with_context(|| format!("-r {r}: give the devices started per second, e.g. 500"))?,
        (None, Some(s)) => match parse_secs("-s", s)? {
            // 0 s read as a thousandth of one: a start rate nobody asked for.
            t if t > 0.0 => devices as f64 / t,
            _ => bail!("-s {s}: give the time to start all devices in, above 0, e.g. 30s"),
        },
        (None, None) => 1.0,
    })
}

/// Refuses a fleet that cannot fit in the memory this process may use, before
/// anything runs: out of memory, it had aborted mid-run ("memory allocation of
/// 6815744 bytes failed", exit 134) with no report. A lane keeps a record for each
/// device it starts (with -t, an ended device's slot is reused), so what counts is
/// this shard's share of the devices that start, all of them or those due within -t.
fn check_memory(cli: &Cli) -> anyhow::Result<()> {
    let devices = cli.goose.users.unwrap_or(1) as u64;
    let rate = hatch_rate(cli, devices)?;
    let started = match cli
        .goose
        .run_time
        .as_deref()
        .map(|t| parse_secs("-t", t))
        .transpose()?
    {
        // Device id starts at id ÷ rate s: those below rate × t start within -t.
        Some(t) => devices.min((rate * t).ceil() as u64),
        None => devices,
    };
    let mine = cli.shard.devices_of(started);
    match resources::memory_shortfall(mine, &resources::memory_rooms()) {
        Some(why) => bail!("{why}"),
        None => Ok(()),
    }
}

/// Checks that the report can be written into `dir`, making it if need be, before the
/// run: `dir` is a folder (or can be made one), a file can be written in it, and none
/// of the report's files is a folder there (`report::check_replaceable`). Whether it
/// made the folder.
fn report_folder(dir: &Path) -> anyhow::Result<bool> {
    let named = || format!("--report-dir {}", dir.display());
    let existed = match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => true,
        // `/dev/full`, a file: "cannot create it: File exists" had not said why.
        Ok(_) => bail!(
            "{}: it is not a folder; give a folder (made if need be)",
            named()
        ),
        Err(_) => false,
    };
    deviceflow_reports::files::create_folder(dir)
        .with_context(|| format!("{}: cannot create it", named()))?;
    let check = || -> anyhow::Result<()> {
        let probe = dir.join(format!(".deviceflow-loadgen-probe-{}", std::process::id()));
        std::fs::write(&probe, b"").with_context(|| format!("{}: cannot write in it", named()))?;
        std::fs::remove_file(&probe)
            .with_context(|| format!("{}: cannot remove a file from it", named()))?;
        report::check_replaceable(dir).with_context(named)
    };
    if let Err(e) = check() {
        if !existed {
            let _ = std::fs::remove_dir(dir);
        }
        return Err(e);
    }
    Ok(!existed)
}

/// The command line as run, with secrets' values replaced by `…`
/// ([`redact_argv`](deviceflow_conformance::approver::redact_argv)), those in the
/// approver command's words too: it is in every report.
fn redacted_command(args: impl Iterator<Item = String>) -> String {
    let args: Vec<String> = args.collect();
    deviceflow_conformance::approver::redact_argv(&args).join(" ")
}

/// goose's time syntax: `90`, `90s`, `10m`, `1h30m`, given as `option`'s value; the
/// error is one line naming both (it had ended "cannot parse float from empty string"
/// for `-t 5ms`).
fn parse_secs(option: &str, s: &str) -> anyhow::Result<f64> {
    let not_a_time = || {
        anyhow::anyhow!("{option} {s}: not a time; give seconds, or hours, minutes and seconds such as 90s, 10m or 1h30m")
    };
    let mut total = 0.0;
    let mut num = String::new();
    for c in s.trim().chars() {
        match c {
            '0'..='9' | '.' => num.push(c),
            'h' | 'm' | 's' => {
                let n: f64 = num.parse().map_err(|_| not_a_time())?;
                total += n * match c {
                    'h' => 3600.0,
                    'm' => 60.0,
                    _ => 1.0,
                };
                num.clear();
            }
            _ => return Err(not_a_time()),
        }
    }
    if !num.is_empty() {
        total += num.parse::<f64>().map_err(|_| not_a_time())?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_in_the_reports_shows_no_secret() {
        let args = [
            "deviceflow-loadgen",
            "--host",
            "http://127.0.0.1:8080",
            "--client-secret",
            "S3CRET",
            "--admin-token=T0K3N",
            "--approver",
            "command",
            "--approver-command",
            "approve.py --admin-token HUNTER2 {user_code}",
            "--approver-command=approve.py --password=PW {user_code}",
            "--device-authorization-endpoint",
            "http://127.0.0.1:8080/oauth/device_authorization",
        ]
        .map(str::to_owned);
        assert_eq!(
            super::redacted_command(args.into_iter()),
            "deviceflow-loadgen --host http://127.0.0.1:8080 --client-secret … --admin-token=… --approver command --approver-command approve.py --admin-token … {user_code} --approver-command=approve.py --password=… {user_code} --device-authorization-endpoint http://127.0.0.1:8080/oauth/device_authorization"
        );
    }

    #[test]
    fn every_option_and_subcommand_has_help() {
        let missing = deviceflow_testkit::cli::without_help(&super::command());
        assert!(missing.is_empty(), "no help: {missing:?}");
    }
}
