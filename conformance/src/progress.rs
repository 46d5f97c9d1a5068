//! What the suite is doing while it waits, on standard error; and how much of a
//! finding it quotes, there and in every report.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use deviceflow_reports::escape::{clip, terminal as printable};

/// The most characters of a finding (a case's summary, one check, a request's URL)
/// the progress lines and the reports show, as the evidence keeps at most 2048 bytes
/// of a body (`http/`): a server that answers a megabyte of `error_description` gets
/// its first 2048 characters quoted, in every case that quotes it, not the megabyte. What is shown of the server's words is made text by
/// `deviceflow_reports` (`escape::terminal`, `markdown::escape`, `escape::escape` for
/// JUnit's XML), one rule for every tool.
pub const FINDING_CHARS: usize = 2048;

#[derive(Debug, Clone)]
pub struct Progress {
    quiet: bool,
    color: bool,
    start: Instant,
}

impl Progress {
    pub fn new(quiet: bool) -> Progress {
        Progress {
            quiet,
            color: std::io::stderr().is_terminal(),
            start: Instant::now(),
        }
    }

    /// Writes `text`, which may quote the server, shown and never obeyed by the
    /// terminal, and cut to a finding's length.
    fn line(&self, text: &str) {
        if self.quiet {
            return;
        }
        let text = printable(&clip(text, FINDING_CHARS));
        let t = self.start.elapsed().as_secs_f64();
        let mut err = std::io::stderr().lock();
        let _ = if self.color {
            writeln!(err, "\x1b[2m[{t:6.1}s]\x1b[0m {text}")
        } else {
            writeln!(err, "[{t:6.1}s] {text}")
        };
    }

    pub fn note(&self, case: &str, what: &str) {
        self.line(&format!("{case}: {what}"));
    }

    /// Announces a wait of `d` (only waits of a second or more, to keep it readable).
    pub fn waiting(&self, case: &str, d: Duration, why: &str) {
        if d >= Duration::from_secs(1) {
            self.line(&format!("{case}: waiting {:.1} s ({why})", d.as_secs_f64()));
        }
    }

    pub fn finished(&self, case: &str, status: &str, summary: &str) {
        self.line(&format!("{case}: {status} — {summary}"));
    }
}
