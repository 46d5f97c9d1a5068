//! `memory/rss`: what a million live pending sessions cost in resident memory.
//!
//! Builds the app the server runs (demo configuration: `expires_in` 600 s, room for
//! 2,000,000 sessions), reads `VmRSS`, creates the sessions in its store as device
//! authorization does, and reads `VmRSS` again. Target: at most 300 MB of total RSS
//! with 1,000,000 sessions held (1 MB = 10^6 bytes).
//!
//! Not a criterion bench: one run is the measurement. `cargo bench` (which passes
//! `--bench`) creates 1,000,000 sessions; any other run, such as
//! `cargo test --benches` in CI, creates 10,000 so that it stays a quick smoke test.

use std::time::Instant;

use deviceflow_benches::{vm_hwm_bytes, vm_rss_bytes};
use deviceflow_reports::{errln, outln};
use deviceflow_server::protocol::session::{PollOutcome, Session};
use deviceflow_server::{App, Clock, FileConfig, Settings};

const NAME: &str = "memory/rss";
const FULL_SESSIONS: usize = 1_000_000;
const SMOKE_SESSIONS: usize = 10_000;
const TARGET_RSS_BYTES: u64 = 300_000_000;
/// criterion options that take a value, so that the value is not read as a filter.
const VALUED_FLAGS: [&str; 14] = [
    "--warm-up-time",
    "--measurement-time",
    "--sample-size",
    "--save-baseline",
    "--baseline",
    "--baseline-lenient",
    "--load-baseline",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--nresamples",
    "--color",
    "--output-format",
    "--profile-time",
];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--list") {
        if let Err(e) = outln!("{NAME}: benchmark") {
            errln!("{NAME}: {e}");
            std::process::exit(1);
        }
        return;
    }
    if !selected(&args) {
        return;
    }
    let full = args.iter().any(|a| a == "--bench");
    let sessions = if full { FULL_SESSIONS } else { SMOKE_SESSIONS };
    if let Err(e) = run(sessions, full) {
        errln!("{NAME}: {e}");
        std::process::exit(1);
    }
}

/// Whether a positional filter, as criterion takes them, selects this bench.
fn selected(args: &[String]) -> bool {
    let mut filters = Vec::new();
    let mut skip_value = false;
    for a in args {
        if std::mem::take(&mut skip_value) {
            continue;
        }
        if a.starts_with('-') {
            skip_value = VALUED_FLAGS.contains(&a.as_str());
        } else {
            filters.push(a.as_str());
        }
    }
    filters.is_empty() || filters.iter().any(|f| NAME.contains(f))
}

fn run(sessions: usize, full: bool) -> std::io::Result<()> {
    let settings = Settings::from_file(FileConfig::demo()).expect("the demo configuration");
    let expires_in_ms = settings.expires_in_secs * 1000;
    let app = App::new(settings, "http://127.0.0.1".into(), Clock::System);
    let client = app
        .settings
        .clients
        .by_client_id(deviceflow_benches::DEMO_CLIENT_ID)
        .expect("the demo public client");
    assert!(app.settings.max_sessions >= sessions);

    let before = vm_rss_bytes()?;
    let start = Instant::now();
    let mut probe = None;
    for _ in 0..sessions {
        let now = app.clock.now();
        let code = app
            .store
            .sessions
            .create(
                client.id,
                client.default_scope,
                now,
                expires_in_ms,
                &app.settings.poll,
            )
            .expect("below max_sessions");
        probe.get_or_insert(code);
    }
    let took = start.elapsed();
    let after = vm_rss_bytes()?;
    let peak = vm_hwm_bytes()?;

    // Measuring what we claim: every session is held, and they are live and pending.
    assert_eq!(app.store.sessions.len(), sessions);
    let probe = probe.expect("at least one session");
    let outcome =
        app.store
            .sessions
            .poll(&probe, client.id, app.clock.now(), &app.settings.poll, || 0);
    assert_eq!(
        outcome,
        PollOutcome::Pending,
        "the sessions must be pending"
    );

    let delta = after.saturating_sub(before);
    let verdict = if !full {
        "n/a (smoke run; `cargo bench` runs 1,000,000)"
    } else if after <= TARGET_RSS_BYTES {
        "met"
    } else {
        "MISSED"
    };
    outln!(
        "{NAME}: pending sessions in MemoryStore, expires_in {} s, created in {:.2} s \
         (size_of::<Session>() = {} bytes; 1 MB = 10^6 bytes)",
        expires_in_ms / 1000,
        took.as_secs_f64(),
        std::mem::size_of::<Session>(),
    )?;
    outln!(
        "{:>10}  {:>11}  {:>11}  {:>11}  {:>13}  {:>11}  target: total RSS <= 300 MB",
        "sessions",
        "RSS before",
        "RSS after",
        "delta",
        "bytes/session",
        "peak RSS"
    )?;
    outln!(
        "{:>10}  {:>11}  {:>11}  {:>11}  {:>13.1}  {:>11}  {verdict}",
        sessions,
        mb(before),
        mb(after),
        mb(delta),
        delta as f64 / sessions as f64,
        mb(peak),
    )?;
    Ok(())
}

fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
