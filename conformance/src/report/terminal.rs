//! The table a person reads in the terminal, grouped by checklist section.

use super::{by_group, Report};
use crate::case::Status;
use crate::cases::group_title;
use deviceflow_reports::escape::terminal as printable;

fn paint(status: Status, color: bool) -> String {
    let label = format!("{:<4}", status.as_str().to_uppercase());
    if !color {
        return label;
    }
    let code = match status {
        Status::Pass => "32",
        Status::Fail => "1;31",
        Status::Warn => "33",
        Status::Info => "36",
        Status::Skip | Status::NotApplicable => "2",
    };
    format!("\x1b[{code}m{label}\x1b[0m")
}

/// Renders the report. Each finding is printed whole; lines longer than `width` are
/// wrapped (at word boundaries, continuation lines indented under the text), never
/// cut. Give `usize::MAX` where nobody reads it in a terminal (a file, a pipe).
pub fn terminal(r: &Report, color: bool, width: usize) -> String {
    let mut out = String::new();
    // What the server said (quoted in summaries, the root cause, endpoints from its
    // metadata) is shown, never obeyed by the terminal: every line goes through
    // `printable` before the colours are added.
    out.push_str(&format!(
        "deviceflow-conformance {} against {}\n",
        r.suite_version,
        printable(
            r.target
                .issuer
                .as_deref()
                .unwrap_or(&r.target.device_authorization_endpoint)
        )
    ));
    out.push_str(&printable(&r.client_line()));
    out.push('\n');
    let hosts = r.network.lines();
    if !hosts.is_empty() {
        out.push_str(&format!("{}:\n", super::junit::HOSTS));
        for line in hosts {
            out.push_str(&wrap(&format!("  {}", printable(&line)), width, 4));
        }
    }
    if let Some(cause) = &r.root_cause {
        let who = cause.case.map_or(String::new(), |id| format!(" ({id})"));
        out.push_str(&wrap(
            &format!(
                "\nROOT CAUSE{who}: {}; no other case was run.",
                printable(&cause.summary)
            ),
            width,
            2,
        ));
    }
    if let Some(line) = r.interrupted_line() {
        out.push('\n');
        out.push_str(&wrap(&line, width, 2));
    }
    for (group, cases) in by_group(&r.cases) {
        out.push_str(&format!("\n{group} {}\n", group_title(group)));
        for c in cases {
            let prefix = format!(
                "  {} {:<6} {:<14} ",
                paint(c.verdict.status, color),
                c.id,
                c.info.level.as_str()
            );
            // The label's width on screen, without its color codes.
            let indent = 2 + 5 + 7 + 15;
            let text = printable(&format!("{} — {}", c.info.title, c.verdict.summary));
            let body = wrap(&format!("{}{text}", " ".repeat(indent)), width, indent);
            out.push_str(&prefix);
            out.push_str(&body[indent..]);
        }
    }
    let t = &r.totals;
    out.push_str(&format!(
        "\n{} pass, {} fail, {} warn, {} info, {} skip, {} n/a in {:.1} s; {}{}\n",
        t.pass,
        t.fail,
        t.warn,
        t.info,
        t.skip,
        t.not_applicable,
        r.duration_ms as f64 / 1000.0,
        r.must_line(),
        r.interrupted.as_ref().map_or(String::new(), |i| format!(
            "; INTERRUPTED by {}: partial",
            i.signal.name()
        ))
    ));
    out
}

/// Wraps `text` at word boundaries to lines of at most `width` characters (a word
/// longer than that keeps its own line, whole); continuation lines are indented by
/// `indent` spaces. Ends with a newline.
fn wrap(text: &str, width: usize, indent: usize) -> String {
    let lead = text.len() - text.trim_start().len();
    let mut out = String::new();
    let mut line = text[..lead].to_owned();
    let mut line_len = lead;
    let mut first_word = true;
    for word in text.split_whitespace() {
        let n = word.chars().count();
        if !first_word && line_len + 1 + n > width {
            out.push_str(&line);
            out.push('\n');
            line = " ".repeat(indent);
            line_len = indent;
            first_word = true;
        }
        if !first_word {
            line.push(' ');
            line_len += 1;
        }
        line.push_str(word);
        line_len += n;
        first_word = false;
    }
    out.push_str(&line);
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn unbounded_width_keeps_each_finding_on_one_whole_line() {
        let long = format!("  {}", "word ".repeat(60).trim_end());
        assert_eq!(wrap(&long, usize::MAX, 4), format!("{long}\n"));
    }

    #[test]
    fn a_terminal_width_wraps_without_losing_a_word() {
        let text = format!("      {}", "alpha beta gamma delta ".repeat(10).trim_end());
        let out = wrap(&text, 40, 6);
        for line in out.lines() {
            assert!(line.chars().count() <= 40, "{line:?}");
        }
        assert!(out
            .lines()
            .skip(1)
            .all(|l| l.starts_with("      ") && !l[6..].starts_with(' ')));
        let words = |s: &str| s.split_whitespace().map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(words(&out), words(&text));
    }
}
