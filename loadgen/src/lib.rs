//! deviceflow-loadgen: fleets of simulated devices that run the RFC 8628 device flow
//! against any server, and measure how the server treats them: `slow_down`, interval
//! growth, expiry, time to token, latency.
//!
//! goose drives a run; its users are lanes (`lane/`), each multiplexing a share of
//! the devices, small state records (`device.rs`) following their [`Behaviour`], over
//! a lean HTTP/1.1 transport (`transport.rs`). A simulated person decides through the
//! same [`Approver`] the conformance suite uses. Lanes count into mergeable
//! statistics (`stats.rs`, `timeline.rs`); `results.rs` holds the run, `render.rs` and
//! `html.rs` the report, `thresholds.rs` the verdict.
//!
//! [`Approver`]: deviceflow_conformance::Approver

pub mod attack;
pub mod behaviour;
pub mod device;
pub mod fleet;
pub mod flow;
pub mod health;
pub mod html;
pub mod lane;
pub mod render;
pub mod report;
pub mod resources;
pub mod results;
pub mod runner;
pub mod scrape;
pub mod shard;
pub mod stats;
pub mod stop;
pub mod thresholds;
pub mod timeline;
pub mod transport;
pub mod wheel;

pub use behaviour::{Behaviour, Mix};
pub use fleet::{Expectations, Fleet, FleetConfig};
