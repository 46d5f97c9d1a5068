//! TLS for the tests: a CA of their own and a certificate for 127.0.0.1 it signed,
//! made with `openssl`; [`HttpsServer`], `openssl s_server` answering HTTPS with that
//! certificate, for a client's certificate checks; and [`TlsTerminator`], TLS in front
//! of a server, as a deployment puts it there.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::net::{free_port, temp_dir};
use crate::process::{call_off, stop_child, watchdog};

/// The CA's certificate (PEM), in the directory given to [`certificates`].
pub const CA: &str = "ca.crt";
/// The certificate for 127.0.0.1 (PEM).
pub const CERTIFICATE: &str = "server.crt";
/// Its private key (PEM).
pub const KEY: &str = "server.key";

const NOT_INSTALLED: &str =
    "openssl is not installed (or not on PATH): run scripts/install-test-deps.sh";

/// A CA ([`CA`]) and a certificate for 127.0.0.1 it signed ([`CERTIFICATE`], [`KEY`])
/// in `dir`, made with `openssl` unless there already; P-256 keys, valid two days.
pub fn certificates(dir: &Path) -> io::Result<()> {
    if dir.join(CERTIFICATE).exists() {
        return Ok(());
    }
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n")?;
    let key = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let steps: [Vec<&str>; 3] = [
        [
            &["req", "-x509"][..],
            &key,
            &[
                "-keyout",
                "ca.key",
                "-out",
                CA,
                "-days",
                "2",
                "-subj",
                "/CN=deviceflow test CA",
            ],
        ]
        .concat(),
        [
            &["req"][..],
            &key,
            &[
                "-keyout",
                KEY,
                "-out",
                "server.csr",
                "-subj",
                "/CN=127.0.0.1",
            ],
        ]
        .concat(),
        vec![
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            CA,
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            CERTIFICATE,
            "-days",
            "2",
            "-extfile",
            "san.ext",
        ],
    ];
    for args in steps {
        let out = match Command::new("openssl")
            .args(&args)
            .current_dir(dir)
            .output()
        {
            Ok(out) => out,
            Err(e) if e.kind() == io::ErrorKind::NotFound => panic!("{NOT_INSTALLED}"),
            Err(e) => return Err(e),
        };
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "openssl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            )));
        }
    }
    Ok(())
}

/// `openssl s_server -www` on a free loopback port, in a temporary directory of its
/// own, with [`certificates`]: it answers every HTTPS request with 200 and a page
/// about the TLS session. Killed, and its directory removed, when dropped.
pub struct HttpsServer {
    port: u16,
    dir: PathBuf,
    child: Option<Child>,
    watchdog: Option<Child>,
}

impl HttpsServer {
    /// Starts it and waits until its port accepts connections.
    pub fn start() -> io::Result<HttpsServer> {
        HttpsServer::start_with(&[])
    }

    /// One that asks every client for a certificate its CA signed (mutual TLS); with
    /// TLS 1.3 a client learns it only after the handshake, from an alert.
    pub fn start_asking_for_client_certificates() -> io::Result<HttpsServer> {
        HttpsServer::start_with(&["-Verify", "1", "-CAfile", CA])
    }

    fn start_with(extra: &[&str]) -> io::Result<HttpsServer> {
        let dir = temp_dir("https")?;
        certificates(&dir)?;
        let port = free_port()?;
        let child = match Command::new("openssl")
            .args(["s_server", "-www", "-quiet", "-accept", &port.to_string()])
            .args(["-cert", CERTIFICATE, "-key", KEY])
            .args(extra)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        {
            Ok(child) => child,
            Err(e) if e.kind() == io::ErrorKind::NotFound => panic!("{NOT_INSTALLED}"),
            Err(e) => return Err(e),
        };
        let watchdog = Some(watchdog(child.id())?);
        let mut server = HttpsServer {
            port,
            dir,
            child: Some(child),
            watchdog,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(child) = server.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    return Err(io::Error::other(format!(
                        "openssl s_server exited: {status}"
                    )));
                }
            }
            if Instant::now() > deadline {
                return Err(io::Error::other("openssl s_server did not listen in 10 s"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(server)
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The certificate (PEM) of the CA that signed its certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join(CA)
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = stop_child(&mut child, Duration::from_secs(5));
        }
        call_off(self.watchdog.take());
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A TLS terminator, as an operator puts in front of a server: it accepts TLS on
/// 127.0.0.1:`port` with the certificate for 127.0.0.1 in `certs` (made by
/// [`certificates`]) and forwards the bytes to `upstream`, counting the handshakes
/// that complete. In this process, on a thread of its own; stops when dropped.
pub struct TlsTerminator {
    port: u16,
    handshakes: Arc<AtomicUsize>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl TlsTerminator {
    /// Starts it and waits until it listens.
    pub fn start(certs: &Path, port: u16, upstream: SocketAddr) -> io::Result<TlsTerminator> {
        let chain = CertificateDer::pem_file_iter(certs.join(CERTIFICATE))
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(io::Error::other)?;
        let key = PrivateKeyDer::from_pem_file(certs.join(KEY)).map_err(io::Error::other)?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(io::Error::other)?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&handshakes);
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, listening) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::bind(("127.0.0.1", port)).await {
                    Ok(l) => {
                        let _ = ready.send(Ok(()));
                        l
                    }
                    Err(e) => {
                        let _ = ready.send(Err(e));
                        return;
                    }
                };
                let accept = async {
                    loop {
                        let Ok((tcp, _)) = listener.accept().await else {
                            continue;
                        };
                        let acceptor = acceptor.clone();
                        let counted = Arc::clone(&counted);
                        tokio::spawn(async move {
                            let Ok(mut tls) = acceptor.accept(tcp).await else {
                                return;
                            };
                            counted.fetch_add(1, Ordering::Relaxed);
                            let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await
                            else {
                                return;
                            };
                            let _ = tokio::io::copy_bidirectional(&mut tls, &mut server).await;
                        });
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stopped => {}
                }
            });
            rt.shutdown_background();
        });
        listening
            .recv()
            .map_err(|_| io::Error::other("the TLS terminator's thread ended"))??;
        Ok(TlsTerminator {
            port,
            handshakes,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("https://127.0.0.1:{}", self.port)
    }

    /// The TLS handshakes completed so far.
    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::Relaxed)
    }
}

impl Drop for TlsTerminator {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
