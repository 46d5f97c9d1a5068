//! Escaping text for HTML and SVG, and for a terminal.
//!
//! Owns the one escaping rule every renderer in this crate uses for text it did not
//! write itself (titles, series names, table cells, setup values), and the one rule
//! for such text shown on a terminal ([`terminal`]): what a server under test said
//! reaches people through both, and JSON made safe for a terminal
//! ([`json_for_terminal`]). It does not own Markdown escaping, which has other
//! special characters: see [`crate::markdown`].

use std::fmt;

/// Escapes `text` for HTML and SVG (XML): element content and double- or single-quoted
/// attribute values alike.
///
/// `&`, `<`, `>`, `"` and `'` become character references. Control characters that XML
/// 1.0 forbids (everything below U+0020 except tab, line feed and carriage return, and
/// the non-characters U+FFFE and U+FFFF) or discourages (DEL and the C1 controls) become
/// U+FFFD, so that a stray byte in a series name cannot make an SVG file unreadable to a
/// strict parser, nor a JUnit report a command to the terminal that prints it.
///
/// A carriage return becomes `&#13;`: a parser reads the same character back (a raw one
/// it would even turn into a line feed, XML 1.0 §2.11), and the file holds none, so
/// `cat junit.xml` cannot be made to return to the start of a line and print a
/// server's "PASS" over the FAIL written before it. Tab and line feed stay as they
/// are, in content and attributes alike: they only move on, never back over what a
/// terminal already shows, and a line a server starts this way is still inside the
/// escaped element, its `<` and `>` written as references.
///
/// The bidirectional formatting characters, the line and paragraph separators and the
/// invisible characters ([`acts_on_a_terminal`] names them) are written as `\u{..}`, as
/// [`terminal`] writes them (a zero-width space would hide part of a `user_code`): a server's U+202E in an `error` would turn the rest of a Findings sentence
/// around in a browser, and the rest of a JUnit failure in the CI log that prints it.
/// Not as a reference (`&#x202E;`): a browser obeys that as it obeys the character.
///
/// ```
/// use deviceflow_reports::escape::escape;
/// assert_eq!(escape("<script>&\"'"), "&lt;script&gt;&amp;&quot;&#39;");
/// assert_eq!(escape("PASS \u{202e}LIAF"), r"PASS \u{202e}LIAF");
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
            match c {
                '&' => f.write_str("&amp;")?,
                '<' => f.write_str("&lt;")?,
                '>' => f.write_str("&gt;")?,
                '"' => f.write_str("&quot;")?,
                '\'' => f.write_str("&#39;")?,
                '\r' => f.write_str("&#13;")?,
                // Shown as the terminal shows it: a browser obeys a character
                // reference (`&#x202E;`) as it obeys the character.
                c if reorders_text(c) || shows_nothing(c) => {
                    write!(f, "\\u{{{:x}}}", u32::from(c))?
                }
                _ => f.write_str("\u{FFFD}")?,
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// `text` made safe to print on a terminal, on one line: every control character
/// (C0, DEL and C1: ESC, BEL, `\r`, `\n`, `\t`, backspace, U+009B CSI...), every
/// bidirectional formatting character (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F,
/// U+061C), the Unicode line and paragraph separators and the invisible characters of
/// [`acts_on_a_terminal`] (U+00AD, U+200B, U+2060-U+2064, U+FEFF) are written as
/// `\u{..}`.
///
/// What a server says (an `error_description`, a body, a `user_code`) must reach the
/// person as text, never as a command to their terminal: an OSC 52 sequence writes
/// their clipboard, an OSC 8 one makes a link, a cursor movement or `\r` overwrites
/// the line above (a FAIL made to read as a PASS), a bidirectional override turns
/// text around, an invisible character hides one a person compares. Callers apply it
/// to foreign text, then add their own colours.
///
/// ```
/// use deviceflow_reports::escape::terminal;
/// assert_eq!(terminal("a\u{1b}]52;c;eA==\u{7}b\r\n"), r"a\u{1b}]52;c;eA==\u{7}b\u{d}\u{a}");
/// assert_eq!(terminal("naïve — µs"), "naïve — µs");
/// ```
pub fn terminal(text: &str) -> String {
    Printable(text).to_string()
}

/// Displays the wrapped text as [`terminal`] does, without an intermediate `String`.
#[derive(Debug, Clone, Copy)]
pub struct Printable<'a>(pub &'a str);

impl fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(at) = rest.find(acts_on_a_terminal) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or('\u{FFFD}');
            write!(f, "\\u{{{:x}}}", u32::from(c))?;
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// `text` cut to `max` characters, saying how many more there were: a server that
/// answers a megabyte of `error_description` gets its start quoted, not the megabyte.
///
/// Cutting what was cut composes: the text's own mark is read back, so a finding cut
/// where it is recorded and again where it is merged or shown still says how long the
/// server's words were, not how long the first cut was.
///
/// The mark is text, so a server can write one too, at the end of its own words, and
/// the text cannot tell its mark from ours: it is read back. The count shown is then
/// the server's claim plus what this cut left out, never less than what was left out
/// (the sum saturates, where it had overflowed: a panic in a debug build, a small
/// wrapped count in a release one). A count larger than any text can be
/// (`isize::MAX`, the most bytes a `String` holds) is no mark of ours at all, and is
/// cut as the text it is.
///
/// ```
/// use deviceflow_reports::escape::clip;
/// assert_eq!(clip("abcdéf", 3), "abc… (3 more characters)");
/// assert_eq!(clip("abc", 3), "abc");
/// assert_eq!(clip(&clip("abcdéf", 4), 4), "abcd… (2 more characters)");
/// assert_eq!(clip(&clip("abcdéf", 4), 2), "ab… (4 more characters)");
/// ```
pub fn clip(text: &str, max: usize) -> String {
    let (head, more) = cut_already(text).unwrap_or((text, 0));
    match head.char_indices().nth(max) {
        None if more == 0 => text.to_owned(),
        None => format!("{head}… ({more} more characters)"),
        Some((at, _)) => format!(
            "{}… ({} more characters)",
            &head[..at],
            head[at..].chars().count().saturating_add(more)
        ),
    }
}

/// A text [`clip`] cut: what it kept, and how many characters it left out.
fn cut_already(text: &str) -> Option<(&str, usize)> {
    let body = text.strip_suffix(" more characters)")?;
    let at = body.rfind("… (")?;
    let count = &body[at + "… (".len()..];
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let count: usize = count.parse().ok()?;
    if count > isize::MAX as usize {
        return None;
    }
    Some((&text[..at], count))
}

/// Whether `c` is a control or formatting character a terminal may act on, or that
/// reorders, breaks or hides the text around it.
///
/// Invisible characters count too (`shows_nothing`): they show nothing, so a
/// `user_code` or `error` a person compares or copies could hold more than they see.
/// [`json_for_terminal`] writes one outside the Basic Multilingual Plane (a tag
/// character) as its two UTF-16 escapes.
pub fn acts_on_a_terminal(c: char) -> bool {
    c.is_control() || reorders_text(c) || shows_nothing(c)
}

/// The invisible characters of [`acts_on_a_terminal`]: soft hyphen, combining grapheme
/// joiner, Mongolian vowel separator, zero-width space, word joiner and invisible
/// operators, the Hangul fillers, byte order mark, tag characters. Not the variation
/// selectors nor the zero-width joiners, which emoji and scripts are written with.
fn shows_nothing(c: char) -> bool {
    matches!(
        c,
        '\u{00AD}'
            | '\u{034F}'
            | '\u{180E}'
            | '\u{200B}'
            | '\u{2060}'..='\u{2064}'
            | '\u{115F}'
            | '\u{1160}'
            | '\u{3164}'
            | '\u{FFA0}'
            | '\u{FEFF}'
            | '\u{E0000}'..='\u{E007F}'
    )
}

/// The bidirectional formatting characters (U+202A-U+202E, U+2066-U+2069, U+200E,
/// U+200F, U+061C) and the line and paragraph separators (U+2028, U+2029).
fn reorders_text(c: char) -> bool {
    matches!(
        c,
        '\u{061C}'
            | '\u{200E}'
            | '\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2066}'..='\u{2069}'
            | '\u{2028}'
            | '\u{2029}'
    )
}

fn needs_escape(c: char) -> bool {
    matches!(c, '&' | '<' | '>' | '"' | '\'' | '\u{FFFE}' | '\u{FFFF}')
        || (c < '\u{20}' && !matches!(c, '\t' | '\n'))
        // XML 1.0 §2.2 discourages DEL and the C1 controls (U+009B is a terminal's
        // CSI: a CI log that prints a report would obey it); HTML calls them errors.
        || ('\u{7f}'..='\u{9f}').contains(&c)
        || reorders_text(c)
        // A JUnit failure or an HTML cell must not hide a character of a user_code.
        || shows_nothing(c)
}

/// `json` (as serde_json writes it) with every character a terminal acts on written
/// as a `\uXXXX` escape (RFC 8259 §7), so that `cat report.json`, or a CI log showing
/// it, never obeys what a server put in a string. serde_json escapes U+0000-U+001F
/// only; this adds DEL, the C1 controls (U+009B is an 8-bit CSI), the bidirectional
/// overrides, the line and paragraph separators and the invisible characters of
/// [`acts_on_a_terminal`]. A reader reads the same string back. Outside strings JSON
/// text is ASCII, so every escape this writes is inside one.
///
/// ```
/// use deviceflow_reports::escape::json_for_terminal;
/// assert_eq!(
///     json_for_terminal("{\"e\":\"\u{9b}2J \u{202e}x µs\"}"),
///     r#"{"e":"\u009b2J \u202ex µs"}"#
/// );
/// ```
pub fn json_for_terminal(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        if acts_on_a_terminal(c) && c >= '\u{7f}' {
            // A character outside the Basic Multilingual Plane is two escapes, its
            // UTF-16 surrogate pair (RFC 8259 §7).
            for unit in c.encode_utf16(&mut [0; 2]) {
                out.push_str(&format!("\\u{unit:04x}"));
            }
        } else {
            out.push(c);
        }
    }
    out
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
        assert_eq!(escape("tab\tline\ncr\r"), "tab\tline\ncr&#13;");
    }

    #[test]
    fn a_carriage_return_is_written_as_a_reference_never_raw() {
        // A server's `error` of "x\rPASS all MUST rows hold" printed by `cat junit.xml`
        // would have overwritten its own FAIL line.
        let shown = escape("FAIL TS-01\rPASS all MUST rows hold\r\n");
        assert!(!shown.contains('\r'), "{shown:?}");
        assert_eq!(shown, "FAIL TS-01&#13;PASS all MUST rows hold&#13;\n");
        assert_eq!(Escaped("a\rb").to_string(), "a&#13;b");
    }

    #[test]
    fn terminal_text_carries_no_escape_sequence_line_break_or_bidi_override() {
        let hostile = "\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}]8;;https://evil/\u{7}x\u{1b}]8;;\u{7}\
                       \r  PASS TS-01\u{1b}[1A\u{1b}[2K\n\u{9b}31m\u{202e}LIAF\u{8}\u{7f}";
        let shown = terminal(hostile);
        assert!(!shown.chars().any(acts_on_a_terminal), "{shown:?}");
        assert_eq!(
            shown,
            r"\u{1b}]52;c;cHduZWQ=\u{7}\u{1b}]8;;https://evil/\u{7}x\u{1b}]8;;\u{7}\u{d}  PASS TS-01\u{1b}[1A\u{1b}[2K\u{a}\u{9b}31m\u{202e}LIAF\u{8}\u{7f}"
        );
        assert_eq!(terminal("WDJB-MJHT — p99 4.2 ms"), "WDJB-MJHT — p99 4.2 ms");
    }

    /// `hostile_server.py clipbomb`: a `verification_uri` ending in a forged mark with
    /// the largest count made `head + more` overflow, a panic in the debug build
    /// (exit 101, no report written) and in a loadgen lane (the run voided).
    #[test]
    fn a_forged_clip_mark_never_overflows_nor_wraps_the_count() {
        let forged = |count: &str| format!("{}… ({count} more characters)", "E".repeat(2100));
        // Past any text's length: not read back, cut as text.
        let mark = "… (18446744073709551615 more characters)";
        let shown = clip(&forged("18446744073709551615"), 2048);
        let cut = 2100 - 2048 + mark.chars().count();
        assert!(
            shown.ends_with(&format!("E… ({cut} more characters)")),
            "{shown}"
        );
        assert_eq!(shown.matches("more characters").count(), 1, "{shown}");
        // The most a text could have is read back, and added to what this cut left
        // out without overflow.
        let most = isize::MAX as usize;
        let shown = clip(&forged(&most.to_string()), 2048);
        assert!(
            shown.ends_with(&format!("E… ({} more characters)", most + 2100 - 2048)),
            "{shown}"
        );
    }

    #[test]
    fn bidirectional_controls_and_separators_are_shown_not_referenced() {
        let shown = escape("PASS \u{202e}LIAF\u{202c}\u{2028}\u{2066}x\u{200f}\u{61c}");
        assert_eq!(
            shown,
            r"PASS \u{202e}LIAF\u{202c}\u{2028}\u{2066}x\u{200f}\u{61c}"
        );
        assert!(!shown.chars().any(acts_on_a_terminal), "{shown:?}");
    }

    #[test]
    fn invisible_characters_are_shown_on_a_terminal_and_in_html() {
        assert_eq!(
            terminal("WDJB\u{ad}\u{200b}-MJ\u{2060}\u{2064}HT\u{feff}"),
            r"WDJB\u{ad}\u{200b}-MJ\u{2060}\u{2064}HT\u{feff}"
        );
        // The joiners of emoji sequences and scripts stay.
        assert_eq!(terminal("a\u{200d}b\u{200c}c"), "a\u{200d}b\u{200c}c");
        assert_eq!(
            terminal("A\u{34f}\u{180e}\u{115f}\u{3164}\u{ffa0}B\u{e0041}"),
            r"A\u{34f}\u{180e}\u{115f}\u{3164}\u{ffa0}B\u{e0041}"
        );
        assert_eq!(json_for_terminal("\"\u{e0041}\""), r#""\udb40\udc41""#);
        // Emoji keep their variation selectors.
        assert_eq!(terminal("TV \u{1f4fa}\u{fe0f}"), "TV \u{1f4fa}\u{fe0f}");
        // In HTML and JUnit too: a failure message must not hide part of a code.
        assert_eq!(
            escape("WDJB\u{ad}\u{200b}-MJHT\u{feff}"),
            r"WDJB\u{ad}\u{200b}-MJHT\u{feff}"
        );
        assert_eq!(escape("a\u{200d}b"), "a\u{200d}b");
    }

    #[test]
    fn json_for_a_terminal_escapes_what_serde_json_leaves_raw() {
        let json = "{\"k\u{85}\":[\"\u{9b}31m\u{202e}LIAF\u{202c}\u{2028}\u{7f}\u{feff}\\u001b\"],\"n\":\"naïve — µs\"}";
        let shown = json_for_terminal(json);
        assert_eq!(
            shown,
            r#"{"k\u0085":["\u009b31m\u202eLIAF\u202c\u2028\u007f\ufeff\u001b"],"n":"naïve — µs"}"#
        );
        assert!(!shown.chars().any(acts_on_a_terminal), "{shown:?}");
    }

    #[test]
    fn an_escaped_ampersand_is_not_escaped_twice_by_one_pass() {
        assert_eq!(escape("&amp;"), "&amp;amp;");
    }
}
