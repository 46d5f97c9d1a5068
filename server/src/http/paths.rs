//! Paths of the endpoints and pages, relative to the issuer: one spelling for the
//! router, the RFC 8414 metadata, the pages and the clients that talk to them.

use hyper::Uri;

pub use deviceflow_wire::paths::{
    ADMIN_CLIENTS, ADMIN_DECISIONS, DEVICE_AUTHORIZATION, HEALTH, INTROSPECTION, METRICS, READY,
    REGISTRATION, REVOCATION, TOKEN, VERIFICATION,
};

/// The path of an issuer that has one (`/tenant/a` for `https://h/tenant/a`), where
/// every endpoint and page is served below it; `""` for an issuer without one.
pub(crate) fn issuer_path(issuer: &str) -> &str {
    let rest = issuer.split_once("://").map_or(issuer, |(_, rest)| rest);
    rest.find('/')
        .map_or("", |at| rest[at..].trim_end_matches('/'))
}

/// A request below the issuer's path `base` (RFC 8414 §2: the endpoints the metadata
/// advertises are the issuer's URL and then theirs) as the router reads it:
/// `/tenant/a/oauth/token` is `/oauth/token`, the query kept. A path outside `base`
/// is left as it came; the router strips only a path it does not know as it came, so
/// the server also answers behind a proxy that strips the prefix itself.
pub(crate) fn strip_base(uri: &mut Uri, base: &str) {
    let Some(rest) = below(uri.path(), base) else {
        return;
    };
    let path = if rest.is_empty() { "/" } else { rest };
    let stripped = match uri.query() {
        Some(query) => Uri::try_from(format!("{path}?{query}")),
        None => Uri::try_from(path),
    };
    if let Ok(stripped) = stripped {
        *uri = stripped;
    }
}

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

    #[test]
    fn an_issuers_path_is_what_follows_its_host() {
        assert_eq!(issuer_path("https://as.example"), "");
        assert_eq!(issuer_path("https://as.example/"), "");
        assert_eq!(issuer_path("http://127.0.0.1:8080/tenant/a"), "/tenant/a");
        assert_eq!(issuer_path("https://as.example/auth/"), "/auth");
    }

    #[test]
    fn requests_below_the_issuers_path_are_routed_without_it() {
        let strip = |uri: &str| {
            let mut uri: Uri = uri.parse().unwrap();
            strip_base(&mut uri, "/tenant/a");
            uri.to_string()
        };
        assert_eq!(strip("/tenant/a/oauth/token"), "/oauth/token");
        assert_eq!(
            strip("/tenant/a/device?user_code=WDJB-MJHT"),
            "/device?user_code=WDJB-MJHT"
        );
        assert_eq!(strip("/tenant/a"), "/");
        // Not below it: as they came (a proxy in front may have stripped it).
        assert_eq!(strip("/oauth/token"), "/oauth/token");
        assert_eq!(strip("/tenant/ab/oauth/token"), "/tenant/ab/oauth/token");
        assert_eq!(
            strip("/.well-known/oauth-authorization-server/tenant/a"),
            "/.well-known/oauth-authorization-server/tenant/a"
        );
    }
}
