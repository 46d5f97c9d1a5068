//! Counters and latency histograms, rendered in the Prometheus text format.
//!
//! Plain atomics, no registry: every series is known at compile time, and the poll
//! path pays a few relaxed increments.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::protocol::session::PollOutcome;
use crate::shards::{self, Padded};
use crate::storage::store::Census;

/// The endpoints latency is measured for; the label values of `endpoint`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Endpoint {
    DeviceAuthorization,
    Token,
    Introspection,
    Revocation,
    /// RFC 7591 registration, RFC 7592 client configuration.
    Registration,
    Admin,
    Metadata,
    /// The verification pages a person uses (`/device`, `/device/*`).
    Verification,
    Other,
}

impl Endpoint {
    const ALL: [Endpoint; 9] = [
        Endpoint::DeviceAuthorization,
        Endpoint::Token,
        Endpoint::Introspection,
        Endpoint::Revocation,
        Endpoint::Registration,
        Endpoint::Admin,
        Endpoint::Metadata,
        Endpoint::Verification,
        Endpoint::Other,
    ];

    fn label(self) -> &'static str {
        match self {
            Endpoint::DeviceAuthorization => "device_authorization",
            Endpoint::Token => "token",
            Endpoint::Introspection => "introspection",
            Endpoint::Revocation => "revocation",
            Endpoint::Registration => "registration",
            Endpoint::Admin => "admin",
            Endpoint::Metadata => "metadata",
            Endpoint::Verification => "verification",
            Endpoint::Other => "other",
        }
    }
}

const POLL_OUTCOMES: [&str; 7] = [
    "authorization_pending",
    "slow_down",
    "access_denied",
    "expired_token",
    "token",
    "invalid_grant",
    "replayed",
];

fn outcome_index(o: PollOutcome) -> usize {
    match o {
        PollOutcome::Pending => 0,
        PollOutcome::SlowDown { .. } => 1,
        PollOutcome::Denied => 2,
        PollOutcome::Expired => 3,
        PollOutcome::Issue { .. } => 4,
        PollOutcome::Invalid => 5,
        PollOutcome::Replayed { .. } => 6,
    }
}

/// The limits and quotas that refuse requests; the label values of `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Throttle {
    /// Device authorizations per source address (`quotas.per_source_*`).
    Source,
    /// Device authorizations per client (`quotas.per_client_*`).
    Client,
    /// A client's share of the session cap (`quotas.client_share`).
    ClientShare,
    /// Connections per source address (`limits.max_connections_per_source`).
    Connections,
    /// The verification pages' guess limits (`storage/rate_limit.rs`): failed
    /// sign-ins per address, per username, per known browser; sign-ins per account;
    /// wrong user codes per address, per account.
    SignInPerIp,
    SignInPerUsername,
    SignInPerKnownBrowser,
    SignInPerAccount,
    UserCodePerIp,
    UserCodePerAccount,
    /// RFC 7591 registrations per address.
    RegistrationPerIp,
    /// Refresh token exchanges of one grant (`storage::tokens::REFRESH_PACE`).
    RefreshPerGrant,
    /// Sign-ins refused unverified: one already being checked from the source, or
    /// the hashing pool full.
    PasswordHashPerSource,
    PasswordHashPool,
}

impl Throttle {
    const ALL: [Throttle; 14] = [
        Throttle::Source,
        Throttle::Client,
        Throttle::ClientShare,
        Throttle::Connections,
        Throttle::SignInPerIp,
        Throttle::SignInPerUsername,
        Throttle::SignInPerKnownBrowser,
        Throttle::SignInPerAccount,
        Throttle::UserCodePerIp,
        Throttle::UserCodePerAccount,
        Throttle::RegistrationPerIp,
        Throttle::RefreshPerGrant,
        Throttle::PasswordHashPerSource,
        Throttle::PasswordHashPool,
    ];

    pub(crate) fn label(self) -> &'static str {
        match self {
            Throttle::Source => "per_source",
            Throttle::Client => "per_client",
            Throttle::ClientShare => "client_share",
            Throttle::Connections => "connections_per_source",
            Throttle::SignInPerIp => "sign_in_per_ip",
            Throttle::SignInPerUsername => "sign_in_per_username",
            Throttle::SignInPerKnownBrowser => "sign_in_per_known_browser",
            Throttle::SignInPerAccount => "sign_in_per_account",
            Throttle::UserCodePerIp => "user_code_per_ip",
            Throttle::UserCodePerAccount => "user_code_per_account",
            Throttle::RegistrationPerIp => "registration_per_ip",
            Throttle::RefreshPerGrant => "refresh_per_grant",
            Throttle::PasswordHashPerSource => "password_hash_per_source",
            Throttle::PasswordHashPool => "password_hash_pool",
        }
    }
}

/// Upper bounds of the latency buckets, in microseconds.
const BUCKETS_US: [u64; 14] = [
    50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000,
    5_000_000,
];

/// Not cumulative: each observation is counted once, in the first bucket whose bound
/// it is within, or in the last, past every bound. The count is their sum, so an
/// observation costs two atomic additions, not three.
#[derive(Default)]
struct Histogram {
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, d: Duration) {
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let i = BUCKETS_US
            .iter()
            .position(|&b| us <= b)
            .unwrap_or(BUCKETS_US.len());
        self.buckets[i].fetch_add(1, Relaxed);
        self.sum_us.fetch_add(us, Relaxed);
    }
}

/// A counter family as rendered: name, help, label name, and the series (label value,
/// count); one unlabelled series where the label name is empty.
type Family<'a> = (&'a str, &'a str, &'a str, Vec<(&'a str, u64)>);

/// Every counter, once per shard.
#[derive(Default)]
struct Counters {
    polls: [AtomicU64; POLL_OUTCOMES.len()],
    device_authorizations: AtomicU64,
    sessions_full: AtomicU64,
    decisions_approved: AtomicU64,
    decisions_denied: AtomicU64,
    tokens_device_code: AtomicU64,
    tokens_refresh: AtomicU64,
    sessions_expired: AtomicU64,
    request_errors: AtomicU64,
    throttled: [AtomicU64; Throttle::ALL.len()],
    latency: [Histogram; Endpoint::ALL.len()],
}

/// The counters, in one shard per thread ([`crate::shards`]): every request writes
/// some, and a line written by every core would make them the bottleneck of the poll
/// path on a many-core machine. `/metrics` adds the shards up.
pub(crate) struct Metrics {
    shards: Box<[Padded<Counters>]>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            shards: (0..shards::COUNT).map(|_| Padded::default()).collect(),
        }
    }
}

impl Counters {
    /// Adds `other`'s counts to these.
    fn absorb(&self, other: &Counters) {
        let add = |to: &AtomicU64, from: &AtomicU64| {
            to.fetch_add(from.load(Relaxed), Relaxed);
        };
        for (to, from) in self.polls.iter().zip(&other.polls) {
            add(to, from);
        }
        for (to, from) in [
            (&self.device_authorizations, &other.device_authorizations),
            (&self.sessions_full, &other.sessions_full),
            (&self.decisions_approved, &other.decisions_approved),
            (&self.decisions_denied, &other.decisions_denied),
            (&self.tokens_device_code, &other.tokens_device_code),
            (&self.tokens_refresh, &other.tokens_refresh),
            (&self.sessions_expired, &other.sessions_expired),
            (&self.request_errors, &other.request_errors),
        ] {
            add(to, from);
        }
        for (to, from) in self.throttled.iter().zip(&other.throttled) {
            add(to, from);
        }
        for (to, from) in self.latency.iter().zip(&other.latency) {
            for (t, f) in to.buckets.iter().zip(&from.buckets) {
                add(t, f);
            }
            add(&to.sum_us, &from.sum_us);
        }
    }
}

impl Metrics {
    /// This thread's shard.
    fn mine(&self) -> &Counters {
        &self.shards[shards::home()].0
    }

    pub(crate) fn poll(&self, outcome: PollOutcome) {
        self.mine().polls[outcome_index(outcome)].fetch_add(1, Relaxed);
    }

    pub(crate) fn device_authorization(&self) {
        self.mine().device_authorizations.fetch_add(1, Relaxed);
    }

    pub(crate) fn sessions_full(&self) {
        self.mine().sessions_full.fetch_add(1, Relaxed);
    }

    pub(crate) fn decision(&self, approved: bool) {
        if approved {
            self.mine().decisions_approved.fetch_add(1, Relaxed);
        } else {
            self.mine().decisions_denied.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn token_issued(&self, by_refresh: bool) {
        if by_refresh {
            self.mine().tokens_refresh.fetch_add(1, Relaxed);
        } else {
            self.mine().tokens_device_code.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn sessions_expired(&self, n: usize) {
        self.mine().sessions_expired.fetch_add(n as u64, Relaxed);
    }

    /// A request refused by a quota.
    pub(crate) fn throttled(&self, limit: Throttle) {
        self.mine().throttled[limit as usize].fetch_add(1, Relaxed);
    }

    /// A request refused before it reached an endpoint (size, content type, timeout).
    pub(crate) fn request_error(&self) {
        self.mine().request_errors.fetch_add(1, Relaxed);
    }

    pub(crate) fn observe(&self, endpoint: Endpoint, elapsed: Duration) {
        self.mine().latency[endpoint as usize].observe(elapsed);
    }

    /// The Prometheus text exposition, with the gauges read at call time; a store
    /// that cannot count its access tokens without a scan (Redis) reports none, and
    /// one whose sessions expire uncounted (Redis) no expirations. `None`: the store
    /// did not answer (`deviceflow_store_up 0`, and no store gauge). `clock_offset_ms`:
    /// this instance's clock minus the shared store's, where there is one
    /// (`storage::clock_offset`).
    pub(crate) fn render(&self, census: Option<&Census>, clock_offset_ms: Option<i64>) -> String {
        let total = Counters::default();
        for shard in self.shards.iter() {
            total.absorb(&shard.0);
        }
        let mut out = String::with_capacity(4096);
        let counts_expirations = census.is_some_and(|c| c.counts_expirations);
        let families = total.families().into_iter().filter(|(name, ..)| {
            counts_expirations || *name != "deviceflow_sessions_expired_total"
        });
        write_counters(&mut out, families);
        write_gauges(&mut out, census);
        if let Some(ms) = clock_offset_ms {
            let name = "deviceflow_store_clock_offset_seconds";
            let _ = writeln!(
                out,
                "# HELP {name} This instance's clock minus the shared store's (Redis TIME), at this scrape.\n# TYPE {name} gauge\n{name} {}",
                ms as f64 / 1e3
            );
        }
        write_latency(&mut out, &total.latency);
        out
    }
}

impl Counters {
    /// Every counter family, named and described, with its series.
    fn families(&self) -> [Family<'static>; 9] {
        let n = |c: &AtomicU64| c.load(Relaxed);
        let polls: Vec<(&str, u64)> = POLL_OUTCOMES
            .iter()
            .zip(&self.polls)
            .map(|(label, c)| (*label, n(c)))
            .collect();
        let throttled: Vec<(&str, u64)> = Throttle::ALL
            .iter()
            .map(|l| (l.label(), n(&self.throttled[*l as usize])))
            .collect();
        [
            (
                "deviceflow_token_polls_total",
                "Device-code polls of the token endpoint, by outcome (RFC 8628 §3.5).",
                "outcome",
                polls,
            ),
            (
                "deviceflow_slow_down_total",
                "Polls answered slow_down (RFC 8628 §3.5).",
                "",
                vec![("", n(&self.polls[1]))],
            ),
            (
                "deviceflow_device_authorizations_total",
                "Device authorization sessions created (RFC 8628 §3.2).",
                "",
                vec![("", n(&self.device_authorizations))],
            ),
            (
                "deviceflow_throttled_total",
                "Device authorizations refused 429 by a quota, by quota.",
                "limit",
                throttled,
            ),
            (
                "deviceflow_device_authorizations_refused_full_total",
                "Device authorizations refused because the session cap was reached.",
                "",
                vec![("", n(&self.sessions_full))],
            ),
            (
                "deviceflow_decisions_total",
                "Decisions recorded on user codes.",
                "decision",
                vec![
                    ("approve", n(&self.decisions_approved)),
                    ("deny", n(&self.decisions_denied)),
                ],
            ),
            (
                "deviceflow_tokens_issued_total",
                "Access tokens issued, by grant.",
                "grant",
                vec![
                    ("device_code", n(&self.tokens_device_code)),
                    ("refresh_token", n(&self.tokens_refresh)),
                ],
            ),
            (
                "deviceflow_sessions_expired_total",
                "Sessions removed after expiring without being redeemed.",
                "",
                vec![("", n(&self.sessions_expired))],
            ),
            (
                "deviceflow_request_errors_total",
                "Requests refused before reaching an endpoint (body size, content type, read timeout).",
                "",
                vec![("", n(&self.request_errors))],
            ),
        ]
    }
}

/// `# HELP`, `# TYPE … counter` and one line a series, for each family.
fn write_counters<'a>(out: &mut String, families: impl Iterator<Item = Family<'a>>) {
    for (name, help, label, values) in families {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
        for (value, count) in values {
            if label.is_empty() {
                let _ = writeln!(out, "{name} {count}");
            } else {
                let _ = writeln!(out, "{name}{{{label}=\"{value}\"}} {count}");
            }
        }
    }
}

/// The gauges: what the store holds now.
fn write_gauges(out: &mut String, census: Option<&Census>) {
    for (name, help, value) in [
        (
            "deviceflow_store_up",
            "Whether the session store answered this scrape (1) or not (0).",
            Some(usize::from(census.is_some())),
        ),
        (
            "deviceflow_sessions",
            "Device authorization sessions held (pending, decided, or expired and retained).",
            census.map(|c| c.sessions),
        ),
        (
            "deviceflow_access_tokens",
            "Access tokens held.",
            census.and_then(|c| c.access_tokens),
        ),
    ] {
        let Some(value) = value else { continue };
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
}

/// The latency histogram of each endpoint: cumulative buckets, sum and count.
fn write_latency(out: &mut String, latency: &[Histogram; Endpoint::ALL.len()]) {
    let n = |c: &AtomicU64| c.load(Relaxed);
    let name = "deviceflow_http_request_duration_seconds";
    let _ = writeln!(
        out,
        "# HELP {name} Time from request head to response, by endpoint.\n# TYPE {name} histogram"
    );
    for e in Endpoint::ALL {
        let h = &latency[e as usize];
        let endpoint = e.label();
        let mut cumulative = 0;
        for (bucket, bound) in h.buckets.iter().zip(BUCKETS_US) {
            cumulative += n(bucket);
            let le = bound as f64 / 1e6;
            let _ = writeln!(
                out,
                "{name}_bucket{{endpoint=\"{endpoint}\",le=\"{le}\"}} {cumulative}"
            );
        }
        let count = cumulative + n(&h.buckets[BUCKETS_US.len()]);
        let sum = n(&h.sum_us) as f64 / 1e6;
        let _ = writeln!(
            out,
            "{name}_bucket{{endpoint=\"{endpoint}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(out, "{name}_sum{{endpoint=\"{endpoint}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{endpoint=\"{endpoint}\"}} {count}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a store that counts everything (memory) reports.
    fn census(sessions: usize, access_tokens: Option<usize>) -> Census {
        Census {
            sessions,
            access_tokens,
            counts_expirations: true,
        }
    }

    #[test]
    fn the_clock_offset_is_shown_only_where_the_store_has_a_clock() {
        let m = Metrics::default();
        let text = m.render(Some(&census(0, None)), Some(-2_450));
        assert!(
            text.contains("\n# TYPE deviceflow_store_clock_offset_seconds gauge\ndeviceflow_store_clock_offset_seconds -2.45\n"),
            "{text}"
        );
        let text = m.render(Some(&census(0, None)), None);
        assert!(!text.contains("clock_offset"), "{text}");
    }

    #[test]
    fn a_store_whose_sessions_expire_uncounted_shows_no_expirations() {
        let m = Metrics::default();
        m.sessions_expired(2);
        let counted = m.render(Some(&census(0, None)), None);
        assert!(
            counted.contains("deviceflow_sessions_expired_total 2"),
            "{counted}"
        );
        let uncounted = m.render(
            Some(&Census {
                counts_expirations: false,
                ..census(0, None)
            }),
            None,
        );
        assert!(
            !uncounted.contains("deviceflow_sessions_expired_total"),
            "{uncounted}"
        );
        assert!(uncounted.contains("deviceflow_device_authorizations_total"));
    }

    #[test]
    fn render_counts_outcomes_and_builds_cumulative_buckets() {
        let m = Metrics::default();
        m.poll(PollOutcome::Pending);
        m.poll(PollOutcome::Pending);
        m.poll(PollOutcome::SlowDown {
            interval_ms: 10_000,
        });
        m.observe(Endpoint::Token, Duration::from_micros(80));
        m.observe(Endpoint::Token, Duration::from_millis(2));
        let text = m.render(Some(&census(5, Some(1))), None);
        assert!(
            text.contains("deviceflow_token_polls_total{outcome=\"authorization_pending\"} 2\n")
        );
        assert!(text.contains("deviceflow_slow_down_total 1\n"));
        assert!(text.contains("deviceflow_sessions 5\n"));
        assert!(text.contains(
            "deviceflow_http_request_duration_seconds_bucket{endpoint=\"token\",le=\"0.0001\"} 1\n"
        ));
        assert!(text.contains(
            "deviceflow_http_request_duration_seconds_bucket{endpoint=\"token\",le=\"0.0025\"} 2\n"
        ));
        assert!(
            text.contains("deviceflow_http_request_duration_seconds_count{endpoint=\"token\"} 2\n")
        );
    }

    #[test]
    fn an_observation_past_every_bucket_is_in_the_count_and_in_inf_only() {
        let m = Metrics::default();
        m.observe(Endpoint::Token, Duration::from_micros(80));
        m.observe(Endpoint::Token, Duration::from_secs(10));
        let text = m.render(Some(&census(0, Some(0))), None);
        let name = "deviceflow_http_request_duration_seconds";
        for line in [
            format!("{name}_bucket{{endpoint=\"token\",le=\"5\"}} 1\n"),
            format!("{name}_bucket{{endpoint=\"token\",le=\"+Inf\"}} 2\n"),
            format!("{name}_count{{endpoint=\"token\"}} 2\n"),
            format!("{name}_sum{{endpoint=\"token\"}} 10.00008\n"),
        ] {
            assert!(text.contains(&line), "no {line:?} in:\n{text}");
        }
    }
}
