//! Self-contained HTML pages: a title, the run's setup, and sections of prose, charts
//! and tables.
//!
//! Owns the page and its stylesheet. A page is one HTML5 document with its CSS inline
//! and its charts as inline SVG: no scripts, no fonts, images or styles fetched from
//! anywhere, so it reads the same from a laptop's disk, a CI artefact or an e-mail.
//! All text given to a page is escaped; only the charts of [`crate::chart`] and the
//! tables of [`table`] go in as markup. It does not own the charts themselves.
//!
//! Each page carries its own Content-Security-Policy ([`CSP`]), as defence in depth
//! behind the escaping: a page opened from disk or a CI artefact has no server to send
//! the header, so the `<meta>` says it, before anything it governs.

use std::collections::BTreeSet;
use std::fmt::{self, Write};

use crate::escape::Escaped;

/// The policy every page states in a `<meta http-equiv>`: nothing may load or run
/// (`default-src 'none'`: no script, inline or fetched, no image, font, frame or
/// connection), but the page's own inline stylesheet (`style-src 'unsafe-inline'`;
/// a hash would need SHA-256, which this std-only crate does not carry, and styles
/// run no code); no `<base>` may redirect its links, no form may send anything.
/// Inline SVG is part of the document, not a load, so the charts need nothing more.
/// (`frame-ancestors` has no effect in a `<meta>`, CSP 3 §6.4.2, and is not written.)
pub const CSP: &str =
    "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'";

/// A report page, built up and then [rendered](Page::render).
///
/// ```
/// use deviceflow_reports::html::{table, Page, Section};
/// let html = Page::new("Fleet run: 10,000 devices")
///     .subtitle("Polling behaviour under load")
///     .setup("CPU", "AMD EPYC 7B13, 2 cores")
///     .setup_code("command", "cargo run --release -p deviceflow-loadgen -- --devices 10000")
///     .section(
///         Section::new("Latency")
///             .paragraph("Per request name, over the whole run.")
///             .table(table(&["request", "p99 (ms)"], &[["token", "4.1"]])),
///     )
///     .render();
/// assert!(html.starts_with("<!DOCTYPE html>"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Page {
    title: String,
    subtitle: Option<String>,
    setup: Vec<(String, String, bool)>,
    sections: Vec<Section>,
}

/// A part of a page under its own `<h2>` heading, holding paragraphs, charts, tables
/// and code blocks in the order they were added.
#[derive(Debug, Clone, Default)]
pub struct Section {
    heading: String,
    blocks: Vec<Block>,
}

#[derive(Debug, Clone)]
enum Block {
    Paragraph(String),
    /// An `<svg>` from [`crate::chart`], inserted as is.
    Chart(String),
    Table(Table),
    Code(String),
}

/// An HTML `<table>` made by [`table`], with its text escaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table(String);

impl Table {
    /// The table's markup.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Table {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Page {
    /// A page titled `title` (its `<title>` and `<h1>`).
    pub fn new(title: impl Into<String>) -> Page {
        Page {
            title: title.into(),
            ..Page::default()
        }
    }

    /// A line under the title saying what the page is about.
    pub fn subtitle(mut self, text: impl Into<String>) -> Page {
        self.subtitle = Some(text.into());
        self
    }

    /// One line of the setup block under the title: what the run ran on and how
    /// (`CPU`, `started`, `server`).
    pub fn setup(mut self, key: impl Into<String>, value: impl Into<String>) -> Page {
        self.setup.push((key.into(), value.into(), false));
        self
    }

    /// A setup line whose value is shown as code: a commit, the exact command.
    pub fn setup_code(mut self, key: impl Into<String>, value: impl Into<String>) -> Page {
        self.setup.push((key.into(), value.into(), true));
        self
    }

    /// Appends a section.
    pub fn section(mut self, section: Section) -> Page {
        self.sections.push(section);
        self
    }

    /// The whole page: one HTML5 document.
    ///
    /// Sections get `id`s made from their headings (`Polls by outcome` →
    /// `polls-by-outcome`), and pages with three sections or more a table of contents
    /// linking to them.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(16 * 1024);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
             <meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">\n\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
             <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<header>\n<h1>{}</h1>\n",
            Escaped(&self.title),
            Escaped(&self.title),
        );
        if let Some(subtitle) = &self.subtitle {
            let _ = writeln!(out, "<p class=\"subtitle\">{}</p>", Escaped(subtitle));
        }
        if !self.setup.is_empty() {
            out.push_str("<dl class=\"setup\">\n");
            for (key, value, code) in &self.setup {
                let (open, close) = if *code {
                    ("<code>", "</code>")
                } else {
                    ("", "")
                };
                let _ = writeln!(
                    out,
                    "<div><dt>{}</dt><dd>{open}{}{close}</dd></div>",
                    Escaped(key),
                    Escaped(value),
                );
            }
            out.push_str("</dl>\n");
        }
        out.push_str("</header>\n");

        let ids = section_ids(&self.sections);
        if self.sections.len() >= 3 {
            out.push_str("<nav aria-label=\"Contents\">\n<ul>\n");
            for (section, id) in self.sections.iter().zip(&ids) {
                let _ = writeln!(
                    out,
                    "<li><a href=\"#{id}\">{}</a></li>",
                    Escaped(&section.heading)
                );
            }
            out.push_str("</ul>\n</nav>\n");
        }
        out.push_str("<main>\n");
        for (section, id) in self.sections.iter().zip(&ids) {
            section.render_into(&mut out, id);
        }
        out.push_str("</main>\n</body>\n</html>\n");
        out
    }
}

impl Section {
    /// A section headed `heading`.
    pub fn new(heading: impl Into<String>) -> Section {
        Section {
            heading: heading.into(),
            blocks: Vec::new(),
        }
    }

    /// A paragraph of plain text.
    pub fn paragraph(mut self, text: impl Into<String>) -> Section {
        self.blocks.push(Block::Paragraph(text.into()));
        self
    }

    /// A chart: an `<svg>` made by one of the [`crate::chart`] functions. It is
    /// inserted as is, so pass only those.
    pub fn chart(mut self, svg: impl Into<String>) -> Section {
        self.blocks.push(Block::Chart(svg.into()));
        self
    }

    /// A table made by [`table`].
    pub fn table(mut self, table: Table) -> Section {
        self.blocks.push(Block::Table(table));
        self
    }

    /// Preformatted text, such as a command or raw output, shown in a monospace font.
    pub fn code(mut self, text: impl Into<String>) -> Section {
        self.blocks.push(Block::Code(text.into()));
        self
    }

    fn render_into(&self, out: &mut String, id: &str) {
        let _ = writeln!(
            out,
            "<section id=\"{id}\">\n<h2>{}</h2>",
            Escaped(&self.heading)
        );
        for block in &self.blocks {
            let _ = match block {
                Block::Paragraph(text) => writeln!(out, "<p>{}</p>", Escaped(text)),
                Block::Chart(svg) => writeln!(out, "<figure>\n{}</figure>", svg.trim_end()),
                Block::Table(table) => writeln!(out, "{table}"),
                Block::Code(text) => writeln!(out, "<pre><code>{}</code></pre>", Escaped(text)),
            };
        }
        out.push_str("</section>\n");
    }
}

/// An HTML table: `headers` as column headers, then one row per `rows` entry whose
/// first cell is the row's header (`<th scope="row">`).
///
/// Rows shorter than the widest row are padded with empty cells. Columns whose cells
/// all read as numbers (`12.3`, `-4`, `1,024`, `87 %`, `4.2 ms`; empty cells and `n/a`
/// allowed) are right-aligned with tabular figures, so that digits line up. All text is
/// escaped. The table sits in a wrapper that scrolls sideways on narrow screens.
pub fn table<H, R, C>(headers: &[H], rows: &[R]) -> Table
where
    H: AsRef<str>,
    R: AsRef<[C]>,
    C: AsRef<str>,
{
    let columns = rows
        .iter()
        .map(|r| r.as_ref().len())
        .chain([headers.len()])
        .max()
        .unwrap_or(0);
    let numeric = numeric_columns(columns, rows);
    let class = |c: usize| if numeric[c] { " class=\"num\"" } else { "" };

    let mut out = String::from("<div class=\"table-wrap\">\n<table>\n");
    if !headers.is_empty() {
        out.push_str("<thead>\n<tr>");
        for c in 0..columns {
            let header = headers.get(c).map_or("", |h| h.as_ref());
            let _ = write!(
                out,
                "<th scope=\"col\"{}>{}</th>",
                class(c),
                Escaped(header)
            );
        }
        out.push_str("</tr>\n</thead>\n");
    }
    out.push_str("<tbody>\n");
    for row in rows {
        let row = row.as_ref();
        out.push_str("<tr>");
        for c in 0..columns {
            let cell = row.get(c).map_or("", |cell| cell.as_ref());
            let tag = if c == 0 { "th scope=\"row\"" } else { "td" };
            let close = if c == 0 { "th" } else { "td" };
            let _ = write!(out, "<{tag}{}>{}</{close}>", class(c), Escaped(cell));
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</div>");
    Table(out)
}

/// Which of `columns` hold only numbers (and at least one).
pub(crate) fn numeric_columns<R, C>(columns: usize, rows: &[R]) -> Vec<bool>
where
    R: AsRef<[C]>,
    C: AsRef<str>,
{
    (0..columns)
        .map(|c| {
            let cells: Vec<&str> = rows
                .iter()
                .filter_map(|r| r.as_ref().get(c))
                .map(|cell| cell.as_ref().trim())
                .filter(|cell| !cell.is_empty() && *cell != "n/a" && *cell != "–")
                .collect();
            !cells.is_empty() && cells.iter().all(|cell| reads_as_number(cell))
        })
        .collect()
}

/// `12.3`, `-4`, `+1,024`, `87 %`, `4.2 ms`, `12.3k`: a number, then at most a short
/// unit.
fn reads_as_number(cell: &str) -> bool {
    let unsigned = cell.strip_prefix(['-', '+', '−']).unwrap_or(cell);
    let digits_end = unsigned
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ','))
        .unwrap_or(unsigned.len());
    let (number, unit) = unsigned.split_at(digits_end);
    number.starts_with(|c: char| c.is_ascii_digit())
        && unit.trim().chars().count() <= 4
        && !unit.trim().contains(char::is_whitespace)
}

/// A unique, stable `id` for each section, made from its heading: lower-case letters
/// and digits joined by `-`, with `-2`, `-3`… added to repeats.
fn section_ids(sections: &[Section]) -> Vec<String> {
    let mut used: BTreeSet<String> = BTreeSet::new();
    sections
        .iter()
        .map(|section| {
            let mut slug = String::new();
            for c in section.heading.chars().flat_map(char::to_lowercase) {
                if c.is_alphanumeric() {
                    slug.push(c);
                } else if !slug.is_empty() && !slug.ends_with('-') {
                    slug.push('-');
                }
            }
            let slug = match slug.trim_end_matches('-') {
                "" => "section".to_owned(),
                s => s.to_owned(),
            };
            let id = (1..)
                .map(|n| {
                    if n == 1 {
                        slug.clone()
                    } else {
                        format!("{slug}-{n}")
                    }
                })
                .find(|id| !used.contains(id))
                .unwrap_or(slug);
            used.insert(id.clone());
            id
        })
        .collect()
}

/// The page's whole stylesheet: system fonts, a readable measure, charts that shrink
/// to the screen and tables that scroll sideways rather than overflow.
const CSS: &str = "
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; color: #1a1a1a; background: #ffffff;
  font: 16px/1.5 system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif;
  -webkit-text-size-adjust: 100%; text-size-adjust: 100%; }
header, nav, main { max-width: 60rem; margin: 0 auto; padding: 0 1rem; }
header { padding-top: 1.5rem; }
h1 { font-size: 1.75rem; line-height: 1.2; margin: 0 0 0.25rem; }
h2 { font-size: 1.3rem; line-height: 1.25; margin: 2.25rem 0 0.5rem; padding-top: 1rem;
  border-top: 1px solid #dddddd; }
p { margin: 0.5rem 0; max-width: 42rem; }
.subtitle { color: #555555; margin: 0 0 1rem; font-size: 1.1rem; }
.setup { margin: 1rem 0; padding: 0.75rem 1rem; background: #f5f6f7; border-radius: 6px;
  font-size: 0.9rem; }
.setup div { display: flex; gap: 1rem; padding: 0.15rem 0; }
.setup dt { flex: 0 0 9rem; font-weight: 600; color: #444444; }
.setup dd { margin: 0; min-width: 0; overflow-wrap: anywhere; }
nav ul { margin: 1rem 0 0; padding: 0; list-style: none; display: flex; flex-wrap: wrap;
  gap: 0.25rem 1.25rem; font-size: 0.95rem; }
a { color: #005a8c; }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, 'Liberation Mono', monospace;
  font-size: 0.875em; }
pre { background: #f5f6f7; padding: 0.75rem 1rem; border-radius: 6px; overflow-x: auto; }
figure { margin: 1.25rem 0; }
figure svg { display: block; width: 100%; max-width: 660px; height: auto; }
.table-wrap { overflow-x: auto; margin: 1rem 0; }
table { border-collapse: collapse; font-size: 0.9rem; }
th, td { padding: 0.4rem 0.75rem; text-align: left; vertical-align: top;
  border-bottom: 1px solid #e3e3e3; }
thead th { border-bottom: 2px solid #bbbbbb; white-space: nowrap; }
tbody th { font-weight: 500; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
@media (max-width: 36rem) {
  body { font-size: 15px; }
  header, nav, main { padding-left: 0.75rem; padding-right: 0.75rem; }
  h1 { font-size: 1.4rem; }
  figure { margin-left: -0.5rem; margin-right: -0.5rem; }
  th, td { padding: 0.35rem 0.5rem; }
  .setup div { flex-direction: column; gap: 0; padding: 0.3rem 0; }
  .setup dt { flex: none; }
}
";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::{line_chart, Axis, Series};
    use crate::test_support::{assert_well_formed_html, check_fragment};

    fn sample() -> Page {
        Page::new("Fleet run")
            .subtitle("10,000 devices for 60 s")
            .setup("CPU", "2 cores")
            .setup_code("command", "loadgen --devices 10000 --rate 'a<b'")
            .section(
                Section::new("Polls")
                    .paragraph("Polls per second.")
                    .chart(line_chart(
                        "Polls",
                        &Axis::new("time", "s"),
                        &Axis::new("polls per second", ""),
                        &[Series::new("all", vec![(0.0, 1.0), (1.0, 2.0)])],
                    ))
                    .table(table(&["outcome", "polls"], &[["slow_down", "12"]])),
            )
    }

    #[test]
    fn a_page_is_a_well_formed_self_contained_document() {
        let html = sample().render();
        assert_well_formed_html(&html);
        assert!(html.starts_with("<!DOCTYPE html>\n<html lang=\"en\">"));
        assert!(html.contains("<meta name=\"viewport\""));
        assert!(html.contains("<title>Fleet run</title>") && html.contains("<h1>Fleet run</h1>"));
        assert!(html.contains("<h2>Polls</h2>") && html.contains("<svg"));
        for external in [
            "<script", "http://", "https://", "@import", "url(", "<link", "<img",
        ] {
            let without_svg_namespace = html.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
            assert!(
                !without_svg_namespace.contains(external),
                "page has {external}"
            );
        }
    }

    #[test]
    fn a_page_forbids_scripts_and_loads_in_its_own_csp_before_anything_it_governs() {
        let html = sample().render();
        let meta = format!("<meta http-equiv=\"Content-Security-Policy\" content=\"{CSP}\">");
        let at = html.find(&meta).expect("the page states its CSP");
        assert!(at < html.find("<style>").unwrap() && at < html.find("<title>").unwrap());
        let directives: Vec<&str> = CSP.split(';').map(str::trim).collect();
        assert!(directives.contains(&"default-src 'none'"), "{CSP}");
        assert!(
            !CSP.contains("script-src") && !CSP.contains("'unsafe-eval'"),
            "{CSP}"
        );
    }

    #[test]
    fn all_text_is_escaped() {
        let hostile = "<script>alert(1)</script>";
        let html = Page::new(hostile)
            .subtitle(hostile)
            .setup(hostile, hostile)
            .setup_code("cmd", hostile)
            .section(
                Section::new(hostile)
                    .paragraph(hostile)
                    .code(hostile)
                    .table(table(&[hostile], &[[hostile]])),
            )
            .render();
        assert_well_formed_html(&html);
        assert!(!html.contains("<script"), "{html}");
        assert_eq!(
            html.matches("&lt;script&gt;alert(1)&lt;/script&gt;")
                .count(),
            11,
            "{html}"
        );
    }

    #[test]
    fn a_series_name_with_a_script_tag_is_escaped_in_the_chart_on_the_page() {
        let svg = line_chart(
            "Latency",
            &Axis::new("time", "s"),
            &Axis::new("latency", "ms"),
            &[Series::new(
                "<script>alert(1)</script>",
                vec![(0.0, 1.0), (1.0, 2.0)],
            )],
        );
        let html = Page::new("T")
            .section(Section::new("S").chart(svg))
            .render();
        assert_well_formed_html(&html);
        assert!(!html.contains("<script"));
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    }

    #[test]
    fn tables_have_scoped_headers_padded_rows_and_right_aligned_numbers() {
        let t = table(
            &["request", "count", "p99", "note"],
            &[
                vec!["token", "1,024", "4.2 ms", "fine"],
                vec!["device_authorization", "12", "n/a"],
            ],
        );
        let html = t.as_str();
        assert_eq!(check_fragment(html), Ok(vec!["div".to_owned()]));
        assert!(html.contains("<th scope=\"col\">request</th>"));
        assert!(html.contains("<th scope=\"col\" class=\"num\">count</th>"));
        assert!(html.contains("<th scope=\"row\">token</th><td class=\"num\">1,024</td>"));
        assert!(html.contains("<td class=\"num\">4.2 ms</td><td>fine</td>"));
        assert!(
            html.contains("<td class=\"num\">n/a</td><td></td></tr>"),
            "{html}"
        );
    }

    #[test]
    fn numbers_are_told_from_words() {
        for number in [
            "12", "-4", "+1,024", "12.5", "87 %", "4.2 ms", "12.3k", "−3",
        ] {
            assert!(reads_as_number(number), "{number}");
        }
        for word in ["token", "p99", "", "-", "12 devices in all", "v1.2"] {
            assert!(!reads_as_number(word), "{word}");
        }
    }

    #[test]
    fn section_ids_are_slugs_made_unique() {
        let page = Page::new("T")
            .section(Section::new("Polls by outcome"))
            .section(Section::new("Polls by outcome"))
            .section(Section::new("Polls by outcome 2"))
            .section(Section::new("<>"))
            .section(Section::new("Latency (ms)"));
        let ids = section_ids(&page.sections);
        assert_eq!(
            ids,
            [
                "polls-by-outcome",
                "polls-by-outcome-2",
                "polls-by-outcome-2-2",
                "section",
                "latency-ms"
            ]
        );
        let html = page.render();
        assert_well_formed_html(&html);
        assert!(
            html.contains("<a href=\"#polls-by-outcome-2\">Polls by outcome</a>"),
            "{html}"
        );
    }

    #[test]
    fn short_pages_have_no_table_of_contents() {
        assert!(!sample().render().contains("<nav"));
    }

    #[test]
    fn rendering_is_deterministic() {
        assert_eq!(sample().render(), sample().render());
    }

    #[test]
    fn the_stylesheet_keeps_to_what_the_checker_and_a_strict_parser_accept() {
        assert!(!CSS.contains('<') && !CSS.contains('&'));
    }
}
