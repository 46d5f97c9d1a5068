//! Markdown for summaries that live next to the raw data (`summary.md`) and read well
//! both rendered (GitHub, an editor's preview) and as plain text in a terminal.
//!
//! Owns Markdown escaping and a few block helpers. Tables follow GitHub Flavored
//! Markdown; everything else is CommonMark.

use crate::escape::{acts_on_a_terminal, terminal};
use crate::html::numeric_columns;

/// Escapes `text` for inline Markdown, word by word (a word: what lies between spaces
/// and line breaks).
///
/// A word GitHub would act on is written as a [code span](code_span): one holding an
/// `@` (a mention `@user` or `@org/team` notifies them when a report is pasted into an
/// issue; an e-mail address is autolinked), a `#` or `gh-` before a digit (`#12`,
/// `owner/repo#3`, `GH-2`: a reference, which adds a "mentioned" event to that issue),
/// `://` or `www.` (GFM autolinks, §6.9: a link to wherever the server chose), or a
/// `$` (GitHub renders `$\color{red}{PASS}$` as math, in colour).
/// GitHub finds mentions and references in the text after rendering, where a
/// backslash escape is already gone, and leaves code alone. A code span also shows a
/// URL exactly, where backslashes would have been taken into the autolinked address.
/// In it a `|` is written `\|`, which a GFM table reads as a pipe inside its cell
/// (GFM §4.10, also inside code spans; outside a table the backslash shows), and a
/// backslash is shown as it is.
///
/// In the other words, the characters that would start emphasis, code, links, images,
/// headings, HTML or a table cell (`\ ` * _ [ ] < > | & ~ # !`) get a backslash. Line
/// breaks become spaces (a table cell or list item is one line), and the other
/// characters a terminal acts on are written as `\u{..}` ([`crate::escape::terminal`]),
/// in words and code spans alike: a summary is read with `cat` as often as rendered.
///
/// ```
/// use deviceflow_reports::markdown::escape;
/// assert_eq!(escape("a|b *c* <d>"), r"a\|b \*c\* \<d\>");
/// assert_eq!(escape("ask @octocat, see #12"), "ask `@octocat,` see `#12`");
/// assert_eq!(escape("at https://x.example/?a_b|c"), r"at `https://x.example/?a_b\|c`");
/// ```
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while !rest.is_empty() {
        let end = rest.find([' ', '\r', '\n']).unwrap_or(rest.len());
        let (word, after) = rest.split_at(end);
        if github_acts_on(word) {
            out.push_str(&code_span(word).replace('|', r"\|"));
        } else {
            escape_word(word, &mut out);
        }
        let Some(space) = after.chars().next() else {
            break;
        };
        // The space or line break after the word (`\r\n` is one): one space.
        out.push(' ');
        rest = &after[1..];
        if space == '\r' {
            rest = rest.strip_prefix('\n').unwrap_or(rest);
        }
    }
    out
}

/// Whether GitHub would make `word` a mention, a reference to an issue or pull
/// request, a link or (part of) a math expression ([`escape`]). Each pattern is looked for anywhere in the word,
/// not only at its start: GitHub starts them after punctuation too (`(www.x`,
/// `x,@y`), and after whitespace other than the space (a no-break space), which
/// [`escape`] does not split at.
fn github_acts_on(word: &str) -> bool {
    let lower = word.to_ascii_lowercase();
    let digit_after = |prefix: &str| {
        lower
            .match_indices(prefix)
            .any(|(at, _)| lower[at + prefix.len()..].starts_with(|c: char| c.is_ascii_digit()))
    };
    lower.contains('@')
        || lower.contains("://")
        || lower.contains("www.")
        || lower.contains('$')
        || digit_after("#")
        || digit_after("gh-")
}

/// `word` (no space or line break in it) with Markdown's special characters escaped,
/// appended to `out`.
fn escape_word(word: &str, out: &mut String) {
    for c in word.chars() {
        match c {
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '|' | '&' | '~' | '#' | '!' => {
                out.push('\\');
                out.push(c);
            }
            c if acts_on_a_terminal(c) => {
                out.push_str(&terminal(c.encode_utf8(&mut [0; 4])).replace('\\', "\\\\"))
            }
            c => out.push(c),
        }
    }
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
/// any inside it, so that it cannot be closed early (CommonMark §6.1). An empty text
/// is a span of one space: two backticks with nothing between are no span but an
/// opening run, which the next two backticks of the document would close, making code
/// of the text between and text of the code after.
///
/// ```
/// use deviceflow_reports::markdown::code_span;
/// assert_eq!(code_span("GET /x"), "`GET /x`");
/// assert_eq!(code_span("a`` b"), "```a`` b```");
/// assert_eq!(code_span(""), "` `");
/// ```
pub fn code_span(text: &str) -> String {
    if text.is_empty() {
        return "` `".to_owned();
    }
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

    /// `text` with its code spans left out (CommonMark §6.1: a run of backticks
    /// opens one, the next run of as many closes it; a backslash outside makes the
    /// character after it plain): what GitHub looks for mentions and links in.
    fn outside_code_spans(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            if c == '\\' {
                let escaped: String = rest.chars().take(2).collect();
                out.push_str(&escaped);
                rest = &rest[escaped.len()..];
            } else if c == '`' {
                let run = rest.len() - rest.trim_start_matches('`').len();
                let after = &rest[run..];
                let close = after.char_indices().map(|(at, _)| at).find(|&at| {
                    after[at..].starts_with(&"`".repeat(run))
                        && !after[at + run..].starts_with('`')
                        && !after[..at].ends_with('`')
                });
                match close {
                    Some(at) => rest = &after[at + run..],
                    None => {
                        out.push_str(&rest[..run]);
                        rest = after;
                    }
                }
            } else {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
        out
    }

    /// `hostile_server.py inject`: the server's `error` pinged `@octocat` and the
    /// `@github/security` team from every report pasted into an issue (backslashes
    /// do not stop GitHub, which looks after rendering), referenced `#1`, `GH-2` and
    /// `octo/repo#3`, and linked to its own hosts.
    #[test]
    fn mentions_references_and_links_are_code_spans_github_leaves_alone() {
        let hostile = "FAIL @octocat @github/security \\#1 GH-2 gh-3 octo/repo#3 (see\u{a0}www.evil.example) \
                       x,@y mail:a@b.example <https://evil.example/h.png> \
                       ftp://evil.example/?a_b|c WWW.EVIL.EXAMPLE # 1 issue#x $\\color{red}{PASS} $a b$";
        let shown = escape(hostile);
        let plain = outside_code_spans(&shown).to_ascii_lowercase();
        assert!(!plain.contains('@'), "{plain}");
        assert!(!plain.contains("://") && !plain.contains("www."), "{plain}");
        let digit_after = |p: &str| {
            plain
                .match_indices(p)
                .any(|(at, _)| plain[at + p.len()..].starts_with(|c: char| c.is_ascii_digit()))
        };
        assert!(!digit_after("#") && !digit_after("gh-"), "{plain}");
        assert!(!plain.contains('$'), "{plain}");
        assert_eq!(
            shown,
            "FAIL `@octocat` `@github/security` `\\#1` `GH-2` `gh-3` `octo/repo#3` \
             `(see\u{a0}www.evil.example)` `x,@y` `mail:a@b.example` \
             `<https://evil.example/h.png>` `ftp://evil.example/?a_b\\|c` `WWW.EVIL.EXAMPLE` \
             \\# 1 issue\\#x `$\\color{red}{PASS}` `$a` `b$`"
        );
    }

    /// `hostile_server.py inject`: a request with an empty body was written as
    /// "body" and two backticks, no span but an opening run that the next two
    /// backticks of the exchange closed: the server's `x-frame-options` URL after them
    /// was left outside any span, and GitHub linked it.
    #[test]
    fn an_empty_code_span_closes_itself() {
        let line = format!(
            "body {} then {} and {}",
            code_span(""),
            escape("http://evil.example/a`b"),
            escape("x@y")
        );
        assert_eq!(line, "body ` ` then ``http://evil.example/a`b`` and `x@y`");
        let plain = outside_code_spans(&line);
        assert_eq!(plain, "body  then  and ");
    }

    /// A URL was autolinked with the backslashes of its escaping in the address
    /// (`user%5C_code`): the link a reader clicked was not the one the server sent.
    #[test]
    fn a_url_in_a_table_cell_is_shown_exactly_and_keeps_its_cell() {
        let url = "http://127.0.0.1:1/verify?user_code=AB_CD|x&y=`z`\u{1b}[2J";
        let md = table(&["answer"], &[[format!("go to {url} now")]]);
        assert_eq!(
            md.lines().nth(2),
            Some(r"| go to ``http://127.0.0.1:1/verify?user_code=AB_CD\|x&y=`z`\u{1b}[2J`` now |")
        );
        let unescaped = |line: &str| line.replace(r"\|", "").matches('|').count();
        assert!(md.lines().all(|l| unescaped(l) == 2), "{md}");
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
