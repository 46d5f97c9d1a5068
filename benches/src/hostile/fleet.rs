//! The compliant fleet: devices that do what RFC 8628 asks and nothing more, whose
//! experience is what the attacks must not spoil.
//!
//! Each device holds one keep-alive connection, asks for a code (RFC 8628 §3.1), then
//! polls (§3.4) every `interval` it was told, measured from its last request, adding
//! 5 s per `slow_down` (§3.5). It stops on an answer that ends the flow. The fleet runs
//! on a runtime of its own, on its own thread, so the attacks' tasks never delay a
//! device's timer or the reading of its answer: what it measures is the server.

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use deviceflow_server::http::paths;
use deviceflow_wire::{
    DeviceAuthorizationResponse, ErrorResponse, TokenResponse, DEFAULT_INTERVAL_SECS,
    SLOW_DOWN_INCREMENT_SECS,
};
use hyper::StatusCode;
use tokio::time::Instant;

use super::client::{Answer, Connection};
use super::{Stop, Tally};
use crate::{form_post, poll_body, poll_request, DEMO_CLIENT_ID};

/// After a refused device authorization, the wait before asking again.
const RETRY_AUTHORIZATION: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct FleetConfig {
    pub devices: usize,
    pub source: IpAddr,
    pub target: SocketAddr,
    /// Devices start spread over this long, so their polls do not arrive in lockstep.
    pub ramp: Duration,
    /// A request unanswered this long is a failure; the connection is then reopened.
    pub timeout: Duration,
}

/// What the fleet saw.
#[derive(Debug, Default)]
pub struct FleetReport {
    /// Device authorization answers by status (`"200"`), or failure.
    pub authorizations: Tally,
    pub polls_sent: u64,
    /// Poll answers by RFC 6749 §5.2 `error`, or `"token"`.
    pub answers: Tally,
    /// Polls that got no RFC answer: timeouts, broken connections, other bodies.
    pub failures: Tally,
    /// Polls still unanswered when the run stopped.
    pub waiting_at_end: u64,
    /// Devices that got an answer ending their flow (they stop polling).
    pub finished: u64,
    /// Time from sending each poll to its answer, its failure, or the stop; sorted.
    pub latencies: Vec<Duration>,
    /// How late each poll left after its timer was due; sorted. This is the client's
    /// own scheduling delay (on a shared machine the server's threads compete with the
    /// fleet's), a guide to how much of the latency may be the client's too.
    pub timer_late: Vec<Duration>,
}

/// Starts the fleet on a thread of its own; the report comes back once `stop` fires.
pub fn spawn(config: FleetConfig, stop: Stop) -> std::thread::JoinHandle<FleetReport> {
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a current-thread runtime starts");
        runtime.block_on(run(config, stop))
    })
}

async fn run(config: FleetConfig, stop: Stop) -> FleetReport {
    let report = Arc::new(Mutex::new(FleetReport::default()));
    let config = Arc::new(config);
    let start = Instant::now();
    let devices: Vec<_> = (0..config.devices)
        .map(|i| {
            let offset = config.ramp.mul_f64(i as f64 / config.devices.max(1) as f64);
            tokio::spawn(device(
                config.clone(),
                start + offset,
                report.clone(),
                stop.clone(),
            ))
        })
        .collect();
    for d in devices {
        let _ = d.await;
    }
    let mut report = std::mem::take(&mut *lock(&report));
    report.latencies.sort_unstable();
    report.timer_late.sort_unstable();
    report
}

// A std Mutex: no critical section awaits. A poisoned lock only means another device
// panicked; its counts are still good.
fn lock(report: &Mutex<FleetReport>) -> std::sync::MutexGuard<'_, FleetReport> {
    report.lock().unwrap_or_else(|e| e.into_inner())
}

async fn device(
    config: Arc<FleetConfig>,
    at: Instant,
    report: Arc<Mutex<FleetReport>>,
    mut stop: Stop,
) {
    let mut conn = Connection::new(config.source, config.target);
    if !stop.sleep_until(at).await {
        return;
    }
    let Some((device_code, interval)) = authorize(&mut conn, &config, &report, &mut stop).await
    else {
        return;
    };
    poll(
        &mut conn,
        &config,
        &report,
        &mut stop,
        &device_code,
        interval,
    )
    .await;
}

/// RFC 8628 §3.1: asks for codes until granted (retrying after a refusal or failure,
/// each counted) or stopped. Returns the device code and the interval.
async fn authorize(
    conn: &mut Connection,
    config: &FleetConfig,
    report: &Mutex<FleetReport>,
    stop: &mut Stop,
) -> Option<(String, Duration)> {
    let authorization = Bytes::from(format!("client_id={DEMO_CLIENT_ID}"));
    loop {
        let req = form_post(paths::DEVICE_AUTHORIZATION, authorization.clone());
        let outcome = tokio::select! {
            biased;
            _ = stop.fired() => return None,
            r = conn.send(req, config.timeout) => r,
        };
        let granted = match &outcome {
            Ok(a) if a.status == StatusCode::OK => {
                serde_json::from_slice::<DeviceAuthorizationResponse>(&a.body).ok()
            }
            _ => None,
        };
        lock(report).authorizations.add(match (&outcome, &granted) {
            (Ok(a), Some(_)) => a.status.as_str().to_owned(),
            (Ok(a), None) if a.status == StatusCode::OK => "200 (unreadable)".to_owned(),
            (Ok(a), None) => a.status.as_str().to_owned(),
            (Err(f), _) => f.label().to_owned(),
        });
        if let Some(g) = granted {
            // RFC 8628 §3.2: "If no value is provided, clients MUST use 5 as the default."
            let secs = g.interval.unwrap_or(DEFAULT_INTERVAL_SECS);
            return Some((g.device_code, Duration::from_secs(secs)));
        }
        if !stop.sleep_until(Instant::now() + RETRY_AUTHORIZATION).await {
            return None;
        }
    }
}

/// RFC 8628 §3.4, §3.5: polls `device_code` every `interval` (5 s longer after each
/// `slow_down`) until a final answer or the stop, counting every poll's answer,
/// latency and how late its timer woke.
async fn poll(
    conn: &mut Connection,
    config: &FleetConfig,
    report: &Mutex<FleetReport>,
    stop: &mut Stop,
    device_code: &str,
    mut interval: Duration,
) {
    let body = poll_body(device_code);
    let mut next = Instant::now() + interval;
    loop {
        let due = next.max(Instant::now());
        if !stop.sleep_until(next).await {
            return;
        }
        let sent = Instant::now();
        let outcome = tokio::select! {
            biased;
            _ = stop.fired() => None,
            r = conn.send(poll_request(body.clone()), config.timeout) => Some(r),
        };
        let mut r = lock(report);
        r.polls_sent += 1;
        r.latencies.push(sent.elapsed());
        r.timer_late.push(sent - due);
        match outcome {
            None => {
                r.waiting_at_end += 1;
                return;
            }
            Some(Ok(answer)) => match classify(&answer) {
                Poll::Continue(error) => {
                    if error == "slow_down" {
                        // RFC 8628 §3.5: "... increased by 5 seconds for this and all
                        // subsequent requests."
                        interval += Duration::from_secs(SLOW_DOWN_INCREMENT_SECS);
                    }
                    r.answers.add(error);
                }
                Poll::Final(what) => {
                    r.answers.add(what);
                    r.finished += 1;
                    return;
                }
                Poll::NotRfc => r.failures.add(format!(
                    "HTTP {} without an RFC 6749 body",
                    answer.status.as_str()
                )),
            },
            Some(Err(failure)) => r.failures.add(failure.label()),
        }
        drop(r);
        // "wait at least interval seconds between polling requests": from this one.
        next = sent + interval;
    }
}

enum Poll {
    /// `authorization_pending` or `slow_down`: poll again.
    Continue(String),
    /// A token or any other error: the flow is over (RFC 8628 §3.5).
    Final(String),
    /// Neither a token response nor an RFC 6749 §5.2 error object.
    NotRfc,
}

fn classify(answer: &Answer) -> Poll {
    if answer.status == StatusCode::OK {
        return match serde_json::from_slice::<TokenResponse>(&answer.body) {
            Ok(_) => Poll::Final("token".to_owned()),
            Err(_) => Poll::NotRfc,
        };
    }
    match serde_json::from_slice::<ErrorResponse>(&answer.body) {
        Ok(e) if e.code().is_some_and(|c| c.continues_polling()) => Poll::Continue(e.error),
        Ok(e) => Poll::Final(e.error),
        Err(_) => Poll::NotRfc,
    }
}
