//! A run stopped from outside: Ctrl-C (SIGINT) or SIGTERM (what `kill`, `timeout`, a
//! CI runner's cancel and a container's stop send). The first stops the run as the run
//! time's end does (nothing more is sent, the requests already out are waited for,
//! the report is written and says which signal stopped it); a second exits at once,
//! without the report.
//!
//! It owns the signals, not the stop: the lanes stop on [`requested`] as on goose's
//! killswitch (`lane/`). goose's own Ctrl-C handler had been the only one: SIGTERM
//! killed the process and lost the report, and so did a Ctrl-C before goose installs
//! its handler (during discovery, or while goose builds its users). [`listen`] is
//! installed first, and stays: goose's handler cannot be installed after it.

use std::sync::OnceLock;

/// What stopped the run, as the report and the terminal name it, with its exit status
/// (128 + the signal's number, as a shell reports a process the signal ended).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// SIGINT.
    CtrlC,
    /// SIGTERM.
    Term,
}

impl Signal {
    /// Its name in the report and on the terminal: "Ctrl-C" or "SIGTERM".
    pub fn as_str(self) -> &'static str {
        match self {
            Signal::CtrlC => "Ctrl-C",
            Signal::Term => "SIGTERM",
        }
    }

    /// The exit status of a run it stopped: 130 or 143.
    pub fn exit_code(self) -> i32 {
        match self {
            Signal::CtrlC => 130,
            Signal::Term => 143,
        }
    }

    /// The signal named `name` ([`Signal::as_str`]).
    pub fn named(name: &str) -> Option<Signal> {
        [Signal::CtrlC, Signal::Term]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// The first signal received, if any.
static REQUESTED: OnceLock<Signal> = OnceLock::new();

/// Records `signal` as the run's stop, unless one is already recorded: whether it was
/// the first.
pub fn request(signal: Signal) -> bool {
    REQUESTED.set(signal).is_ok()
}

/// The signal that asked the run to stop, if one did.
pub fn requested() -> Option<Signal> {
    REQUESTED.get().copied()
}

/// Listens for SIGINT and SIGTERM from now on (SIGTERM in the current tokio runtime):
/// the first is recorded ([`request`]), trips goose's killswitch and is sent on the
/// returned channel; the second exits the process at once, with its exit status.
/// Fails only when the signals cannot be listened to.
///
/// SIGINT goes through the `ctrlc` crate, as goose's own handler does: installed
/// first, it is the one that stays (goose's then fails to install, which goose logs
/// and goes on). goose's had taken SIGINT over once the run began, and its second
/// Ctrl-C exited 1, this command's status for a failed threshold, not 130.
#[cfg(unix)]
pub fn listen() -> std::io::Result<tokio::sync::watch::Receiver<Option<Signal>>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let (tx, rx) = tokio::sync::watch::channel(None);
    let tx = std::sync::Arc::new(tx);
    let on_interrupt = std::sync::Arc::clone(&tx);
    ctrlc::set_handler(move || received(Signal::CtrlC, &on_interrupt))
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    tokio::spawn(async move {
        while terminate.recv().await.is_some() {
            received(Signal::Term, &tx);
        }
    });
    Ok(rx)
}

/// What [`listen`] does with a signal `got`.
fn received(got: Signal, tx: &tokio::sync::watch::Sender<Option<Signal>>) {
    if !request(got) {
        deviceflow_reports::errln!(
            "deviceflow-loadgen: {} again: exiting at once, without the report",
            got.as_str()
        );
        std::process::exit(got.exit_code());
    }
    deviceflow_reports::errln!(
        "deviceflow-loadgen: {}: stopping ({} again exits at once)",
        got.as_str(),
        got.as_str()
    );
    goose::trigger_killswitch(got.as_str());
    let _ = tx.send(Some(got));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signal_is_named_back_from_its_name_and_exits_as_a_shell_reports_it() {
        for s in [Signal::CtrlC, Signal::Term] {
            assert_eq!(Signal::named(s.as_str()), Some(s));
        }
        assert_eq!(Signal::CtrlC.exit_code(), 128 + 2);
        assert_eq!(Signal::Term.exit_code(), 128 + 15);
        assert_eq!(Signal::named("SIGHUP"), None);
    }
}
