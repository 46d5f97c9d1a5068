//! What a run measures, on both sides of the wire: the devices' own counts, histograms
//! and per-second timeline (`stats.rs`, `timeline.rs`), the server's count from its
//! `/metrics` (`scrape.rs`), and the generator's health and resources (`health.rs`,
//! `resources.rs`), so that a report never blames the server for the generator.

pub mod health;
pub mod resources;
pub mod scrape;
pub mod stats;
pub mod timeline;
