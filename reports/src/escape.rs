//! Escaping text for HTML and SVG.
//!
//! Owns the one escaping rule every renderer in this crate uses for text it did not
//! write itself (titles, series names, table cells, setup values). It does not own
//! Markdown escaping, which has other special characters: see [`crate::markdown`].

use std::fmt;

/// Escapes `text` for HTML and SVG (XML): element content and double- or single-quoted
/// attribute values alike.
///
/// `&`, `<`, `>`, `"` and `'` become character references. Control characters that XML
/// 1.0 forbids (everything below U+0020 except tab, line feed and carriage return, and
/// the non-characters U+FFFE and U+FFFF) become U+FFFD, so that a stray byte in a series
/// name cannot make an SVG file unreadable to a strict parser.
///
/// ```
/// assert_eq!(
///     deviceflow_reports::escape::escape("<script>&\"'"),
///     "&lt;script&gt;&amp;&quot;&#39;"
/// );
/// ```
pub fn escape(text: &str) -> String {
    Escaped(text).to_string()
}

/// Displays the wrapped text escaped as [`escape`] does, without an intermediate
/// `String`: `write!(out, "<text>{}</text>", Escaped(name))`.
#[derive(Debug, Clone, Copy)]
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        // Write the runs that need no escaping in one piece.
        while let Some(at) = rest.find(needs_escape) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or('\u{FFFD}');
            f.write_str(match c {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&quot;",
                '\'' => "&#39;",
                _ => "\u{FFFD}",
            })?;
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

fn needs_escape(c: char) -> bool {
    matches!(c, '&' | '<' | '>' | '"' | '\'' | '\u{FFFE}' | '\u{FFFF}')
        || (c < '\u{20}' && !matches!(c, '\t' | '\n' | '\r'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markup_characters_become_references() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn plain_and_non_ascii_text_passes_through() {
        assert_eq!(
            escape("p99 latency (µs) — naïve"),
            "p99 latency (µs) — naïve"
        );
        assert_eq!(escape(""), "");
    }

    #[test]
    fn xml_forbidden_control_characters_become_replacement_characters() {
        assert_eq!(
            escape("a\u{0}b\u{1b}c\u{FFFF}"),
            "a\u{FFFD}b\u{FFFD}c\u{FFFD}"
        );
        assert_eq!(escape("tab\tline\ncr\r"), "tab\tline\ncr\r");
    }

    #[test]
    fn an_escaped_ampersand_is_not_escaped_twice_by_one_pass() {
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }
}
