//! The run's self-contained HTML page: the findings, then charts (inline SVG, no
//! script, no CDN) and the tables behind them.

use deviceflow_reports::chart::{
    grouped_bar_chart, histogram, line_chart, stacked_area_chart, Axis, BarSeries, Series,
};
use deviceflow_reports::html::{table, Page, Section};

use crate::render::{behaviour_rows, findings, request_rows};
use crate::results::RunData;
use crate::timeline::Answer;

pub fn page(r: &RunData) -> String {
    let s = &r.setup;
    let mix: Vec<String> = s
        .mix
        .iter()
        .map(|(b, p)| format!("{}={p}", b.as_str()))
        .collect();
    let mut page = Page::new(format!(
        "Device fleet: {} devices against {}",
        r.devices, s.device_authorization_endpoint
    ))
    .subtitle("deviceflow-loadgen: simulated RFC 8628 devices, one goose user each")
    .setup_code("command", s.command.clone())
    .setup("commit", s.commit.clone())
    .setup("CPU", s.cpu.clone())
    .setup("token endpoint", s.token_endpoint.clone())
    .setup("client", s.client_id.clone())
    .setup("behaviour mix (%)", mix.join(", "))
    .setup(
        "people",
        format!(
            "decide after {}–{} s; deny {} %; never {} %; via {}",
            s.people.approve_delay_ms.0 / 1000,
            s.people.approve_delay_ms.1 / 1000,
            s.people.deny_pct,
            s.people.never_pct,
            s.approver
        ),
    )
    .setup("duration", format!("{:.0} s", r.duration_s));
    if let Some(rss) = r.loadgen_peak_rss_mb {
        page = page.setup("load generator peak RSS", format!("{rss:.0} MB"));
    }

    let mut summary = Section::new("Findings");
    for f in findings(r) {
        summary = summary.paragraph(f);
    }
    let (h, rows) = behaviour_rows(r);
    summary = summary.table(table(&h, &rows));
    page = page.section(summary);

    // Polls per second by answer, stacked.
    let time = Axis::new("time since start", "s");
    let series: Vec<Series> = Answer::ALL
        .iter()
        .map(|a| {
            Series::new(
                a.as_str(),
                r.timeline
                    .iter()
                    .map(|sec| (sec.t as f64, sec.answers[a.as_str()] as f64))
                    .collect(),
            )
        })
        .filter(|s| s.points.iter().any(|(_, y)| *y > 0.0))
        .collect();
    let auth = Series::new(
        "device authorizations",
        r.timeline
            .iter()
            .map(|sec| (sec.t as f64, sec.authorizations as f64))
            .collect(),
    );
    page = page.section(
        Section::new("Polls and answers over time")
            .paragraph("Each second's token-endpoint polls, stacked by the server's answer; below, device authorizations per second as the fleet hatched.")
            .chart(stacked_area_chart("Polls per second by answer", &time, &Axis::new("polls per second", ""), &series))
            .chart(line_chart("Device authorizations per second", &time, &Axis::new("requests per second", ""), &[auth])),
    );

    // Latency over time.
    let p50 = Series::new(
        "p50",
        r.timeline
            .iter()
            .filter_map(|sec| Some((sec.t as f64, sec.p50_ms?)))
            .collect(),
    );
    let p99 = Series::new(
        "p99",
        r.timeline
            .iter()
            .filter_map(|sec| Some((sec.t as f64, sec.p99_ms?)))
            .collect(),
    );
    let names: Vec<String> = r.requests.iter().map(|q| q.name.clone()).collect();
    let per = |f: fn(&crate::results::RequestStats) -> Option<f64>| {
        r.requests
            .iter()
            .map(|q| f(q).unwrap_or(f64::NAN))
            .collect::<Vec<f64>>()
    };
    let (rh, rrows) = request_rows(r);
    page = page.section(
        Section::new("Latency")
            .paragraph(
                "Per second, from the moment each request was meant to be sent, so a stalled load generator cannot hide a slow server \
                 (coordinated omission corrected). The table and bars are goose's own figures per request; its CO-corrected p99 is shown where goose back-filled.",
            )
            .chart(line_chart("Request latency percentiles per second", &time, &Axis::new("latency", "ms"), &[p50, p99]))
            .chart(grouped_bar_chart(
                "Latency by request (goose)",
                &Axis::new("latency", "ms"),
                &names,
                &[
                    BarSeries::new("p50", per(|q| q.p50_ms)),
                    BarSeries::new("p90", per(|q| q.p90_ms)),
                    BarSeries::new("p99", per(|q| q.p99_ms)),
                ],
            ))
            .table(table(&rh, &rrows)),
    );

    // The interval the server required, by behaviour.
    let series: Vec<Series> = r
        .interval_over_time
        .iter()
        .filter(|(_, pts)| !pts.is_empty())
        .map(|(b, pts)| Series::new(*b, pts.clone()))
        .collect();
    page = page.section(
        Section::new("The interval the server enforced")
            .paragraph(
                "The interval each device was required to keep (RFC 8628 §3.5: the first interval, plus 5 s per slow_down), \
                 averaged over the devices of each behaviour still running. Flat lines mean no slow_down; deaf devices climb \
                 when the server keeps adding 5 s for their early polls.",
            )
            .chart(line_chart("Required polling interval by behaviour", &time, &Axis::new("interval", "s"), &series)),
    );

    // Time to token.
    page = page.section(
        Section::new("Time to token after approval")
            .paragraph("From the moment the person's approval went through to the device's token response.")
            .chart(histogram(
                "Time to token after approval",
                &Axis::new("time to token", "s"),
                &Axis::new("devices", ""),
                &r.time_to_token_histogram,
            )),
    );

    if !r.violations.is_empty() {
        let rows: Vec<Vec<String>> = r
            .violations
            .iter()
            .map(|v| {
                vec![
                    v.device.to_string(),
                    v.behaviour.as_str().to_owned(),
                    v.what.clone(),
                ]
            })
            .collect();
        page = page.section(
            Section::new(format!(
                "Violations ({} in all; the first {})",
                r.violations_total,
                r.violations.len()
            ))
            .table(table(&["device", "behaviour", "what"], &rows)),
        );
    }
    page.render()
}
