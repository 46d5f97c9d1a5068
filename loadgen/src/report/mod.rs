//! The report folder of a run: `index.html` (`html.rs`), `summary.md` (`render.rs`) and
//! `run.json` (`results.rs`), written so that the folder never holds files of two runs.
//!
//! Each file is written under a temporary name in the folder, and renamed over its own
//! name only once all three are written: a folder, a full disk or a permission that
//! stops one file stops them all before any is replaced, and the earlier run's files
//! stay as they were. A rename that fails after others went through (rare: the checks
//! before it passed) removes the earlier run's files that were not replaced, so what
//! is left is this run's, incomplete, never a mix. Every error names the file. The
//! same paths are checked before the run ([`check_replaceable`]), so a folder where a
//! file goes is said then, not after the run.

pub mod html;
pub mod render;
pub mod results;
pub mod thresholds;

use std::path::{Path, PathBuf};

use anyhow::Context;
use deviceflow_reports::escape::json_for_terminal;

use crate::report::results::RunData;

/// The report's files, in the order they are put in place.
pub const FILES: [&str; 3] = ["run.json", "summary.md", "index.html"];

/// Writes `index.html`, `summary.md` and `run.json` into `dir` (created if need be).
///
/// run.json quotes the server (its unexpected answers, its `/metrics` series, the
/// examples of violations): what a terminal acts on in them is written as `\uXXXX`
/// ([`json_for_terminal`]), as the conformance suite writes its report, so that `cat
/// run.json` never obeys a C1 CSI (U+009B) or a bidirectional override the server sent.
pub fn write(r: &RunData, dir: &Path) -> anyhow::Result<()> {
    let json = json_for_terminal(&serde_json::to_string(r).context("encoding run.json")?);
    write_files(
        dir,
        [
            json,
            crate::report::render::markdown(r),
            crate::report::html::page(r),
        ],
    )
}

/// Whether each of the report's files could be put in `dir`: absent, or not a
/// folder (a rename replaces a file, never a folder), and not someone else's: files
/// of the report's names beside no `run.json` of a deviceflow-loadgen run (a site's
/// own `index.html`, say) are not replaced. The error names the path.
pub fn check_replaceable(dir: &Path) -> anyhow::Result<()> {
    for name in FILES {
        let path = dir.join(name);
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            anyhow::bail!(
                "{} is a folder, where the report's {name} goes: remove it, or give another --report-dir",
                path.display()
            );
        }
    }
    let present: Vec<&str> = FILES
        .into_iter()
        .filter(|name| std::fs::symlink_metadata(dir.join(name)).is_ok())
        .collect();
    if !present.is_empty() && !a_run_wrote(&dir.join("run.json")) {
        anyhow::bail!(
            "{} holds {} of no deviceflow-loadgen run (there is no run.json of one beside): the report would replace it; give an empty folder, or one a run wrote",
            dir.display(),
            present.join(" and ")
        );
    }
    Ok(())
}

/// Whether `path` is the `run.json` of a deviceflow-loadgen run, of any schema.
fn a_run_wrote(path: &Path) -> bool {
    #[derive(serde::Deserialize)]
    struct Schema {
        schema: String,
    }
    std::fs::read(path)
        .ok()
        .and_then(|bytes| serde_json::from_slice::<Schema>(&bytes).ok())
        .is_some_and(|s| s.schema.starts_with("deviceflow-loadgen/"))
}

/// This process's temporary name for `name` in `dir`: hidden, and its own (two runs
/// into one folder at once do not write each other's).
fn temporary(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!(".{name}.{}.tmp", std::process::id()))
}

/// Writes `texts` as [`FILES`] into `dir`, all or none (module docs).
fn write_files(dir: &Path, texts: [String; 3]) -> anyhow::Result<()> {
    deviceflow_reports::files::create_folder(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let unchanged =
        "nothing of this run's report was written, and the folder's files are as they were";
    if let Err(e) = check_replaceable(dir) {
        anyhow::bail!("{e:#}; {unchanged}");
    }
    let remove_temporaries = || {
        for name in FILES {
            let _ = std::fs::remove_file(temporary(dir, name));
        }
    };
    for (name, text) in FILES.iter().zip(&texts) {
        if let Err(e) = std::fs::write(temporary(dir, name), text) {
            remove_temporaries();
            return Err(e)
                .with_context(|| format!("writing {}: {unchanged}", dir.join(name).display()));
        }
    }
    for (i, name) in FILES.iter().enumerate() {
        let path = dir.join(name);
        if let Err(e) = std::fs::rename(temporary(dir, name), &path) {
            remove_temporaries();
            // The files after this one are the earlier run's: gone, so that none is
            // taken for this run's.
            let mut removed = Vec::new();
            let mut stayed = Vec::new();
            for later in &FILES[i..] {
                let p = dir.join(later);
                match std::fs::remove_file(&p) {
                    Ok(()) => removed.push(*later),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(_) => stayed.push(*later),
                }
            }
            let mut said = format!(
                "writing {}: {e}; the report in {} is incomplete (written: {})",
                path.display(),
                dir.display(),
                if i == 0 {
                    "none".to_owned()
                } else {
                    FILES[..i].join(", ")
                }
            );
            if !removed.is_empty() {
                said += &format!(
                    "; the earlier run's {} removed, so that no file of another run stays beside this run's",
                    removed.join(", ")
                );
            }
            if !stayed.is_empty() {
                said += &format!(
                    "; {} could not be removed and is an earlier run's",
                    stayed.join(", ")
                );
            }
            anyhow::bail!(said);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measure::scrape::Window;
    use crate::report::results::sample::{late_in_second_5, shard_at};

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "deviceflow-loadgen-report-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A run's three files; its run.json says whose (the folder check reads it).
    fn texts(run: &str) -> [String; 3] {
        FILES.map(|f| text(f, run))
    }

    fn text(file: &str, run: &str) -> String {
        match file {
            "run.json" => format!(r#"{{"schema":"deviceflow-loadgen/4","of":"{run}"}}"#),
            _ => format!("{file} of {run}"),
        }
    }

    fn read(dir: &Path, name: &str) -> Option<String> {
        std::fs::read_to_string(dir.join(name)).ok()
    }

    /// A folder named as one of the files (left by hand, or by a run's mistake): the
    /// other files had been replaced and this one not, so the folder held this run's
    /// run.json beside an earlier run's index.html ("STOPPED EARLY by Ctrl-C"), and
    /// the error said only "Is a directory (os error 21)".
    #[test]
    fn a_file_that_cannot_be_replaced_leaves_the_earlier_run_whole_and_is_named() {
        let dir = scratch("blocked");
        write_files(&dir, texts("run 1")).unwrap();
        std::fs::remove_file(dir.join("summary.md")).unwrap();
        std::fs::create_dir(dir.join("summary.md")).unwrap();
        let e = format!("{:#}", write_files(&dir, texts("run 2")).unwrap_err());
        assert!(
            e.contains(&format!("{} is a folder", dir.join("summary.md").display())),
            "{e}"
        );
        assert!(
            e.contains("nothing of this run's report was written"),
            "{e}"
        );
        assert!(!e.contains('\n'), "{e}");
        assert_eq!(read(&dir, "run.json"), Some(text("run.json", "run 1")));
        assert_eq!(
            read(&dir, "index.html").as_deref(),
            Some("index.html of run 1")
        );
        // No temporary file is left behind.
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(left.len(), 3, "{left:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_report_replaces_the_earlier_runs_files_each_whole() {
        let dir = scratch("replaced");
        write_files(&dir, texts("run 1")).unwrap();
        write_files(&dir, texts("run 2")).unwrap();
        for f in FILES {
            assert_eq!(read(&dir, f), Some(text(f, "run 2")));
        }
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 3);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// `hostile_server.py term`: run.json held the server's U+009B (an 8-bit CSI:
    /// `cat run.json` in xterm obeyed `CSI 31m`), U+0085, DEL, a U+202E that turned the
    /// text around and U+2028, in an unexpected answer and in `/metrics` series names;
    /// serde_json escapes U+0000-U+001F only.
    #[test]
    fn run_json_shows_what_a_terminal_would_obey_as_escapes() {
        use crate::device::flow::Kind;
        let hostile = "\u{9b}31m\u{202e}LIAF\u{202c}\u{2028}\u{85}\u{7f}\u{feff}\u{1b}[2J naïve";
        let host = "http://127.0.0.1:9".to_owned();
        let config = crate::fleet::FleetConfig::new(
            std::slice::from_ref(&host),
            &format!("{host}/d"),
            &format!("{host}/t"),
            &deviceflow_conformance::Client::public("tv"),
            None,
            deviceflow_conformance::Approver::None,
        )
        .unwrap();
        let mut stats = crate::measure::stats::RunStats::default();
        stats.kind(Kind::Poll).unexpected_answer(hostile, 1);
        let series = format!("{}_total 3", hostile.replace(' ', "_"));
        let r = RunData {
            schema: crate::report::results::SCHEMA.into(),
            setup: crate::report::results::Setup::new(
                "test".into(),
                vec![host],
                &config,
                "tv",
                0.01,
            ),
            shards: Vec::new(),
            duration_s: 1.0,
            stats,
            metrics: Some(crate::measure::scrape::Window {
                before: crate::measure::scrape::parse(&series),
                after: crate::measure::scrape::parse(&series),
            }),
            no_reconciliation: Vec::new(),
        };
        let dir = scratch("terminal");
        write(&r, &dir).unwrap();
        let json = read(&dir, "run.json").unwrap();
        let acts = deviceflow_reports::escape::acts_on_a_terminal;
        assert!(!json.contains(acts), "{json:?}");
        assert!(json.contains(r"\u009b31m\u202eLIAF\u202c\u2028\u0085\u007f\ufeff\u001b[2J naïve"));
        // Read back, the server's words are as it sent them.
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        let poll = &back["stats"]["kinds"]["poll"]["unexpected"];
        assert!(poll.as_object().unwrap().contains_key(hostile), "{poll}");
        assert!(json.matches(r"\u009b31m").count() >= 3, "{json}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A folder that is not one (`/dev/full`, a file): named, with the file.
    #[test]
    fn a_report_folder_that_cannot_be_made_is_named() {
        let e = format!(
            "{:#}",
            write_files(Path::new("/dev/full/x"), texts("run")).unwrap_err()
        );
        assert!(e.starts_with("creating /dev/full/x: "), "{e}");
    }

    /// A /metrics that answers without any of deviceflow-server's counters (another
    /// server's, an HTML page served as 200) reconciles nothing: the findings had
    /// said "All 0 counts match the server's /metrics".
    #[test]
    fn a_metrics_page_without_our_counters_is_no_reconciliation() {
        let mut r = late_in_second_5(1.0, 0, 0);
        r.metrics = Some(Window {
            before: crate::measure::scrape::parse(
                "<html>hello</html>\nprocess_cpu_seconds_total 3",
            ),
            after: crate::measure::scrape::parse("process_cpu_seconds_total 4"),
        });
        let findings = render::findings(&r).join("\n");
        assert!(!findings.contains("counts match"), "{findings}");
        assert!(
            findings.contains(
                "No reconciliation with the server's /metrics: it has none of deviceflow-server's counters"
            ),
            "{findings}"
        );
        assert!(render::reconciliation_rows(&r).is_none());
        assert!(!html::page(&r).contains("Reconciliation with the server"));
    }

    /// A debug-built generator is said in the header and as a finding, and a merge
    /// with one debug-built shard is said so too; a release build says nothing more.
    #[test]
    fn a_debug_built_generator_is_said() {
        let day_ms = 1_700_000_000_000;
        let mut release = shard_at(0, day_ms, 10.0);
        release.setup.debug_build = false;
        let mut debug = shard_at(1, day_ms + 1_000, 10.0);
        debug.setup.debug_build = true;
        let said = |r: &RunData| render::findings(r).join("\n");
        assert!(
            !said(&release).contains("debug build"),
            "{}",
            said(&release)
        );
        assert!(render::markdown(&release).contains("generator: release build"));
        assert!(
            said(&debug).contains("The generator was a debug build"),
            "{}",
            said(&debug)
        );
        let merged = RunData::merge(vec![
            ("a/run.json".to_owned(), release),
            ("b/run.json".to_owned(), debug),
        ])
        .unwrap();
        assert!(merged.setup.debug_build);
        assert!(render::markdown(&merged).contains("generator: debug build"));
    }
}
