//! What the tests of every tool check in the Markdown they write: that a server's
//! words stay text.

/// `line` of Markdown without its code spans (CommonMark §6.1: a run of backticks up
/// to the next run of as many), whose text is literal.
fn without_code_spans(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(at) = rest.find('`') {
        out.push_str(&rest[..at]);
        let run = rest[at..].len() - rest[at..].trim_start_matches('`').len();
        let after = &rest[at + run..];
        let ticks = "`".repeat(run);
        let close = after.char_indices().map(|(i, _)| i).find(|&i| {
            after[i..].starts_with(&ticks)
                && !after[i + run..].starts_with('`')
                && (i == 0 || !after[..i].ends_with('`'))
        });
        match close {
            Some(i) => rest = &after[i + run..],
            None => {
                out.push_str(&rest[at..at + run]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether `line` of Markdown holds raw HTML outside its code spans: a `<` before a
/// letter, `/` or `!` that no backslash escapes (an even run of backslashes escapes
/// each other).
pub fn raw_html(line: &str) -> bool {
    let line = without_code_spans(line);
    let b = line.as_bytes();
    (0..b.len()).any(|i| {
        let tag = b[i] == b'<'
            && b.get(i + 1)
                .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, b'/' | b'!'));
        let backslashes = b[..i].iter().rev().take_while(|&&c| c == b'\\').count();
        tag && backslashes % 2 == 0
    })
}

#[cfg(test)]
mod tests {
    use super::raw_html;

    #[test]
    fn raw_html_is_a_tag_no_backslash_escapes_outside_code_spans() {
        assert!(raw_html("a <script>x"));
        assert!(raw_html("a \\\\<b>"));
        assert!(!raw_html("a \\<script>"));
        assert!(!raw_html("a `<script>` b"));
        assert!(!raw_html("a ``x `<b>` y`` b"));
        assert!(raw_html("a `x` <b>"));
        assert!(!raw_html("1 < 2"));
    }
}
