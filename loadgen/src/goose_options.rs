//! goose's options on this command line: the few that act on the fleet, and a one-line
//! refusal, with what to use instead, for each of the others. It does not parse them
//! (clap does, with goose's own definitions) nor run goose (`attack.rs`).
//!
//! goose only starts the lanes (README "Scale"): the devices' requests go out on the
//! fleet's own transport and are counted by the fleet, so goose's HTTP client, load
//! shapes, metrics, reports, logs and controllers never see them. Those options had been
//! accepted and ignored, exit 0 (`--timeout 0.001`, and every request answered in about
//! a millisecond), or answered with goose's "invalid option or value specified", which
//! named neither the option nor why.

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, Command};
use goose::config::GooseConfiguration;

/// goose's options that act here, by clap id: the fleet reads `--host`, `-u`, `-r`,
/// `-s`, `-t` and `--threshold` (judged on the devices' requests after the run),
/// goose's own log, of the lanes' start and end, is goose's (`-v`, `-G`, `-g`), and
/// `-V` prints this command's version.
pub const IN_EFFECT: &[&str] = &[
    "host",
    "users",
    "increase_rate",
    "increase_time",
    "run_time",
    "threshold",
    "verbose",
    "goose_log",
    "log_level",
    // This command's version (`main.rs`), not goose's.
    "version",
];

/// goose's options, as clap defines them.
pub fn all() -> Command {
    GooseConfiguration::augment_args(Command::new("goose"))
}

/// The ids of goose's options that do nothing for the fleet: hidden from `--help`, and
/// refused when given.
pub fn without_effect() -> Vec<String> {
    all()
        .get_arguments()
        .map(|a| a.get_id().to_string())
        .filter(|id| !IN_EFFECT.contains(&id.as_str()))
        .collect()
}

const REPORT: &str = "the run's report, with the devices' requests, goes to --report-dir (index.html, summary.md, run.json)";

/// Why goose's option `id` does nothing for the fleet, and what to use instead where
/// something does; `None` for an option this table does not know (a newer goose's).
fn why(id: &str) -> Option<String> {
    let why = match id {
        "timeout" => "goose's HTTP client sends none of the devices' requests (the fleet's own transport does); use --request-timeout SECS".to_owned(),
        "no_gzip" | "sticky_follow" => "goose's HTTP client sends none of the devices' requests (the fleet's own transport does, which asks for no compression and follows no redirect)".to_owned(),
        "accept_invalid_certs" => "the fleet always checks the server's certificate: a load test that accepts any certificate measures a server nobody can be sure of; to trust a private CA, name its certificate in SSL_CERT_FILE (README \"HTTPS\")".to_owned(),
        "throttle_requests" => "goose's throttle paces goose's own requests, and the devices' go out on the fleet's transport as their schedule says; start fewer devices a second with -r (or -s)".to_owned(),
        "iterations" => "each device runs its flow once, or with -t is replaced by a new one when it ends until -t is up; leave --iterations out".to_owned(),
        "decrease_rate" | "decrease_time" => "goose's users here are the lanes, which all run to the end; when -t is up the fleet sends nothing more and waits for the requests already out".to_owned(),
        "test_plan" => "a test plan shapes goose's users, which here are the lanes (README \"Scale\"); shape the fleet with -u devices, started -r a second (or over -s), for -t".to_owned(),
        "scenarios" | "list" | "scenarios_list" => "the fleet is one goose scenario, its lanes (README \"Scale\"): there is none to choose or list".to_owned(),
        "quiet" => "goose's console log is warnings only already (-v for more)".to_owned(),
        "running_metrics" => "goose's metrics count the lanes, not the devices' requests; the fleet prints a progress line every --progress-every SECS".to_owned(),
        "no_threshold_abort" | "threshold_abort_delay" => "--threshold rules are judged once, on the devices' requests, after the run's report is written: none stops a run early".to_owned(),
        "co_mitigation" => "the fleet already measures each request's latency from its intended send time (coordinated omission, README \"Scale\")".to_owned(),
        "no_autostart" | "no_telnet" | "telnet_host" | "telnet_port" | "websocket"
        | "no_websocket" | "websocket_host" | "websocket_port" => "goose's controllers are off (their fixed ports would collide between shards, and the users they count are lanes); stop a run with Ctrl-C".to_owned(),
        "request_log" | "request_format" | "request_body" | "transaction_log"
        | "transaction_format" | "scenario_log" | "scenario_format" | "error_log"
        | "error_format" | "debug_log" | "debug_format" | "no_debug_body" => {
            format!("goose's logs see the lanes, not the devices' requests; {REPORT}")
        }
        "no_print_metrics" | "no_error_summary" | "report_file" | "output_dir" | "compress"
        | "notes" | "report_graph_data" | "render_report" | "baseline_file"
        | "no_granular_report" | "pdf_print_html" | "pdf_scale" | "pdf_timeout"
        | "no_reset_metrics" | "no_metrics" | "no_transaction_metrics"
        | "no_scenario_metrics" | "no_status_codes" | "dashboard" | "dashboard_host"
        | "dashboard_port" | "dashboard_auth_token" | "dashboard_control"
        | "dashboard_no_auth" | "dashboard_max_clients" | "no_percentiles_over_time" => {
            format!("goose's metrics, reports and dashboard count the lanes, not the devices' requests; {REPORT}")
        }
        _ => return None,
    };
    Some(why)
}

/// The first of goose's options given (on the command line) that does nothing for the
/// fleet, named as `--help` would name it, with why and what to use instead.
pub fn refused(matches: &ArgMatches) -> Option<String> {
    all()
        .get_arguments()
        .filter(|a| !IN_EFFECT.contains(&a.get_id().as_str()))
        .find(|a| {
            matches
                .value_source(a.get_id().as_str())
                .is_some_and(|s| s != ValueSource::DefaultValue)
        })
        .map(|a| {
            let name = match (a.get_long(), a.get_short()) {
                (Some(long), _) => format!("--{long}"),
                (None, Some(short)) => format!("-{short}"),
                (None, None) => a.get_id().to_string(),
            };
            let why = why(a.get_id().as_str()).unwrap_or_else(|| {
                "goose's option acts on goose's users and their requests, and the devices' go out on the fleet's own transport".to_owned()
            });
            format!("{name} is refused: {why}")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A goose upgrade that adds an option makes someone decide what it does here.
    #[test]
    fn every_goose_option_is_in_effect_or_refused_with_a_reason() {
        let ids: Vec<String> = all()
            .get_arguments()
            .map(|a| a.get_id().to_string())
            .collect();
        for id in IN_EFFECT {
            assert!(ids.iter().any(|i| i == id), "goose has no option {id}");
        }
        let unexplained: Vec<String> = without_effect()
            .into_iter()
            .filter(|id| why(id).is_none())
            .collect();
        assert!(unexplained.is_empty(), "no reason for {unexplained:?}");
    }
}
