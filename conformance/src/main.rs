//! The `deviceflow-conformance` command.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::builder::RangedU64ValueParser;
use clap::error::ErrorKind;
use clap::{Parser, ValueEnum};
use deviceflow_conformance::approver::ApproverArgs;
use deviceflow_conformance::client::AuthMethod;
use deviceflow_conformance::context::Expectation;
use deviceflow_conformance::http::Http;
use deviceflow_conformance::report;
use deviceflow_conformance::report::exit;
use deviceflow_conformance::target::TargetError;
use deviceflow_conformance::{resolve, Client, Options, Selection, TargetSpec};
use deviceflow_reports::{errln, stdio};

/// The longest `--max-wait`: a day. Longer is a typo, and would overflow the waits.
const MAX_WAIT_SECS: u64 = 86_400;
/// The most `--samples`: enough for any uniqueness or entropy judgement, few enough to
/// hold in memory and not to flood a server.
const MAX_SAMPLES: u64 = 10_000;

const EXAMPLES: &str = "\
Examples:
  # deviceflow-server, endpoints found by discovery, the person played by its admin endpoint:
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
  0  every MUST (and Derived-MUST) case held
  1  a MUST or Derived-MUST case failed
  2  bad usage: wrong or missing options
  3  the target could not be tested (unreachable, not an OAuth endpoint, the client
     refused): the one root cause is printed, and no case was run
  4  no MUST failed, but MUST cases were not judged, in whole or in part: they need
     a person's decision and there is no approver, or it did not work, or the suite
     could not finish them (inconclusive): the last line says how many
  A report that cannot be written is found before the run (exit 2). If one still
  fails after the run, the others are written, the error is printed, and the exit
  code is 2 unless the run's own is 1 or 3, which it stays.";

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
    /// Its secret, for a confidential client.
    #[arg(long, env = "DEVICEFLOW_CLIENT_SECRET", hide_env_values = true)]
    client_secret: Option<String>,
    /// How a confidential client authenticates.
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
    /// A client allowed to introspect, `ID:SECRET[:METHOD]` (TS-09, TS-12).
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
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // --help and --version are answers, not usage errors.
            if !e.use_stderr() {
                let _ = e.print();
                std::process::exit(0);
            }
            if matches!(
                e.kind(),
                ErrorKind::ValueValidation | ErrorKind::InvalidValue
            ) {
                // One line: what was wrong with which option (clap's first line).
                let text = e.to_string();
                let first = text.lines().next().unwrap_or_default();
                let first = first.strip_prefix("error: ").unwrap_or(first);
                errln!("deviceflow-conformance: {first}");
            } else {
                let _ = e.print();
            }
            std::process::exit(exit::USAGE);
        }
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
    match runtime.block_on(real_main(cli)) {
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

/// Checks that `value` of option `--name` is an absolute http(s) URL with a host: a
/// malformed one is a usage error, said at once, not an unreachable target.
fn check_url(name: &str, value: Option<&str>) -> anyhow::Result<()> {
    let Some(value) = value else {
        return Ok(());
    };
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
        Err(e) => bail!(
            "--{name} {value:?} is not an absolute URL ({e}); give one like http://127.0.0.1:8080"
        ),
    }
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
fn create_parent(path: &std::path::Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    Ok(())
}

/// Checks, before the run, that the report at `path` can be written: its folder is
/// created and the file opened for writing (created, then removed, if it was not
/// there), so an unwritable path is said at once, not after minutes of cases.
fn check_writable(option: &str, path: &std::path::Path) -> anyhow::Result<()> {
    let check = || -> anyhow::Result<()> {
        create_parent(path)?;
        let existed = path.exists();
        std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("opening {} for writing", path.display()))?;
        if !existed {
            let _ = std::fs::remove_file(path);
        }
        Ok(())
    };
    check().with_context(|| format!("--{option} cannot be written"))
}

/// Writes `text` to `path`, creating its folder.
fn write_report(path: &std::path::Path, text: String) -> anyhow::Result<()> {
    create_parent(path)?;
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// The exit code when writing a report failed after a run that ended with `run`: a
/// failed MUST (1) or an untestable target (3) says more than the lost file, and stays;
/// otherwise the lost report is a usage error (2).
fn exit_after_write_failure(run: i32) -> i32 {
    if run == exit::MUST_FAILED || run == exit::NOT_TESTABLE {
        run
    } else {
        exit::USAGE
    }
}

fn client(spec: Option<&str>, what: &str) -> anyhow::Result<Option<Client>> {
    spec.map(|s| Client::parse(s).map_err(|e| anyhow::anyhow!("--{what}: {e}")))
        .transpose()
}

async fn real_main(cli: Cli) -> anyhow::Result<i32> {
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
    let primary = Client {
        id: cli.client_id.clone(),
        secret: cli.client_secret.clone(),
        method: match (&cli.client_secret, cli.client_auth) {
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
    // An https:// server is checked against roots SSL_CERT_FILE / SSL_CERT_DIR may name:
    // one that cannot be read was skipped without a word, and the server's certificate
    // then said to come from an unknown CA.
    let urls = [
        &cli.issuer,
        &cli.device_authorization_endpoint,
        &cli.token_endpoint,
    ];
    if urls.iter().any(|u| {
        u.as_deref()
            .is_some_and(deviceflow_conformance::target::is_https)
    }) {
        deviceflow_device::tls::named_roots_readable().map_err(anyhow::Error::msg)?;
    }
    let reports = outputs(&cli);
    for (i, &(option, path)) in reports.iter().enumerate() {
        check_writable(option, path)?;
        // The same file twice: the later report would overwrite the earlier, silently.
        let absolute = |p: &std::path::Path| std::path::absolute(p).ok();
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
    let spec = TargetSpec {
        issuer: cli.issuer.clone(),
        device_authorization_endpoint: cli.device_authorization_endpoint.clone(),
        token_endpoint: cli.token_endpoint.clone(),
        introspection_endpoint: cli.introspection_endpoint.clone(),
        client: Some(primary),
        second_client: client(cli.second_client.as_deref(), "second-client")?,
        unauthorized_client: client(cli.unauthorized_client.as_deref(), "unauthorized-client")?,
        introspection_client: client(cli.introspection_client.as_deref(), "introspection-client")?,
        scope: cli.scope.clone(),
    };
    let approver = cli
        .approver
        .build(cli.issuer.as_deref())
        .map_err(anyhow::Error::msg)?;
    let options = Options {
        max_wait: Duration::from_secs(cli.max_wait),
        poll_margin: Duration::from_millis(cli.poll_margin_ms),
        soak: cli.soak,
        samples: cli.samples.max(2),
        concurrency: cli.concurrency.max(1),
        request_timeout: Duration::from_secs(cli.timeout.max(1)),
        expect: cli.expect.clone(),
    };
    // The address rule (deviceflow_conformance::reach): public addresses, and those of
    // the kinds of the hosts named here; every client of the run keeps it.
    let reach = spec.reach(cli.allow_private_addresses).await;
    let http = Http::new(options.request_timeout, reach);
    let target = resolve(spec, &http).await?;
    let report =
        deviceflow_conformance::run(target, approver, options, &selection, cli.quiet).await;

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
    for (option, path) in outputs(&cli) {
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
    fn a_lost_report_never_hides_a_failed_must_or_an_untestable_target() {
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
    fn a_writable_path_is_checked_without_leaving_a_file() {
        let dir = std::env::temp_dir().join(format!("dfc-check-{}", std::process::id()));
        let path = dir.join("sub").join("r.json");
        check_writable("json", &path).unwrap();
        assert!(!path.exists());
        assert!(check_writable("json", std::path::Path::new("/proc/nope/r.json")).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
