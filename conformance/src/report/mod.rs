//! The run's result, and its renderings: terminal table, JSON (schema
//! `deviceflow-conformance/1`, documented in conformance/README.md), JUnit XML and
//! Markdown.

mod junit;
mod markdown;
mod terminal;

use std::time::Duration;

use serde::Serialize;

use crate::case::{CaseInfo, Level, Status, Verdict};
use crate::context::{Ctx, Options, Preflight};

pub use junit::junit;
pub use markdown::markdown;
pub use terminal::terminal;

pub const SCHEMA: &str = "deviceflow-conformance/1";

#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    pub id: &'static str,
    /// `ID slug`: the stable name for filters and CI systems.
    pub name: String,
    #[serde(flatten)]
    pub info: CaseInfo,
    #[serde(flatten)]
    pub verdict: Verdict,
    pub duration_ms: u64,
}

impl CaseReport {
    pub fn new(info: CaseInfo, verdict: Verdict, duration_ms: u64) -> CaseReport {
        CaseReport {
            id: info.id,
            name: info.name(),
            info,
            verdict,
            duration_ms,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub pass: usize,
    pub fail: usize,
    pub warn: usize,
    pub info: usize,
    pub skip: usize,
    pub not_applicable: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct TargetSummary {
    pub issuer: Option<String>,
    pub device_authorization_endpoint: String,
    pub token_endpoint: String,
    pub metadata_url: Option<String>,
    pub client_id: String,
    pub client_auth: crate::target::AuthMethod,
    pub second_client_id: Option<String>,
    pub scope: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub schema: &'static str,
    pub suite_version: &'static str,
    pub target: TargetSummary,
    pub approver: String,
    pub options: Options,
    pub preflight: Preflight,
    /// Unix seconds.
    pub started_at: u64,
    pub duration_ms: u64,
    pub totals: Totals,
    /// Failed MUST and Derived-FAIL cases: the exit code is 1 when this is non-zero.
    pub must_failures: usize,
    pub cases: Vec<CaseReport>,
}

impl Report {
    pub fn new(
        ctx: &Ctx,
        preflight: Preflight,
        started_at: u64,
        took: Duration,
        cases: Vec<CaseReport>,
    ) -> Report {
        let t = &ctx.target;
        let mut totals = Totals::default();
        for c in &cases {
            match c.verdict.status {
                Status::Pass => totals.pass += 1,
                Status::Fail => totals.fail += 1,
                Status::Warn => totals.warn += 1,
                Status::Info => totals.info += 1,
                Status::Skip => totals.skip += 1,
                Status::NotApplicable => totals.not_applicable += 1,
            }
        }
        let must_failures = cases
            .iter()
            .filter(|c| {
                c.verdict.status == Status::Fail
                    && matches!(c.info.level, Level::Must | Level::DerivedFail)
            })
            .count();
        Report {
            schema: SCHEMA,
            suite_version: env!("CARGO_PKG_VERSION"),
            target: TargetSummary {
                issuer: t.issuer.clone(),
                device_authorization_endpoint: t.device_authorization_endpoint.clone(),
                token_endpoint: t.token_endpoint.clone(),
                metadata_url: t.metadata.as_ref().map(|m| m.url.clone()),
                client_id: t.client.id.clone(),
                client_auth: t.client.method,
                second_client_id: t.second_client.as_ref().map(|c| c.id.clone()),
                scope: t.scope.clone(),
            },
            approver: ctx.approver.describe(),
            options: ctx.options.clone(),
            preflight,
            started_at,
            duration_ms: took.as_millis() as u64,
            totals,
            must_failures,
            cases,
        }
    }

    /// One line per case, `ID<TAB>status`, in checklist order: what a committed
    /// baseline holds (no timings, no evidence), so a regression shows as a diff.
    pub fn baseline(&self) -> String {
        self.cases
            .iter()
            .map(|c| format!("{}\t{}\n", c.id, c.verdict.status.as_str()))
            .collect()
    }

    pub fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// The process exit code: 1 if any MUST (or Derived-FAIL) case failed.
    pub fn exit_code(&self) -> i32 {
        i32::from(self.must_failures > 0)
    }
}

/// Groups cases by checklist section, in order of first appearance.
pub(crate) fn by_group(cases: &[CaseReport]) -> Vec<(&'static str, Vec<&CaseReport>)> {
    let mut groups: Vec<(&'static str, Vec<&CaseReport>)> = Vec::new();
    for c in cases {
        match groups.iter_mut().find(|(g, _)| *g == c.info.group) {
            Some((_, v)) => v.push(c),
            None => groups.push((c.info.group, vec![c])),
        }
    }
    groups
}
