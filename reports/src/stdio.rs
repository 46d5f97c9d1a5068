//! Lines for the terminal that never take a program down.
//!
//! `println!` and `eprintln!` panic when their stream cannot be written: a closed pipe
//! (`… 2>&1 | head -1`), a full disk under a log file (`2>/dev/full`). The server then
//! died at its listening line, or later at its next diagnostic, its accept loop out
//! of file descriptors included (exit 101, a panic where a person expects a message).
//! Every binary of the workspace writes through these two instead (the workspace's
//! `print_stdout` and `print_stderr` lints hold it to that):
//!
//! - [`errln!`](crate::errln!): a diagnostic on standard error, dropped when it cannot be written:
//!   there is nowhere left to say so;
//! - [`outln!`](crate::outln!): a line of the program's output on standard output, returning a
//!   [`StdoutError`] when it cannot be written, for the caller to end with a clear
//!   message and its own exit status instead of losing the output unsaid.

use std::fmt;
use std::io::{self, Write as _};

/// Writes a line to standard error, as `eprintln!` does, and drops it when standard
/// error cannot be written (a closed pipe, a full disk) instead of panicking.
///
/// ```
/// deviceflow_reports::errln!("deviceflow-server: accept failed: {}", "too many open files");
/// ```
#[macro_export]
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::stdio::error_line(::std::format_args!($($arg)*))
    };
}

/// Writes a line to standard output, as `println!` does, and says whether it could:
/// `Err(`[`StdoutError`]`)` for a closed pipe or a full disk, where `println!` panics.
///
/// ```
/// fn main() -> Result<(), deviceflow_reports::stdio::StdoutError> {
///     deviceflow_reports::outln!("{} devices", 2_000)?;
///     deviceflow_reports::outln!()
/// }
/// ```
#[macro_export]
macro_rules! outln {
    () => {
        $crate::stdio::output(::std::format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::stdio::output(::std::format_args!("{}\n", ::std::format_args!($($arg)*)))
    };
}

/// What [`errln!`](crate::errln!) runs: `line` and a newline on standard error, or nothing.
pub fn error_line(line: fmt::Arguments<'_>) {
    let mut err = io::stderr().lock();
    // Nowhere left to report a failure to write the report of a failure.
    let _ = writeln!(err, "{line}");
}

/// What [`outln!`](crate::outln!) runs: `text` on standard output, flushed, so that a failure shows
/// here and not later, at exit, where std would drop it.
pub fn output(text: fmt::Arguments<'_>) -> Result<(), StdoutError> {
    let mut out = io::stdout().lock();
    out.write_fmt(text)
        .and_then(|()| out.flush())
        .map_err(StdoutError)
}

/// Standard output could not be written.
#[derive(Debug)]
pub struct StdoutError(pub io::Error);

impl fmt::Display for StdoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "writing to standard output: {}", self.0)
    }
}

/// For a function that reports `io::Error`s: the same kind, and this message.
impl From<StdoutError> for io::Error {
    fn from(e: StdoutError) -> io::Error {
        io::Error::new(e.0.kind(), e)
    }
}

/// No `source`: the message already says it, and `{:#}` would say it twice.
impl std::error::Error for StdoutError {}
