//! Histograms: counts of values falling in adjacent intervals (bins).

use std::fmt::Write;

use super::{extent, Axis, X_TICK_TARGET};
use crate::format::{fmt_count, fmt_si};
use crate::svg::{colour, integer_ticks, nice_ticks, ticks_inside, Canvas, Frame, Num, XAxis};

/// Values (for example each device's time to token) counted into about `target_bins`
/// bins of equal, round width (`lo`, `hi`, `count`), ready for [`histogram`].
///
/// Every bin from the lowest value's to the highest's is present, empty ones too, so
/// that gaps in the distribution show. A bin holds `lo <= v < hi`, except that the
/// last one also holds its `hi`. Values that are not finite are left out; no finite
/// values give no bins.
///
/// ```
/// use deviceflow_reports::chart::bins;
/// assert_eq!(
///     bins(&[1.0, 2.5, 3.0, 9.0], 5),
///     [(0.0, 2.0, 1), (2.0, 4.0, 2), (4.0, 6.0, 0), (6.0, 8.0, 0), (8.0, 10.0, 1)]
/// );
/// ```
pub fn bins(values: &[f64], target_bins: usize) -> Vec<(f64, f64, u64)> {
    let finite = || values.iter().copied().filter(|v| v.is_finite());
    let Some((min, max)) = extent(finite()) else {
        return Vec::new();
    };
    let edges = nice_ticks(min, max, target_bins.max(1)).values;
    let mut counts = vec![0u64; edges.len() - 1];
    let (first, step) = (edges[0], edges[1] - edges[0]);
    let last = counts.len() - 1;
    for v in finite() {
        let mut i = (((v - first) / step).floor().max(0.0) as usize).min(last);
        // The division can round across an edge; the edges themselves decide.
        if i > 0 && v < edges[i] {
            i -= 1;
        } else if i < last && v >= edges[i + 1] {
            i += 1;
        }
        counts[i] += 1;
    }
    edges
        .windows(2)
        .zip(counts)
        .map(|(edge, count)| (edge[0], edge[1], count))
        .collect()
}

/// A histogram of `bins`, each `(lo, hi, count)`: one bar per bin spanning `lo..hi` on
/// the numeric x axis, `count` high. [`bins`] makes bins from raw values.
///
/// Bins that are not finite or have `hi <= lo` are skipped. Bins may have unequal
/// widths, but the bar height is the count, not a density, so equal widths read best.
pub fn histogram(title: &str, x_axis: &Axis, y_axis: &Axis, bins: &[(f64, f64, u64)]) -> String {
    let bins: Vec<(f64, f64, u64)> = bins
        .iter()
        .copied()
        .filter(|&(lo, hi, _)| lo.is_finite() && hi.is_finite() && hi > lo)
        .collect();
    let span = extent(bins.iter().flat_map(|&(lo, hi, _)| [lo, hi]));
    let tallest = bins.iter().copied().max_by_key(|b| b.2);

    let ((x_ticks, x_domain), y_ticks) = match (span, tallest) {
        (Some((lo, hi)), Some((_, _, count))) => (
            ticks_inside(lo, hi, X_TICK_TARGET),
            Some(integer_ticks(0.0, count as f64, super::Y_TICK_TARGET)),
        ),
        _ => (ticks_inside(0.0, 1.0, X_TICK_TARGET), None),
    };
    let unit = if x_axis.unit.is_empty() {
        String::new()
    } else {
        format!(" {}", x_axis.unit)
    };
    let desc = match (span, tallest) {
        (Some((lo, hi)), Some((tall_lo, tall_hi, tall_count))) => format!(
            "Histogram of {}, counted in {}: {} bins from {}{unit} to {}{unit}, {} in all. \
             The tallest bin, {} to {}{unit}, holds {}.",
            x_axis.title(),
            y_axis.title(),
            bins.len(),
            fmt_si(lo),
            fmt_si(hi),
            fmt_count(bins.iter().map(|b| b.2).sum()),
            fmt_si(tall_lo),
            fmt_si(tall_hi),
            fmt_count(tall_count),
        ),
        _ => format!("Histogram of {}: no data.", x_axis.title()),
    };
    let mut canvas = Canvas::new(&Frame {
        title,
        desc: &desc,
        legend: &[],
        y_axis,
        y_ticks: y_ticks.as_ref(),
        x: XAxis::Numeric {
            axis: x_axis,
            ticks: &x_ticks,
            domain: x_domain,
        },
        vertical_grid: false,
        headroom: 0.0,
    });

    let fill = colour(0);
    canvas.out.push_str("<g>\n");
    for &(lo, hi, count) in &bins {
        if count == 0 {
            continue;
        }
        let (left, right) = (canvas.x(lo), canvas.x(hi));
        // A hairline gap between neighbours, never wider than a fifth of the bar.
        let gap = ((right - left) * 0.2).min(1.0);
        let top = canvas.y(count as f64);
        let _ = writeln!(
            canvas.out,
            "<rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"{fill}\">\
             <title>{} to {}{}: {}</title></rect>",
            Num(left + gap / 2.0),
            Num(top),
            Num((right - left - gap).max(0.1)),
            Num(canvas.y(0.0) - top),
            fmt_si(lo),
            fmt_si(hi),
            crate::escape::Escaped(&unit),
            fmt_count(count),
        );
    }
    canvas.out.push_str("</g>\n");
    canvas.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chart::test_util::{assert_sound_chart, elements, number, plot_bounds};

    fn axes() -> (Axis, Axis) {
        (Axis::new("time to token", "s"), Axis::new("devices", ""))
    }

    #[test]
    fn bins_have_round_edges_and_count_every_finite_value_once() {
        let values: Vec<f64> = (0..1000).map(|i| (i as f64 * 0.37) % 61.0).collect();
        let bins = bins(&values, 12);
        assert_eq!(bins.iter().map(|b| b.2).sum::<u64>(), 1000);
        assert_eq!(bins[0].0, 0.0);
        assert!(bins.last().unwrap().1 >= 60.99);
        for pair in bins.windows(2) {
            assert_eq!(pair[0].1, pair[1].0, "bins are adjacent");
        }
        for &(lo, hi, count) in &bins {
            let inside = values.iter().filter(|&&v| v >= lo && v < hi).count() as u64;
            let last_edge = values.iter().filter(|&&v| v == hi).count() as u64;
            assert!(
                count == inside || count == inside + last_edge,
                "{lo}..{hi}: {count}"
            );
        }
    }

    #[test]
    fn the_maximum_falls_in_the_last_bin_and_non_finite_values_are_left_out() {
        assert_eq!(
            bins(&[0.0, 10.0, f64::NAN, f64::INFINITY], 2),
            [(0.0, 5.0, 1), (5.0, 10.0, 1)]
        );
        assert_eq!(bins(&[], 10), []);
        assert_eq!(bins(&[f64::NAN], 10), []);
        assert_eq!(bins(&[7.0, 7.0], 10).iter().map(|b| b.2).sum::<u64>(), 2);
    }

    #[test]
    fn a_bar_per_non_empty_bin_as_high_as_its_count() {
        let (x, y) = axes();
        let svg = histogram(
            "Time to token",
            &x,
            &y,
            &[(0.0, 10.0, 4), (10.0, 20.0, 0), (20.0, 30.0, 8)],
        );
        assert_sound_chart(&svg);
        let (left, top, right, bottom) = plot_bounds(&svg);
        let bars: Vec<_> = elements(&svg, "rect")
            .into_iter()
            .filter(|r| r["fill"] == colour(0))
            .collect();
        assert_eq!(bars.len(), 2);
        // y ticks run 0..=8 here, so 8 reaches the top and 4 half way.
        assert!((number(&bars[1], "y") - top).abs() <= 0.1);
        assert!((number(&bars[0], "height") - (bottom - top) / 2.0).abs() <= 0.1);
        for bar in &bars {
            assert!(number(bar, "x") >= left && number(bar, "x") + number(bar, "width") <= right);
        }
        assert!(svg.contains("3 bins from 0 s to 30 s, 12 in all"), "{svg}");
        assert!(svg.contains(">devices</text>") && svg.contains(">time to token (s)</text>"));
    }

    #[test]
    fn count_ticks_are_whole_numbers() {
        let (x, y) = axes();
        let svg = histogram("Few", &x, &y, &[(0.0, 1.0, 1), (1.0, 2.0, 3)]);
        assert_sound_chart(&svg);
        // Y tick labels are the end-anchored ones.
        let y_label = |v: &str| format!("text-anchor=\"end\" fill=\"#555555\">{v}</text>");
        assert!(!svg.contains(&y_label("0.5")), "{svg}");
        assert!(svg.contains(&y_label("3")), "{svg}");
    }

    #[test]
    fn no_bins_or_only_broken_bins_say_no_data() {
        let (x, y) = axes();
        for bins in [
            vec![],
            vec![(1.0, 1.0, 5), (f64::NAN, 2.0, 1), (3.0, 2.0, 1)],
        ] {
            let svg = histogram("Nothing", &x, &y, &bins);
            assert_sound_chart(&svg);
            assert!(svg.contains(">no data</text>"), "{svg}");
        }
    }

    #[test]
    fn all_empty_bins_draw_axes_without_bars() {
        let (x, y) = axes();
        let svg = histogram("Zero", &x, &y, &[(0.0, 1.0, 0), (1.0, 2.0, 0)]);
        assert_sound_chart(&svg);
        assert!(!svg.contains("no data"));
        assert!(!svg.contains("<rect x"), "{svg}");
    }

    #[test]
    fn output_is_deterministic_and_titles_escaped() {
        let (x, y) = axes();
        let data = bins(
            &(0..500).map(|i| (i * i % 97) as f64).collect::<Vec<_>>(),
            10,
        );
        let svg = histogram("<script>", &x, &y, &data);
        assert_sound_chart(&svg);
        assert!(svg.contains("<title>&lt;script&gt;</title>"));
        assert_eq!(svg, histogram("<script>", &x, &y, &data));
    }
}
