//! A sample fleet-run page with every chart kind, on made-up but plausible data: the
//! page the load generator will render, for looking at (and for the tests to check
//! whole).
//!
//! `cargo test -p deviceflow-reports -- --ignored write_demo_page` writes it to
//! `$TMPDIR/reports-demo.html` (and the Markdown summary to `reports-demo.md`).

use crate::chart::{
    bar_chart, bins, grouped_bar_chart, histogram, line_chart, stacked_area_chart, Axis, BarSeries,
    Series,
};
use crate::format::{fmt_count, fmt_ms};
use crate::html::{table, Page, Section};
use crate::markdown;

/// A deterministic pseudo-random sequence in `0.0..1.0` (a 64-bit LCG): the demo has
/// noise, but the same noise every time.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

const RUN_SECONDS: u32 = 180;

fn polls_by_outcome(noise: &mut Noise) -> Vec<Series> {
    let ramp = |t: f64| (t / 30.0).min(1.0);
    let mut pending = Vec::new();
    let mut slow_down = Vec::new();
    let mut granted = Vec::new();
    let mut expired = Vec::new();
    for t in 0..=RUN_SECONDS {
        let t = t as f64;
        let wobble = 1.0 + 0.08 * (noise.next() - 0.5);
        pending.push((t, 1900.0 * ramp(t) * wobble));
        slow_down.push((
            t,
            420.0 * ramp(t) * (1.0 + 0.3 * (t / 20.0).sin().abs()) * wobble,
        ));
        granted.push((t, if t < 20.0 { 0.0 } else { 160.0 * wobble }));
        expired.push((t, if t < 120.0 { 0.0 } else { 35.0 * wobble }));
    }
    vec![
        Series::new("authorization_pending", pending),
        Series::new("slow_down", slow_down),
        Series::new("token issued", granted),
        Series::new("expired_token", expired),
    ]
}

fn latency_over_time(noise: &mut Noise) -> Vec<Series> {
    let mut p50 = Vec::new();
    let mut p90 = Vec::new();
    let mut p99 = Vec::new();
    for t in 0..=RUN_SECONDS {
        let t = t as f64;
        let load = 1.0 + (t / 30.0).min(1.0);
        p50.push((t, 0.4 * load + 0.05 * noise.next()));
        p90.push((t, 1.1 * load + 0.3 * noise.next()));
        let spike = if (95.0..105.0).contains(&t) { 9.0 } else { 0.0 };
        p99.push((t, 2.6 * load + 1.5 * noise.next() + spike));
    }
    vec![
        Series::new("p50", p50),
        Series::new("p90", p90),
        Series::new("p99", p99),
    ]
}

fn interval_by_behaviour() -> Vec<Series> {
    let at = |f: &dyn Fn(f64) -> f64| -> Vec<(f64, f64)> {
        (0..=RUN_SECONDS)
            .step_by(2)
            .map(|t| (t as f64, f(t as f64)))
            .collect()
    };
    vec![
        Series::new("well-behaved (waits interval)", at(&|_| 5.0)),
        Series::new(
            "eager (polls every 1 s)",
            at(&|t| 5.0 + 5.0 * (t / 25.0).floor().min(5.0)),
        ),
        Series::new(
            "jittery (interval ± 50 %)",
            at(&|t| if t < 60.0 { 5.0 } else { 10.0 }),
        ),
        Series::new(
            "ignores slow_down",
            at(&|t| 5.0 + 5.0 * (t / 12.0).floor().min(11.0)),
        ),
    ]
}

fn time_to_token(noise: &mut Noise) -> Vec<f64> {
    // Approval after a person-like delay, then up to one interval until the next poll.
    (0..4000)
        .map(|_| {
            let person = 8.0 + 40.0 * (-(1.0 - noise.next()).ln()).min(6.0);
            person + 5.0 * noise.next()
        })
        .collect()
}

fn requests() -> (Vec<String>, Vec<BarSeries>) {
    let names = [
        "device_authorization",
        "token (authorization_pending)",
        "token (slow_down)",
        "token (issued)",
        "introspect",
    ];
    (
        names.map(String::from).to_vec(),
        vec![
            BarSeries::new("p50", vec![0.9, 0.42, 0.38, 1.6, 0.5]),
            BarSeries::new("p90", vec![2.1, 1.2, 1.1, 3.8, 1.3]),
            BarSeries::new("p99", vec![5.4, 3.3, 3.0, 9.7, 3.6]),
        ],
    )
}

/// The whole sample page.
pub(crate) fn page() -> Page {
    let mut noise = Noise(8628);
    // The noise is drawn in this order, so the page is the same every time.
    let ttt = time_to_token(&mut noise);
    let polls = polls_section(&mut noise);
    let latency = latency_section(&mut noise);
    Page::new("Fleet run: 10,000 devices, 180 s")
        .subtitle("deviceflow-server under a mixed fleet of polling behaviours (sample data)")
        .setup("CPU", "AMD EPYC 7B13, 2 cores")
        .setup("server", "deviceflow-server 0.1.0, interval 5 s, expires_in 600 s")
        .setup_code("commit", "3f9c2e1")
        .setup_code(
            "command",
            "cargo run --release -p deviceflow-loadgen -- --target http://127.0.0.1:8080 \
             --devices 10000 --duration 180s --mix well-behaved=70,eager=10,jittery=15,ignores-slow-down=5",
        )
        .section(polls)
        .section(latency)
        .section(interval_section())
        .section(
            Section::new("Time to token")
                .paragraph("From the device authorization request to the access token, per device.")
                .chart(histogram(
                    "Time to token",
                    &Axis::new("time to token", "s"),
                    &Axis::new("devices", ""),
                    &bins(&ttt, 24),
                )),
        )
        .section(
            Section::new("Errors")
                .paragraph("Transport errors and unexpected statuses; none in this run.")
                .chart(line_chart("Errors per second", &time_axis(), &Axis::new("errors per second", ""), &[]))
                .code("$ grep -c error raw/requests.jsonl\n0"),
        )
}

/// The x axis of the charts over time.
fn time_axis() -> Axis {
    Axis::new("time", "s")
}

/// A stacked area chart: the stacked-area kind.
fn polls_section(noise: &mut Noise) -> Section {
    Section::new("Polls by outcome")
        .paragraph(
            "Token requests per second, stacked by the answer the server gave. \
             The top edge is the total poll rate.",
        )
        .chart(stacked_area_chart(
            "Polls per second by outcome",
            &time_axis(),
            &Axis::new("polls per second", ""),
            &polls_by_outcome(noise),
        ))
}

/// A line chart over time, a grouped bar chart and a table: latency per request.
fn latency_section(noise: &mut Noise) -> Section {
    let (names, percentiles) = requests();
    let latency_rows: Vec<Vec<String>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let mut row = vec![name.clone(), fmt_count(12_000 + 97_531 * i as u64)];
            row.extend(percentiles.iter().map(|s| fmt_ms(s.values[i])));
            row
        })
        .collect();
    Section::new("Latency")
        .paragraph(
            "Token endpoint latency percentiles per second, corrected for coordinated omission.",
        )
        .chart(line_chart(
            "Token endpoint latency",
            &time_axis(),
            &Axis::new("latency", "ms"),
            &latency_over_time(noise),
        ))
        .chart(grouped_bar_chart(
            "Latency per request over the whole run",
            &Axis::new("latency", "ms"),
            &names,
            &percentiles,
        ))
        .table(table(
            &["request", "count", "p50", "p90", "p99"],
            &latency_rows,
        ))
}

/// A line chart of steps and a plain bar chart: the interval per behaviour.
fn interval_section() -> Section {
    Section::new("Polling interval")
        .paragraph(
            "The interval the server enforces per device behaviour. RFC 8628 §3.5: each \
             slow_down adds 5 seconds for this and all later polls.",
        )
        .chart(line_chart(
            "Enforced polling interval by device behaviour",
            &time_axis(),
            &Axis::new("interval", "s"),
            &interval_by_behaviour(),
        ))
        .chart(bar_chart(
            "Polls per device by behaviour",
            &Axis::new("polls per device", ""),
            &[
                ("well-behaved".to_owned(), 31.0),
                ("eager".to_owned(), 58.4),
                ("jittery".to_owned(), 36.2),
                ("ignores slow_down".to_owned(), 94.7),
            ],
        ))
}

/// The sample Markdown summary.
pub(crate) fn summary() -> String {
    let (names, percentiles) = requests();
    let rows: Vec<Vec<String>> = names
        .iter()
        .enumerate()
        .map(|(i, name)| {
            std::iter::once(name.clone())
                .chain(percentiles.iter().map(|s| fmt_ms(s.values[i])))
                .collect()
        })
        .collect();
    format!(
        "# Fleet run: 10,000 devices, 180 s\n\n{}\n{}\n## Latency\n\n{}",
        markdown::key_values(&[("CPU", "AMD EPYC 7B13, 2 cores"), ("commit", "3f9c2e1")]),
        markdown::code_block(
            "sh",
            "cargo run --release -p deviceflow-loadgen -- --devices 10000"
        ),
        markdown::table(&["request", "p50", "p90", "p99"], &rows),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{assert_well_formed_html, assert_well_formed_svg};

    #[test]
    fn the_demo_page_is_well_formed_with_every_chart_kind() {
        let html = page().render();
        assert_well_formed_html(&html);
        let charts: Vec<&str> = html
            .split("<svg ")
            .skip(1)
            .map(|rest| &rest[..rest.find("</svg>").unwrap() + "</svg>".len()])
            .collect();
        assert_eq!(charts.len(), 7);
        for chart in &charts {
            assert_well_formed_svg(&format!("<svg {chart}"));
        }
        for kind in [
            "Line chart",
            "Stacked area chart",
            "Histogram",
            "Grouped bar chart",
            "Bar chart",
        ] {
            assert!(html.contains(&format!("<desc>{kind} of")), "no {kind}");
        }
        assert!(html.contains(">no data</text>"));
        assert_eq!(html, page().render(), "rendering is deterministic");
    }

    #[test]
    fn the_demo_summary_is_markdown_with_a_table() {
        let md = summary();
        assert!(
            md.contains("| request | p50 | p90 | p99 |\n|---|---:|---:|---:|\n"),
            "{md}"
        );
        assert!(
            md.contains("| token (slow\\_down) | 380 µs | 1.1 ms | 3 ms |"),
            "{md}"
        );
    }

    #[test]
    #[ignore = "writes the demo page to the temp directory, to look at"]
    fn write_demo_page() {
        let (html, md) = (page().render(), summary());
        let dir = std::env::temp_dir();
        std::fs::write(dir.join("reports-demo.html"), &html).unwrap();
        std::fs::write(dir.join("reports-demo.md"), &md).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("reports-demo.html")).unwrap(),
            html
        );
        println!("wrote {}", dir.join("reports-demo.html").display());
    }
}
