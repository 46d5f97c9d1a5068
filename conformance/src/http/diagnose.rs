//! What a request that got no answer tells a person, said where the run stops on it
//! (discovery, the preflight): whether the connection was made at all (a server that
//! accepts and never answers is not "unreachable"), and whether a plain `http://`
//! request went to a port that speaks TLS. It owns no request of the cases: the
//! exchange's own error is in the evidence, as it came.

use std::time::Duration;

use crate::http::reach::Reach;

/// The longest the connection probe after a timeout waits.
const PROBE: Duration = Duration::from_secs(5);

/// Whether a new TCP connection to `url`'s host and port is accepted, within the
/// request `timeout` (at most `PROBE`), to the addresses `reach` allows: `None`
/// when that cannot be said (no such address, a name that does not resolve).
/// Asked only after a request to `url` timed out: the answer tells "connected, but
/// no answer" from "no connection".
pub async fn connects(url: &str, reach: &Reach, timeout: Duration) -> Option<bool> {
    let u = url::Url::parse(url).ok()?;
    let port = u.port_or_known_default()?;
    let host = match u.host()? {
        url::Host::Domain(d) => d.to_owned(),
        url::Host::Ipv4(ip) => ip.to_string(),
        url::Host::Ipv6(ip) => ip.to_string(),
    };
    let within = timeout.min(PROBE);
    let addrs = tokio::time::timeout(within, tokio::net::lookup_host((host.as_str(), port)))
        .await
        .ok()?
        .ok()?;
    // The address rule holds here as for every request: only addresses it lets
    // through are connected to.
    let allowed: Vec<_> = addrs
        .filter(|a| reach.refuses(&host, a.ip()).is_none())
        .collect();
    let first = *allowed.first()?;
    match tokio::time::timeout(within, tokio::net::TcpStream::connect(first)).await {
        Ok(Ok(_)) => Some(true),
        Ok(Err(_)) | Err(_) => Some(false),
    }
}

/// A hint for a request to `url` that failed with `error` (the exchange's error, as
/// [`crate::http`] words it): a plain `http://` request that a server broke off
/// without an HTTP answer is what a TLS port does with it. Empty when there is
/// nothing to add.
pub fn tls_hint(url: &str, error: &str) -> &'static str {
    let said = error.to_ascii_lowercase();
    // Not any "invalid HTTP …": an answer that starts as HTTP and breaks later (a
    // control character in a header: "invalid HTTP header parsed") came from a server
    // that speaks HTTP, badly. A TLS port's alert record has no `HTTP/1.x` to begin
    // with.
    let broken_off = [
        "connection reset",
        "closed before message completed",
        "invalid http version",
        "invalid status",
    ]
    .iter()
    .any(|w| said.contains(w));
    if broken_off && crate::http::reach::is_http(url) {
        " (is this port speaking TLS? give https://)"
    } else {
        ""
    }
}

/// Whether `error` (as [`crate::http`] words it) is a request that ran out of time.
pub fn timed_out(error: &str) -> bool {
    error.starts_with("timed out")
}

/// `url` and why a request to it got no answer, in words: "cannot reach URL: ERROR",
/// or, when the request timed out and a new connection to it is accepted, that it
/// accepted the connection and sent no answer within `timeout` (`--timeout`).
pub async fn no_answer(url: &str, error: &str, reach: &Reach, timeout: Duration) -> String {
    if timed_out(error) {
        match connects(url, reach, timeout).await {
            Some(true) => {
                return format!(
                    "{url} accepted the connection but sent no answer within {} s (--timeout): is it an HTTP server, and is it up?",
                    timeout.as_secs()
                )
            }
            Some(false) => {
                return format!(
                    "cannot reach {url}: no connection within {} s ({error})",
                    timeout.as_secs()
                )
            }
            None => {}
        }
    }
    format!("cannot reach {url}: {error}{}", tls_hint(url, error))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_request_broken_off_asks_whether_the_port_speaks_tls() {
        for error in [
            "request failed: connection closed before message completed",
            "connection failed: Connection reset by peer (os error 104)",
            "request failed: invalid HTTP version parsed",
        ] {
            assert!(
                tls_hint("http://127.0.0.1:8443/x", error).contains("https://"),
                "{error}"
            );
            assert_eq!(tls_hint("https://127.0.0.1:8443/x", error), "", "{error}");
        }
        assert_eq!(
            tls_hint(
                "http://127.0.0.1:1/",
                "connection failed: Connection refused (os error 111)"
            ),
            ""
        );
    }

    #[tokio::test]
    async fn a_server_that_accepts_and_never_answers_is_said_as_connected() {
        // Accepted by the kernel (the backlog), never answered.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        let said = no_answer(
            &url,
            "timed out: operation timed out",
            &Reach::anywhere(),
            Duration::from_secs(3),
        )
        .await;
        assert!(said.contains("accepted the connection"), "{said}");
        assert!(said.contains("no answer within 3 s"), "{said}");
        assert!(!said.contains("cannot reach"), "{said}");
        drop(listener);
        let said = no_answer(
            &url,
            "timed out: operation timed out",
            &Reach::anywhere(),
            Duration::from_secs(3),
        )
        .await;
        assert!(said.starts_with("cannot reach"), "{said}");
    }
}
