//! A device-flow server in a few lines for a test: each request answered by a closure
//! of (its base URL, method, path), one request per connection, and the connections it
//! accepted counted.

// Each test binary compiles this module and uses part of it.
#![allow(dead_code)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A response: status line, content type, extra header lines, body.
pub type Answer = (&'static str, &'static str, String, String);

/// A small HTTP/1.1 server on `ip:0`: every request answered by `route(method, path)`,
/// one per connection; returns its base URL and how many connections it accepted.
pub async fn serve(
    ip: &str,
    route: impl Fn(&str, &str, &str) -> Answer + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((ip, 0)).await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let accepted = Arc::new(AtomicUsize::new(0));
    let (count, route, me) = (Arc::clone(&accepted), Arc::new(route), base.clone());
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            count.fetch_add(1, Ordering::SeqCst);
            let (route, me) = (Arc::clone(&route), me.clone());
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let Ok(n) = conn.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let length: usize = head
                    .lines()
                    .find_map(|l| {
                        let (k, v) = l.split_once(':')?;
                        k.eq_ignore_ascii_case("content-length")
                            .then(|| v.trim().parse().ok())?
                    })
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    let Ok(n) = conn.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let mut words = head.split_whitespace();
                let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
                let path = path.split('?').next().unwrap_or("");
                let (status, ct, headers, body) = route(&me, method, path);
                let answer = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: {ct}\r\ncache-control: no-store\r\n{headers}content-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    });
    (base, accepted)
}

pub fn json(status: &'static str, body: String) -> Answer {
    (status, "application/json", String::new(), body)
}
