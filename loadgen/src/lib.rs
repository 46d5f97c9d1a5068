//! deviceflow-loadgen: fleets of simulated devices that run the RFC 8628 device flow
//! against any server, and measure how the server treats them: `slow_down`, interval
//! growth, expiry, time to token, latency.
//!
//! A run, folder by folder:
//!
//! - `device/`: one simulated device, a small state record following its
//!   [`Behaviour`] and the device-side rules of RFC 8628, and the names of its flow;
//! - `lane/`: one goose user multiplexing a share of the devices on one task, with
//!   their timer wheel and connection pool, over a lean HTTP/1.1 transport
//!   (`transport.rs`); a simulated person decides through the same [`Approver`] the
//!   conformance suite uses;
//! - `fleet/`: the fleet's configuration and the live counters its lanes report into,
//!   and `--shard i/n`;
//! - `measure/`: what lanes count into mergeable statistics and timelines, the server's
//!   `/metrics`, the generator's own health and resources;
//! - `report/`: the run as stored (`run.json`), its findings, Markdown and HTML, and the
//!   `--threshold` verdict;
//! - `attack.rs` is the goose attack whose users are the lanes; `runner.rs` runs one
//!   fleet from start to report data; `stop.rs` is Ctrl-C and SIGTERM.
//!
//! [`Approver`]: deviceflow_conformance::Approver

pub mod attack;
pub mod device;
pub mod fleet;
pub mod lane;
pub mod measure;
pub mod report;
pub mod runner;
pub mod stop;
pub mod transport;

pub use device::behaviour::{Behaviour, Mix};
pub use fleet::{Expectations, Fleet, FleetConfig};
