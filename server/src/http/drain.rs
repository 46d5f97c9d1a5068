//! Graceful shutdown of client connections: when the server stops, an idle keep-alive
//! connection is closed at once and a request in flight is answered first (hyper's
//! `graceful_shutdown`), with nothing written per request on a cache line that other
//! connections share. What has not closed when the server stops waiting is dropped
//! ([`Drain::abort`]).
//!
//! hyper-util's `GracefulShutdown`, used before, polls a `tokio::sync::watch`
//! receiver's `changed()` every time a connection's task wakes, and a `Notified` that
//! is still waiting takes its `Notify`'s waiter-list mutex on every poll (tokio 1.54,
//! `sync/notify.rs`, `State::Waiting`). A watch spreads its receivers over eight such
//! mutexes, so every request on every core locked one of eight shared locks, about 270
//! instructions a poll besides. Here a connection registers its task's waker once,
//! when it first runs, and every later wake reads one flag written once, at shutdown.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use tokio::sync::futures::OwnedNotified;
use tokio::sync::Notify;

/// A connection that can be asked to finish what it is doing and close.
pub(crate) trait Close: Future {
    /// Ask the connection to close once the request in flight, if any, is answered.
    fn close(self: Pin<&mut Self>);
}

impl<I, S, B> Close for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn close(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// What the server and its connections share.
#[derive(Debug, Default)]
struct Shared {
    /// Set once, when the server stops.
    closing: AtomicBool,
    /// Wakes the connections' tasks when `closing` is set.
    closing_wakes: Arc<Notify>,
    /// Set once, when the connections still open are to be dropped unanswered.
    aborting: AtomicBool,
    /// Wakes the closing connections' tasks when `aborting` is set.
    aborting_wakes: Arc<Notify>,
    /// Connections not yet ended.
    open: AtomicUsize,
    /// Wakes [`Drain::closed`] when `open` reaches zero.
    none_open: Notify,
}

/// The server's side: hands each connection a [`Drained`] wrapper, and at shutdown
/// asks them all to close and waits for them.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    shared: Arc<Shared>,
}

impl Drain {
    pub(crate) fn new() -> Drain {
        Drain::default()
    }

    /// A connection about to be served: counted as open from now until what
    /// [`Entry::watch`] makes of it ends, or the entry is dropped. Taken before the
    /// connection's task is spawned, so that a shutdown in between is not missed.
    pub(crate) fn enter(&self) -> Entry {
        self.shared.open.fetch_add(1, Ordering::Relaxed);
        Entry {
            // A `Notified` counts the notifications since it was made: a `close` before
            // the connection's first poll is still seen.
            closing_wake: Arc::clone(&self.shared.closing_wakes).notified_owned(),
            open: Open(Arc::clone(&self.shared)),
        }
    }

    /// Asks every connection to close once its request in flight is answered; idle
    /// ones close at once.
    pub(crate) fn close(&self) {
        self.shared.closing.store(true, Ordering::Release);
        self.shared.closing_wakes.notify_waiters();
    }

    /// Drops every connection still open, whatever it is doing: what the server does
    /// when they have not closed in the time it gives them after [`Drain::close`].
    pub(crate) fn abort(&self) {
        self.shared.aborting.store(true, Ordering::Release);
        self.shared.aborting_wakes.notify_waiters();
    }

    /// Completes when no connection is open.
    pub(crate) async fn closed(&self) {
        loop {
            let none_open = self.shared.none_open.notified();
            let mut none_open = std::pin::pin!(none_open);
            // Registered before the count is read, so a last connection ending in
            // between still wakes this.
            none_open.as_mut().enable();
            if self.shared.open.load(Ordering::Acquire) == 0 {
                return;
            }
            none_open.await;
        }
    }
}

/// A connection counted as open, not yet wrapped.
pub(crate) struct Entry {
    closing_wake: OwnedNotified,
    open: Open,
}

impl Entry {
    /// `conn`, closed gracefully when the [`Drain`] is closed.
    pub(crate) fn watch<C: Close>(self, conn: C) -> Drained<C> {
        Drained {
            conn,
            closing_wake: self.closing_wake,
            registered: None,
            aborting_wake: None,
            open: self.open,
        }
    }
}

/// One open connection, counted until dropped.
#[derive(Debug)]
struct Open(Arc<Shared>);

impl Drop for Open {
    fn drop(&mut self) {
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.none_open.notify_waiters();
        }
    }
}

pin_project_lite::pin_project! {
    /// A connection that closes gracefully when its [`Drain`] is closed.
    pub(crate) struct Drained<C> {
        #[pin]
        conn: C,
        #[pin]
        closing_wake: OwnedNotified,
        // The waker `closing_wake` holds, once it is registered.
        registered: Option<Waker>,
        // Once the connection has been asked to close: what wakes it if it is to be
        // dropped (boxed: made only at shutdown).
        aborting_wake: Option<Pin<Box<OwnedNotified>>>,
        open: Open,
    }
}

impl<C: Close> Future for Drained<C> {
    /// The connection's own outcome, or `None` when [`Drain::abort`] dropped it.
    type Output = Option<C::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if this.aborting_wake.is_none() {
            let mut asked = this.open.0.closing.load(Ordering::Acquire);
            // A spawned task's waker stays the same from poll to poll, so the waiter
            // list is locked once per connection, not once per request.
            if !asked
                && !this
                    .registered
                    .as_ref()
                    .is_some_and(|w| w.will_wake(cx.waker()))
            {
                asked = this.closing_wake.as_mut().poll(cx).is_ready();
                *this.registered = Some(cx.waker().clone());
            }
            if asked {
                this.conn.as_mut().close();
                *this.aborting_wake = Some(Box::pin(
                    Arc::clone(&this.open.0.aborting_wakes).notified_owned(),
                ));
            }
        }
        if let Some(aborting_wake) = this.aborting_wake {
            // Made before the flag is read: an abort in between is seen by one or the
            // other.
            if this.open.0.aborting.load(Ordering::Acquire)
                || aborting_wake.as_mut().poll(cx).is_ready()
            {
                return Poll::Ready(None);
            }
        }
        this.conn.poll(cx).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A connection that is busy until asked to close, then ends at once.
    struct Idle {
        asked: bool,
    }

    impl Future for Idle {
        type Output = ();

        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            if self.asked {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        }
    }

    impl Close for Idle {
        fn close(mut self: Pin<&mut Self>) {
            self.asked = true;
        }
    }

    #[tokio::test]
    async fn close_wakes_idle_connections_and_closed_waits_for_them() {
        let drain = Drain::new();
        let tasks: Vec<_> = (0..3)
            .map(|_| tokio::spawn(drain.enter().watch(Idle { asked: false })))
            .collect();
        // Each task runs once and registers its waker, then nothing wakes it but close.
        tokio::task::yield_now().await;
        assert_eq!(drain.shared.open.load(Ordering::Relaxed), 3);
        drain.close();
        tokio::time::timeout(Duration::from_secs(5), drain.closed())
            .await
            .expect("closed() completes once every connection ended");
        for t in tasks {
            t.await.unwrap();
        }
    }

    #[tokio::test]
    async fn a_connection_made_before_close_and_first_polled_after_it_still_closes() {
        let drain = Drain::new();
        let conn = drain.enter().watch(Idle { asked: false });
        drain.close();
        tokio::time::timeout(Duration::from_secs(5), conn)
            .await
            .expect("a close between watch and the first poll is seen");
        drain.closed().await;
    }

    /// A connection that never ends: a request in flight that is never answered.
    struct Stuck;

    impl Future for Stuck {
        type Output = ();

        fn poll(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
            Poll::Pending
        }
    }

    impl Close for Stuck {
        fn close(self: Pin<&mut Self>) {}
    }

    #[tokio::test]
    async fn abort_drops_the_connections_that_did_not_close() {
        let drain = Drain::new();
        let stuck = tokio::spawn(drain.enter().watch(Stuck));
        let idle = tokio::spawn(drain.enter().watch(Idle { asked: false }));
        tokio::task::yield_now().await;
        drain.close();
        assert_eq!(idle.await.unwrap(), Some(()));
        assert!(
            tokio::time::timeout(Duration::from_millis(200), drain.closed())
                .await
                .is_err(),
            "a connection that does not close keeps closed() waiting"
        );
        drain.abort();
        tokio::time::timeout(Duration::from_secs(5), drain.closed())
            .await
            .expect("closed() completes once the stuck connection is dropped");
        assert_eq!(stuck.await.unwrap(), None);
    }

    #[tokio::test]
    async fn closed_is_immediate_with_no_connection() {
        let drain = Drain::new();
        drop(drain.enter().watch(Idle { asked: false }));
        drain.close();
        drain.closed().await;
    }
}
