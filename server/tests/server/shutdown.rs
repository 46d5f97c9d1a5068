//! Stopping the server: once shutdown is asked, it accepts no new connection, closes
//! idle keep-alive connections at once (not when they time out, nor after the drain
//! timeout), and answers a request already in flight before closing its connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use deviceflow_server::{App, Clock, FileConfig, Settings};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::common::*;

/// Well under the server's drain timeout (10 s), and far above what closing takes.
const PROMPTLY: Duration = Duration::from_secs(5);

/// A running server: its address, its task, and what stops it.
type Running = (
    SocketAddr,
    JoinHandle<std::io::Result<()>>,
    oneshot::Sender<()>,
);

/// A server on [`test_config`].
async fn start() -> Running {
    start_with(&test_config()).await
}

/// A server on `toml`.
async fn start_with(toml: &str) -> Running {
    let settings = Settings::from_file(FileConfig::parse(toml, "test").unwrap()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Arc::new(App::new(
        settings,
        format!("http://{addr}"),
        Clock::manual(START_MS),
    ));
    let (tx, rx) = oneshot::channel::<()>();
    let server = tokio::spawn(deviceflow_server::serve(listener, app, async {
        let _ = rx.await;
    }));
    (addr, server, tx)
}

/// A connection to `addr` carrying a device authorization request (RFC 8628 §3.1)
/// whose body has not all arrived: `client_id=t` of `client_id=tv`.
async fn unfinished_request(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(
            b"POST /oauth/device_authorization HTTP/1.1\r\nHost: test\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\n\r\n\
              client_id=t",
        )
        .await
        .unwrap();
    stream
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed_at_once() {
    let (addr, server, stop) = start().await;
    // Two idle keep-alive connections, each after one answered request: their tasks
    // wait on the socket, and only the shutdown can wake them.
    let mut idle = Vec::new();
    for _ in 0..2 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(HEALTH_REQUEST).await.unwrap();
        assert!(read_answer(&mut stream).await.starts_with("HTTP/1.1 200"));
        idle.push(stream);
    }
    stop.send(()).unwrap();
    tokio::time::timeout(PROMPTLY, server)
        .await
        .expect("the server stops without waiting out its drain timeout")
        .unwrap()
        .unwrap();
    for stream in &mut idle {
        assert!(closed_by_server(stream, PROMPTLY).await);
    }
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "a stopped server accepts no connection"
    );
}

#[tokio::test]
async fn a_request_in_flight_is_answered_before_its_connection_closes() {
    let (addr, server, stop) = start().await;
    let mut stream = unfinished_request(addr).await;
    // The head is in, so the request is in flight when the shutdown comes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!server.is_finished(), "the server waits for the request");
    stream.write_all(b"v").await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(answer.contains("\"device_code\""), "{answer}");
    assert!(closed_by_server(&mut stream, PROMPTLY).await);
    tokio::time::timeout(PROMPTLY, server)
        .await
        .expect("the server stops once the answer is out")
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn a_request_still_in_flight_after_the_drain_timeout_is_dropped() {
    // A body that stops arriving (its own timeout, 30 s here, far off): the server
    // waits its drain timeout (10 s) for it, then drops the connection and stops.
    let (addr, server, stop) = start_with(&format!(
        "{}\n[limits]\nbody_read_timeout_ms = 30000\n",
        test_config()
    ))
    .await;
    let mut stream = unfinished_request(addr).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(15), server)
        .await
        .expect("the server stops after its drain timeout")
        .unwrap()
        .unwrap();
    assert!(closed_by_server(&mut stream, PROMPTLY).await);
}
