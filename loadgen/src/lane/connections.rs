//! The lane's side of the transport: a bounded pool of keep-alive connections per
//! target (the admin endpoint last), the requests' bytes, and the queue of requests
//! due, sent in batches of up to `--pipeline` on a free connection (one request at a
//! time by default). What a device asks for is decided elsewhere (`mod.rs`,
//! `answers.rs`); the HTTP/1.1 itself is `transport.rs`'s.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

use crate::device::flow::Kind;
use crate::device::Plan;
use crate::transport::{self, Connection, Exchange, Requests};

use super::{Lane, Out};

pub(super) type InFlight = Pin<Box<dyn Future<Output = (Vec<Out>, Exchange)> + Send>>;

/// Connections to one target, and the requests waiting to go out on them.
#[derive(Default)]
pub(super) struct Pool {
    idle: Vec<Connection>,
    open: usize,
    /// In the order they were due; the time is set when a request first finds no
    /// connection free.
    queue: VecDeque<(Out, Option<Instant>)>,
}

impl Pool {
    pub(super) fn is_quiet(&self) -> bool {
        self.queue.is_empty()
    }

    /// Forgets the requests waiting for a connection (the run is over): how many
    /// had waited, and the longest wait, ms (the queue is in the order they were due).
    pub(super) fn drop_queue(&mut self) -> (u64, u64) {
        let waited = self.queue.iter().filter(|(_, at)| at.is_some()).count() as u64;
        let longest = self
            .queue
            .front()
            .and_then(|(_, at)| *at)
            .map_or(0, |at| at.elapsed().as_millis() as u64);
        self.queue.clear();
        (waited, longest)
    }
}

/// Appends `s` form-encoded (application/x-www-form-urlencoded), without allocating.
/// Bytes, not chars: a device code is ASCII, and this runs for every poll.
fn push_form_encoded(out: &mut Vec<u8>, s: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => out.push(b),
            b' ' => out.push(b'+'),
            _ => out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]),
        }
    }
}

impl Lane {
    /// Queues `out` for its target; [`Lane::dispatch`] sends it. Once the run time
    /// is up nothing more goes out.
    pub(super) fn send(&mut self, out: Out) {
        if !self.closing {
            self.pools[out.target as usize].queue.push_back((out, None));
        }
    }

    /// Sends the queued requests, up to `--pipeline` of them written at once on each
    /// idle connection of their target (or a new one while the pool has room). What
    /// finds no connection waits for one, and the report says so.
    pub(super) fn dispatch(&mut self) {
        for target in 0..self.pools.len() {
            while !self.pools[target].queue.is_empty() {
                let pool = &mut self.pools[target];
                let connection = match pool.idle.pop() {
                    Some(c) => Some(c),
                    None if pool.open < self.max_per_pool => {
                        pool.open += 1;
                        self.fleet.live.connections.fetch_add(1, Relaxed);
                        None
                    }
                    None => break,
                };
                let mut outs = self.spare_outs.pop().unwrap_or_default();
                let mut requests = self.spare.pop().unwrap_or_default();
                let depth = self.fleet.config.pipeline.max(1);
                let take = self.pools[target].queue.len().min(depth);
                for _ in 0..take {
                    let Some((out, queued)) = self.pools[target].queue.pop_front() else {
                        break;
                    };
                    if let Some(at) = queued {
                        let waited = at.elapsed().as_millis() as u64;
                        self.stats.max_connection_wait_ms =
                            self.stats.max_connection_wait_ms.max(waited);
                    }
                    self.request(&out, &mut requests);
                    outs.push(Out {
                        stalled_ms: self.stalled_ms,
                        ..out
                    });
                }
                let c = &self.fleet.config;
                let dial = c.target(target).dial();
                let timeout = c.request_timeout;
                self.stats.batches += 1;
                self.inflight.push(Box::pin(async move {
                    (
                        outs,
                        transport::exchange(connection, dial, requests, timeout).await,
                    )
                }));
            }
            // Those queued since the last dispatch are the ones at the back without a
            // time: a long queue (a server that stopped answering) is not walked whole
            // on every turn of the lane.
            let queue = &mut self.pools[target].queue;
            let mut now = None;
            let fresh = queue.iter_mut().rev().take_while(|e| e.1.is_none());
            for (_, queued) in fresh {
                *queued = Some(*now.get_or_insert_with(Instant::now));
                self.stats.waited_for_connection += 1;
            }
        }
    }

    /// The bytes of `out`'s request, appended to the batch.
    fn request(&mut self, out: &Out, requests: &mut Requests) {
        let r = &mut requests.bytes;
        let c = &self.fleet.config;
        let d = &self.devices[out.slot as usize];
        let host = &c.target(usize::from(out.target)).host;
        let client = c.client_authorization.as_deref();
        let body = &mut self.body;
        body.clear();
        match out.kind {
            Kind::Issue => {
                transport::form_post(r, host, &c.issue_uri, client, c.issue_body.as_bytes())
            }
            Kind::Poll | Kind::ReplayCheck => {
                // RFC 8628 §3.4: grant_type and device_code, plus the client.
                body.extend_from_slice(b"grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Adevice_code&device_code=");
                push_form_encoded(body, &d.device_code);
                body.extend_from_slice(c.client_params.as_bytes());
                transport::form_post(r, host, &c.token_uri, client, body);
            }
            Kind::Approve => {
                let admin = c
                    .admin
                    .as_ref()
                    .expect("Decide is scheduled only with an admin approver");
                let action = if matches!(d.plan, Plan::Deny { .. }) {
                    "deny"
                } else {
                    "approve"
                };
                body.extend_from_slice(b"user_code=");
                push_form_encoded(body, &d.user_code);
                body.extend_from_slice(b"&action=");
                body.extend_from_slice(action.as_bytes());
                body.extend_from_slice(b"&user=");
                push_form_encoded(body, &admin.user);
                let authorization = Some(&*admin.authorization);
                transport::form_post(r, host, &admin.uri, authorization, body);
            }
        }
        requests.end_one();
    }

    /// A batch is over: its connection goes back to its pool (or is counted closed)
    /// and its buffers are kept for the next batch.
    pub(super) fn give_back(&mut self, target: u16, x: &mut Exchange) {
        let pool = &mut self.pools[usize::from(target)];
        self.stats.connections_opened += u64::from(x.opened);
        match x.connection.take() {
            Some(c) => pool.idle.push(c),
            None => {
                pool.open -= 1;
                self.fleet.live.connections.fetch_sub(1, Relaxed);
            }
        }
        let mut requests = std::mem::take(&mut x.requests);
        requests.clear();
        self.spare.push(requests);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use deviceflow_conformance::http::form_encode;

    #[test]
    fn form_encoding_matches_the_conformance_suites() {
        for s in ["abc-_.*", "a b", "x+y/z=%", "é"] {
            let mut out = Vec::new();
            push_form_encoded(&mut out, s);
            assert_eq!(out, form_encode(s).into_bytes());
        }
    }
}
