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
//! A head has ended when hyper hands the request to the connection's service, which
//! says so through [`HeadsParsed`]: no byte is searched for the blank line that ends a
//! head. A response written means the connection is idle again. The timer is re-armed
//! only when a deadline must fire sooner than the armed one, so a busy keep-alive
//! connection re-arms it about once per idle period, not once per request.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

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

/// Whether hyper has parsed the head of the connection's current request, that is,
/// called its service: set by the service, read and cleared by the [`TimedStream`].
/// One per connection, written by the one task that runs it.
#[derive(Debug, Clone, Default)]
pub(crate) struct HeadsParsed(Arc<AtomicBool>);

impl HeadsParsed {
    /// The service has a request: its head is in.
    pub(crate) fn parsed(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    fn take(&self) -> bool {
        self.0.swap(false, Ordering::Relaxed)
    }
}

/// Where the connection is in its request/response cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request to begin.
    Idle,
    /// Bytes of a request head have come; `timed` once it was found unfinished after a
    /// read, when its deadline was set.
    Head { timed: bool },
    /// The head is in: the body, the handler and the response are timed elsewhere.
    Busy,
}

/// A TCP stream that enforces [`Timeouts`] on reads.
pub(crate) struct TimedStream {
    io: TcpStream,
    timeouts: Timeouts,
    heads: HeadsParsed,
    phase: Phase,
    /// When the current phase's time is up; meaningless while `Busy`.
    deadline: Instant,
    /// Armed at or before `deadline`; when it fires early, it is re-armed.
    timer: Pin<Box<Sleep>>,
}

impl TimedStream {
    /// `io`, timed by `timeouts`; `heads` is what the connection's service sets.
    pub(crate) fn new(io: TcpStream, timeouts: Timeouts, heads: HeadsParsed) -> TimedStream {
        // A new connection that says nothing is treated as a stalled head: accepting a
        // connection is cheap for the client, so it gets the shorter of the two.
        let deadline = Instant::now() + timeouts.head.min(timeouts.idle);
        TimedStream {
            io,
            timeouts,
            heads,
            phase: Phase::Idle,
            deadline,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
        }
    }

    /// Notes that hyper has just read bytes.
    fn saw_bytes(&mut self) {
        if self.phase == Phase::Idle {
            self.phase = Phase::Head { timed: false };
        }
    }

    /// A response is going out: the connection is idle again once it is sent.
    fn responding(&mut self) {
        // A head parsed before this answer is the answered request's. Cleared on every
        // answer, even in `Idle`: a request parsed from bytes read with the one before
        // it is answered in `Idle`, and must not pass for the next request's head.
        self.heads.take();
        if self.phase != Phase::Idle {
            self.phase = Phase::Idle;
            self.deadline = Instant::now() + self.timeouts.idle;
        }
    }

    /// Whether the current phase's time is up; registers the waker for when it will be.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        match self.phase {
            Phase::Busy => return false,
            // hyper has a head: one this connection read, or one it parsed from bytes
            // read with the request before (then still in `Idle`).
            _ if self.heads.take() => {
                self.phase = Phase::Busy;
                return false;
            }
            Phase::Idle => {}
            // Waiting for more of a head: its time runs from now (a read ago, at most).
            // A head that arrives in one read (nearly all) never needs its deadline,
            // nor the clock read.
            Phase::Head { timed: true } => {}
            Phase::Head { timed: false } => {
                self.phase = Phase::Head { timed: true };
                self.deadline = Instant::now() + self.timeouts.head;
            }
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
                if buf.filled().len() > before {
                    this.saw_bytes();
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
