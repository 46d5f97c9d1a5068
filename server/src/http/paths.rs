//! Paths of the endpoints and pages, relative to the issuer: one spelling for the
//! router, the RFC 8414 metadata, the pages and the clients that talk to them.

/// RFC 8628 §3.1: the device authorization endpoint.
pub const DEVICE_AUTHORIZATION: &str = "/oauth/device_authorization";
/// RFC 6749 §3.2: the token endpoint (device-code polls, refresh).
pub const TOKEN: &str = "/oauth/token";
/// RFC 7662: token introspection.
pub const INTROSPECTION: &str = "/oauth/introspect";
/// RFC 7009: token revocation.
pub const REVOCATION: &str = "/oauth/revoke";
/// Approvals and denials for machines, with the admin token.
pub const ADMIN_DECISIONS: &str = "/admin/decisions";
/// RFC 8628 §3.2 `verification_uri`: where the person enters the code.
pub const VERIFICATION: &str = "/device";
/// Liveness.
pub const HEALTH: &str = "/healthz";
/// Prometheus metrics.
pub const METRICS: &str = "/metrics";

/// Paths of the person's pages (`verification/`), relative to the issuer.
pub mod pages {
    /// RFC 8628 §3.2 `verification_uri`.
    pub const DEVICE: &str = super::VERIFICATION;
    pub const SIGN_IN: &str = "/device/login";
    pub const SIGN_OUT: &str = "/device/logout";
    pub const CONSENT: &str = "/device/consent";
    /// What a device with a screen shows: the code and its QR code.
    pub const DISPLAY: &str = "/device/display";
}
