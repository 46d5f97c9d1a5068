//! The run's self-contained HTML page: the findings, then charts (inline SVG, no
//! script, no CDN) and the tables behind them. Tables are split so none is wider
//! than a 1280 px window.

use deviceflow_reports::chart::{histogram, line_chart, stacked_area_chart, Axis, Series};
use deviceflow_reports::html::{table, Page, Section};

use crate::device::flow::Answer;
use crate::device::flow::Kind;
use crate::measure::stats::Hdr;
use crate::report::render::{self, findings};
use crate::report::results::RunData;

fn section_table(mut s: Section, (h, rows): (Vec<String>, Vec<Vec<String>>)) -> Section {
    if !rows.is_empty() {
        s = s.table(table(&h, &rows));
    }
    s
}

/// Columns `keep` of a table, in that order.
fn columns(
    (h, rows): &(Vec<String>, Vec<Vec<String>>),
    keep: &[usize],
) -> (Vec<String>, Vec<Vec<String>>) {
    let pick = |r: &Vec<String>| keep.iter().map(|&i| r[i].clone()).collect();
    (pick(h), rows.iter().map(pick).collect())
}

/// Bins of an HDR histogram of milliseconds, in seconds: (from, to, count).
fn bins_s(h: &Hdr) -> Vec<(f64, f64, u64)> {
    let Some(max) = h.max() else {
        return Vec::new();
    };
    let max_s = max as f64 / 1000.0;
    let width = 1.0_f64.max((max_s / 20.0).ceil());
    let n = (max_s / width).floor() as usize + 1;
    let mut bins: Vec<(f64, f64, u64)> = (0..n)
        .map(|i| (i as f64 * width, (i + 1) as f64 * width, 0))
        .collect();
    for v in h.0.iter_recorded() {
        let s = v.value_iterated_to() as f64 / 1000.0;
        let i = ((s / width).floor() as usize).min(n - 1);
        bins[i].2 += v.count_at_value();
    }
    bins
}

/// The whole page: how the run was set up, then one section per question it answers.
pub fn page(r: &RunData) -> String {
    let mut page = setup_block(r)
        .section(findings_section(r))
        .section(traffic_section(r));
    if let Some(hosts) = hosts_section(r) {
        page = page.section(hosts);
    }
    page = page.section(latency_section(r)).section(health_section(r));
    if let Some(reconciliation) = reconciliation_section(r) {
        page = page.section(reconciliation);
    }
    page = page
        .section(interval_section(r))
        .section(time_to_token_section(r));
    for extra in [unexpected_section(r), violations_section(r)]
        .into_iter()
        .flatten()
    {
        page = page.section(extra);
    }
    page.render()
}

/// The x axis of every chart over the run.
fn time_axis() -> Axis {
    Axis::new("time since start", "s")
}

/// The title and the setup block: what ran, where, on what, with which mix.
fn setup_block(r: &RunData) -> Page {
    let s = &r.setup;
    let mix: Vec<String> = s
        .mix
        .iter()
        .map(|(b, p)| format!("{}={p}", b.as_str()))
        .collect();
    let mut page = Page::new(format!(
        "Device fleet: {} devices against {}",
        deviceflow_reports::format::fmt_count(r.stats.devices()),
        s.device_authorization_endpoint
    ))
    .subtitle("deviceflow-loadgen: simulated RFC 8628 devices, multiplexed on goose users")
    .setup_code("command", s.command.clone())
    .setup("commit", s.commit.clone())
    .setup("CPU", s.cpu.clone())
    .setup("generator", render::build(s).to_owned())
    .setup("hosts", s.hosts.join(", "))
    .setup("token endpoint", s.token_endpoint.clone())
    .setup(
        "client",
        match &s.client_secret_from {
            Some(var) => format!("{} (confidential, its secret from {var})", s.client_id),
            None => s.client_id.clone(),
        },
    )
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
    .setup(
        "generator",
        format!(
            "{} lane{}, up to {} connections per host, {}, seed {}",
            s.lanes,
            if s.lanes == 1 { "" } else { "s" },
            s.connections,
            if s.pipeline > 1 {
                format!("up to {} requests pipelined on a connection", s.pipeline)
            } else {
                "one request at a time on a connection".to_owned()
            },
            s.seed
        ),
    )
    .setup("duration", format!("{:.0} s", r.duration_s));
    for sh in &r.shards {
        page = page.setup(
            format!("shard {}", sh.shard),
            format!(
                "{:.0} s; peak RSS {}; CPU {:.1} s; {}",
                sh.duration_s,
                sh.peak_rss_mb.map_or("–".into(), |m| format!("{m:.0} MB")),
                sh.cpu_s,
                sh.fd_limit
            ),
        );
    }
    page
}

/// The findings in words, and the outcome of every device.
fn findings_section(r: &RunData) -> Section {
    let mut summary = Section::new("Findings");
    for f in findings(r) {
        summary = summary.paragraph(f);
    }
    section_table(summary, render::outcome_rows(r))
}

/// Polls per second stacked by answer; device authorizations and transport errors.
fn traffic_section(r: &RunData) -> Section {
    let time = time_axis();
    let secs = &r.stats.timeline.seconds;
    let series: Vec<Series> = Answer::ALL
        .iter()
        .map(|a| {
            Series::new(
                a.as_str(),
                secs.iter()
                    .enumerate()
                    .map(|(t, sec)| (t as f64, sec.answers[a.index()] as f64))
                    .collect(),
            )
        })
        .filter(|s| s.points.iter().any(|(_, y)| *y > 0.0))
        .collect();
    let per_kind = |k: Kind, f: fn(&crate::measure::timeline::KindSecond) -> u64| {
        secs.iter()
            .enumerate()
            .map(|(t, sec)| (t as f64, f(&sec.kinds[k.index()]) as f64))
            .collect::<Vec<_>>()
    };
    let mut rates = vec![Series::new(
        "device authorizations",
        per_kind(Kind::Issue, |k| k.answered),
    )];
    let errors: Vec<(f64, f64)> = secs
        .iter()
        .enumerate()
        .map(|(t, sec)| {
            (
                t as f64,
                sec.kinds.iter().map(|k| k.transport_errors).sum::<u64>() as f64,
            )
        })
        .collect();
    if errors.iter().any(|(_, y)| *y > 0.0) {
        rates.push(Series::new("transport errors", errors));
    }
    section_table(
        section_table(
            Section::new("Polls and answers over time")
                .paragraph("Each second's token polls (by intended send time), stacked by the server's answer; below, device authorizations answered per second, and requests that got no answer.")
                .chart(stacked_area_chart("Polls per second by answer", &time, &Axis::new("polls per second", ""), &series))
                .chart(line_chart("Device authorizations and transport errors per second", &time, &Axis::new("per second", ""), &rates)),
            render::request_count_rows(r),
        ),
        render::transport_rows(r),
    )
}

/// Requests by host, when the run spread over more than one.
fn hosts_section(r: &RunData) -> Option<Section> {
    (r.stats.hosts.len() > 1).then(|| {
        section_table(
            Section::new("Requests by host")
                .paragraph("Each device issues on one host and spreads its polls over the others (the admin endpoint is listed apart)."),
            render::host_rows(r),
        )
    })
}

/// Latency over time, per request kind, from the intended send time.
fn latency_section(r: &RunData) -> Section {
    let time = time_axis();
    let secs = &r.stats.timeline.seconds;
    let mut latency = Section::new("Latency").paragraph(
        "Per request type and second, from the moment each request was meant to go out (coordinated omission corrected: a stalled generator cannot hide a slow server). \
         The table splits it into the generator's lateness (intended to sent) and the server's time (sent to answered). \
         A request the server had and did not answer within --request-timeout is in the figures at the time it was given up on (a lower bound; last column), \
         unless the generator was stalled through it.",
    );
    for k in render::kinds(r) {
        let q = |p: f64| {
            Series::new(
                if p >= 1.0 {
                    "max".to_owned()
                } else {
                    format!("p{:.0}", p * 100.0)
                },
                secs.iter()
                    .enumerate()
                    .filter_map(|(t, sec)| {
                        Some((t as f64, sec.kinds[k.index()].latency.quantile_ms(p)?))
                    })
                    .collect(),
            )
        };
        let all = [q(0.5), q(0.9), q(0.99), q(1.0)];
        if all.iter().all(|s| s.points.is_empty()) {
            continue;
        }
        latency = latency.chart(line_chart(
            &format!("{} latency percentiles per second", k.as_str()),
            &time,
            &Axis::new("latency", "ms"),
            &all,
        ));
    }
    section_table(latency, render::request_latency_rows(r))
}

/// The generator's health: CPU, lateness, connections and devices alive over time.
fn health_section(r: &RunData) -> Section {
    let time = time_axis();
    let secs = &r.stats.timeline.seconds;
    let health: Vec<&crate::measure::health::HealthSample> =
        r.shards.iter().flat_map(|s| s.health.iter()).collect();
    let h = |name: &str, f: fn(&crate::measure::health::HealthSample) -> f64| {
        Series::new(name, health.iter().map(|x| (x.t, f(x))).collect())
    };
    let lateness = Series::new(
        "lateness p99",
        secs.iter()
            .enumerate()
            .filter_map(|(t, sec)| Some((t as f64, sec.lateness().quantile_ms(0.99)?)))
            .collect(),
    );
    Section::new("The generator's health")
        .paragraph(r.generator_verdict())
        .chart(line_chart(
            "Generator CPU (100 % = one core)",
            &time,
            &Axis::new("CPU", "%"),
            &[
                h("CPU", |x| x.cpu_pct),
                // ms of a second, as % of it: the threads runnable, not running.
                h("waiting for a CPU", |x| x.cpu_wait_ms / 10.0),
            ],
        ))
        .chart(line_chart(
            "Generator lateness per second (intended to sent)",
            &time,
            &Axis::new("lateness", "ms"),
            &[lateness, h("longest busy stretch", |x| x.longest_busy_ms)],
        ))
        .chart(line_chart(
            "Open connections and file descriptors",
            &time,
            &Axis::new("count", ""),
            &[
                h("connections", |x| x.connections as f64),
                h("open fds", |x| x.open_fds as f64),
            ],
        ))
        .chart(line_chart(
            "Devices alive",
            &time,
            &Axis::new("devices", ""),
            &[h("devices", |x| x.devices_alive as f64)],
        ))
}

/// The server's /metrics beside the generator's counts, when they were scraped.
fn reconciliation_section(r: &RunData) -> Option<Section> {
    let (mut h, mut rows) = render::reconciliation_rows(r)?;
    // The series name says what is counted; the words are in summary.md.
    h.remove(0);
    for row in &mut rows {
        row.remove(0);
    }
    Some(section_table(
        Section::new("Reconciliation with the server's /metrics").paragraph(
            "The server's counters, scraped before and after the run, beside what the generator counted. A row holds (✓) when the server counted the answers the generator did; a send that failed is in neither count. A server counting more on every row had other clients during the run (another fleet, a shard not merged).",
        ),
        (h, rows),
    ))
}

/// RFC 8628 §3.5: the polling interval the server required, by behaviour, over time.
fn interval_section(r: &RunData) -> Section {
    let series: Vec<Series> = r
        .stats
        .intervals
        .iter()
        .map(|(b, s)| {
            Series::new(
                b.as_str(),
                s.steps
                    .iter()
                    .enumerate()
                    .filter(|(_, (_, n))| *n > 0)
                    .map(|(i, (sum, n))| (i as f64 * 5.0, *sum as f64 / *n as f64))
                    .collect(),
            )
        })
        .filter(|s| !s.points.is_empty())
        .collect();
    // Eight columns do not fit a 1280 px window: the times go in a table of their own.
    let pacing = render::pacing_rows(r);
    let section = section_table(
        Section::new("The interval the server enforced")
            .paragraph(
                "The interval each device was required to keep (RFC 8628 §3.5: the first interval, plus 5 s per slow_down), \
                 averaged over the devices of each behaviour still polling, every 5 s. Flat lines mean no slow_down. \
                 The chart plots the intervals as the devices kept them (a server's 0 kept as 5 s, anything above an hour \
                 as an hour); the table gives the server's own values.",
            )
            .chart(line_chart("Required polling interval by behaviour", &time_axis(), &Axis::new("interval", "s"), &series)),
        columns(&pacing, &[0, 1, 2, 3, 4, 5]),
    );
    section_table(section, columns(&pacing, &[0, 6, 7]))
}

/// A histogram of the time from approval to the device's token response.
fn time_to_token_section(r: &RunData) -> Section {
    let mut ttt = Hdr::default();
    for b in r.stats.behaviours.values() {
        ttt.add(&b.time_to_token_ms);
    }
    Section::new("Time to token after approval")
        .paragraph(
            "From the moment the person's approval went through to the device's token response.",
        )
        .chart(histogram(
            "Time to token after approval",
            &Axis::new("time to token", "s"),
            &Axis::new("devices", ""),
            &bins_s(&ttt),
        ))
}

/// Answers no request expects, by error code, when there were any.
fn unexpected_section(r: &RunData) -> Option<Section> {
    let (uh, urows) = render::unexpected_rows(r);
    (!urows.is_empty()).then(|| {
        Section::new("Unexpected answers")
            .paragraph("Answers a request does not expect (for a poll: anything but the RFC 8628 §3.5 answers and a token), by error code.")
            .table(table(&uh, &urows))
    })
}

/// The rules devices saw broken, each once per device, when there were any.
fn violations_section(r: &RunData) -> Option<Section> {
    (!r.stats.violations.is_empty()).then(|| {
        section_table(
            Section::new(format!(
                "Violations ({} in all), by rule",
                r.stats.violations_total()
            ))
            .paragraph("Each rule once per device, with the first exchange that showed it."),
            render::violation_rows(r),
        )
    })
}
