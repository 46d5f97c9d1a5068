//! The devices' HTTP/1.1 transport: keep-alive connections, each read and written by
//! the lane that sends on it, a bounded pool per target (in `lane/connections.rs`), and failed
//! sends sorted by cause. Responses are parsed with `httparse` (hyper's parser);
//! hyper's own client costs about twice the CPU per request here (README, "Scale").
//!
//! A transport error is the generator's failure to reach the server (refused, reset,
//! timed out, out of file descriptors...). It is never a poll and never a violation:
//! the server gave no answer to judge. Owns no device logic; `lane/` decides what to
//! send and when.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

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
    /// An answer that is not HTTP/1.1 as this client reads it.
    Malformed,
    /// Anything else (its message is kept as the cause's example).
    Other,
}

impl Cause {
    pub const ALL: [Cause; 8] = [
        Cause::Refused,
        Cause::Reset,
        Cause::Closed,
        Cause::Timeout,
        Cause::FdLimit,
        Cause::NoLocalPort,
        Cause::Malformed,
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
            Cause::Malformed => "malformed answer",
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

    fn new(cause: Cause, message: impl Into<String>) -> TransportError {
        TransportError {
            cause,
            message: message.into(),
        }
    }
}

/// A whole answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One target (a `--host`): where to connect and what to put in `Host`.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: Arc<str>,
}

/// A keep-alive HTTP/1.1 connection, read and written by the task that sends on it
/// (no connection task, no channel: one request costs a write, a read and a wake-up).
#[derive(Debug)]
pub struct Connection {
    stream: TcpStream,
    buf: Vec<u8>,
    /// The server said `Connection: close` (or spoke HTTP/1.0): no next request.
    spent: bool,
}

/// The result of one exchange, and the connection to give back to the pool.
pub struct Exchange {
    pub connection: Option<Connection>,
    pub result: Result<Answer, TransportError>,
    /// When the request went out (after any wait for a connection), and when the
    /// answer was whole.
    pub sent: Instant,
    pub done: Instant,
    /// The pooled connection had been closed by the server before the request was
    /// written, and the request went out on a new one.
    pub retried_unsent: bool,
    /// A new connection was opened for it.
    pub opened: bool,
    /// The request's buffer, for the next request.
    pub request: Vec<u8>,
}

async fn open(addr: SocketAddr) -> Result<Connection, TransportError> {
    let stream = TcpStream::connect(addr)
        .await
        .map_err(|e| TransportError::io(&e))?;
    let _ = stream.set_nodelay(true);
    Ok(Connection {
        stream,
        buf: Vec::with_capacity(1024),
        spent: false,
    })
}

impl Connection {
    /// Whether the server has closed this idle connection (or sent something
    /// unasked): then it must not carry a request.
    fn is_closed(&self) -> bool {
        let mut probe = [0u8; 1];
        !matches!(self.stream.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }

    async fn send(&mut self, request: &[u8]) -> Result<Answer, TransportError> {
        self.stream
            .write_all(request)
            .await
            .map_err(|e| TransportError::io(&e))?;
        self.buf.clear();
        loop {
            if let Some(answer) = self.parse()? {
                return Ok(answer);
            }
            if self.buf.len() > 64 * 1024 {
                return Err(TransportError::new(
                    Cause::Malformed,
                    "an answer over 64 KiB",
                ));
            }
            self.buf.reserve(4096);
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| TransportError::io(&e))?;
            if n == 0 {
                return Err(TransportError::new(
                    Cause::Closed,
                    "the server closed the connection before a whole answer",
                ));
            }
        }
    }

    /// A whole answer in the buffer, if there is one yet.
    fn parse(&mut self) -> Result<Option<Answer>, TransportError> {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut res = httparse::Response::new(&mut headers);
        let head = match res.parse(&self.buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(e) => {
                return Err(TransportError::new(
                    Cause::Malformed,
                    format!("an answer that is not HTTP/1.1: {e}"),
                ))
            }
        };
        let status = res.code.unwrap_or(0);
        let mut length = None;
        let mut chunked = false;
        let mut close = res.version == Some(0);
        for h in res.headers.iter() {
            if h.name.eq_ignore_ascii_case("content-length") {
                length = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok());
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = h.value.eq_ignore_ascii_case(b"chunked");
            } else if h.name.eq_ignore_ascii_case("connection") {
                close = h.value.eq_ignore_ascii_case(b"close");
            }
        }
        let body = &self.buf[head..];
        let body = if chunked {
            match dechunk(body)? {
                Some(b) => b,
                None => return Ok(None),
            }
        } else {
            let Some(length) = length else {
                return Err(TransportError::new(
                    Cause::Malformed,
                    "an answer without Content-Length",
                ));
            };
            if body.len() < length {
                return Ok(None);
            }
            body[..length].to_vec()
        };
        self.spent = close;
        Ok(Some(Answer { status, body }))
    }
}

/// A chunked body, whole, or `None` while more is to come.
fn dechunk(mut data: &[u8]) -> Result<Option<Vec<u8>>, TransportError> {
    let bad = || TransportError::new(Cause::Malformed, "a chunked body that does not parse");
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&data[..eol]).map_err(|_| bad())?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad())?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(data.windows(2).any(|w| w == b"\r\n").then_some(out));
        }
        if data.len() < size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// A form POST's bytes (HTTP/1.1, keep-alive), written into `r` (cleared first, so a
/// request's buffer can be reused for the next one).
pub fn form_post(
    r: &mut Vec<u8>,
    host: &str,
    path: &str,
    authorization: Option<&str>,
    body: &[u8],
) {
    use std::io::Write as _;
    r.clear();
    r.reserve(160 + body.len());
    r.extend_from_slice(b"POST ");
    r.extend_from_slice(path.as_bytes());
    r.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    r.extend_from_slice(host.as_bytes());
    r.extend_from_slice(b"\r\ncontent-type: application/x-www-form-urlencoded\r\ncontent-length: ");
    // Writing into a Vec cannot fail.
    let _ = write!(r, "{}", body.len());
    if let Some(a) = authorization {
        r.extend_from_slice(b"\r\nauthorization: ");
        r.extend_from_slice(a.as_bytes());
    }
    r.extend_from_slice(b"\r\n\r\n");
    r.extend_from_slice(body);
}

/// Sends `request` (see [`form_post`]) on `connection` (or a new one to `addr`) and
/// reads the whole answer within `timeout`. A pooled connection the server has closed while it idled (say after its
/// keep-alive timeout) is never written to: the request goes out on a new one, so it
/// reaches the server exactly once.
pub async fn exchange(
    connection: Option<Connection>,
    addr: SocketAddr,
    request: Vec<u8>,
    timeout: Duration,
) -> Exchange {
    let sent = Instant::now();
    let mut retried_unsent = false;
    let mut opened = false;
    let mut connection = match connection {
        Some(c) if c.is_closed() => {
            retried_unsent = true;
            None
        }
        c => c,
    };
    let work = async {
        let mut conn = match connection.take() {
            Some(c) => c,
            None => {
                opened = true;
                open(addr).await?
            }
        };
        let answer = conn.send(&request).await?;
        // A connection the server said it closes is not kept.
        if !conn.spent {
            connection = Some(conn);
        }
        Ok(answer)
    };
    let result = match tokio::time::timeout(timeout, work).await {
        Ok(r) => r,
        Err(_) => Err(TransportError::new(
            Cause::Timeout,
            format!("no whole answer within {} s", timeout.as_secs()),
        )),
    };
    Exchange {
        connection: if result.is_ok() { connection } else { None },
        result,
        sent,
        done: Instant::now(),
        retried_unsent,
        opened,
        request,
    }
}

/// A plain GET on a new connection (the `/metrics` scrape), within `timeout`.
pub async fn get(target: &Target, path: &str, timeout: Duration) -> Result<Answer, TransportError> {
    let work = async {
        let mut conn = open(target.addr).await?;
        let request = format!("GET {path} HTTP/1.1\r\nhost: {}\r\n\r\n", target.host);
        conn.send(request.as_bytes()).await
    };
    tokio::time::timeout(timeout, work)
        .await
        .unwrap_or_else(|_| {
            Err(TransportError::new(
                Cause::Timeout,
                format!("no whole answer within {} s", timeout.as_secs()),
            ))
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
    if authority
        .bytes()
        .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(format!("{url}: {authority} is not a valid Host"));
    }
    Ok(Target {
        addr,
        host: Arc::from(authority),
    })
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
    fn a_form_post_is_one_keep_alive_request_with_its_length() {
        let mut r = b"left over".to_vec();
        form_post(&mut r, "h:1", "/t", Some("Basic x"), b"a=1&b=2");
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "POST /t HTTP/1.1\r\nhost: h:1\r\ncontent-type: application/x-www-form-urlencoded\r\n\
             content-length: 7\r\nauthorization: Basic x\r\n\r\na=1&b=2"
        );
    }

    #[test]
    fn chunked_bodies_are_read_whole_or_not_at_all() {
        assert_eq!(
            dechunk(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap(),
            Some(b"abcde".to_vec())
        );
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nd").unwrap(), None);
        assert!(dechunk(b"zz\r\n").is_err());
    }

    #[test]
    fn urls_split_into_target_and_path() {
        let t = target_of("http://127.0.0.1:8080/oauth/token").unwrap();
        assert_eq!(t.addr.to_string(), "127.0.0.1:8080");
        assert_eq!(&*t.host, "127.0.0.1:8080");
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
        let form = || {
            let mut r = Vec::new();
            form_post(&mut r, &target.host, "/", None, b"x=1");
            r
        };
        let first = exchange(None, target.addr, form(), Duration::from_secs(2)).await;
        assert_eq!(first.result.unwrap().status, 200);
        let pooled = first.connection.expect("kept alive");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = exchange(Some(pooled), target.addr, form(), Duration::from_secs(2)).await;
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
        let mut form = Vec::new();
        form_post(&mut form, &target.host, "/oauth/token", None, b"x=1");
        let x = exchange(None, target.addr, form, Duration::from_secs(2)).await;
        let e = x.result.unwrap_err();
        assert_eq!(e.cause, Cause::Refused, "{}", e.message);
        assert!(x.opened && x.connection.is_none());
    }
}
