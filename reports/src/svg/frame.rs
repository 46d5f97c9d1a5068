//! The frame every chart draws into: layout, title, legend, y-axis label, gridlines,
//! tick and category labels, and the "no data" plate.
//!
//! Owns where things go on the canvas and how the shared parts look. The chart kinds
//! draw their data into the plot area through [`Canvas::x`] and [`Canvas::y`].
//!
//! Writing to a `String` cannot fail, hence the `let _ = write!(…)`s.

use std::borrow::Cow;
use std::fmt::Write;

use super::Axis;
use super::{colour, dash, fit, nice_ticks, text_width, truncate, DashAttr, Num, Scale, Ticks};
use crate::escape::Escaped;

/// The width of every chart, in SVG user units. Pages show charts at up to 1.1 times
/// this; a phone shrinks them to about two thirds, so text is sized to stay legible
/// there (13 units is about 9 CSS pixels on a phone and 14 on a desktop).
pub(crate) const WIDTH: f64 = 600.0;
const PLOT_HEIGHT: f64 = 230.0;
const PAD: f64 = 10.0;
const TITLE_SIZE: f64 = 15.0;
pub(crate) const FONT_SIZE: f64 = 13.0;
const LABEL_SIZE: f64 = 13.0;
const LEGEND_ROW: f64 = 20.0;
const FONT_FAMILY: &str =
    "system-ui, -apple-system, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif";
const TEXT: &str = "#1a1a1a";
const MUTED: &str = "#555555";
const GRID: &str = "#e3e3e3";
const AXIS: &str = "#8c8c8c";
/// Category labels are cut to this many characters; full names are in `<desc>` and
/// in each bar's `<title>`.
const MAX_CATEGORY_CHARS: usize = 30;
/// Legend entries are cut to this many characters; the full name is the entry's
/// `<title>` (a tooltip in browsers).
const MAX_LEGEND_CHARS: usize = 40;

/// How a legend entry is marked: a short line (line charts) or a filled square.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    Line,
    Swatch,
}

/// One legend entry: a series' name, drawn in the colour (and dash) of its index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LegendItem<'a> {
    pub name: &'a str,
    pub index: usize,
    pub mark: Mark,
}

/// The horizontal axis of a chart.
#[derive(Debug, Clone, Copy)]
pub(crate) enum XAxis<'a> {
    /// A numeric axis over `domain`, with gridlines and labels at `ticks`.
    Numeric {
        axis: &'a Axis,
        ticks: &'a Ticks,
        domain: (f64, f64),
    },
    /// One band per label, in order (bar charts).
    Categories { labels: &'a [String] },
}

/// What the frame of one chart needs to know before the data is drawn.
pub(crate) struct Frame<'a> {
    pub title: &'a str,
    /// The accessible description: what the chart shows, in a sentence or two.
    pub desc: &'a str,
    pub legend: &'a [LegendItem<'a>],
    pub y_axis: &'a Axis,
    /// `None` when there is no data: the chart then says "no data" and draws no ticks.
    pub y_ticks: Option<&'a Ticks>,
    pub x: XAxis<'a>,
    /// Gridlines at the x ticks too (line and area charts), not only at the y ticks.
    pub vertical_grid: bool,
    /// Extra room between the y-axis label and the plot, for what is drawn just above
    /// the top tick (the value labels of the tallest bars).
    pub headroom: f64,
}

/// The plot area, in SVG user units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Rect {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
}

impl Rect {
    pub fn right(&self) -> f64 {
        self.x + self.width
    }

    pub fn bottom(&self) -> f64 {
        self.y + self.height
    }
}

/// An SVG document being written: [`Canvas::new`] lays out and draws the frame,
/// the chart kind draws its data into [`Canvas::out`] using [`Canvas::x`] and
/// [`Canvas::y`], and [`Canvas::finish`] draws the baseline and closes the document.
pub(crate) struct Canvas {
    pub out: String,
    pub plot: Rect,
    x: Scale,
    y: Scale,
    empty: bool,
}

impl Canvas {
    pub fn new(frame: &Frame<'_>) -> Canvas {
        let empty = frame.y_ticks.is_none();
        let layout = Layout::new(frame);
        let plot = layout.plot;
        let x = match frame.x {
            XAxis::Numeric { domain, .. } => Scale::new(domain, (plot.x, plot.right())),
            XAxis::Categories { labels } => {
                Scale::new((0.0, labels.len().max(1) as f64), (plot.x, plot.right()))
            }
        };
        let y_ticks = &layout.y_ticks;
        let y = Scale::new((y_ticks.first(), y_ticks.last()), (plot.bottom(), plot.y));
        let mut canvas = Canvas {
            out: String::with_capacity(8 * 1024),
            plot,
            x,
            y,
            empty,
        };
        canvas.write_head(frame, &layout);
        if empty {
            canvas.write_no_data();
        } else {
            canvas.write_y_grid(&layout.y_ticks, &layout.y_labels);
        }
        canvas.write_x_axis(frame, layout.categories);
        canvas
    }

    /// Opens the document (size, accessible title and description, background) and
    /// draws the title, the legend and the y-axis label.
    fn write_head(&mut self, frame: &Frame<'_>, layout: &Layout<'_>) {
        let out = &mut self.out;
        let _ = write!(
            out,
            "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {w} {h}\" width=\"{w}\" \
             height=\"{h}\" role=\"img\" font-family=\"{FONT_FAMILY}\" font-size=\"{FONT_SIZE}\">\
             \n<title>{title}</title>\n<desc>{desc}</desc>\n\
             <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>\n",
            w = Num(WIDTH),
            h = Num(layout.height),
            title = Escaped(frame.title),
            desc = Escaped(frame.desc),
        );
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" font-size=\"{TITLE_SIZE}\" font-weight=\"600\" \
             fill=\"{TEXT}\">{}</text>",
            Num(PAD),
            Num(layout.title_baseline),
            // Bold runs about 8% wider than regular.
            Escaped(&fit(frame.title, WIDTH - 2.0 * PAD, TITLE_SIZE * 1.08)),
        );
        write_legend(out, &layout.legend);
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" font-size=\"{LABEL_SIZE}\" fill=\"{MUTED}\">{}</text>",
            Num(PAD),
            Num(layout.y_label_baseline),
            Escaped(&frame.y_axis.title()),
        );
    }

    /// The "no data" plate, in place of the plot.
    fn write_no_data(&mut self) {
        let plot = self.plot;
        let _ = writeln!(
            self.out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"#fafafa\" \
             stroke=\"{GRID}\"/>\n<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" \
             font-size=\"{LABEL_SIZE}\" fill=\"{MUTED}\">no data</text>",
            Num(plot.x),
            Num(plot.y),
            Num(plot.width),
            Num(plot.height),
            Num(plot.x + plot.width / 2.0),
            Num(plot.y + plot.height / 2.0),
        );
    }

    /// Below the plot: the x ticks (with data) and the axis label, or the category
    /// labels (with data).
    fn write_x_axis(&mut self, frame: &Frame<'_>, categories: Option<CategoryLabels>) {
        let plot = self.plot;
        match frame.x {
            XAxis::Numeric { axis, ticks, .. } => {
                if !self.empty {
                    self.write_x_ticks(ticks, frame.vertical_grid);
                }
                let _ = writeln!(
                    self.out,
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"{LABEL_SIZE}\" \
                     fill=\"{MUTED}\">{}</text>",
                    Num(plot.x + plot.width / 2.0),
                    Num(plot.bottom() + 18.0 + 8.0 + LABEL_SIZE),
                    Escaped(&axis.title()),
                );
            }
            XAxis::Categories { .. } => {
                if let Some(categories) = categories.filter(|_| !self.empty) {
                    self.write_categories(&categories);
                }
            }
        }
    }

    /// The x coordinate of `value` (for category axes, of band `value`).
    pub fn x(&self, value: f64) -> f64 {
        self.x.map(value)
    }

    /// The y coordinate of `value`.
    pub fn y(&self, value: f64) -> f64 {
        self.y.map(value)
    }

    /// Draws the axis line at y = 0 (or at the bottom, when 0 is not on the axis)
    /// over the data, and closes the document.
    pub fn finish(mut self) -> String {
        if !self.empty {
            let zero = self.y(0.0).clamp(self.plot.y, self.plot.bottom());
            let _ = writeln!(
                self.out,
                "<line x1=\"{}\" y1=\"{z}\" x2=\"{}\" y2=\"{z}\" stroke=\"{AXIS}\"/>",
                Num(self.plot.x),
                Num(self.plot.right()),
                z = Num(zero),
            );
        }
        self.out.push_str("</svg>\n");
        self.out
    }

    fn write_y_grid(&mut self, ticks: &Ticks, labels: &[String]) {
        self.out.push_str("<g>\n");
        for (&value, label) in ticks.values.iter().zip(labels) {
            let y = Num(self.y(value));
            let _ = writeln!(
                self.out,
                "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{GRID}\"/>\
                 <text x=\"{}\" y=\"{y}\" dy=\"0.32em\" text-anchor=\"end\" fill=\"{MUTED}\">{}</text>",
                Num(self.plot.x),
                Num(self.plot.right()),
                Num(self.plot.x - 6.0),
                Escaped(label),
            );
        }
        self.out.push_str("</g>\n");
    }

    fn write_x_ticks(&mut self, ticks: &Ticks, grid: bool) {
        let bottom = self.plot.bottom();
        self.out.push_str("<g>\n");
        for (&value, label) in ticks.values.iter().zip(ticks.labels()) {
            let x = Num(self.x(value));
            if grid {
                let _ = write!(
                    self.out,
                    "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{GRID}\"/>",
                    Num(self.plot.y),
                    Num(bottom),
                );
            }
            let _ = writeln!(
                self.out,
                "<line x1=\"{x}\" y1=\"{}\" x2=\"{x}\" y2=\"{}\" stroke=\"{AXIS}\"/>\
                 <text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" fill=\"{MUTED}\">{}</text>",
                Num(bottom),
                Num(bottom + 4.0),
                Num(bottom + 18.0),
                Escaped(&label),
            );
        }
        self.out.push_str("</g>\n");
    }

    fn write_categories(&mut self, categories: &CategoryLabels) {
        let bottom = self.plot.bottom();
        self.out.push_str("<g>\n");
        match categories {
            CategoryLabels::Level(labels) => {
                for (i, lines) in labels.iter().enumerate() {
                    let x = Num(self.x(i as f64 + 0.5));
                    let _ = write!(
                        self.out,
                        "<text x=\"{x}\" y=\"{}\" text-anchor=\"middle\" fill=\"{TEXT}\">",
                        Num(bottom + 17.0),
                    );
                    match lines.as_slice() {
                        [line] => {
                            let _ = write!(self.out, "{}", Escaped(line));
                        }
                        lines => {
                            for (n, line) in lines.iter().enumerate() {
                                let dy = if n == 0 { "0" } else { "1.2em" };
                                let _ = write!(
                                    self.out,
                                    "<tspan x=\"{x}\" dy=\"{dy}\">{}</tspan>",
                                    Escaped(line)
                                );
                            }
                        }
                    }
                    self.out.push_str("</text>\n");
                }
            }
            CategoryLabels::Turned(labels) => {
                let y = Num(bottom + 14.0);
                for (i, label) in labels.iter().enumerate() {
                    let x = Num(self.x(i as f64 + 0.5));
                    let _ = writeln!(
                        self.out,
                        "<text x=\"{x}\" y=\"{y}\" text-anchor=\"end\" \
                         transform=\"rotate(-{TURN_DEGREES} {x} {y})\" fill=\"{TEXT}\">{}</text>",
                        Escaped(label),
                    );
                }
            }
        }
        self.out.push_str("</g>\n");
    }
}

/// How category labels sit under their bands: level, on one line or two, when every
/// label fits its band that way; otherwise all turned by [`TURN_DEGREES`], which fits
/// any length.
#[derive(Debug, Clone, PartialEq)]
enum CategoryLabels {
    /// The lines of each label.
    Level(Vec<Vec<String>>),
    Turned(Vec<String>),
}

impl CategoryLabels {
    /// Lays `labels` out under a plot spanning `left..right`. Returns the layout and the
    /// plot's left edge, moved right when turned labels would hang off the canvas.
    fn new(labels: &[String], mut left: f64, right: f64) -> (CategoryLabels, f64) {
        let bands = labels.len().max(1) as f64;
        let room = (right - left) / bands - 6.0;
        let width = |line: &str| text_width(line, FONT_SIZE);
        let level: Option<Vec<Vec<String>>> = labels
            .iter()
            .map(|label| {
                let label = truncate(label, MAX_CATEGORY_CHARS);
                if width(&label) <= room {
                    return Some(vec![label.into_owned()]);
                }
                // Of the splits at a space, the one whose longer line is shortest.
                label
                    .match_indices(' ')
                    .map(|(at, _)| (label[..at].trim_end(), label[at + 1..].trim_start()))
                    .filter(|(a, b)| !a.is_empty() && !b.is_empty())
                    .map(|(a, b)| (width(a).max(width(b)), a, b))
                    .filter(|&(longer, _, _)| longer <= room)
                    .min_by(|x, y| x.0.total_cmp(&y.0))
                    .map(|(_, a, b)| vec![a.to_owned(), b.to_owned()])
            })
            .collect();
        if let Some(lines) = level {
            return (CategoryLabels::Level(lines), left);
        }
        let cut: Vec<String> = labels
            .iter()
            .map(|l| truncate(l, MAX_CATEGORY_CHARS).into_owned())
            .collect();
        // A turned label hangs left of its band's middle: move the plot right until the
        // first labels stay on the canvas. Moving narrows the bands, so settle in steps.
        let cos = TURN_DEGREES.to_radians().cos();
        for _ in 0..4 {
            let band = (right - left) / bands;
            left = cut
                .iter()
                .enumerate()
                .map(|(i, l)| PAD + width(l) * cos - band * (i as f64 + 0.5))
                .fold(left, f64::max);
        }
        (CategoryLabels::Turned(cut), left)
    }

    /// The height the labels take below the plot.
    fn height(&self) -> f64 {
        match self {
            CategoryLabels::Level(labels) => {
                let lines = labels.iter().map(Vec::len).max().unwrap_or(1) as f64;
                20.0 + (lines - 1.0) * 1.2 * FONT_SIZE
            }
            CategoryLabels::Turned(labels) => {
                let widest = labels
                    .iter()
                    .map(|l| text_width(l, FONT_SIZE))
                    .fold(0.0, f64::max);
                let (sin, cos) = TURN_DEGREES.to_radians().sin_cos();
                14.0 + widest * sin + FONT_SIZE * cos
            }
        }
    }
}

/// Where the parts of one chart go, worked out from its [`Frame`] before anything is
/// drawn.
struct Layout<'a> {
    title_baseline: f64,
    legend: Vec<PlacedItem<'a>>,
    y_label_baseline: f64,
    /// The y ticks; a placeholder 0..1 when there is no data.
    y_ticks: Ticks,
    /// The y tick labels; none when there is no data.
    y_labels: Vec<String>,
    /// The category labels' layout, on a category axis.
    categories: Option<CategoryLabels>,
    plot: Rect,
    /// The whole canvas's height.
    height: f64,
}

impl<'a> Layout<'a> {
    fn new(frame: &Frame<'a>) -> Layout<'a> {
        let y_ticks = frame
            .y_ticks
            .cloned()
            .unwrap_or_else(|| nice_ticks(0.0, 1.0, 1));
        let y_labels = if frame.y_ticks.is_none() {
            Vec::new()
        } else {
            y_ticks.labels()
        };

        // Vertical layout, top down: title, legend rows, y-axis label, plot.
        let title_baseline = PAD + TITLE_SIZE;
        let legend = layout_legend(frame.legend, title_baseline + 8.0);
        let legend_bottom = legend
            .last()
            .map_or(title_baseline, |e| e.y + LEGEND_ROW / 2.0);
        let y_label_baseline = legend_bottom + LABEL_SIZE + 10.0;
        let plot_top = y_label_baseline + 16.0 + frame.headroom;

        // Horizontal layout: y tick labels at the left, room for half an x tick label
        // at the right.
        let widest_y_label = y_labels
            .iter()
            .map(|l| text_width(l, FONT_SIZE))
            .fold(0.0, f64::max);
        let mut plot_left = PAD + widest_y_label.max(text_width("0", FONT_SIZE)) + 8.0;
        let plot_right = WIDTH - PAD - 14.0;

        // Below the plot: numeric tick labels and the axis label, or category labels.
        let categories = match frame.x {
            XAxis::Categories { labels } => {
                let (layout, left) = CategoryLabels::new(labels, plot_left, plot_right);
                plot_left = left;
                Some(layout)
            }
            XAxis::Numeric { .. } => None,
        };
        let plot_width = plot_right - plot_left;
        let below_plot = match &categories {
            Some(categories) => categories.height(),
            None => 18.0 + 8.0 + LABEL_SIZE + 4.0,
        };
        let plot = Rect {
            x: plot_left,
            y: plot_top,
            width: plot_width,
            height: PLOT_HEIGHT,
        };
        let height = (plot.bottom() + below_plot + PAD).ceil();
        Layout {
            title_baseline,
            legend,
            y_label_baseline,
            y_ticks,
            y_labels,
            categories,
            plot,
            height,
        }
    }
}

/// How far category labels turn when they do not fit side by side.
const TURN_DEGREES: f64 = 35.0;

/// A legend entry placed on the canvas: `x` where its mark starts, `y` the middle of
/// its row.
struct PlacedItem<'a> {
    item: LegendItem<'a>,
    label: Cow<'a, str>,
    x: f64,
    y: f64,
}

/// Lays the legend out in rows below `top`, wrapping when a row is full.
fn layout_legend<'a>(items: &[LegendItem<'a>], top: f64) -> Vec<PlacedItem<'a>> {
    const MARK: f64 = 18.0;
    const GAP: f64 = 6.0;
    const SPACING: f64 = 20.0;
    let mut placed = Vec::with_capacity(items.len());
    let (mut x, mut y) = (PAD, top + LEGEND_ROW / 2.0);
    for &item in items {
        let label = truncate(item.name, MAX_LEGEND_CHARS);
        let width = MARK + GAP + text_width(&label, FONT_SIZE);
        if x > PAD && x + width > WIDTH - PAD {
            x = PAD;
            y += LEGEND_ROW;
        }
        placed.push(PlacedItem { item, label, x, y });
        x += width + SPACING;
    }
    placed
}

fn write_legend(out: &mut String, placed: &[PlacedItem<'_>]) {
    if placed.is_empty() {
        return;
    }
    out.push_str("<g>\n");
    for entry in placed {
        let colour = colour(entry.item.index);
        let (x, y) = (entry.x, entry.y);
        let _ = write!(out, "<g><title>{}</title>", Escaped(entry.item.name));
        match entry.item.mark {
            Mark::Line => {
                let _ = write!(
                    out,
                    "<line x1=\"{}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"{colour}\" \
                     stroke-width=\"3\"{}/>",
                    Num(x),
                    Num(x + 18.0),
                    DashAttr(dash(entry.item.index)),
                    y = Num(y),
                );
            }
            Mark::Swatch => {
                let _ = write!(
                    out,
                    "<rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" rx=\"2\" fill=\"{colour}\"/>",
                    Num(x + 3.0),
                    Num(y - 6.0),
                );
            }
        }
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{}\" dy=\"0.32em\" fill=\"{TEXT}\">{}</text></g>",
            Num(x + 24.0),
            Num(y),
            Escaped(&entry.label),
        );
    }
    out.push_str("</g>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_legend_entries_wrap_onto_new_rows() {
        let names: Vec<String> = (0..12)
            .map(|i| format!("a rather long series name {i}"))
            .collect();
        let items: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(index, name)| LegendItem {
                name,
                index,
                mark: Mark::Line,
            })
            .collect();
        let placed = layout_legend(&items, 0.0);
        let rows = placed
            .iter()
            .map(|p| p.y.to_bits())
            .collect::<std::collections::BTreeSet<_>>();
        assert!(rows.len() > 1, "12 long names fit one row");
        for p in &placed {
            let right = p.x + 24.0 + text_width(&p.label, FONT_SIZE);
            assert!(right <= WIDTH - PAD, "{} overflows to {right}", p.item.name);
        }
    }
}
