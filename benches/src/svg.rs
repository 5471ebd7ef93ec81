//! Minimal horizontal bar charts as SVG, for the figures committed under `docs/`.
//!
//! Hand-written (a few dozen lines) rather than a plotting crate: the charts are one bar per
//! contender with its value printed beside it, and the file must not change between runs
//! except where the figures do.

use std::fmt::Write as _;

/// Renders `bars` (label, value) as a horizontal bar chart titled `title`, values in `unit`.
/// The first bar (wheelbeat, or the floor) is drawn in a different colour.
pub fn bar_chart(title: &str, unit: &str, bars: &[(&str, f64)]) -> String {
    let (left, bar_h, gap, width) = (150.0, 22.0, 8.0, 420.0);
    let top = 40.0;
    let height = top + bars.len() as f64 * (bar_h + gap) + 10.0;
    let max = bars
        .iter()
        .map(|&(_, v)| v)
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max)
        .max(f64::MIN_POSITIVE);
    let mut svg = String::new();
    let total_w = left + width + 120.0;
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{height}" font-family="sans-serif" font-size="13">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect width="100%" height="100%" fill="white"/><text x="10" y="22" font-size="15" font-weight="bold">{}</text>"#,
        escape(title)
    );
    for (i, &(label, value)) in bars.iter().enumerate() {
        let y = top + i as f64 * (bar_h + gap);
        let w = if value.is_finite() {
            value / max * width
        } else {
            0.0
        };
        let fill = if i == 0 { "#2a7ab9" } else { "#9aa5b1" };
        let _ = writeln!(
            svg,
            r#"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{left}" y="{y}" width="{w:.1}" height="{bar_h}" fill="{fill}"/><text x="{:.1}" y="{}">{} {}</text>"#,
            left - 8.0,
            y + bar_h * 0.72,
            escape(label),
            left + w + 6.0,
            y + bar_h * 0.72,
            format_value(value),
            escape(unit)
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn format_value(v: f64) -> String {
    if !v.is_finite() {
        "n/a".into()
    } else if v >= 100.0 {
        format!("{v:.0}")
    } else if v >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_has_one_bar_per_value_and_escapes_labels() {
        let svg = bar_chart("t <x>", "ms", &[("a&b", 2.0), ("c", 1.0), ("d", f64::NAN)]);
        assert_eq!(svg.matches("<rect ").count(), 4); // background + 3 bars
        assert!(svg.contains("a&amp;b") && svg.contains("t &lt;x&gt;") && svg.contains("n/a"));
    }
}
