//! The `deviceflow-conformance` command.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Parser, ValueEnum};
use deviceflow_conformance::approver::ApproverArgs;
use deviceflow_conformance::client::AuthMethod;
use deviceflow_conformance::context::Expectation;
use deviceflow_conformance::http::Http;
use deviceflow_conformance::report;
use deviceflow_conformance::report::exit;
use deviceflow_conformance::target::TargetError;
use deviceflow_conformance::{resolve, Client, Options, Selection, TargetSpec};

const EXAMPLES: &str = "\
Examples:
  # deviceflow-server, endpoints found by discovery, the person played by its admin endpoint:
  deviceflow-conformance --issuer http://127.0.0.1:8080 --client-id demo-device \\
    --scope openid --second-client demo-confidential:demo-secret \\
    --approver admin --admin-token \"$ADMIN\" --markdown report.md --json report.json

  # Any server, endpoints given by hand, the person played by a script of yours
  # ({user_code} and {action} are filled in; exit 0 means done):
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
     refused): the one root cause is printed, and no case was run";

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
    #[command(flatten)]
    approver: ApproverArgs,
    /// Longest wait a case may make, seconds; expiry cases run if expires_in fits.
    #[arg(long, default_value_t = 90)]
    max_wait: u64,
    /// Added to every interval wait, milliseconds.
    #[arg(long, default_value_t = 500)]
    poll_margin_ms: u64,
    /// Run soak cases (PL-04: 40 jittered polls).
    #[arg(long)]
    soak: bool,
    /// A policy the server's operator declares, judged as a MUST (see Profiles below); repeatable.
    #[arg(long, value_enum, value_delimiter = ',')]
    expect: Vec<Expectation>,
    /// Device authorizations sampled for uniqueness and entropy.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Cases run at once.
    #[arg(long, default_value_t = 32)]
    concurrency: usize,
    /// Per-request timeout, seconds.
    #[arg(long, default_value_t = 10)]
    timeout: u64,
    /// Run only these (ids, id prefixes, sections like A.6, slug prefixes); repeatable, comma-separated.
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
            let code = if e.use_stderr() { exit::USAGE } else { 0 };
            let _ = e.print();
            std::process::exit(code);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("deviceflow-conformance: cannot start the runtime: {e}");
            std::process::exit(exit::USAGE);
        }
    };
    match runtime.block_on(real_main(cli)) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("deviceflow-conformance: {e:#}");
            let code = match e.downcast_ref::<TargetError>() {
                Some(TargetError::NoClient) | None => exit::USAGE,
                Some(_) => exit::NOT_TESTABLE,
            };
            std::process::exit(code);
        }
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
    let unknown = selection.unknown_patterns();
    if !unknown.is_empty() {
        bail!("--only/--skip pattern(s) {unknown:?} match no case (use ids like TS-08, prefixes like PL, sections like A.6)");
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
    let http = Http::new(options.request_timeout);
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
    print!("{}", report::terminal(&report, color, width));
    let write = |path: &Option<PathBuf>, text: String| -> anyhow::Result<()> {
        if let Some(p) = path {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?;
        }
        Ok(())
    };
    write(&cli.json, report.json())?;
    write(&cli.junit, report::junit(&report))?;
    write(&cli.markdown, report::markdown(&report))?;
    write(&cli.baseline, report.baseline())?;
    Ok(report.exit_code())
}
