//! The devices' HTTP/1.1 transport: keep-alive connections on hyper's client
//! connection API, a bounded pool per target, and failed sends sorted by cause.
//!
//! A transport error is the generator's failure to reach the server (refused, reset,
//! timed out, out of file descriptors...). It is never a poll and never a violation:
//! the server gave no answer to judge. Owns no device logic; `lane.rs` decides what to
//! send and when.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE, HOST};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};

/// Why a request got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Nothing listens at the address (ECONNREFUSED).
    Refused,
    /// The connection was reset or broke while the request was out.
    Reset,
    /// The server closed the connection before a whole answer.
    Closed,
    /// No whole answer within the request timeout.
    Timeout,
    /// The generator ran out of file descriptors (EMFILE/ENFILE).
    FdLimit,
    /// No local port or address to connect from (EADDRNOTAVAIL).
    NoLocalPort,
    /// Anything else (its message is kept as the cause's example).
    Other,
}

impl Cause {
    pub const ALL: [Cause; 7] = [
        Cause::Refused,
        Cause::Reset,
        Cause::Closed,
        Cause::Timeout,
        Cause::FdLimit,
        Cause::NoLocalPort,
        Cause::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Cause::Refused => "connection refused",
            Cause::Reset => "connection reset",
            Cause::Closed => "closed before an answer",
            Cause::Timeout => "timed out",
            Cause::FdLimit => "out of file descriptors",
            Cause::NoLocalPort => "no local port",
            Cause::Other => "other",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    fn of_io(e: &std::io::Error) -> Cause {
        use std::io::ErrorKind::*;
        match (e.kind(), e.raw_os_error()) {
            (_, Some(23 | 24)) => Cause::FdLimit,
            (_, Some(99)) | (AddrNotAvailable, _) => Cause::NoLocalPort,
            (ConnectionRefused, _) => Cause::Refused,
            (ConnectionReset | ConnectionAborted | BrokenPipe, _) => Cause::Reset,
            (TimedOut, _) => Cause::Timeout,
            (UnexpectedEof, _) => Cause::Closed,
            _ => Cause::Other,
        }
    }

    fn of_hyper(e: &hyper::Error) -> Cause {
        if e.is_timeout() {
            return Cause::Timeout;
        }
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            if let Some(io) = s.downcast_ref::<std::io::Error>() {
                return Cause::of_io(io);
            }
            source = s.source();
        }
        if e.is_incomplete_message() || e.is_closed() || e.is_canceled() {
            Cause::Closed
        } else {
            Cause::Other
        }
    }
}

/// A failed send: its cause and a one-line description.
#[derive(Debug, Clone)]
pub struct TransportError {
    pub cause: Cause,
    pub message: String,
}

impl TransportError {
    fn io(e: &std::io::Error) -> TransportError {
        TransportError {
            cause: Cause::of_io(e),
            message: e.to_string(),
        }
    }

    fn hyper(e: &hyper::Error) -> TransportError {
        let mut message = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        TransportError {
            cause: Cause::of_hyper(e),
            message,
        }
    }
}

/// A whole answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Bytes,
}

/// One target (a `--host`): where to connect and what to put in `Host`.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: HeaderValue,
}

/// What to send: a form POST to a path of a target.
pub struct Form {
    pub path: String,
    pub body: String,
    pub authorization: Option<HeaderValue>,
}

/// The result of one exchange, and the connection to give back to the pool.
pub struct Exchange {
    pub connection: Option<SendRequest<Full<Bytes>>>,
    pub result: Result<Answer, TransportError>,
    /// When the request went out (after any wait for a connection), and when the
    /// answer was whole.
    pub sent: Instant,
    pub done: Instant,
    /// The pooled connection had been closed before the request was written, and the
    /// request was sent again on a new one.
    pub retried_unsent: bool,
    /// A new connection was opened for it.
    pub opened: bool,
}

const FORM: HeaderValue = HeaderValue::from_static("application/x-www-form-urlencoded");

fn request(target: &Target, form: &Form) -> Request<Full<Bytes>> {
    let mut req = Request::new(Full::new(Bytes::from(form.body.clone())));
    *req.method_mut() = Method::POST;
    *req.uri_mut() = form.path.parse().unwrap_or_default();
    let h = req.headers_mut();
    h.insert(HOST, target.host.clone());
    h.insert(CONTENT_TYPE, FORM);
    if let Some(a) = &form.authorization {
        h.insert(AUTHORIZATION, a.clone());
    }
    req
}

async fn open(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>, TransportError> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| TransportError::io(&e))?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| TransportError::hyper(&e))?;
    tokio::spawn(async move {
        // Ends when the server closes the connection or the pool drops the sender; a
        // request in flight sees the error itself.
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends `form` on `connection` (or a new one) and reads the whole answer within
/// `timeout`. A request the pooled connection never wrote (the server closed it while
/// idle, say after its keep-alive timeout) is sent once more on a new connection: it
/// never reached the server, so repeating it cannot double anything.
pub async fn exchange(
    connection: Option<SendRequest<Full<Bytes>>>,
    target: Target,
    form: Form,
    timeout: Duration,
) -> Exchange {
    let sent = Instant::now();
    let mut retried_unsent = false;
    let mut opened = false;
    let mut connection = connection.filter(|c| !c.is_closed());
    let work = async {
        let mut req = request(&target, &form);
        loop {
            let mut sender = match connection.take() {
                Some(s) => s,
                None => {
                    opened = true;
                    open(target.addr).await?
                }
            };
            if sender.ready().await.is_err() {
                if retried_unsent {
                    return Err(TransportError {
                        cause: Cause::Closed,
                        message: "the connection closed before the request was sent".into(),
                    });
                }
                retried_unsent = true;
                continue;
            }
            match sender.try_send_request(req).await {
                Ok(res) => {
                    let status = res.status().as_u16();
                    let body = res
                        .into_body()
                        .collect()
                        .await
                        .map_err(|e| TransportError::hyper(&e))?
                        .to_bytes();
                    connection = Some(sender);
                    return Ok(Answer { status, body });
                }
                Err(mut e) => match e.take_message() {
                    Some(unsent) if !retried_unsent => {
                        retried_unsent = true;
                        req = unsent;
                    }
                    _ => return Err(TransportError::hyper(e.error())),
                },
            }
        }
    };
    let result = match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(TransportError {
            cause: Cause::Timeout,
            message: format!("no whole answer within {} s", timeout.as_secs()),
        }),
    };
    Exchange {
        connection: if result.is_ok() { connection } else { None },
        result,
        sent,
        done: Instant::now(),
        retried_unsent,
        opened,
    }
}

/// A plain GET on a new connection (the `/metrics` scrape), within `timeout`.
pub async fn get(target: &Target, path: &str, timeout: Duration) -> Result<Answer, TransportError> {
    let work = async {
        let mut sender = open(target.addr).await?;
        let mut req = Request::new(Full::new(Bytes::new()));
        *req.uri_mut() = path.parse().unwrap_or_default();
        req.headers_mut().insert(HOST, target.host.clone());
        let res = sender
            .send_request(req)
            .await
            .map_err(|e| TransportError::hyper(&e))?;
        let status = res.status().as_u16();
        let body = res
            .into_body()
            .collect()
            .await
            .map_err(|e| TransportError::hyper(&e))?
            .to_bytes();
        Ok(Answer { status, body })
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| {
            Err(TransportError {
                cause: Cause::Timeout,
                message: format!("no whole answer within {} s", timeout.as_secs()),
            })
        })
}

/// Resolves `http://host:port` to a target (the generator speaks plain HTTP/1.1).
pub fn target_of(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("{url}: the load generator speaks plain http:// only"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let with_port = if authority.contains(':') {
        authority.to_owned()
    } else {
        format!("{authority}:80")
    };
    use std::net::ToSocketAddrs;
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("{url}: cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url}: {authority} resolves to no address"))?;
    let host = HeaderValue::from_str(authority)
        .map_err(|_| format!("{url}: {authority} is not a valid Host"))?;
    Ok(Target { addr, host })
}

/// The path (and query) of an endpoint URL.
pub fn path_of(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    match rest.find('/') {
        Some(i) => rest[i..].to_owned(),
        None => "/".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn causes_come_from_the_os_error() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(Cause::of_io(&refused), Cause::Refused);
        assert_eq!(
            Cause::of_io(&std::io::Error::from_raw_os_error(24)),
            Cause::FdLimit
        );
        assert_eq!(
            Cause::of_io(&std::io::Error::from_raw_os_error(99)),
            Cause::NoLocalPort
        );
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        assert_eq!(Cause::of_io(&reset), Cause::Reset);
    }

    #[test]
    fn urls_split_into_target_and_path() {
        let t = target_of("http://127.0.0.1:8080/oauth/token").unwrap();
        assert_eq!(t.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(t.host, "127.0.0.1:8080");
        assert_eq!(
            path_of("http://127.0.0.1:8080/oauth/token?x=1"),
            "/oauth/token?x=1"
        );
        assert_eq!(path_of("http://127.0.0.1:8080"), "/");
        assert!(target_of("https://example.com")
            .unwrap_err()
            .contains("plain http"));
    }

    /// A server that answers one request per connection with keep-alive, then closes
    /// the connection 50 ms later, as a server does with an idle one.
    fn closing_server() -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let a = accepted.clone();
        std::thread::spawn(move || {
            for stream in l.incoming() {
                let mut s = stream.unwrap();
                a.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf);
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok");
                std::thread::sleep(Duration::from_millis(50));
                drop(s);
            }
        });
        (addr, accepted)
    }

    #[tokio::test]
    async fn a_request_after_the_server_closed_the_idle_connection_goes_out_on_a_new_one() {
        let (addr, accepted) = closing_server();
        let target = target_of(&format!("http://{addr}")).unwrap();
        let form = || Form {
            path: "/".into(),
            body: "x=1".into(),
            authorization: None,
        };
        let first = exchange(None, target.clone(), form(), Duration::from_secs(2)).await;
        assert_eq!(first.result.unwrap().status, 200);
        let pooled = first.connection.expect("kept alive");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = exchange(Some(pooled), target, form(), Duration::from_secs(2)).await;
        let answer = second.result.expect("sent again on a new connection");
        assert_eq!((answer.status, second.opened), (200, true));
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_transport_error_by_cause() {
        // A port that was just free: nothing listens there.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let target = target_of(&format!("http://{addr}")).unwrap();
        let form = Form {
            path: "/oauth/token".into(),
            body: "x=1".into(),
            authorization: None,
        };
        let x = exchange(None, target, form, Duration::from_secs(2)).await;
        let e = x.result.unwrap_err();
        assert_eq!(e.cause, Cause::Refused, "{}", e.message);
        assert!(x.opened && x.connection.is_none());
    }
}
