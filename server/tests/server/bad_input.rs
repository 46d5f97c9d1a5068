//! A corpus of malformed requests, sent as raw bytes: every one is answered 4xx with
//! an RFC 6749 §5.2 error (or, where the bytes are not HTTP at all, refused by the
//! HTTP layer with a 4xx or a closed connection), none with a 5xx, and a normal flow
//! still works afterwards.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::*;

/// Test limits: small, so the timeout cases finish quickly.
fn config() -> String {
    test_config().replace(
        "[admin]",
        "[limits]\nmax_body_bytes = 1024\nheader_read_timeout_ms = 300\nbody_read_timeout_ms = 300\n[admin]",
    )
}

/// Sends `bytes` (half-closing if `close_write`), reads until the server closes or
/// 5 s pass, and returns the status (0 if none) and body.
async fn raw(s: &TestServer, bytes: &[u8], close_write: bool) -> (u16, String) {
    let mut stream = connect(s).await;
    // A server that closes early may reset the write; the answer is what matters.
    let _ = stream.write_all(bytes).await;
    if close_write {
        let _ = stream.shutdown().await;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|r| r.get(..3))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// A raw connection to `s`.
async fn connect(s: &TestServer) -> TcpStream {
    TcpStream::connect(s.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

fn request(method: &str, path: &str, content_type: Option<&str>, body: &[u8]) -> Vec<u8> {
    request_with(method, path, content_type, &[], body)
}

fn request_with(
    method: &str,
    path: &str,
    content_type: Option<&str>,
    headers: &[&str],
    body: &[u8],
) -> Vec<u8> {
    let mut r = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for h in headers {
        r.push_str(&format!("{h}\r\n"));
    }
    if let Some(ct) = content_type {
        r.push_str(&format!("Content-Type: {ct}\r\n"));
    }
    r.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    let mut bytes = r.into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

const FORM: Option<&str> = Some("application/x-www-form-urlencoded");

/// A malformed request: its name, its bytes, and the status and RFC 6749 §5.2 error
/// code it must be answered with.
type Malformed = (&'static str, Vec<u8>, u16, &'static str);

/// 600 bytes of every value, over and over: not a form, not UTF-8, not HTTP.
fn garbage() -> Vec<u8> {
    (0..=255u8).cycle().take(600).collect()
}

/// Bodies over the 1024-byte limit, whole or chunked.
fn too_large() -> Vec<Malformed> {
    let chunked_oversized = {
        let mut r = b"POST /oauth/token HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..4 {
            r.extend_from_slice(b"200\r\n");
            r.extend_from_slice(&[b'a'; 0x200]);
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"0\r\n\r\n");
        r
    };
    vec![
        (
            "oversized body",
            request("POST", TOKEN, FORM, &[b'a'; 5000]),
            413,
            "invalid_request",
        ),
        (
            "oversized chunked body",
            chunked_oversized,
            413,
            "invalid_request",
        ),
    ]
}

/// Bodies that do not decode as a form of UTF-8 text.
fn bad_encodings() -> Vec<Malformed> {
    vec![
        (
            "binary garbage body",
            request("POST", TOKEN, FORM, &garbage()),
            400,
            "invalid_request",
        ),
        (
            "non-UTF-8 escape",
            request("POST", TOKEN, FORM, b"grant_type=%ff%fe&client_id=tv"),
            400,
            "invalid_request",
        ),
        (
            "bad percent escape",
            request("POST", DA, FORM, b"client_id=t%zzv"),
            400,
            "invalid_request",
        ),
        (
            "truncated escape",
            request("POST", DA, FORM, b"client_id=tv%"),
            400,
            "invalid_request",
        ),
    ]
}

/// Forms the endpoints refuse: repeated, too many or missing parameters, or a body
/// that is not `application/x-www-form-urlencoded` at all. `poll`: a valid poll body.
fn bad_forms(poll: &str) -> Vec<Malformed> {
    let many: Vec<String> = (0..40).map(|i| format!("p{i}=1")).collect();
    vec![
        (
            "repeated parameter",
            request(
                "POST",
                TOKEN,
                FORM,
                format!("{poll}&client_id=tv").as_bytes(),
            ),
            400,
            "invalid_request",
        ),
        (
            "too many parameters",
            request("POST", DA, FORM, many.join("&").as_bytes()),
            400,
            "invalid_request",
        ),
        (
            "JSON content type",
            request(
                "POST",
                TOKEN,
                Some("application/json"),
                br#"{"client_id":"tv"}"#,
            ),
            400,
            "invalid_request",
        ),
        (
            "text content type",
            request("POST", DA, Some("text/plain"), b"client_id=tv"),
            400,
            "invalid_request",
        ),
        (
            "multipart content type",
            request(
                "POST",
                DA,
                Some("multipart/form-data; boundary=x"),
                b"--x--",
            ),
            400,
            "invalid_request",
        ),
        (
            "latin-1 charset",
            request(
                "POST",
                DA,
                Some("application/x-www-form-urlencoded; charset=ISO-8859-1"),
                b"client_id=tv",
            ),
            400,
            "invalid_request",
        ),
        (
            "no content type",
            request("POST", TOKEN, None, poll.as_bytes()),
            400,
            "invalid_request",
        ),
        (
            "missing grant_type",
            request("POST", TOKEN, FORM, b"client_id=tv&device_code=x"),
            400,
            "invalid_request",
        ),
    ]
}

/// Methods an endpoint does not take, and a path that is no endpoint.
fn wrong_methods_and_paths(poll: &str) -> Vec<Malformed> {
    vec![
        (
            "PUT on token",
            request("PUT", TOKEN, FORM, poll.as_bytes()),
            405,
            "invalid_request",
        ),
        (
            "DELETE on device authorization",
            request("DELETE", DA, None, b""),
            405,
            "invalid_request",
        ),
        (
            "PATCH on introspection",
            request("PATCH", INTROSPECT, FORM, b"token=x"),
            405,
            "invalid_request",
        ),
        (
            "unknown path",
            request("POST", "/oauth/../token", FORM, poll.as_bytes()),
            404,
            "not_found",
        ),
    ]
}

/// Client identities that name no client, or credentials that do not parse.
fn bad_clients(poll: &str) -> Vec<Malformed> {
    vec![
        (
            "unicode client_id",
            request("POST", DA, FORM, "client_id=télé".as_bytes()),
            401,
            "invalid_client",
        ),
        (
            "NUL in client_id",
            request("POST", DA, FORM, b"client_id=tv%00"),
            401,
            "invalid_client",
        ),
        (
            "basic header that is not base64",
            request_with(
                "POST",
                TOKEN,
                FORM,
                &["Authorization: Basic !!!"],
                poll.as_bytes(),
            ),
            // RFC 6749 §5.2: an attempt through the header is answered 401 (DA-07).
            401,
            "invalid_client",
        ),
    ]
}

#[tokio::test]
async fn malformed_requests_get_4xx_with_an_rfc_error_and_the_server_keeps_working() {
    let s = TestServer::start_with(&config()).await;
    let da = s.authorize("tv").await;
    let poll = poll_body("tv", &da.device_code);
    let corpus = [
        too_large(),
        bad_encodings(),
        bad_forms(&poll),
        wrong_methods_and_paths(&poll),
        bad_clients(&poll),
    ];
    for (name, bytes, status, error) in corpus.into_iter().flatten() {
        let (got, body) = raw(&s, &bytes, false).await;
        assert_eq!(got, status, "{name}: {body}");
        let v: serde_json::Value =
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{name}: {e}: {body:?}"));
        assert_eq!(v["error"], error, "{name}: {body}");
    }

    // A body shorter than its Content-Length, the client then hanging up.
    let mut truncated = request("POST", TOKEN, FORM, poll.as_bytes());
    truncated.truncate(truncated.len() - 10);
    let (status, body) = raw(&s, &truncated, true).await;
    assert!(
        matches!(status, 400 | 408 | 0),
        "truncated: {status} {body}"
    );

    // Bytes that are not HTTP at all are refused by the HTTP layer, never with a 5xx.
    for bytes in [
        garbage(),
        b"\r\n\r\n\r\n".to_vec(),
        b"GET / HTTP/9.9\r\n\r\n".to_vec(),
    ] {
        let (status, _) = raw(&s, &bytes, true).await;
        assert!(
            status == 0 || (400..500).contains(&status),
            "not HTTP: {status}"
        );
    }
    // A request head far over hyper's limit.
    let huge = format!(
        "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "a".repeat(512 * 1024)
    );
    let (status, _) = raw(&s, huge.as_bytes(), false).await;
    assert!(
        status == 0 || (400..500).contains(&status),
        "huge head: {status}"
    );

    // No state was lost: the pending code is still pending and the flow completes.
    s.advance_ms(INTERVAL * 1000);
    s.poll("tv", &da.device_code)
        .await
        .assert_oauth_error(400, "authorization_pending");
    assert_eq!(
        s.decide(&da.user_code, "approve", "alice").await.status,
        200
    );
    assert_eq!(s.poll("tv", &da.device_code).await.status, 200);
}

#[tokio::test]
async fn slow_request_heads_are_cut_off() {
    // Slowloris: a client that never finishes its request head is disconnected after
    // the header read timeout (300 ms here), instead of holding the connection.
    let s = TestServer::start_with(&config()).await;
    let mut stream = connect(&s).await;
    stream
        .write_all(b"POST /oauth/token HTTP/1.1\r\nHost: t\r\n")
        .await
        .unwrap();
    let mut out = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    assert!(
        closed.is_ok(),
        "the server kept a stalled connection open for 5 s"
    );
    let text = String::from_utf8_lossy(&out);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 408"),
        "{text}"
    );
}

#[tokio::test]
async fn a_head_trickled_a_byte_at_a_time_is_cut_off_at_its_deadline() {
    // Slowloris that keeps sending: a byte every 50 ms never finishes the head, and
    // the bytes do not move its deadline (300 ms after the head began).
    let s = TestServer::start_with(&config()).await;
    let mut stream = connect(&s).await;
    let began = std::time::Instant::now();
    let mut cut = false;
    for b in b"POST /oauth/token HTTP/1.1\r\nHost: t\r\nX-Slow: "
        .iter()
        .cycle()
        .take(200)
    {
        if stream.write_all(&[*b]).await.is_err() {
            cut = true;
            break;
        }
        let mut buf = [0u8; 256];
        if let Ok(read) =
            tokio::time::timeout(Duration::from_millis(50), stream.read(&mut buf)).await
        {
            // The server answered (408) or closed: cut off.
            assert!(matches!(read, Ok(0) | Err(_)) || buf.starts_with(b"HTTP/1.1 408"));
            cut = true;
            break;
        }
    }
    assert!(cut, "a head trickled for 10 s was never cut off");
    assert!(
        began.elapsed() < Duration::from_secs(5),
        "cut off only after {:?}",
        began.elapsed()
    );
}

#[tokio::test]
async fn a_stalled_head_after_pipelined_requests_is_still_cut_off() {
    // Two whole requests in one write (hyper parses the second from what it already
    // read), then the start of a third that never ends: the third head is timed like
    // any other, whatever the two before it left behind.
    let s = TestServer::start_with(&config()).await;
    let mut stream = connect(&s).await;
    stream.write_all(&HEALTH_REQUEST.repeat(2)).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while got.windows(15).filter(|w| w == b"HTTP/1.1 200 OK").count() < 2 {
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("both answers")
            .unwrap();
        assert!(n > 0, "closed before both answers");
        got.extend_from_slice(&buf[..n]);
    }
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    assert!(
        closed_by_server(&mut stream, Duration::from_secs(5)).await,
        "the stalled third head was never cut off"
    );
}

/// The head of a keep-alive device authorization request (RFC 8628 §3.1) whose form
/// body is `length` bytes, with `extra` header lines.
fn keep_alive_form_head(length: usize, extra: &str) -> Vec<u8> {
    format!(
        "POST /oauth/device_authorization HTTP/1.1\r\nHost: t\r\n\
         Content-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: {length}\r\n{extra}\r\n"
    )
    .into_bytes()
}

/// [`config`] with an idle timeout of two seconds (twice the interval, the least the
/// configuration allows) and a body timeout of two.
fn short_idle_config() -> String {
    config()
        .replace("interval = 5", "interval = 1")
        .replace("body_read_timeout_ms = 300", "body_read_timeout_ms = 2000")
        .replace(
            "header_read_timeout_ms = 300",
            "header_read_timeout_ms = 300\nidle_timeout_ms = 2000",
        )
}

#[tokio::test]
async fn connections_that_fall_silent_after_an_answer_are_closed_at_the_idle_timeout() {
    // A request sent the moment the connection opens is read, answered and written in
    // one go, without a read that waits in between: the idle deadline must still be
    // watched from the answer on, or a client that then says nothing holds its
    // connection (a file descriptor) for ever.
    let s = TestServer::start_with(&short_idle_config()).await;
    let mut streams = Vec::new();
    for _ in 0..20 {
        let mut stream = connect(&s).await;
        stream.write_all(HEALTH_REQUEST).await.unwrap();
        streams.push(stream);
    }
    for stream in &mut streams {
        assert!(read_answer(stream).await.starts_with("HTTP/1.1 200"));
    }
    for (i, stream) in streams.iter_mut().enumerate() {
        assert!(
            closed_by_server(stream, Duration::from_secs(6)).await,
            "connection {i} was kept 6 s past its answer with a 2 s idle timeout"
        );
    }
}

#[tokio::test]
async fn a_connection_in_steady_use_outlives_its_idle_timeout() {
    // Requests every 300 ms for 5 s on one connection, with a 2 s idle timeout: the
    // timer armed after the first answer fires while the connection is busy, and must
    // be moved on, not taken for idleness.
    let s = TestServer::start_with(&short_idle_config()).await;
    let mut stream = connect(&s).await;
    for round in 0..17 {
        stream.write_all(HEALTH_REQUEST).await.unwrap();
        let answer = read_answer(&mut stream).await;
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "round {round}: {answer}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn the_idle_timeout_still_holds_after_it_fell_due_during_a_request() {
    // The timer armed by the first answer falls due while a second request's body is
    // on its way; once that is answered and the client falls silent, the connection
    // must still be closed an idle timeout (3 s) later. The second head goes 1.5 s
    // before the timer falls due, slack for a loaded machine (it was 0.3 s), and the
    // body's pause takes it past it.
    let s = TestServer::start_with(
        &short_idle_config()
            .replace("idle_timeout_ms = 2000", "idle_timeout_ms = 3000")
            .replace("body_read_timeout_ms = 2000", "body_read_timeout_ms = 5000"),
    )
    .await;
    let mut stream = connect(&s).await;
    stream.write_all(HEALTH_REQUEST).await.unwrap();
    assert!(read_answer(&mut stream).await.starts_with("HTTP/1.1 200"));
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let body = b"client_id=tv";
    stream
        .write_all(&keep_alive_form_head(body.len(), ""))
        .await
        .unwrap();
    stream.write_all(&body[..6]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    stream.write_all(&body[6..]).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        closed_by_server(&mut stream, Duration::from_secs(8)).await,
        "the connection was kept 8 s past its last answer with a 3 s idle timeout"
    );
}

#[tokio::test]
async fn a_client_that_pipelines_and_never_reads_is_cut_off() {
    // Requests pipelined until the server can write no more answers, none of them
    // read: the server must not wait for ever on a peer that does not read.
    let s = TestServer::start_with(&short_idle_config()).await;
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut stream = socket.connect(addr).await.unwrap();
    let requests = HEALTH_REQUEST.repeat(64);
    let until = std::time::Instant::now() + Duration::from_secs(2);
    while std::time::Instant::now() < until {
        // Blocks once neither side can take more: that is the point.
        let _ = tokio::time::timeout(Duration::from_millis(100), stream.write_all(&requests)).await;
    }
    // Past the idle timeout, unread: the server has given up on the connection, so
    // what is left to read ends soon (an end of file or a reset), where a live one
    // would keep sending answers.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut buf = vec![0u8; 64 * 1024];
    let ended = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "the server still answered a peer that read nothing for 5 s (2 s idle timeout)"
    );
}

#[tokio::test]
async fn a_body_after_100_continue_is_timed_as_a_body_not_as_a_head() {
    // RFC 9110 §10.1.1: the client waits for 100 (Continue), then sends the body. A body
    // that takes 700 ms (past the 300 ms head timeout, within the 2 s body timeout) is
    // read, and the request answered.
    let s = TestServer::start_with(&short_idle_config()).await;
    let mut stream = connect(&s).await;
    let body = b"client_id=tv";
    stream
        .write_all(&keep_alive_form_head(
            body.len(),
            "Expect: 100-continue\r\n",
        ))
        .await
        .unwrap();
    let mut buf = [0u8; 4096];
    let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
        .await
        .expect("an interim answer")
        .unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 100"),
        "{:?}",
        String::from_utf8_lossy(&buf[..n])
    );
    stream.write_all(&body[..5]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(700)).await;
    stream.write_all(&body[5..]).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_head_sent_in_pieces_within_the_deadline_is_served() {
    // The head timer is for heads that stall, not for heads that take two reads: three
    // pieces 100 ms apart, well within a 2 s deadline (300 ms had left a loaded
    // machine 120 ms of slack).
    let s = TestServer::start_with(&config().replace(
        "header_read_timeout_ms = 300",
        "header_read_timeout_ms = 2000",
    ))
    .await;
    let mut stream = connect(&s).await;
    for piece in [&b"GET /healthz HTTP/1.1\r\n"[..], b"Host: t\r\n", b"\r\n"] {
        stream.write_all(piece).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let answer = read_answer(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn idle_keep_alive_connections_outlive_the_poll_interval() {
    // A device that polls every `interval` on one keep-alive connection keeps it: the
    // header read timeout (300 ms here; hyper applied it to idle connections too, and
    // its 5 s default equals the default interval) no longer cuts idle connections;
    // the idle timeout (2.5 s here) does.
    let s = TestServer::start_with(&config().replace("interval = 5", "interval = 1").replace(
        "header_read_timeout_ms = 300",
        "header_read_timeout_ms = 300\nidle_timeout_ms = 2500",
    ))
    .await;
    let da = s.authorize("tv").await;
    let mut stream = connect(&s).await;
    let body = poll_body("tv", &da.device_code);
    let poll = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    for round in 0..3 {
        stream.write_all(poll.as_bytes()).await.unwrap();
        let mut buf = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
            .await
            .unwrap_or_else(|_| panic!("round {round}: no answer"))
            .unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        assert!(
            text.starts_with("HTTP/1.1 400") && text.contains("authorization_pending"),
            "round {round}: the connection was closed or answered {text:?}"
        );
        // Idle for longer than the interval and than the header timeout.
        tokio::time::sleep(Duration::from_millis(1_200)).await;
        s.advance_ms(1_000);
    }
    // Idle past the idle timeout: the server closes the connection.
    let mut buf = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "an idle connection was kept past the idle timeout: {closed:?}"
    );
}

#[tokio::test]
async fn slow_request_bodies_get_408() {
    let s = TestServer::start_with(&config()).await;
    let mut stream = connect(&s).await;
    stream
        .write_all(b"POST /oauth/token HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nclient_id=tv")
        .await
        .unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(text.contains("\"error\":\"invalid_request\""), "{text}");
}

/// A keep-alive request for `/healthz`: the connection stays open after its answer.
const KEEP_ALIVE: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n";

/// `limits.max_connections_per_source`: an address that holds its cap of open
/// connections is answered 503 `temporarily_unavailable` on the next and cut off,
/// while another address (127.0.0.2, bound as the source) still connects and is
/// served; closing one gives the first address a connection back.
#[tokio::test]
async fn a_source_at_its_connection_cap_is_refused_and_other_sources_are_served() {
    let s = TestServer::start_with(&test_config().replace(
        "[admin]",
        "[limits]\nmax_connections_per_source = 3\ntrusted_proxies = [\"127.0.0.3\"]\n[admin]",
    ))
    .await;
    let addr: std::net::SocketAddr = s.base.trim_start_matches("http://").parse().unwrap();
    let from = |source: [u8; 4]| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket
            .bind((std::net::Ipv4Addr::from(source), 0).into())
            .unwrap();
        socket.connect(addr).await.unwrap()
    };
    // A keep-alive request on each, answered: the three are held open.
    let mut held = Vec::new();
    for _ in 0..3 {
        let mut c = from([127, 0, 0, 1]).await;
        c.write_all(KEEP_ALIVE).await.unwrap();
        let mut answer = [0u8; 12];
        c.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200");
        held.push(c);
    }
    let refused = |mut c: TcpStream| async move {
        let _ = c.write_all(KEEP_ALIVE).await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), c.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).into_owned()
    };
    let fourth = refused(from([127, 0, 0, 1]).await).await;
    assert!(fourth.starts_with("HTTP/1.1 503"), "{fourth:?}");
    assert!(
        fourth.contains("temporarily_unavailable") && fourth.contains("Retry-After: 5"),
        "{fourth:?}"
    );
    // Another source is not held to the first one's count.
    let mut other = from([127, 0, 0, 2]).await;
    other.write_all(KEEP_ALIVE).await.unwrap();
    let mut answer = [0u8; 12];
    other.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 200");
    // One closed: the first source connects again (the server sees the close soon).
    drop(held.pop());
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let mut c = from([127, 0, 0, 1]).await;
        c.write_all(KEEP_ALIVE).await.unwrap();
        let mut answer = [0u8; 12];
        if c.read_exact(&mut answer).await.is_ok() && &answer == b"HTTP/1.1 200" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no connection given back: {:?}",
            String::from_utf8_lossy(&answer)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // A trusted reverse proxy carries everyone's connections: it is not capped (it
    // was, and a proxy in front turned all but three of its connections away).
    let mut proxied = Vec::new();
    for _ in 0..5 {
        let mut c = from([127, 0, 0, 3]).await;
        c.write_all(KEEP_ALIVE).await.unwrap();
        let mut answer = [0u8; 12];
        c.read_exact(&mut answer).await.unwrap();
        assert_eq!(&answer, b"HTTP/1.1 200");
        proxied.push(c);
    }
    let metrics = s.client.get("/metrics").await;
    let text = String::from_utf8_lossy(&metrics.body);
    assert!(
        text.lines().any(|l| l
            .starts_with("deviceflow_throttled_total{limit=\"connections_per_source\"}")
            && !l.ends_with(" 0")),
        "{text}"
    );
}

/// No connection keeps a read buffer over `MAX_READ_BUFFER` (16 KiB): a longer request
/// head is refused 431, where hyper's default (about 400 KiB) took a 400 KB head and
/// kept the grown buffer for the connection's keep-alive life (4,000 idle connections
/// of one source held 1.2 GB). A head under it is served, and a form body far longer is
/// still read whole, in chunks.
#[tokio::test]
async fn a_request_head_over_the_read_buffer_is_refused_431_and_a_long_body_is_not() {
    let s = TestServer::start_with(
        &config().replace("max_body_bytes = 1024", "max_body_bytes = 65535"),
    )
    .await;
    let head = |filler: usize| {
        format!(
            "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Filler: {}\r\n\r\n",
            "a".repeat(filler)
        )
    };
    let limit = deviceflow_server::MAX_READ_BUFFER;
    let (status, _) = raw(&s, head(limit - 1024).as_bytes(), true).await;
    assert_eq!(status, 200);
    let (status, _) = raw(&s, head(limit).as_bytes(), false).await;
    assert_eq!(status, 431);
    // 60 KB of form: unknown parameters, then the client's id (RFC 8628 §3.1).
    let body = format!("pad={}&client_id=tv", "p".repeat(60_000));
    let (status, answer) = raw(&s, &request("POST", DA, FORM, body.as_bytes()), true).await;
    assert_eq!(status, 200, "{answer}");
}

/// A client that shuts its sending side as soon as its request is out (`nc -N`, some
/// HTTP/1.0 clients) still gets the answer (RFC 9112 §9.6). Before, hyper took the
/// end of input for a client gone and dropped most such requests unanswered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_followed_at_once_by_a_half_close_is_answered() {
    let s = TestServer::start_with(&config()).await;
    // Keep-alive, as the reviewer's client: not `Connection: close`.
    let mut issue = keep_alive_form_head(12, "");
    issue.extend_from_slice(b"client_id=tv");
    for i in 0..40 {
        let (status, body) = raw(&s, &issue, true).await;
        assert_eq!(status, 200, "request {i}: {body}");
    }
}

/// RFC 9112 §3.2: an HTTP/1.1 request without a Host header, with two, or with one
/// that is no host and port gets 400 (a proxy in front may read another Host than
/// this server would); HTTP/1.0 may leave it out, and an empty one (a target without
/// an authority) or an IP literal is a Host. Answered 200 before.
#[tokio::test]
async fn a_request_without_one_valid_host_header_gets_400() {
    let s = TestServer::start_with(&config()).await;
    for (name, head, want) in [
        ("none", "GET /healthz HTTP/1.1\r\n\r\n", 400),
        (
            "two",
            "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            400,
        ),
        (
            "a path",
            "GET /healthz HTTP/1.1\r\nHost: a b/c@d\r\n\r\n",
            400,
        ),
        ("HTTP/1.0 without", "GET /healthz HTTP/1.0\r\n\r\n", 200),
        ("empty", "GET /healthz HTTP/1.1\r\nHost:\r\n\r\n", 200),
        (
            "IPv6 and port",
            "GET /healthz HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n",
            200,
        ),
        (
            "a name",
            "GET /healthz HTTP/1.1\r\nHost: auth.example-1.test\r\n\r\n",
            200,
        ),
    ] {
        let (status, body) = raw(&s, head.as_bytes(), true).await;
        if want == 200 {
            // HTTP/1.0's answer is an HTTP/1.0 one, which `raw` reads no status from.
            assert_eq!(body, r#"{"status":"ok"}"#, "{name}");
        } else {
            assert_eq!(status, want, "{name}: {body}");
            let v: serde_json::Value = serde_json::from_str(&body).unwrap();
            assert_eq!(v["error"], "invalid_request", "{name}: {body}");
            assert!(
                v["error_description"].as_str().unwrap().contains("Host"),
                "{body}"
            );
        }
    }
}
