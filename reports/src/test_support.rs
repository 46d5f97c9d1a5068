//! A small well-formedness checker for the tests: what a strict XML parser would
//! reject in our SVG, and the same rules (plus HTML's void elements) for our pages.
//!
//! It checks what our renderers could get wrong: tags that do not nest or close,
//! unquoted or repeated attributes, a raw `<` or `&` in text or attribute values, an
//! unknown entity, characters XML forbids, and (for SVG) a single root element. It
//! does not check a DTD, namespaces or HTML content models.

/// HTML elements that have no end tag.
const HTML_VOID: &[&str] = &["meta", "br", "hr", "img", "link", "input", "wbr", "col"];

/// Panics with the reason when `svg` is not a well-formed XML document with one root
/// `<svg>` element.
#[track_caller]
pub fn assert_well_formed_svg(svg: &str) {
    match check(svg, Mode::Xml) {
        Ok(roots) if roots == ["svg"] => {}
        Ok(roots) => panic!("expected one <svg> root, found {roots:?}:\n{svg}"),
        Err(reason) => panic!("malformed SVG: {reason}\n{svg}"),
    }
}

/// Panics with the reason when `html` is not well-formed: one `<html>` root after the
/// doctype, every non-void element closed in order.
#[track_caller]
pub fn assert_well_formed_html(html: &str) {
    match check(html, Mode::Html) {
        Ok(roots) if roots == ["html"] => {}
        Ok(roots) => panic!("expected one <html> root, found {roots:?}"),
        Err(reason) => panic!("malformed HTML: {reason}"),
    }
}

/// `Ok` when `fragment` is a well-formed sequence of elements (HTML void elements
/// allowed); used for fragments such as tables.
pub fn check_fragment(fragment: &str) -> Result<Vec<String>, String> {
    check(fragment, Mode::Html)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Xml,
    Html,
}

/// Checks `doc` and returns the names of its top-level elements.
fn check(doc: &str, mode: Mode) -> Result<Vec<String>, String> {
    let mut open: Vec<String> = Vec::new();
    let mut roots = Vec::new();
    let mut rest = doc;
    let offset = |rest: &str| doc.len() - rest.len();
    while !rest.is_empty() {
        let Some(lt) = rest.find('<') else {
            check_text(rest).map_err(|e| format!("at {}: {e}", offset(rest)))?;
            if open.is_empty() && !rest.trim().is_empty() {
                return Err(format!("text outside the root at {}", offset(rest)));
            }
            break;
        };
        let text = &rest[..lt];
        check_text(text).map_err(|e| format!("at {}: {e}", offset(rest)))?;
        if open.is_empty() && !text.trim().is_empty() {
            return Err(format!("text {text:?} outside the root"));
        }
        rest = &rest[lt..];
        let at = offset(rest);
        if let Some(after) = rest.strip_prefix("<!--") {
            let end = after
                .find("-->")
                .ok_or(format!("unclosed comment at {at}"))?;
            rest = &after[end + 3..];
        } else if rest.starts_with("<!DOCTYPE") || rest.starts_with("<!doctype") {
            if mode == Mode::Xml || at != 0 {
                return Err(format!("unexpected doctype at {at}"));
            }
            let end = rest.find('>').ok_or("unclosed doctype")?;
            rest = &rest[end + 1..];
        } else if let Some(after) = rest.strip_prefix("</") {
            let (name, after) = split_name(after);
            let after = after.trim_start();
            let after = after
                .strip_prefix('>')
                .ok_or(format!("bad end tag </{name} at {at}"))?;
            match open.pop() {
                Some(top) if top == name => {}
                Some(top) => return Err(format!("</{name}> closes <{top}> at {at}")),
                None => return Err(format!("</{name}> closes nothing at {at}")),
            }
            rest = after;
        } else {
            let (name, after, self_closing) = start_tag(rest, at)?;
            if open.is_empty() {
                roots.push(name.to_owned());
            }
            let void = mode == Mode::Html && HTML_VOID.contains(&name);
            if !self_closing && !void {
                open.push(name.to_owned());
            }
            rest = after;
        }
    }
    match open.last() {
        Some(unclosed) => Err(format!("<{unclosed}> is never closed")),
        None => Ok(roots),
    }
}

/// Reads the start tag at the head of `rest` (at offset `at`): its name, what follows
/// it, and whether it closes itself. Attributes must be spaced, named once, quoted,
/// and free of a raw `<` or `&`.
fn start_tag(rest: &str, at: usize) -> Result<(&str, &str, bool), String> {
    let (name, mut after) = split_name(&rest[1..]);
    if name.is_empty() {
        return Err(format!("a raw '<' at {at}"));
    }
    let mut seen: Vec<&str> = Vec::new();
    let self_closing = loop {
        let trimmed = after.trim_start();
        if let Some(tail) = trimmed.strip_prefix("/>") {
            after = tail;
            break true;
        }
        if let Some(tail) = trimmed.strip_prefix('>') {
            after = tail;
            break false;
        }
        if trimmed.len() == after.len() {
            return Err(format!("no space before an attribute of <{name}> at {at}"));
        }
        let (attribute, tail) = split_name(trimmed);
        if attribute.is_empty() {
            return Err(format!(
                "bad attribute in <{name}> at {at}: {:.20}",
                trimmed
            ));
        }
        if seen.contains(&attribute) {
            return Err(format!(
                "repeated attribute {attribute} in <{name}> at {at}"
            ));
        }
        seen.push(attribute);
        let tail = tail.strip_prefix('=').ok_or(format!(
            "attribute {attribute} of <{name}> has no value at {at}"
        ))?;
        let quote = tail
            .chars()
            .next()
            .filter(|c| *c == '"' || *c == '\'')
            .ok_or(format!("unquoted {attribute} in <{name}> at {at}"))?;
        let value_end = tail[1..]
            .find(quote)
            .ok_or(format!("unclosed {attribute} in <{name}> at {at}"))?;
        let value = &tail[1..1 + value_end];
        if value.contains('<') {
            return Err(format!("'<' in {attribute} of <{name}> at {at}"));
        }
        check_text(value).map_err(|e| format!("{attribute} of <{name}>: {e}"))?;
        after = &tail[2 + value_end..];
    };
    Ok((name, after, self_closing))
}

fn split_name(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | ':' | '.')))
        .unwrap_or(s.len());
    let name = &s[..end];
    if name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        (name, &s[end..])
    } else {
        ("", s)
    }
}

/// Text or an attribute value: entities known, characters allowed by XML 1.0.
fn check_text(text: &str) -> Result<(), String> {
    if let Some(c) = text.chars().find(|&c| {
        (c < '\u{20}' && !matches!(c, '\t' | '\n' | '\r')) || matches!(c, '\u{FFFE}' | '\u{FFFF}')
    }) {
        return Err(format!("forbidden character {c:?}"));
    }
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        let after = &rest[amp + 1..];
        let end = after
            .find(';')
            .ok_or(format!("a raw '&' before {:.20}", after))?;
        let entity = &after[..end];
        let known = matches!(entity, "amp" | "lt" | "gt" | "quot" | "apos")
            || entity
                .strip_prefix("#x")
                .is_some_and(|hex| !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit()))
            || entity
                .strip_prefix('#')
                .is_some_and(|dec| !dec.is_empty() && dec.chars().all(|c| c.is_ascii_digit()));
        if !known {
            return Err(format!("unknown entity &{entity};"));
        }
        rest = &after[end + 1..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_checker_accepts_well_formed_documents() {
        assert_eq!(
            check(
                r#"<svg a="1" b='x &amp; &#39; &#x27;'><g/><text>a &lt; b</text></svg>"#,
                Mode::Xml
            ),
            Ok(vec!["svg".to_owned()])
        );
        assert_eq!(
            check(
                "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"></head></html>",
                Mode::Html
            ),
            Ok(vec!["html".to_owned()])
        );
    }

    #[test]
    fn the_checker_rejects_what_a_strict_parser_would() {
        let bad = [
            "<svg><g></svg>",
            "<svg></g>",
            "<svg><g>",
            "<svg a=1></svg>",
            "<svg a=\"1\" a=\"2\"></svg>",
            "<svg a=\"<\"></svg>",
            "<svg>a & b</svg>",
            "<svg>&nbsp;</svg>",
            "<svg>a < b</svg>",
            "<svg a=\"1\"b=\"2\"></svg>",
            "<svg>\u{1}</svg>",
            "<svg><meta></svg>",
            "<!DOCTYPE html><svg/>",
            "text<svg/>",
        ];
        for doc in bad {
            assert!(check(doc, Mode::Xml).is_err(), "accepted {doc:?}");
        }
        assert_eq!(
            check("<svg/><svg/>", Mode::Xml),
            Ok(vec!["svg".to_owned(), "svg".to_owned()])
        );
    }
}
