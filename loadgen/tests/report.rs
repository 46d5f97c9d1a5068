//! The report folder: its files' paths checked before the run, each file put in place
//! whole, never a folder holding files of two runs, and the terminal's copy printed
//! even when the report cannot be written.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::{report_dir, Server};

const DEVICE: &str = "expires_in = 60\ninterval = 1";

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs a short fleet against `server` into `dir`, which must be refused before the
/// run (exit 2) in one line: that line.
fn refused_before_the_run(server: &Server, dir: &std::path::Path) -> String {
    let out = common::loadgen(&[&server.base], dir)
        .args(["-u", "2", "-r", "2", "--decide-after", "1..1", "-t", "2"])
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    err
}

/// A folder named as one of the report's files (`mkdir -p rj/run.json`) had been
/// found only after the run: "writing rj: Is a directory (os error 21)", exit 2, the
/// run lost with no terminal summary either. It is a setup error before any device
/// runs, in one line naming the path, and the folder is left as it was.
#[test]
fn a_folder_where_a_report_file_goes_is_a_setup_error_naming_it() {
    let server = Server::start(DEVICE, "");
    for name in ["run.json", "summary.md", "index.html"] {
        let dir = report_dir(&format!("report-folder-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join(name)).unwrap();
        let err = refused_before_the_run(&server, &dir);
        assert!(
            err.contains(&format!("{} is a folder", dir.join(name).display())),
            "{err}"
        );
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
        assert_eq!(left.len(), 1, "{left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let issued = common::metric(&server.base, "deviceflow_device_authorizations_total");
    assert_eq!(issued, Some(0.0), "no device ran");
}

/// A folder holding files of the report's names that no run wrote (a site's own
/// `index.html`, notes in a `summary.md`) is a setup error naming them, and they are
/// left as they were; they had been replaced by the report without a word. A folder
/// an earlier run wrote (its run.json says so) is still written over.
#[test]
fn a_folder_of_someone_elses_files_is_not_written_over() {
    let server = Server::start(DEVICE, "");
    for name in ["index.html", "summary.md", "run.json"] {
        let dir = report_dir(&format!("report-foreign-{name}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(name), "mine").unwrap();
        let err = refused_before_the_run(&server, &dir);
        assert!(
            err.contains(&format!("holds {name} of no deviceflow-loadgen run")),
            "{err}"
        );
        assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), "mine");
        std::fs::remove_dir_all(&dir).unwrap();
    }
    let issued = common::metric(&server.base, "deviceflow_device_authorizations_total");
    assert_eq!(issued, Some(0.0), "no device ran");
}

/// A report file that cannot be put in place when the run ends (here a folder made
/// where summary.md goes while the run went): the error had been a bare "Is a
/// directory (os error 21)", run.json was the new run's and index.html still the
/// earlier run's, and no terminal summary was printed. Now the terminal summary is
/// printed, one line names the file, the exit status is 2, and the earlier run's
/// files stay whole: none of this run's replaced them.
#[test]
fn a_report_that_cannot_be_written_leaves_no_mix_of_runs_and_still_prints_the_summary() {
    let server = Server::start(DEVICE, "");
    let dir = report_dir("report-mix");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // An earlier run's files (its run.json says whose they are).
    let earlier = |name: &str| match name {
        "run.json" => r#"{"schema":"deviceflow-loadgen/3","of":"an earlier run"}"#.to_owned(),
        _ => format!("{name} of an earlier run"),
    };
    for name in ["run.json", "summary.md", "index.html"] {
        std::fs::write(dir.join(name), earlier(name)).unwrap();
    }
    // Once a code is issued the checks before the run are behind it.
    let (child, under_way) = common::start_a_long_run(&server.base, &dir);
    std::fs::remove_file(dir.join("summary.md")).unwrap();
    std::fs::create_dir(dir.join("summary.md")).unwrap();
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let started = Instant::now();
    let out = child.wait_with_output().unwrap();
    let err = stderr(&out);
    assert!(under_way, "no code issued within 60 s: {err}");
    assert!(started.elapsed() < Duration::from_secs(60), "{err}");
    assert_eq!(out.status.code(), Some(2), "{err}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("devices in "),
        "no terminal summary: {stdout}"
    );
    assert!(!stdout.contains("report: "), "{stdout}");
    let line = err
        .lines()
        .find(|l| l.starts_with("deviceflow-loadgen: the report could not be written: "))
        .unwrap_or_else(|| panic!("not said: {err}"));
    assert!(
        line.contains(&format!("{} is a folder", dir.join("summary.md").display())),
        "{line}"
    );
    for name in ["run.json", "index.html"] {
        assert_eq!(
            std::fs::read_to_string(dir.join(name)).unwrap(),
            earlier(name),
            "{name} was replaced, beside an earlier run's files"
        );
    }
    // No temporary file is left behind.
    assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);
    std::fs::remove_dir_all(&dir).unwrap();
}
