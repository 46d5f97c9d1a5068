//! A request flood: a fixed number of keep-alive connections, each sending its next
//! request as soon as the last is answered, until the stop. The sign-in flood and
//! the issuance flood are this loop with their own request.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use deviceflow_server::http::paths;
use http_body_util::Full;
use hyper::Request;
use tokio::time::Instant;

use super::client::Connection;
use super::{Stop, Tally};
use crate::{form_post, DEMO_CLIENT_ID};

/// How long one flood request may take before it counts as a timeout; longer than
/// any run, so a slow answer is waited for, and the stop is what ends the wait.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(300);

/// After a failed connect or a broken connection, the wait before the next try, so a
/// server that refuses connections is not spun against.
const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// What one flood saw.
#[derive(Debug, Default)]
pub struct FloodReport {
    pub connections: usize,
    pub sent: u64,
    /// Answers by HTTP status.
    pub answers: Tally,
    /// Requests that got no answer, by [`super::client::Failure::label`].
    pub failures: Tally,
    /// Requests still unanswered when the run stopped.
    pub waiting_at_end: u64,
    /// Time from sending to the whole answer, of every answered request.
    pub latencies: Vec<Duration>,
}

impl FloodReport {
    fn merge(&mut self, other: FloodReport) {
        self.sent += other.sent;
        self.answers.merge(&other.answers);
        self.failures.merge(&other.failures);
        self.waiting_at_end += other.waiting_at_end;
        self.latencies.extend(other.latencies);
    }
}

/// Builds a connection's `n`th request.
pub type MakeRequest = Arc<dyn Fn(usize, u64) -> Request<Full<Bytes>> + Send + Sync>;

/// Runs `connections` loops from `source` until `stop`, each sending
/// `make(connection, n)` back to back; the report sorts `latencies`.
pub async fn run(
    source: IpAddr,
    target: SocketAddr,
    connections: usize,
    make: MakeRequest,
    stop: Stop,
) -> FloodReport {
    let tasks: Vec<_> = (0..connections)
        .map(|i| {
            tokio::spawn(one_connection(
                source,
                target,
                i,
                make.clone(),
                stop.clone(),
            ))
        })
        .collect();
    let mut report = FloodReport {
        connections,
        ..FloodReport::default()
    };
    for task in tasks {
        match task.await {
            Ok(r) => report.merge(r),
            Err(e) => report.failures.add(format!("task failed: {e}")),
        }
    }
    report.latencies.sort_unstable();
    report
}

async fn one_connection(
    source: IpAddr,
    target: SocketAddr,
    index: usize,
    make: MakeRequest,
    mut stop: Stop,
) -> FloodReport {
    let mut conn = Connection::new(source, target);
    let mut report = FloodReport::default();
    while !stop.is_set() {
        let req = make(index, report.sent);
        report.sent += 1;
        let sent = Instant::now();
        let outcome = tokio::select! {
            // The stop first: an answer that comes after it is not counted.
            biased;
            _ = stop.fired() => {
                report.waiting_at_end += 1;
                break;
            }
            r = conn.send(req, REQUEST_TIMEOUT) => r,
        };
        match outcome {
            Ok(answer) => {
                report.latencies.push(sent.elapsed());
                report.answers.add(answer.status.as_str());
            }
            Err(failure) => {
                report.failures.add(failure.label());
                if !stop.sleep_until(Instant::now() + RETRY_PAUSE).await {
                    break;
                }
            }
        }
    }
    report
}

/// The issuance flood's request: RFC 8628 §3.1 device authorization for the demo
/// public client, the cheapest request that makes the server hold new state.
pub fn issuance() -> MakeRequest {
    let body = Bytes::from(format!("client_id={DEMO_CLIENT_ID}"));
    Arc::new(move |_, _| form_post(paths::DEVICE_AUTHORIZATION, body.clone()))
}
