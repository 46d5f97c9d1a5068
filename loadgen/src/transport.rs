//! The devices' HTTP/1.1 transport: keep-alive connections, each read and written by
//! the lane that sends on it, a bounded pool per target (in `lane/connections.rs`),
//! batches of requests written at once and answered in order (pipelining, with
//! `--pipeline`), and failed sends sorted by cause. Responses are parsed with
//! `httparse` (hyper's parser); hyper's own client costs about twice the CPU per
//! request here (README, "Scale").
//!
//! `https://` targets are reached over TLS (`deviceflow_device::tls`: rustls on ring,
//! the roots the conformance suite trusts, a private CA named in `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`); a connection's handshake is paid once, and the connection kept
//! alive like a plain one.
//!
//! A transport error is the generator's failure to reach the server (refused, reset,
//! timed out, out of file descriptors...). It is never a poll and never a violation:
//! the server gave no answer to judge. Owns no device logic; `lane/` decides what to
//! send and when.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use deviceflow_device::tls;
use futures_util::FutureExt as _;
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
    /// The request was written whole on an open connection before this: the server
    /// had it, and gave no answer (timed out, closed, reset, or answered something
    /// that is not HTTP). Otherwise it never reached the server.
    pub reached: bool,
}

impl TransportError {
    fn io(e: &std::io::Error) -> TransportError {
        // On a connection, only TLS says InvalidData: an alert, or a record rustls
        // refused (TLS 1.3 sends "certificate required" after the handshake).
        let message = if e.kind() == std::io::ErrorKind::InvalidData {
            format!("TLS: {e}{}", tls::hint(&e.to_string(), tls::Peer::Http))
        } else {
            e.to_string()
        };
        TransportError {
            cause: Cause::of_io(e),
            message,
            reached: false,
        }
    }

    /// A TLS handshake that failed: rustls's words, and what to do about what the
    /// user can fix.
    fn tls(e: &std::io::Error) -> TransportError {
        let said = e.to_string();
        if e.kind() != std::io::ErrorKind::InvalidData {
            // The connection broke during the handshake (reset, closed).
            return TransportError {
                cause: Cause::of_io(e),
                message: format!("TLS handshake: {said}"),
                reached: false,
            };
        }
        let hint = tls::hint(&said, tls::Peer::Http);
        TransportError::new(Cause::Other, format!("TLS handshake: {said}{hint}"))
    }

    fn new(cause: Cause, message: impl Into<String>) -> TransportError {
        TransportError {
            cause,
            message: message.into(),
            reached: false,
        }
    }
}

/// The most bytes an answer may take, head and body: the conformance suite's body limit
/// (1 MiB, far past any answer the RFCs define) and room for a head. At 64 KiB, a
/// server's 200 KB token answer (a JWT with many claims) had been a malformed answer,
/// put on the server as its failure, and the token never judged.
const MAX_ANSWER: usize = deviceflow_conformance::http::MAX_BODY_BYTES + 64 * 1024;

/// The read buffer a pooled connection keeps between answers, at most: a device flow's
/// answers are a few hundred bytes, so this holds many pipelined ones.
const KEPT_BUFFER: usize = 16 * 1024;

/// A whole answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Vec<u8>,
    /// A redirect's `Location` (3xx only: read for no other answer), which the
    /// devices do not follow and the report names.
    pub location: Option<Box<str>>,
}

/// One target (a `--host`): where to connect, whether over TLS, and what to put in
/// `Host`.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: SocketAddr,
    pub host: Arc<str>,
    /// `https://`: the TLS client and the name the certificate must show.
    pub tls: Option<Arc<Tls>>,
}

impl Target {
    /// How a batch reaches it (copied into each batch: no reference count is touched
    /// for a plain target).
    pub fn dial(&self) -> Dial {
        Dial {
            addr: self.addr,
            tls: self.tls.clone(),
        }
    }

    pub fn scheme(&self) -> &'static str {
        if self.tls.is_some() {
            "https"
        } else {
            "http"
        }
    }
}

/// Where a new connection goes, and whether TLS runs on it.
#[derive(Debug, Clone)]
pub struct Dial {
    pub addr: SocketAddr,
    pub tls: Option<Arc<Tls>>,
}

/// A TLS client for one `https://` target.
pub struct Tls {
    config: Arc<tls::rustls::ClientConfig>,
    name: tls::rustls::pki_types::ServerName<'static>,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tls({:?})", self.name)
    }
}

/// A connection's byte stream: plain TCP (left), or TLS over it (right).
type Stream = tokio_util::either::Either<TcpStream, Box<tls::TlsStream>>;

/// A keep-alive HTTP/1.1 connection, read and written by the task that sends on it
/// (no connection task, no channel: a batch of requests costs a write, a read and a
/// wake-up).
#[derive(Debug)]
pub struct Connection {
    stream: Stream,
    /// Bytes read and not yet taken as an answer.
    buf: Vec<u8>,
    /// The server said `Connection: close` (or spoke HTTP/1.0), or ended an answer by
    /// closing: no next request.
    spent: bool,
    /// The server closed its side: what `buf` holds is all there will be.
    eof: bool,
}

/// Requests written together on one connection: their bytes, one after the other, and
/// where each ends. HTTP/1.1 pipelining (RFC 9112 §9.3.2): the server answers them in
/// order. The buffers are reused from one batch to the next.
#[derive(Debug, Default)]
pub struct Requests {
    pub bytes: Vec<u8>,
    pub ends: Vec<usize>,
}

impl Requests {
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.ends.clear();
    }

    /// The request just written into `bytes` ends here.
    pub fn end_one(&mut self) {
        self.ends.push(self.bytes.len());
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// The bytes of request `i` and of every one after it.
    fn from(&self, i: usize) -> &[u8] {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        &self.bytes[start..]
    }
}

/// What became of one request of a batch.
#[derive(Debug)]
pub struct Reply {
    pub result: Result<Answer, TransportError>,
    /// When the request went out: its batch's write, or its own when it was sent again.
    pub sent: Instant,
    /// When the answer was whole (or the request failed).
    pub done: Instant,
    /// The request went out again on a new connection, never having reached the
    /// server: its pooled connection had been closed while idle, or an earlier answer
    /// of its batch said `Connection: close` or ended by closing the connection (after
    /// which a server reads no more).
    pub resent: bool,
}

/// The result of one batch, and the connection to give back to the pool.
pub struct Exchange {
    pub connection: Option<Connection>,
    /// One per request, in the batch's order.
    pub replies: Vec<Reply>,
    /// New connections opened for it.
    pub opened: u32,
    /// The batch's buffers, for the next batch.
    pub requests: Requests,
}

async fn connect(addr: SocketAddr) -> Result<TcpStream, TransportError> {
    let tcp = TcpStream::connect(addr)
        .await
        .map_err(|e| TransportError::io(&e))?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

async fn handshake(to: &Tls, tcp: TcpStream) -> Result<tls::TlsStream, TransportError> {
    tls::connect(Arc::clone(&to.config), to.name.clone(), tcp)
        .await
        .map_err(|e| TransportError::tls(&e))
}

async fn open(dial: &Dial) -> Result<Connection, TransportError> {
    let tcp = connect(dial.addr).await?;
    let stream = match &dial.tls {
        None => Stream::Left(tcp),
        Some(tls) => Stream::Right(Box::new(handshake(tls, tcp).await?)),
    };
    Ok(Connection::new(stream))
}

impl Connection {
    fn new(stream: Stream) -> Connection {
        Connection {
            stream,
            buf: Vec::with_capacity(1024),
            spent: false,
            eof: false,
        }
    }

    /// Whether the server has closed this idle connection (or sent something
    /// unasked): then it must not carry a request.
    fn is_closed(&mut self) -> bool {
        let mut probe = [0u8; 1];
        if !self.buf.is_empty() {
            return true;
        }
        match &mut self.stream {
            Stream::Left(s) => {
                !matches!(s.try_read(&mut probe), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
            }
            // What TLS has waiting may be no data: a TLS 1.3 server sends its session
            // tickets after the handshake, and rustls takes them in while reading. Open
            // when that read finds nothing to give; closed when it ends (a
            // `close_notify`, or the connection's end) or gives bytes nobody asked for.
            Stream::Right(s) => s.read(&mut probe).now_or_never().is_some(),
        }
    }

    async fn write(&mut self, requests: &[u8]) -> Result<(), TransportError> {
        let written = async {
            self.stream.write_all(requests).await?;
            // TLS holds what it could not send yet; plain TCP has nothing to flush.
            self.stream.flush().await
        };
        written.await.map_err(|e| TransportError::io(&e))
    }

    /// The next whole answer.
    async fn answer(&mut self) -> Result<Answer, TransportError> {
        loop {
            if let Some(answer) = self.parse()? {
                return Ok(answer);
            }
            if self.eof {
                return Err(TransportError::new(
                    Cause::Closed,
                    "the server closed the connection before a whole answer",
                ));
            }
            if self.buf.len() > MAX_ANSWER {
                return Err(TransportError::new(
                    Cause::Malformed,
                    format!("an answer over {} KiB", MAX_ANSWER / 1024),
                ));
            }
            self.buf.reserve(4096);
            let n = self
                .stream
                .read_buf(&mut self.buf)
                .await
                .map_err(|e| TransportError::io(&e))?;
            // Parsed once more: an answer without a length ends here (RFC 9112 §6.3).
            self.eof = n == 0;
        }
    }

    /// A whole answer at the front of the buffer, if there is one yet, taken from it.
    fn parse(&mut self) -> Result<Option<Answer>, TransportError> {
        // RFC 9112 §6.3: interim (1xx) answers precede the final one, and are dropped
        // here, in a loop: one stack frame each, a server sending thousands in one
        // read overflowed the stack.
        loop {
            let mut scratch = [httparse::EMPTY_HEADER; 32];
            let mut interim = httparse::Response::new(&mut scratch);
            let done = match interim.parse(&self.buf) {
                Ok(httparse::Status::Complete(n))
                    if interim.code.is_some_and(|c| (100..200).contains(&c)) =>
                {
                    Some(n)
                }
                _ => None,
            };
            match done {
                Some(n) => drop(self.buf.drain(..n)),
                None => break,
            }
        }
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
        // 204 and 304 have no body whatever their headers say.
        let bodiless = status == 204 || status == 304;
        let mut length = None;
        let mut chunked = false;
        // RFC 9112 §9.3, §9.6: HTTP/1.0 closes unless it says keep-alive; any version
        // closes when it says close. Connection and Transfer-Encoding are lists
        // (`keep-alive, close`; `gzip, chunked`: chunked when it comes last, §6.1).
        let http10 = res.version == Some(0);
        let (mut says_close, mut says_keep_alive) = (false, false);
        let mut location = None;
        for h in res.headers.iter() {
            if (300..400).contains(&status) && h.name.eq_ignore_ascii_case("location") {
                location = Some(Box::from(String::from_utf8_lossy(h.value).trim()));
            } else if h.name.eq_ignore_ascii_case("content-length") {
                length = std::str::from_utf8(h.value)
                    .ok()
                    .and_then(|v| v.trim().parse::<usize>().ok());
            } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                chunked = list(h.value)
                    .last()
                    .is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
            } else if h.name.eq_ignore_ascii_case("connection") {
                for option in list(h.value) {
                    says_close |= option.eq_ignore_ascii_case(b"close");
                    says_keep_alive |= option.eq_ignore_ascii_case(b"keep-alive");
                }
            }
        }
        let mut close = says_close || (http10 && !says_keep_alive);
        let rest = &self.buf[head..];
        let (body, used) = if bodiless {
            (Vec::new(), 0)
        } else if chunked {
            match dechunk(rest)? {
                Some(b) => b,
                None => return Ok(None),
            }
        } else if let Some(length) = length {
            if rest.len() < length {
                return Ok(None);
            }
            (rest[..length].to_vec(), length)
        } else if self.eof {
            // RFC 9112 §6.3 item 8: no length and not chunked, the body is what comes
            // until the server closes the connection, which is then spent.
            close = true;
            (rest.to_vec(), rest.len())
        } else {
            return Ok(None);
        };
        self.buf.drain(..head + used);
        // A large answer grew the buffer, up to MAX_ANSWER: kept, every pooled
        // connection would hold that much from then on (helper-100: 600 devices
        // took 315 MB, and a memory limit aborted the run).
        if self.buf.capacity() > KEPT_BUFFER {
            self.buf.shrink_to(KEPT_BUFFER);
        }
        self.spent = close;
        Ok(Some(Answer {
            status,
            body,
            location,
        }))
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The elements of a comma-separated header list (RFC 9110 §5.6.1), without their
/// surrounding whitespace; empty elements are skipped.
fn list(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|e| !e.is_empty())
}

/// A chunked body, whole, and how many bytes it took (trailers included), or `None`
/// while more is to come.
fn dechunk(data: &[u8]) -> Result<Option<(Vec<u8>, usize)>, TransportError> {
    let bad = || TransportError::new(Cause::Malformed, "a chunked body that does not parse");
    let mut out = Vec::new();
    let mut at = 0;
    loop {
        let Some(eol) = find(&data[at..], b"\r\n") else {
            return Ok(None);
        };
        let size_text = std::str::from_utf8(&data[at..at + eol]).map_err(|_| bad())?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad())?;
        // No chunk outgrows the answer's cap (and `at + size` below cannot overflow:
        // `ffffffffffffffff` had it wrap and the slice panic).
        if size > MAX_ANSWER {
            return Err(TransportError::new(
                Cause::Malformed,
                format!(
                    "a chunk of {size} bytes, over the {} KiB an answer may take",
                    MAX_ANSWER / 1024
                ),
            ));
        }
        at += eol + 2;
        if size == 0 {
            // No trailer: the blank line at once; else trailers up to a blank line.
            let end = if data[at..].starts_with(b"\r\n") {
                Some(at + 2)
            } else {
                find(&data[at..], b"\r\n\r\n").map(|i| at + i + 4)
            };
            return Ok(end.map(|end| (out, end)));
        }
        if data.len() < at + size + 2 {
            return Ok(None);
        }
        out.extend_from_slice(&data[at..at + size]);
        at += size + 2;
    }
}
/// A form POST's bytes (HTTP/1.1, keep-alive), appended to `r`.
pub fn form_post(
    r: &mut Vec<u8>,
    host: &str,
    path: &str,
    authorization: Option<&str>,
    body: &[u8],
) {
    use std::io::Write as _;
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

/// Writes `requests` (see [`form_post`]) at once on `connection` (or a new one to
/// `addr`) and reads their answers, in order, all within `timeout`.
///
/// No request reaches the server twice, and none is sent again once it may have: a
/// pooled connection the server closed while it idled (say after its keep-alive
/// timeout) is never written to, and the requests after an answer that says
/// `Connection: close` (which the server does not read, RFC 9112 §9.6) or whose body
/// ends with the connection (RFC 9112 §6.3 item 8) go out on a new connection. Any
/// other failure ends the batch: the requests not yet answered get its cause.
pub async fn exchange(
    connection: Option<Connection>,
    dial: Dial,
    requests: Requests,
    timeout: Duration,
) -> Exchange {
    let mut sent = Instant::now();
    let mut opened = 0;
    let mut replies = Vec::with_capacity(requests.len());
    let mut resend = false;
    // Whether the requests not yet answered were written whole on the connection
    // being read (see `TransportError::reached`).
    let mut written = false;
    let mut connection = match connection {
        Some(mut c) => {
            resend = c.is_closed();
            (!resend).then_some(c)
        }
        None => None,
    };
    let work = async {
        if let Some(c) = connection.as_mut() {
            c.write(&requests.bytes).await?;
            written = true;
        }
        while replies.len() < requests.len() {
            let mut conn = match connection.take() {
                Some(c) => c,
                None => {
                    opened += 1;
                    written = false;
                    let mut c = open(&dial).await?;
                    if !replies.is_empty() {
                        sent = Instant::now();
                    }
                    c.write(requests.from(replies.len())).await?;
                    written = true;
                    c
                }
            };
            let answer = conn.answer().await?;
            replies.push(Reply {
                result: Ok(answer),
                sent,
                done: Instant::now(),
                resent: resend,
            });
            // A connection the server said it closes carries nothing more: what it
            // did not read goes out on a new one.
            if conn.spent {
                resend = true;
            } else {
                connection = Some(conn);
            }
        }
        Ok(())
    };
    let failed = match tokio::time::timeout(timeout, work).await {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(_) => Some(TransportError::new(
            Cause::Timeout,
            format!("no whole answer within {} s", timeout.as_secs()),
        )),
    };
    if let Some(mut e) = failed {
        e.reached = written;
        connection = None;
        let done = Instant::now();
        while replies.len() < requests.len() {
            replies.push(Reply {
                result: Err(e.clone()),
                sent,
                done,
                resent: resend,
            });
        }
    }
    Exchange {
        connection,
        replies,
        opened,
        requests,
    }
}

/// A plain GET on a new connection (the `/metrics` scrape), within `timeout`.
pub async fn get(target: &Target, path: &str, timeout: Duration) -> Result<Answer, TransportError> {
    let work = async {
        let mut conn = open(&target.dial()).await?;
        let request = format!("GET {path} HTTP/1.1\r\nhost: {}\r\n\r\n", target.host);
        conn.write(request.as_bytes()).await?;
        conn.answer().await
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

/// Before a run: one `GET /` to `target`, on a connection of its own, to find a
/// scheme that does not fit the port before every request of the run fails on it. A
/// TLS handshake that fails (a certificate the generator cannot check), a TLS alert
/// after it (TLS 1.3 asks for a client certificate only then), or no HTTP answer on a
/// plain `http://` port (a TLS port resets or closes it) is refused in one line, and
/// so is a target that cannot be reached at all (nothing listening, no connection
/// within `timeout`) or that takes the connection and sends no answer within
/// `timeout`: nothing of the server could be measured. Any answer at all (a 404 is an
/// HTTP server) passes: the run measures the rest.
pub async fn check(target: &Target, timeout: Duration) -> Result<(), String> {
    let origin = format!("{}://{}", target.scheme(), target.host);
    // Nothing listening is said here, as discovery says it (exit 2): with the
    // endpoints given it had gone on to a run of refused connections, "not trusted"
    // (exit 3), though nothing of the server was measured.
    let tcp = match tokio::time::timeout(timeout, connect(target.addr)).await {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => {
            return Err(format!(
                "cannot reach {origin}: {}: is the server up, and is --host (or the endpoint) right?",
                e.message
            ))
        }
        Err(_) => {
            return Err(format!(
                "cannot reach {origin}: no connection within {} s (--request-timeout): is the server up, and is --host (or the endpoint) right?",
                timeout.as_secs()
            ))
        }
    };
    let stream = match &target.tls {
        None => Stream::Left(tcp),
        Some(tls) => match tokio::time::timeout(timeout, handshake(tls, tcp)).await {
            Ok(Ok(s)) => Stream::Right(Box::new(s)),
            // rustls's refusal, with its hint (`TransportError::tls`).
            Ok(Err(e)) if e.cause == Cause::Other => return Err(format!("{origin}: {}", e.message)),
            Ok(Err(e)) => {
                return Err(format!(
                    "{origin}: {} (the connection ended during the TLS handshake: is this port's server speaking TLS?)",
                    e.message
                ))
            }
            Err(_) => {
                return Err(format!(
                    "{origin}: no TLS handshake within {} s (is this port's server speaking TLS?)",
                    timeout.as_secs()
                ))
            }
        },
    };
    let mut conn = Connection::new(stream);
    let request = format!(
        "GET / HTTP/1.1\r\nhost: {}\r\nconnection: close\r\n\r\n",
        target.host
    );
    let answered = tokio::time::timeout(timeout, async {
        conn.write(request.as_bytes()).await?;
        conn.answer().await
    })
    .await;
    let e = match answered {
        Ok(Ok(_)) => return Ok(()),
        Ok(Err(e)) => e,
        Err(_) => {
            return Err(format!(
                "{origin} accepted the connection but sent no answer to GET / within {} s (--request-timeout): is it an HTTP server, and is it up?",
                timeout.as_secs()
            ))
        }
    };
    // A TLS port answers a plain request by hanging up, or with an alert record,
    // whose first bytes are no `HTTP/1.x` (httparse: "invalid HTTP version"). An
    // answer that starts as HTTP and then breaks (a control character in a header) is
    // a server that is up and speaks HTTP badly: the run measures it, as over TLS.
    let not_http = match e.cause {
        Cause::Reset | Cause::Closed => true,
        Cause::Malformed => e.message.contains("invalid HTTP version"),
        _ => false,
    };
    match (&target.tls, e.cause) {
        (Some(_), Cause::Other) => Err(format!("{origin}: {}", e.message)),
        (None, _) if not_http => Err(format!(
            "{origin}: no HTTP answer to GET / ({}): is this port's server speaking TLS (give https://)?",
            e.message
        )),
        _ => Ok(()),
    }
}

/// Whether a TCP connection to `target` is accepted within `timeout` (at most 5 s):
/// asked after a request timed out, to tell a server that took the connection and
/// never answered from one that cannot be reached.
pub async fn connects(target: &Target, timeout: Duration) -> bool {
    let within = timeout.min(Duration::from_secs(5));
    matches!(
        tokio::time::timeout(within, connect(target.addr)).await,
        Ok(Ok(_))
    )
}

/// Resolves `http://host:port` or `https://host:port` to a target (the generator
/// speaks HTTP/1.1, over TLS for `https://`).
pub fn target_of(url: &str) -> Result<Target, String> {
    let (rest, tls, port) = if let Some(rest) = url.strip_prefix("http://") {
        (rest, false, 80)
    } else if let Some(rest) = url.strip_prefix("https://") {
        (rest, true, 443)
    } else {
        return Err(format!(
            "{url}: the load generator speaks http:// and https:// only"
        ));
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    // `[::1]:8080`, `[::1]`, `host:8080`, `host`.
    let (name, has_port) = match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((ip, after)) => (ip, after.starts_with(':')),
            None => return Err(format!("{url}: {authority} is not a valid Host")),
        },
        None => (
            authority.rsplit_once(':').map_or(authority, |(h, _)| h),
            authority.contains(':'),
        ),
    };
    let with_port = if has_port {
        authority.to_owned()
    } else {
        format!("{authority}:{port}")
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
    let tls = if tls {
        Some(Arc::new(Tls {
            config: tls::client_config()?,
            name: tls::server_name(name).map_err(|e| format!("{url}: {e}"))?,
        }))
    } else {
        None
    };
    Ok(Target {
        addr,
        host: Arc::from(authority),
        tls,
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
    fn a_form_post_is_one_keep_alive_request_with_its_length_appended() {
        let mut r = b"GET / HTTP/1.1\r\n\r\n".to_vec();
        form_post(&mut r, "h:1", "/t", Some("Basic x"), b"a=1&b=2");
        assert_eq!(
            String::from_utf8(r).unwrap(),
            "GET / HTTP/1.1\r\n\r\nPOST /t HTTP/1.1\r\nhost: h:1\r\ncontent-type: application/x-www-form-urlencoded\r\n\
             content-length: 7\r\nauthorization: Basic x\r\n\r\na=1&b=2"
        );
    }

    #[test]
    fn chunked_bodies_are_read_whole_or_not_at_all_with_what_they_took() {
        let two = b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nHTTP/1.1 200";
        assert_eq!(dechunk(two).unwrap(), Some((b"abcde".to_vec(), 20)));
        let trailer = b"1\r\na\r\n0\r\nx-t: 1\r\n\r\nnext";
        assert_eq!(dechunk(trailer).unwrap(), Some((b"a".to_vec(), 19)));
        assert_eq!(dechunk(b"3\r\nabc\r\n2\r\nd").unwrap(), None);
        assert_eq!(dechunk(b"1\r\na\r\n0\r\nx-t: 1\r\n").unwrap(), None);
        assert!(dechunk(b"zz\r\n").is_err());
        // A size near usize::MAX wrapped `at + size + 2` and panicked on the slice
        // (helper-56): refused as malformed, like any chunk over an answer's cap.
        let huge = dechunk(b"ffffffffffffffff\r\nA\r\nA\r\n").unwrap_err();
        assert_eq!(huge.cause, Cause::Malformed, "{huge:?}");
        let over = format!("{:x}\r\n", MAX_ANSWER + 1);
        assert!(dechunk(over.as_bytes()).is_err());
    }

    /// A server that sends 100,000 interim answers at once: skipped in a loop. Skipped
    /// one stack frame each, they overflowed the stack and aborted the run (helper-56).
    #[tokio::test]
    async fn a_flood_of_interim_answers_is_skipped_without_a_frame_each() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tcp = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
            .await
            .unwrap();
        let mut conn = Connection::new(Stream::Left(tcp));
        conn.buf = "HTTP/1.1 100 \r\n\r\n".repeat(100_000).into_bytes();
        conn.buf.extend_from_slice(ok("b", false).as_bytes());
        let answer = conn.parse().unwrap().expect("the final answer");
        assert_eq!((answer.status, &answer.body[..]), (200, &b"b"[..]));
        assert!(conn.buf.is_empty());
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
        assert!(target_of("ftp://example.com")
            .unwrap_err()
            .contains("http:// and https:// only"));
        let t = target_of("https://127.0.0.1/oauth/token").unwrap();
        assert_eq!(t.addr.to_string(), "127.0.0.1:443");
        assert_eq!(t.scheme(), "https");
        let t = target_of("https://[::1]:8443").unwrap();
        assert_eq!(t.addr.to_string(), "[::1]:8443");
        assert_eq!(&*t.host, "[::1]:8443");
        let t = target_of("http://[::1]").unwrap();
        assert_eq!(t.addr.to_string(), "[::1]:80");
    }

    /// [`batch`]`(target, n)` on a new connection, within 2 s.
    async fn fresh(target: &Target, n: usize) -> Exchange {
        exchange(
            None,
            target.dial(),
            batch(target, n),
            Duration::from_secs(2),
        )
        .await
    }

    /// `n` form POSTs to `target`, the `i`-th with body `x=i`, as one batch.
    fn batch(target: &Target, n: usize) -> Requests {
        let mut r = Requests::default();
        for i in 0..n {
            form_post(
                &mut r.bytes,
                &target.host,
                "/",
                None,
                format!("x={i}").as_bytes(),
            );
            r.end_one();
        }
        r
    }

    fn bodies(x: &Exchange) -> Vec<String> {
        x.replies
            .iter()
            .map(|r| match &r.result {
                Ok(a) => String::from_utf8_lossy(&a.body).into_owned(),
                Err(e) => format!("{:?}", e.cause),
            })
            .collect()
    }

    /// A server that, on its `i`-th connection, plays `script[i]`: for each round,
    /// reads until it has that many more whole requests and writes the round's bytes;
    /// then it closes the connection. It records the bodies each round received.
    fn scripted_server(
        script: Vec<Vec<(usize, String)>>,
    ) -> (SocketAddr, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        // Each request's body is three bytes after its head.
        let bodies = |got: &[u8]| {
            let text = String::from_utf8_lossy(got).into_owned();
            let split = text.split("\r\n\r\n").skip(1);
            split
                .filter_map(|b| b.get(..3))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        std::thread::spawn(move || {
            for (rounds, stream) in script.into_iter().zip(l.incoming()) {
                let mut s = stream.unwrap();
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                let mut heard = 0;
                for (wanted, answer) in rounds {
                    while bodies(&got).len() < heard + wanted {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let all = bodies(&got);
                    log.lock()
                        .unwrap()
                        .push(all[heard.min(all.len())..].join(" "));
                    heard = all.len();
                    let _ = s.write_all(answer.as_bytes());
                }
            }
        });
        (addr, seen)
    }

    fn ok(body: &str, close: bool) -> String {
        let c = if close { "connection: close\r\n" } else { "" };
        format!(
            "HTTP/1.1 200 OK\r\n{c}content-length: {}\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn a_batch_is_written_before_any_answer_is_read_and_its_answers_come_back_in_order() {
        let chunked = "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n1\r\nb\r\n0\r\n\r\n";
        let answers = format!("{}{chunked}{}", ok("a", false), ok("c", false));
        let (addr, seen) = scripted_server(vec![vec![(3, answers)]]);
        let target = target_of(&format!("http://{addr}")).unwrap();
        let x = fresh(&target, 3).await;
        assert_eq!(bodies(&x), ["a", "b", "c"]);
        assert_eq!(x.opened, 1);
        assert!(x.connection.is_some() && x.replies.iter().all(|r| !r.resent));
        assert_eq!(*seen.lock().unwrap(), ["x=0 x=1 x=2"]);
    }

    #[tokio::test]
    async fn after_an_answer_that_says_close_the_unread_requests_go_out_on_a_new_connection() {
        // RFC 9112 §9.6: a server that says close reads no further request.
        let (addr, seen) = scripted_server(vec![
            vec![(3, ok("a", true))],
            vec![(2, format!("{}{}", ok("b", false), ok("c", false)))],
        ]);
        let target = target_of(&format!("http://{addr}")).unwrap();
        let x = fresh(&target, 3).await;
        assert_eq!(bodies(&x), ["a", "b", "c"]);
        let resent: Vec<bool> = x.replies.iter().map(|r| r.resent).collect();
        assert_eq!(resent, [false, true, true]);
        assert_eq!(x.opened, 2);
        assert_eq!(*seen.lock().unwrap(), ["x=0 x=1 x=2", "x=1 x=2"]);
    }

    #[tokio::test]
    async fn connection_and_transfer_encoding_are_read_as_lists() {
        // `Connection: keep-alive, close` says close (RFC 9112 §9.6): read as one
        // value, the two requests after it waited on a connection the server closed,
        // and were put on the server as closed before an answer.
        let close =
            "HTTP/1.1 200 OK\r\nconnection: keep-alive, close\r\ncontent-length: 1\r\n\r\na";
        let chunked =
            "HTTP/1.1 200 OK\r\ntransfer-encoding: identity , chunked\r\n\r\n1\r\nc\r\n0\r\n\r\n";
        let (addr, _) = scripted_server(vec![
            vec![(3, close.to_owned())],
            vec![(2, format!("{}{chunked}", ok("b", false)))],
        ]);
        let target = target_of(&format!("http://{addr}")).unwrap();
        let x = fresh(&target, 3).await;
        assert_eq!(bodies(&x), ["a", "b", "c"]);
        assert_eq!(x.opened, 2);
    }

    #[tokio::test]
    async fn a_batch_cut_short_gives_its_cause_to_every_request_left_unanswered() {
        // One answer, then the connection closes without a word: the server may have
        // read the others, so they are not sent again.
        let (addr, _) = scripted_server(vec![vec![(3, ok("a", false))]]);
        let target = target_of(&format!("http://{addr}")).unwrap();
        let x = fresh(&target, 3).await;
        assert_eq!(bodies(&x), ["a", "Closed", "Closed"]);
        assert!(x.connection.is_none());
    }

    #[tokio::test]
    async fn a_kept_connection_carries_the_next_batch_from_a_clean_buffer() {
        let (addr, seen) = scripted_server(vec![vec![
            (2, format!("{}{}", ok("a", false), ok("b", false))),
            (2, format!("{}{}", ok("c", false), ok("d", false))),
        ]]);
        let target = target_of(&format!("http://{addr}")).unwrap();
        let first = fresh(&target, 2).await;
        assert_eq!(bodies(&first), ["a", "b"]);
        let kept = first.connection.expect("kept alive");
        let second = exchange(
            Some(kept),
            target.dial(),
            batch(&target, 2),
            Duration::from_secs(2),
        )
        .await;
        assert_eq!(bodies(&second), ["c", "d"]);
        assert!(second.opened == 0 && second.replies.iter().all(|r| !r.resent));
        assert_eq!(*seen.lock().unwrap(), ["x=0 x=1", "x=0 x=1"]);
    }

    #[tokio::test]
    async fn a_connection_on_which_the_server_said_more_than_it_was_asked_is_not_reused() {
        // One answer too many: the connection is out of step, so the next batch goes
        // out on a new one rather than being read against the stray answer.
        // The server keeps the first connection open, waiting for a request that the
        // client must not send on it.
        let (addr, seen) = scripted_server(vec![
            vec![
                (1, format!("{}{}", ok("a", false), ok("stray", false))),
                (1, ok("never read", false)),
            ],
            vec![(1, ok("b", false))],
        ]);
        let target = target_of(&format!("http://{addr}")).unwrap();
        let first = fresh(&target, 1).await;
        assert_eq!(bodies(&first), ["a"]);
        // Let the stray answer arrive, whether or not it came with the first.
        tokio::time::sleep(Duration::from_millis(100)).await;
        let second = exchange(
            first.connection,
            target.dial(),
            batch(&target, 1),
            Duration::from_secs(2),
        )
        .await;
        assert_eq!(bodies(&second), ["b"]);
        assert!(second.opened == 1 && second.replies[0].resent);
        assert_eq!(*seen.lock().unwrap(), ["x=0", "", "x=0"]);
    }

    #[tokio::test]
    async fn interim_answers_are_skipped_and_a_204_has_no_body() {
        let answers = format!(
            "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n{}",
            ok("b", false)
        );
        let (addr, _) = scripted_server(vec![vec![(2, answers)]]);
        let target = target_of(&format!("http://{addr}")).unwrap();
        let x = fresh(&target, 2).await;
        let statuses: Vec<u16> = x
            .replies
            .iter()
            .map(|r| r.result.as_ref().unwrap().status)
            .collect();
        assert_eq!(statuses, [204, 200]);
        assert_eq!(bodies(&x), ["", "b"]);
    }

    #[tokio::test]
    async fn an_answer_without_a_length_is_read_until_the_server_closes_the_connection() {
        // RFC 9112 §6.3 item 8, as python's http.server answers: no Content-Length, not
        // chunked, the body ends when the connection does, which is then spent.
        let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n{\"a\": 1}";
        let (addr, _) = scripted_server(vec![vec![(1, answer.to_owned())]]);
        let target = target_of(&format!("http://{addr}")).unwrap();
        let x = fresh(&target, 1).await;
        assert_eq!(bodies(&x), ["{\"a\": 1}"]);
        assert!(
            x.connection.is_none(),
            "a connection ended by the server is spent"
        );
    }

    #[tokio::test]
    async fn after_an_answer_ended_by_closing_the_unread_requests_go_out_on_a_new_connection() {
        // A 304 has no body whatever follows, so it is not read to the close; the
        // answer after it is, and takes the connection with it.
        let (addr, seen) = scripted_server(vec![
            vec![(
                3,
                "HTTP/1.1 304 Not Modified\r\n\r\nHTTP/1.1 200 OK\r\n\r\nb".to_owned(),
            )],
            vec![(1, ok("c", false))],
        ]);
        let target = target_of(&format!("http://{addr}")).unwrap();
        let x = fresh(&target, 3).await;
        assert_eq!(bodies(&x), ["", "b", "c"]);
        let resent: Vec<bool> = x.replies.iter().map(|r| r.resent).collect();
        assert_eq!(resent, [false, false, true]);
        assert_eq!(x.opened, 2);
        assert!(x.connection.is_some());
        assert_eq!(*seen.lock().unwrap(), ["x=0 x=1 x=2", "x=2"]);
    }

    /// A 200 KB answer is read whole, and the buffer it grew is given back: the
    /// connection, pooled, keeps at most KEPT_BUFFER (it had kept the 200 KB).
    #[tokio::test]
    async fn a_token_answer_of_200_kb_is_read_whole_and_its_buffer_given_back() {
        let body = format!("{{\"access_token\":\"{}\"}}", "a".repeat(200_000));
        let answer = format!(
            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
            body.len()
        );
        let (addr, _) = scripted_server(vec![vec![(1, answer)]]);
        let target = target_of(&format!("http://{addr}")).unwrap();
        let x = fresh(&target, 1).await;
        assert_eq!(bodies(&x), [body]);
        let kept = x.connection.as_ref().expect("kept alive").buf.capacity();
        assert!(kept <= KEPT_BUFFER, "{kept}");
    }

    #[tokio::test]
    async fn an_answer_without_a_length_cut_short_by_the_size_limit_is_malformed() {
        let big = format!("HTTP/1.1 200 OK\r\n\r\n{}", "x".repeat(MAX_ANSWER + 10));
        let (addr, _) = scripted_server(vec![vec![(1, big)]]);
        let target = target_of(&format!("http://{addr}")).unwrap();
        let x = fresh(&target, 1).await;
        assert_eq!(bodies(&x), ["Malformed"]);
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
        let first = fresh(&target, 1).await;
        assert_eq!(bodies(&first), ["ok"]);
        let pooled = first.connection.expect("kept alive");
        tokio::time::sleep(Duration::from_millis(300)).await;
        let second = exchange(
            Some(pooled),
            target.dial(),
            batch(&target, 1),
            Duration::from_secs(2),
        )
        .await;
        assert_eq!(bodies(&second), ["ok"], "sent again on a new connection");
        assert!(second.replies[0].resent);
        assert_eq!(second.opened, 1);
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_transport_error_by_cause() {
        // A port that was just free: nothing listens there.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        drop(l);
        let target = target_of(&format!("http://{addr}")).unwrap();
        let x = fresh(&target, 2).await;
        let e = x.replies[0].result.as_ref().unwrap_err();
        assert_eq!(e.cause, Cause::Refused, "{}", e.message);
        assert_eq!(bodies(&x), ["Refused", "Refused"]);
        assert!(x.opened == 1 && x.connection.is_none());
    }
}
