//! The `deviceflow-server` binary: flags, configuration, bind, signals.

mod clients_command;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use deviceflow_device::DeviceOptions;
use deviceflow_reports::{errln, outln};
use deviceflow_server::accounts::password;
use deviceflow_server::config::{sha256_hex, DEMO_CONFIDENTIAL_SECRET, DEMO_USER_PASSWORD};
use deviceflow_server::http::paths;
use deviceflow_server::protocol::session::SlowDownPolicy;
use deviceflow_server::storage::clock_offset;
use deviceflow_server::storage::redis::redacted;
use deviceflow_server::{Clock, FileConfig, RedisStore, Settings, StoreConfig};
use rand::RngCore;

/// An OAuth 2.0 Device Authorization Grant (RFC 8628) authorization server.
///
/// With no --config it starts on embedded demo defaults and prints how to try it.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    server: ServerArgs,
    /// Do not print the demo walk-through (on embedded defaults, the admin and initial
    /// access tokens drawn for this run are printed all the same: nothing else says
    /// them; one given on the command line is not echoed).
    #[arg(long, short)]
    quiet: bool,
    /// Log format on standard error: `plain` (one line an event) or `json` (one object
    /// a line). What is logged is set by RUST_LOG (`info` by default; the audit events
    /// are at target `audit`, e.g. RUST_LOG=warn,audit=info).
    #[arg(
        long,
        env = "DEVICEFLOW_LOG_FORMAT",
        value_enum,
        default_value = "plain"
    )]
    log_format: LogFormat,
}

/// The server's settings on the command line, over its configuration file: before
/// the subcommand, or after `check-config`, which checks what they make
/// (`deviceflow-server check-config -c prod.toml --store redis://…`).
#[derive(clap::Args, Clone)]
struct ServerArgs {
    /// TOML configuration file.
    #[arg(long, short, env = "DEVICEFLOW_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (overrides `listen`).
    #[arg(long, env = "DEVICEFLOW_LISTEN", value_parser = parse_listen)]
    listen: Option<SocketAddr>,
    /// Issuer and public base URL (overrides `issuer`).
    #[arg(long, env = "DEVICEFLOW_ISSUER")]
    issuer: Option<String>,
    /// Device code lifetime in seconds (overrides `device.expires_in`).
    #[arg(long, env = "DEVICEFLOW_EXPIRES_IN")]
    expires_in: Option<u64>,
    /// Polling interval in seconds (overrides `device.interval`).
    #[arg(long, env = "DEVICEFLOW_INTERVAL")]
    interval: Option<u64>,
    /// Jitter tolerated on polls, in milliseconds (overrides `device.poll_tolerance_ms`).
    #[arg(long, env = "DEVICEFLOW_POLL_TOLERANCE_MS")]
    poll_tolerance_ms: Option<u64>,
    /// `enforce` or `off` (overrides `device.slow_down`).
    #[arg(long, env = "DEVICEFLOW_SLOW_DOWN", value_parser = parse_policy)]
    slow_down: Option<SlowDownPolicy>,
    /// Most sessions held at once (overrides `device.max_sessions`).
    #[arg(long, env = "DEVICEFLOW_MAX_SESSIONS")]
    max_sessions: Option<usize>,
    /// Where sessions, tokens and counters live: "memory" (default; lost on restart),
    /// "redis://host:port", "redis+cluster://host:port,host:port,…" or
    /// "redis+sentinel://host:port,host:port,…/SERVICE" (the primary those Sentinels
    /// name); rediss… over TLS, a private CA's certificate in SSL_CERT_FILE.
    #[arg(long, env = "DEVICEFLOW_STORE", hide_env_values = true)]
    store: Option<String>,
    /// Bearer token enabling the admin API: approving or denying a code, and the
    /// applications at /admin/clients (overrides `admin.token`).
    #[arg(long, env = "DEVICEFLOW_ADMIN_TOKEN", hide_env_values = true)]
    admin_token: Option<String>,
    /// The initial access token that turns RFC 7591 client registration on (overrides
    /// `registration.initial_access_token`).
    #[arg(long, env = "DEVICEFLOW_INITIAL_ACCESS_TOKEN", hide_env_values = true)]
    initial_access_token: Option<String>,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Plain,
    Json,
}

/// What RUST_LOG asks to be logged (targets and levels, as in `info` or
/// `warn,audit=info`; `info` when unset); a RUST_LOG that does not parse is an error,
/// and so is a word alone that is neither a level nor one of this server's targets:
/// tracing reads `RUST_LOG=warning` as the target `warning`, at every level, and
/// everything else, the audit events included, went unlogged without a word.
fn log_filter() -> anyhow::Result<tracing_subscriber::filter::Targets> {
    use tracing_subscriber::filter::{LevelFilter, Targets};
    let spec = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => spec,
        _ => return Ok(Targets::new().with_default(tracing::Level::INFO)),
    };
    let refused = |why: String| anyhow::anyhow!("RUST_LOG=\"{spec}\" {why}; try RUST_LOG=info");
    for word in spec.split(',').map(str::trim) {
        let ours = word == "audit" || word.starts_with("deviceflow_server");
        if !word.is_empty() && !word.contains('=') && !ours && word.parse::<LevelFilter>().is_err()
        {
            return Err(refused(format!(
                "names \"{word}\", neither a level (off, error, warn, info, debug, trace) nor a \
                 target of this server (audit, deviceflow_server); another crate's target \
                 takes a level, as in hyper=debug"
            )));
        }
    }
    spec.parse()
        .map_err(|e| refused(format!("is not a log filter ({e})")))
}

/// Logs to standard error as `format` says, filtered by `filter` ([`log_filter`]).
fn init_logging(format: LogFormat, filter: tracing_subscriber::filter::Targets) {
    use tracing_subscriber::prelude::*;
    let layer = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    match format {
        LogFormat::Plain => tracing_subscriber::registry()
            .with(layer.with_ansi(false).with_filter(filter))
            .init(),
        LogFormat::Json => tracing_subscriber::registry()
            .with(layer.json().flatten_event(true).with_filter(filter))
            .init(),
    }
}

#[derive(Subcommand)]
enum Command {
    /// Prints the `secret_sha256` value for a client secret read from standard input.
    HashSecret,
    /// Prints the argon2id `password_hash` for a user's password read from standard
    /// input (`printf %s 'pw' | deviceflow-server hash-password`).
    HashPassword,
    /// Validates the configuration and prints what it defines, without serving.
    CheckConfig {
        #[command(flatten)]
        server: Box<ServerArgs>,
    },
    /// Plays a device against a running server: asks for a code, shows it with a QR
    /// code, and polls until a person approves or denies it on the verification page.
    Device {
        /// The server's issuer (http:// or https://; a private CA's certificate in SSL_CERT_FILE).
        #[arg(long, default_value = "http://127.0.0.1:8080")]
        issuer: String,
        /// The public client to be.
        #[arg(long, default_value = "demo-device", value_parser = clap::builder::NonEmptyStringValueParser::new())]
        client_id: String,
        /// Scopes to ask for, space-separated; default: the client's defaults.
        #[arg(long)]
        scope: Option<String>,
    },
    /// Registers, lists and removes applications on a running server, through its
    /// admin API (the admin token).
    Clients {
        #[command(subcommand)]
        command: clients_command::ClientsCommand,
    },
}

/// The command line. The settings after `check-config` are the command line's only:
/// the environment is read once, as the settings before it are (flag over variable
/// over file, as when serving), so a variable neither overrides a flag given before
/// `check-config` nor fails a check whose flag replaces it.
fn parse_cli() -> Result<Cli, clap::Error> {
    use clap::{CommandFactory, FromArgMatches};
    let mut command =
        Cli::command().mut_subcommand("check-config", |c| c.mut_args(|a| a.env(None::<&str>)));
    // Each turn reads one variable less, so this ends.
    loop {
        match command.clone().try_get_matches() {
            Ok(matches) => return Cli::from_arg_matches(&matches),
            Err(e) => match replaced_after_check(&e, &command) {
                Some(id) => command = command.mut_arg(id, |a| a.env(None::<&str>)),
                None => return Err(e),
            },
        }
    }
}

/// The argument whose variable clap refused, when `check-config`'s own flag replaces
/// it (`DEVICEFLOW_INTERVAL=abc deviceflow-server check-config --interval 3`): that
/// variable is not read, so it fails nothing.
fn replaced_after_check(e: &clap::Error, command: &clap::Command) -> Option<String> {
    use clap::error::{ContextKind, ContextValue};
    from_environment(e)?;
    let Some(ContextValue::String(shown)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let long = shown.split_whitespace().next()?.strip_prefix("--")?;
    let arg = command
        .get_arguments()
        .find(|a| a.get_long() == Some(long) && a.get_env().is_some())?;
    let flag = format!("--{long}");
    let after_check = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .skip_while(|a| a != "check-config")
        .any(|a| a == flag || a.starts_with(&format!("{flag}=")));
    after_check.then(|| arg.get_id().to_string())
}

/// clap's refusal of a value that came from the environment (`DEVICEFLOW_…`), not the
/// command line, in one line that names the variable. clap names only the flag, and
/// whoever set the variable (a unit file, a container's environment) looked for a
/// flag nobody had given. `None` for any other error, which clap says as it is.
fn from_environment(e: &clap::Error) -> Option<String> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    use clap::CommandFactory;
    if e.kind() == ErrorKind::InvalidUtf8 {
        // clap blames "arguments"; the value is not shown (it may be a secret).
        let var = Cli::command()
            .get_arguments()
            .filter_map(|a| a.get_env())
            .map(|v| v.to_string_lossy().into_owned())
            .find(|v| matches!(std::env::var(v), Err(std::env::VarError::NotUnicode(_))))?;
        return Some(format!("{var} is not UTF-8 text; fix or unset {var}"));
    }
    if !matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    ) {
        return None;
    }
    let Some(ContextValue::String(shown)) = e.get(ContextKind::InvalidArg) else {
        return None;
    };
    let Some(ContextValue::String(value)) = e.get(ContextKind::InvalidValue) else {
        return None;
    };
    let long = shown.split_whitespace().next()?.strip_prefix("--")?;
    let flag = format!("--{long}");
    // The value refused was given on the command line (`--flag V`, `--flag=V`).
    // args_os: `args` panics on an argument that is not UTF-8.
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let given = args.iter().enumerate().any(|(i, a)| {
        (*a == flag && args.get(i + 1) == Some(value)) || *a == format!("{flag}={value}")
    });
    if given {
        return None;
    }
    let command = Cli::command();
    let arg = command
        .get_arguments()
        .find(|a| a.get_long() == Some(long))?;
    let var = arg.get_env()?.to_string_lossy().into_owned();
    std::env::var_os(&var)?;
    // clap's words, less its "error: " and its help footer, on one line.
    let said = e.render().to_string();
    let said = said
        .split("\n\n")
        .next()
        .unwrap_or_default()
        .trim_start_matches("error: ")
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Some(format!(
        "{var} (the environment's {flag}): {said}; fix or unset {var}"
    ))
}

/// `--listen`: an IP address and a port, said so when it is not (a host name, no port).
fn parse_listen(s: &str) -> Result<SocketAddr, String> {
    s.parse().map_err(|_| {
        format!("\"{s}\" is not an IP address and port: write 127.0.0.1:8080, 0.0.0.0:8080 or [::1]:8080 (no host name)")
    })
}

fn parse_policy(s: &str) -> Result<SlowDownPolicy, String> {
    match s {
        "enforce" => Ok(SlowDownPolicy::Enforce),
        "off" => Ok(SlowDownPolicy::Off),
        other => Err(format!(
            "\"{other}\" is not a slow_down policy; use \"enforce\" or \"off\""
        )),
    }
}

fn main() {
    if let Err(e) = real_main() {
        errln!("deviceflow-server: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> anyhow::Result<()> {
    let cli = parse_cli().unwrap_or_else(|e| match from_environment(&e) {
        Some(line) => {
            errln!("deviceflow-server: {line}");
            std::process::exit(2);
        }
        None => e.exit(),
    });
    match &cli.command {
        Some(Command::HashSecret) => {
            let secret = read_stdin_line("secret")?;
            outln!("{}", sha256_hex(&secret))?;
            return Ok(());
        }
        Some(Command::HashPassword) => {
            let password = read_stdin_line("password")?;
            outln!("{}", password::hash(&password))?;
            return Ok(());
        }
        Some(Command::Device {
            issuer,
            client_id,
            scope,
        }) => return play_device(issuer, client_id, scope.as_deref()),
        Some(Command::Clients { command }) => return clients_command::run(command),
        _ => {}
    }
    // Settings after `check-config` override those before it.
    let after = match &cli.command {
        Some(Command::CheckConfig { server }) => Some(&**server),
        _ => None,
    };
    let config = after
        .and_then(|a| a.config.as_ref())
        .or(cli.server.config.as_ref());
    let demo = config.is_none();
    let mut file = match config {
        Some(path) => FileConfig::load(path)?,
        None => FileConfig::demo(),
    };
    apply_overrides(&cli.server, &mut file);
    if let Some(after) = after {
        apply_overrides(after, &mut file);
    }
    // On embedded defaults the admin endpoint is on, with a fresh random token, so the
    // walk-through printed below works as shown.
    let drawn_admin = demo && file.admin.token.is_none();
    if drawn_admin {
        file.admin.token = Some(random_token());
    }
    // And so is registration (RFC 7591), where the walk-through starts.
    let drawn_initial = demo && file.registration.initial_access_token.is_none();
    if drawn_initial {
        file.registration.initial_access_token = Some(random_token());
    }
    // The demo configuration's admin password and client secret are in the README: a
    // server reachable from elsewhere (bound there, or published there by a proxy) would
    // hand its admin pages to anyone who read it. Said before the configuration's other
    // checks, which would first ask a demo bound to every address for an issuer.
    let demo_elsewhere = || {
        anyhow::anyhow!(
            "the demo configuration (no --config) serves this machine only: its admin password and client secret are published; give --config FILE with your own users and clients (see server/deviceflow.example.toml), or listen and issue on a loopback address"
        )
    };
    if demo && !file.listen.ip().is_loopback() {
        return Err(demo_elsewhere());
    }
    let settings = Settings::from_file(file).context("invalid configuration")?;
    if demo && !settings.serves_this_machine_only() {
        return Err(demo_elsewhere());
    }
    let filter = log_filter()?;
    if after.is_some() {
        print_summary(&settings)?;
        for warning in settings.warnings() {
            errln!("deviceflow-server: warning: {warning}");
        }
        return check_store(&settings);
    }

    init_logging(cli.log_format, filter);
    for warning in settings.warnings() {
        tracing::warn!("{warning}");
    }
    let open_files = raise_open_files();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        let shutdown = shutdown_signal();
        let listener = deviceflow_server::listen(settings.listen)
            .with_context(|| format!("cannot listen on {}", settings.listen))?;
        let local = listener.local_addr()?;
        let admin_token = settings.admin_token.clone().unwrap_or_default();
        let initial_access_token = settings.initial_access_token.clone().unwrap_or_default();
        let ready = |issuer: &str| {
            errln!("deviceflow-server listening on {local} (issuer {issuer})");
            if let Some(open_files) = &open_files {
                open_files.log();
            }
            if demo {
                // Serving matters more than the walk-through: a standard output that
                // cannot be written to is logged, not a reason to stop.
                // Quiet, only the tokens drawn here: one given on the command line is
                // known to whoever gave it, and echoing a secret to standard output
                // (a service's log) publishes it.
                let printed = if cli.quiet {
                    print_tokens(
                        drawn_admin.then_some(admin_token.as_str()),
                        drawn_initial.then_some(initial_access_token.as_str()),
                    )
                } else {
                    print_walkthrough(issuer, &admin_token, &initial_access_token)
                };
                if let Err(e) = printed {
                    tracing::warn!("the walk-through was not printed: {e:#}");
                }
            }
        };
        deviceflow_server::run_announced(listener, settings, ready, shutdown).await?;
        errln!("deviceflow-server: stopped");
        Ok(())
    })
}

/// Below this many open files, the start warns: a fleet of devices each on its own
/// keep-alive connection needs one a device.
const FEW_OPEN_FILES: u64 = 4096;

/// The open-file limit the server runs with, and the soft one it was started with.
struct OpenFiles {
    now: u64,
    before: u64,
}

/// Raises the soft open-file limit to the hard one, as Go's runtime and nginx's
/// `worker_rlimit_nofile` do. Every connection holds a file descriptor, and the soft
/// limit is often 1,024 (a login shell, a systemd service's default) where the hard
/// one allows far more: past about a thousand devices, each on its own keep-alive
/// connection, the others waited in the accept queue while every accept failed.
fn raise_open_files() -> Option<OpenFiles> {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    // An unlimited hard limit is refused as a soft one; the soft one then stays.
    let raised = soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok();
    Some(OpenFiles {
        now: if raised { hard } else { soft },
        before: soft,
    })
}

impl OpenFiles {
    /// Logged after the listening line, which stays the first line of standard error.
    fn log(&self) {
        let open_files = self.now;
        if open_files < FEW_OPEN_FILES {
            tracing::warn!(
                open_files,
                "at most about {open_files} connections at once: raise the hard open-file \
                 limit (ulimit -Hn, systemd LimitNOFILE=) for larger fleets"
            );
        } else {
            tracing::info!(open_files, raised_from = self.before, "open-file limit");
        }
    }
}

/// The longest secret or password `hash-secret` and `hash-password` read.
const MAX_STDIN_LINE: usize = 64 * 1024;

/// One line of standard input, without its line ending; refuses an empty one, one
/// longer than [`MAX_STDIN_LINE`] without reading it all (`< /dev/zero` was read
/// until memory ran out), and piped input with more lines after it (the hash of its
/// first line was printed, and the rest dropped unsaid: a file of several).
fn read_stdin_line(what: &str) -> anyhow::Result<String> {
    use std::io::{BufRead, IsTerminal, Read};
    let typed = std::io::stdin().is_terminal();
    if typed {
        errln!("Type the {what} and press Enter (it is echoed; pipe it in to avoid that):");
    }
    let mut line = Vec::new();
    let mut stdin = std::io::stdin().lock();
    let reading = || format!("reading the {what} from standard input");
    // The longest line and its "\r\n".
    (&mut stdin)
        .take(MAX_STDIN_LINE as u64 + 2)
        .read_until(b'\n', &mut line)
        .with_context(reading)?;
    if !typed && line.ends_with(b"\n") {
        // What follows, as far as a line's length: blank lines are fine.
        let mut rest = Vec::new();
        (&mut stdin)
            .take(MAX_STDIN_LINE as u64)
            .read_to_end(&mut rest)
            .with_context(reading)?;
        anyhow::ensure!(
            rest.iter().all(u8::is_ascii_whitespace),
            "standard input holds more than one line; the {what} is one line (printf %s '…' | deviceflow-server …)"
        );
    }
    while line.last().is_some_and(|b| matches!(b, b'\n' | b'\r')) {
        line.pop();
    }
    anyhow::ensure!(
        line.len() <= MAX_STDIN_LINE,
        "the {what} on standard input is longer than {} KiB, which none is",
        MAX_STDIN_LINE / 1024
    );
    let line = String::from_utf8(line).with_context(reading)?;
    anyhow::ensure!(!line.is_empty(), "no {what} on standard input");
    Ok(line)
}

/// `deviceflow-server device`: exits 0 with a token, 1 with the reason otherwise.
fn play_device(issuer: &str, client_id: &str, scope: Option<&str>) -> anyhow::Result<()> {
    use std::io::IsTerminal;
    let options = DeviceOptions {
        issuer: issuer.to_owned(),
        client_id: client_id.to_owned(),
        scope: scope.map(str::to_owned),
        ansi: std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let mut out = std::io::stdout();
        deviceflow_device::run(&options, &mut out).await
    })?;
    Ok(())
}

fn apply_overrides(cli: &ServerArgs, file: &mut FileConfig) {
    if let Some(v) = cli.listen {
        file.listen = v;
    }
    if let Some(v) = &cli.issuer {
        file.issuer = Some(v.clone());
    }
    if let Some(v) = cli.expires_in {
        file.device.expires_in = v;
    }
    if let Some(v) = cli.interval {
        file.device.interval = v;
    }
    if let Some(v) = cli.poll_tolerance_ms {
        file.device.poll_tolerance_ms = v;
    }
    if let Some(v) = cli.slow_down {
        file.device.slow_down = v;
    }
    if let Some(v) = cli.max_sessions {
        file.device.max_sessions = v;
    }
    if let Some(v) = &cli.admin_token {
        file.admin.token = Some(v.clone());
    }
    if let Some(v) = &cli.store {
        file.store = v.clone();
    }
    if let Some(v) = &cli.initial_access_token {
        file.registration.initial_access_token = Some(v.clone());
    }
}

fn random_token() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Completes on ctrl-c or SIGTERM. The handlers are installed when this is called, not
/// when the future is first polled: that is after "listening" is said, and a SIGTERM
/// in between (an orchestrator stopping an instance that just started) killed the
/// process instead of stopping it gracefully. Called inside the runtime.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    let mut signals = {
        use tokio::signal::unix::{signal, SignalKind};
        (
            signal(SignalKind::terminate()).ok(),
            signal(SignalKind::interrupt()).ok(),
        )
    };
    async move {
        #[cfg(unix)]
        {
            // A handler that could not be installed never completes.
            async fn recv(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        s.recv().await;
                    }
                    None => std::future::pending().await,
                }
            }
            tokio::select! {
                () = recv(&mut signals.0) => {}
                () = recv(&mut signals.1) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
        errln!("deviceflow-server: shutting down, finishing requests in flight");
    }
}

/// `check-config` with a shared store: connects, as the server would at start-up.
fn check_store(settings: &Settings) -> anyhow::Result<()> {
    let StoreConfig::Redis(url) = &settings.store else {
        return Ok(());
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async {
        let store = RedisStore::connect(url, &settings.store_settings()).await?;
        match store.named_by_sentinels() {
            Some(primary) => outln!("store         reachable: the Sentinels name {primary} as the primary")?,
            None => outln!("store         reachable")?,
        }
        // What the running server would warn of, said here before it runs.
        // Each setting: what Redis said, the line when it is right, when it is not,
        // and when Redis would not say.
        let store_settings = [
            (
                store.eviction_warning().await,
                "store memory  never drops keys (noeviction, or no maxmemory)",
                "store memory  may drop keys",
                "store memory  unknown: maxmemory-policy could not be read",
                "it must be noeviction",
            ),
            (
                store.persistence_warning().await,
                "store writes  logged (appendonly yes): a restart of Redis loses none",
                "store writes  not logged (appendonly no)",
                "store writes  unknown: appendonly could not be read",
                "it should be yes",
            ),
        ];
        for (read, right, wrong, unknown, should) in store_settings {
            match read {
                Ok(None) => outln!("{right}")?,
                Ok(Some(warning)) => {
                    outln!("{wrong}")?;
                    errln!("deviceflow-server: warning: {warning}");
                }
                Err(why) => outln!("{unknown} ({why}); {should}")?,
            }
        }
        let clock = Clock::System;
        match clock_offset::measure(&store, &clock).await {
            Ok(Some(offset)) => {
                outln!(
                    "store clock   this machine's is {} the store's ({} allowed)",
                    clock_offset::describe(offset),
                    clock_offset::seconds(clock_offset::allowed_ms(&settings.poll))
                )?;
                if let Some(warning) = clock_offset::warning(offset, &settings.poll) {
                    errln!("deviceflow-server: warning: {warning}");
                }
            }
            Ok(None) => outln!(
                "store clock   unknown: Redis refused TIME (an ACL?), so no instance can compare its clock with it"
            )?,
            Err(_) => anyhow::bail!("store \"{}\": Redis stopped answering", redacted(url)),
        }
        Ok(())
    })
}

fn print_summary(s: &Settings) -> anyhow::Result<()> {
    outln!("listen        {}", s.listen)?;
    outln!("store         {}", s.store)?;
    outln!(
        "issuer        {}",
        s.issuer.as_deref().unwrap_or("(http:// + bound address)")
    )?;
    outln!(
        "expires_in    {}s, interval {}s, slow_down {}, tolerance {}ms",
        s.expires_in_secs,
        s.interval_secs,
        // The words the file and --slow-down take.
        match s.poll.slow_down {
            SlowDownPolicy::Enforce => "enforce",
            SlowDownPolicy::Off => "off",
        },
        s.poll.tolerance_ms
    )?;
    outln!(
        "admin         {}",
        if s.admin_token.is_some() { "on" } else { "off" }
    )?;
    outln!(
        "registration  {}",
        if s.initial_access_token.is_some() {
            "on (RFC 7591, with the initial access token)"
        } else {
            "off"
        }
    )?;
    for c in s.clients.iter() {
        outln!(
            "client        {} ({}), {}, scopes [{}]",
            c.client_id,
            c.name,
            if c.is_public() {
                "public"
            } else {
                "confidential"
            },
            s.scopes.format(c.allowed_scope)
        )?;
    }
    for u in s.users.iter() {
        outln!(
            "user          {} ({}), {}",
            u.username,
            u.name,
            if u.password_hash.is_some() {
                "signs in at /device"
            } else {
                "no password: cannot sign in"
            }
        )?;
    }
    Ok(())
}

/// The tokens the embedded defaults run with, one a line; `None` is not printed.
fn print_tokens(
    admin_token: Option<&str>,
    initial_access_token: Option<&str>,
) -> anyhow::Result<()> {
    if let Some(token) = admin_token {
        outln!("Admin token for this run: {token}")?;
    }
    if let Some(token) = initial_access_token {
        outln!("Initial access token for this run: {token}")?;
    }
    Ok(())
}

fn print_walkthrough(
    issuer: &str,
    admin_token: &str,
    initial_access_token: &str,
) -> anyhow::Result<()> {
    let device = format!("{issuer}{}", deviceflow_server::http::paths::pages::DEVICE);
    let applications = format!("{issuer}{}", paths::pages::APPLICATIONS);
    outln!(
        r#"
Embedded demo defaults: public client "demo-device", confidential client
"demo-confidential" (secret "{DEMO_CONFIDENTIAL_SECRET}"), user "demo" (password "{DEMO_USER_PASSWORD}"),
an administrator: register your own device app at {applications}.

Try the device flow (RFC 8628) as a person would, in another terminal:

  deviceflow-server device --issuer {issuer}
  (from a checkout: cargo run -q -p deviceflow-server -- device --issuer {issuer})

and approve it in a browser at {device} (sign in as demo / {DEMO_USER_PASSWORD}),
or by scanning the QR code it prints."#
    )?;
    let da = format!("{issuer}{}", paths::DEVICE_AUTHORIZATION);
    let token = format!("{issuer}{}", paths::TOKEN);
    let admin = format!("{issuer}{}", paths::ADMIN_DECISIONS);
    let introspect = format!("{issuer}{}", paths::INTROSPECTION);
    let register = format!("{issuer}{}", paths::REGISTRATION);
    outln!()?;
    print_tokens(Some(admin_token), Some(initial_access_token))?;
    outln!(
        r#"
Or the same flow with curl:

  # 1. Register the device app, a public client, and note its client_id (RFC 7591;
  #    or on the applications page, or: deviceflow-server clients add --name "My TV")
  curl -s {register} -H 'Authorization: Bearer {initial_access_token}' \
       -H 'Content-Type: application/json' \
       -d '{{"client_name":"My TV","token_endpoint_auth_method":"none",
            "grant_types":["urn:ietf:params:oauth:grant-type:device_code","refresh_token"]}}'
  # 2. The device asks for codes (RFC 8628 §3.1)
  curl -s {da} -d client_id=CLIENT_ID -d scope=openid
  # 3. It polls with the device_code it got (§3.4): authorization_pending
  curl -s {token} -d client_id=CLIENT_ID \
       -d grant_type=urn:ietf:params:oauth:grant-type:device_code -d device_code=DEVICE_CODE
  # 4. Poll again at once: slow_down, and the interval is now 5 s longer (§3.5)
  # 5. The person approves (here through the admin endpoint, as user "demo")
  curl -s {admin} -H 'Authorization: Bearer {admin_token}' \
       -d user_code=USER_CODE -d action=approve -d user=demo
  # 6. The next poll gets the token; a resource server checks it (RFC 7662)
  curl -s {introspect} -u demo-confidential:{DEMO_CONFIDENTIAL_SECRET} -d token=ACCESS_TOKEN
"#
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn every_option_and_subcommand_has_help() {
        let missing = deviceflow_testkit::cli::without_help(&super::Cli::command());
        assert!(missing.is_empty(), "no help: {missing:?}");
    }
}
