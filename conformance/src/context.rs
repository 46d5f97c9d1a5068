//! What every case runs with: the target, the HTTP client, the approver, the options,
//! and the device-flow moves cases are made of (authorize, poll, decide, wait).

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::OnceCell;

use crate::approver::{Action, Approver, NotDecided, Prompt};
use crate::client::Client;
use crate::http::{Exchange, Http};
use crate::level::Level;
use crate::progress::Progress;
use crate::target::Target;

pub const GRANT: &str = deviceflow_wire::GRANT_TYPE_DEVICE_CODE;

/// How the suite runs.
#[derive(Debug, Clone, Serialize)]
pub struct Options {
    /// Longest single wait a case may make; expiry cases run only if `expires_in` fits.
    #[serde(rename = "max_wait_ms", serialize_with = "millis")]
    pub max_wait: Duration,
    /// Added to every interval wait, so a compliant poll is never early by the
    /// server's clock (checklist A.0: poll at `interval + margin`).
    #[serde(rename = "poll_margin_ms", serialize_with = "millis")]
    pub poll_margin: Duration,
    /// Run soak cases (several minutes).
    pub soak: bool,
    /// Device authorizations sampled for uniqueness and entropy.
    pub samples: usize,
    /// Cases run at once.
    pub concurrency: usize,
    /// Per-request timeout.
    #[serde(rename = "request_timeout_ms", serialize_with = "millis")]
    pub request_timeout: Duration,
    /// Policies the operator declares and wants to be held to (`--expect`).
    pub expect: Vec<Expectation>,
}

/// A duration in the JSON report: whole milliseconds, not serde's `{secs, nanos}`.
fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// A policy the RFC leaves to the server, declared by its operator (`--expect`): the
/// cases that measure it then judge it as a MUST.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum Expectation {
    /// The server enforces the polling interval (RFC 8628 §3.5): too-fast polls get
    /// `slow_down` (PL-01), which adds 5 s that the server tracks and keeps for all
    /// later polls (PL-07).
    SlowDown,
}

impl Expectation {
    /// The cases a declared policy turns into MUSTs.
    pub fn cases(self) -> &'static [&'static str] {
        match self {
            Expectation::SlowDown => &["PL-01", "PL-07"],
        }
    }
}

impl Options {
    /// The level `id` is judged at: its checklist level, or MUST where the operator
    /// declared the policy it measures.
    pub fn level_for(&self, id: &str, base: Level) -> Level {
        if self.expect.iter().any(|e| e.cases().contains(&id)) {
            Level::Must
        } else {
            base
        }
    }

    pub fn expects(&self, e: Expectation) -> bool {
        self.expect.contains(&e)
    }
}

impl Default for Options {
    fn default() -> Options {
        Options {
            max_wait: Duration::from_secs(90),
            poll_margin: Duration::from_millis(500),
            soak: false,
            samples: 200,
            concurrency: 8,
            request_timeout: Duration::from_secs(10),
            expect: Vec::new(),
        }
    }
}

/// What one device authorization found out before the cases run.
#[derive(Debug, Clone, Serialize)]
pub struct Preflight {
    /// The effective interval (RFC 8628 §3.2: 5 s when absent).
    pub interval_secs: u64,
    pub interval_present: bool,
    pub expires_in: Option<u64>,
    /// Why the preflight authorization failed, if it did.
    pub error: Option<String>,
}

impl Preflight {
    /// The preflight of a run stopped before it (the target's root cause).
    pub fn not_run(why: &str) -> Preflight {
        Preflight {
            interval_secs: deviceflow_wire::DEFAULT_INTERVAL_SECS,
            interval_present: false,
            expires_in: None,
            error: Some(why.to_owned()),
        }
    }
}

/// A successful device authorization.
#[derive(Debug, Clone)]
pub struct Authorization {
    pub exchange: Exchange,
    pub device_code: String,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: Option<u64>,
    /// Effective interval in seconds.
    pub interval: u64,
}

impl Authorization {
    pub fn prompt(&self) -> Prompt {
        Prompt {
            user_code: self.user_code.clone(),
            verification_uri: self.verification_uri.clone(),
            verification_uri_complete: self.verification_uri_complete.clone(),
        }
    }
}

pub struct Inner {
    pub target: Target,
    /// The client every case uses: a 429 or 503 is waited out and the request sent
    /// again ([`crate::http::Retry`]), for no case learns its rule from a rate limit.
    pub http: Http,
    /// The same client sending each request once, every answer as it came: for the
    /// cases that judge rate limits and slow_down themselves (PL-*, DA-08, SC-07).
    pub raw_http: Http,
    pub approver: Approver,
    pub options: Options,
    pub preflight: Preflight,
    pub progress: Progress,
    samples: OnceCell<Vec<Authorization>>,
}

/// The shared context; cheap to clone.
#[derive(Clone)]
pub struct Ctx(Arc<Inner>);

impl std::ops::Deref for Ctx {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl Ctx {
    pub fn new(
        target: Target,
        approver: Approver,
        options: Options,
        preflight: Preflight,
        progress: Progress,
    ) -> Ctx {
        let raw_http = Http::new(options.request_timeout, target.reach.clone());
        // A request sent again after a 429 or 503 waits at least a compliant poll's
        // wait (RFC 8628 §3.5), so that a poll sent again is never early.
        let http = raw_http.retrying(crate::http::Retry {
            retries: crate::http::RETRIES,
            min_wait: compliant_wait(preflight.interval_secs, 0, options.poll_margin),
            budget: options.max_wait,
            progress: Some(progress.clone()),
        });
        Ctx(Arc::new(Inner {
            http,
            raw_http,
            target,
            approver,
            options,
            preflight,
            progress,
            samples: OnceCell::new(),
        }))
    }

    pub fn client(&self) -> &Client {
        &self.target.client
    }

    /// A confidential client among those configured, for the authentication cases.
    pub fn confidential_client(&self) -> Option<&Client> {
        std::iter::once(&self.target.client)
            .chain(self.target.second_client.as_ref())
            .find(|c| c.is_confidential())
    }

    /// A public client among those configured.
    pub fn public_client(&self) -> Option<&Client> {
        std::iter::once(&self.target.client)
            .chain(self.target.second_client.as_ref())
            .find(|c| !c.is_confidential())
    }

    /// Extra parameters every device authorization carries (the configured scope).
    pub fn scope_params(&self) -> Vec<(&str, &str)> {
        self.target
            .scope
            .as_deref()
            .map(|s| vec![("scope", s)])
            .unwrap_or_default()
    }

    /// A device authorization request as the configured client (RFC 8628 §3.1).
    pub async fn authorize(&self, label: &str) -> Result<Authorization, Box<Exchange>> {
        self.authorize_as(label, self.client(), &self.scope_params())
            .await
    }

    pub async fn authorize_as(
        &self,
        label: &str,
        client: &Client,
        params: &[(&str, &str)],
    ) -> Result<Authorization, Box<Exchange>> {
        parse_authorization(self.device_authorization(label, Some(client), params).await)
    }

    /// A device authorization request (RFC 8628 §3.1) as `client` (none: no client
    /// authentication nor `client_id`) with `params`, as it was answered.
    pub async fn device_authorization(
        &self,
        label: &str,
        client: Option<&Client>,
        params: &[(&str, &str)],
    ) -> Exchange {
        self.http
            .post_form(
                label,
                &self.target.device_authorization_endpoint,
                client,
                params,
            )
            .await
    }

    /// A device access token request (RFC 8628 §3.4) as `client`.
    pub async fn poll_as(&self, label: &str, client: &Client, device_code: &str) -> Exchange {
        self.poll_with(&self.http, label, client, device_code).await
    }

    pub async fn poll(&self, label: &str, device_code: &str) -> Exchange {
        self.poll_as(label, self.client(), device_code).await
    }

    /// [`Ctx::poll_as`], a 429 or 503 waited out at least `pace` (the code's `interval
    /// + 5·k`, RFC 8628 §3.5) before the poll is sent again.
    pub async fn poll_at_pace(
        &self,
        label: &str,
        client: &Client,
        device_code: &str,
        pace: Duration,
    ) -> Exchange {
        self.poll_with(
            &self.http.waiting_at_least(pace),
            label,
            client,
            device_code,
        )
        .await
    }

    /// A poll sent once, its answer as it came ([`Inner::raw_http`]): for the cases
    /// that judge slow_down and rate limits (PL-*, SC-07).
    pub async fn poll_raw(&self, label: &str, device_code: &str) -> Exchange {
        self.poll_with(&self.raw_http, label, self.client(), device_code)
            .await
    }

    /// A device access token request (RFC 8628 §3.4) as `client`, through `http`.
    async fn poll_with(
        &self,
        http: &Http,
        label: &str,
        client: &Client,
        device_code: &str,
    ) -> Exchange {
        http.post_form(
            label,
            &self.target.token_endpoint,
            Some(client),
            &[("grant_type", GRANT), ("device_code", device_code)],
        )
        .await
    }

    /// Plays the person through the approver.
    pub async fn decide(&self, auth: &Authorization, action: Action) -> Result<(), String> {
        self.decide_prompt(&auth.prompt(), action).await
    }

    pub async fn decide_prompt(&self, prompt: &Prompt, action: Action) -> Result<(), String> {
        self.approver.decide(prompt, action).await
    }

    /// Plays the person for a case that judges the answer: a decision not taken says
    /// whether the server refused it (evidence) or the approver failed (none).
    pub async fn attempt(&self, prompt: &Prompt, action: Action) -> Result<(), NotDecided> {
        self.approver.attempt(prompt, action).await
    }

    /// The interval a compliant client waits: `interval + 5·k` plus the margin.
    pub fn compliant_wait(&self, interval_secs: u64, slow_downs: u64) -> Duration {
        compliant_wait(interval_secs, slow_downs, self.options.poll_margin)
    }

    /// Whether a wait of `d` (a case's waits in all) fits `--max-wait`: a case checks
    /// an optional step with it and skips the step, saying so, when it does not (the
    /// runner plans the required waits, `CaseInfo::interval_waits`).
    pub fn fits_max_wait(&self, d: Duration) -> bool {
        d <= self.options.max_wait
    }

    /// How long `auth`'s code stays usable from now, less two seconds of safety;
    /// unbounded when the server gave no lifetime.
    pub fn usable_for(&self, auth: &Authorization, since: std::time::Instant) -> Duration {
        match auth.expires_in {
            None => Duration::MAX,
            Some(n) => Duration::from_secs(n)
                .saturating_sub(Duration::from_secs(2))
                .saturating_sub(since.elapsed()),
        }
    }

    /// Waits, saying so on the progress display.
    pub async fn wait(&self, case: &str, d: Duration, why: &str) {
        self.progress.waiting(case, d, why);
        tokio::time::sleep(d).await;
    }

    /// Device authorizations sampled once for the whole run (DR-08, UI-08, SC-01, SC-02,
    /// SC-08 share them).
    pub async fn samples(&self) -> &[Authorization] {
        self.samples
            .get_or_init(|| async {
                let n = self.options.samples;
                self.progress
                    .note("samples", &format!("requesting {n} device authorizations"));
                // Reserve no more than a batch's worth per few: `n` is bounded by the
                // command line, not by what a library caller passes.
                let mut out = Vec::with_capacity(n.min(1024));
                // A few at a time: enough to be quick, few enough not to look like an attack.
                let mut i = 0;
                while i < n {
                    let batch = (n - i).min(8);
                    let futures = (0..batch).map(|_| self.authorize("sample"));
                    // Only the codes are judged; a sample's raw body (up to 1 MiB of a
                    // padded answer) is not kept, or `--samples` of them would hold
                    // that many MiB. Its evidence record, cut to size, stays.
                    out.extend(
                        futures_util::future::join_all(futures)
                            .await
                            .into_iter()
                            .flatten()
                            .map(|mut a| {
                                a.exchange.drop_body();
                                a
                            }),
                    );
                    i += batch;
                }
                out
            })
            .await
    }
}

/// The wait of a compliant client after `slow_downs` slow_downs: `interval + 5·k`
/// (checklist A.0) plus `margin`. The interval is the server's number: the sum
/// saturates instead of overflowing, and the runner skips a case whose waits do not
/// fit `--max-wait`.
pub fn compliant_wait(interval_secs: u64, slow_downs: u64, margin: Duration) -> Duration {
    Duration::from_secs(interval_secs.saturating_add(slow_downs.saturating_mul(5)))
        .saturating_add(margin)
}

/// Reads a device authorization response (RFC 8628 §3.2). Anything short of a 200 JSON
/// object with string `device_code`, `user_code` and `verification_uri` is an `Err`
/// carrying the exchange, for the case to report.
pub fn parse_authorization(e: Exchange) -> Result<Authorization, Box<Exchange>> {
    if e.status() != Some(200) {
        return Err(Box::new(e));
    }
    let json = e.json();
    let Some(v) = json.value.as_ref().and_then(|v| v.as_object()) else {
        return Err(Box::new(e));
    };
    let s = |k: &str| {
        v.get(k)
            .and_then(|x| x.as_str())
            .filter(|x| !x.is_empty())
            .map(str::to_owned)
    };
    // Numbers as JSON numbers (`600.0` is 600, RFC 8259 §6); a string that holds a
    // number is accepted here so the flow can go on, and DR-11 reports it. The
    // interval is rounded up and the lifetime down: a wait is never shorter than the
    // server asked (RFC 8628 §3.5), a lifetime never longer than it gave.
    let interval = v.get("interval").and_then(crate::http::json::seconds_up);
    let expires_in = v
        .get("expires_in")
        .and_then(crate::http::json::seconds_down);
    let (Some(device_code), Some(user_code), Some(verification_uri)) = (
        s("device_code"),
        s("user_code"),
        s("verification_uri").or_else(|| s("verification_url")),
    ) else {
        return Err(Box::new(e));
    };
    let interval = interval
        .filter(|&i| i > 0)
        .unwrap_or(deviceflow_wire::DEFAULT_INTERVAL_SECS);
    // RFC 8628 §3.2: the lifetime in seconds; 0, as a negative number, is no lifetime
    // a flow can use (DR-05 fails both), never one to wait past.
    let expires_in = expires_in.filter(|&n| n > 0);
    Ok(Authorization {
        device_code,
        user_code,
        verification_uri,
        verification_uri_complete: s("verification_uri_complete"),
        expires_in,
        interval,
        exchange: e,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_expires_in_of_0_is_as_unusable_as_a_negative_one() {
        // RFC 8628 §3.2: a lifetime in seconds. 0 had been taken as a lifetime to wait
        // past (EX-01..EX-04 judged a code "expired" at once), -5 as none at all.
        for n in ["0", "-5", "0.0"] {
            let body = format!(
                r#"{{"device_code":"d","user_code":"U","verification_uri":"https://as/d","expires_in":{n}}}"#
            );
            let e = crate::http::tests::answered(body.into_bytes());
            let a = parse_authorization(e).unwrap();
            assert_eq!(a.expires_in, None, "{n}");
        }
    }

    #[test]
    fn a_servers_huge_interval_saturates_the_wait_instead_of_overflowing() {
        let margin = Duration::from_millis(500);
        assert_eq!(compliant_wait(5, 1, margin), Duration::from_millis(10_500));
        let huge = compliant_wait(u64::MAX, u64::MAX, Duration::MAX);
        assert_eq!(huge, Duration::MAX);
    }
}
