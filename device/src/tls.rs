//! TLS for the workspace's own clients: this device and `deviceflow-server clients`
//! (through [`request`](crate::request)), and the load generator's fleets. One client
//! configuration, and one way to say what went wrong in a handshake, which the
//! conformance suite (its own HTTP client, on the same rustls) and the server's Redis
//! connection say too.
//!
//! rustls on ring, TLS 1.2 and 1.3 with its safe defaults, ALPN `http/1.1`, and the
//! roots the conformance suite trusts: Mozilla's, bundled, and the system's, which
//! `SSL_CERT_FILE` / `SSL_CERT_DIR` replace with a private CA's.

use std::sync::{Arc, OnceLock};

pub use tokio_rustls::{self, rustls};

use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

/// A TLS connection over TCP, as [`connect`] makes it.
pub type TlsStream = tokio_rustls::client::TlsStream<TcpStream>;

/// The client configuration every connection shares, made once per process (the
/// system's store is read once).
pub fn client_config() -> Result<Arc<rustls::ClientConfig>, String> {
    static CONFIG: OnceLock<Result<Arc<rustls::ClientConfig>, String>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let mut roots = rustls::RootCertStore::empty();
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
            named_roots_readable()?;
            // Certificates of the system's store that do not parse are skipped, as
            // reqwest skips them for the suite.
            let native = rustls_native_certs::load_native_certs();
            let _ = roots.add_parsable_certificates(native.certs);
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .map_err(|e| format!("TLS: {e}"))?
                .with_root_certificates(roots)
                .with_no_client_auth();
            // A server that also speaks HTTP/2 must not pick it: these clients speak
            // HTTP/1.1.
            config.alpn_protocols = vec![b"http/1.1".to_vec()];
            Ok(Arc::new(config))
        })
        .clone()
}

/// Whether the roots `SSL_CERT_FILE` / `SSL_CERT_DIR` name can be read, and hold a
/// certificate: one that cannot (a typo, a DER file where PEM is read) was skipped
/// without a word, and the server's certificate then said to come from an unknown CA.
/// The clients check it before their first `https://` request (the suite's too, whose
/// HTTP client reads the same variables).
pub fn named_roots_readable() -> Result<(), String> {
    let file = std::env::var_os("SSL_CERT_FILE").filter(|f| !f.is_empty());
    let dir = std::env::var_os("SSL_CERT_DIR").filter(|d| !d.is_empty());
    if let Some(file) = &file {
        let path = std::path::Path::new(file);
        let read = rustls_native_certs::load_certs_from_paths(Some(path), None);
        if let Some(e) = read.errors.first() {
            return Err(format!("SSL_CERT_FILE={}: {e}", path.display()));
        }
        if read.certs.is_empty() {
            return Err(format!(
                "SSL_CERT_FILE={} holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\"; a DER one converts with openssl x509 -inform der)",
                path.display()
            ));
        }
    }
    for d in dir.iter().flat_map(std::env::split_paths) {
        if !d.is_dir() {
            return Err(format!(
                "SSL_CERT_DIR names {}, which is not a folder",
                d.display()
            ));
        }
    }
    Ok(())
}

/// The name a server's certificate must show, from the host of a URL's authority (a
/// DNS name, an IPv4 address, or an IPv6 one with or without its brackets).
pub fn server_name(host: &str) -> Result<ServerName<'static>, String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    ServerName::try_from(host.to_owned())
        .map_err(|e| format!("{host} cannot name a TLS server: {e}"))
}

/// A TLS handshake on `tcp` with the server `name`, with [`client_config`]. Its error
/// is rustls's, as an `io::Error`; [`hint`] says what to do about it.
pub async fn connect(
    config: Arc<rustls::ClientConfig>,
    name: ServerName<'static>,
    tcp: TcpStream,
) -> std::io::Result<TlsStream> {
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

/// Whom a TLS connection is with, for what [`hint`] says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    /// An HTTP server (`https://`).
    Http,
    /// Redis (`rediss://`), which the server reaches.
    Redis,
}

impl Peer {
    fn name(self) -> &'static str {
        match self {
            Peer::Http => "the server",
            Peer::Redis => "Redis",
        }
    }

    fn plain(self) -> &'static str {
        match self {
            Peer::Http => "http://",
            Peer::Redis => "redis://",
        }
    }
}

/// What to do about a TLS connection to `peer` that failed, from rustls's words for
/// it (its error's text; case does not matter): a clause to append, " (…)", or ""
/// when there is nothing the user can change.
pub fn hint(said: &str, peer: Peer) -> String {
    hint_with(said, peer, roots_named())
}

/// Which of `SSL_CERT_FILE` and `SSL_CERT_DIR` names the roots in place of the
/// system's, if one does.
pub fn roots_named() -> Option<&'static str> {
    ["SSL_CERT_FILE", "SSL_CERT_DIR"]
        .into_iter()
        .find(|v| std::env::var_os(v).is_some_and(|v| !v.is_empty()))
}

/// [`hint`], with `roots` for what [`roots_named`] would say.
pub fn hint_with(said: &str, peer: Peer, roots: Option<&str>) -> String {
    let said = said.to_ascii_lowercase();
    let who = peer.name();
    let has = |words: &str| said.contains(words);
    if has("unknownissuer") {
        match roots {
            Some(set) => format!(
                " (no CA certificate in {set} signed {who}'s, or {who} does not send its intermediate CA certificates: name the root CA there, or have {who} send its whole chain)"
            ),
            None => " (a certificate a private CA signed: name that CA's certificate in SSL_CERT_FILE)".to_owned(),
        }
    } else if has("badsignature") {
        // Signed by a key other than that of the trusted CA it names: a certificate
        // made anew under an old CA's name, or one signed by itself whose name a
        // trusted one has.
        match roots {
            Some(set) => format!(
                " ({who}'s certificate names a CA in {set}, but that CA did not sign it: name the CA certificate that did)"
            ),
            None => format!(
                " ({who}'s certificate names a CA this client trusts, but that CA did not sign it: name the CA certificate that did in SSL_CERT_FILE)"
            ),
        }
    } else if has("not valid for name") {
        format!(" (name {who} by a host or address its certificate lists)")
    } else if has("certificaterequired") {
        match peer {
            Peer::Http => " (the server asks for a client certificate, which this client does not send)".to_owned(),
            Peer::Redis => " (Redis asks for a client certificate, which this server does not send: set Redis's tls-auth-clients to no or optional)".to_owned(),
        }
    } else if has("causedasendentity") {
        format!(
            " ({who}'s certificate is a CA's, as openssl req -x509 makes one by default: give {who} a certificate a CA signed, or make it with -addext basicConstraints=critical,CA:FALSE)"
        )
    } else if has("expired") {
        format!(" ({who}'s certificate has expired)")
    } else if has("notvalidyet") {
        format!(" ({who}'s certificate is not valid yet: is this machine's clock right?)")
    } else if has("noapplicationprotocol") && peer == Peer::Http {
        " (the server speaks only HTTP/2; this client speaks HTTP/1.1)".to_owned()
    } else if has("invalidcontenttype") {
        // The first bytes back were not a TLS record: a plain answer to the hello.
        format!(
            " ({who} answered without TLS: is this a plain {} port?)",
            peer.plain()
        )
    } else if has("certificate") && !has("alert") {
        format!(" ({who}'s certificate could not be checked)")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_handshakes_say_what_to_do_in_rustls_words() {
        use Peer::{Http, Redis};
        let unknown = "invalid peer certificate: UnknownIssuer";
        assert_eq!(
            hint_with(unknown, Http, None),
            " (a certificate a private CA signed: name that CA's certificate in SSL_CERT_FILE)"
        );
        assert!(hint_with(unknown, Redis, Some("SSL_CERT_DIR"))
            .starts_with(" (no CA certificate in SSL_CERT_DIR signed Redis's, or Redis does not send its intermediate"));
        let name = "invalid peer certificate: certificate not valid for name \"localhost\"; certificate is only valid for IpAddress(127.0.0.1)";
        assert_eq!(
            hint_with(name, Redis, None),
            " (name Redis by a host or address its certificate lists)"
        );
        let forged = "invalid peer certificate: BadSignature";
        assert!(hint_with(forged, Http, None).contains("that CA did not sign it"));
        assert!(hint_with(forged, Http, None).contains("SSL_CERT_FILE"));
        let plain = "received corrupt message of type InvalidContentType";
        assert!(hint_with(plain, Http, None).ends_with("is this a plain http:// port?)"));
        assert!(hint_with(plain, Redis, None).ends_with("is this a plain redis:// port?)"));
        // Asked for a client certificate: not the server's certificate at fault.
        let asked = "received fatal alert: CertificateRequired";
        assert!(hint_with(asked, Http, None).contains("asks for a client certificate"));
        assert!(hint_with(asked, Redis, None).contains("tls-auth-clients"));
        let ca = "invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))";
        assert!(hint_with(ca, Http, None).contains("basicConstraints=critical,CA:FALSE"));
        let expired = "invalid peer certificate: certificate expired: verification time 1, but certificate is not valid after 0";
        assert_eq!(
            hint_with(expired, Http, None),
            " (the server's certificate has expired)"
        );
        assert!(
            hint_with("received fatal alert: NoApplicationProtocol", Http, None)
                .contains("only HTTP/2")
        );
        assert_eq!(
            hint_with("Connection refused (os error 111)", Http, None),
            ""
        );
    }

    #[test]
    fn a_server_is_named_by_its_host_or_address() {
        assert!(matches!(server_name("[::1]"), Ok(ServerName::IpAddress(_))));
        assert!(matches!(
            server_name("127.0.0.1"),
            Ok(ServerName::IpAddress(_))
        ));
        assert!(matches!(
            server_name("auth.example"),
            Ok(ServerName::DnsName(_))
        ));
        assert!(server_name("a b").is_err());
    }
}
