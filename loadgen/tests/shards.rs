//! Runs larger than one machine: two shards run side by side against one server, are
//! merged exactly (`deviceflow-loadgen merge`), and the merged totals reconcile with
//! the server's own /metrics. And several targets: one server (one state) on two
//! loopback addresses, the devices spreading their requests over both.

mod common;

use std::process::Command;

use deviceflow_loadgen::device::flow::Outcome;
use deviceflow_loadgen::device::rng_for;
use deviceflow_loadgen::measure::scrape::{self, Window};
use deviceflow_loadgen::report::results::RunData;
use deviceflow_loadgen::transport::target_of;
use deviceflow_loadgen::{Behaviour, Mix};
use rand::Rng;

use common::{read_run, report_dir, Server};

const DEVICES: u64 = 120;

/// The generator with this file's fleet: `DEVICES` devices, 60 started a second.
fn loadgen(hosts: &[&str], extra: &[&str], dir: &std::path::Path) -> Command {
    let mut c = common::loadgen(hosts, dir);
    c.args([
        "-u",
        &DEVICES.to_string(),
        "-r",
        "60",
        "--decide-after",
        "1..3",
    ])
    .args(["--seed", "7"])
    .args(extra);
    c
}

fn scrape_now(base: &str) -> scrape::Scrape {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(scrape::scrape(
        &[target_of(base).unwrap()],
        std::time::Duration::from_secs(10),
    ))
    .expect("our server has /metrics")
}

#[test]
fn two_shards_merge_exactly_and_reconcile_with_the_servers_metrics() {
    let server = Server::start("expires_in = 6\ninterval = 1", "");
    let before = scrape_now(&server.base);
    let dirs = [report_dir("shard-1"), report_dir("shard-2")];
    let children: Vec<_> = ["1/2", "2/2"]
        .iter()
        .zip(&dirs)
        .map(|(shard, dir)| {
            loadgen(&[&server.base], &["--shard", shard], dir)
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{stderr}");
        // Two generators on one host: neither binds a port of goose's controllers.
        assert!(!stderr.contains("in use"), "{stderr}");
    }
    let after = scrape_now(&server.base);

    let merged_dir = report_dir("merged");
    let out = Command::new(env!("CARGO_BIN_EXE_deviceflow-loadgen"))
        .arg("merge")
        .args(dirs.iter().map(|d| d.join("run.json")))
        .arg("--report-dir")
        .arg(&merged_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = read_run::<RunData>(&merged_dir);
    let shards: Vec<RunData> = dirs.iter().map(|d| read_run::<RunData>(d)).collect();

    // Every device once, each with the behaviour its id gives it in a single run.
    assert_eq!(merged.stats.devices(), DEVICES);
    assert_eq!(merged.stats.outcome(Outcome::Unfinished), 0);
    let mix = Mix::default();
    for b in Behaviour::ALL {
        let want = (0..DEVICES)
            .filter(|id| mix.pick(rng_for(7, *id).gen_range(0..100)) == b)
            .count() as u64;
        let got = merged.stats.behaviours.get(&b).map_or(0, |s| s.devices);
        assert_eq!(got, want, "{b:?}");
    }
    // Histograms and counters add up exactly.
    let polls = |r: &RunData| r.stats.kinds[&deviceflow_loadgen::device::flow::Kind::Poll].clone();
    let (a, b, m) = (polls(&shards[0]), polls(&shards[1]), polls(&merged));
    assert_eq!(m.sent, a.sent + b.sent);
    assert_eq!(
        m.latency_us.count(),
        a.latency_us.count() + b.latency_us.count()
    );
    assert_eq!(
        m.latency_us.max(),
        a.latency_us.max().max(b.latency_us.max())
    );
    // And the totals are the server's: against the test's own scrape around both
    // shards, and against the merged window of the shards' own scrapes.
    let rows = scrape::reconcile(&Window { before, after }, &merged.stats);
    assert!(rows.len() >= 8, "{rows:#?}");
    for row in rows {
        assert!(row.matches(), "{row:#?}");
    }
    for row in scrape::reconcile(merged.metrics.as_ref().unwrap(), &merged.stats) {
        assert!(row.matches(), "{row:#?}");
    }
    assert_eq!(merged.shards.len(), 2);
    let html = std::fs::read_to_string(merged_dir.join("index.html")).unwrap();
    assert!(html.contains("shard 1/2") && html.contains("shard 2/2"));
    for d in dirs.iter().chain([&merged_dir]) {
        std::fs::remove_dir_all(d).unwrap();
    }
}

#[test]
fn devices_spread_their_requests_over_every_host() {
    let servers = Server::start_on(
        &["127.0.0.1:0", "127.0.0.2:0"],
        "expires_in = 6\ninterval = 1",
        "",
    );
    let dir = report_dir("hosts");
    let before = scrape_now(&servers[0].base);
    let out = loadgen(&[&servers[0].base, &servers[1].base], &[], &dir)
        .output()
        .unwrap();
    let after = scrape_now(&servers[0].base);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = read_run::<RunData>(&dir);
    assert_eq!(run.stats.devices(), DEVICES);
    assert_eq!(
        run.stats.violations_total(),
        0,
        "{:#?}",
        run.stats.violations
    );
    assert_eq!(
        run.stats.outcome(Outcome::Error),
        0,
        "{:#?}",
        run.stats.kinds
    );
    for s in &servers {
        let host = s.base.trim_start_matches("http://");
        let (sent, answered) = run.stats.hosts.get(host).copied().unwrap_or_default();
        assert!(
            sent > DEVICES && sent == answered,
            "{host}: {sent} sent, {answered} answered"
        );
    }
    // One server behind both addresses, so one scrape of it holds the fleet's counts
    // (the run's own table sums each host's /metrics, as for separate instances).
    for row in scrape::reconcile(&Window { before, after }, &run.stats) {
        assert!(row.matches(), "{row:#?}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The same command run an hour apart, shards 1/2 and 2/2: merge had accepted them,
/// and the merged per-second timeline held every second of the gap (about 5 KB each,
/// 450 MB for a day apart). It is refused in one line naming both runs and the gap.
#[test]
fn runs_an_hour_apart_are_not_merged() {
    let server = Server::start("expires_in = 6\ninterval = 1", "");
    let first = report_dir("apart-1");
    let out = common::loadgen(&[&server.base], &first)
        .args(["-u", "2", "-r", "2", "--decide-after", "1..1"])
        .args(["--shard", "1/2"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The second shard as if it had been run an hour after the first.
    let mut later: serde_json::Value = read_run(&first);
    let shard = &mut later["shards"][0];
    let start = shard["started_at_unix_ms"].as_u64().unwrap();
    shard["started_at_unix_ms"] = (start + 3_600_000).into();
    shard["shard"]["index"] = 1.into();
    let duration_ms = (shard["duration_s"].as_f64().unwrap() * 1000.0) as u64;
    let second = report_dir("apart-2");
    std::fs::create_dir_all(&second).unwrap();
    std::fs::write(second.join("run.json"), later.to_string()).unwrap();
    let merged = report_dir("apart-merged");
    let (a, b) = (first.join("run.json"), second.join("run.json"));
    let out = Command::new(env!("CARGO_BIN_EXE_deviceflow-loadgen"))
        .arg("merge")
        .args([&b, &a])
        .arg("--report-dir")
        .arg(&merged)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let gap_s = (3_600_000 - duration_ms) / 1000;
    assert_eq!(
        stderr.trim_end(),
        format!(
            "deviceflow-loadgen merge: {} (shard 2/2) started {} s after {} (shard 1/2) ended: merge adds the shards of one run, run at the same time, and refuses a gap of more than 60 s between them (start the shards together)",
            b.display(),
            deviceflow_reports::format::fmt_count(gap_s),
            a.display()
        )
    );
    assert!(!merged.exists(), "a merged report");
    for d in [&first, &second] {
        std::fs::remove_dir_all(d).unwrap();
    }
}
