//! The device authorization sessions' map: sharded like every map here (one lock per
//! shard, `MAP_SHARDS` of them), but flat inside a shard: open addressing with linear
//! probing over slots that hold the key and the value together.
//!
//! Why not dashmap, as the other maps: its shards are SwissTables (hashbrown), which
//! read a control-byte array before the slot, two places in memory. On a poll of a
//! large fleet both miss the cache and the TLB: the lookup was the largest part of what
//! a poll cost beyond the ceiling's constant answer on one core, and the control bytes
//! a third of it (perf, `reports/benches/cores.md`, "Seventh"). Here the key is
//! compared where the session lies: past its shard's lock, a poll reads its probe's
//! slots (one, mostly) and no control bytes.
//!
//! Keys are `u64` below [`EMPTY`] (packed user codes are below 20^8), values small and
//! `Copy`. A shard grows by doubling, under its write lock, at five eighths full, and a
//! removal shifts the slots after it back (no tombstones), so every key stays
//! reachable from its home slot without crossing an empty one.

use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::{PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::shards::{Padded, MAP_SHARDS};

/// The key no entry has: an empty slot's.
const EMPTY: u64 = u64::MAX;

/// Slots in a shard's first table.
const MIN_SLOTS: usize = 16;

/// A sharded map from `u64` keys (below [`EMPTY`]) to small `Copy` values.
pub(crate) struct Table<V> {
    hasher: ahash::RandomState,
    shards: Box<[Padded<Cell<V>>]>,
    /// `64 - log2(shards)`: a hash's top bits choose its shard.
    shard_shift: u32,
}

/// A shard, and where its slots lie for [`Table::prefetch`], which takes no lock.
struct Cell<V> {
    shard: RwLock<Shard<V>>,
    /// The address of the shard's first slot, and its mask: written under the write
    /// lock when the shard grows, read without it. A stale pair only makes a prefetch
    /// ask for the wrong line, which the hint never faults on.
    slots_at: AtomicUsize,
    mask: AtomicUsize,
}

struct Shard<V> {
    /// A power of two long, or empty before the first insertion.
    slots: Box<[Slot<V>]>,
    len: usize,
}

/// `repr(C)`: the key first, where a probe reads it, and the value right after it.
#[derive(Clone, Copy)]
#[repr(C)]
struct Slot<V> {
    key: u64,
    /// `Some` exactly when `key` is not [`EMPTY`]; an `Option` so that empty slots
    /// need no made-up value.
    value: Option<V>,
}

impl<V> Slot<V> {
    const VACANT: Slot<V> = Slot {
        key: EMPTY,
        value: None,
    };
}

impl<V: Copy> Table<V> {
    /// An empty map of [`MAP_SHARDS`] shards.
    pub(crate) fn new() -> Table<V> {
        Table::with_shards(MAP_SHARDS, ahash::RandomState::new())
    }

    /// An empty map of `shards` shards, a power of two, hashing with `hasher` (tests
    /// use one shard, to make keys collide, and fixed seeds, to replay a failure).
    fn with_shards(shards: usize, hasher: ahash::RandomState) -> Table<V> {
        assert!(shards.is_power_of_two(), "shards must be a power of two");
        Table {
            hasher,
            shards: (0..shards)
                .map(|_| {
                    Padded(Cell {
                        shard: RwLock::new(Shard {
                            slots: Box::new([]),
                            len: 0,
                        }),
                        slots_at: AtomicUsize::new(0),
                        mask: AtomicUsize::new(0),
                    })
                })
                .collect(),
            // A shift of 64 (one shard) would overflow: `shard` special-cases it.
            shard_shift: 64 - shards.trailing_zeros(),
        }
    }

    fn hash(&self, key: u64) -> u64 {
        self.hasher.hash_one(key)
    }

    fn cell(&self, hash: u64) -> &Cell<V> {
        let index = hash.checked_shr(self.shard_shift).unwrap_or(0) as usize;
        &self.shards[index].0
    }

    fn shard(&self, hash: u64) -> &RwLock<Shard<V>> {
        &self.cell(hash).shard
    }

    /// Asks the CPU to bring `key`'s home slot into cache, taking no lock, so that a
    /// lookup a little later finds it there. A poll of a large fleet reads a session
    /// no poll touched for seconds: its slot misses every cache, and the miss was most
    /// of what a poll cost beyond the ceiling on one core (`reports/benches/cores.md`).
    /// The token endpoint asks before it authenticates the client, whose work then
    /// overlaps the fetch.
    pub(crate) fn prefetch(&self, key: u64) {
        prefetch_line(self.home_address(key));
    }

    /// The address of `key`'s home slot, from what its shard published when it last
    /// grew: no lock, so possibly stale while the shard grows.
    fn home_address(&self, key: u64) -> usize {
        let hash = self.hash(key);
        let cell = self.cell(hash);
        let at = hash as usize & cell.mask.load(Relaxed);
        cell.slots_at
            .load(Relaxed)
            .wrapping_add(at.wrapping_mul(std::mem::size_of::<Slot<V>>()))
    }

    fn write(&self, hash: u64) -> RwLockWriteGuard<'_, Shard<V>> {
        // Only the caller's closure can panic under the lock (the map's own steps do
        // not), leaving at worst its one value changed as far as it got: poison is
        // ignored, and the map stays usable.
        self.shard(hash)
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn read(&self, hash: u64) -> RwLockReadGuard<'_, Shard<V>> {
        self.shard(hash)
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Inserts `value` under `key` unless the key is taken; whether it was inserted.
    /// `key` must be below [`EMPTY`].
    pub(crate) fn insert_new(&self, key: u64, value: V) -> bool {
        debug_assert_ne!(key, EMPTY, "EMPTY is not a key");
        let hash = self.hash(key);
        let mut shard = self.write(hash);
        // The probe that finds the key absent ends at the slot it goes in.
        let mut at = match shard.probe(key, hash) {
            Some(Ok(_)) => return false,
            Some(Err(vacant)) => vacant,
            // No slots yet: the growth below makes them.
            None => 0,
        };
        // At most five eighths full, so that probes stay short.
        if (shard.len + 1) * 8 > shard.slots.len() * 5 {
            shard.grow(&self.hasher);
            at = shard.vacancy(hash);
            let cell = self.cell(hash);
            cell.slots_at.store(shard.slots.as_ptr().addr(), Relaxed);
            cell.mask.store(shard.mask(), Relaxed);
        }
        shard.slots[at] = Slot {
            key,
            value: Some(value),
        };
        shard.len += 1;
        true
    }

    /// Runs `f` on the value under `key`, under its shard's write lock.
    pub(crate) fn with_mut<R>(&self, key: u64, f: impl FnOnce(&mut V) -> R) -> Option<R> {
        let hash = self.hash(key);
        let mut shard = self.write(hash);
        let at = shard.find(key, hash)?;
        shard.slots[at].value.as_mut().map(f)
    }

    /// Runs `f` on the value under `key`, under its shard's read lock.
    pub(crate) fn with<R>(&self, key: u64, f: impl FnOnce(&V) -> R) -> Option<R> {
        let hash = self.hash(key);
        let shard = self.read(hash);
        let at = shard.find(key, hash)?;
        shard.slots[at].value.as_ref().map(f)
    }

    /// Removes the value under `key` if `remove` says so of it; the value removed.
    pub(crate) fn remove_if(&self, key: u64, remove: impl FnOnce(&V) -> bool) -> Option<V> {
        let hash = self.hash(key);
        let mut shard = self.write(hash);
        let at = shard.find(key, hash)?;
        let value = shard.slots[at].value?;
        if !remove(&value) {
            return None;
        }
        shard.remove_at(at, &self.hasher);
        Some(value)
    }
}

/// A hint to the CPU: fetch the cache line at address `at` into every cache level. It
/// never faults, on any address, and changes nothing the program sees.
///
/// The workspace's one `unsafe` (`unsafe_code = "deny"` in `Cargo.toml`, allowed here
/// alone): std documents `_mm_prefetch` as safe for any pointer, and it is `unsafe` to
/// call only for its `#[target_feature(enable = "sse")]`, which every x86_64 target
/// has. Measured: user CPU per fleet-shaped poll (1,000,000 codes, one core) 3.03 →
/// 2.73 µs, polls/s +9 % (`reports/benches/cores.md`, "Ninth").
#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
fn prefetch_line(at: usize) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: SSE is part of the x86_64 baseline, so the target feature holds; the
    // pointer is never dereferenced (a prefetch of any address is defined).
    unsafe { _mm_prefetch::<_MM_HINT_T0>(std::ptr::without_provenance(at)) };
}

#[cfg(not(target_arch = "x86_64"))]
fn prefetch_line(_at: usize) {}

impl<V: Copy> Shard<V> {
    fn mask(&self) -> usize {
        self.slots.len().wrapping_sub(1)
    }

    /// The slot holding `key`.
    fn find(&self, key: u64, hash: u64) -> Option<usize> {
        self.probe(key, hash)?.ok()
    }

    /// `key`'s probe: `Ok` with the slot holding it, or `Err` with the empty slot
    /// where the probe ended (the table is never full, so it meets one if the key is
    /// absent); `None` while the shard has no slots.
    fn probe(&self, key: u64, hash: u64) -> Option<Result<usize, usize>> {
        if self.slots.is_empty() {
            return None;
        }
        let mask = self.mask();
        let mut at = hash as usize & mask;
        loop {
            match self.slots[at].key {
                k if k == key => return Some(Ok(at)),
                EMPTY => return Some(Err(at)),
                _ => at = (at + 1) & mask,
            }
        }
    }

    /// The first empty slot of `hash`'s probe.
    fn vacancy(&self, hash: u64) -> usize {
        let mask = self.mask();
        let mut at = hash as usize & mask;
        while self.slots[at].key != EMPTY {
            at = (at + 1) & mask;
        }
        at
    }

    fn grow(&mut self, hasher: &ahash::RandomState) {
        let size = (self.slots.len() * 2).max(MIN_SLOTS);
        let old = std::mem::replace(&mut self.slots, vec![Slot::VACANT; size].into_boxed_slice());
        for slot in old.iter().filter(|s| s.key != EMPTY) {
            let at = self.vacancy(hasher.hash_one(slot.key));
            self.slots[at] = *slot;
        }
    }

    /// Empties slot `at`, then moves back each slot after it, up to the next empty
    /// one, whose home is not between the hole and itself: linear probing's deletion,
    /// which leaves no tombstone behind.
    fn remove_at(&mut self, at: usize, hasher: &ahash::RandomState) {
        let mask = self.mask();
        let mut hole = at;
        let mut next = (at + 1) & mask;
        while self.slots[next].key != EMPTY {
            let home = hasher.hash_one(self.slots[next].key) as usize & mask;
            // The slot may fill the hole if its probe passes through the hole: its
            // distance from home is at least the hole's distance to it.
            if next.wrapping_sub(home) & mask >= next.wrapping_sub(hole) & mask {
                self.slots[hole] = self.slots[next];
                hole = next;
            }
            next = (next + 1) & mask;
        }
        self.slots[hole] = Slot::VACANT;
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    impl<V: Copy> Table<V> {
        /// Every entry is in the shard its hash's top bits name and reachable from its
        /// home slot without crossing an empty one, and each shard's count is right.
        fn check(&self) {
            for (index, shard) in self.shards.iter().enumerate() {
                let shard = shard.0.shard.read().unwrap();
                let held = shard.slots.iter().filter(|s| s.key != EMPTY).count();
                assert_eq!(held, shard.len);
                for slot in shard.slots.iter().filter(|s| s.key != EMPTY) {
                    assert!(slot.value.is_some());
                    let hash = self.hash(slot.key);
                    // The shard its hash's top bits name.
                    assert_eq!(
                        hash.checked_shr(self.shard_shift).unwrap_or(0),
                        index as u64
                    );
                    assert!(shard.find(slot.key, hash).is_some(), "key lost");
                }
            }
        }
    }

    /// One shard, so that keys collide, hashed with fixed seeds, so that a failure
    /// replays.
    fn one_shard<V: Copy>() -> Table<V> {
        Table::with_shards(1, ahash::RandomState::with_seeds(1, 2, 3, 4))
    }

    #[test]
    fn keys_spread_over_the_shards_and_probes_stay_short() {
        let table = Table::new();
        for key in 0..100_000u64 {
            assert!(table.insert_new(key, ()));
        }
        table.check();
        // 100,000 keys in 256 shards: 391 a shard on average, a few dozen either side.
        for shard in table.shards.iter() {
            let shard = shard.0.shard.read().unwrap();
            assert!(
                (250..550).contains(&shard.len),
                "a shard holds {}",
                shard.len
            );
            // Each at most this far from its home slot (linear probing at under 5/8
            // full: a few slots, a few dozen at worst).
            let mask = shard.mask();
            for (at, slot) in shard
                .slots
                .iter()
                .enumerate()
                .filter(|(_, s)| s.key != EMPTY)
            {
                let home = table.hash(slot.key) as usize & mask;
                assert!(
                    at.wrapping_sub(home) & mask < 64,
                    "a probe of {}",
                    at.wrapping_sub(home) & mask
                );
            }
        }
    }

    #[test]
    fn inserts_finds_changes_and_removes() {
        let table = Table::new();
        assert!(table.insert_new(7, 70u32));
        assert!(!table.insert_new(7, 71), "a taken key is refused");
        assert_eq!(table.with(7, |v| *v), Some(70));
        assert_eq!(table.with_mut(7, |v| std::mem::replace(v, 72)), Some(70));
        assert_eq!(table.with(7, |v| *v), Some(72));
        assert_eq!(table.with(8, |v| *v), None);
        assert_eq!(table.remove_if(7, |v| *v == 0), None, "kept when told to");
        assert_eq!(table.remove_if(7, |_| true), Some(72));
        assert_eq!(table.with(7, |v| *v), None);
        assert_eq!(table.remove_if(7, |_| true), None);
        table.check();
    }

    #[test]
    fn a_shard_grows_and_keeps_every_key() {
        let table = one_shard();
        for key in 0..10_000u64 {
            assert!(table.insert_new(key, key * 3));
        }
        table.check();
        let shard = table.shards[0].0.shard.read().unwrap();
        // 10,000 at most five eighths full: 16,384 slots, 61 % full.
        assert_eq!(shard.slots.len(), 16_384);
        drop(shard);
        for key in 0..10_000u64 {
            assert_eq!(table.with(key, |v| *v), Some(key * 3));
        }
        assert_eq!(table.with(10_000, |v| *v), None);
    }

    #[test]
    fn removals_keep_the_rest_reachable() {
        let table = one_shard();
        for key in 0..1_000u64 {
            table.insert_new(key, key);
        }
        for key in (0..1_000u64).filter(|k| k % 3 != 0) {
            assert_eq!(table.remove_if(key, |_| true), Some(key));
        }
        table.check();
        for key in 0..1_000u64 {
            let expected = (key % 3 == 0).then_some(key);
            assert_eq!(table.with(key, |v| *v), expected, "key {key}");
        }
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64, u32),
        Change(u64, u32),
        Remove(u64),
        RemoveIfEven(u64),
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few keys, so that operations meet the same ones; one shard, so that they
        // collide, wrap around its end and shift back over each other.
        let key = 0..40u64;
        prop_oneof![
            (key.clone(), any::<u32>()).prop_map(|(k, v)| Op::Insert(k, v)),
            (key.clone(), any::<u32>()).prop_map(|(k, v)| Op::Change(k, v)),
            key.clone().prop_map(Op::Remove),
            key.prop_map(Op::RemoveIfEven),
        ]
    }

    #[test]
    fn a_prefetch_asks_for_the_home_slot_as_the_shard_grows() {
        let table = Table::with_shards(4, ahash::RandomState::with_seeds(1, 2, 3, 4));
        // No slots yet: a harmless address, never read.
        table.prefetch(7);
        for key in 0..5_000u64 {
            assert!(table.insert_new(key, key));
            // Every so often (the shards grow at 10, 20, 40, … entries), each key's
            // home slot as the lookup computes it, under the lock.
            if key % 97 == 0 || key == 4_999 {
                for k in 0..=key {
                    let hash = table.hash(k);
                    let shard = table.read(hash);
                    let home = &shard.slots[hash as usize & shard.mask()];
                    assert_eq!(
                        table.home_address(k),
                        std::ptr::from_ref(home).addr(),
                        "key {k}"
                    );
                }
            }
            table.prefetch(key);
        }
    }

    proptest! {
        /// The table answers as a `HashMap` does, after any sequence of operations.
        #[test]
        fn behaves_as_a_hash_map(ops in proptest::collection::vec(op(), 1..300)) {
            let table = one_shard();
            let mut model = HashMap::new();
            for op in ops {
                match op {
                    Op::Insert(k, v) => {
                        let fresh = !model.contains_key(&k);
                        if fresh {
                            model.insert(k, v);
                        }
                        prop_assert_eq!(table.insert_new(k, v), fresh);
                    }
                    Op::Change(k, v) => {
                        let old = model.get_mut(&k).map(|m| std::mem::replace(m, v));
                        prop_assert_eq!(table.with_mut(k, |m| std::mem::replace(m, v)), old);
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(table.remove_if(k, |_| true), model.remove(&k));
                    }
                    Op::RemoveIfEven(k) => {
                        let even = model.get(&k).is_some_and(|v| v % 2 == 0);
                        let expected = if even { model.remove(&k) } else { None };
                        prop_assert_eq!(table.remove_if(k, |v| v % 2 == 0), expected);
                    }
                }
            }
            table.check();
            for k in 0..40u64 {
                prop_assert_eq!(table.with(k, |v| *v), model.get(&k).copied());
            }
        }
    }
}
