//! The session store alone: one poll (`store/poll_hit`, `store/poll_miss`), a fleet's
//! polls (`store/poll_fleet`) and one device authorization (`device_authorization/issue`,
//! which is `Sessions::create` of the in-memory store).
//!
//! The store is filled with [`LIVE`] other sessions first, so the map has the size and
//! shard layout of a busy server rather than one entry in a cache line. One code polled
//! again and again stays in the cache, though; `store/poll_fleet` polls [`FLEET`]
//! sessions in turn, as a fleet's devices do, so each poll reads memory the last
//! million polls did not: the cost a real server pays.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use deviceflow_server::protocol::device_code::{DeviceCode, Secret};
use deviceflow_server::protocol::ids::ClientId;
use deviceflow_server::protocol::scope::ScopeSet;
use deviceflow_server::protocol::session::{PollOutcome, PollPolicy, SlowDownPolicy};
use deviceflow_server::protocol::user_code::UserCode;
use deviceflow_server::storage::memory::Sessions;

/// Sessions already held when the measured one is created or polled.
const LIVE: usize = 100_000;
/// Sessions `store/poll_fleet` polls in turn.
const FLEET: usize = 1_000_000;
/// `device_authorization/issue` starts a sample on a fresh store once this many
/// sessions are held, so memory stays bounded over criterion's many samples.
const ISSUE_LIMIT: usize = 2_000_000;
const EXPIRES_IN_MS: u64 = 600_000;
const RETENTION_MS: u64 = 300_000;
const CLIENT: ClientId = ClientId(0);
const SCOPE: ScopeSet = ScopeSet(1);
const T0: u64 = 1_700_000_000_000;

/// `slow_down` off: a code polled back to back stays pending, and every iteration
/// takes the same path through the state machine.
const POLICY: PollPolicy = PollPolicy {
    slow_down: SlowDownPolicy::Off,
    tolerance_ms: 500,
    interval_ms: 5_000,
};

fn filled_store(live: usize) -> Sessions {
    // No cap: criterion's warm-up may ask for more iterations in one go than any cap.
    let store = Sessions::new(usize::MAX, RETENTION_MS);
    for _ in 0..live {
        create(&store);
    }
    store
}

/// A pending session in `store`, which has no cap.
fn create(store: &Sessions) -> DeviceCode {
    store
        .create(CLIENT, SCOPE, T0, EXPIRES_IN_MS, &POLICY)
        .expect("the store has no cap")
}

fn poll(c: &mut Criterion) {
    let store = filled_store(LIVE);
    let code = create(&store);
    let now = T0 + 10_000;
    assert_eq!(
        store.poll(&code, CLIENT, now, &POLICY, || 1),
        PollOutcome::Pending,
        "store/poll_hit must measure an authorization_pending poll"
    );
    let unknown = loop {
        let candidate = DeviceCode {
            user_code: UserCode::generate(),
            secret: Secret::generate(),
        };
        if store.lookup(candidate.user_code).is_none() {
            break candidate;
        }
    };
    assert_eq!(
        store.poll(&unknown, CLIENT, now, &POLICY, || 1),
        PollOutcome::Invalid,
        "store/poll_miss must measure an unknown code"
    );

    let mut g = c.benchmark_group("store");
    g.bench_function("poll_hit", |b| {
        b.iter(|| store.poll(black_box(&code), CLIENT, now, &POLICY, || 1))
    });
    g.bench_function("poll_miss", |b| {
        b.iter(|| store.poll(black_box(&unknown), CLIENT, now, &POLICY, || 1))
    });
    g.finish();
    // Still pending after every poll above: the loop measured one path only.
    assert_eq!(
        store.poll(&code, CLIENT, now, &POLICY, || 1),
        PollOutcome::Pending
    );
    drop(store);

    // A fleet: every code in turn, so that each poll finds its session out of cache.
    let store = filled_store(0);
    let fleet: Vec<DeviceCode> = (0..FLEET).map(|_| create(&store)).collect();
    let all_pending = || {
        fleet
            .iter()
            .all(|code| store.poll(code, CLIENT, now, &POLICY, || 1) == PollOutcome::Pending)
    };
    // Before timing, as every bench checks, and after: every poll was of one path.
    assert!(
        all_pending(),
        "store/poll_fleet must measure authorization_pending polls"
    );
    let mut next = fleet.iter().cycle();
    let mut g = c.benchmark_group("store");
    g.bench_function("poll_fleet", |b| {
        b.iter(|| {
            let code = next.next().expect("the fleet is not empty");
            store.poll(black_box(code), CLIENT, now, &POLICY, || 1)
        })
    });
    g.finish();
    assert!(
        all_pending(),
        "store/poll_fleet must measure authorization_pending polls"
    );
}

fn issue(c: &mut Criterion) {
    let mut g = c.benchmark_group("device_authorization");
    let mut store = filled_store(LIVE);
    let probe = create(&store);
    assert_eq!(
        store.poll(&probe, CLIENT, T0, &POLICY, || 1),
        PollOutcome::Pending,
        "device_authorization/issue must create pending sessions"
    );
    g.bench_function("issue", |b| {
        b.iter_custom(|iters| {
            if store.len() > ISSUE_LIMIT {
                // Untimed: drop the full store and refill a fresh one.
                store = filled_store(LIVE);
            }
            let start = Instant::now();
            for _ in 0..iters {
                black_box(create(&store));
            }
            start.elapsed()
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = poll, issue
}
criterion_main!(benches);
