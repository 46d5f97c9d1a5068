//! Stacked area charts: layers piled on each other, so the top edge is the total.

use std::fmt::Write;

use super::{extent, name_list, Axis, Series, X_TICK_TARGET, Y_TICK_TARGET};
use crate::escape::Escaped;
use crate::format::fmt_si;
use crate::svg::{colour, nice_ticks, ticks_inside, Canvas, Frame, LegendItem, Mark, Num, XAxis};

/// A stacked area chart of `series` (for example polls per second by outcome over
/// time): the first series is the bottom layer, each next one is drawn on top of the
/// ones before, and the top edge is the total.
///
/// Series are meant to share their x values. Where a series has no point at an x value
/// another series has, it counts as 0 there; negative values count as 0 (a layer
/// cannot be thinner than nothing); points that are not finite are skipped.
pub fn stacked_area_chart(title: &str, x_axis: &Axis, y_axis: &Axis, series: &[Series]) -> String {
    let stack = Stack::new(series);
    let legend: Vec<LegendItem<'_>> = series
        .iter()
        .enumerate()
        .map(|(index, s)| LegendItem {
            name: &s.name,
            index,
            mark: Mark::Swatch,
        })
        .collect();
    let total = stack
        .tops
        .last()
        .and_then(|top| extent(top.iter().copied()));
    let x_extent = extent(stack.xs.iter().copied());

    let ((x_ticks, x_domain), y_ticks) = match (x_extent, total) {
        (Some((x0, x1)), Some((_, highest))) => (
            ticks_inside(x0, x1, X_TICK_TARGET),
            Some(nice_ticks(0.0, highest, Y_TICK_TARGET)),
        ),
        _ => (ticks_inside(0.0, 1.0, X_TICK_TARGET), None),
    };
    let desc = match (&y_ticks, total) {
        (Some(_), Some((_, highest))) => format!(
            "Stacked area chart of {} against {}, {} layers from the bottom up: {}. The x axis \
             runs from {} to {}; the highest total is {}.",
            y_axis.title(),
            x_axis.title(),
            series.len(),
            name_list(series.iter().map(|s| s.name.as_str())),
            fmt_si(x_domain.0),
            fmt_si(x_domain.1),
            fmt_si(highest),
        ),
        _ => format!(
            "Stacked area chart of {} against {}: no data.",
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
    if y_ticks.is_none() {
        return canvas.finish();
    }

    draw_layers(&mut canvas, series, &stack);
    canvas.finish()
}

/// Each series' layer, from the bottom up: the area between its top and the one below
/// it, with its top edge drawn over (or a narrow bar where there is one x value).
fn draw_layers(canvas: &mut Canvas, series: &[Series], stack: &Stack) {
    let zeros = vec![0.0; stack.xs.len()];
    for (index, (s, top)) in series.iter().zip(&stack.tops).enumerate() {
        let bottom = if index == 0 {
            &zeros
        } else {
            &stack.tops[index - 1]
        };
        let colour = colour(index);
        let _ = write!(canvas.out, "<g><title>{}</title>", Escaped(&s.name));
        if stack.xs.len() == 1 {
            // One x value: no area to fill, so a narrow bar shows the layer.
            let x = canvas.x(stack.xs[0]);
            let (y_top, y_bottom) = (canvas.y(top[0]), canvas.y(bottom[0]));
            let _ = write!(
                canvas.out,
                "<rect x=\"{}\" y=\"{}\" width=\"8\" height=\"{}\" fill=\"{colour}\"/>",
                Num(x - 4.0),
                Num(y_top),
                Num(y_bottom - y_top),
            );
        } else {
            let mut edge = String::with_capacity(stack.xs.len() * 12);
            for (i, (&x, &y)) in stack.xs.iter().zip(top).enumerate() {
                let separator = if i == 0 { "" } else { " " };
                let _ = write!(edge, "{separator}{},{}", Num(canvas.x(x)), Num(canvas.y(y)));
            }
            let mut outline = edge.clone();
            for (&x, &y) in stack.xs.iter().zip(bottom).rev() {
                let _ = write!(outline, " {},{}", Num(canvas.x(x)), Num(canvas.y(y)));
            }
            let _ = write!(
                canvas.out,
                "<polygon points=\"{outline}\" fill=\"{colour}\" fill-opacity=\"0.85\"/>\
                 <polyline points=\"{edge}\" fill=\"none\" stroke=\"{colour}\" \
                 stroke-width=\"1.5\" stroke-linejoin=\"round\"/>",
            );
        }
        canvas.out.push_str("</g>\n");
    }
}

/// The layers of a stacked chart: `tops[k][i]` is the top of layer `k` at `xs[i]`, the
/// sum of the values of series `0..=k` there.
#[derive(Debug, Clone, PartialEq)]
struct Stack {
    /// Every finite x value of any series, ascending, once.
    xs: Vec<f64>,
    tops: Vec<Vec<f64>>,
}

impl Stack {
    fn new(series: &[Series]) -> Stack {
        let mut xs: Vec<f64> = series
            .iter()
            .flat_map(|s| s.finite_points().map(|p| p.0))
            .collect();
        xs.sort_by(f64::total_cmp);
        xs.dedup();
        let mut tops: Vec<Vec<f64>> = Vec::with_capacity(series.len());
        for s in series {
            let mut points: Vec<(f64, f64)> = s.finite_points().collect();
            // Stable, so the last of several points at one x is the one kept below.
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            let value_at = |x: f64| {
                let after = points.partition_point(|p| p.0 <= x);
                match after.checked_sub(1).map(|i| points[i]) {
                    Some((px, y)) if px == x => y.max(0.0),
                    _ => 0.0,
                }
            };
            let below = tops.last();
            let top = xs
                .iter()
                .enumerate()
                .map(|(i, &x)| below.map_or(0.0, |b| b[i]) + value_at(x))
                .collect();
            tops.push(top);
        }
        Stack { xs, tops }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::test_util::{assert_sound_chart, elements, plot_bounds};

    fn axes() -> (Axis, Axis) {
        (Axis::new("time", "s"), Axis::new("polls per second", ""))
    }

    fn outcomes() -> Vec<Series> {
        vec![
            Series::new(
                "authorization_pending",
                vec![(0.0, 10.0), (1.0, 20.0), (2.0, 30.0)],
            ),
            Series::new("slow_down", vec![(0.0, 20.0), (1.0, 30.0), (2.0, 20.0)]),
            Series::new("token", vec![(0.0, 70.0), (1.0, 50.0), (2.0, 50.0)]),
        ]
    }

    #[test]
    fn stacked_values_are_cumulative() {
        let stack = Stack::new(&outcomes());
        assert_eq!(stack.xs, [0.0, 1.0, 2.0]);
        assert_eq!(
            stack.tops,
            [
                [10.0, 20.0, 30.0],
                [30.0, 50.0, 50.0],
                [100.0, 100.0, 100.0]
            ]
        );
    }

    #[test]
    fn each_layer_is_drawn_at_its_cumulative_height() {
        let (x, y) = axes();
        let svg = stacked_area_chart("Polls by outcome", &x, &y, &outcomes());
        assert_sound_chart(&svg);
        let (_, top, _, bottom) = plot_bounds(&svg);
        let edges = elements(&svg, "polyline");
        assert_eq!(edges.len(), 3);
        let expected = Stack::new(&outcomes()).tops;
        for (edge, cumulative) in edges.iter().zip(&expected) {
            let ys: Vec<f64> = edge["points"]
                .split(' ')
                .map(|p| p.split_once(',').unwrap().1.parse().unwrap())
                .collect();
            for (pixel, value) in ys.iter().zip(cumulative) {
                // The y axis runs 0..=100 here, so value v sits v% of the way up.
                let want = bottom - value / 100.0 * (bottom - top);
                assert!(
                    (pixel - want).abs() <= 0.1,
                    "{value} drawn at {pixel}, want {want}"
                );
            }
        }
    }

    #[test]
    fn a_missing_x_counts_as_zero_and_negatives_as_zero() {
        let stack = Stack::new(&[
            Series::new("a", vec![(0.0, 1.0), (2.0, 1.0)]),
            Series::new("b", vec![(1.0, 5.0), (2.0, -3.0), (3.0, f64::NAN)]),
        ]);
        assert_eq!(stack.xs, [0.0, 1.0, 2.0]);
        assert_eq!(stack.tops, [vec![1.0, 0.0, 1.0], vec![1.0, 5.0, 1.0]]);
    }

    #[test]
    fn unsorted_points_stack_by_x() {
        let stack = Stack::new(&[
            Series::new("a", vec![(2.0, 3.0), (0.0, 1.0)]),
            Series::new("b", vec![(0.0, 1.0), (2.0, 1.0)]),
        ]);
        assert_eq!(stack.tops, [vec![1.0, 3.0], vec![2.0, 4.0]]);
    }

    #[test]
    fn empty_data_says_no_data() {
        let (x, y) = axes();
        for series in [vec![], vec![Series::new("a", vec![])]] {
            let svg = stacked_area_chart("Nothing", &x, &y, &series);
            assert_sound_chart(&svg);
            assert!(svg.contains(">no data</text>"), "{svg}");
            assert!(!svg.contains("<polygon"));
        }
    }

    #[test]
    fn a_single_x_value_and_all_zero_data_render_without_nan() {
        let (x, y) = axes();
        let one = stacked_area_chart("One", &x, &y, &[Series::new("a", vec![(4.0, 2.0)])]);
        assert_sound_chart(&one);
        assert!(one.contains("width=\"8\""), "{one}");
        let zeros = stacked_area_chart(
            "Zeros",
            &x,
            &y,
            &[
                Series::new("a", vec![(0.0, 0.0), (1.0, 0.0)]),
                Series::new("b", vec![(0.0, 0.0)]),
            ],
        );
        assert_sound_chart(&zeros);
        assert_eq!(zeros.matches("<polygon").count(), 2);
    }

    #[test]
    fn names_are_escaped_and_output_is_deterministic() {
        let (x, y) = axes();
        let series = [Series::new(
            "<script>x</script>",
            vec![(0.0, 1.0), (1.0, 2.0)],
        )];
        let svg = stacked_area_chart("T", &x, &y, &series);
        assert_sound_chart(&svg);
        assert!(svg.contains("&lt;script&gt;x&lt;/script&gt;"));
        assert_eq!(svg, stacked_area_chart("T", &x, &y, &series));
    }
}
