//! A proptest state-machine test: random sequences of authorize / poll / approve /
//! deny / advance-clock / sweep, run in-process against the server's HTTP service and
//! against a small model of RFC 8628 written here from the RFC, not from the server.
//! Every answer must match the model; in particular no token after expiry or denial,
//! exactly one token per approval, and the slow_down arithmetic of RFC 8628 §3.5.
//!
//! It runs against both store backends: the in-memory store, and Redis (a real
//! `redis-server` of the test's own, emptied before each case), which must give the
//! same answers. They differ in one documented way: the memory store forgets a session
//! when its sweep runs after the retention, Redis as soon as the retention is over.

use std::sync::OnceLock;

use bytes::Bytes;
use deviceflow_server::{App, Clock, FileConfig, RedisStore, Settings, Store};
use deviceflow_testkit::RedisServer;
use http_body_util::{BodyExt, Full};
use hyper::Request;
use proptest::prelude::*;

use crate::common::*;

const TOLERANCE: u64 = 500;
const RETENTION: u64 = 30_000;
const CLIENTS: [&str; 2] = ["tv", "tv-b"];

#[derive(Debug, Clone)]
enum Op {
    Authorize {
        client: usize,
    },
    Poll {
        session: prop::sample::Index,
        client: usize,
    },
    Approve {
        session: prop::sample::Index,
    },
    Deny {
        session: prop::sample::Index,
    },
    Advance {
        ms: u64,
    },
    Sweep,
}

fn op() -> impl Strategy<Value = Op> {
    let ms = prop::sample::select(vec![
        1u64, 100, 499, 500, 1_000, 2_500, 4_499, 4_500, 5_000, 9_600, 15_000, 30_000, 61_000,
    ]);
    prop_oneof![
        2 => (0..2usize).prop_map(|client| Op::Authorize { client }),
        6 => (any::<prop::sample::Index>(), prop::sample::select(vec![0usize, 0, 0, 1])).prop_map(|(session, client)| Op::Poll { session, client }),
        2 => any::<prop::sample::Index>().prop_map(|session| Op::Approve { session }),
        1 => any::<prop::sample::Index>().prop_map(|session| Op::Deny { session }),
        3 => ms.prop_map(|ms| Op::Advance { ms }),
        1 => Just(Op::Sweep),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Pending,
    Approved,
    Denied,
    Redeemed,
}

/// The model of one device authorization.
#[derive(Debug)]
struct Model {
    device_code: String,
    user_code: String,
    client: usize,
    expires_at: u64,
    status: Status,
    /// RFC 8628 §3.5: I + 5·k.
    interval: u64,
    last_accepted: Option<u64>,
    removed: bool,
    tokens: u32,
}

impl Model {
    /// What RFC 8628 §3.5 (with this server's documented policy: pace measured from the
    /// last accepted poll with a tolerance, and only while pending) says a poll gets.
    fn poll(&mut self, client: usize, now: u64) -> &'static str {
        if self.removed || client != self.client || self.status == Status::Redeemed {
            return "invalid_grant";
        }
        if now >= self.expires_at {
            return "expired_token";
        }
        match self.status {
            Status::Approved => {
                self.status = Status::Redeemed;
                self.tokens += 1;
                "token"
            }
            Status::Denied => "access_denied",
            _ => match self.last_accepted {
                Some(last) if now + TOLERANCE < last + self.interval => {
                    self.interval += 5_000;
                    "slow_down"
                }
                _ => {
                    self.last_accepted = Some(now);
                    "authorization_pending"
                }
            },
        }
    }

    fn decide(&mut self, approve: bool, now: u64) -> u16 {
        if self.removed {
            404
        } else if now >= self.expires_at {
            410
        } else if self.status != Status::Pending {
            409
        } else {
            self.status = if approve {
                Status::Approved
            } else {
                Status::Denied
            };
            200
        }
    }
}

/// Which store a case runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Backend {
    Memory,
    Redis,
}

/// One Redis for every case of the process, started on first use.
fn redis() -> &'static RedisServer {
    static REDIS: OnceLock<RedisServer> = OnceLock::new();
    REDIS.get_or_init(|| RedisServer::start().expect("starting redis-server"))
}

async fn call<S: Store>(
    app: &App<S>,
    path: &str,
    body: String,
    admin: bool,
) -> (u16, serde_json::Value) {
    let mut req = Request::post(path)
        .header("host", "test")
        .header("content-type", "application/x-www-form-urlencoded");
    if admin {
        req = req.header("authorization", format!("Bearer {ADMIN_TOKEN}"));
    }
    let resp = app
        .handle(
            req.body(Full::new(Bytes::from(body))).unwrap(),
            deviceflow_server::NO_PEER,
        )
        .await;
    let status = resp.status().as_u16();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

fn run(ops: Vec<Op>, backend: Backend) -> Result<(), TestCaseError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let settings =
            Settings::from_file(FileConfig::parse(&test_config(), "test").unwrap()).unwrap();
        let clock = Clock::manual(START_MS);
        match backend {
            Backend::Memory => {
                check(
                    App::new(settings, "http://test".into(), clock),
                    ops,
                    backend,
                )
                .await
            }
            Backend::Redis => {
                let redis = redis();
                redis.command(&["FLUSHALL"]).expect("FLUSHALL");
                let store = RedisStore::connect(&redis.url(), &settings.store_settings())
                    .await
                    .expect("connecting to the test's Redis");
                let app = App::with_store(settings, "http://test".into(), clock, store);
                check(app, ops, backend).await
            }
        }
    })
}

async fn check<S: Store>(app: App<S>, ops: Vec<Op>, backend: Backend) -> Result<(), TestCaseError> {
    // The memory store forgets at its sweep; Redis when the retention is over.
    let sweeps = backend == Backend::Memory;
    let mut sessions: Vec<Model> = Vec::new();
    for op in ops {
        let now = app.clock.now();
        if !sweeps {
            for m in &mut sessions {
                if m.expires_at + RETENTION <= now {
                    m.removed = true;
                }
            }
        }
        match op {
            Op::Authorize { client } => {
                let (status, v) =
                    call(&app, DA, format!("client_id={}", CLIENTS[client]), false).await;
                prop_assert_eq!(status, 200);
                sessions.push(Model {
                    device_code: v["device_code"].as_str().unwrap().to_owned(),
                    user_code: v["user_code"].as_str().unwrap().to_owned(),
                    client,
                    expires_at: now + EXPIRES_IN * 1000,
                    status: Status::Pending,
                    interval: INTERVAL * 1000,
                    last_accepted: None,
                    removed: false,
                    tokens: 0,
                });
            }
            Op::Poll { session, client } if !sessions.is_empty() => {
                let i = session.index(sessions.len());
                poll_as_modelled(&app, &mut sessions[i], client, now).await?;
            }
            Op::Approve { session } | Op::Deny { session } if !sessions.is_empty() => {
                let i = session.index(sessions.len());
                let approve = matches!(op, Op::Approve { .. });
                decide_as_modelled(&app, &mut sessions[i], approve, now).await?;
            }
            Op::Advance { ms } => app.clock.advance(ms),
            Op::Sweep => {
                app.sweep(usize::MAX);
                for m in &mut sessions {
                    // Removed once the retention after expiry is over; the sweep
                    // works to the whole second, never early.
                    if sweeps && (m.expires_at + RETENTION).div_ceil(1000) * 1000 <= now {
                        m.removed = true;
                    }
                }
                let live = sessions.iter().filter(|m| !m.removed).count();
                let held = app.store.census(now).await.unwrap().sessions;
                prop_assert_eq!(held, live);
            }
            _ => {}
        }
    }
    Ok(())
}

/// One poll of `m`'s code by `client`, answered as the model says.
async fn poll_as_modelled<S: Store>(
    app: &App<S>,
    m: &mut Model,
    client: usize,
    now: u64,
) -> Result<(), TestCaseError> {
    let body = poll_body(CLIENTS[client], &m.device_code);
    let (status, v) = call(app, TOKEN, body, false).await;
    let got = if status == 200 {
        "token"
    } else {
        v["error"].as_str().unwrap_or("?")
    };
    let want = m.poll(client, now);
    prop_assert_eq!(got, want, "poll at +{}ms: {:?}", now - START_MS, m);
    prop_assert_eq!(status, if want == "token" { 200 } else { 400 });
    // Exactly one token per approval.
    prop_assert!(m.tokens <= 1);
    Ok(())
}

/// The person approves or denies `m`'s code through the admin endpoint, answered as
/// the model says.
async fn decide_as_modelled<S: Store>(
    app: &App<S>,
    m: &mut Model,
    approve: bool,
    now: u64,
) -> Result<(), TestCaseError> {
    let action = if approve { "approve" } else { "deny" };
    let body = format!("user_code={}&action={action}&user=alice", m.user_code);
    let (status, _) = call(app, ADMIN, body, true).await;
    prop_assert_eq!(
        status,
        m.decide(approve, now),
        "{} at +{}ms: {:?}",
        action,
        now - START_MS,
        m
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn server_never_diverges_from_the_rfc_8628_model(ops in prop::collection::vec(op(), 1..80)) {
        run(ops, Backend::Memory)?;
    }

    #[test]
    fn server_on_redis_never_diverges_from_the_rfc_8628_model(ops in prop::collection::vec(op(), 1..80)) {
        run(ops, Backend::Redis)?;
    }
}
