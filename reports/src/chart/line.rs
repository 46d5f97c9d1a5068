//! Line charts: one line per series over a numeric x axis, y from 0.

use std::fmt::Write;

use super::{extent, name_list, Axis, Series, X_TICK_TARGET, Y_TICK_TARGET};
use crate::escape::Escaped;
use crate::format::fmt_si;
use crate::svg::{
    colour, dash, nice_ticks, ticks_inside, Canvas, DashAttr, Frame, LegendItem, Mark, Num, XAxis,
};

/// Series with at most this many points also get a dot at each point, so that sparse
/// data (and a single point, which has no line) stays visible.
const MARKERS_UP_TO: usize = 20;

/// A line chart of `series` (for example latency percentiles, or the enforced polling
/// interval per device behaviour, over time).
///
/// The y axis starts at 0 (or below, for negative data) and both axes end on round
/// ticks covering the data. Points are joined in the order given; points that are not
/// finite are skipped.
///
/// ```
/// use deviceflow_reports::chart::{line_chart, Axis, Series};
/// let svg = line_chart(
///     "Token endpoint latency",
///     &Axis::new("time", "s"),
///     &Axis::new("latency", "ms"),
///     &[Series::new("p99", vec![(0.0, 4.0), (1.0, 6.5), (2.0, 5.0)])],
/// );
/// assert!(svg.starts_with("<svg"));
/// ```
pub fn line_chart(title: &str, x_axis: &Axis, y_axis: &Axis, series: &[Series]) -> String {
    let points: Vec<Vec<(f64, f64)>> = series.iter().map(|s| s.finite_points().collect()).collect();
    let xs = extent(points.iter().flatten().map(|p| p.0));
    let ys = extent(points.iter().flatten().map(|p| p.1));
    let legend: Vec<LegendItem<'_>> = series
        .iter()
        .enumerate()
        .map(|(index, s)| LegendItem {
            name: &s.name,
            index,
            mark: Mark::Line,
        })
        .collect();

    let ((x_ticks, x_domain), y_ticks) = match (xs, ys) {
        (Some((x0, x1)), Some((y0, y1))) => (
            ticks_inside(x0, x1, X_TICK_TARGET),
            Some(nice_ticks(y0.min(0.0), y1.max(0.0), Y_TICK_TARGET)),
        ),
        _ => (ticks_inside(0.0, 1.0, X_TICK_TARGET), None),
    };
    let desc = match &y_ticks {
        Some(y_ticks) => format!(
            "Line chart of {} against {}, {} series: {}. The x axis runs from {} to {}, \
             the y axis from {} to {}.",
            y_axis.title(),
            x_axis.title(),
            series.len(),
            name_list(series.iter().map(|s| s.name.as_str())),
            fmt_si(x_domain.0),
            fmt_si(x_domain.1),
            fmt_si(y_ticks.first()),
            fmt_si(y_ticks.last()),
        ),
        None => format!(
            "Line chart of {} against {}: no data.",
            y_axis.title(),
            x_axis.title()
        ),
    };
    let mut canvas = Canvas::new(&Frame {
        title,
        desc: &desc,
        legend: &legend,
        y_axis,
        y_ticks: y_ticks.as_ref(),
        x: XAxis::Numeric {
            axis: x_axis,
            ticks: &x_ticks,
            domain: x_domain,
        },
        vertical_grid: true,
        headroom: 0.0,
    });

    draw_lines(&mut canvas, series, &points);
    canvas.finish()
}

/// Each series' finite points as a line in its colour and dash, with a dot at each
/// point when there are few.
fn draw_lines(canvas: &mut Canvas, series: &[Series], points: &[Vec<(f64, f64)>]) {
    for (index, (s, points)) in series.iter().zip(points).enumerate() {
        if points.is_empty() {
            continue;
        }
        let colour = colour(index);
        let _ = write!(canvas.out, "<g><title>{}</title>", Escaped(&s.name));
        if points.len() > 1 {
            let mut coordinates = String::with_capacity(points.len() * 12);
            for (i, &(x, y)) in points.iter().enumerate() {
                let separator = if i == 0 { "" } else { " " };
                let _ = write!(
                    coordinates,
                    "{separator}{},{}",
                    Num(canvas.x(x)),
                    Num(canvas.y(y))
                );
            }
            let _ = write!(
                canvas.out,
                "<polyline points=\"{coordinates}\" fill=\"none\" stroke=\"{colour}\" \
                 stroke-width=\"2\" stroke-linejoin=\"round\" stroke-linecap=\"round\"{}/>",
                DashAttr(dash(index)),
            );
        }
        if points.len() <= MARKERS_UP_TO {
            for &(x, y) in points {
                let _ = write!(
                    canvas.out,
                    "<circle cx=\"{}\" cy=\"{}\" r=\"3\" fill=\"{colour}\"/>",
                    Num(canvas.x(x)),
                    Num(canvas.y(y)),
                );
            }
        }
        canvas.out.push_str("</g>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::test_util::{assert_sound_chart, elements, number, plot_bounds};

    fn axes() -> (Axis, Axis) {
        (Axis::new("time", "s"), Axis::new("latency", "ms"))
    }

    #[test]
    fn a_line_is_drawn_per_series_with_its_palette_colour_and_legend() {
        let (x, y) = axes();
        let series = [
            Series::new(
                "p50",
                (0..30).map(|t| (t as f64, 2.0 + t as f64 / 10.0)).collect(),
            ),
            Series::new("p99", (0..30).map(|t| (t as f64, 9.0 + t as f64)).collect()),
        ];
        let svg = line_chart("Latency", &x, &y, &series);
        assert_sound_chart(&svg);
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(&format!("stroke=\"{}\"", colour(0))));
        assert!(svg.contains(&format!("stroke=\"{}\"", colour(1))));
        assert!(svg.contains(">p50</text>") && svg.contains(">p99</text>"));
        assert!(svg.contains(">time (s)</text>") && svg.contains(">latency (ms)</text>"));
        assert!(svg.contains("p50 and p99"), "desc names the series: {svg}");
    }

    #[test]
    fn the_y_axis_starts_at_zero_and_ticks_cover_the_data() {
        let (x, y) = axes();
        let svg = line_chart(
            "Latency",
            &x,
            &y,
            &[Series::new("p99", vec![(3.0, 40.0), (57.0, 93.0)])],
        );
        assert_sound_chart(&svg);
        // Y tick labels are end-anchored; x tick labels are middle-anchored below the plot.
        let y_tick = |v: &str| format!("text-anchor=\"end\" fill=\"#555555\">{v}</text>");
        let x_tick = |v: &str| format!("text-anchor=\"middle\" fill=\"#555555\">{v}</text>");
        assert!(
            svg.contains(&y_tick("0")) && svg.contains(&y_tick("100")),
            "{svg}"
        );
        assert!(
            !svg.contains(&y_tick("120")),
            "the y axis overshoots: {svg}"
        );
        // The x axis ends where the data ends, with round ticks inside.
        assert!(
            svg.contains(&x_tick("10")) && svg.contains(&x_tick("50")),
            "{svg}"
        );
        assert!(
            !svg.contains(&x_tick("0")) && !svg.contains(&x_tick("60")),
            "{svg}"
        );
    }

    #[test]
    fn every_point_lies_inside_the_plot() {
        let (x, y) = axes();
        let svg = line_chart(
            "Sparse",
            &x,
            &y,
            &[Series::new(
                "a",
                vec![(-5.0, -2.0), (0.0, 0.0), (7.5, 13.0)],
            )],
        );
        assert_sound_chart(&svg);
        let (left, top, right, bottom) = plot_bounds(&svg);
        let dots = elements(&svg, "circle");
        assert_eq!(dots.len(), 3);
        for dot in &dots {
            let (x, y) = (number(dot, "cx"), number(dot, "cy"));
            assert!(x >= left && x <= right, "x {x} outside {left}..{right}");
            assert!(y > top && y < bottom, "y {y} outside {top}..{bottom}");
        }
        // The x axis ends where the data does.
        assert_eq!(number(&dots[0], "cx"), left);
        assert_eq!(number(&dots[2], "cx"), right);
    }

    #[test]
    fn a_single_point_is_drawn_as_a_dot_without_nan() {
        let (x, y) = axes();
        let svg = line_chart("One", &x, &y, &[Series::new("only", vec![(5.0, 5.0)])]);
        assert_sound_chart(&svg);
        assert_eq!(svg.matches("<circle").count(), 1);
        assert!(!svg.contains("<polyline"));
    }

    #[test]
    fn all_zero_data_gets_a_zero_to_one_axis() {
        let (x, y) = axes();
        let zeros = Series::new("errors", (0..10).map(|t| (t as f64, 0.0)).collect());
        let svg = line_chart("Errors", &x, &y, &[zeros]);
        assert_sound_chart(&svg);
        assert!(svg.contains(">1</text>"), "{svg}");
        assert!(!svg.contains("no data"));
    }

    #[test]
    fn empty_or_non_finite_data_says_no_data() {
        let (x, y) = axes();
        for series in [
            vec![],
            vec![Series::new("empty", vec![])],
            vec![Series::new(
                "nan",
                vec![(f64::NAN, 1.0), (1.0, f64::INFINITY)],
            )],
        ] {
            let svg = line_chart("Nothing", &x, &y, &series);
            assert_sound_chart(&svg);
            assert!(svg.contains(">no data</text>"), "{svg}");
            assert!(!svg.contains("<polyline"));
        }
    }

    #[test]
    fn non_finite_points_are_skipped() {
        let (x, y) = axes();
        let svg = line_chart(
            "Gappy",
            &x,
            &y,
            &[Series::new(
                "a",
                vec![(0.0, 1.0), (1.0, f64::NAN), (2.0, 3.0)],
            )],
        );
        assert_sound_chart(&svg);
        assert_eq!(svg.matches("<circle").count(), 2);
    }

    #[test]
    fn names_and_titles_are_escaped() {
        let (x, _) = axes();
        let y = Axis::new("<b>latency</b>", "ms & more");
        let svg = line_chart(
            "<script>alert(1)</script>",
            &x,
            &y,
            &[Series::new(
                "<script>alert(2)</script>",
                vec![(0.0, 1.0), (1.0, 2.0)],
            )],
        );
        assert_sound_chart(&svg);
        assert!(svg.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(svg.contains("&lt;script&gt;alert(2)&lt;/script&gt;"));
        assert!(svg.contains("&lt;b&gt;latency&lt;/b&gt; (ms &amp; more)"));
    }

    #[test]
    fn output_is_deterministic() {
        let (x, y) = axes();
        let series: Vec<Series> = (0..10)
            .map(|i| {
                Series::new(
                    format!("s{i}"),
                    (0..50).map(|t| (t as f64, (t * i) as f64)).collect(),
                )
            })
            .collect();
        assert_eq!(
            line_chart("D", &x, &y, &series),
            line_chart("D", &x, &y, &series)
        );
    }

    #[test]
    fn series_past_the_palette_are_dashed() {
        let (x, y) = axes();
        let series: Vec<Series> = (0..10)
            .map(|i| {
                Series::new(
                    format!("s{i}"),
                    vec![(0.0, i as f64), (1.0, i as f64 + 1.0)],
                )
            })
            .collect();
        let svg = line_chart("Many", &x, &y, &series);
        assert_sound_chart(&svg);
        // Two polylines and two legend lines for series 8 and 9.
        assert_eq!(svg.matches("stroke-dasharray").count(), 4, "{svg}");
    }
}
