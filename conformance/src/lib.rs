//! deviceflow-conformance: an RFC 8628 conformance suite that runs against any
//! device-flow server and says, check by check, with the RFC section and the evidence,
//! what it does right and wrong.
//!
//! It knows nothing about any server beyond what the RFCs say: cases restate the
//! rules of ../shared/rfc8628-checklist.md (each carries its row id), the target is
//! discovered from RFC 8414 metadata or given, and the person's step is pluggable
//! ([`approver::Approver`], shared with the load generator).

pub mod approver;
pub mod case;
pub mod cases;
pub mod client;
pub mod context;
pub mod diagnose;
pub mod http;
pub mod json;
pub mod level;
pub mod progress;
pub mod reach;
pub mod report;
pub mod runner;
pub mod target;

pub use approver::{Action, Approver, Prompt};
pub use client::Client;
pub use context::Options;
pub use report::Report;
pub use runner::{run, Selection};
pub use target::{resolve, resolve_reporting, TargetSpec};
