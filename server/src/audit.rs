//! The audit log: one `tracing` event, at target `audit` and level INFO (WARN for what
//! looks like an attack), for each act a security team must be able to trace: a
//! person's approval or denial (on the pages or through the admin endpoint), tokens
//! issued, a replayed device code and what it revoked, a reused refresh token, a
//! failed sign-in, and refusals by a rate limit or quota (those at most once a second
//! per limit and thread, with how many each line stands for: see [`throttled`]).
//!
//! Each event names the client, the user, the user code and the source address where
//! they apply. It never carries a device code, a token, a client secret, a password, a
//! CSRF token or a session id: these functions take no such value, so no call site
//! can log one by mistake.

use std::cell::RefCell;
use std::net::IpAddr;
use std::time::{Duration, Instant};

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

/// Requests refused at once by `limit` (the password hashing pool's): said at most
/// once a second, naming the source of this one, `refused` of them since the last such
/// event (this one included).
pub(crate) fn refused_at_once(
    limit: &'static str,
    source: IpAddr,
    refused: u64,
    retry_after_ms: u64,
) {
    tracing::warn!(
        target: "audit",
        event = "throttled",
        limit,
        source = %source,
        refused,
        retry_after_ms,
    );
}

thread_local! {
    /// This thread's refusals by each limit, to say at most once a second each.
    static THROTTLED: RefCell<Vec<(&'static str, Failures)>> = const { RefCell::new(Vec::new()) };
}

/// A request refused by a rate limit or quota (`limit` names which), for
/// `retry_after_ms`. A refusal costs the client almost nothing, so a line each would
/// let anyone grow the log without bound: each worker thread says each limit at most
/// once a second, naming the refusal at hand, with `refused`, how many refusals the
/// line stands for (this one and those not said since that thread's last line). No
/// state is shared between threads. The refusals after a thread's last line for a
/// limit are counted into its next, so the lines' `refused` add up to every refusal
/// said so far; `deviceflow_throttled_total{limit}` in `/metrics` counts every one.
pub(crate) fn throttled(
    limit: &'static str,
    client: Option<&str>,
    user: Option<&str>,
    source: IpAddr,
    retry_after_ms: u64,
) {
    let refused = THROTTLED.with_borrow_mut(|said| {
        let at = match said.iter().position(|(l, _)| *l == limit) {
            Some(at) => at,
            None => {
                said.push((limit, Failures::default()));
                said.len() - 1
            }
        };
        said[at].1.failed_count(Instant::now())
    });
    let Some(refused) = refused else {
        return;
    };
    tracing::warn!(
        target: "audit",
        event = "throttled",
        limit,
        client = client.unwrap_or("-"),
        user = user.unwrap_or("-"),
        source = %source,
        refused,
        retry_after_ms,
    );
}

/// Failures said at most once a second: how many since the last line was written.
#[derive(Default)]
pub(crate) struct Failures {
    said_at: Option<Instant>,
    unsaid: u64,
}

impl Failures {
    /// A failure at `now`: `Some` with what to add to its line (the failures not said
    /// since the last one) when it is to be said, `None` when it is only counted.
    pub(crate) fn failed(&mut self, now: Instant) -> Option<String> {
        if self
            .said_at
            .is_some_and(|at| now.duration_since(at) < Duration::from_secs(1))
        {
            self.unsaid += 1;
            return None;
        }
        self.said_at = Some(now);
        let unsaid = std::mem::take(&mut self.unsaid);
        Some(match unsaid {
            0 => String::new(),
            n => format!(" (and {n} more since the last such line)"),
        })
    }

    /// As [`failed`](Self::failed), with the count of failures the line stands for:
    /// this one and those not said since the last.
    pub(crate) fn failed_count(&mut self, now: Instant) -> Option<u64> {
        let unsaid = self.unsaid;
        self.failed(now).map(|_| unsaid + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_said_once_a_second_with_the_count_of_those_not_said() {
        let mut failures = Failures::default();
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        assert_eq!(failures.failed(at(0)).as_deref(), Some(""));
        // An accept failing each 50 ms: counted, not said, for a second.
        for ms in (50..1000).step_by(50) {
            assert_eq!(failures.failed(at(ms)), None, "{ms} ms");
        }
        assert_eq!(
            failures.failed(at(1000)).as_deref(),
            Some(" (and 19 more since the last such line)")
        );
        assert_eq!(failures.failed(at(1500)), None);
        assert_eq!(
            failures.failed(at(5000)).as_deref(),
            Some(" (and 1 more since the last such line)")
        );
        // Counted: the line stands for itself and those not said.
        assert_eq!(failures.failed_count(at(5100)), None);
        assert_eq!(failures.failed_count(at(5200)), None);
        assert_eq!(failures.failed_count(at(6000)), Some(3));
        assert_eq!(failures.failed_count(at(9000)), Some(1));
    }
}
