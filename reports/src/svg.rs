//! Chart primitives: the palette, nice ticks, linear scales, and the frame every chart
//! draws into (title, legend, axes, gridlines).
//!
//! Owns geometry and the look shared by all charts. It does not own what a chart kind
//! plots (see [`crate::chart`]), nor how a tick number is spelled (see
//! [`crate::format`]).
//!
//! Text widths are estimated, not measured (there is no font here): from per-glyph
//! widths a little above DejaVu Sans's, the widest of the common system sans-serif
//! fonts the charts ask for, so labels get a little more room than they need, not less.

use std::fmt;

use crate::format::fmt_tick;

mod frame;

/// What an axis measures and in which unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Axis {
    /// What is measured: `time`, `latency`, `polls per second`.
    pub label: String,
    /// Its unit, shown in parentheses after the label: `s`, `ms`. Leave it empty only
    /// when the label already says it (`polls per second`, `devices`).
    pub unit: String,
}

impl Axis {
    /// An axis measuring `label` in `unit`.
    pub fn new(label: impl Into<String>, unit: impl Into<String>) -> Axis {
        Axis {
            label: label.into(),
            unit: unit.into(),
        }
    }

    /// The text drawn on the chart: `time (s)`, or the label alone when there is no
    /// unit.
    pub fn title(&self) -> String {
        if self.unit.is_empty() {
            self.label.clone()
        } else {
            format!("{} ({})", self.label, self.unit)
        }
    }
}

#[cfg(test)]
pub(crate) use frame::FONT_SIZE;
pub(crate) use frame::{Canvas, Frame, LegendItem, Mark, XAxis};

/// The Okabe-Ito palette, which stays distinguishable under the common forms of colour
/// blindness, in the order series get it: the strong colours first, yellow (weak on
/// white) and black (reads as an axis) last.
pub const PALETTE: [&str; 8] = [
    "#0072B2", // blue
    "#E69F00", // orange
    "#009E73", // bluish green
    "#D55E00", // vermillion
    "#CC79A7", // reddish purple
    "#56B4E9", // sky blue
    "#F0E442", // yellow
    "#000000", // black
];

/// The colour of the series at `index`; past the palette's end the colours repeat
/// (and lines get a dash pattern, so that repeats stay apart).
pub fn colour(index: usize) -> &'static str {
    PALETTE[index % PALETTE.len()]
}

/// The `stroke-dasharray` of the line series at `index`: none for the first round of
/// the palette, then a different pattern for each later round.
pub(crate) fn dash(index: usize) -> Option<&'static str> {
    const PATTERNS: [&str; 3] = ["6 3", "2 3", "8 3 2 3"];
    match index / PALETTE.len() {
        0 => None,
        round => Some(PATTERNS[(round - 1) % PATTERNS.len()]),
    }
}

/// Round tick values for an axis: `values` are consecutive multiples of `step`, and
/// `step` is 1, 2 or 5 times a power of ten.
#[derive(Debug, Clone, PartialEq)]
pub struct Ticks {
    /// The tick values, ascending; the first is at or below the data's minimum and the
    /// last at or above its maximum.
    pub values: Vec<f64>,
    /// The distance between two ticks.
    pub step: f64,
}

impl Ticks {
    /// The lowest tick: where the axis starts.
    pub fn first(&self) -> f64 {
        self.values.first().copied().unwrap_or(0.0)
    }

    /// The highest tick: where the axis ends.
    pub fn last(&self) -> f64 {
        self.values.last().copied().unwrap_or(1.0)
    }

    /// The tick labels, spelled by [`fmt_tick`].
    pub fn labels(&self) -> Vec<String> {
        self.values
            .iter()
            .map(|&v| fmt_tick(v, self.step))
            .collect()
    }
}

/// Round ticks covering `min..=max`, about `target` of them (never fewer than 2, at
/// most `target + 2`).
///
/// A range of zero width (one point, or all values equal) is widened so that the axis
/// still has two ticks: `0..=0` becomes `0..=1`, and `v..=v` becomes `v/2..=3v/2`.
/// Values that are not finite are treated as `0..=1`, so ticks are always finite.
///
/// ```
/// let ticks = deviceflow_reports::svg::nice_ticks(0.0, 57.0, 6);
/// assert_eq!(ticks.values, [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
/// ```
pub fn nice_ticks(min: f64, max: f64, target: usize) -> Ticks {
    ticks_with_min_step(min, max, target, 0.0)
}

/// Ticks for an axis that ends where the data ends (a time axis should not run on
/// past the end of the run): the returned domain is `min..=max`, and the ticks are
/// the round ones of [`nice_ticks`] that fall inside it. A range of zero width is
/// widened as [`nice_ticks`] widens it.
pub(crate) fn ticks_inside(min: f64, max: f64, target: usize) -> (Ticks, (f64, f64)) {
    let covering = nice_ticks(min, max, target);
    let degenerate = !(min.is_finite() && max.is_finite())
        || (max - min).abs() <= f64::EPSILON * max.abs().max(min.abs())
        || !(max - min).is_finite();
    let domain = if degenerate {
        (covering.first(), covering.last())
    } else {
        (min.min(max), max.max(min))
    };
    let tolerance = covering.step * 1e-9;
    let values = covering
        .values
        .into_iter()
        .filter(|&v| v >= domain.0 - tolerance && v <= domain.1 + tolerance)
        .collect();
    let ticks = Ticks {
        values,
        step: covering.step,
    };
    (ticks, domain)
}

/// [`nice_ticks`] for counts: the step is at least 1, so no tick reads `0.5 devices`.
pub(crate) fn integer_ticks(min: f64, max: f64, target: usize) -> Ticks {
    ticks_with_min_step(min, max, target, 1.0)
}

fn ticks_with_min_step(min: f64, max: f64, target: usize, min_step: f64) -> Ticks {
    // Clamped so that `hi - lo` below cannot overflow to infinity.
    const LIMIT: f64 = 1e300;
    let (mut lo, mut hi) = if min.is_finite() && max.is_finite() {
        (min.min(max).max(-LIMIT), max.max(min).min(LIMIT))
    } else {
        (0.0, 1.0)
    };
    if hi - lo <= f64::EPSILON * hi.abs().max(lo.abs()) {
        if lo == 0.0 {
            hi = 1.0;
        } else {
            let half = lo.abs() / 2.0;
            (lo, hi) = (lo - half, hi + half);
        }
    }
    let target = target.max(1) as f64;
    let raw = ((hi - lo) / target).max(min_step);
    let exponent = raw.log10().floor() as i32;
    let magnitude = 10f64.powi(exponent);
    let multiplier: i64 = match raw / magnitude {
        n if n <= 1.0 => 1,
        n if n <= 2.0 => 2,
        n if n <= 5.0 => 5,
        _ => 10,
    };
    let step = multiplier as f64 * magnitude;
    // The tolerance keeps 0.30000000000000004 from earning a tick of its own.
    let first = (lo / step + 1e-9).floor() as i64;
    let last = ((hi / step - 1e-9).ceil() as i64).max(first + 1);
    // `i * multiplier` scaled by an exact power of ten (divided, not multiplied by an
    // inexact inverse) so that ticks are the decimals they look like: 0.3, not
    // 0.30000000000000004.
    let tick = |i: i64| {
        let units = (i * multiplier) as f64;
        if exponent < 0 {
            units / 10f64.powi(-exponent)
        } else {
            units * magnitude
        }
    };
    Ticks {
        values: (first..=last).map(tick).collect(),
        step,
    }
}

/// Maps a data interval (`domain`) linearly onto a pixel interval (`range`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    domain: (f64, f64),
    range: (f64, f64),
}

impl Scale {
    /// A scale from `domain` onto `range`; a domain of zero width maps everything to
    /// the start of the range.
    pub fn new(domain: (f64, f64), range: (f64, f64)) -> Scale {
        Scale { domain, range }
    }

    /// Where `value` lands in the range.
    pub fn map(&self, value: f64) -> f64 {
        let (d0, d1) = self.domain;
        let (r0, r1) = self.range;
        if d1 == d0 {
            return r0;
        }
        r0 + (value - d0) / (d1 - d0) * (r1 - r0)
    }
}

/// A coordinate or length written into SVG: at most one decimal, no `-0`, and never
/// `NaN` or `inf` (a value that is not finite, which the charts never produce, would be
/// written as `0` rather than make the document invalid).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Num(pub f64);

impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_assert!(
            self.0.is_finite(),
            "a chart computed a non-finite coordinate"
        );
        let tenths = if self.0.is_finite() {
            (self.0 * 10.0).round()
        } else {
            0.0
        };
        if tenths == 0.0 {
            f.write_str("0")
        } else if tenths % 10.0 == 0.0 {
            write!(f, "{}", tenths / 10.0)
        } else {
            write!(f, "{:.1}", tenths / 10.0)
        }
    }
}

/// The estimated width of `text` at `font_size`; see the module docs.
pub(crate) fn text_width(text: &str, font_size: f64) -> f64 {
    let ems: f64 = text
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' | ' ' => 0.32,
            'f' | 't' | 'r' | 'I' | '(' | ')' | '[' | ']' | '-' | '/' => 0.42,
            'm' | 'w' | 'M' | 'W' | '%' | '@' => 0.98,
            '0'..='9' => 0.64,
            'A'..='Z' => 0.76,
            c if c.is_ascii() => 0.64,
            // CJK and other wide scripts.
            c if c >= '\u{2E80}' => 1.0,
            _ => 0.7,
        })
        .sum();
    ems * font_size * 1.05
}

/// `text` cut, with an ellipsis, to fit `max_width` at `font_size`.
pub(crate) fn fit(text: &str, max_width: f64, font_size: f64) -> std::borrow::Cow<'_, str> {
    if text_width(text, font_size) <= max_width {
        return text.into();
    }
    let mut kept = String::new();
    for c in text.chars() {
        kept.push(c);
        if text_width(&kept, font_size) + text_width("…", font_size) > max_width {
            kept.pop();
            break;
        }
    }
    format!("{kept}…").into()
}

/// `text` cut to at most `max_chars` characters, with an ellipsis when cut.
pub(crate) fn truncate(text: &str, max_chars: usize) -> std::borrow::Cow<'_, str> {
    if text.chars().count() <= max_chars {
        return text.into();
    }
    let kept: String = text.chars().take(max_chars.saturating_sub(1)).collect();
    format!("{kept}…").into()
}

/// A ` stroke-dasharray="…"` attribute, or nothing.
pub(crate) struct DashAttr(pub Option<&'static str>);

impl fmt::Display for DashAttr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(pattern) => write!(f, " stroke-dasharray=\"{pattern}\""),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether `step` is 1, 2 or 5 times a power of ten.
    fn is_round(step: f64) -> bool {
        let magnitude = 10f64.powi(step.log10().floor() as i32);
        let leading = step / magnitude;
        [1.0, 2.0, 5.0, 10.0]
            .iter()
            .any(|m| (leading - m).abs() < 1e-9)
    }

    #[test]
    fn ticks_are_round_numbers_covering_the_data_range() {
        let ranges = [
            (0.0, 57.0),
            (0.0, 1.0),
            (0.0, 0.003),
            (3.2, 3.7),
            (0.0, 12_345.0),
            (-40.0, 95.0),
            (1e6, 1.2e6),
            (0.0, 999.0),
            (17.0, 17.5),
            (0.0, 3600.0),
            (-0.5, -0.1),
        ];
        for (min, max) in ranges {
            for target in [2, 4, 5, 8] {
                let ticks = nice_ticks(min, max, target);
                assert!(is_round(ticks.step), "step {} for {min}..{max}", ticks.step);
                assert!(
                    ticks.first() <= min,
                    "{:?} starts above {min}",
                    ticks.values
                );
                assert!(ticks.last() >= max, "{:?} ends below {max}", ticks.values);
                assert!(
                    (2..=target + 2).contains(&ticks.values.len()),
                    "{} ticks for target {target}: {:?}",
                    ticks.values.len(),
                    ticks.values
                );
                for pair in ticks.values.windows(2) {
                    assert!(((pair[1] - pair[0]) - ticks.step).abs() <= ticks.step * 1e-9);
                }
                for &value in &ticks.values {
                    let multiple = value / ticks.step;
                    assert!(
                        (multiple - multiple.round()).abs() < 1e-6,
                        "{value} is off-step"
                    );
                }
            }
        }
    }

    #[test]
    fn ticks_are_the_decimals_they_look_like() {
        assert_eq!(
            nice_ticks(0.0, 0.5, 5).values,
            [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
        );
        assert_eq!(
            nice_ticks(0.0, 57.0, 6).values,
            [0.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]
        );
    }

    #[test]
    fn degenerate_ranges_still_get_two_finite_ticks() {
        for (min, max) in [
            (0.0, 0.0),
            (5.0, 5.0),
            (-3.0, -3.0),
            (f64::NAN, 1.0),
            (0.0, f64::INFINITY),
        ] {
            let ticks = nice_ticks(min, max, 5);
            assert!(ticks.values.len() >= 2, "{min}..{max}: {:?}", ticks.values);
            assert!(
                ticks.values.iter().all(|v| v.is_finite()),
                "{min}..{max}: {:?}",
                ticks.values
            );
            assert!(ticks.first() < ticks.last());
            if min.is_finite() && max.is_finite() {
                assert!(ticks.first() <= min && ticks.last() >= max);
            }
        }
        let huge = nice_ticks(-f64::MAX, f64::MAX, 5);
        assert!(huge.values.iter().all(|v| v.is_finite()) && huge.step.is_finite());
    }

    #[test]
    fn ticks_inside_keep_the_data_range_as_the_domain() {
        let (ticks, domain) = ticks_inside(0.0, 180.0, 7);
        assert_eq!(domain, (0.0, 180.0));
        assert_eq!(ticks.values, [0.0, 50.0, 100.0, 150.0]);
        let (ticks, domain) = ticks_inside(3.0, 3.0, 7);
        assert_eq!(domain, (ticks.first(), ticks.last()));
        assert!(domain.0 < 3.0 && domain.1 > 3.0);
        for (min, max) in [(0.95, 1.05), (17.0, 17.5), (0.0, 3600.0), (-7.0, 13.0)] {
            let (ticks, _) = ticks_inside(min, max, 7);
            assert!(ticks.values.len() >= 2, "{min}..{max}: {:?}", ticks.values);
            assert!(ticks.values.iter().all(|&v| v >= min && v <= max));
        }
    }

    #[test]
    fn integer_ticks_never_step_below_one() {
        let ticks = integer_ticks(0.0, 3.0, 5);
        assert_eq!(ticks.values, [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(integer_ticks(0.0, 0.0, 5).values, [0.0, 1.0]);
    }

    #[test]
    fn scales_map_linearly_and_survive_an_empty_domain() {
        let scale = Scale::new((0.0, 10.0), (100.0, 0.0));
        assert_eq!(scale.map(0.0), 100.0);
        assert_eq!(scale.map(2.5), 75.0);
        assert_eq!(scale.map(10.0), 0.0);
        assert_eq!(Scale::new((3.0, 3.0), (0.0, 50.0)).map(3.0), 0.0);
    }

    #[test]
    fn coordinates_have_one_decimal_and_no_negative_zero() {
        assert_eq!(Num(12.0).to_string(), "12");
        assert_eq!(Num(12.34).to_string(), "12.3");
        assert_eq!(Num(-0.01).to_string(), "0");
        assert_eq!(Num(-3.25).to_string(), "-3.3");
        assert_eq!(Num(0.05).to_string(), "0.1");
    }

    #[test]
    fn long_text_is_cut_with_an_ellipsis() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        let long = "w".repeat(100);
        let cut = fit(&long, 200.0, 13.0);
        assert!(
            cut.ends_with('…') && text_width(&cut, 13.0) <= 200.0,
            "{cut}"
        );
        assert_eq!(fit("short", 200.0, 13.0), "short");
    }

    #[test]
    fn colours_repeat_past_the_palette_with_a_dash() {
        assert_eq!(colour(0), PALETTE[0]);
        assert_eq!(colour(PALETTE.len()), PALETTE[0]);
        assert_eq!(dash(PALETTE.len() - 1), None);
        assert!(dash(PALETTE.len()).is_some());
        assert_ne!(dash(PALETTE.len()), dash(2 * PALETTE.len()));
    }
}
