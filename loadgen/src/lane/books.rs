//! The lane's books: violations with their first example, devices leaving the
//! interval samples, and a finished device's numbers folded into its behaviour's.

use std::sync::atomic::Ordering::Relaxed;

use deviceflow_conformance::redact::redact;
use deviceflow_reports::escape::clip;

use crate::device::flow::{Outcome, Rule};
use crate::device::Phase;
use crate::measure::stats::Example;

use super::{behaviour_index, Due, Lane};

impl Lane {
    /// A poll's (or the replay check's) answer broke `rule`: counted once per device
    /// and rule, with the first example kept.
    pub(super) fn violation(
        &mut self,
        slot: u32,
        rule: Rule,
        now: u32,
        status: u16,
        body: &[u8],
        why: &str,
    ) {
        let d = &mut self.devices[slot as usize];
        if !d.breaks(rule) {
            return;
        }
        let (id, behaviour) = (d.id, d.behaviour);
        // Masked as the suite's evidence masks it: a report never holds a live code.
        let code = deviceflow_conformance::redact::mask(&d.device_code);
        let path = &self.fleet.config.token_path;
        self.stats.behaviour(behaviour).violations += 1;
        self.stats.violation(rule, || Example {
            device: id,
            behaviour,
            request: format!("POST {path} grant_type=…device_code&device_code={code}"),
            at_ms: u64::from(now),
            status,
            body: example_body(body),
            why: why.to_owned(),
        });
    }

    /// The device authorization response broke `rule`.
    pub(super) fn violation_issue(
        &mut self,
        slot: u32,
        rule: Rule,
        now: u32,
        body: &[u8],
        why: String,
    ) {
        let d = &mut self.devices[slot as usize];
        if !d.breaks(rule) {
            return;
        }
        let (id, behaviour) = (d.id, d.behaviour);
        let path = &self.fleet.config.issue_path;
        self.stats.behaviour(behaviour).violations += 1;
        self.stats.violation(rule, || Example {
            device: id,
            behaviour,
            request: format!("POST {path}"),
            at_ms: u64::from(now),
            status: 200,
            body: example_body(body),
            why,
        });
    }

    /// The device no longer polls: it leaves the interval samples.
    pub(super) fn stop_polling(&mut self, slot: u32) {
        let d = &mut self.devices[slot as usize];
        if d.sampled {
            d.sampled = false;
            let i = behaviour_index(d.behaviour);
            self.intervals[i].0 = self.intervals[i]
                .0
                .saturating_sub(u64::from(d.required_s()));
            self.intervals[i].1 = self.intervals[i].1.saturating_sub(1);
        }
    }

    /// The device's flow is over: its numbers go into its behaviour's.
    pub(super) fn finish(&mut self, slot: u32) {
        if self.devices[slot as usize].phase == Phase::ReplayCheck {
            self.devices[slot as usize].finish(Outcome::Token);
        } else if self.devices[slot as usize].phase != Phase::Done {
            self.devices[slot as usize].finish(Outcome::Unfinished);
        }
        self.fold(slot);
        // With -t, the slot starts its next device (not once the run time is up). A
        // flow that failed (unreached, or ended by an error) is started anew a second
        // later, as a device would retry: a failing server is not hammered.
        if self.fleet.config.run_time.is_some() && !self.closing {
            let now = self.now_ms();
            if matches!(
                self.devices[slot as usize].outcome,
                Outcome::Unreached | Outcome::Error
            ) {
                self.restarting += 1;
                self.timers.push(now + 1000, (slot, Due::Restart));
            } else {
                let id = self.devices[slot as usize].id + self.fleet.config.devices;
                self.start(id, now, 0);
            }
        }
    }

    pub(super) fn fold(&mut self, slot: u32) {
        self.stop_polling(slot);
        let d = &mut self.devices[slot as usize];
        let b = self.stats.behaviours.entry(d.behaviour).or_default();
        b.outcomes[d.outcome.index()] += 1;
        b.polls += u64::from(d.polls);
        if d.issued_ms != u32::MAX {
            b.polls_per_device.record(u64::from(d.polls));
        }
        b.slow_downs += u64::from(d.slow_downs);
        if d.slow_downs > 0 {
            b.devices_slowed_down += 1;
        }
        b.early_polls += u64::from(d.early_polls);
        b.early_polls_slowed += u64::from(d.early_slowed);
        if let (Some(dec), true) = (d.decided(), d.token_ms != u32::MAX) {
            b.time_to_token_ms
                .record(u64::from(d.token_ms.saturating_sub(dec)));
        }
        if let Some(why) = d.expired_because() {
            b.expired_because.count(why);
        }
        if d.pending_after_decision {
            b.pending_after_decision += 1;
        }
        // Before expiry, expired_token is a violation (EX-01, `Device::polled`).
        if let (Outcome::Expired, Some(e)) = (d.outcome, d.expiry_ms()) {
            let first = u64::from(d.first_expired_ms);
            if first >= e {
                b.expiry_lateness_ms.record(first - e);
            }
        }
        let f = &self.fleet.live;
        f.finished.fetch_add(1, Relaxed);
        if d.outcome == Outcome::Token {
            f.tokens.fetch_add(1, Relaxed);
        }
        d.release();
        self.live -= 1;
    }
}

/// The start of a violation's answer, as the reports quote it: its credentials masked
/// first (`deviceflow_conformance::redact::redact`: a token the server should not have
/// given is still a live token), then cut to 300 characters.
fn example_body(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    clip(&redact(&text), 300)
}
