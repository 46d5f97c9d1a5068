//! A store URL that cannot work, said in one line with what to check and exit status
//! 1: a port that is not Redis's (a TLS terminator, an HTTP server), a fragment
//! (`#insecure`), a password after the first node. What the URL's form shows is
//! refused with the configuration, before any connection.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use deviceflow_testkit::{temp_dir, tls};

use super::*;

/// A TLS alert record, `decode_error` (RFC 8446 §5.1, §6): what a TLS server sends
/// back for bytes that are no handshake, as a client's plain RESP is.
const TLS_ALERT: &[u8] = b"\x15\x03\x03\x00\x02\x02\x32";

/// A listener on a free loopback port that answers every connection `answer` once it
/// has read something, then closes it; with the number of connections it took. It
/// lives until the test process ends.
fn answering(answer: &'static [u8]) -> (u16, Arc<AtomicUsize>) {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let taken = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&taken);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            counted.fetch_add(1, Ordering::Relaxed);
            std::thread::spawn(move || {
                let _ = conn.set_read_timeout(Some(Duration::from_secs(5)));
                let mut request = [0u8; 1024];
                if conn.read(&mut request).is_ok_and(|n| n > 0) {
                    let _ = conn.write_all(answer);
                }
            });
        }
    });
    (port, taken)
}

/// `check-config` on `store`: exit status 1, and its one line on standard error.
#[track_caller]
fn refused(store: &str) -> String {
    let (code, out, err) = check_config(store);
    assert_eq!(code, Some(1), "{store}: {out}{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{store}: {err}");
    assert!(!err.contains("panicked"), "{err}");
    err.trim_end().to_owned()
}

/// `redis://` to a port that speaks TLS (a TLS terminator in front of Redis, as
/// stunnel or envoy) or HTTP printed the client's parser on three lines: `Incompatible
/// type - Parse error at 1` / ``Unexpected `3` `` / ``Unexpected `21` ``. One line
/// now, naming the scheme to use, or saying that the port is not Redis's.
#[test]
fn a_port_that_does_not_speak_redis_is_named_in_one_line_with_what_to_check() {
    let (alert, _) = answering(TLS_ALERT);
    let store = format!("redis://127.0.0.1:{alert}");
    assert_eq!(
        refused(&store),
        format!("deviceflow-server: store \"{store}\": cannot reach Redis: this port speaks TLS: use rediss://")
    );
    let cluster = format!("redis+cluster://127.0.0.1:{alert}");
    assert_eq!(
        refused(&cluster),
        format!("deviceflow-server: store \"{cluster}\": cannot reach Redis: Failed to create initial connections - Io: this port speaks TLS: use rediss+cluster://")
    );

    let (http, _) =
        answering(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let store = format!("redis://127.0.0.1:{http}");
    assert_eq!(
        refused(&store),
        format!("deviceflow-server: store \"{store}\": cannot reach Redis: this port does not speak Redis (it answered \"HT…\"): check the host and port")
    );
    let sentinels = format!("redis+sentinel://127.0.0.1:{http}/svc");
    assert_eq!(
        refused(&sentinels),
        format!("deviceflow-server: store \"{sentinels}\": cannot reach Redis: no Sentinel answered: 127.0.0.1:{http} (this port does not speak Redis (it answered \"HT…\"): check the host and port)")
    );

    // A real TLS terminator (rustls) in front of a real Redis.
    let redis = RedisServer::start().unwrap();
    let certs = temp_dir("store-url-tls").unwrap();
    tls::certificates(&certs).unwrap();
    let port = free_port().unwrap();
    let upstream = ([127, 0, 0, 1], redis.port()).into();
    let _terminator = tls::TlsTerminator::start(&certs, port, upstream).unwrap();
    let store = format!("redis://127.0.0.1:{port}");
    assert_eq!(
        refused(&store),
        format!("deviceflow-server: store \"{store}\": cannot reach Redis: this port speaks TLS: use rediss://")
    );
    let _ = std::fs::remove_dir_all(&certs);
}

/// `rediss://…/#insecure` was refused only at the first connection, in the client's
/// words ("Cannot create insecure client without tls-rustls-insecure feature -
/// InvalidClientConfig"); another fragment was ignored on `redis://` and went to the
/// last seed only on a cluster. Each form now refuses it with the configuration, and
/// no connection is opened.
#[test]
fn a_fragment_is_refused_with_the_configuration_on_every_form() {
    let (port, taken) = answering(b"+PONG\r\n");
    let insecure = "#insecure is not supported: Redis's certificate is always checked; to trust a private CA, name its certificate (PEM) in SSL_CERT_FILE";
    for store in [
        format!("rediss://127.0.0.1:{port}/#insecure"),
        format!("rediss+cluster://127.0.0.1:{port},127.0.0.1:{port}/#insecure"),
        format!("rediss+sentinel://127.0.0.1:{port}/svc#insecure"),
    ] {
        assert_eq!(
            refused(&store),
            format!("deviceflow-server: invalid configuration: store \"{store}\": {insecure}")
        );
    }
    for store in [
        format!("redis://127.0.0.1:{port}/#other"),
        format!("redis+cluster://127.0.0.1:{port}#other"),
        format!("redis+sentinel://127.0.0.1:{port}/svc#other"),
    ] {
        assert!(
            refused(&store).ends_with(
                "a store URL takes no fragment (\"#…\"; a \"#\" in a password is written %23)"
            ),
            "{store}"
        );
    }
    assert_eq!(taken.load(Ordering::Relaxed), 0, "a connection was opened");
}

/// `redis+cluster://127.0.0.1:9,:pw@127.0.0.1:6379` was shown as
/// `redis+cluster://***@127.0.0.1:6379`: `127.0.0.1:9,` was read as a user name and
/// that node dropped; a Sentinel URL did the same. The password is written once,
/// before the first node, and refused anywhere else, before any connection.
#[test]
fn a_password_after_the_first_node_is_refused_naming_the_form() {
    let (port, taken) = answering(b"+PONG\r\n");
    let cluster = format!("redis+cluster://127.0.0.1:9,:pw-4@127.0.0.1:{port}");
    let err = refused(&cluster);
    assert_eq!(
        err,
        format!("deviceflow-server: invalid configuration: store \"redis+cluster://***@127.0.0.1:{port}\": the password is written once, before the first node: redis+cluster://[USER:]PASSWORD@host:port,host:port (a \",\" in a password is written %2C)")
    );
    let sentinel = format!("rediss+sentinel://127.0.0.1:9,u:pw-4@127.0.0.1:{port}/svc");
    let err = refused(&sentinel);
    assert_eq!(
        err,
        format!("deviceflow-server: invalid configuration: store \"rediss+sentinel://***@127.0.0.1:{port}/svc\": the password is written once, before the first Sentinel: rediss+sentinel://[USER:]PASSWORD@host:port,host:port/SERVICE (a \",\" in a password is written %2C)")
    );
    assert!(!err.contains("pw-4"), "{err}");
    assert_eq!(taken.load(Ordering::Relaxed), 0, "a connection was opened");
}
