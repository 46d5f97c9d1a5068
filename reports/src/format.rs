//! Numbers for people: SI prefixes, counts, durations, axis ticks.
//!
//! Owns how a number is spelled in a chart, a table or a summary line. It does not
//! choose *which* numbers an axis shows: that is [`crate::svg::nice_ticks`].
//!
//! Every function here returns plain text (no markup) and never `NaN` or `inf`: a
//! value that is not finite is spelled `n/a`.

/// What a value that is not finite is spelled as.
const NOT_A_NUMBER: &str = "n/a";

/// A value with 3 significant digits and an SI prefix (`k`, `M`, `G`, `T`) when it is
/// 1,000 or more; trailing zeros dropped.
///
/// ```
/// use deviceflow_reports::format::fmt_si;
/// assert_eq!(fmt_si(12345.0), "12.3k");
/// assert_eq!(fmt_si(999.96), "1k");
/// assert_eq!(fmt_si(0.0123), "0.0123");
/// assert_eq!(fmt_si(-2_500_000.0), "-2.5M");
/// ```
pub fn fmt_si(value: f64) -> String {
    if !value.is_finite() {
        return NOT_A_NUMBER.to_owned();
    }
    let rounded = round_significant(value, 3);
    if rounded == 0.0 {
        return "0".to_owned();
    }
    let (divisor, suffix) = si_prefix(rounded.abs());
    let scaled = rounded / divisor;
    let decimals = decimals_for_significant(scaled.abs(), 3);
    format!("{}{suffix}", trim_zeros(format!("{scaled:.decimals$}")))
}

/// An axis tick label: `value` with an SI prefix like [`fmt_si`], but with as many
/// decimals as `step` (the distance between ticks) needs, so that neighbouring ticks
/// never read the same (`100k`, `100.1k`, `100.2k`).
///
/// ```
/// use deviceflow_reports::format::fmt_tick;
/// assert_eq!(fmt_tick(1500.0, 500.0), "1.5k");
/// assert_eq!(fmt_tick(100_100.0, 100.0), "100.1k");
/// assert_eq!(fmt_tick(0.30000000000000004, 0.1), "0.3");
/// ```
pub fn fmt_tick(value: f64, step: f64) -> String {
    if !value.is_finite() || !step.is_finite() {
        return NOT_A_NUMBER.to_owned();
    }
    let (divisor, suffix) = si_prefix(value.abs());
    let relative_step = (step.abs() / divisor).max(1e-12);
    let decimals = (-relative_step.log10() - 1e-9).ceil().clamp(0.0, 12.0) as usize;
    let text = trim_zeros(format!("{:.decimals$}", value / divisor));
    if text == "0" || text == "-0" {
        "0".to_owned()
    } else {
        format!("{text}{suffix}")
    }
}

/// A count with thousands separators: `1234567` → `1,234,567`.
pub fn fmt_count(count: u64) -> String {
    let digits = count.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// A duration given in seconds, in the unit a person would say it in:
/// `850 µs`, `12.3 ms`, `1.23 s`, `4 min 12 s`, `1 h 5 min`.
///
/// Below a minute it keeps 3 significant digits; from a minute on it rounds to whole
/// seconds, and from an hour on to whole minutes.
///
/// ```
/// use deviceflow_reports::format::fmt_duration;
/// assert_eq!(fmt_duration(0.000_85), "850 µs");
/// assert_eq!(fmt_duration(0.012_34), "12.3 ms");
/// assert_eq!(fmt_duration(0.999_7), "1 s");
/// assert_eq!(fmt_duration(252.0), "4 min 12 s");
/// assert_eq!(fmt_duration(3_900.0), "1 h 5 min");
/// ```
pub fn fmt_duration(seconds: f64) -> String {
    if !seconds.is_finite() {
        return NOT_A_NUMBER.to_owned();
    }
    if seconds < 0.0 {
        return format!("-{}", fmt_duration(-seconds));
    }
    let rounded = round_significant(seconds, 3);
    if rounded == 0.0 {
        return "0 s".to_owned();
    }
    if rounded < 1e-3 {
        format!("{} µs", sig3(rounded * 1e6))
    } else if rounded < 1.0 {
        format!("{} ms", sig3(rounded * 1e3))
    } else if rounded < 60.0 {
        format!("{} s", sig3(rounded))
    } else if seconds.round() < 3600.0 {
        let whole = seconds.round() as u64;
        match (whole / 60, whole % 60) {
            (minutes, 0) => format!("{minutes} min"),
            (minutes, secs) => format!("{minutes} min {secs} s"),
        }
    } else {
        let whole_minutes = (seconds / 60.0).round() as u64;
        match (whole_minutes / 60, whole_minutes % 60) {
            (hours, 0) => format!("{hours} h"),
            (hours, minutes) => format!("{hours} h {minutes} min"),
        }
    }
}

/// A duration given in milliseconds, spelled as [`fmt_duration`] does: `fmt_ms(1234.0)`
/// is `1.23 s`.
pub fn fmt_ms(milliseconds: f64) -> String {
    fmt_duration(milliseconds / 1e3)
}

/// `value` (already rounded to 3 significant digits) with 3 significant digits and no
/// trailing zeros.
fn sig3(value: f64) -> String {
    let decimals = decimals_for_significant(value.abs(), 3);
    trim_zeros(format!("{value:.decimals$}"))
}

fn si_prefix(abs: f64) -> (f64, &'static str) {
    match abs {
        a if a >= 1e12 => (1e12, "T"),
        a if a >= 1e9 => (1e9, "G"),
        a if a >= 1e6 => (1e6, "M"),
        a if a >= 1e3 => (1e3, "k"),
        _ => (1.0, ""),
    }
}

/// How many decimals show `significant` digits of `abs`.
fn decimals_for_significant(abs: f64, significant: i32) -> usize {
    if abs == 0.0 {
        return 0;
    }
    let integer_digits = abs.log10().floor() as i32 + 1;
    (significant - integer_digits).clamp(0, 12) as usize
}

fn round_significant(value: f64, significant: i32) -> f64 {
    if value == 0.0 || !value.is_finite() {
        return value;
    }
    let exponent = value.abs().log10().floor() as i32 + 1 - significant;
    // Dividing by an exact power of ten (rather than multiplying by its inexact
    // inverse) keeps 0.3 from becoming 0.30000000000000004.
    if exponent < 0 {
        let scale = 10f64.powi(-exponent);
        (value * scale).round() / scale
    } else {
        let scale = 10f64.powi(exponent);
        (value / scale).round() * scale
    }
}

fn trim_zeros(text: String) -> String {
    if !text.contains('.') {
        return text;
    }
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn si_keeps_three_significant_digits_and_a_prefix() {
        let cases = [
            (0.0, "0"),
            (1.0, "1"),
            (12.345, "12.3"),
            (123.45, "123"),
            (1234.0, "1.23k"),
            (12345.0, "12.3k"),
            (123_456.0, "123k"),
            (1_234_567.0, "1.23M"),
            (2.5e9, "2.5G"),
            (0.5, "0.5"),
            (0.0123, "0.0123"),
            (-1500.0, "-1.5k"),
        ];
        for (value, expected) in cases {
            assert_eq!(fmt_si(value), expected, "fmt_si({value})");
        }
    }

    #[test]
    fn si_moves_to_the_next_prefix_when_rounding_reaches_a_thousand() {
        assert_eq!(fmt_si(999.6), "1k");
        assert_eq!(fmt_si(999_600.0), "1M");
    }

    #[test]
    fn non_finite_values_are_spelled_not_available() {
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(fmt_si(value), "n/a");
            assert_eq!(fmt_tick(value, 1.0), "n/a");
            assert_eq!(fmt_duration(value), "n/a");
        }
    }

    #[test]
    fn ticks_have_as_many_decimals_as_their_step_needs() {
        let cases = [
            (0.0, 500.0, "0"),
            (500.0, 500.0, "500"),
            (1000.0, 500.0, "1k"),
            (1500.0, 500.0, "1.5k"),
            (100_100.0, 100.0, "100.1k"),
            (0.2, 0.2, "0.2"),
            (0.15, 0.05, "0.15"),
            (0.1 + 0.2, 0.1, "0.3"),
            (-0.0, 1.0, "0"),
            (-20.0, 10.0, "-20"),
            (4_000_000.0, 2_000_000.0, "4M"),
        ];
        for (value, step, expected) in cases {
            assert_eq!(fmt_tick(value, step), expected, "fmt_tick({value}, {step})");
        }
    }

    #[test]
    fn counts_get_thousands_separators() {
        assert_eq!(fmt_count(0), "0");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_count(1000), "1,000");
        assert_eq!(fmt_count(1_234_567), "1,234,567");
        assert_eq!(fmt_count(u64::MAX), "18,446,744,073,709,551,615");
    }

    #[test]
    fn durations_are_spelled_in_the_unit_a_person_would_use() {
        let cases = [
            (0.0, "0 s"),
            (0.000_000_5, "0.5 µs"),
            (0.000_85, "850 µs"),
            (0.012_34, "12.3 ms"),
            (0.25, "250 ms"),
            (0.999_7, "1 s"),
            (1.234, "1.23 s"),
            (59.4, "59.4 s"),
            (60.0, "1 min"),
            (252.4, "4 min 12 s"),
            (3_599.6, "1 h"),
            (3_900.0, "1 h 5 min"),
            (-0.5, "-500 ms"),
        ];
        for (seconds, expected) in cases {
            assert_eq!(fmt_duration(seconds), expected, "fmt_duration({seconds})");
        }
        assert_eq!(fmt_ms(1234.0), "1.23 s");
        assert_eq!(fmt_ms(4.56), "4.56 ms");
    }
}
