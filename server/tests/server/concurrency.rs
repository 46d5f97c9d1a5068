//! A device code is redeemed exactly once, however many polls race (checklist TS-08,
//! TS-10).

use std::sync::{Arc, Barrier};

use deviceflow_server::clients::ClientId;
use deviceflow_server::scope::ScopeSet;
use deviceflow_server::session::{Decision, PollOutcome, PollPolicy, SlowDownPolicy};
use deviceflow_server::users::UserId;
use deviceflow_server::{MemoryStore, SessionStore};

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
        let store = Arc::new(MemoryStore::new(100, 60_000));
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
