//! The `deviceflow-conformance` command.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use clap::builder::RangedU64ValueParser;
use clap::parser::ValueSource;
use clap::{CommandFactory, FromArgMatches, Parser, ValueEnum};
use deviceflow_conformance::approver::ApproverArgs;
use deviceflow_conformance::client::AuthMethod;
use deviceflow_conformance::context::Expectation;
use deviceflow_conformance::http::Http;
use deviceflow_conformance::report;
use deviceflow_conformance::report::{exit, Signal};
use deviceflow_conformance::target::{lower_scheme_and_host, TargetError};
use deviceflow_conformance::{resolve_reporting, Client, Options, Selection, TargetSpec};
use deviceflow_reports::{errln, stdio};
use tokio::sync::watch;

/// The longest `--max-wait`: a day. Longer is a typo, and would overflow the waits.
const MAX_WAIT_SECS: u64 = 86_400;
/// The most `--samples`: enough for any uniqueness or entropy judgement, few enough to
/// hold in memory and not to flood a server.
const MAX_SAMPLES: u64 = 10_000;

/// The environment variable `--client-secret` is read from when not given.
const CLIENT_SECRET_ENV: &str = "DEVICEFLOW_CLIENT_SECRET";

const EXAMPLES: &str = "\
Examples:
  # deviceflow-server (started with --expires-in 30, within the default --max-wait),
  # endpoints found by discovery, the person played by its admin endpoint:
  deviceflow-conformance --issuer http://127.0.0.1:8080 --client-id demo-device \\
    --scope openid --second-client demo-confidential:demo-secret \\
    --approver admin --admin-token \"$ADMIN\" --markdown report.md --json report.json

  # Any server, endpoints given by hand, the person played by a script of yours
  # ({user_code} and {action} are filled in; exit 0 means done, 65 that the server
  # refused the code or the decision, anything else that the script itself failed):
  deviceflow-conformance --issuer http://127.0.0.1:8001/o \\
    --device-authorization-endpoint http://127.0.0.1:8001/o/device-authorization/ \\
    --client-id my-device --approver command \\
    --approver-command \"python3 my-approver.py {user_code} {action}\"

  # Only the polling rules, holding a server that enforces slow_down to it:
  deviceflow-conformance --issuer https://as.example --client-id tv --only A.6 --expect slow-down

Profiles (--expect):
  (none)      the RFC as written: slow_down is the server's option (RFC 8628 §3.5), so
              PL-01 and PL-07 only report what the server does (info).
  slow-down   the operator says the server enforces the interval: too-fast polls must get
              slow_down (PL-01), the +5 s must be tracked and kept for all later polls
              (PL-07); each broken one is a MUST failure.

Exit codes:
  0  every MUST (and Derived-MUST) case held, but for the browser rows and the soak
     without --soak, which this mode does not run (the last line counts them)
  1  a MUST or Derived-MUST case failed
  2  bad usage: wrong or missing options
  3  the target could not be tested (unreachable, not an OAuth endpoint, the client
     refused): the one root cause is printed, and no case was run
  4  no MUST failed, but MUST cases were not judged, in whole or in part: they need
     a person's decision and there is no approver, or it did not work, their waits
     are over the --max-wait budget (codes that live longer than it) or do not fit in
     a code's life, too few samples succeeded, or the suite could not finish them
     (inconclusive): the last line says how many
  130, 143  interrupted by SIGINT (Ctrl-C) or SIGTERM: the reports asked for are
     written with what finished, marked INTERRUPTED, the rest inconclusive; a second
     signal exits at once, without them
  The reports asked for are written whenever the run starts, exit 3 included (the
  root cause in them); a report file from an earlier run is removed as the run
  starts, and each is written whole (a file beside it, renamed into place). A report
  that cannot be written is found before the run (exit 2). If one still fails after
  the run, the others are written, the error is printed, and the exit code is 2
  unless the run's own is 1, 3, 130 or 143, which it stays.";

/// Runs the RFC 8628 (OAuth 2.0 Device Authorization Grant) conformance suite against a
/// device-flow server and says, case by case, with the RFC section and the evidence,
/// what it does right and wrong.
#[derive(Parser)]
#[command(version, about, after_help = EXAMPLES)]
struct Cli {
    /// Issuer: metadata is discovered from it (RFC 8414, then OpenID Connect).
    #[arg(long)]
    issuer: Option<String>,
    /// Device authorization endpoint (overrides the metadata).
    #[arg(long)]
    device_authorization_endpoint: Option<String>,
    /// Token endpoint (overrides the metadata).
    #[arg(long)]
    token_endpoint: Option<String>,
    /// Introspection endpoint (overrides the metadata), for TS-09 and TS-12.
    #[arg(long)]
    introspection_endpoint: Option<String>,
    /// The client the suite acts as.
    #[arg(long)]
    client_id: String,
    /// Its secret, for a confidential client. An empty one is none (a public client),
    /// so `--client-secret ""` overrides the variable; a secret from the variable is
    /// said in the reports' header.
    #[arg(long, env = CLIENT_SECRET_ENV, hide_env_values = true)]
    client_secret: Option<String>,
    /// How a confidential client authenticates (needs a secret).
    #[arg(long, value_enum, default_value = "basic")]
    client_auth: Auth,
    /// A second client, `ID[:SECRET[:basic|post]]`, for the cross-client checks (TR-07).
    /// TR-07 polls as this client: a confidential one checks the binding against a
    /// client that authenticates; give a public one (`ID` alone) to check it for
    /// public clients, which a server may bind differently.
    #[arg(long)]
    second_client: Option<String>,
    /// A client registered without the device grant, `ID[:SECRET[:METHOD]]` (DA-13, TR-11).
    #[arg(long)]
    unauthorized_client: Option<String>,
    /// A client allowed to introspect, `ID:SECRET[:METHOD]` (TS-09, TS-12): it
    /// authenticates (RFC 7662 §2.1), so the secret is required.
    #[arg(long)]
    introspection_client: Option<String>,
    /// Scope to request (space-separated).
    #[arg(long)]
    scope: Option<String>,
    /// Let the server send the suite to loopback, private (10/8, 192.168/16, fc00::/7...)
    /// and link-local (169.254.169.254...) addresses it names in its metadata,
    /// verification URIs and redirects, whatever the hosts you named are. Without it,
    /// such an address is reached only if a host you named is of that kind. Only for a
    /// server you trust: what the suite fetches goes into the reports.
    #[arg(long)]
    allow_private_addresses: bool,
    #[command(flatten)]
    approver: ApproverArgs,
    /// Longest a case may wait in all, seconds (at most a day); a case whose waits at
    /// the server's interval, or past its expires_in, do not fit is skipped, saying so.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u64).range(0..=MAX_WAIT_SECS))]
    max_wait: u64,
    /// Added to every interval wait, milliseconds (at most a minute).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u64).range(0..=60_000))]
    poll_margin_ms: u64,
    /// Run soak cases (PL-04: 40 jittered polls).
    #[arg(long)]
    soak: bool,
    /// A policy the server's operator declares, judged as a MUST (see Profiles below); repeatable.
    #[arg(long, value_enum, value_delimiter = ',')]
    expect: Vec<Expectation>,
    /// Device authorizations sampled for uniqueness and entropy (2 to 10000).
    #[arg(long, default_value_t = 200, value_parser = RangedU64ValueParser::<usize>::new().range(2..=MAX_SAMPLES))]
    samples: usize,
    /// Cases run at once (1 to 1024).
    #[arg(long, default_value_t = 32, value_parser = RangedU64ValueParser::<usize>::new().range(1..=1024))]
    concurrency: usize,
    /// Per-request timeout, seconds (1 to 3600).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    timeout: u64,
    /// Run only these (ids like TS-08, id prefixes like PL or TS-1, sections like A.6, slug prefixes); repeatable, comma-separated.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Skip these; same patterns as --only.
    #[arg(long, value_delimiter = ',')]
    skip: Vec<String>,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write JUnit XML here.
    #[arg(long)]
    junit: Option<PathBuf>,
    /// Write the Markdown report here.
    #[arg(long)]
    markdown: Option<PathBuf>,
    /// Write the baseline (one `ID<TAB>status` line per case) here.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
    /// No colors, even on a terminal.
    #[arg(long)]
    no_color: bool,
}

#[derive(Clone, Copy, ValueEnum)]
enum Auth {
    Basic,
    Post,
}

fn main() {
    let parsed = Cli::command()
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m).map(|cli| (cli, m)));
    let (cli, matches) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            // --help and --version are answers, not usage errors.
            if !e.use_stderr() {
                let _ = e.print();
                std::process::exit(0);
            }
            errln!("deviceflow-conformance: {}", one_line(&e.to_string()));
            std::process::exit(exit::USAGE);
        }
    };
    let from_command_line = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let given = Given {
        secret_from_env: matches.value_source("client_secret") == Some(ValueSource::EnvVariable),
        client_auth: from_command_line("client_auth"),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            errln!("deviceflow-conformance: cannot start the runtime: {e}");
            std::process::exit(exit::USAGE);
        }
    };
    match runtime.block_on(real_main(cli, given)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            // The cause may quote the server (its metadata answer): shown, not obeyed.
            let cause = deviceflow_reports::escape::terminal(&format!("{e:#}"));
            errln!("deviceflow-conformance: {cause}");
            let code = match e.downcast_ref::<TargetError>() {
                Some(TargetError::NoClient) | None => exit::USAGE,
                Some(_) => exit::NOT_TESTABLE,
            };
            std::process::exit(code);
        }
    }
}

/// Where options came from, beyond their values: what `Cli` alone cannot say.
struct Given {
    /// The client secret came from DEVICEFLOW_CLIENT_SECRET, not the command line.
    secret_from_env: bool,
    /// `--client-auth` was given on the command line (not its default).
    client_auth: bool,
}

/// clap's error `text` in one line: its first line, then what it adds (the possible
/// values, a similar value, a tip), without the usage and the pointer to --help.
fn one_line(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with("Usage:") || line.starts_with("For more information")
        {
            continue;
        }
        if out.is_empty() {
            out.push_str(line.strip_prefix("error: ").unwrap_or(line));
        } else if out.ends_with(':') || line.starts_with('[') {
            out.push(' ');
            out.push_str(line);
        } else {
            out.push_str("; ");
            out.push_str(line);
        }
    }
    out
}

/// Where whitespace or another control character stands in `value`, if it does:
/// `url::Url` trims it at the ends and drops tabs and newlines inside, so a URL that
/// has one parses, and the string as typed would then be used elsewhere (compared
/// with the server's issuer, sent).
fn blank_in(value: &str) -> Option<&'static str> {
    let blank = |c: char| c.is_whitespace() || c.is_control();
    if value.starts_with(blank) {
        Some("at its start")
    } else if value.ends_with(blank) {
        Some("at its end")
    } else if value.contains(blank) {
        Some("inside it")
    } else {
        None
    }
}

/// Checks that `value` of option `--name` is an absolute http(s) URL with a host: a
/// malformed one is a usage error, said at once, not an unreachable target.
fn check_url(name: &str, value: Option<&str>) -> anyhow::Result<()> {
    let Some(value) = value else {
        return Ok(());
    };
    if let Some(place) = blank_in(value) {
        bail!(
            "--{name} {value:?} has a space or another blank character {place}: a URL has none; remove it"
        );
    }
    match url::Url::parse(value) {
        // Not echoed: the password would be in the terminal, and in every log after.
        Ok(u) if !u.username().is_empty() || u.password().is_some() => bail!(
            "--{name}: a URL with credentials in it (user:password@) is refused: they would go \
             to every endpoint and into every report (RFC 3986 §3.2.1 deprecates them); give \
             the client's secret with --client-secret"
        ),
        // RFC 8414 §2: an issuer "has no query or fragment components"; the metadata
        // URL is made from it (§3.1), and a query would end up inside its path.
        Ok(u) if name == "issuer" && (u.query().is_some() || u.fragment().is_some()) => bail!(
            "--issuer {value:?} has a query or fragment, which an issuer never has (RFC 8414 \
             §2); give the issuer as the server's metadata names it"
        ),
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => Ok(()),
        Ok(u) => bail!(
            "--{name} {value:?} is not an http or https URL (scheme {:?}); give one like http://127.0.0.1:8080",
            u.scheme()
        ),
        Err(e) if unbracketed_ipv6(value) => bail!(
            "--{name} {value:?} is not an absolute URL ({e}): an IPv6 address goes in brackets, as in http://[::1]:8080"
        ),
        Err(e) => bail!(
            "--{name} {value:?} is not an absolute URL ({e}); give one like http://127.0.0.1:8080"
        ),
    }
}

/// Whether `value`'s authority looks like an IPv6 address without its brackets
/// (`http://::1:8080`): two colons or more, no `[`.
fn unbracketed_ipv6(value: &str) -> bool {
    let Some((_, rest)) = value.split_once("://") else {
        return false;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    !authority.contains('[') && authority.matches(':').count() >= 2
}

/// The reports asked for, each with its path.
fn outputs(cli: &Cli) -> Vec<(&'static str, &PathBuf)> {
    [
        ("json", &cli.json),
        ("junit", &cli.junit),
        ("markdown", &cli.markdown),
        ("baseline", &cli.baseline),
    ]
    .into_iter()
    .filter_map(|(name, p)| p.as_ref().map(|p| (name, p)))
    .collect()
}

/// Creates `path`'s folder, as writing it will.
fn create_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        deviceflow_reports::files::create_folder(dir)
            .with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

/// Whether `path` is written whole, through a file beside it renamed into place: a
/// path that is not there yet, or a plain file. Anything else (a symbolic link, a
/// device such as /dev/stdout, a FIFO) is written directly: a rename would replace
/// it. (So is a plain file in a folder where no file can be made, but the file itself
/// can be written: [`write_report`].)
fn written_by_rename(path: &Path) -> bool {
    std::fs::symlink_metadata(path).map_or(true, |m| m.file_type().is_file())
}

/// The file `path` is written to before it is renamed into place.
fn temporary(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    path.with_file_name(format!(".{name}.{}.partial", std::process::id()))
}

/// Checks, before the run, that the report at `path` can be written, and leaves
/// nothing behind: the folders it needs are created for the check and removed after
/// it (a run stopped before its reports must not leave empty folders), and the file
/// it is written through is created and removed (or, for a path not written by
/// rename, the path opened for writing), so an unwritable path is said at once, not
/// after minutes of cases.
fn check_writable(option: &str, path: &Path) -> anyhow::Result<()> {
    let check = || -> anyhow::Result<()> {
        if path.is_dir() {
            bail!("{} is a folder", path.display());
        }
        let dir = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        // The folders that are not there yet, deepest first.
        let missing: Vec<&Path> = dir.ancestors().take_while(|d| !d.exists()).collect();
        let result = create_parent(path).and_then(|()| {
            let probe = temporary(path);
            let in_place = || {
                std::fs::OpenOptions::new()
                    .write(true)
                    .open(path)
                    .with_context(|| format!("opening {} for writing", path.display()))
            };
            if !written_by_rename(path) {
                in_place()?;
            } else if std::fs::File::create(&probe).is_ok() {
                let _ = std::fs::remove_file(&probe);
            } else if path.exists() {
                in_place()?;
            } else {
                std::fs::File::create(&probe)
                    .with_context(|| format!("creating a file in {}", dir.display()))?;
            }
            Ok(())
        });
        for d in missing {
            let _ = std::fs::remove_dir(d);
        }
        result
    };
    check().with_context(|| format!("--{option} cannot be written"))
}

/// Removes a report an earlier run left at `path`, as the run starts: if this one is
/// stopped before it writes its own (killed, a crash), the earlier one must not be
/// read as this run's. Only a plain file: not a link, nor /dev/stdout.
/// Where the file cannot be removed (its folder is not writable), it is emptied.
fn remove_stale(path: &Path) -> anyhow::Result<()> {
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_file())
        && std::fs::remove_file(path).is_err()
    {
        std::fs::write(path, "")
            .with_context(|| format!("removing the earlier report {}", path.display()))?;
    }
    Ok(())
}

/// Writes `text` to `path`, creating its folder: whole or not at all, through a file
/// beside it renamed into place ([`written_by_rename`]), so that a reader (CI picking
/// up the file) never sees half a report.
fn write_report(path: &Path, text: String) -> anyhow::Result<()> {
    create_parent(path)?;
    if !written_by_rename(path) {
        return std::fs::write(path, text).with_context(|| format!("writing {}", path.display()));
    }
    let partial = temporary(path);
    if std::fs::File::create(&partial).is_err() && path.exists() {
        // No file can be made beside it, but the report itself can be written.
        return std::fs::write(path, text).with_context(|| format!("writing {}", path.display()));
    }
    let written = std::fs::write(&partial, text)
        .with_context(|| format!("writing {}", partial.display()))
        .and_then(|()| {
            std::fs::rename(&partial, path)
                .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))
        });
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}

/// The exit code when writing a report failed after a run that ended with `run`: a
/// failed MUST (1), an untestable target (3) or an interruption (130, 143) says more
/// than the lost file, and stays; otherwise the lost report is a usage error (2).
fn exit_after_write_failure(run: i32) -> i32 {
    if [
        exit::MUST_FAILED,
        exit::NOT_TESTABLE,
        exit::INTERRUPTED,
        exit::TERMINATED,
    ]
    .contains(&run)
    {
        run
    } else {
        exit::USAGE
    }
}

/// Listens for SIGINT and SIGTERM from now on: the first is sent on the receiver
/// returned (the run stops, and its partial reports are written); a second ends the
/// process at once, with that signal's exit code, removing any report half-written
/// (`partial`: the files they are written through).
fn on_signals(partial: Vec<PathBuf>) -> std::io::Result<watch::Receiver<Option<Signal>>> {
    let (tx, rx) = watch::channel(None);
    let mut signals = Signals::new()?;
    tokio::spawn(async move {
        let first = signals.next().await;
        errln!(
            "deviceflow-conformance: {} received: stopping, the reports will be partial and say so (a second signal exits at once, without them)",
            first.name()
        );
        let _ = tx.send(Some(first));
        let second = signals.next().await;
        for p in &partial {
            let _ = std::fs::remove_file(p);
        }
        std::process::exit(second.exit_code());
    });
    Ok(rx)
}

/// The signals that stop a run, as they come.
struct Signals {
    #[cfg(unix)]
    int: tokio::signal::unix::Signal,
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
}

impl Signals {
    /// Listens from now on: a signal that comes before [`Signals::next`] is asked
    /// is not lost.
    fn new() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(Signals {
                int: signal(SignalKind::interrupt())?,
                term: signal(SignalKind::terminate())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    async fn next(&mut self) -> Signal {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = self.int.recv() => Signal::Interrupt,
                _ = self.term.recv() => Signal::Terminate,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            Signal::Interrupt
        }
    }
}

/// Resolves when a signal has come on `signals` ([`on_signals`]), at once if one
/// already has.
async fn stopped(mut signals: watch::Receiver<Option<Signal>>) -> Signal {
    let signal = match signals.wait_for(Option::is_some).await {
        Ok(s) => *s,
        Err(_) => None,
    };
    match signal {
        Some(s) => s,
        None => std::future::pending().await,
    }
}

/// The client `--{what}` names, if it does. A secret after the colon must not be
/// empty (`ID:`): give `ID` alone for a public client. `--introspection-client`
/// needs one: the introspection endpoint authenticates its caller (RFC 7662 §2.1).
fn client(spec: Option<&str>, what: &str) -> anyhow::Result<Option<Client>> {
    let Some(spec) = spec else {
        return Ok(None);
    };
    let c = Client::parse(spec).map_err(|e| anyhow::anyhow!("--{what}: {e}"))?;
    if c.secret.as_deref() == Some("") {
        bail!("--{what} {:?}: the secret after ':' is empty; give ID alone for a public client, or ID:SECRET", c.id);
    }
    if what == "introspection-client" && c.secret.is_none() {
        bail!(
            "--introspection-client {:?} has no secret: give ID:SECRET[:basic|post] (RFC 7662 §2.1: the introspection endpoint authenticates the client that asks)",
            c.id
        );
    }
    Ok(Some(c))
}

async fn real_main(cli: Cli, given: Given) -> anyhow::Result<i32> {
    let selection = Selection {
        only: cli.only.clone(),
        skip: cli.skip.clone(),
    };
    if cli.client_id.trim().is_empty() {
        bail!("--client-id is empty: give the client_id the server registered for the device");
    }
    if selection.empty_patterns() {
        bail!("--only/--skip: an empty pattern (a stray comma, or \"\") would select every case; give ids like TS-08, id prefixes like PL or TS-1, sections like A.6");
    }
    let unknown = selection.unknown_patterns();
    if !unknown.is_empty() {
        bail!("--only/--skip pattern(s) {unknown:?} match no case (use ids like TS-08, id prefixes like PL or TS-1, sections like A.6)");
    }
    if let Some(why) = selection.leaves_nothing(cli.soak) {
        bail!("{why}");
    }
    // An empty secret is none: `--client-secret ""` makes the client public whatever
    // DEVICEFLOW_CLIENT_SECRET says, and an empty variable is no secret.
    let secret = cli.client_secret.clone().filter(|s| !s.is_empty());
    let secret_from = (secret.is_some() && given.secret_from_env).then_some(CLIENT_SECRET_ENV);
    if given.client_auth && secret.is_none() {
        bail!(
            "--client-auth is for a confidential client, and there is no secret: give --client-secret (or {CLIENT_SECRET_ENV}), or drop --client-auth for a public client"
        );
    }
    let primary = Client {
        id: cli.client_id.clone(),
        secret: secret.clone(),
        method: match (&secret, cli.client_auth) {
            (None, _) => AuthMethod::None,
            (Some(_), Auth::Basic) => AuthMethod::Basic,
            (Some(_), Auth::Post) => AuthMethod::Post,
        },
    };
    if cli.issuer.is_none()
        && (cli.device_authorization_endpoint.is_none() || cli.token_endpoint.is_none())
    {
        bail!("give --issuer, or both --device-authorization-endpoint and --token-endpoint");
    }
    for (name, value) in [
        ("issuer", &cli.issuer),
        (
            "device-authorization-endpoint",
            &cli.device_authorization_endpoint,
        ),
        ("token-endpoint", &cli.token_endpoint),
        ("introspection-endpoint", &cli.introspection_endpoint),
        ("admin-url", &cli.approver.admin_url),
    ] {
        check_url(name, value.as_deref())?;
    }
    // RFC 3986 §6.2.2.1: the scheme and host are case-insensitive. The issuer is used
    // with them in lower case (the URL the metadata is fetched from is anyway), so that
    // `HTTP://…` typed is not the server's MD-03 failure; said, as it is what MD-03
    // compares with.
    let issuer = cli.issuer.as_deref().map(lower_scheme_and_host);
    if let (Some(typed), Some(used)) = (&cli.issuer, &issuer) {
        if typed != used && !cli.quiet {
            errln!(
                "deviceflow-conformance: --issuer {typed:?} is taken as {used:?}: the scheme and host are case-insensitive (RFC 3986 §6.2.2.1)"
            );
        }
    }
    // An https:// server is checked against roots SSL_CERT_FILE / SSL_CERT_DIR may name:
    // one that cannot be read was skipped without a word, and the server's certificate
    // then said to come from an unknown CA.
    let urls = [
        &issuer,
        &cli.device_authorization_endpoint,
        &cli.token_endpoint,
    ];
    if urls.iter().any(|u| {
        u.as_deref()
            .is_some_and(deviceflow_conformance::http::reach::is_https)
    }) {
        deviceflow_device::tls::named_roots_readable().map_err(anyhow::Error::msg)?;
    }
    let spec = TargetSpec {
        issuer: issuer.clone(),
        device_authorization_endpoint: cli.device_authorization_endpoint.clone(),
        token_endpoint: cli.token_endpoint.clone(),
        introspection_endpoint: cli.introspection_endpoint.clone(),
        client: Some(primary),
        second_client: client(cli.second_client.as_deref(), "second-client")?,
        unauthorized_client: client(cli.unauthorized_client.as_deref(), "unauthorized-client")?,
        introspection_client: client(cli.introspection_client.as_deref(), "introspection-client")?,
        scope: cli.scope.clone(),
        client_secret_from: secret_from,
    };
    let approver = cli
        .approver
        .build(issuer.as_deref())
        .map_err(anyhow::Error::msg)?;
    // Last of the checks, once nothing else can refuse the command line.
    let reports = outputs(&cli);
    for (i, &(option, path)) in reports.iter().enumerate() {
        check_writable(option, path)?;
        // The same file twice: the later report would overwrite the earlier, silently.
        let absolute = |p: &Path| std::path::absolute(p).ok();
        if let Some((earlier, _)) = reports[..i]
            .iter()
            .find(|(_, p)| absolute(p) == absolute(path))
        {
            bail!(
                "--{earlier} and --{option} name the same file, {}: one report would overwrite the other",
                path.display()
            );
        }
    }
    let options = Options {
        max_wait: Duration::from_secs(cli.max_wait),
        poll_margin: Duration::from_millis(cli.poll_margin_ms),
        soak: cli.soak,
        samples: cli.samples.max(2),
        concurrency: cli.concurrency.max(1),
        request_timeout: Duration::from_secs(cli.timeout.max(1)),
        expect: cli.expect.clone(),
    };
    // The run starts: from here on, whatever happens (the target cannot be tested, a
    // signal), the reports asked for are written and say it; none from an earlier run
    // is left to be read as this one's.
    let signals = on_signals(reports.iter().map(|(_, p)| temporary(p)).collect())
        .context("listening for SIGINT and SIGTERM")?;
    for (option, path) in &reports {
        remove_stale(path).with_context(|| format!("--{option}"))?;
    }
    // The address rule (deviceflow_conformance::http::reach): public addresses, and those of
    // the kinds of the hosts named here; every client of the run keeps it.
    let reach = spec.reach(cli.allow_private_addresses).await;
    let http = Http::new(options.request_timeout, reach);
    let given_spec = spec.clone();
    let target = tokio::select! {
        biased;
        _ = stopped(signals.clone()) => {
            deviceflow_conformance::target::unresolved(given_spec, http.reach(), None)?
        }
        target = resolve_reporting(spec, &http, options.request_timeout) => target?,
    };
    // No metadata (or nothing answering) and no endpoints given: said in one line on
    // standard error even with --quiet, as before the reports said it too.
    if let (Some(cause), None, true) = (&target.root_cause, &target.metadata, cli.quiet) {
        errln!(
            "deviceflow-conformance: {}",
            deviceflow_reports::escape::terminal(&cause.summary)
        );
    }
    let report = deviceflow_conformance::runner::run_until(
        target,
        approver,
        options,
        &selection,
        cli.quiet,
        stopped(signals),
    )
    .await;

    let tty = std::io::stdout().is_terminal();
    let color = !cli.no_color && tty && std::env::var_os("NO_COLOR").is_none();
    // Wrapped to the terminal; whole lines into a file or a pipe (grep, less -S).
    let width = if tty {
        std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.parse().ok())
            .unwrap_or(120)
    } else {
        usize::MAX
    };
    // Every report is written even if one fails; the run's result is not lost to it.
    let mut code = report.exit_code();
    let brief = report::terminal(&report, color, width);
    if let Err(e) = stdio::output(format_args!("{brief}")) {
        errln!("deviceflow-conformance: {e}");
        code = exit_after_write_failure(report.exit_code());
    }
    for (option, path) in reports {
        let text = match option {
            "json" => report.json(),
            "junit" => report::junit(&report),
            "markdown" => report::markdown(&report),
            _ => report.baseline(),
        };
        if let Err(e) = write_report(path, text) {
            errln!("deviceflow-conformance: --{option}: {e:#}");
            code = exit_after_write_failure(report.exit_code());
        }
    }
    Ok(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_option_has_help() {
        let missing =
            deviceflow_testkit::cli::without_help(&<Cli as clap::CommandFactory>::command());
        assert!(missing.is_empty(), "no help: {missing:?}");
    }

    #[test]
    fn a_lost_report_never_hides_a_failed_must_an_untestable_target_or_a_signal() {
        assert_eq!(
            exit_after_write_failure(exit::INTERRUPTED),
            exit::INTERRUPTED
        );
        assert_eq!(exit_after_write_failure(exit::TERMINATED), exit::TERMINATED);
        assert_eq!(exit_after_write_failure(exit::CONFORMS), exit::USAGE);
        assert_eq!(
            exit_after_write_failure(exit::MUST_FAILED),
            exit::MUST_FAILED
        );
        assert_eq!(
            exit_after_write_failure(exit::NOT_TESTABLE),
            exit::NOT_TESTABLE
        );
    }

    #[test]
    fn urls_must_be_absolute_http_with_a_host() {
        for ok in ["http://127.0.0.1:8080", "https://as.example/o/"] {
            assert!(check_url("issuer", Some(ok)).is_ok(), "{ok}");
        }
        for bad in [
            "127.0.0.1:31080",
            "ftp://as.example/",
            "not a url",
            "foo",
            "localhost:80",
            "http://as.example/?tenant=1",
            "http://as.example/#x",
        ] {
            let e = check_url("issuer", Some(bad)).unwrap_err().to_string();
            assert!(e.starts_with("--issuer "), "{e}");
            assert!(!e.contains('\n'), "{e}");
        }
    }

    #[test]
    fn a_writable_path_is_checked_without_leaving_a_file_or_a_folder() {
        let dir = std::env::temp_dir().join(format!("dfc-check-{}", std::process::id()));
        let path = dir.join("sub").join("r.json");
        check_writable("json", &path).unwrap();
        assert!(!path.exists());
        assert!(!dir.exists(), "the check left {}", dir.display());
        assert!(check_writable("json", std::path::Path::new("/proc/nope/r.json")).is_err());
        // Written, a report is whole: nothing beside it.
        write_report(&path, "{}".into()).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{}");
        let beside: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(beside, [std::ffi::OsString::from("r.json")]);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn clap_errors_keep_their_possible_values_in_one_line() {
        let text = "error: invalid value 'slowdown' for '--expect <EXPECT>'\n  [possible values: slow-down]\n\n  tip: a similar value exists: 'slow-down'\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(text),
            "invalid value 'slowdown' for '--expect <EXPECT>' [possible values: slow-down]; tip: a similar value exists: 'slow-down'"
        );
        let text = "error: the following required arguments were not provided:\n  --client-id <CLIENT_ID>\n\nUsage: deviceflow-conformance --client-id <CLIENT_ID>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(text),
            "the following required arguments were not provided: --client-id <CLIENT_ID>"
        );
    }

    #[test]
    fn blanks_and_unbracketed_ipv6_are_found() {
        assert_eq!(blank_in(" http://a"), Some("at its start"));
        assert_eq!(blank_in("http://a\n"), Some("at its end"));
        assert_eq!(blank_in("http://a/\u{a0}x"), Some("inside it"));
        assert_eq!(blank_in("http://a/%20"), None);
        assert!(unbracketed_ipv6("http://::1:8080/x"));
        assert!(unbracketed_ipv6("http://fe80::1"));
        assert!(!unbracketed_ipv6("http://[::1]:8080"));
        assert!(!unbracketed_ipv6("http://a:8080/x:y:z"));
    }
}
