//! How charts look: sizes, colours, estimated text widths, numbers on axes
//! and value ranges.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::series::MIB;
use crate::results::Document;

pub(super) const WIDTH: u32 = 1000;
pub(super) const HEADER: u32 = 62;
pub(super) const PLOT_HEIGHT: u32 = 470;
const FONT: &str = "sans-serif";
pub(super) const LABEL_SIZE: f64 = 14.0;
/// Numbers on the axes, labels of vertical lines.
pub(super) const SMALL_SIZE: f64 = 13.0;
pub(super) const LEGEND_ROW: i32 = 22;

/// Tableau 10 (the yellow darkened to read on white), then ten darker
/// colours for long comparisons.
pub(super) const PALETTE: [RGBColor; 20] = [
    RGBColor(0x4e, 0x79, 0xa7),
    RGBColor(0xf2, 0x8e, 0x2b),
    RGBColor(0xe1, 0x57, 0x59),
    RGBColor(0x59, 0xa1, 0x4f),
    RGBColor(0xb0, 0x7a, 0xa1),
    RGBColor(0x76, 0xb7, 0xb2),
    RGBColor(0xc4, 0x9c, 0x1c),
    RGBColor(0x9c, 0x75, 0x5f),
    RGBColor(0xff, 0x7f, 0x9a),
    RGBColor(0x6f, 0x67, 0x64),
    RGBColor(0x1f, 0x3a, 0x93),
    RGBColor(0xa0, 0x52, 0x2d),
    RGBColor(0x8b, 0x1a, 0x1a),
    RGBColor(0x2e, 0x6b, 0x30),
    RGBColor(0x5b, 0x3c, 0x88),
    RGBColor(0x2a, 0x7f, 0x7a),
    RGBColor(0x80, 0x80, 0x00),
    RGBColor(0x00, 0x00, 0x00),
    RGBColor(0xc2, 0x18, 0x5b),
    RGBColor(0x37, 0x47, 0x4f),
];
pub(super) const INK: RGBColor = RGBColor(0x33, 0x33, 0x33);
pub(super) const MUTED: RGBColor = RGBColor(0x77, 0x77, 0x77);
pub(super) const GRID_BOLD: RGBColor = RGBColor(0xdd, 0xdd, 0xdd);
pub(super) const GRID_LIGHT: RGBColor = RGBColor(0xf2, 0xf2, 0xf2);

/// One colour per variant, in the order variants first appear, the same in
/// every chart of the document.
pub(super) fn colours(doc: &Document) -> BTreeMap<String, RGBColor> {
    let mut map = BTreeMap::new();
    for c in &doc.cells {
        let n = map.len();
        map.entry(c.variant.clone())
            .or_insert(PALETTE[n % PALETTE.len()]);
    }
    map
}

pub(super) fn colour_of(colours: &BTreeMap<String, RGBColor>, variant: &str) -> RGBColor {
    colours.get(variant).copied().unwrap_or(INK)
}

/// Estimated width of `s` in pixels. plotters writes SVG text at 1/1.24 of
/// the size asked for; a sans-serif character averages about 0.6 of that.
pub(super) fn text_width(s: &str, size: f64) -> i32 {
    (s.chars().count() as f64 * size * 0.5).ceil() as i32
}

pub(super) fn style(size: f64, colour: &'static RGBColor) -> TextStyle<'static> {
    TextStyle::from((FONT, size).into_font()).color(colour)
}

/// Axis numbers with as many decimals as the span needs.
pub(super) fn axis_number(v: f64, span: f64) -> String {
    let decimals = if span >= 20.0 {
        0
    } else if span >= 2.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.decimals$}");
    if s.starts_with('-') && s.trim_start_matches(['-', '0', '.']).is_empty() {
        s[1..].to_string()
    } else {
        s
    }
}

/// An idle offset: `+0s`, `+0.1s`, `+30s`.
pub(super) fn offset_label(o: f64) -> String {
    format!("+{}s", (o * 1000.0).round() / 1000.0)
}

/// A count on an axis: `0`, `500`, `20k`, `1.5M`.
pub(super) fn count(v: f64) -> String {
    let trim = |s: String| {
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_string()
        } else {
            s
        }
    };
    if v.abs() >= 1e6 {
        format!("{}M", trim(format!("{:.2}", v / 1e6)))
    } else if v.abs() >= 1e3 {
        format!("{}k", trim(format!("{:.1}", v / 1e3)))
    } else {
        format!("{v:.0}")
    }
}

/// Signed bytes, short: `+71.4 KiB`, `-1.2 MiB`, `+320 B`.
pub(super) fn signed_bytes(b: f64) -> String {
    let sign = if b < 0.0 { "-" } else { "+" };
    let a = b.abs();
    if a >= MIB {
        format!("{sign}{:.1} MiB", a / MIB)
    } else if a >= 1024.0 {
        format!("{sign}{:.1} KiB", a / 1024.0)
    } else {
        format!("{sign}{a:.0} B")
    }
}

/// A value range with a little room above (and below when negative).
pub(super) fn padded(lo: f64, hi: f64) -> std::ops::Range<f64> {
    let (lo, hi) = (lo.min(0.0), hi.max(lo));
    let span = if hi - lo > 0.0 { hi - lo } else { 1.0 };
    let lo = if lo < 0.0 { lo - span * 0.06 } else { lo };
    lo..hi + span * 0.08
}

/// The y range of a chart of `values`: [`padded`], or `0..1` when there are
/// none.
pub(super) fn y_range<'a>(values: impl Iterator<Item = &'a f64>) -> std::ops::Range<f64> {
    let (lo, hi) = bounds(values);
    if lo.is_finite() {
        padded(lo, hi)
    } else {
        0.0..1.0
    }
}

pub(super) fn bounds<'a>(values: impl Iterator<Item = &'a f64>) -> (f64, f64) {
    values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
        (lo.min(v), hi.max(v))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_on_axes() {
        assert_eq!(count(0.0), "0");
        assert_eq!(count(20_000.0), "20k");
        assert_eq!(count(1_500_000.0), "1.5M");
        assert_eq!(axis_number(1.5, 3.0), "1.5");
        assert_eq!(axis_number(-0.001, 1.0), "0.00");
        assert_eq!(signed_bytes(73_103.0), "+71.4 KiB");
        assert_eq!(signed_bytes(-3_498.0), "-3.4 KiB");
    }
}
