//! Per-thread shards: state that every request writes (counters, expiry buckets) is
//! kept once per shard, each thread writing its own, so that no cache line is written
//! by every core.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Shards of per-thread state: enough that the worker threads of a large machine
/// rarely share one.
pub(crate) const COUNT: usize = 32;

/// The shard this thread writes into: threads are dealt shards round robin on their
/// first use.
pub(crate) fn home() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static HOME: usize = NEXT.fetch_add(1, Ordering::Relaxed) % COUNT;
    }
    HOME.with(|h| *h)
}

/// A value alone on its cache lines (128 bytes: two lines, since processors fetch
/// adjacent lines in pairs), so that two cores writing neighbouring shards do not
/// contend for one line.
#[derive(Debug, Default)]
#[repr(align(128))]
pub(crate) struct Padded<T>(pub(crate) T);
