//! Renders what deviceflow runs produce for people to read: self-contained HTML pages
//! with inline SVG charts, and Markdown summaries.
//!
//! Owns presentation only: chart geometry, page layout, escaping and number spelling.
//! It does not own what a run measured or how it is stored; the tools that run things
//! (the load generator, the conformance suite, the benches) hand it plain numbers and
//! strings, and write what it returns next to their raw data under `reports/<tool>/`.
//!
//! - [`chart`]: line, stacked area, histogram, bar and grouped bar charts, each one
//!   `<svg>` string with a `<title>`, a `<desc>` and a legend, in the colour-blind-safe
//!   [`svg::PALETTE`].
//! - [`html`]: a [`Page`](html::Page) of [`Section`](html::Section)s holding prose,
//!   charts and [tables](html::table), rendered to one HTML5 document with inline CSS
//!   and no scripts.
//! - [`markdown`]: tables, setup lists and code blocks for `summary.md` files.
//! - [`format`](mod@format): numbers for people (`12.3k`, `4 min 12 s`, `1,024`).
//! - [`svg`]: the primitives charts share (nice ticks, scales, the palette).
//! - [`escape`]: the one escaping rule for HTML and SVG text, the one for text on a
//!   terminal, and JSON made safe to print on one.
//! - [`stdio`]: lines on standard output and standard error that never panic
//!   ([`outln!`], [`errln!`]), for every binary of the workspace.
//! - [`files`]: the folders the tools write into, made with one error when a file is in
//!   the way.
//!
//! Output is deterministic: the same input gives byte-identical output (no random ids,
//! no clock), so rendered reports can be committed and diffed.
//!
//! ```
//! use deviceflow_reports::chart::{line_chart, Axis, Series};
//! use deviceflow_reports::html::{Page, Section};
//!
//! let p99 = Series::new("p99", vec![(0.0, 3.1), (1.0, 4.4), (2.0, 3.8)]);
//! let svg = line_chart("Token latency", &Axis::new("time", "s"), &Axis::new("latency", "ms"), &[p99]);
//! let page = Page::new("Fleet run").section(Section::new("Latency").chart(svg)).render();
//! assert!(page.contains("latency (ms)"));
//! ```

pub mod chart;
pub mod escape;
pub mod files;
pub mod format;
pub mod html;
pub mod markdown;
pub mod stdio;
pub mod svg;

pub use chart::{
    bar_chart, bins, grouped_bar_chart, histogram, line_chart, stacked_area_chart, Axis, BarSeries,
    Series,
};

#[cfg(test)]
mod demo;
#[cfg(test)]
mod test_support;
