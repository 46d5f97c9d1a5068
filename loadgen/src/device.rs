//! One simulated device: a goose user that runs the device flow once, as its
//! behaviour dictates, while a simulated person decides, and records what the server
//! did to it.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use deviceflow_conformance::approver::{Action, Prompt};
use deviceflow_conformance::http::credentials;
use goose::prelude::*;
use rand::Rng;
use serde::Serialize;
use serde_json::Value;

use crate::behaviour::Behaviour;
use crate::fleet::Fleet;
use crate::timeline::Answer;

/// What the simulated person will do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "decision")]
pub enum Plan {
    Approve { after_ms: u64 },
    Deny { after_ms: u64 },
    Never,
}

/// How a device's flow ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Still running when the run ended.
    Unfinished,
    Token,
    Denied,
    Expired,
    /// Any other end: another error code, transport failures, or a server that kept
    /// answering pending well past `expires_in`.
    Error,
}

impl Outcome {
    pub const ALL: [Outcome; 5] = [
        Outcome::Token,
        Outcome::Denied,
        Outcome::Expired,
        Outcome::Error,
        Outcome::Unfinished,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Unfinished => "unfinished",
            Outcome::Token => "token",
            Outcome::Denied => "denied",
            Outcome::Expired => "expired",
            Outcome::Error => "error",
        }
    }
}

/// Everything one device saw, in milliseconds since the fleet started.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceRecord {
    pub behaviour: Behaviour,
    pub plan: Plan,
    pub outcome: Outcome,
    pub started_ms: u64,
    pub issued_ms: Option<u64>,
    pub expires_in: Option<u64>,
    pub interval: Option<u64>,
    /// When the person's decision went through.
    pub decided_ms: Option<u64>,
    pub decision_error: Option<String>,
    pub token_ms: Option<u64>,
    pub finished_ms: Option<u64>,
    pub polls: u32,
    pub slow_downs: u32,
    /// Polls sent sooner than the interval the device had been told to keep.
    pub early_polls: u32,
    /// Of those, how many were answered slow_down.
    pub early_slowed: u32,
    pub first_expired_ms: Option<u64>,
    pub timeouts: u32,
    /// Rule breaks by the server, said in words.
    pub violations: Vec<String>,
    /// The interval the server required, `(when, seconds)`, at issue and after each slow_down.
    pub interval_changes: Vec<(u64, u64)>,
    pub error: Option<String>,
}

impl DeviceRecord {
    fn new(behaviour: Behaviour, plan: Plan, started_ms: u64) -> DeviceRecord {
        DeviceRecord {
            behaviour,
            plan,
            outcome: Outcome::Unfinished,
            started_ms,
            issued_ms: None,
            expires_in: None,
            interval: None,
            decided_ms: None,
            decision_error: None,
            token_ms: None,
            finished_ms: None,
            polls: 0,
            slow_downs: 0,
            early_polls: 0,
            early_slowed: 0,
            first_expired_ms: None,
            timeouts: 0,
            violations: Vec::new(),
            interval_changes: Vec::new(),
            error: None,
        }
    }

    fn violation(&mut self, text: String) {
        if !self.violations.contains(&text) {
            self.violations.push(text);
        }
    }
}

/// A response, read.
struct Reply {
    answer: Answer,
    /// The `error` code or a description of what came back.
    detail: String,
    json: Option<Value>,
    timed_out: bool,
    latency: Duration,
}

fn classify(status: Option<u16>, body: &[u8]) -> (Answer, String, Option<Value>) {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let code = json
        .as_ref()
        .and_then(|v| v.get("error"))
        .and_then(Value::as_str)
        .map(str::to_owned);
    let answer = match (status, code.as_deref()) {
        (Some(200), _)
            if json
                .as_ref()
                .is_some_and(|v| v.get("access_token").is_some()) =>
        {
            Answer::Token
        }
        (_, Some("authorization_pending")) => Answer::Pending,
        (_, Some("slow_down")) => Answer::SlowDown,
        (_, Some("access_denied")) => Answer::Denied,
        (_, Some("expired_token")) => Answer::Expired,
        _ => Answer::Error,
    };
    let detail = match (status, code) {
        (_, Some(c)) => c,
        (Some(s), None) => format!("HTTP {s} without an error code"),
        (None, None) => "no response".to_owned(),
    };
    (answer, detail, json)
}

/// POSTs a form through goose, so goose counts and times it under `name`. Expected
/// non-2xx answers (the RFC 8628 §3.5 errors) are counted as successes.
async fn post(
    user: &mut GooseUser,
    fleet: &Fleet,
    url: &str,
    name: &str,
    params: &[(&str, &str)],
    expected: &[&str],
) -> Result<Reply, Box<TransactionError>> {
    let (headers, body) = credentials(Some(&fleet.client), params);
    let mut rb = user
        .get_request_builder(&GooseMethod::Post, url)?
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body);
    for (k, v) in headers {
        rb = rb.header(k, v);
    }
    let request = GooseRequest::builder()
        .method(GooseMethod::Post)
        .path(url)
        .name(name)
        .set_request_builder(rb)
        .build();
    let started = Instant::now();
    let mut goose = user.request(request).await?;
    let (status, bytes, timed_out) = match goose.response {
        Ok(r) => {
            let status = r.status().as_u16();
            match r.bytes().await {
                Ok(b) => (Some(status), b.to_vec(), false),
                Err(e) => (Some(status), Vec::new(), e.is_timeout()),
            }
        }
        Err(ref e) => (None, Vec::new(), e.is_timeout()),
    };
    let latency = started.elapsed();
    let (answer, detail, json) = classify(status, &bytes);
    let expected_answer = answer != Answer::Error || expected.contains(&detail.as_str());
    if expected_answer && status.is_some_and(|s| s != 200) {
        // An RFC 8628 §3.5 answer, or an error this request expects: a success for
        // goose, whatever its status.
        user.set_success(&mut goose.request)?;
    }
    let detail = if timed_out {
        "timed out".to_owned()
    } else {
        detail
    };
    Ok(Reply {
        answer,
        detail,
        json,
        timed_out,
        latency,
    })
}

/// RFC 8628 §3.4: a device access token request, through goose as `name`.
async fn poll_token(
    user: &mut GooseUser,
    fleet: &Fleet,
    name: &str,
    device_code: &str,
    expected: &[&str],
) -> Result<Reply, Box<TransactionError>> {
    let params = [
        ("grant_type", deviceflow_wire::GRANT_TYPE_DEVICE_CODE),
        ("device_code", device_code),
    ];
    post(user, fleet, &fleet.token_endpoint, name, &params, expected).await
}

fn ms(fleet: &Fleet, at: Instant) -> u64 {
    at.saturating_duration_since(fleet.start).as_millis() as u64
}

/// The whole life of one device. Always returns `Ok`: what went wrong is recorded,
/// not raised, so one broken answer does not stop the fleet.
pub async fn run_device(
    user: &mut GooseUser,
    fleet: Arc<Fleet>,
    behaviour: Behaviour,
) -> TransactionResult {
    let plan = fleet.people.plan(behaviour, &mut rand::thread_rng());
    let record = Arc::new(Mutex::new(DeviceRecord::new(
        behaviour,
        plan,
        ms(&fleet, Instant::now()),
    )));
    fleet.register(Arc::clone(&record));
    let result = flow(user, &fleet, behaviour, plan, &record).await;
    let mut r = record.lock().unwrap_or_else(|e| e.into_inner());
    if let Err(e) = result {
        r.outcome = Outcome::Error;
        r.error.get_or_insert_with(|| format!("{e}"));
    }
    r.finished_ms = Some(ms(&fleet, Instant::now()));
    Ok(())
}

async fn flow(
    user: &mut GooseUser,
    fleet: &Arc<Fleet>,
    behaviour: Behaviour,
    plan: Plan,
    record: &Arc<Mutex<DeviceRecord>>,
) -> Result<(), Box<TransactionError>> {
    let lock = || record.lock().unwrap_or_else(|e| e.into_inner());
    // RFC 8628 §3.1: the device authorization request.
    let scope = fleet.scope.clone();
    let params: Vec<(&str, &str)> = scope
        .as_deref()
        .map(|s| vec![("scope", s)])
        .unwrap_or_default();
    let sent = Instant::now();
    let reply = post(
        user,
        fleet,
        &fleet.device_authorization_endpoint,
        "device_authorization",
        &params,
        &[],
    )
    .await?;
    fleet
        .timeline
        .authorization(sent.saturating_duration_since(fleet.start), reply.latency);
    let issued = Instant::now();
    let Some(auth) = reply
        .json
        .as_ref()
        .filter(|v| v.get("device_code").is_some())
    else {
        let mut r = lock();
        r.outcome = Outcome::Error;
        r.error = Some(format!("device authorization failed: {}", reply.detail));
        return Ok(());
    };
    let s = |k: &str| auth.get(k).and_then(Value::as_str).map(str::to_owned);
    let (Some(device_code), Some(user_code)) = (s("device_code"), s("user_code")) else {
        let mut r = lock();
        r.outcome = Outcome::Error;
        r.error = Some("device authorization response without device_code or user_code".to_owned());
        return Ok(());
    };
    let expires_in = auth.get("expires_in").and_then(Value::as_u64);
    // RFC 8628 §3.2: clients MUST use 5 s when interval is absent.
    let interval = auth
        .get("interval")
        .and_then(Value::as_u64)
        .filter(|&i| i > 0)
        .unwrap_or(deviceflow_wire::DEFAULT_INTERVAL_SECS);
    {
        let mut r = lock();
        r.issued_ms = Some(ms(fleet, issued));
        r.expires_in = expires_in;
        r.interval = Some(interval);
        r.interval_changes.push((ms(fleet, issued), interval));
        if let Some(want) = fleet.expect.expires_in.filter(|&w| Some(w) != expires_in) {
            r.violation(format!("expires_in is {expires_in:?}, expected {want}"));
        }
        if let Some(want) = fleet.expect.interval.filter(|&w| w != interval) {
            r.violation(format!("interval is {interval}, expected {want}"));
        }
    }

    // The person, in parallel.
    let prompt = Prompt {
        user_code,
        verification_uri: s("verification_uri").unwrap_or_default(),
        verification_uri_complete: s("verification_uri_complete"),
    };
    if let Plan::Approve { after_ms } | Plan::Deny { after_ms } = plan {
        let action = if matches!(plan, Plan::Approve { .. }) {
            Action::Approve
        } else {
            Action::Deny
        };
        let (fleet, record) = (Arc::clone(fleet), Arc::clone(record));
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            let result = fleet.approver.decide(&prompt, action).await;
            let mut r = record.lock().unwrap_or_else(|e| e.into_inner());
            match result {
                Ok(()) => r.decided_ms = Some(ms(&fleet, Instant::now())),
                Err(e) => r.decision_error = Some(e),
            }
        });
    }

    // RFC 8628 §3.5: poll until a final answer.
    let expiry = expires_in.map(|n| issued + Duration::from_secs(n));
    let give_up = expiry.map(|e| e + Duration::from_secs(2 * interval + 10));
    let mut slow_downs: u64 = 0;
    let mut backoff: Option<Duration> = None;
    let mut last_sent: Option<Instant> = None;
    let mut transport_failures = 0;
    loop {
        let wait = backoff
            .unwrap_or_else(|| behaviour.wait(interval, slow_downs, &mut rand::thread_rng()));
        let intended = Instant::now() + wait;
        tokio::time::sleep_until(intended.into()).await;
        // The person in front of the device gives up after --max-flow seconds.
        if fleet.max_flow.is_some_and(|m| issued.elapsed() > m) {
            let mut r = lock();
            r.error = Some(format!(
                "gave up after {} s without a final answer",
                issued.elapsed().as_secs()
            ));
            return Ok(());
        }
        if give_up.is_some_and(|g| Instant::now() > g) {
            let mut r = lock();
            r.outcome = Outcome::Error;
            r.violation(
                "still no final answer well past expires_in (RFC 8628 §3.5: expired_token)"
                    .to_owned(),
            );
            r.error = Some("no expired_token after expires_in".to_owned());
            return Ok(());
        }
        let required = Duration::from_secs(interval + 5 * slow_downs);
        let early = last_sent.is_some_and(|t| intended.saturating_duration_since(t) < required);
        last_sent = Some(intended);
        let reply = poll_token(user, fleet, "token_poll", &device_code, &[]).await?;
        let now = Instant::now();
        // Latency from when the poll was meant to go out, so a stalled generator cannot
        // hide a slow server (coordinated omission).
        fleet.timeline.poll(
            intended.saturating_duration_since(fleet.start),
            reply.answer,
            now.saturating_duration_since(intended),
        );
        let step = {
            let mut r = lock();
            r.polls += 1;
            if early {
                r.early_polls += 1;
            }
            let past_expiry = expiry.is_some_and(|e| now > e + Duration::from_secs(1));
            if let Some(d) = r.decided_ms.filter(|_| matches!(plan, Plan::Deny { .. })) {
                let pending_after = ms(fleet, now) > d + (2 * interval + 2) * 1000;
                if pending_after && matches!(reply.answer, Answer::Pending | Answer::SlowDown) {
                    r.violation(
                        "still pending after the person denied (RFC 8628 §3.5: access_denied)"
                            .to_owned(),
                    );
                }
            }
            match reply.answer {
                Answer::Pending => {
                    backoff = None;
                    transport_failures = 0;
                    Step::Poll
                }
                Answer::SlowDown => {
                    backoff = None;
                    transport_failures = 0;
                    slow_downs += 1;
                    r.slow_downs += 1;
                    if early {
                        r.early_slowed += 1;
                    }
                    // RFC 8628 §3.5: +5 s for this and all later polls.
                    r.interval_changes
                        .push((ms(fleet, now), interval + 5 * slow_downs));
                    Step::Poll
                }
                Answer::Token => {
                    r.token_ms = Some(ms(fleet, now));
                    r.outcome = Outcome::Token;
                    if past_expiry {
                        r.violation("a token after expires_in (checklist EX-02)".to_owned());
                    }
                    match plan {
                        Plan::Deny { .. } if r.decided_ms.is_some() => {
                            r.violation("a token after the person denied".to_owned())
                        }
                        Plan::Never => r.violation("a token nobody approved".to_owned()),
                        _ => {}
                    }
                    if fleet.verify_single_use {
                        Step::CheckReplay
                    } else {
                        Step::Done
                    }
                }
                Answer::Denied => {
                    r.outcome = Outcome::Denied;
                    if !matches!(plan, Plan::Deny { .. }) {
                        r.violation("access_denied though the person did not deny".to_owned());
                    }
                    Step::Done
                }
                Answer::Expired => {
                    r.first_expired_ms = Some(ms(fleet, now));
                    r.outcome = Outcome::Expired;
                    Step::Done
                }
                Answer::Error if reply.timed_out || reply.detail == "no response" => {
                    // RFC 8628 §3.5 (CL-04): on a connection timeout, reduce the polling
                    // frequency; exponential backoff is RECOMMENDED.
                    r.timeouts += 1;
                    transport_failures += 1;
                    let current = backoff.unwrap_or(required);
                    backoff = Some((current * 2).min(Duration::from_secs(60)));
                    if transport_failures >= 5 {
                        r.outcome = Outcome::Error;
                        r.error = Some(format!(
                            "five transport failures in a row ({})",
                            reply.detail
                        ));
                        Step::Done
                    } else {
                        Step::Poll
                    }
                }
                Answer::Error => {
                    // RFC 8628 §3.5 (CL-03): any other error ends polling.
                    r.outcome = Outcome::Error;
                    r.error = Some(reply.detail);
                    Step::Done
                }
            }
        };
        match step {
            Step::Poll => {}
            Step::Done => return Ok(()),
            Step::CheckReplay => {
                // Checklist TS-08: one more poll must not yield a second token.
                tokio::time::sleep(Duration::from_secs(interval)).await;
                let again = poll_token(
                    user,
                    fleet,
                    "token_replay_check",
                    &device_code,
                    &["invalid_grant", "expired_token"],
                )
                .await?;
                if again.answer == Answer::Token {
                    lock().violation(
                        "a second token for one device code (checklist TS-08)".to_owned(),
                    );
                }
                return Ok(());
            }
        }
    }
}

/// What the poll loop does next.
enum Step {
    Poll,
    Done,
    CheckReplay,
}

/// Who decides, and how fast.
#[derive(Debug, Clone, Serialize)]
pub struct People {
    pub approve_delay_ms: (u64, u64),
    /// Percent of people (for non-abandoned devices) who deny.
    pub deny_pct: u32,
    /// Percent who never look at the code.
    pub never_pct: u32,
}

impl People {
    pub fn plan(&self, behaviour: Behaviour, rng: &mut impl Rng) -> Plan {
        if behaviour == Behaviour::Abandoned {
            return Plan::Never;
        }
        let roll: u32 = rng.gen_range(0..100);
        let after_ms = rng.gen_range(
            self.approve_delay_ms.0..=self.approve_delay_ms.1.max(self.approve_delay_ms.0),
        );
        if roll < self.deny_pct {
            Plan::Deny { after_ms }
        } else if roll < self.deny_pct + self.never_pct {
            Plan::Never
        } else {
            Plan::Approve { after_ms }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_by_error_code_not_status() {
        assert_eq!(
            classify(Some(400), br#"{"error":"slow_down"}"#).0,
            Answer::SlowDown
        );
        // GitHub answers pending with 200 (checklist TS-01): read by code.
        assert_eq!(
            classify(Some(200), br#"{"error":"authorization_pending"}"#).0,
            Answer::Pending
        );
        assert_eq!(
            classify(Some(200), br#"{"access_token":"x","token_type":"Bearer"}"#).0,
            Answer::Token
        );
        let (a, detail, _) = classify(Some(500), b"<html>oops</html>");
        assert_eq!(
            (a, detail.as_str()),
            (Answer::Error, "HTTP 500 without an error code")
        );
        assert_eq!(
            classify(Some(404), br#"{"error":"device_not_found"}"#).1,
            "device_not_found"
        );
    }

    #[test]
    fn people_follow_their_percentages() {
        let people = People {
            approve_delay_ms: (1000, 2000),
            deny_pct: 20,
            never_pct: 10,
        };
        let mut rng = rand::thread_rng();
        assert_eq!(people.plan(Behaviour::Abandoned, &mut rng), Plan::Never);
        let plans: Vec<Plan> = (0..5000)
            .map(|_| people.plan(Behaviour::Compliant, &mut rng))
            .collect();
        let deny = plans
            .iter()
            .filter(|p| matches!(p, Plan::Deny { .. }))
            .count();
        let never = plans.iter().filter(|p| matches!(p, Plan::Never)).count();
        assert!((800..1200).contains(&deny), "{deny}");
        assert!((350..650).contains(&never), "{never}");
        assert!(plans.iter().all(|p| match p {
            Plan::Approve { after_ms } | Plan::Deny { after_ms } =>
                (1000..=2000).contains(after_ms),
            Plan::Never => true,
        }));
    }
}
