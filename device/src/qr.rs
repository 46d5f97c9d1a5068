//! QR codes of `verification_uri_complete` (RFC 8628 §3.3.1: "the authorization server
//! MAY ... present it as a QR code"), drawn two ways from the qrcode crate's modules:
//! inline SVG for the device-display page, and Unicode half-blocks for a terminal.
//!
//! Both keep the 4-module quiet zone the QR standard asks for, dark modules on light,
//! which is what phone cameras read reliably.

use qrcode::{Color, EcLevel, QrCode};

/// Modules of light margin around the code (ISO/IEC 18004 §6.3.8).
const QUIET_ZONE: usize = 4;

/// Why a QR code could not be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the text is too long for a QR code")]
pub struct TooLong;

/// The dark/light modules of `text`, with the quiet zone, row by row.
struct Modules {
    width: usize,
    dark: Vec<bool>,
}

impl Modules {
    fn of(text: &str) -> Result<Modules, TooLong> {
        // Level M: 15% of the code can be damaged or glared and it still reads.
        let code = QrCode::with_error_correction_level(text, EcLevel::M).map_err(|_| TooLong)?;
        let inner = code.width();
        let width = inner + 2 * QUIET_ZONE;
        let mut dark = vec![false; width * width];
        for (i, color) in code.to_colors().into_iter().enumerate() {
            let (x, y) = (i % inner + QUIET_ZONE, i / inner + QUIET_ZONE);
            dark[y * width + x] = color == Color::Dark;
        }
        Ok(Modules { width, dark })
    }

    fn is_dark(&self, x: usize, y: usize) -> bool {
        x < self.width && y < self.width && self.dark[y * self.width + x]
    }
}

/// An inline `<svg>` of the QR code of `text`, scaling to its container. `label` is its
/// accessible name, already escaped for an XML attribute by the caller (who knows its
/// page's escaping). One `<path>` of horizontal runs keeps it small.
pub fn svg(text: &str, label: &str) -> Result<String, TooLong> {
    let m = Modules::of(text)?;
    let mut path = String::new();
    for y in 0..m.width {
        let mut x = 0;
        while x < m.width {
            if !m.is_dark(x, y) {
                x += 1;
                continue;
            }
            let start = x;
            while m.is_dark(x, y) {
                x += 1;
            }
            path.push_str(&format!("M{start} {y}h{}v1h-{}z", x - start, x - start));
        }
    }
    Ok(format!(
        concat!(
            r##"<svg class="qr" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {w}" "##,
            r##"role="img" aria-label="{label}" shape-rendering="crispEdges">"##,
            r##"<rect width="{w}" height="{w}" fill="#fff"/>"##,
            r##"<path fill="#000" d="{path}"/></svg>"##
        ),
        w = m.width,
        label = label,
        path = path
    ))
}

/// The QR code of `text` in Unicode half-blocks, two module rows per line, for a
/// terminal. With `ansi`, the code is painted black on white whatever the terminal's
/// colours; without, dark modules are drawn as ink, as on paper (for a light terminal
/// or a file).
pub fn terminal(text: &str, ansi: bool) -> Result<String, TooLong> {
    let m = Modules::of(text)?;
    let mut out = String::new();
    for y in (0..m.width).step_by(2) {
        if ansi {
            out.push_str("\x1b[30;107m");
        }
        for x in 0..m.width {
            out.push(match (m.is_dark(x, y), m.is_dark(x, y + 1)) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        if ansi {
            out.push_str("\x1b[0m");
        }
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const URI: &str = "http://127.0.0.1:8080/device?user_code=WDJB-MJHT";

    #[test]
    fn svg_is_a_square_with_a_quiet_zone_and_an_accessible_name() {
        let s = svg(URI, "QR code for &lt;the&gt; page").unwrap();
        let code = QrCode::with_error_correction_level(URI, EcLevel::M).unwrap();
        let w = code.width() + 8;
        assert!(s.contains(&format!(r#"viewBox="0 0 {w} {w}""#)), "{s}");
        assert!(s.contains(r#"aria-label="QR code for &lt;the&gt; page""#));
        // The top-left finder pattern starts right after the quiet zone.
        assert!(s.contains("M4 4h7v1h-7z"), "{s}");
    }

    #[test]
    fn terminal_rendering_has_one_line_per_two_module_rows() {
        let t = terminal(URI, false).unwrap();
        let w = QrCode::with_error_correction_level(URI, EcLevel::M)
            .unwrap()
            .width()
            + 8;
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), w.div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() == w));
        // Quiet zone: the first two lines are blank.
        assert!(lines[0].chars().all(|c| c == ' '));
        // Line 2 holds module rows 4 and 5: the finder pattern's top edge over its
        // hollow second row.
        let finder: String = lines[2].chars().skip(4).take(7).collect();
        assert_eq!(finder, "█▀▀▀▀▀█");
        let coloured = terminal(URI, true).unwrap();
        assert!(coloured.starts_with("\x1b[30;107m"));
    }

    #[test]
    fn text_beyond_a_qr_codes_capacity_is_an_error() {
        assert_eq!(svg(&"x".repeat(5000), "x"), Err(TooLong));
    }
}
