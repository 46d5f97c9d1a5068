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
//! A head has ended when hyper hands the request to the connection's service, and an
//! answer is going out when the service has answered and a write follows: the service
//! counts both in [`Exchanges`], and no byte is searched for the blank line that ends
//! a head, or sniffed for what a write carries. While a request is in (from its head
//! to the first write of its answer) reads are not timed here: its body has its own
//! timeout (`read_body`), and an interim `100 Continue` is not an answer. A peer that
//! reads none of what the server writes for `idle` is cut off too, so that a client
//! that pipelines requests and never reads cannot hold a connection by filling the
//! buffers. The one timer is re-armed only when a deadline must fire sooner than the
//! armed one, so a busy keep-alive connection re-arms it about once per idle period,
//! not once per request.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

/// How long a connection may take, by phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timeouts {
    /// Between requests, from accept to the first byte, and while the peer reads
    /// nothing of what is written to it.
    pub idle: Duration,
    /// From a request's first byte to the end of its head.
    pub head: Duration,
}

/// What the connection's service tells its [`TimedStream`]: how many requests hyper
/// has handed it, and how many of them it has answered. One per connection, written
/// and read by the one task that runs it (hence the plain loads and stores).
#[derive(Debug, Clone, Default)]
pub(crate) struct Exchanges(Arc<Counts>);

#[derive(Debug, Default)]
struct Counts {
    started: AtomicU32,
    answered: AtomicU32,
}

impl Exchanges {
    /// hyper has parsed a request's head and handed the request to the service.
    pub(crate) fn started(&self) {
        bump(&self.0.started);
    }

    /// The service has answered a request; hyper writes the answer next.
    pub(crate) fn answered(&self) {
        bump(&self.0.answered);
    }
}

/// Counts one more, on a counter that only one task writes.
fn bump(count: &AtomicU32) {
    count.store(
        count.load(Ordering::Relaxed).wrapping_add(1),
        Ordering::Relaxed,
    );
}

/// Where the connection is between requests (no request is in: see
/// [`TimedStream::in_request`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request to begin.
    Idle,
    /// Bytes of a request head have come; `timed` once it was found unfinished after a
    /// read, when its deadline was set.
    Head { timed: bool },
}

/// A TCP stream that enforces [`Timeouts`].
pub(crate) struct TimedStream {
    io: TcpStream,
    timeouts: Timeouts,
    exchanges: Exchanges,
    /// Answers whose writing has begun.
    written: u32,
    phase: Phase,
    /// When the current phase's time is up; meaningless while a request is in.
    deadline: Instant,
    /// When a write that cannot proceed (the peer reads nothing) gives up.
    write_deadline: Option<Instant>,
    /// Armed at or before the deadlines being watched; when it fires early, it is
    /// re-armed.
    timer: Pin<Box<Sleep>>,
    /// Whether `timer` has been polled (this task's waker registered) since it was
    /// last set.
    armed: bool,
}

impl TimedStream {
    /// `io`, timed by `timeouts`; `exchanges` is what the connection's service counts.
    pub(crate) fn new(io: TcpStream, timeouts: Timeouts, exchanges: Exchanges) -> TimedStream {
        // A new connection that says nothing is treated as a stalled head: accepting a
        // connection is cheap for the client, so it gets the shorter of the two.
        let deadline = Instant::now() + timeouts.head.min(timeouts.idle);
        TimedStream {
            io,
            timeouts,
            exchanges,
            written: 0,
            phase: Phase::Idle,
            deadline,
            write_deadline: None,
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            armed: false,
        }
    }

    /// Whether a request is in: handed to the service, its answer not yet written.
    fn in_request(&self) -> bool {
        self.exchanges.0.started.load(Ordering::Relaxed) != self.written
    }

    /// Notes that hyper has just read bytes.
    fn saw_bytes(&mut self) {
        if self.phase == Phase::Idle && !self.in_request() {
            self.phase = Phase::Head { timed: false };
        }
    }

    /// Something is about to be written. If it begins an answer (the service has
    /// answered since the last one) and no later request is in, the connection is idle
    /// from now on, and the timer is armed for it here: the next read that would check
    /// the deadline may be a long time coming.
    fn writing(&mut self, cx: &mut Context<'_>) {
        let answered = self.exchanges.0.answered.load(Ordering::Relaxed);
        if answered == self.written {
            // More of the same answer, or an interim `100 Continue`.
            return;
        }
        self.written = answered;
        if !self.in_request() {
            self.phase = Phase::Idle;
            self.deadline = Instant::now() + self.timeouts.idle;
            let deadline = self.deadline;
            // A timer already armed to fire by then wakes the task in time: the read
            // that follows re-arms it for the rest. Otherwise it is armed now (the
            // deadline was just set in the future: not expired).
            if !(self.armed && !self.timer.is_elapsed() && self.timer.deadline() <= deadline) {
                let _ = self.poll_deadline(cx, deadline);
            }
        }
    }

    /// Whether the current phase's time is up, after a read that would block;
    /// registers the waker for when it will be.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> bool {
        if self.in_request() {
            return false;
        }
        if self.phase == (Phase::Head { timed: false }) {
            // Waiting for more of a head: its time runs from now (a read ago, at most).
            // A head that arrives in one read (nearly all) never needs its deadline,
            // nor the clock read.
            self.phase = Phase::Head { timed: true };
            self.deadline = Instant::now() + self.timeouts.head;
        }
        let deadline = self.deadline;
        self.poll_deadline(cx, deadline)
    }

    /// Whether a write that would block has waited past its deadline (set at the first
    /// such write; cleared by any write that proceeds).
    fn poll_write_expired(&mut self, cx: &mut Context<'_>) -> bool {
        let deadline = *self
            .write_deadline
            .get_or_insert_with(|| Instant::now() + self.timeouts.idle);
        self.poll_deadline(cx, deadline)
    }

    /// Whether `deadline` has passed; if not, the timer is armed to wake this task by
    /// then.
    fn poll_deadline(&mut self, cx: &mut Context<'_>, deadline: Instant) -> bool {
        loop {
            if self.timer.deadline() > deadline {
                self.timer.as_mut().reset(deadline);
            }
            self.armed = self.timer.as_mut().poll(cx).is_pending();
            if self.armed {
                return false;
            }
            if Instant::now() >= deadline {
                return true;
            }
            // Fired for an earlier deadline that has since moved on.
            self.timer.as_mut().reset(deadline);
        }
    }

    /// A write's outcome, cut off if the peer has read nothing for too long.
    fn wrote<T>(
        &mut self,
        cx: &mut Context<'_>,
        result: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        match result {
            Poll::Pending if self.poll_write_expired(cx) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the peer read nothing of the answer for too long",
            ))),
            Poll::Pending => Poll::Pending,
            done => {
                self.write_deadline = None;
                done
            }
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
                    Phase::Idle => "the connection was idle too long",
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
        this.writing(cx);
        let result = Pin::new(&mut this.io).poll_write(cx, buf);
        this.wrote(cx, result)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        this.writing(cx);
        let result = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.wrote(cx, result)
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
