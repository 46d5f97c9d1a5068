//! deviceflow-conformance: an RFC 8628 conformance suite that runs against any
//! device-flow server and says, check by check, with the RFC section and the evidence,
//! what it does right and wrong.
//!
//! It knows nothing about any server beyond what the RFCs say: cases restate the
//! rules of ../shared/rfc8628-checklist.md (each carries its row id), the target is
//! discovered from RFC 8414 metadata or given, and the person's step is pluggable
//! ([`approver::Approver`], shared with the load generator).
//!
//! Where things live: `cases/` holds the checks, one module per part of the flow;
//! `case.rs` and `level.rs` what a check and its verdict are; `context.rs` the moves
//! cases are made of and `runner.rs` what runs them; `target.rs` the server under test
//! (RFC 8414 discovery); `http/` talking to it (the evidence, strict JSON, which
//! addresses may be reached, what an unanswered request means); `redact.rs` the
//! credentials no evidence shows; `report/` the terminal, Markdown, JSON and JUnit.

pub mod approver;
pub mod case;
pub mod cases;
pub mod client;
pub mod context;
pub mod http;
pub mod level;
pub mod progress;
pub mod redact;
pub mod report;
pub mod runner;
pub mod target;

pub use approver::{Action, Approver, Prompt};
pub use client::Client;
pub use context::Options;
pub use report::Report;
pub use runner::{run, Selection};
pub use target::{resolve, resolve_reporting, TargetSpec};
