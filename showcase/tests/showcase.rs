//! The README's first command, small: the showcase binary runs all three parts and
//! writes both reports. Its codes live 20 s: the polling cases' three waits at the
//! interval must fit in a code's life to be judged, and a MUST not judged is no pass.

use std::process::Command;

#[test]
fn the_showcase_runs_server_suite_and_fleet_and_writes_the_reports() {
    let out = std::env::temp_dir().join(format!("deviceflow-showcase-test-{}", std::process::id()));
    let run = Command::new(env!("CARGO_BIN_EXE_deviceflow-showcase"))
        .args([
            "--devices",
            "40",
            "--hatch-rate",
            "40",
            "--expires-in",
            "20",
            "--out",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert!(
        run.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(stdout.contains("0 MUST failure(s)"), "{stdout}");
    assert!(stdout.contains("All three parts worked"), "{stdout}");
    for f in [
        "conformance/report.md",
        "conformance/report.json",
        "conformance/junit.xml",
        "fleet/index.html",
        "fleet/summary.md",
        "fleet/run.json",
    ] {
        let path = out.join(f);
        assert!(
            std::fs::metadata(&path).is_ok_and(|m| m.len() > 100),
            "{} missing or empty",
            path.display()
        );
    }
    std::fs::remove_dir_all(&out).unwrap();
}
