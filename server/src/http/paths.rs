//! Paths of the endpoints and pages, relative to the issuer: one spelling for the
//! router, the RFC 8414 metadata, the pages and the clients that talk to them.

pub use deviceflow_wire::paths::{
    ADMIN_CLIENTS, ADMIN_DECISIONS, DEVICE_AUTHORIZATION, HEALTH, INTROSPECTION, METRICS,
    REGISTRATION, REVOCATION, TOKEN, VERIFICATION,
};

/// Paths of the person's pages (`verification/`), relative to the issuer.
pub mod pages {
    /// RFC 8628 §3.2 `verification_uri`.
    pub const DEVICE: &str = super::VERIFICATION;
    /// Sign-in.
    pub const SIGN_IN: &str = "/device/login";
    /// Sign-out.
    pub const SIGN_OUT: &str = "/device/logout";
    /// Approve or deny the code entered.
    pub const CONSENT: &str = "/device/consent";
    /// What a device with a screen shows: the code and its QR code.
    pub const DISPLAY: &str = deviceflow_wire::paths::DISPLAY;
    /// The administrators' applications page.
    pub const APPLICATIONS: &str = deviceflow_wire::paths::APPLICATIONS;
}
