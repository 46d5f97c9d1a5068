//! What the lane does with an exchange that is over: it counts the request (sent,
//! answered, lateness, latency), then hands the answer to the device it was for (or
//! notes that none came), and files the device's next timer.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use deviceflow_conformance::approver::{Action, Prompt};
use deviceflow_wire::DeviceAuthorizationResponse;

use crate::device::flow::Answer;
use crate::device::flow::{Kind, Outcome, Rule};
use crate::device::{classify, not_a, unkept_codes, Next, Plan};
use crate::transport::{self, Cause, Exchange, Reply};

use super::{behaviour_index, Due, Lane, Out, TICK_MS};

impl Lane {
    /// A batch is over: each of its requests is counted and its answer handed on, in
    /// the order they were written.
    pub(super) fn complete(&mut self, mut outs: Vec<Out>, mut x: Exchange) {
        self.give_back(outs[0].target, &mut x);
        let start = self.fleet.start();
        for (out, reply) in outs.drain(..).zip(x.replies) {
            // Each device sees its answer when it came, not when its batch's last did.
            let now = reply.done.saturating_duration_since(start).as_millis() as u32;
            let stalled = self.timed_out_while_stalled(&out, &reply);
            self.count(&out, &reply, stalled);
            match reply.result {
                Ok(answer) => self.answered(out, now, answer),
                Err(e) => {
                    let k = self.stats.kind(out.kind);
                    k.transport[e.cause.index()] += 1;
                    if stalled {
                        k.stalled_unanswered += 1;
                    } else {
                        k.reached_unanswered += u64::from(e.reached);
                    }
                    self.stats
                        .transport_examples
                        .entry(e.cause)
                        .or_insert(e.message);
                    self.fleet.live.transport_errors.fetch_add(1, Relaxed);
                    let b = self.devices[out.slot as usize].behaviour;
                    self.stats.behaviour(b).transport_errors += 1;
                    self.failed(out, now);
                }
            }
        }
        self.spare_outs.push(outs);
    }

    /// Whether `reply` timed out while the lane itself was stalled (its thread held
    /// by its own work, another task, a pause such as SIGSTOP, a starved CPU) for much
    /// of the request's window: the lane's stall clock ([`Lane::note_stall`]) moved by
    /// a quarter of the window or more between the request's write and its end. An
    /// answer that came meanwhile lay unread, and tokio may fire the timeout before it
    /// sees the bytes, so such a timeout is the generator's, not the server's.
    fn timed_out_while_stalled(&self, out: &Out, reply: &Reply) -> bool {
        let Err(e) = &reply.result else {
            return false;
        };
        let window_us = reply.done.saturating_duration_since(reply.sent).as_micros() as u64;
        let stalled_us = u64::from(self.stalled_ms.wrapping_sub(out.stalled_ms)) * 1000;
        e.cause == Cause::Timeout && stalled_for_much_of(window_us, stalled_us)
    }

    /// The request's numbers: sent, answered, the generator's lateness (from the tick it
    /// was due in to when it went out), latency from that tick, and the server's.
    /// Both start at the tick the schedule sends it in (timers fire on [`TICK_MS`]
    /// boundaries by design), so a threshold on latency holds the server to what it
    /// took, plus any delay of the generator past its schedule (a stall, a wait for a
    /// connection), and one on lateness holds the generator to that delay, never to
    /// the tick's rounding. (Lateness from the unrounded time had read 10 ms at p99 on
    /// an idle generator, more than the latency it is part of.)
    ///
    /// A request the server had and did not answer within `--request-timeout` stays
    /// in the latency figures, at the time it was given up on (a lower bound on what
    /// it would have taken): left out, 0.8 % of polls hanging 20 s had let `max<1s`
    /// pass. Not when the generator was `stalled` through it (its own failure), nor
    /// the other failures (refused, reset, closed), which have no latency and are
    /// counted by the error rate.
    fn count(&mut self, out: &Out, reply: &Reply, stalled: bool) {
        let scheduled = self
            .at(out.intended_ms.div_ceil(TICK_MS) * TICK_MS)
            .min(reply.sent);
        let late_us = reply.sent.saturating_duration_since(scheduled).as_micros() as u64;
        let total_us = reply.done.saturating_duration_since(scheduled).as_micros() as u64;
        let server_us = reply.done.saturating_duration_since(reply.sent).as_micros() as u64;
        let ok = reply.result.is_ok();
        let timed_out = match &reply.result {
            Err(e) => e.cause == Cause::Timeout && e.reached && !stalled,
            Ok(_) => false,
        };
        let t = &mut self.per_target[out.target as usize];
        t.0 += 1;
        t.1 += u64::from(ok);
        let k = self.stats.kind(out.kind);
        k.sent += 1;
        k.lateness_us.record(late_us);
        if reply.resent {
            k.retried_unsent += 1;
        }
        if let Ok(a) = &reply.result {
            k.answered += 1;
            *k.status.entry(a.status).or_default() += 1;
        }
        k.timeouts_in_latency += u64::from(timed_out);
        let latency = (ok || timed_out).then_some(total_us);
        if latency.is_some() {
            k.latency_us.record(total_us);
            k.server_us.record(server_us);
        }
        self.stats
            .timeline
            .request(out.kind, out.intended_ms, ok, late_us, latency);
    }

    /// The answer goes to the device (or, for the admin endpoint, the person).
    fn answered(&mut self, out: Out, now: u32, answer: transport::Answer) {
        match out.kind {
            Kind::Issue => self.issued(out, now, &answer),
            Kind::Poll => self.polled(out, now, &answer),
            Kind::ReplayCheck => self.replay_checked(out, now, &answer),
            Kind::Approve => {
                let result = if answer.status == 200 {
                    Ok(())
                } else {
                    Err(format!(
                        "the admin endpoint refused: HTTP {} {}",
                        answer.status,
                        String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
                    ))
                };
                self.decided(out.slot, result);
            }
        }
    }

    /// A request got no answer: never a poll, never a violation.
    fn failed(&mut self, out: Out, now: u32) {
        match out.kind {
            Kind::Issue => {
                self.devices[out.slot as usize].finish(Outcome::Unreached);
                self.finish(out.slot);
            }
            Kind::Poll => match self.devices[out.slot as usize].poll_failed(now) {
                Next::Poll(at) => self.poll_at(out.slot, at),
                _ => self.finish(out.slot),
            },
            Kind::ReplayCheck => self.finish(out.slot),
            Kind::Approve => self.decided(
                out.slot,
                Err("the admin endpoint could not be reached".into()),
            ),
        }
    }

    /// Files device `slot`'s next poll at `at`, or sooner when the person gives up
    /// before it (`--max-flow`): an interval or a back-off may outlast the person,
    /// who gives up on time, and the run ends then (the timer finds it given up).
    fn poll_at(&mut self, slot: u32, at: u32) {
        let at = at.min(self.gives_up_ms(slot));
        self.timers.push(at, (slot, Due::Poll));
    }

    fn issued(&mut self, out: Out, now: u32, answer: &transport::Answer) {
        let (slot, status, body) = (out.slot, answer.status, &answer.body[..]);
        let parsed = match (status, redirect(answer)) {
            (200, _) => serde_json::from_slice::<DeviceAuthorizationResponse>(body)
                .map_err(|e| not_a("device authorization response (RFC 8628 §3.2)", &e))
                .and_then(|auth| unkept_codes(&auth).map_or(Ok(auth), Err)),
            (_, Some(redirect)) => Err(redirect),
            (s, None) => Err(classify(s, body).1.unwrap_or_else(|| format!("HTTP {s}"))),
        };
        let auth = match parsed {
            Ok(auth) => auth,
            Err(what) => {
                self.stats.kind(Kind::Issue).unexpected_answer(&what, 1);
                self.devices[slot as usize].finish(Outcome::Error);
                self.refused(now);
                self.finish(slot);
                return;
            }
        };
        self.fleet.no_code.code();
        let fleet = Arc::clone(&self.fleet);
        let c = &fleet.config;
        let d = &mut self.devices[slot as usize];
        let next = d.authorized(out.intended_ms, now, out.lag_ms, &auth, &mut self.rng);
        let (behaviour, interval, plan) = (d.behaviour, d.interval, d.plan);
        // RFC 8628 §3.2: the interval as the server gave it (absent: 5 s), not as the
        // device keeps it (0 read as 5, 10^9 s kept as an hour: `kept_interval`),
        // which had been reported as the server's; the clamp is a finding.
        let given = auth
            .interval
            .unwrap_or(deviceflow_wire::DEFAULT_INTERVAL_SECS);
        let b = self.stats.behaviour(behaviour);
        *b.expires_in.entry(auth.expires_in).or_default() += 1;
        *b.interval.entry(given).or_default() += 1;
        b.max_required_interval_s = b.max_required_interval_s.max(given);
        // The samples are what the devices keep (the chart of intervals kept).
        let i = behaviour_index(behaviour);
        self.intervals[i].0 += u64::from(interval);
        self.intervals[i].1 += 1;
        self.devices[slot as usize].sampled = true;
        if let Some(want) = c.expect.expires_in.filter(|&w| w != auth.expires_in) {
            let why = format!("expires_in {} where {want} was expected", auth.expires_in);
            self.violation_issue(slot, Rule::ExpiresIn, now, body, why);
        }
        // DR-06 (RFC 8628 §3.2): the interval as the server gave it (above).
        if let Some(want) = c.expect.interval.filter(|&w| w != given) {
            let why = format!("interval {given} where {want} was expected");
            self.violation_issue(slot, Rule::Interval, now, body, why);
        }
        if let Next::Poll(at) = next {
            self.poll_at(slot, at);
        }
        self.person_decides(slot, now, plan, auth);
    }

    /// A device authorization was answered without a code: when none has brought one
    /// and enough were refused to be sure (`fleet::NoCodeWatch`), the run is stopped
    /// early rather than lasting its whole -t for a wrong --client-id.
    fn refused(&mut self, now: u32) {
        if self.closing {
            return;
        }
        let c = &self.fleet.config;
        let devices = c.run_time.is_none().then(|| c.shard.devices_of(c.devices));
        if let Some(why) = self.fleet.no_code.refused(now, devices) {
            self.fleet.stop_early(f64::from(now) / 1000.0, why);
        }
    }

    /// The person, in parallel with the device's polls: through the admin endpoint
    /// (a timer of the lane's), or the approver's own task.
    fn person_decides(
        &mut self,
        slot: u32,
        now: u32,
        plan: Plan,
        auth: DeviceAuthorizationResponse,
    ) {
        let (Plan::Approve { after_ms } | Plan::Deny { after_ms }) = plan else {
            return;
        };
        let c = &self.fleet.config;
        if c.admin.is_some() {
            self.timers.push(now + after_ms, (slot, Due::Decide));
        } else if c.approver.is_available() {
            let action = if matches!(plan, Plan::Deny { .. }) {
                Action::Deny
            } else {
                Action::Approve
            };
            let prompt = Prompt {
                user_code: auth.user_code,
                verification_uri: auth.verification_uri,
                verification_uri_complete: auth.verification_uri_complete,
            };
            let approver = c.approver.clone();
            let tx = self.decisions.0.clone();
            // The tasks that ended are taken off as new ones start: the set holds
            // those still running, not one entry per device of the run.
            while self.approvals.try_join_next().is_some() {}
            self.approvals.spawn(async move {
                tokio::time::sleep(Duration::from_millis(u64::from(after_ms))).await;
                let r = approver.decide(&prompt, action).await;
                let _ = tx.send((slot, r));
            });
        }
    }

    fn polled(&mut self, out: Out, now: u32, reply: &transport::Answer) {
        let (status, body) = (reply.status, &reply.body[..]);
        let (answer, detail) = classify(status, body);
        let detail = redirect(reply).or(detail);
        self.stats.timeline.poll_answer(out.intended_ms, answer);
        self.fleet.live.polls.fetch_add(1, Relaxed);
        if let (Answer::Error, Some(d)) = (answer, detail) {
            self.stats.kind(Kind::Poll).unexpected_answer(&d, 1);
        }
        let d = &mut self.devices[out.slot as usize];
        let before = d.required_s();
        let (next, rule) = d.polled(
            out.intended_ms,
            now,
            out.lag_ms,
            out.early,
            answer,
            &mut self.rng,
        );
        let (behaviour, after) = (d.behaviour, d.required_s());
        if after != before && d.sampled {
            let i = behaviour_index(behaviour);
            self.intervals[i].0 += u64::from(after - before);
            let b = self.stats.behaviour(behaviour);
            b.max_required_interval_s = b.max_required_interval_s.max(u64::from(after));
        }
        if let Some(rule) = rule {
            let why = match rule {
                Rule::PendingAfterExpiry => "pending more than 2 s after issued + expires_in",
                Rule::PendingAfterDenial => "pending though the person denied 2 intervals before",
                Rule::TokenAfterExpiry => "a token more than 2 s after issued + expires_in",
                Rule::TokenAfterDenial => "a token though the person denied",
                Rule::TokenNobodyApproved => "a token though nobody approved (yet)",
                Rule::ExpiredEarly => {
                    "expired_token more than 2 s before the code was asked for + expires_in"
                }
                Rule::DeniedWithoutDenial => "access_denied though the person did not deny (yet)",
                _ => "",
            };
            self.violation(out.slot, rule, now, status, body, why);
        }
        match next {
            Next::Poll(at) => self.poll_at(out.slot, at),
            Next::ReplayCheck(at) if self.fleet.config.verify_single_use => {
                self.stop_polling(out.slot);
                self.timers.push(at, (out.slot, Due::ReplayCheck));
            }
            _ => self.finish(out.slot),
        }
    }

    /// The replay check: a second token for a device code already redeemed is a
    /// violation, and so is `authorization_pending` to it (checklist TS-08: any later
    /// poll gets an error; a server that forgot the redemption tells the device to go
    /// on polling). `slow_down` is an error, if a late one (PL-06 judges pacing before
    /// the state); an error other than `invalid_grant` is counted as unexpected.
    fn replay_checked(&mut self, out: Out, now: u32, reply: &transport::Answer) {
        let (status, body) = (reply.status, &reply.body[..]);
        let (a, detail) = classify(status, body);
        let detail = redirect(reply).or(detail);
        if a == Answer::Token {
            let why = "a token for a device code already redeemed";
            self.violation(out.slot, Rule::SecondToken, now, status, body, why);
        } else if a == Answer::Pending {
            let why = "told to go on polling with a device code already redeemed";
            let rule = Rule::PendingAfterRedemption;
            self.violation(out.slot, rule, now, status, body, why);
        } else if let Some(d) = detail.filter(|d| d != "invalid_grant") {
            if a == Answer::Error {
                self.stats.kind(Kind::ReplayCheck).unexpected_answer(&d, 1);
            }
        }
        self.finish(out.slot);
    }

    pub(super) fn decided(&mut self, slot: u32, result: Result<(), String>) {
        let now = self.now_ms();
        let d = &mut self.devices[slot as usize];
        match result {
            Ok(()) => d.decided_ms = now,
            Err(e) => {
                let b = d.behaviour;
                self.stats.behaviour(b).decision_errors += 1;
                if self.stats.decision_errors.len() < 5 {
                    self.stats.decision_errors.push(e);
                }
            }
        }
    }
}

/// Whether a lane stalled for `stalled_us` of a request's `window_us` (write to end)
/// missed much of it: a quarter or more. A stall that short of the window leaves the
/// server most of its time in the generator's sight, and a timeout then is its own.
pub(super) fn stalled_for_much_of(window_us: u64, stalled_us: u64) -> bool {
    stalled_us > 0 && stalled_us.saturating_mul(4) >= window_us
}

/// A redirect (3xx with a `Location`) as the report names it. Where it sends devices
/// says what the endpoint is (a login page, https://): "HTTP 302, not a JSON object"
/// had not.
fn redirect(answer: &transport::Answer) -> Option<String> {
    let to = answer.location.as_deref()?;
    Some(format!(
        "HTTP {}, a redirect to {} (devices do not follow redirects)",
        answer.status,
        redirect_target(to)
    ))
}

/// A redirect's `Location` as the report names it: without its query and fragment
/// (a login page's `?next=…` differs from request to request, and would make every
/// answer one of its own), at most 200 characters.
fn redirect_target(location: &str) -> String {
    let bare = location.split(['?', '#']).next().unwrap_or_default();
    match bare.char_indices().nth(200) {
        Some((cut, _)) => format!("{}…", &bare[..cut]),
        None => bare.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SIGSTOP for 4 s with `--request-timeout 2`: every request out then timed out
    /// when the process went on, though the server had answered each at once, and
    /// the report said "the server had all 44 of them and gave no answer".
    #[test]
    fn a_timeout_through_a_stall_of_the_generator_is_the_generators() {
        assert!(stalled_for_much_of(4_500_000, 4_000_000));
        assert!(stalled_for_much_of(2_000_000, 500_000));
    }

    #[test]
    fn a_timeout_with_the_generator_watching_is_the_servers() {
        assert!(!stalled_for_much_of(10_000_000, 0));
        assert!(!stalled_for_much_of(10_000_000, 300_000));
    }
}
