//! A run stopped from outside: SIGTERM (a CI job's cancel, `timeout`, `kill`) and
//! Ctrl-C, during the run and before it begins. Each waits for a sign that the run got
//! where the test needs it (a code issued, a connection accepted), never for a fixed
//! time.

mod common;

use std::net::TcpListener;
use std::process::Output;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use deviceflow_loadgen::report::results::RunData;

use common::{output_within, read_run, report_dir, signal, Server};

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// SIGTERM had killed the process at once (exit 143 from the signal itself) and left
/// an empty report folder: a CI job's cancel lost the run. It now stops the run as
/// Ctrl-C does: the report is written, says SIGTERM stopped it and when, and the exit
/// status is 143 (128 + 15, as a shell reports a process SIGTERM ended).
#[test]
fn sigterm_stops_the_run_and_the_report_says_so() {
    let server = Server::start("expires_in = 60\ninterval = 1", "");
    let dir = report_dir("stop-sigterm");
    // The first code issued says the run is under way.
    let (child, under_way) = common::start_a_long_run(&server.base, &dir);
    signal(&child, "TERM");
    let out = output_within(child, Duration::from_secs(30));
    let err = stderr(&out);
    assert!(under_way, "no code issued within 60 s: {err}");
    assert_eq!(out.status.code(), Some(143), "{err}");
    assert!(err.contains("stopped by SIGTERM at "), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("report: "),
        "{err}"
    );
    let run = read_run::<RunData>(&dir);
    assert_eq!(run.shards[0].stopped_by.as_deref(), Some("SIGTERM"));
    assert!(run.shards[0].stopped_at_s.is_some());
    assert!(run.stats.devices() > 0);
    let summary = std::fs::read_to_string(dir.join("summary.md")).unwrap();
    assert!(
        summary.contains("STOPPED EARLY by SIGTERM at "),
        "{summary}"
    );
    let html = std::fs::read_to_string(dir.join("index.html")).unwrap();
    assert!(html.contains("STOPPED EARLY by SIGTERM at "));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A listener that accepts connections and never answers; how many it accepted.
fn silent() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&accepted);
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
            counted.fetch_add(1, Relaxed);
        }
    });
    (base, accepted)
}

/// A signal during discovery (a server slow to answer its metadata; up to
/// --request-timeout per URL) had killed the process, SIGTERM and Ctrl-C alike. It
/// now ends it within moments, in one line saying nothing ran, with the signal's exit
/// status, and no report folder.
#[test]
fn a_signal_before_the_run_began_ends_it_at_once_without_a_report_folder() {
    for (name, said, code) in [("TERM", "SIGTERM", 143), ("INT", "Ctrl-C", 130)] {
        let (base, accepted) = silent();
        let dir = report_dir(&format!("stop-before-{name}"));
        let child = common::loadgen(&[&base], &dir)
            .args(["--request-timeout", "300"])
            .spawn()
            .unwrap();
        let asked = common::wait_until(Duration::from_secs(60), || accepted.load(Relaxed) > 0);
        assert!(asked, "no metadata request within 60 s");
        signal(&child, name);
        let out = output_within(child, Duration::from_secs(20));
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(code), "{err}");
        assert!(
            err.trim_end().ends_with(&format!(
                "deviceflow-loadgen: stopped by {said} before the run began: no device ran, and no report was written"
            )),
            "{err}"
        );
        assert!(!dir.exists(), "a report folder for a run that never began");
    }
}
