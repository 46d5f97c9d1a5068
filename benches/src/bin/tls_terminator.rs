//! `tls-terminator PORT UPSTREAM DIR`: TLS in front of a server, as a deployment puts it
//! there, for `loadgen/bench.sh` with `TLS=1`. It accepts TLS on 127.0.0.1:PORT with a
//! certificate for 127.0.0.1 that a CA of its own signed (made with `openssl` in DIR,
//! the CA's certificate in DIR/ca.crt, for the client's SSL_CERT_FILE), and forwards the
//! bytes to UPSTREAM. testkit's `TlsTerminator`, as a process; it stops on SIGTERM or
//! Ctrl-C, saying how many handshakes it completed.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{bail, Context};
use deviceflow_reports::{errln, outln};
use deviceflow_testkit::tls::{certificates, TlsTerminator};

fn main() {
    if let Err(e) = run() {
        errln!("tls-terminator: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [port, upstream, dir] = args.as_slice() else {
        bail!("usage: tls-terminator PORT UPSTREAM DIR (e.g. 8443 127.0.0.1:8080 /tmp/certs)");
    };
    let port: u16 = port
        .parse()
        .with_context(|| format!("PORT {port:?} is not a port number"))?;
    let upstream: SocketAddr = upstream
        .parse()
        .with_context(|| format!("UPSTREAM {upstream:?} is not an address like 127.0.0.1:8080"))?;
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    certificates(&dir).context("making the certificates with openssl")?;
    let terminator = TlsTerminator::start(&dir, port, upstream)
        .with_context(|| format!("cannot listen on 127.0.0.1:{port}"))?;
    outln!(
        "tls-terminator: {} in front of {upstream}",
        terminator.url()
    )?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                _ = term.recv() => {}
                r = tokio::signal::ctrl_c() => r?,
            }
            anyhow::Ok(())
        })?;
    outln!("tls-terminator: {} handshakes", terminator.handshakes())?;
    Ok(())
}
