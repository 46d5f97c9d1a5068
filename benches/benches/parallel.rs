//! The token endpoint in process from several threads at once: `App::handle` on
//! device access token requests (RFC 8628 §3.4), each thread polling pending codes of
//! its own, so that what the threads share is the server's state and nothing else.
//! Without the network, what this shows is contention: cache lines that every core
//! writes (counters, reference counts, locks) make the time per poll grow with the
//! threads, where perfectly independent work would keep it flat.
//!
//! - `parallel/token_poll/N`: N threads; the time is wall time per poll of one thread,
//!   so it equals `http/token_poll` at N = 1 and stays there when polls scale.
//! - `parallel/device_authorization/N`: the same for issuing codes.

use std::hint::black_box;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use deviceflow_benches::{
    demo_app, error_of, form_post, issue_device_code, poll_body, poll_request, DEMO_CLIENT_ID,
};
use deviceflow_server::http::paths;
use deviceflow_server::{App, NO_PEER};
use deviceflow_wire::ErrorCode;

/// Pending codes each thread polls in turn (distinct sessions, distinct shards).
const CODES_PER_THREAD: usize = 64;

/// Runs `work(thread, iters)` on `threads` threads started together and returns the
/// wall time until the last one finished.
fn on_threads(
    threads: usize,
    iters: u64,
    work: impl Fn(usize, u64) + Send + Sync + 'static,
) -> Duration {
    let work = Arc::new(work);
    let start = Arc::new(Barrier::new(threads + 1));
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let (work, start) = (Arc::clone(&work), Arc::clone(&start));
            std::thread::spawn(move || {
                start.wait();
                work(t, iters);
            })
        })
        .collect();
    start.wait();
    let began = Instant::now();
    for h in handles {
        h.join().expect("a bench thread");
    }
    began.elapsed()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

fn parallel(c: &mut Criterion) {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let mut counts = vec![1, 2, 4, 8, 16];
    counts.retain(|&n| n <= cores.max(2));
    let app: &'static App = Box::leak(Box::new(demo_app()));
    let rt = runtime();
    let bodies: Arc<Vec<Vec<Bytes>>> = Arc::new(
        (0..*counts.last().unwrap_or(&1))
            .map(|_| {
                (0..CODES_PER_THREAD)
                    .map(|_| poll_body(&rt.block_on(issue_device_code(app))))
                    .collect()
            })
            .collect(),
    );
    let pending = rt.block_on(async {
        error_of(
            app.handle(poll_request(bodies[0][0].clone()), NO_PEER)
                .await,
        )
        .await
    });
    assert_eq!(
        pending.1,
        Some(ErrorCode::AuthorizationPending),
        "parallel/token_poll must measure authorization_pending answers"
    );

    let mut g = c.benchmark_group("parallel");
    for &threads in &counts {
        let bodies = Arc::clone(&bodies);
        g.bench_with_input(
            BenchmarkId::new("token_poll", threads),
            &threads,
            |b, &n| {
                b.iter_custom(|iters| {
                    let bodies = Arc::clone(&bodies);
                    on_threads(n, iters, move |t, iters| {
                        let rt = runtime();
                        let mine = &bodies[t];
                        rt.block_on(async {
                            for i in 0..iters as usize {
                                let body = mine[i % CODES_PER_THREAD].clone();
                                black_box(app.handle(poll_request(body), NO_PEER).await);
                            }
                        });
                    })
                })
            },
        );
        let issue = Bytes::from(format!("client_id={DEMO_CLIENT_ID}&scope=openid"));
        g.bench_with_input(
            BenchmarkId::new("device_authorization", threads),
            &threads,
            |b, &n| {
                b.iter_custom(|iters| {
                    // A fresh app per sample, so the session cap is never what is measured.
                    let fresh = Arc::new(demo_app());
                    let issue = issue.clone();
                    on_threads(n, iters, move |_, iters| {
                        let rt = runtime();
                        rt.block_on(async {
                            for _ in 0..iters {
                                let req = form_post(paths::DEVICE_AUTHORIZATION, issue.clone());
                                let reply = fresh.handle(req, NO_PEER).await;
                                // Every iteration an issued code, never a refusal
                                // (a debug assertion does nothing in a bench build).
                                assert_eq!(reply.status(), 200, "a refusal was timed");
                                black_box(reply);
                            }
                        });
                    })
                })
            },
        );
    }
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = parallel
}
criterion_main!(benches);
