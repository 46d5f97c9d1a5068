//! Markdown for summaries that live next to the raw data (`summary.md`) and read well
//! both rendered (GitHub, an editor's preview) and as plain text in a terminal.
//!
//! Owns Markdown escaping and a few block helpers. Tables follow GitHub Flavored
//! Markdown; everything else is CommonMark.

use crate::escape::{acts_on_a_terminal, terminal};
use crate::html::numeric_columns;

/// Escapes `text` for inline Markdown: characters that would start emphasis, code,
/// links, images, headings, HTML or a table cell (`\ ` * _ [ ] < > | & ~ # !`) get a
/// backslash, line
/// breaks become spaces (a table cell or list item is one line), and the other
/// characters a terminal acts on are written as `\u{..}` ([`crate::escape::terminal`]):
/// a summary is read with `cat` as often as rendered.
///
/// ```
/// assert_eq!(
///     deviceflow_reports::markdown::escape("a|b *c* <d>"),
///     r"a\|b \*c\* \<d\>"
/// );
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' | '~' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {
                chars.next_if_eq(&'\n');
                out.push(' ');
            }
            '\n' => out.push(' '),
            c if acts_on_a_terminal(c) => {
                out.push_str(&terminal(c.encode_utf8(&mut [0; 4])).replace('\\', "\\\\"))
            }
            c => out.push(c),
        }
    }
    out
}

/// A GitHub Flavored Markdown table, ending in a newline: `headers` then one line per
/// row, every cell [escaped](escape) (so a `|` in a cell stays in its cell).
///
/// Rows shorter than the widest row are padded with empty cells. Columns whose cells
/// all read as numbers are right-aligned (`---:`), as in [`crate::html::table`]. A
/// table with no headers gets empty ones, since GFM needs a header row.
///
/// ```
/// use deviceflow_reports::markdown::table;
/// assert_eq!(
///     table(&["outcome", "polls"], &[["slow_down", "1,204"], ["a|b", "7"]]),
///     "| outcome | polls |\n|---|---:|\n| slow\\_down | 1,204 |\n| a\\|b | 7 |\n"
/// );
/// ```
pub fn table<H, R, C>(headers: &[H], rows: &[R]) -> String
where
    H: AsRef<str>,
    R: AsRef<[C]>,
    C: AsRef<str>,
{
    let columns = rows
        .iter()
        .map(|r| r.as_ref().len())
        .chain([headers.len(), 1])
        .max()
        .unwrap_or(1);
    let numeric = numeric_columns(columns, rows);
    let line = |cells: &mut dyn Iterator<Item = String>| {
        let cells: Vec<String> = cells.collect();
        format!("| {} |\n", cells.join(" | "))
    };
    let mut out =
        line(&mut (0..columns).map(|c| escape(headers.get(c).map_or("", |h| h.as_ref()))));
    let rule: Vec<&str> = numeric
        .iter()
        .map(|&n| if n { "---:" } else { "---" })
        .collect();
    out.push_str(&format!("|{}|\n", rule.join("|")));
    for row in rows {
        let row = row.as_ref();
        out.push_str(&line(
            &mut (0..columns).map(|c| escape(row.get(c).map_or("", |cell| cell.as_ref()))),
        ));
    }
    out
}

/// A bullet list of `key: value` lines with the keys in bold: the setup block of a
/// summary (CPU, commit, command), ending in a newline.
pub fn key_values<K: AsRef<str>, V: AsRef<str>>(pairs: &[(K, V)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("- **{}:** {}\n", escape(k.as_ref()), escape(v.as_ref())))
        .collect()
}

/// `text` as an inline code span, its characters a terminal acts on written as
/// `\u{..}` ([`crate::escape::terminal`]): delimited by a run of backticks longer than
/// any inside it, so that it cannot be closed early (CommonMark §6.1).
///
/// ```
/// use deviceflow_reports::markdown::code_span;
/// assert_eq!(code_span("GET /x"), "`GET /x`");
/// assert_eq!(code_span("a`` b"), "```a`` b```");
/// ```
pub fn code_span(text: &str) -> String {
    let text = terminal(text);
    let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let ticks = "`".repeat(longest_run + 1);
    let pad = if text.starts_with('`') || text.ends_with('`') {
        " "
    } else {
        ""
    };
    format!("{ticks}{pad}{text}{pad}{ticks}")
}

/// A fenced code block (for an exact command or raw output), with a fence longer than
/// any run of backticks in `text`, so the text cannot close it early. Its lines are
/// kept; in them, the characters a terminal acts on other than the line feed and tab
/// are written as `\u{..}` ([`crate::escape::terminal`]).
pub fn code_block(language: &str, text: &str) -> String {
    code_block_in("", language, text)
}

/// [`code_block`] with every line indented by `indent`: a block inside a list item.
pub fn code_block_in(indent: &str, language: &str, text: &str) -> String {
    let text: String = text
        .lines()
        .map(|line| {
            let line = line
                .split('\t')
                .map(terminal)
                .collect::<Vec<_>>()
                .join("\t");
            format!("{indent}{line}\n")
        })
        .collect();
    let longest_run = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest_run.max(2) + 1);
    let language: String = language
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '`')
        .collect();
    format!("{indent}{fence}{language}\n{text}{indent}{fence}\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipes_stay_inside_their_cell() {
        let md = table(&["name", "value"], &[["a|b", "c"]]);
        assert_eq!(md.lines().nth(2), Some(r"| a\|b | c |"));
        // Every line has as many unescaped pipes as the header line.
        let unescaped = |line: &str| line.replace(r"\|", "").matches('|').count();
        for line in md.lines() {
            assert_eq!(unescaped(line), 3, "{line}");
        }
    }

    #[test]
    fn markup_and_line_breaks_are_neutralised() {
        assert_eq!(
            escape("<script>alert(1)</script>"),
            r"\<script\>alert(1)\</script\>"
        );
        assert_eq!(escape("two\nlines\r\nhere"), "two lines here");
        assert_eq!(
            escape(r"back\slash `code` [link](x) ~~s~~ &amp;"),
            r"back\\slash \`code\` \[link\](x) \~\~s\~\~ \&amp;"
        );
    }

    #[test]
    fn terminal_controls_in_cells_and_code_blocks_are_shown_not_sent() {
        let hostile = "x\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}[1A\u{9b}2K";
        assert_eq!(
            escape(hostile),
            r"x\\u{1b}\]52;c;cHduZWQ=\\u{7}\\u{1b}\[1A\\u{9b}2K"
        );
        let md = table(&["answer"], &[[hostile]]);
        assert!(!md.contains(['\u{1b}', '\u{7}', '\u{9b}']), "{md:?}");
        let block = code_block("", "line one\r\n\tline\u{1b}[2J two\n");
        // CRLF ends a line as LF does; a lone `\r` is shown.
        assert_eq!(block, "```\nline one\n\tline\\u{1b}[2J two\n```\n");
        let block = code_block_in("  ", "", "a\rb\n```");
        assert_eq!(block, "  ````\n  a\\u{d}b\n  ```\n  ````\n");
    }

    #[test]
    fn rows_are_padded_and_number_columns_right_aligned() {
        let md = table(
            &["request", "count", "p99"],
            &[
                vec!["token", "1,024", "4.2 ms"],
                vec!["device_authorization", "12"],
            ],
        );
        assert_eq!(
            md,
            "| request | count | p99 |\n|---|---:|---:|\n| token | 1,024 | 4.2 ms |\n\
             | device\\_authorization | 12 |  |\n"
        );
    }

    #[test]
    fn a_table_without_headers_or_rows_still_has_its_header_rule() {
        let empty: [[&str; 0]; 0] = [];
        assert_eq!(table::<&str, _, &str>(&[], &empty), "|  |\n|---|\n");
        assert_eq!(table(&["a"], &empty), "| a |\n|---|\n");
    }

    #[test]
    fn key_values_are_a_bold_keyed_list() {
        assert_eq!(
            key_values(&[("CPU", "2 cores"), ("commit", "abc_123")]),
            "- **CPU:** 2 cores\n- **commit:** abc\\_123\n"
        );
    }

    #[test]
    fn code_fences_outrun_the_backticks_inside() {
        assert_eq!(code_block("sh", "cargo test"), "```sh\ncargo test\n```\n");
        assert_eq!(code_block("", "a ```` b\n"), "`````\na ```` b\n`````\n");
        assert_eq!(code_block("s h`", "x"), "```sh\nx\n```\n");
    }
}
