//! The chart kinds, each a function from data to one `<svg>` element.
//!
//! Owns the data types charts take ([`Series`], [`Axis`], [`BarSeries`], histogram
//! bins) and what each kind plots. It does not own the frame (title, legend, axes,
//! ticks), which all kinds share through [`crate::svg`], nor the page a chart goes on.
//!
//! Every chart:
//! - is an `<svg>` element with a `<title>` and a `<desc>` (what it shows, in words) for
//!   screen readers, a fixed 600-unit-wide `viewBox` and no scripts, styles or ids, so
//!   it can be inlined in a page or saved as an `.svg` file as is;
//! - says "no data" when it has nothing to plot, rather than drawing empty axes;
//! - skips points that are not finite (`NaN`, `inf`): none reach the output;
//! - is deterministic: the same input gives byte-identical output.

mod bar;
mod histogram;
mod line;
mod stacked_area;

/// The axes a chart is given are drawn by its frame, in `svg.rs`.
pub use crate::svg::Axis;
pub use bar::{bar_chart, grouped_bar_chart, BarSeries};
pub use histogram::{bins, histogram};
pub use line::line_chart;
pub use stacked_area::stacked_area_chart;

/// A named sequence of `(x, y)` points: one line, or one layer of a stacked area.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Shown in the legend.
    pub name: String,
    /// Drawn in the order given.
    pub points: Vec<(f64, f64)>,
}

impl Series {
    /// A series named `name`.
    pub fn new(name: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            name: name.into(),
            points,
        }
    }

    /// The points with both coordinates finite.
    pub(crate) fn finite_points(&self) -> impl Iterator<Item = (f64, f64)> + '_ {
        self.points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
    }
}

/// The `(min, max)` of `values`, or `None` when there are none.
pub(crate) fn extent(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    values.into_iter().fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// A list of names for a description: `a, b and c`.
pub(crate) fn name_list<'a>(names: impl IntoIterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.into_iter().collect();
    match names.split_last() {
        None => String::new(),
        Some((last, [])) => (*last).to_owned(),
        Some((last, rest)) => format!("{} and {last}", rest.join(", ")),
    }
}

/// How many ticks an axis of the plot width gets: one per ~90 units.
pub(crate) const X_TICK_TARGET: usize = 7;
/// How many ticks a y axis gets.
pub(crate) const Y_TICK_TARGET: usize = 5;

#[cfg(test)]
pub(crate) mod test_util {
    //! Assertions shared by the chart kinds' tests.

    use std::collections::BTreeMap;

    use crate::test_support::assert_well_formed_svg;

    /// Every chart is well-formed, titled, described, script-free, id-free (so that
    /// many can share a page) and has only finite numbers in its attributes.
    pub fn assert_sound_chart(svg: &str) {
        assert_well_formed_svg(svg);
        assert!(
            svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{svg}"
        );
        assert!(svg.contains("<title>") && svg.contains("<desc>"), "{svg}");
        for bad in ["NaN", "<script", " id=", " style="] {
            assert!(!svg.contains(bad), "chart contains {bad:?}:\n{svg}");
        }
        for (at, _) in svg.match_indices("=\"") {
            let value = &svg[at + 2..];
            let value = &value[..value.find('"').unwrap()];
            assert!(
                !value.contains("inf"),
                "attribute value {value:?} in:\n{svg}"
            );
        }
    }

    /// The attributes of every `<name …>` element in `svg`, in document order.
    pub fn elements(svg: &str, name: &str) -> Vec<BTreeMap<String, String>> {
        let open = format!("<{name} ");
        svg.match_indices(&open)
            .map(|(at, _)| {
                let mut rest = &svg[at + open.len()..];
                let mut attributes = BTreeMap::new();
                while let Some(eq) = rest.find("=\"") {
                    if rest[..eq].contains('>') {
                        break;
                    }
                    let key = rest[..eq].trim().to_owned();
                    let value_end = rest[eq + 2..].find('"').unwrap();
                    attributes.insert(key, rest[eq + 2..eq + 2 + value_end].to_owned());
                    rest = &rest[eq + 3 + value_end..];
                }
                attributes
            })
            .collect()
    }

    /// The number in attribute `key` of `element`.
    pub fn number(element: &BTreeMap<String, String>, key: &str) -> f64 {
        element[key]
            .parse()
            .unwrap_or_else(|_| panic!("{key} of {element:?}"))
    }

    /// The plot area, `(left, top, right, bottom)`, from its horizontal gridlines.
    pub fn plot_bounds(svg: &str) -> (f64, f64, f64, f64) {
        let grid: Vec<_> = elements(svg, "line")
            .into_iter()
            .filter(|l| l["stroke"] == "#e3e3e3" && l["y1"] == l["y2"])
            .collect();
        assert!(!grid.is_empty(), "no gridlines in {svg}");
        let ys: Vec<f64> = grid.iter().map(|l| number(l, "y1")).collect();
        (
            number(&grid[0], "x1"),
            ys.iter().cloned().fold(f64::MAX, f64::min),
            number(&grid[0], "x2"),
            ys.iter().cloned().fold(f64::MIN, f64::max),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_titles_carry_their_unit() {
        assert_eq!(Axis::new("time", "s").title(), "time (s)");
        assert_eq!(Axis::new("latency", "ms").title(), "latency (ms)");
        assert_eq!(
            Axis::new("polls per second", "").title(),
            "polls per second"
        );
    }

    #[test]
    fn name_lists_read_as_a_sentence() {
        assert_eq!(name_list([]), "");
        assert_eq!(name_list(["p50"]), "p50");
        assert_eq!(name_list(["p50", "p90", "p99"]), "p50, p90 and p99");
    }

    #[test]
    fn extent_is_none_without_values() {
        assert_eq!(extent([]), None);
        assert_eq!(extent([3.0, -1.0, 2.0]), Some((-1.0, 3.0)));
    }
}
