//! A device code is redeemed exactly once, however many polls race (checklist TS-08,
//! TS-10).

use std::sync::{Arc, Barrier};

use bytes::Bytes;
use deviceflow_server::protocol::ids::ClientId;
use deviceflow_server::protocol::ids::UserId;
use deviceflow_server::protocol::scope::ScopeSet;
use deviceflow_server::protocol::session::{Decision, PollOutcome, PollPolicy, SlowDownPolicy};
use deviceflow_server::storage::memory::Sessions;
use http_body_util::{BodyExt, Full};

use crate::common::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_concurrent_polls_of_one_approved_code_yield_one_token() {
    let s = Arc::new(TestServer::start().await);
    let dc = Arc::new(s.approved("tv").await);
    let start = Arc::new(tokio::sync::Barrier::new(64));
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (s, dc, start) = (Arc::clone(&s), Arc::clone(&dc), Arc::clone(&start));
        tasks.push(tokio::spawn(async move {
            // Each task its own connection, so the polls really arrive together.
            let http = reqwest::Client::new();
            start.wait().await;
            let r = http
                .post(format!("{}{TOKEN}", s.base))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(poll_body("tv", &dc))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let body: serde_json::Value = r.json().await.unwrap();
            (status, body)
        }));
    }
    let mut tokens = 0;
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            200 => tokens += 1,
            400 => assert_eq!(body["error"], "invalid_grant", "{body}"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(tokens, 1);
}

#[test]
fn sixty_four_threads_racing_on_the_store_redeem_once() {
    let policy = PollPolicy {
        slow_down: SlowDownPolicy::Enforce,
        tolerance_ms: 500,
        interval_ms: 5_000,
    };
    for round in 0..20 {
        let store = Arc::new(Sessions::new(100, 60_000));
        let code = store
            .create(ClientId(0), ScopeSet(1), 0, 600_000, &policy)
            .unwrap();
        store
            .decide(code.user_code, Decision::Approve(UserId(0)), 1)
            .unwrap();
        let barrier = Arc::new(Barrier::new(64));
        let handles: Vec<_> = (0..64)
            .map(|_| {
                let (store, barrier) = (Arc::clone(&store), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    store.poll(&code, ClientId(0), 2, &policy, || 1)
                })
            })
            .collect();
        let outcomes: Vec<PollOutcome> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        let issued = outcomes
            .iter()
            .filter(|o| matches!(o, PollOutcome::Issue { .. }))
            .count();
        assert_eq!(issued, 1, "round {round}: {outcomes:?}");
        assert!(outcomes
            .iter()
            .all(|o| matches!(o, PollOutcome::Issue { .. } | PollOutcome::Replayed { .. })));
    }
}

/// Checklist TS-09: a replayed device code revokes what the first redemption got, even
/// when the replay lands while that redemption is still minting its tokens. Two polls
/// of one approved code are sent at the same instant from two threads, thousands of
/// times, and afterwards the token that was issued must be inactive, access and
/// refresh alike.
#[test]
fn a_replay_racing_the_redemption_revokes_every_token_it_issued() {
    use deviceflow_server::{App, Clock, FileConfig, Settings};

    const TRIALS: usize = 3_000;
    // Thousands of codes from one in-process caller: the per-source quota is off.
    let config = test_config().replace("[admin]", "[quotas]\nper_source_rate = 0\n[admin]");
    let settings = Settings::from_file(FileConfig::parse(&config, "t").unwrap()).unwrap();
    let app = Arc::new(App::new(
        settings,
        "http://127.0.0.1".into(),
        Clock::manual(START_MS),
    ));
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    // Two pollers, each with its own runtime, started together for every trial.
    let barrier = Arc::new(Barrier::new(3));
    let (tx, rx) = std::sync::mpsc::channel::<(usize, u16, serde_json::Value)>();
    let codes: Arc<std::sync::Mutex<String>> = Arc::default();
    let pollers: Vec<_> = (0..2)
        .map(|_| {
            let (app, barrier, tx, codes) = (
                Arc::clone(&app),
                Arc::clone(&barrier),
                tx.clone(),
                Arc::clone(&codes),
            );
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .build()
                    .unwrap();
                for trial in 0..TRIALS {
                    barrier.wait();
                    let code = codes.lock().unwrap().clone();
                    barrier.wait();
                    let req = form(TOKEN, poll_body("tv", &code), None);
                    let (status, body) = call(&rt, &app, req);
                    tx.send((trial, status, body)).unwrap();
                }
            })
        })
        .collect();
    let mut survivors = Vec::new();
    for trial in 0..TRIALS {
        *codes.lock().unwrap() = approved_code(&rt, &app);
        barrier.wait();
        barrier.wait();
        let answers = [rx.recv().unwrap(), rx.recv().unwrap()];
        let issued: Vec<_> = answers.iter().filter(|(_, s, _)| *s == 200).collect();
        assert_eq!(issued.len(), 1, "trial {trial}: {answers:?}");
        let other = answers.iter().find(|(_, s, _)| *s != 200).unwrap();
        assert_eq!(
            (other.1, other.2["error"].as_str()),
            (400, Some("invalid_grant"))
        );
        for kind in still_active(&rt, &app, &issued[0].2) {
            survivors.push((trial, kind));
        }
    }
    for p in pollers {
        p.join().unwrap();
    }
    assert!(
        survivors.is_empty(),
        "{} tokens stayed active after {TRIALS} racing replays; the first: {:?}",
        survivors.len(),
        &survivors[..survivors.len().min(6)]
    );
}

/// A form POST to `path`, with an `Authorization` header if `auth`.
fn form(path: &str, body: String, auth: Option<String>) -> hyper::Request<Full<Bytes>> {
    let mut req = hyper::Request::post(path)
        .header("host", "test")
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(auth) = auth {
        req = req.header("authorization", auth);
    }
    req.body(Full::new(Bytes::from(body))).unwrap()
}

/// Hands `req` to `app` on `rt`; the status and the JSON body.
fn call(
    rt: &tokio::runtime::Runtime,
    app: &deviceflow_server::App,
    req: hyper::Request<Full<Bytes>>,
) -> (u16, serde_json::Value) {
    rt.block_on(async {
        let reply = app.handle(req, deviceflow_server::NO_PEER).await;
        let status = reply.status().as_u16();
        let body = reply.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice::<serde_json::Value>(&body).unwrap(),
        )
    })
}

/// A fresh device code for `tv`, approved by alice through the admin endpoint.
fn approved_code(rt: &tokio::runtime::Runtime, app: &deviceflow_server::App) -> String {
    let (status, da) = call(rt, app, form(DA, "client_id=tv&scope=openid".into(), None));
    assert_eq!(status, 200, "{da}");
    let decided = call(
        rt,
        app,
        form(
            ADMIN,
            format!(
                "user_code={}&action=approve&user=alice",
                da["user_code"].as_str().unwrap()
            ),
            Some(format!("Bearer {ADMIN_TOKEN}")),
        ),
    );
    assert_eq!(decided.0, 200, "{}", decided.1);
    da["device_code"].as_str().unwrap().to_owned()
}

/// Which of the token response's access and refresh tokens introspection still calls
/// active.
fn still_active(
    rt: &tokio::runtime::Runtime,
    app: &deviceflow_server::App,
    token: &serde_json::Value,
) -> Vec<&'static str> {
    let conf = basic("conf", CONF_SECRET);
    ["access_token", "refresh_token"]
        .into_iter()
        .filter(|kind| {
            let t = token[*kind].as_str().unwrap();
            let (_, i) = call(
                rt,
                app,
                form(INTROSPECT, format!("token={t}"), Some(conf.clone())),
            );
            i["active"] != false
        })
        .collect()
}
