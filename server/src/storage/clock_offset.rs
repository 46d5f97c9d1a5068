//! Whether this instance's clock agrees with the shared store's.
//!
//! Instances on one store read times that other instances wrote: a session's last
//! accepted poll, its expiry, a token's. A device behind a load balancer polls one
//! instance, then another. If the second one's clock is behind the first's by more
//! than `device.poll_tolerance_ms`, a poll on time reads as early there, and the device
//! is told `slow_down` (RFC 8628 §3.5) when it did nothing wrong; codes and tokens also
//! expire at different times on different instances.
//!
//! Each instance compares its clock with the store's (Redis `TIME`, on a cluster
//! always the node that holds `df:secret`) at start and once a minute, logs when it is
//! more than half the tolerance apart ([`allowed_ms`]), and shows the offset in
//! `/metrics` (`deviceflow_store_clock_offset_seconds`). Two instances each within half
//! the tolerance of the store are within the tolerance of each other.

use crate::clock::{Clock, Millis};
use crate::protocol::session::{PollPolicy, SlowDownPolicy};
use crate::storage::store::{Store, Stored};

/// This instance's clock minus the store's, in milliseconds: positive when this
/// instance is ahead. The store read its clock at some moment between `asked` and
/// `answered` (this instance's clock): the midpoint is taken as that moment, so the
/// error is at most half the round trip.
pub fn offset(asked: Millis, store: Millis, answered: Millis) -> i64 {
    let midpoint = asked.midpoint(answered.max(asked));
    i64::try_from(midpoint)
        .unwrap_or(i64::MAX)
        .saturating_sub(i64::try_from(store).unwrap_or(i64::MAX))
}

/// The offset of `clock` from `store`'s clock, or `None` when the store keeps no clock
/// of its own (the memory store, which is this instance).
pub async fn measure<S: Store>(store: &S, clock: &Clock) -> Stored<Option<i64>> {
    let asked = clock.now();
    let Some(at) = store.time().await? else {
        return Ok(None);
    };
    Ok(Some(offset(asked, at, clock.now())))
}

/// The least bound: the offset's own error (half a round trip, a millisecond's
/// rounding) must never be a warning.
const MIN_ALLOWED_MS: Millis = 50;

/// The bound without pacing: instances only expire codes and tokens a little apart.
const UNPACED_ALLOWED_MS: Millis = 1_000;

/// How far from the store's clock an instance may be: half `poll_tolerance_ms` where
/// early polls get `slow_down` (two instances each within it are within the tolerance
/// of each other), at least `MIN_ALLOWED_MS`; `UNPACED_ALLOWED_MS` where they do not.
pub fn allowed_ms(policy: &PollPolicy) -> Millis {
    match policy.slow_down {
        SlowDownPolicy::Enforce => (policy.tolerance_ms / 2).max(MIN_ALLOWED_MS),
        SlowDownPolicy::Off => UNPACED_ALLOWED_MS,
    }
}

/// `2.400 s ahead of` or `0.012 s behind`: the offset as a person reads it.
pub fn describe(offset_ms: i64) -> String {
    let side = match offset_ms {
        0 => "from",
        ..0 => "behind",
        _ => "ahead of",
    };
    format!("{} {side}", seconds(offset_ms.unsigned_abs()))
}

/// `0.250 s`.
pub fn seconds(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

/// What to tell the operator when an instance is further from the store's clock than
/// [`allowed_ms`]; `None` within it.
pub fn warning(offset_ms: i64, policy: &PollPolicy) -> Option<String> {
    let allowed = allowed_ms(policy);
    (offset_ms.unsigned_abs() > allowed).then(|| {
        let why = match policy.slow_down {
            SlowDownPolicy::Enforce => "(half of device.poll_tolerance_ms), or a device whose polls reach them in turn is told slow_down when on time",
            SlowDownPolicy::Off => "(slow_down is off), or codes and tokens expire that much apart",
        };
        format!(
            "this instance's clock is {} the shared store's: instances on one store must keep within {} of it {why}; keep the clocks in sync (NTP)",
            describe(offset_ms),
            seconds(allowed)
        )
    })
}

/// The running instance's watch on its clock: says when the offset goes past what is
/// allowed, and when it is well back within (three quarters of the bound: an offset
/// that hovers at the bound is not said every minute), once each.
#[derive(Debug, Default)]
pub struct Watch {
    over: bool,
}

/// What [`Watch::observe`] has to say.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// The clock went further from the store's than allowed: the warning.
    Over(String),
    /// It was over, and is back within: how far it is now.
    Within(String),
}

impl Watch {
    /// Takes in one measured offset.
    pub fn observe(&mut self, offset_ms: i64, policy: &PollPolicy) -> Option<Change> {
        if self.over {
            let back = offset_ms.unsigned_abs() <= allowed_ms(policy) / 4 * 3;
            self.over = !back;
            return back.then(|| Change::Within(describe(offset_ms)));
        }
        let warning = warning(offset_ms, policy)?;
        self.over = true;
        Some(Change::Over(warning))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_offset_is_taken_at_the_round_trip_s_midpoint() {
        // Asked at 1,000, answered at 1,010: the store's 995 is read at 1,005.
        assert_eq!(offset(1_000, 995, 1_010), 10);
        assert_eq!(offset(1_000, 1_015, 1_010), -10);
        assert_eq!(offset(1_000, 1_005, 1_010), 0);
        // A clock stepped back between the two readings is not a negative round trip.
        assert_eq!(offset(1_000, 1_000, 900), 0);
        // Nothing overflows at the ends.
        assert_eq!(offset(u64::MAX, 0, u64::MAX), i64::MAX);
        assert_eq!(offset(0, u64::MAX, 0), -i64::MAX);
    }

    fn paced(tolerance_ms: Millis) -> PollPolicy {
        PollPolicy {
            slow_down: SlowDownPolicy::Enforce,
            tolerance_ms,
            interval_ms: 5_000,
        }
    }

    #[test]
    fn past_half_the_tolerance_is_a_warning_naming_the_offset_and_the_bound() {
        let p = paced(500);
        assert_eq!(warning(250, &p), None);
        assert_eq!(warning(-250, &p), None);
        let w = warning(2_400, &p).unwrap();
        assert!(w.starts_with("this instance's clock is 2.400 s ahead of the shared store's"));
        assert!(
            w.contains("within 0.250 s of it (half of device.poll_tolerance_ms), or a device"),
            "{w}"
        );
        assert!(warning(-251, &p)
            .unwrap()
            .contains("0.251 s behind the shared"));
        // No tolerance: the offset's own error is never a warning.
        assert_eq!(allowed_ms(&paced(0)), 50);
        assert_eq!(warning(1, &paced(0)), None);
        assert!(warning(51, &paced(0)).is_some());
        // No pacing: only expiry, a second apart.
        let off = PollPolicy {
            slow_down: SlowDownPolicy::Off,
            ..paced(0)
        };
        assert_eq!(warning(1_000, &off), None);
        let w = warning(-1_001, &off).unwrap();
        assert!(
            w.contains("within 1.000 s of it (slow_down is off), or codes and tokens expire"),
            "{w}"
        );
        assert!(!w.contains("told slow_down"), "{w}");
    }

    #[test]
    fn the_watch_speaks_once_when_over_and_once_when_well_back() {
        let p = paced(500);
        let mut watch = Watch::default();
        assert_eq!(watch.observe(10, &p), None);
        assert!(
            matches!(watch.observe(-900, &p), Some(Change::Over(w)) if w.contains("0.900 s behind"))
        );
        assert_eq!(watch.observe(-1_900, &p), None);
        // Back under the bound, but not by a quarter of it: still over.
        assert_eq!(watch.observe(240, &p), None);
        assert_eq!(
            watch.observe(3, &p),
            Some(Change::Within("0.003 s ahead of".into()))
        );
        assert_eq!(watch.observe(3, &p), None);
        assert_eq!(describe(0), "0.000 s from");
        assert!(matches!(watch.observe(600, &p), Some(Change::Over(_))));
    }
}
