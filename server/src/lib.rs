//! deviceflow-server: an OAuth 2.0 Device Authorization Grant (RFC 8628)
//! authorization server.
//!
//! The library is the server: [`run`] serves a [`Settings`] on a bound listener until
//! a shutdown future completes; [`serve`] does the same for an [`App`] built by the
//! caller (tests build one on a manual [`Clock`]). The binary (`main.rs`) only reads
//! flags and configuration, binds, and waits for a signal.
//!
//! Where things are, by concept:
//! - `protocol/`: the RFC 8628 vocabulary and state machine, no I/O: device and user
//!   codes, scopes, and the session whose `poll` answers every device (§3.5).
//! - `storage/`: where state lives: the [`Store`] seam, its in-memory and Redis
//!   backends, the token rules both apply.
//! - `accounts/`: the configured clients and how they authenticate; the people and
//!   their passwords.
//! - `app/`: the [`App`] state every handler runs on, the router, the `/metrics`
//!   counters.
//! - `http/`: connections, reading requests, spelling answers; nothing of the app.
//! - `endpoints/`: one module per OAuth endpoint; `verification/`: the person's pages.
//! - `config/`, `clock.rs`, `expiry.rs` (the expiry wheel every store map uses),
//!   `quota.rs` (device authorization quotas), `audit.rs` (the audit log).
//!
//! The dependencies mostly run downhill: `app::router` → `endpoints`,
//! `verification` → `app::state` → `storage`, `accounts` → `protocol` → `clock`, and
//! every folder to `http/`; README.md ("How it is built") names the imports that still
//! point back up.

#![warn(missing_docs, unreachable_pub)]

pub mod accounts;
mod app;
mod audit;
pub mod clock;
pub mod config;
mod endpoints;
mod expiry;
pub mod http;
pub mod protocol;
pub mod quota;
mod shards;
pub mod storage;
pub mod verification;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deviceflow_reports::errln;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpSocket};

use app::metrics::Throttle;
use http::connection::{Exchanges, TimedStream, Timeouts};
use http::drain::Drain;
use http::sources::{self, SourceConnections};
use storage::clock_offset;

pub use app::state::{App, NO_PEER};
pub use clock::{Clock, Millis};
pub use config::{FileConfig, Settings, StoreConfig};
pub use storage::{MemoryStore, RedisStore, Store};

/// Due entries the sweeper looks at before it lets other tasks run: about a
/// millisecond of work.
const SWEEP_SLICE: usize = 4_096;

/// Sweeper ticks (seconds) between two comparisons of this instance's clock with a
/// shared store's ([`storage::clock_offset`]).
const CLOCK_CHECK_TICKS: u64 = 60;

/// What is in `now` and not in `before`, and what is in `before` and not in `now`.
fn changes<'a>(before: &'a [String], now: &'a [String]) -> (Vec<&'a String>, Vec<&'a String>) {
    let appeared = now.iter().filter(|w| !before.contains(w)).collect();
    let gone = before.iter().filter(|w| !now.contains(w)).collect();
    (appeared, gone)
}

/// How long in-flight requests get to finish after shutdown is asked for.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// The issuer for a server bound to `listener`: the configured one, or
/// `http://<bound address>`.
pub fn issuer_for(settings: &Settings, listener: &TcpListener) -> std::io::Result<String> {
    match &settings.issuer {
        Some(issuer) => Ok(issuer.clone()),
        None => Ok(format!("http://{}", listener.local_addr()?)),
    }
}

/// The most a connection's read buffer may hold (hyper's `max_buf_size`; its default
/// is about 400 KiB): a request head that does not fit is refused (431), and no
/// connection keeps more than this between requests. A head here is well under a
/// kilobyte (a form's fields are in its body, read in chunks whatever its size);
/// with hyper's default, one source's idle connections, each left with a buffer grown
/// by one large head, held 180 KB each for their keep-alive life.
pub const MAX_READ_BUFFER: usize = 16 * 1024;

/// How many connections the kernel may hold for the server before it accepts them
/// (capped by `net.core.somaxconn`, 4096 by default since Linux 5.4). tokio's
/// `TcpListener::bind` asks for 128: past that, a fleet connecting at once (after a
/// restart, say) has its handshakes dropped and its SYNs sent again a second later.
pub const LISTEN_BACKLOG: u32 = 4096;

/// Listens on `addr` with [`LISTEN_BACKLOG`] (and `SO_REUSEADDR`, as tokio's `bind`
/// sets it). Call within a tokio runtime.
pub fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(LISTEN_BACKLOG)
}

/// Serves `settings` on `listener`, on the system clock and the store it names (in
/// memory, or Redis: connected here, so that an unreachable Redis is said before the
/// first request), until `shutdown` completes; then stops accepting and lets requests
/// in flight finish.
pub async fn run(
    listener: TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    run_announced(listener, settings, |_| {}, shutdown).await
}

/// [`run`], calling `ready` with the issuer once the store is connected, before the
/// first request is served: what the binary prints as "listening", so that a
/// supervisor never reads it from a server about to exit for want of its Redis.
pub async fn run_announced(
    listener: TcpListener,
    settings: Settings,
    ready: impl FnOnce(&str),
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let issuer = issuer_for(&settings, &listener)?;
    match &settings.store {
        StoreConfig::Memory => {
            ready(&issuer);
            let app = Arc::new(App::new(settings, issuer, Clock::System));
            serve(listener, app, shutdown).await
        }
        StoreConfig::Redis(url) => {
            let store = RedisStore::connect(url, &settings.store_settings())
                .await
                .map_err(std::io::Error::other)?;
            for warning in store.warnings().await {
                tracing::warn!("{warning}");
            }
            ready(&issuer);
            let app = Arc::new(App::with_store(settings, issuer, Clock::System, store));
            serve(listener, app, shutdown).await
        }
    }
}

pin_project_lite::pin_project! {
    /// What hyper's service must answer, a `Result`, for a future that never fails: no
    /// async block of its own around every request's future. It also counts the answer
    /// for the connection's deadlines ([`Exchanges`]).
    struct NeverFails<'a, F> {
        #[pin]
        answer: F,
        exchanges: &'a Exchanges,
    }
}

impl<F: Future> Future for NeverFails<'_, F> {
    type Output = Result<F::Output, Infallible>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let answer = std::task::ready!(this.answer.poll(cx));
        this.exchanges.answered();
        std::task::Poll::Ready(Ok(answer))
    }
}

/// Serves `app` on `listener` until `shutdown` completes. Also runs the sweeper that
/// removes expired sessions and tokens once a second.
pub async fn serve<S: Store>(
    listener: TcpListener,
    app: Arc<App<S>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let drain = Drain::new();
    let timeouts = Timeouts {
        idle: Duration::from_millis(app.settings.idle_timeout_ms),
        head: Duration::from_millis(app.settings.header_read_timeout_ms),
    };
    let sweeper = tokio::spawn({
        let app = Arc::clone(&app);
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut clock = clock_offset::Watch::default();
            // The store's warnings as last read: said at start (`run`), and again
            // when one appears or goes while the server runs.
            let mut said: Option<Vec<String>> = None;
            for ticks in 0u64.. {
                tick.tick().await;
                // In slices, yielding between them: a million sessions that fall due in
                // one tick never stall the worker this runs on.
                while app.sweep(SWEEP_SLICE) {
                    tokio::task::yield_now().await;
                }
                // At start, then once a minute. A shared store's sweep is only this
                // (Redis expires keys by itself), so the call's wait delays no sweep.
                if ticks % CLOCK_CHECK_TICKS == 0 {
                    if let Ok(Some(offset)) = app.clock_offset().await {
                        match clock.observe(offset, &app.settings.poll) {
                            Some(clock_offset::Change::Over(warning)) => {
                                tracing::warn!(offset_ms = offset, "{warning}");
                            }
                            Some(clock_offset::Change::Within(now)) => tracing::info!(
                                offset_ms = offset,
                                "this instance's clock is back within bounds: {now} the shared store's"
                            ),
                            None => {}
                        }
                    }
                    let now = app.store.warnings().await;
                    if let Some(before) = &said {
                        let (appeared, gone) = changes(before, &now);
                        for warning in appeared {
                            tracing::warn!("{warning}");
                        }
                        for warning in gone {
                            tracing::info!("no longer so: {warning}");
                        }
                    }
                    said = Some(now);
                }
            }
        }
    });
    let mut shutdown = std::pin::pin!(shutdown);
    let mut accept_failures = audit::Failures::default();
    let per_source = SourceConnections::new(app.settings.max_connections_per_source);
    let mut refusals = audit::Failures::default();
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning,
                    // and say so at most once a second (a line every 50 ms for as long
                    // as an attack holds the descriptors would fill the log instead).
                    if let Some(unsaid) = accept_failures.failed(Instant::now()) {
                        errln!("deviceflow-server: accept failed: {e}{unsaid}");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let peer = peer.ip();
        let held = match &per_source {
            // A trusted reverse proxy carries many clients' connections: its own are
            // not capped (its clients are, by the quotas, by the address it forwards).
            Some(_) if app.settings.trusted_proxies.trusts(peer) => None,
            None => None,
            Some(sources) => match sources.enter(peer) {
                held @ Some(_) => held,
                None => {
                    // Told why if its socket takes the answer at once, and closed; its
                    // request, if any came yet, is not read.
                    let _ = stream.try_write(sources::REFUSED);
                    app.metrics.throttled(Throttle::Connections);
                    if let Some(refused) = refusals.failed_count(Instant::now()) {
                        audit::connections_refused(peer, sources.cap(), refused);
                    }
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let app = Arc::clone(&app);
        let entry = drain.enter();
        tokio::spawn(async move {
            // Counted against its source until the connection closes.
            let _held = held;
            // The task owns one reference to the app for the whole connection, and each
            // request borrows it: no reference count written per request, on a cache
            // line every core would share.
            let app = &*app;
            // Slowloris: a client that does not finish its request head in time is
            // cut off; an idle keep-alive connection lasts well beyond the poll
            // interval. Both below hyper, whose own header timer would also cut idle
            // connections; the service tells the stream when a request is in and when
            // it is answered.
            let exchanges = Exchanges::default();
            let stream = TimedStream::new(stream, timeouts, exchanges.clone());
            let exchanges = &exchanges;
            let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                exchanges.started();
                NeverFails {
                    answer: app.handle(req, peer),
                    exchanges,
                }
            });
            let conn = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(None)
                .max_buf_size(MAX_READ_BUFFER)
                // A client that shuts its side once its request is sent (`nc -N`, some
                // HTTP/1.0 clients) still gets its answer (RFC 9112 §9.6).
                .half_close(true)
                .serve_connection(TokioIo::new(stream), service);
            // Connection errors (resets, timeouts) concern one client only.
            let _ = entry.watch(conn).await;
        });
    }
    drop(listener);
    sweeper.abort();
    drain.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, drain.closed())
        .await
        .is_err()
    {
        errln!("deviceflow-server: connections still open after {DRAIN_TIMEOUT:?}; closing them");
        drain.abort();
        drain.closed().await;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::changes;

    #[test]
    fn a_store_warning_is_said_when_it_appears_and_when_it_goes() {
        let (eviction, persistence) = ("may drop keys".to_owned(), "no appendonly".to_owned());
        let before = vec![persistence.clone()];
        let now = vec![eviction.clone()];
        assert_eq!(
            changes(&before, &now),
            (vec![&eviction], vec![&persistence])
        );
        assert_eq!(changes(&now, &now), (vec![], vec![]));
    }
}
