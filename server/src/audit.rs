//! The audit log: one `tracing` event, at target `audit` and level INFO (WARN for what
//! looks like an attack), for each act a security team must be able to trace: a
//! person's approval or denial (on the pages or through the admin endpoint), tokens
//! issued, a replayed device code and what it revoked, a reused refresh token, a
//! failed sign-in, and every refusal by a rate limit or quota.
//!
//! Each event names the client, the user, the user code and the source address where
//! they apply. It never carries a device code, a token, a client secret, a password, a
//! CSRF token or a session id: these functions take no such value, so no call site
//! can log one by mistake.

use std::net::IpAddr;

use crate::protocol::user_code::UserCode;

/// Where a person's decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// The verification pages (a person in a browser).
    Pages,
    /// The admin decision endpoint (a machine, with the admin token).
    Admin,
}

impl Via {
    fn as_str(self) -> &'static str {
        match self {
            Via::Pages => "pages",
            Via::Admin => "admin",
        }
    }
}

/// Who registered, changed or deleted a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Registrar {
    /// The client itself, through RFC 7591 / RFC 7592.
    Dynamic,
    /// A machine with the admin token (`deviceflow-server clients`).
    AdminApi,
    /// An administrator on the applications page.
    Page,
}

/// A client was registered (`"client_registered"`), had its secret rotated
/// (`"client_secret_rotated"`) or was deleted (`"client_deleted"`); `user` is the
/// administrator on the page.
pub(crate) fn client_changed(
    event: &'static str,
    by: Registrar,
    client: &str,
    user: Option<&str>,
    source: IpAddr,
) {
    let via = match by {
        Registrar::Dynamic => "registration",
        Registrar::AdminApi => "admin",
        Registrar::Page => "pages",
    };
    tracing::info!(target: "audit", event, via, client, user, source = %source);
}

/// A person approved (`approved`) or denied a device authorization.
pub(crate) fn decided(
    approved: bool,
    via: Via,
    client: &str,
    user: &str,
    code: UserCode,
    source: IpAddr,
) {
    tracing::info!(
        target: "audit",
        event = if approved { "approved" } else { "denied" },
        via = via.as_str(),
        client,
        user,
        user_code = %code,
        source = %source,
    );
}

/// Tokens issued: by redeeming a device code (`user_code` given) or by refresh.
pub(crate) fn token_issued(client: &str, user: &str, code: Option<UserCode>, source: IpAddr) {
    let grant = if code.is_some() {
        "device_code"
    } else {
        "refresh_token"
    };
    match code {
        Some(code) => tracing::info!(
            target: "audit", event = "token_issued", grant, client, user,
            user_code = %code, source = %source,
        ),
        None => tracing::info!(
            target: "audit", event = "token_issued", grant, client, user, source = %source,
        ),
    }
}

/// A redeemed device code was presented again; what it issued is revoked (checklist
/// TS-09).
pub(crate) fn replay_revoked(client: &str, user: &str, code: UserCode, source: IpAddr) {
    tracing::warn!(
        target: "audit",
        event = "device_code_replayed",
        action = "token family revoked",
        client,
        user,
        user_code = %code,
        source = %source,
    );
}

/// A rotated refresh token was used again; its family is revoked (RFC 9700 §4.14.2).
pub(crate) fn refresh_reused(client: &str, user: &str, source: IpAddr) {
    tracing::warn!(
        target: "audit",
        event = "refresh_token_reused",
        action = "token family revoked",
        client,
        user,
        source = %source,
    );
}

/// A failed sign-in on the verification pages. `user` is the configured user the
/// typed username names, or `None` (what was typed is not logged: people type
/// passwords into username fields).
pub(crate) fn sign_in_failed(user: Option<&str>, source: IpAddr) {
    tracing::warn!(
        target: "audit",
        event = "sign_in_failed",
        user = user.unwrap_or("(unknown username)"),
        source = %source,
    );
}

/// Connections from `source` refused because it held `cap` already
/// (`limits.max_connections_per_source`): said at most once a second, `refused` of
/// them since the last such event (this one included).
pub(crate) fn connections_refused(source: IpAddr, cap: u32, refused: u64) {
    tracing::warn!(
        target: "audit",
        event = "throttled",
        limit = "connections_per_source",
        source = %source,
        cap,
        refused,
        retry_after_ms = 5_000,
    );
}

/// A request refused by a rate limit or quota (`limit` names which), for
/// `retry_after_ms`.
pub(crate) fn throttled(
    limit: &'static str,
    client: Option<&str>,
    user: Option<&str>,
    source: IpAddr,
    retry_after_ms: u64,
) {
    tracing::warn!(
        target: "audit",
        event = "throttled",
        limit,
        client = client.unwrap_or("-"),
        user = user.unwrap_or("-"),
        source = %source,
        retry_after_ms,
    );
}
