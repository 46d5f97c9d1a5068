//! The token endpoint in process: `App::handle` on a device access token request
//! (RFC 8628 §3.4), from the `Request` hyper would hand over to the `Response` it
//! would write. Everything our code does per poll is inside; sockets and HTTP/1
//! parsing are not (that is what `ceiling.sh` adds).
//!
//! - `http/token_poll`: a pending code, answered `authorization_pending`.
//! - `http/token_poll_miss`: a well-formed code the server never issued, `invalid_grant`.
//! - `http/ceiling`: the same request through what the `ceiling` binary does (read the
//!   body, answer the same bytes): the floor, so `token_poll - ceiling` is our own work.
//! - `http/device_authorization`: a device authorization request (RFC 8628 §3.1), a new
//!   session and its JSON answer; `http/device_authorization_ceiling`: the ceiling's
//!   answer of the same shape and size.

use std::hint::black_box;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use deviceflow_benches::{
    demo_app, error_of, form_post, issue_device_code, poll_body, poll_request, CeilingAnswer,
    DEMO_CLIENT_ID,
};
use deviceflow_server::http::paths;
use deviceflow_server::protocol::device_code::{DeviceCode, Secret};
use deviceflow_server::protocol::user_code::UserCode;
use deviceflow_server::{App, NO_PEER};
use deviceflow_wire::ErrorCode;
use hyper::StatusCode;
use tokio::runtime::Runtime;

/// The answer to a pending poll: 400 `authorization_pending`.
const PENDING: (StatusCode, Option<ErrorCode>) = (
    StatusCode::BAD_REQUEST,
    Some(ErrorCode::AuthorizationPending),
);

/// Polls `body` `iters` times on `rt`, inside one `block_on`, and returns the time.
fn polls(rt: &Runtime, app: &App, body: &Bytes, iters: u64) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            black_box(app.handle(poll_request(body.clone()), NO_PEER).await);
        }
        start.elapsed()
    })
}

fn token_poll(c: &mut Criterion) {
    // Current-thread, with the timer: `App::handle` bounds the body read in time.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let app = demo_app();
    let device_code = rt.block_on(issue_device_code(&app));
    let pending = poll_body(&device_code);
    let unknown = loop {
        let code = DeviceCode {
            user_code: UserCode::generate(),
            secret: Secret::generate(),
        };
        if app.store.sessions.lookup(code.user_code).is_none() {
            break poll_body(&code.encode());
        }
    };
    let answer = |body: &Bytes| {
        rt.block_on(async { error_of(app.handle(poll_request(body.clone()), NO_PEER).await).await })
    };
    assert_eq!(
        answer(&pending),
        PENDING,
        "http/token_poll must measure an authorization_pending answer"
    );
    assert_eq!(
        answer(&unknown),
        (StatusCode::BAD_REQUEST, Some(ErrorCode::InvalidGrant)),
        "http/token_poll_miss must measure an invalid_grant answer"
    );
    let ceiling = rt.block_on(CeilingAnswer::from_ours());
    assert_eq!(
        rt.block_on(async { error_of(ceiling.answer(poll_request(pending.clone())).await).await }),
        PENDING,
        "http/ceiling must answer what token_poll answers"
    );

    let mut g = c.benchmark_group("http");
    g.bench_function("token_poll", |b| {
        b.iter_custom(|iters| polls(&rt, &app, &pending, iters))
    });
    g.bench_function("token_poll_miss", |b| {
        b.iter_custom(|iters| polls(&rt, &app, &unknown, iters))
    });
    g.bench_function("ceiling", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(ceiling.answer(poll_request(pending.clone())).await);
                }
                start.elapsed()
            })
        })
    });
    g.finish();
    // Still pending after every poll above: the loop measured one path only.
    assert_eq!(answer(&pending), PENDING);
}

/// Sessions issued before the bench starts over on a fresh app, so that the map's
/// growth is part of what is measured but memory stays bounded. Below the demo's
/// `max_sessions` (2,000,000 too) by a sample's worth: at the cap the app answers 503,
/// which a plain `cargo bench` had timed for three quarters of its iterations.
const ISSUE_LIMIT: usize = 2_000_000;

fn device_authorization(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let body = Bytes::from(format!("client_id={DEMO_CLIENT_ID}&scope=openid"));
    let issue = || form_post(paths::DEVICE_AUTHORIZATION, body.clone());
    let mut app = demo_app();
    assert_eq!(
        rt.block_on(async { app.handle(issue(), NO_PEER).await.status() }),
        StatusCode::OK,
        "http/device_authorization must measure issued codes"
    );
    let ceiling = rt.block_on(CeilingAnswer::issuance_from_ours());
    let mut g = c.benchmark_group("http");
    g.bench_function("device_authorization", |b| {
        b.iter_custom(|iters| {
            let room = ISSUE_LIMIT.min(app.settings.max_sessions);
            let iters_here = usize::try_from(iters).unwrap_or(usize::MAX);
            if app.store.sessions.len().saturating_add(iters_here) > room {
                app = demo_app();
            }
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    let reply = app.handle(issue(), NO_PEER).await;
                    // Every iteration an issued code, never a refusal.
                    assert_eq!(reply.status(), StatusCode::OK, "a refusal was timed");
                    black_box(reply);
                }
                start.elapsed()
            })
        })
    });
    g.bench_function("device_authorization_ceiling", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let start = Instant::now();
                for _ in 0..iters {
                    black_box(ceiling.answer(issue()).await);
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_secs(1));
    targets = token_poll, device_authorization
}
criterion_main!(benches);
