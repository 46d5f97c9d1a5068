//! `ceiling`: the fastest possible answer to a device access token poll on our stack.
//!
//! A bare hyper 1 HTTP/1 server with the connection settings of `deviceflow-server`
//! (`serve` in server/src/lib.rs: nodelay, `TokioTimer`, the same header read timeout)
//! on the same runtime (multi-thread tokio). For every request it reads the whole body
//! and answers what our server answers a pending poll ([`CeilingAnswer`]: status,
//! headers and body taken from our own response code, so the bytes on the wire are
//! identical). What it skips is all of our work: routing, the content-type check, the
//! form, client authentication, the store, the clock, metrics.
//!
//! Its requests per second are therefore the honest upper bound of any poll path on
//! hyper; `ceiling.sh` compares our server against it with wrk. A device authorization
//! request is answered, just as blindly, with the bytes of one of our device
//! authorization responses, the ceiling of issuance (`cores.sh`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use deviceflow_benches::CeilingAnswer;
use deviceflow_reports::{errln, outln};
use deviceflow_server::config::LimitsConfig;
use deviceflow_server::http::paths;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};

const DEFAULT_LISTEN: &str = "127.0.0.1:18090";
const USAGE: &str = "usage: ceiling [--listen ADDR]   (default 127.0.0.1:18090)";

fn main() {
    if let Err(e) = real_main() {
        errln!("ceiling: {e:#}");
        std::process::exit(1);
    }
}

fn real_main() -> anyhow::Result<()> {
    let listen = parse_args(std::env::args().skip(1))?;
    // As deviceflow-server's main.rs: a multi-thread runtime, one worker per usable core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(serve(listen))
}

fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<SocketAddr> {
    let mut listen = DEFAULT_LISTEN.to_owned();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "-h" | "--help" => {
                outln!("{USAGE}")?;
                std::process::exit(0);
            }
            "--listen" => listen = args.next().context("--listen needs an address")?,
            other => match other.strip_prefix("--listen=") {
                Some(v) => listen = v.to_owned(),
                None => anyhow::bail!("unexpected argument {other:?}\n{USAGE}"),
            },
        }
    }
    listen
        .parse()
        .with_context(|| format!("{listen:?} is not a socket address"))
}

async fn serve(listen: SocketAddr) -> anyhow::Result<()> {
    let poll: &'static CeilingAnswer = Box::leak(Box::new(CeilingAnswer::from_ours().await));
    let issuance: &'static CeilingAnswer =
        Box::leak(Box::new(CeilingAnswer::issuance_from_ours().await));
    let header_timeout = Duration::from_millis(LimitsConfig::default().header_read_timeout_ms);
    // The same accept backlog as ours, so that neither drops a burst of handshakes.
    let listener =
        deviceflow_server::listen(listen).with_context(|| format!("cannot listen on {listen}"))?;
    errln!("ceiling listening on {}", listener.local_addr()?);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                errln!("ceiling: accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = service_fn(move |req: Request<Incoming>| async move {
            // One comparison routes issuance (`cores.sh` measures it too); everything
            // else is answered as a pending poll.
            let answer = if req.uri().path() == paths::DEVICE_AUTHORIZATION {
                issuance
            } else {
                poll
            };
            Ok::<_, Infallible>(answer.answer(req).await)
        });
        let conn = http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(header_timeout)
            .serve_connection(TokioIo::new(stream), service);
        tokio::spawn(async move {
            let _ = conn.await;
        });
    }
}
