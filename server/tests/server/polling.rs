//! Polling, interval and slow_down (checklist A.0, A.6) and expiry (A.7), on the
//! manual clock.

use crate::common::*;

const I: u64 = INTERVAL * 1000;

#[tokio::test]
async fn first_poll_right_after_authorization_is_pending() {
    // PL-05, TR-01, TS-01.
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "authorization_pending");
}

#[tokio::test]
async fn compliant_client_never_gets_slow_down() {
    // PL-02, and PL-04 with jitter of up to 300 ms either side of the interval: 40
    // polls, 200 s, so the code lives longer here.
    let s =
        TestServer::start_with(&test_config().replace("expires_in = 60", "expires_in = 600")).await;
    let da = s.authorize("tv").await;
    let jitter = [0i64, 300, -300, 150, -150, 290, -290, 0, 100, -100];
    for j in jitter.iter().cycle().take(40) {
        s.poll("tv", &da.device_code)
            .await
            .assert_oauth_error(400, "authorization_pending");
        s.advance_ms((I as i64 + j) as u64);
    }
}

#[tokio::test]
async fn a_clock_stepped_back_never_slows_a_compliant_device() {
    // PL-02, PL-04: the wall clock steps back 60 s (NTP, a restored VM) while a device
    // polls at exactly the interval; it keeps getting authorization_pending and its
    // interval stays I (on a wall-clock pacing it got 5 slow_downs and 30 s).
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "authorization_pending");
    s.app.clock.set(START_MS - 60_000);
    for _ in 0..8 {
        s.advance_ms(I);
        s.poll("tv", &da.device_code)
            .await
            .assert_oauth_error(400, "authorization_pending");
    }
    let metrics = String::from_utf8(s.get("/metrics").await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("deviceflow_slow_down_total 0\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn early_poll_gets_slow_down_and_five_more_seconds_for_all_later_polls() {
    // PL-01, PL-07, PL-09: RFC 8628 §3.5.
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    let dc = &da.device_code;
    s.poll("tv", dc)
        .await
        .assert_oauth_error(400, "authorization_pending");
    s.advance_ms(1_000);
    s.poll("tv", dc).await.assert_oauth_error(400, "slow_down");
    // The old interval is no longer enough: the server tracks the +5 itself (PL-07).
    s.advance_ms(I);
    s.poll("tv", dc).await.assert_oauth_error(400, "slow_down");
    // k = 2 now: I + 10 s after the last request is enough (PL-03).
    s.advance_ms(I + 10_000);
    s.poll("tv", dc)
        .await
        .assert_oauth_error(400, "authorization_pending");
    // And stays required.
    s.advance_ms(I + 5_000);
    s.poll("tv", dc).await.assert_oauth_error(400, "slow_down");
}

#[tokio::test]
async fn server_never_demands_more_than_interval_plus_five_per_slow_down() {
    // PL-03: a client that waits I + 5·k after each request, counted from its own
    // last request (accepted or not), is never told to slow down.
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    let dc = &da.device_code;
    s.poll("tv", dc)
        .await
        .assert_oauth_error(400, "authorization_pending");
    let mut k = 0;
    for _ in 0..3 {
        // Provoke one slow_down...
        s.advance_ms(100);
        s.poll("tv", dc).await.assert_oauth_error(400, "slow_down");
        k += 1;
        // ...then wait exactly I + 5·k from that rejected request.
        s.advance_ms(I + 5_000 * k);
        s.poll("tv", dc)
            .await
            .assert_oauth_error(400, "authorization_pending");
    }
}

#[tokio::test]
async fn approved_code_gets_its_token_even_when_polled_early() {
    // PL-06.
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "authorization_pending");
    s.decide(&da.user_code, "approve", "alice").await;
    s.advance_ms(200);
    assert_eq!(s.poll("tv", &da.device_code).await.status, 200);
}

#[tokio::test]
async fn denied_code_gets_access_denied_even_when_polled_early() {
    // PL-06, TS-07.
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "authorization_pending");
    s.decide(&da.user_code, "deny", "alice").await;
    s.advance_ms(200);
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "access_denied");
}

#[tokio::test]
async fn expired_code_gets_expired_token_even_when_polled_early() {
    // PL-06, EX-01.
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    s.advance_ms(EXPIRES_IN * 1000 - 100);
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "authorization_pending");
    s.advance_ms(200);
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "expired_token");
}

#[tokio::test]
async fn expiry_is_exact_and_final() {
    // EX-01, EX-04.
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    s.advance_ms(EXPIRES_IN * 1000 - 10_000);
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "authorization_pending");
    s.advance_ms(10_000);
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "expired_token");
    // A late approval is refused and issues nothing (EX-03).
    assert_eq!(
        s.decide(&da.user_code, "approve", "alice").await.status,
        410
    );
    for _ in 0..3 {
        s.advance_ms(I);
        s.poll("tv", &da.device_code)
            .await
            .assert_oauth_error(400, "expired_token");
    }
}

#[tokio::test]
async fn approved_before_expiry_and_redeemed_after_is_refused() {
    // EX-02.
    let s = TestServer::start().await;
    let dc = s.approved("tv").await;
    s.advance_ms(EXPIRES_IN * 1000 + 3_000);
    s.poll("tv", &dc)
        .await
        .assert_oauth_error(400, "expired_token");
}

#[tokio::test]
async fn expired_sessions_are_swept_after_retention_and_counted() {
    let s = TestServer::start().await;
    let da = s.authorize("tv").await;
    s.advance_ms((EXPIRES_IN + 29) * 1000);
    s.app.sweep(usize::MAX);
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "expired_token");
    s.advance_ms(1_000);
    s.app.sweep(usize::MAX);
    assert!(s.app.store.sessions.is_empty());
    // Gone: now an unknown code.
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "invalid_grant");
    let metrics = String::from_utf8(s.get("/metrics").await.body.to_vec()).unwrap();
    assert!(
        metrics.contains("deviceflow_sessions_expired_total 1\n"),
        "{metrics}"
    );
}

#[tokio::test]
async fn slow_down_policy_off_never_answers_slow_down() {
    let config = test_config().replace(
        "poll_tolerance_ms = 500",
        "poll_tolerance_ms = 500\nslow_down = \"off\"",
    );
    let s = TestServer::start_with(&config).await;
    let da = s.authorize("tv").await;
    for _ in 0..5 {
        s.poll("tv", &da.device_code)
            .await
            .assert_oauth_error(400, "authorization_pending");
    }
}

#[tokio::test]
async fn tolerance_is_configurable() {
    let config = test_config().replace("poll_tolerance_ms = 500", "poll_tolerance_ms = 0");
    let s = TestServer::start_with(&config).await;
    let da = s.authorize("tv").await;
    s.poll("tv", &da.device_code).await;
    s.advance_ms(I - 1);
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "slow_down");
}
