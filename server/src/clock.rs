//! Time, as the server sees it: milliseconds since the Unix epoch from an injectable
//! clock, so that expiry and polling-interval tests move time instead of sleeping.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch.
pub type Millis = u64;

/// The server's clock. An enum rather than a trait object: the poll path reads it on
/// every request, and a branch costs less than a virtual call.
#[derive(Debug, Clone, Default)]
pub enum Clock {
    /// Wall-clock time.
    #[default]
    System,
    /// Time that moves only when a test says so.
    Manual(Arc<AtomicU64>),
}

impl Clock {
    /// A manual clock starting at `start` milliseconds.
    pub fn manual(start: Millis) -> Clock {
        Clock::Manual(Arc::new(AtomicU64::new(start)))
    }

    /// Now, in milliseconds since the Unix epoch.
    pub fn now(&self) -> Millis {
        match self {
            Clock::System => SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as Millis),
            Clock::Manual(t) => t.load(Ordering::Acquire),
        }
    }

    /// Moves a manual clock forward; does nothing to the system clock.
    pub fn advance(&self, by_ms: Millis) {
        if let Clock::Manual(t) = self {
            t.fetch_add(by_ms, Ordering::AcqRel);
        }
    }

    /// Sets a manual clock to `to`, earlier or later: tests step the clock back as NTP
    /// or a restored VM would. Does nothing to the system clock.
    pub fn set(&self, to: Millis) {
        if let Clock::Manual(t) = self {
            t.store(to, Ordering::Release);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_clock_moves_only_when_advanced() {
        let clock = Clock::manual(1_000);
        assert_eq!(clock.now(), 1_000);
        clock.advance(250);
        assert_eq!(clock.now(), 1_250);
        let shared = clock.clone();
        shared.advance(750);
        assert_eq!(clock.now(), 2_000);
    }

    #[test]
    fn system_clock_is_after_2020() {
        assert!(Clock::System.now() > 1_577_836_800_000);
    }
}
