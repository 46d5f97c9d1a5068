//! A client connection's deadlines, kept below hyper: how long it may sit idle between
//! requests, and how long a request head may take once its first byte has arrived.
//!
//! hyper's own `header_read_timeout` starts when the connection becomes ready for the
//! next request, so it also cuts idle keep-alive connections, and at its default of
//! 5 s it closed every connection exactly at the default poll `interval`: a compliant
//! device always found its connection gone. Here the two are separate: a device that
//! polls every `interval` keeps its connection for as long as `limits.idle_timeout_ms`
//! (which configuration keeps well above the interval), while a client that trickles a
//! request head (slowloris) is still cut `limits.header_read_timeout_ms` after the
//! head began.
//!
//! The head's end is found by watching the bytes hyper reads for the blank line
//! (`\r\n\r\n`); a response written means the connection is idle again. The timer is
//! re-armed only when a deadline must fire sooner than the armed one, so a busy
//! keep-alive connection re-arms it about once per idle period, not once per request.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::LazyLock;
use std::task::{Context, Poll};
use std::time::Duration;

use memchr::memmem;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// How long a connection may take, by phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// Between requests, and from accept to the first byte.
    pub idle: Duration,
    /// From a request's first byte to the end of its head.
    pub head: Duration,
}

/// Where the connection is in its request/response cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request to begin.
    Idle,
    /// A request head has begun and not yet ended; `matched` bytes of `\r\n\r\n` seen.
    Head { matched: u8 },
    /// The head is in: the body, the handler and the response are timed elsewhere.
    Busy,
}

/// A TCP stream that enforces [`Timeouts`] on reads.
pub(crate) struct TimedStream {
    io: TcpStream,
    timeouts: Timeouts,
    phase: Phase,
    /// When the current phase's time is up; meaningless while `Busy`.
    deadline: Instant,
    /// Armed at or before `deadline`; when it fires early, it is re-armed.
    timer: Pin<Box<Sleep>>,
}

impl TimedStream {
    pub(crate) fn new(io: TcpStream, timeouts: Timeouts) -> TimedStream {
        // A new connection that says nothing is treated as a stalled head: accepting a
        // connection is cheap for the client, so it gets the shorter of the two.
        let deadline = Instant::now() + timeouts.head.min(timeouts.idle);
        TimedStream {
            io,
            timeouts,
            phase: Phase::Idle,
            deadline,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }

    /// Notes bytes hyper has just read.
    fn saw(&mut self, bytes: &[u8]) {
        let (matched, began) = match self.phase {
            Phase::Busy => return,
            Phase::Idle => (0, true),
            Phase::Head { matched } => (matched, false),
        };
        self.phase = match head_end(matched, bytes) {
            Ok(()) => Phase::Busy,
            Err(matched) => {
                // The head's time runs from its first byte; a head that arrives in
                // one read (nearly all) never needs its deadline, nor the clock read.
                if began {
                    self.deadline = Instant::now() + self.timeouts.head;
                }
                Phase::Head { matched }
            }
        };
    }

    /// A response is going out: the connection is idle again once it is sent.
    fn responding(&mut self) {
        if self.phase != Phase::Idle {
            self.phase = Phase::Idle;
            self.deadline = Instant::now() + self.timeouts.idle;
        }
    }

    /// Whether the current phase's time is up; registers the waker for when it will be.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.phase == Phase::Busy {
            return false;
        }
        loop {
            if self.timer.deadline() > self.deadline {
                self.timer.as_mut().reset(self.deadline);
            }
            if self.timer.as_mut().poll(cx).is_pending() {
                return false;
            }
            if Instant::now() >= self.deadline {
                return true;
            }
            // Fired for an earlier deadline that has since moved on.
            self.timer.as_mut().reset(self.deadline);
        }
    }
}

/// Looks for the end of a request head, `\r\n\r\n`, in `bytes`, when `matched` bytes
/// of it ended the previous read. `Err` carries how much of it ends what was read.
fn head_end(matched: u8, bytes: &[u8]) -> Result<(), u8> {
    const END: &[u8; 4] = b"\r\n\r\n";
    let m = usize::from(matched).min(3);
    // The seam: the partial terminator that ended the last read, then this read's
    // first bytes. Every match across the boundary lies within it.
    let mut seam = [0u8; 6];
    seam[..m].copy_from_slice(&END[..m]);
    let n = bytes.len().min(3);
    seam[m..m + n].copy_from_slice(&bytes[..n]);
    let seam = &seam[..m + n];
    // One finder for every read: building one costs more than a short search.
    static FINDER: LazyLock<memmem::Finder<'static>> = LazyLock::new(|| memmem::Finder::new(END));
    if seam.windows(END.len()).any(|w| w == END) || FINDER.find(bytes).is_some() {
        return Ok(());
    }
    let last = if bytes.len() >= 3 { bytes } else { seam };
    let tail = (1..=3)
        .rev()
        .find(|&k| last.ends_with(&END[..k]))
        .unwrap_or(0);
    Err(tail as u8)
}

impl AsyncRead for TimedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.io).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                let read = &buf.filled()[before..];
                if !read.is_empty() {
                    this.saw(read);
                }
                Poll::Ready(Ok(()))
            }
            Poll::Pending if this.poll_expired(cx) => {
                let what = match this.phase {
                    Phase::Head { .. } => "the request head was not received in time",
                    _ => "the connection was idle too long",
                };
                Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, what)))
            }
            other => other,
        }
    }
}

impl AsyncWrite for TimedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.responding();
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.responding();
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_head_ends_at_the_first_blank_line_even_across_reads() {
        assert_eq!(
            head_end(0, b"GET / HTTP/1.1\r\nHost: a\r\n\r\nbody"),
            Ok(())
        );
        assert_eq!(head_end(0, b"GET / HTTP/1.1\r\nHost: a\r\n"), Err(2));
        assert_eq!(head_end(2, b"\r\n"), Ok(()));
        assert_eq!(head_end(3, b"\n"), Ok(()));
        assert_eq!(head_end(1, b"\n\r\nx"), Ok(()));
        assert_eq!(head_end(2, b"x\r\n"), Err(2));
        assert_eq!(head_end(3, b"x"), Err(0));
        assert_eq!(head_end(0, b"\r"), Err(1));
        assert_eq!(head_end(0, b""), Err(0));
    }
}
