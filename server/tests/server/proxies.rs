//! Behind a reverse proxy: `[limits] trusted_proxies` makes the per-source quotas count
//! by the address the proxy forwards (`X-Forwarded-For`), and never by what a client
//! that is not a trusted proxy writes there (RFC 8628 §5.2: the server's own
//! throttling must not be turned against other devices, nor dodged).

use crate::common::*;

/// A quota of 2 device authorizations per source (no refill to speak of), and the
/// loopback proxy trusted or not.
fn config(trusted: Option<&str>) -> String {
    let limits = trusted.map_or(String::new(), |t| {
        format!("[limits]\ntrusted_proxies = [{t}]\n")
    });
    test_config().replace(
        "[admin]",
        &format!("{limits}[quotas]\nper_source_rate = 0.001\nper_source_burst = 2\n[admin]"),
    )
}

async fn authorize_from(s: &TestServer, forwarded_for: &str) -> u16 {
    s.post_with(DA, "client_id=tv", &[("x-forwarded-for", forwarded_for)])
        .await
        .status
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_address_has_its_own_quota() {
    let s = TestServer::start_with(&config(Some("\"127.0.0.0/8\""))).await;
    // The first device uses up its quota ...
    assert_eq!(authorize_from(&s, "203.0.113.1").await, 200);
    assert_eq!(authorize_from(&s, "203.0.113.1").await, 200);
    assert_eq!(authorize_from(&s, "203.0.113.1").await, 429);
    // ... and another device, through the same proxy, is still served.
    assert_eq!(authorize_from(&s, "203.0.113.2").await, 200);
    // A forged entry left of the proxy's own is not believed: the device is still the
    // one the proxy saw.
    assert_eq!(
        authorize_from(&s, "198.51.100.9, 203.0.113.1").await,
        429,
        "the forged left-hand entry dodged the quota"
    );
    // Requests the proxy makes itself (no header) count against the proxy.
    assert_eq!(s.post(DA, "client_id=tv").await.status, 200);
}

#[tokio::test]
async fn without_trusted_proxies_x_forwarded_for_is_ignored() {
    let s = TestServer::start_with(&config(None)).await;
    assert_eq!(authorize_from(&s, "203.0.113.1").await, 200);
    assert_eq!(authorize_from(&s, "203.0.113.2").await, 200);
    // A client writing a new address on each request does not get a new quota.
    assert_eq!(authorize_from(&s, "203.0.113.3").await, 429);
}

#[tokio::test]
async fn a_peer_outside_the_trusted_blocks_is_not_believed() {
    let s = TestServer::start_with(&config(Some("\"10.0.0.0/8\", \"fd00::/8\""))).await;
    assert_eq!(authorize_from(&s, "203.0.113.1").await, 200);
    assert_eq!(authorize_from(&s, "203.0.113.2").await, 200);
    assert_eq!(authorize_from(&s, "203.0.113.3").await, 429);
}

#[test]
fn a_trusted_proxy_that_is_no_block_is_refused_at_start_naming_the_key() {
    for bad in [
        "\"10.0.0.1/8\"",
        "\"proxy.internal\"",
        "\"10.0.0.0/33\"",
        "7",
    ] {
        let toml = config(Some(bad));
        let e = deviceflow_server::FileConfig::parse(&toml, "test config")
            .map_err(|e| e.to_string())
            .and_then(|f| deviceflow_server::Settings::from_file(f).map_err(|e| e.to_string()))
            .err()
            .unwrap_or_else(|| panic!("{bad} was accepted"));
        assert!(e.contains("trusted_proxies"), "{bad}: {e}");
        assert!(!e.contains("{ "), "{bad}: a debug dump: {e}");
    }
}
