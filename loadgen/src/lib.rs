//! deviceflow-loadgen: goose fleets of simulated devices that run the RFC 8628 device
//! flow against any server, and measure how the server treats them: `slow_down`,
//! interval growth, expiry, time to token, latency.
//!
//! A device is a goose user running one flow (`device.rs`) as its [`Behaviour`]
//! dictates; a simulated person decides through the same [`Approver`] the conformance
//! suite uses. Every device reports into the [`Fleet`]; `results.rs` turns that into
//! per-behaviour findings and `render.rs` into the report folder.
//!
//! [`Approver`]: deviceflow_conformance::Approver

pub mod behaviour;
pub mod device;
pub mod fleet;
pub mod html;
pub mod render;
pub mod results;
pub mod timeline;

pub use behaviour::{Behaviour, Mix};
pub use fleet::{Expectations, Fleet};
