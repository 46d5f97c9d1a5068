//! One keep-alive HTTP/1.1 connection from a chosen source address, on hyper's client
//! connection API: reopened when the server closes it or a request fails.
//!
//! The source address matters: the server keys its per-IP limits on the TCP peer, so
//! the fleet (127.0.0.2) and the attacks (127.0.0.1) must arrive from different ones.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{HeaderValue, HOST};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpSocket, TcpStream};

/// A whole answer: status, headers and the collected body.
#[derive(Debug)]
pub struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

/// Why no answer came; [`Failure::label`] is how it is counted.
#[derive(Debug)]
pub enum Failure {
    /// The TCP connection or the HTTP/1 handshake failed.
    Connect(std::io::Error),
    /// The connection broke while the request was in flight (reset, closed early).
    Http(hyper::Error),
    /// No whole answer within the time allowed.
    Timeout,
}

impl Failure {
    pub fn label(&self) -> &'static str {
        match self {
            Failure::Connect(_) => "connect failed",
            Failure::Http(_) => "connection broken",
            Failure::Timeout => "timeout",
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Connect(e) => write!(f, "connect failed: {e}"),
            Failure::Http(e) => write!(f, "connection broken: {e}"),
            Failure::Timeout => f.write_str("timeout"),
        }
    }
}

/// A TCP connection to `target` from `source` (any free port), with Nagle off.
pub async fn connect_from(source: IpAddr, target: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = if target.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(source, 0))?;
    let stream = socket.connect(target).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// A keep-alive connection, opened on first use and again after any failure.
pub struct Connection {
    source: IpAddr,
    target: SocketAddr,
    host: HeaderValue,
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    pub fn new(source: IpAddr, target: SocketAddr) -> Connection {
        let host = HeaderValue::from_str(&target.to_string())
            .expect("a socket address is a valid Host header");
        Connection {
            source,
            target,
            host,
            sender: None,
        }
    }

    /// Sends `req` (with a `Host` header added) and reads the whole answer, within
    /// `timeout`. After a failure the connection is dropped, and the next request opens
    /// a new one.
    pub async fn send(
        &mut self,
        mut req: Request<Full<Bytes>>,
        timeout: Duration,
    ) -> Result<Answer, Failure> {
        req.headers_mut().insert(HOST, self.host.clone());
        let result = tokio::time::timeout(timeout, self.exchange(req))
            .await
            .unwrap_or(Err(Failure::Timeout));
        if result.is_err() {
            self.sender = None;
        }
        result
    }

    async fn exchange(&mut self, req: Request<Full<Bytes>>) -> Result<Answer, Failure> {
        if self.sender.as_ref().is_none_or(|s| s.is_closed()) {
            self.sender = Some(open(self.source, self.target).await?);
        }
        let sender = self.sender.as_mut().expect("opened just above");
        sender.ready().await.map_err(Failure::Http)?;
        let res = sender.send_request(req).await.map_err(Failure::Http)?;
        let (parts, body) = res.into_parts();
        let body = body.collect().await.map_err(Failure::Http)?.to_bytes();
        Ok(Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        })
    }
}

async fn open(source: IpAddr, target: SocketAddr) -> Result<SendRequest<Full<Bytes>>, Failure> {
    let stream = connect_from(source, target)
        .await
        .map_err(Failure::Connect)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| Failure::Connect(std::io::Error::other(e)))?;
    tokio::spawn(async move {
        // Ends when the server closes the connection or the sender is dropped; a
        // request in flight sees the error itself.
        let _ = conn.await;
    });
    Ok(sender)
}
