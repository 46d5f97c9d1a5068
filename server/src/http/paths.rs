//! Paths of the endpoints and pages, relative to the issuer: one spelling for the
//! router, the RFC 8414 metadata, the pages and the clients that talk to them.

pub use deviceflow_wire::paths::{
    ADMIN_CLIENTS, ADMIN_DECISIONS, DEVICE_AUTHORIZATION, HEALTH, INTROSPECTION, METRICS,
    REGISTRATION, REVOCATION, TOKEN, VERIFICATION,
};

/// What follows `prefix` in `path` when `path` is `prefix` itself (`Some("")`) or a
/// path below it (`Some("/…")`); `None` otherwise (`/oauth/registerx` is not below
/// `/oauth/register`).
pub(crate) fn below<'a>(path: &'a str, prefix: &str) -> Option<&'a str> {
    path.strip_prefix(prefix)
        .filter(|rest| rest.is_empty() || rest.starts_with('/'))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn below_is_the_path_itself_or_a_path_under_it() {
        assert_eq!(below("/oauth/register", REGISTRATION), Some(""));
        assert_eq!(below("/oauth/register/abc", REGISTRATION), Some("/abc"));
        assert_eq!(below("/oauth/registerx", REGISTRATION), None);
        assert_eq!(below("/oauth/token", REGISTRATION), None);
    }
}
