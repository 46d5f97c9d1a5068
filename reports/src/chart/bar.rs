//! Bar charts over named categories: one bar each, or a group of bars each.

use std::fmt::Write;

use super::{extent, name_list, Axis, Y_TICK_TARGET};
use crate::escape::Escaped;
use crate::format::fmt_si;
use crate::svg::{colour, nice_ticks, text_width, Canvas, Frame, LegendItem, Mark, Num, XAxis};

/// One colour of a grouped bar chart: its name (in the legend) and its value for each
/// category, in the categories' order (for example `p99` and its latency per request).
#[derive(Debug, Clone, PartialEq)]
pub struct BarSeries {
    /// Shown in the legend.
    pub name: String,
    /// `values[i]` is the bar for category `i`; a missing or non-finite value draws no
    /// bar.
    pub values: Vec<f64>,
}

impl BarSeries {
    /// A series named `name`.
    pub fn new(name: impl Into<String>, values: Vec<f64>) -> BarSeries {
        BarSeries {
            name: name.into(),
            values,
        }
    }
}

/// Value labels are this size, and drawn only where they fit over their bar.
const VALUE_SIZE: f64 = 11.0;
/// Descriptions list every value up to this many bars, and summarise beyond.
const DESCRIBE_UP_TO: usize = 60;

/// A bar chart: one bar per `(label, value)`, in order, with the value written over
/// the bar when it fits.
///
/// ```
/// use deviceflow_reports::chart::{bar_chart, Axis};
/// let svg = bar_chart(
///     "Polls per device",
///     &Axis::new("polls", ""),
///     &[("well-behaved".to_owned(), 12.0), ("eager".to_owned(), 31.0)],
/// );
/// assert!(svg.contains(">eager</text>"));
/// ```
pub fn bar_chart(title: &str, y_axis: &Axis, bars: &[(String, f64)]) -> String {
    let categories: Vec<String> = bars.iter().map(|(label, _)| label.clone()).collect();
    let series = [BarSeries::new(
        y_axis.label.clone(),
        bars.iter().map(|b| b.1).collect(),
    )];
    render(title, y_axis, &categories, &series, false)
}

/// A grouped bar chart: for each category a group of bars, one per series, coloured
/// by series (for example latency p50, p90 and p99 per request name).
pub fn grouped_bar_chart(
    title: &str,
    y_axis: &Axis,
    categories: &[String],
    series: &[BarSeries],
) -> String {
    render(title, y_axis, categories, series, true)
}

fn render(
    title: &str,
    y_axis: &Axis,
    categories: &[String],
    series: &[BarSeries],
    grouped: bool,
) -> String {
    let values = extent(
        series
            .iter()
            .flat_map(|s| (0..categories.len()).filter_map(move |c| value(s, c))),
    );
    // Room below the lowest negative bar for its value label; above the plot, the
    // frame's headroom holds the labels of the tallest bars.
    let y_ticks =
        values.map(|(lo, hi)| nice_ticks((lo * 1.15).min(0.0), hi.max(0.0), Y_TICK_TARGET));
    let legend: Vec<LegendItem<'_>> = if grouped {
        series
            .iter()
            .enumerate()
            .map(|(index, s)| LegendItem {
                name: &s.name,
                index,
                mark: Mark::Swatch,
            })
            .collect()
    } else {
        Vec::new()
    };
    let desc = describe(y_axis, categories, series, grouped, values.is_some());
    let mut canvas = Canvas::new(&Frame {
        title,
        desc: &desc,
        legend: &legend,
        y_axis,
        y_ticks: y_ticks.as_ref(),
        x: XAxis::Categories { labels: categories },
        vertical_grid: false,
        headroom: VALUE_SIZE + 4.0,
    });
    if y_ticks.is_none() {
        return canvas.finish();
    }

    draw_bars(&mut canvas, categories, series, grouped);
    canvas.finish()
}

/// The bar of `s` for category `category`, if it has a finite one.
fn value(s: &BarSeries, category: usize) -> Option<f64> {
    s.values.get(category).copied().filter(|v| v.is_finite())
}

/// Each category's group of bars, centred in its band, a series a colour, each bar with
/// its value above it (below, when negative) where the label fits.
fn draw_bars(canvas: &mut Canvas, categories: &[String], series: &[BarSeries], grouped: bool) {
    let band = canvas.x(1.0) - canvas.x(0.0);
    let group = band * if series.len() > 1 { 0.8 } else { 0.6 };
    let slot = group / series.len().max(1) as f64;
    let gap = if series.len() > 1 {
        (slot * 0.1).min(2.0)
    } else {
        0.0
    };
    let zero = canvas.y(0.0);
    canvas.out.push_str("<g>\n");
    for (c, category) in categories.iter().enumerate() {
        let group_left = canvas.x(c as f64) + (band - group) / 2.0;
        for (index, s) in series.iter().enumerate() {
            let Some(v) = value(s, c) else { continue };
            let x = group_left + index as f64 * slot + gap / 2.0;
            let width = slot - gap;
            let end = canvas.y(v);
            let _ = write!(
                canvas.out,
                "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{}\">\
                 <title>{}{}: {}</title></rect>",
                Num(x),
                Num(end.min(zero)),
                Num(width),
                Num((end - zero).abs()),
                colour(index),
                Escaped(category),
                Escaped(&if grouped {
                    format!(", {}", s.name)
                } else {
                    String::new()
                }),
                fmt_si(v),
            );
            let label = fmt_si(v);
            if text_width(&label, VALUE_SIZE) <= width + 4.0 {
                // Above a positive bar, below a negative one.
                let y = if v >= 0.0 {
                    end - 4.0
                } else {
                    end + VALUE_SIZE + 2.0
                };
                let _ = write!(
                    canvas.out,
                    "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" font-size=\"{VALUE_SIZE}\" \
                     fill=\"#333333\">{label}</text>",
                    Num(x + width / 2.0),
                    Num(y),
                );
            }
            canvas.out.push('\n');
        }
    }
    canvas.out.push_str("</g>\n");
}

/// What the chart shows, in words: every value when there are few, else a summary.
fn describe(
    y_axis: &Axis,
    categories: &[String],
    series: &[BarSeries],
    grouped: bool,
    has_data: bool,
) -> String {
    let kind = if grouped {
        "Grouped bar chart"
    } else {
        "Bar chart"
    };
    if !has_data {
        return format!("{kind} of {}: no data.", y_axis.title());
    }
    let mut desc = format!(
        "{kind} of {} for {} categories",
        y_axis.title(),
        categories.len()
    );
    if grouped {
        let _ = write!(
            desc,
            ", {} bars each ({})",
            series.len(),
            name_list(series.iter().map(|s| s.name.as_str()))
        );
    }
    if categories.len() * series.len() > DESCRIBE_UP_TO {
        desc.push('.');
        return desc;
    }
    desc.push_str(": ");
    let spell = |v: Option<&f64>| {
        v.filter(|v| v.is_finite())
            .map_or("none".to_owned(), |&v| fmt_si(v))
    };
    let parts: Vec<String> = categories
        .iter()
        .enumerate()
        .map(|(c, category)| {
            if grouped {
                let values: Vec<String> = series
                    .iter()
                    .map(|s| format!("{} {}", s.name, spell(s.values.get(c))))
                    .collect();
                format!("{category} ({})", values.join(", "))
            } else {
                format!(
                    "{category} {}",
                    spell(series.first().and_then(|s| s.values.get(c)))
                )
            }
        })
        .collect();
    desc.push_str(&parts.join("; "));
    desc.push('.');
    desc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::test_util::{assert_sound_chart, elements, number, plot_bounds};

    fn latency() -> Axis {
        Axis::new("latency", "ms")
    }

    fn requests() -> Vec<String> {
        [
            "device_authorization",
            "token (pending)",
            "token (slow_down)",
            "token (granted)",
        ]
        .map(String::from)
        .to_vec()
    }

    fn percentiles() -> Vec<BarSeries> {
        vec![
            BarSeries::new("p50", vec![1.2, 0.8, 0.7, 2.5]),
            BarSeries::new("p90", vec![3.4, 1.9, 1.5, 6.0]),
            BarSeries::new("p99", vec![9.8, 4.1, 3.9, 14.2]),
        ]
    }

    fn bars(svg: &str) -> Vec<std::collections::BTreeMap<String, String>> {
        // Legend swatches have rounded corners; bars do not.
        elements(svg, "rect")
            .into_iter()
            .filter(|r| r.contains_key("x") && !r.contains_key("rx"))
            .collect()
    }

    #[test]
    fn a_grouped_chart_has_a_bar_per_category_and_series_in_series_colours() {
        let svg = grouped_bar_chart(
            "Latency per request",
            &latency(),
            &requests(),
            &percentiles(),
        );
        assert_sound_chart(&svg);
        let bars = bars(&svg);
        assert_eq!(bars.len(), 12);
        for (i, bar) in bars.iter().enumerate() {
            assert_eq!(bar["fill"], colour(i % 3), "bar {i}");
        }
        for name in ["p50", "p90", "p99"] {
            assert!(
                svg.contains(&format!(">{name}</text>")),
                "legend has {name}"
            );
        }
        assert!(
            svg.contains("token (slow_down) (p50 0.7, p90 1.5, p99 3.9)"),
            "{svg}"
        );
    }

    #[test]
    fn bars_grow_from_zero_in_proportion_to_their_value_and_stay_in_the_plot() {
        let svg = bar_chart(
            "Polls",
            &Axis::new("polls", ""),
            &[
                ("a".to_owned(), 25.0),
                ("b".to_owned(), 50.0),
                ("c".to_owned(), 0.0),
            ],
        );
        assert_sound_chart(&svg);
        let (left, top, right, bottom) = plot_bounds(&svg);
        let bars = bars(&svg);
        assert_eq!(bars.len(), 3);
        let heights: Vec<f64> = bars.iter().map(|b| number(b, "height")).collect();
        assert!((heights[1] - 2.0 * heights[0]).abs() <= 0.2, "{heights:?}");
        assert_eq!(heights[2], 0.0);
        for bar in &bars {
            let (x, y) = (number(bar, "x"), number(bar, "y"));
            assert!(x >= left && x + number(bar, "width") <= right);
            assert!(y >= top && (y + number(bar, "height") - bottom).abs() <= 0.1);
        }
        assert!(
            !svg.contains("rx=\"2\""),
            "a single-series chart has no legend"
        );
    }

    #[test]
    fn value_labels_are_written_over_bars_that_have_room() {
        let svg = bar_chart(
            "Few",
            &latency(),
            &[("a".to_owned(), 12.34), ("b".to_owned(), 5.0)],
        );
        assert_sound_chart(&svg);
        assert!(
            svg.contains("font-size=\"11\" fill=\"#333333\">12.3</text>"),
            "{svg}"
        );
        let many: Vec<(String, f64)> = (0..200).map(|i| (format!("c{i}"), 12345.0)).collect();
        let crowded = bar_chart("Many", &latency(), &many);
        assert_sound_chart(&crowded);
        assert!(
            !crowded.contains(">12.3k</text>"),
            "labels wider than their bar"
        );
    }

    #[test]
    fn negative_values_hang_below_the_zero_line() {
        let svg = bar_chart(
            "Delta",
            &latency(),
            &[("up".to_owned(), 4.0), ("down".to_owned(), -2.0)],
        );
        assert_sound_chart(&svg);
        let bars = bars(&svg);
        let zero_up = number(&bars[0], "y") + number(&bars[0], "height");
        assert!(
            (number(&bars[1], "y") - zero_up).abs() <= 0.1,
            "both bars meet at zero"
        );
        assert!(svg.contains(">-2</text>"));
    }

    #[test]
    fn long_category_labels_turn_instead_of_overlapping() {
        let categories: Vec<String> = (0..12)
            .map(|i| format!("a very long request name number {i}"))
            .collect();
        let series = [BarSeries::new("p99", vec![1.0; 12])];
        let svg = grouped_bar_chart("Long", &latency(), &categories, &series);
        assert_sound_chart(&svg);
        assert_eq!(svg.matches("transform=\"rotate(-35").count(), 12);
        assert!(
            svg.contains("a very long request name numb…"),
            "labels are cut: {svg}"
        );
        // The first turned label (end-anchored at x) stays on the canvas.
        let turned: Vec<_> = elements(&svg, "text")
            .into_iter()
            .filter(|t| t.contains_key("transform"))
            .collect();
        let reach = crate::svg::text_width("a very long request name numb…", crate::svg::FONT_SIZE)
            * 35f64.to_radians().cos();
        assert!(
            number(&turned[0], "x") - reach >= 0.0,
            "{:?} hangs off the left",
            turned[0]
        );
        let short = grouped_bar_chart("Short", &latency(), &["a".to_owned()], &series);
        assert!(!short.contains("rotate("));
    }

    #[test]
    fn labels_too_wide_for_one_line_wrap_onto_two_before_turning() {
        let categories = [
            "token (slow_down)",
            "token (issued)",
            "introspect",
            "revoke",
            "refresh",
        ]
        .map(String::from);
        let series = [BarSeries::new("p99", vec![1.0; 5])];
        let svg = grouped_bar_chart("Wrapped", &latency(), &categories, &series);
        assert_sound_chart(&svg);
        assert!(!svg.contains("rotate("), "{svg}");
        assert!(svg.contains(">token</tspan><tspan"), "{svg}");
        assert!(svg.contains("dy=\"1.2em\">(slow_down)</tspan>"), "{svg}");
        assert!(svg.contains(">introspect</text>"), "{svg}");
    }

    #[test]
    fn missing_and_non_finite_values_draw_no_bar() {
        let series = [
            BarSeries::new("p50", vec![1.0, f64::NAN]),
            BarSeries::new("p99", vec![2.0]),
        ];
        let svg = grouped_bar_chart(
            "Gaps",
            &latency(),
            &["a".to_owned(), "b".to_owned()],
            &series,
        );
        assert_sound_chart(&svg);
        assert_eq!(bars(&svg).len(), 2);
        assert!(svg.contains("b (p50 none, p99 none)"), "{svg}");
    }

    #[test]
    fn no_categories_or_no_values_say_no_data() {
        let cases = [
            grouped_bar_chart("None", &latency(), &[], &percentiles()),
            grouped_bar_chart("None", &latency(), &requests(), &[]),
            bar_chart("None", &latency(), &[]),
            bar_chart("Not a number", &latency(), &[("a".to_owned(), f64::NAN)]),
        ];
        for svg in cases {
            assert_sound_chart(&svg);
            assert!(svg.contains(">no data</text>"), "{svg}");
        }
    }

    #[test]
    fn all_zero_values_render_without_nan() {
        let svg = bar_chart(
            "Zero",
            &latency(),
            &[("a".to_owned(), 0.0), ("b".to_owned(), 0.0)],
        );
        assert_sound_chart(&svg);
        assert!(!svg.contains("no data"));
    }

    #[test]
    fn labels_are_escaped_and_output_is_deterministic() {
        let categories = vec!["<script>alert(1)</script>".to_owned()];
        let series = [BarSeries::new("<b>p99</b>", vec![3.0])];
        let svg = grouped_bar_chart("T", &latency(), &categories, &series);
        assert_sound_chart(&svg);
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(svg.contains("&lt;b&gt;p99&lt;/b&gt;"));
        assert_eq!(
            svg,
            grouped_bar_chart("T", &latency(), &categories, &series)
        );
    }
}
