//! Authorization server metadata (RFC 8414 §2, RFC 8628 §4).

use bytes::Bytes;
use deviceflow_wire::{GRANT_TYPE_DEVICE_CODE, GRANT_TYPE_REFRESH_TOKEN};
use serde_json::json;

use crate::config::Settings;
use crate::http::paths;

/// Renders the metadata document once, at start-up.
///
/// `response_types_supported` is REQUIRED by RFC 8414 §2 but describes the
/// authorization endpoint, which this server does not have; it is omitted rather than
/// sent empty, since §2 also says empty arrays are omitted.
pub(crate) fn render(settings: &Settings, issuer: &str) -> Bytes {
    let url = |path: &str| format!("{issuer}{path}");
    let mut doc = json!({
        "issuer": issuer,
        // RFC 8628 §4: the device authorization endpoint's URL.
        "device_authorization_endpoint": url(paths::DEVICE_AUTHORIZATION),
        "token_endpoint": url(paths::TOKEN),
        "introspection_endpoint": url(paths::INTROSPECTION),
        "revocation_endpoint": url(paths::REVOCATION),
        // RFC 8628 §4: the grant type URN is listed in grant_types_supported.
        "grant_types_supported": [GRANT_TYPE_DEVICE_CODE, GRANT_TYPE_REFRESH_TOKEN],
        "token_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
        "introspection_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "revocation_endpoint_auth_methods_supported": ["none", "client_secret_basic", "client_secret_post"],
    });
    // RFC 8414 §2 `registration_endpoint`, only while registration is on (RFC 7591).
    if settings.initial_access_token.is_some() {
        doc["registration_endpoint"] = json!(url(paths::REGISTRATION));
    }
    // RFC 8414 §2: "empty arrays SHOULD be omitted" (checklist MD-03).
    if !settings.scopes.names().is_empty() {
        doc["scopes_supported"] = json!(settings.scopes.names());
    }
    Bytes::from(doc.to_string())
}
