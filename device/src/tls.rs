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

/// What to do about a TLS handshake with `peer` ("the server", "Redis") that failed,
/// from rustls's words for it (its error's text; case does not matter): a clause to
/// append, " (…)", or "" when there is nothing the user can change.
pub fn hint(said: &str, peer: &str) -> String {
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
pub fn hint_with(said: &str, peer: &str, roots: Option<&str>) -> String {
    let said = said.to_ascii_lowercase();
    if said.contains("unknownissuer") {
        match roots {
            Some(set) => {
                format!(" (no CA certificate in {set} signed {peer}'s: name the CA that did there)")
            }
            None => {
                " (a certificate a private CA signed: name that CA's certificate in SSL_CERT_FILE)"
                    .to_owned()
            }
        }
    } else if said.contains("not valid for name") {
        format!(" (name {peer} by a host or address its certificate lists)")
    } else if said.contains("invalidcontenttype") {
        // The first bytes back were not a TLS record: a plain answer to the hello.
        format!(" ({peer} answered without TLS: is this port plain, http:// or redis://?)")
    } else if said.contains("certificate") {
        format!(" ({peer}'s certificate could not be checked)")
    } else {
        String::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_handshakes_say_what_to_do_in_rustls_words() {
        let unknown = "invalid peer certificate: UnknownIssuer";
        assert_eq!(
            hint_with(unknown, "the server", None),
            " (a certificate a private CA signed: name that CA's certificate in SSL_CERT_FILE)"
        );
        assert_eq!(
            hint_with(unknown, "Redis", Some("SSL_CERT_DIR")),
            " (no CA certificate in SSL_CERT_DIR signed Redis's: name the CA that did there)"
        );
        let name = hint(
            "invalid peer certificate: certificate not valid for name \"localhost\"; certificate is only valid for IpAddress(127.0.0.1)",
            "Redis",
        );
        assert_eq!(
            name,
            " (name Redis by a host or address its certificate lists)"
        );
        assert!(hint(
            "received corrupt message of type InvalidContentType",
            "the server"
        )
        .contains("answered without TLS"));
        assert!(hint(
            "invalid peer certificate: Other(OtherError(CaUsedAsEndEntity))",
            "the server"
        )
        .contains("could not be checked"));
        assert_eq!(hint("Connection refused (os error 111)", "the server"), "");
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
