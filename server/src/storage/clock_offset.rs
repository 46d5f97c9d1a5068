//! Whether this instance's clock agrees with the shared store's.
//!
//! Instances on one store read times that other instances wrote: a session's last
//! accepted poll, its expiry, a token's. A device behind a load balancer polls one
//! instance, then another. If the second one's clock is behind the first's by more
//! than `device.poll_tolerance_ms`, a poll on time reads as early there, and the device
//! is told `slow_down` (RFC 8628 §3.5) when it did nothing wrong; codes and tokens also
//! expire at different times on different instances.
//!
//! Each instance compares its clock with the store's (Redis `TIME`) at start and once
//! a minute, logs when it is more than half the tolerance apart, and shows the offset
//! in `/metrics` (`deviceflow_store_clock_offset_seconds`). Two instances each within
//! half the tolerance of the store are within the tolerance of each other.

use crate::clock::{Clock, Millis};
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

/// How far from the store's clock an instance may be: half `poll_tolerance_ms`.
pub fn allowed_ms(poll_tolerance_ms: Millis) -> Millis {
    poll_tolerance_ms / 2
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

fn seconds(ms: u64) -> String {
    format!("{}.{:03} s", ms / 1000, ms % 1000)
}

/// What to tell the operator when an instance is further from the store's clock than
/// [`allowed_ms`]; `None` within it.
pub fn warning(offset_ms: i64, poll_tolerance_ms: Millis) -> Option<String> {
    let allowed = allowed_ms(poll_tolerance_ms);
    (offset_ms.unsigned_abs() > allowed).then(|| {
        format!(
            "this instance's clock is {} the shared store's: instances on one store must keep within {} of it (half of device.poll_tolerance_ms), or a device whose polls reach them in turn is told slow_down when on time and codes expire at different times; keep the clocks in sync (NTP)",
            describe(offset_ms),
            seconds(allowed)
        )
    })
}

/// The running instance's watch on its clock: says when the offset goes past what is
/// allowed, and when it is back within, once each.
#[derive(Debug, Default)]
pub struct Watch {
    over: bool,
}

/// What [`Watch::observe`] has to say.
#[derive(Debug, PartialEq, Eq)]
pub enum Change {
    /// The clock went further from the store's than allowed: the warning.
    Over(String),
    /// It was over, and is within again: how far it is now.
    Within(String),
}

impl Watch {
    /// Takes in one measured offset.
    pub fn observe(&mut self, offset_ms: i64, poll_tolerance_ms: Millis) -> Option<Change> {
        match (warning(offset_ms, poll_tolerance_ms), self.over) {
            (Some(warning), false) => {
                self.over = true;
                Some(Change::Over(warning))
            }
            (None, true) => {
                self.over = false;
                Some(Change::Within(describe(offset_ms)))
            }
            _ => None,
        }
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

    #[test]
    fn past_half_the_tolerance_is_a_warning_naming_the_offset_and_the_bound() {
        assert_eq!(warning(250, 500), None);
        assert_eq!(warning(-250, 500), None);
        let w = warning(2_400, 500).unwrap();
        assert!(w.starts_with("this instance's clock is 2.400 s ahead of the shared store's"));
        assert!(w.contains("within 0.250 s of it"), "{w}");
        assert!(warning(-251, 500)
            .unwrap()
            .contains("0.251 s behind the shared"));
        // No tolerance: any offset past a millisecond's rounding is one.
        assert!(warning(1, 0).is_some());
    }

    #[test]
    fn the_watch_speaks_once_when_over_and_once_when_back() {
        let mut watch = Watch::default();
        assert_eq!(watch.observe(10, 500), None);
        assert!(
            matches!(watch.observe(-900, 500), Some(Change::Over(w)) if w.contains("0.900 s behind"))
        );
        assert_eq!(watch.observe(-1_900, 500), None);
        assert_eq!(
            watch.observe(3, 500),
            Some(Change::Within("0.003 s ahead of".into()))
        );
        assert_eq!(watch.observe(3, 500), None);
        assert_eq!(describe(0), "0.000 s from");
        assert!(matches!(watch.observe(600, 500), Some(Change::Over(_))));
    }
}
