//! Drawing blocks shared by the charts: the image frame with title and
//! legend, axes, labelled vertical lines, lines and phase markers.

use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::series::Marker;
use super::style::*;

pub(super) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
pub(super) type Chart<'a, 'b> =
    ChartContext<'a, SVGBackend<'b>, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// What a legend entry shows before its text.
#[derive(Clone, Copy)]
pub(super) enum Swatch {
    Line(RGBColor),
    Dashed(RGBColor),
    Marker(Marker, RGBColor),
}

/// Legend entries; a new row starts at each index of `breaks`.
pub(super) struct Legend(pub(super) Vec<(Swatch, String)>, pub(super) Vec<usize>);

impl Legend {
    const SWATCH: i32 = 26;
    const GAP: i32 = 22;

    fn entry_width(text: &str) -> i32 {
        Self::SWATCH + 6 + text_width(text, LABEL_SIZE)
    }

    /// Rows of entry indices, filled left to right within `width`.
    fn rows(&self, width: i32) -> Vec<Vec<usize>> {
        let mut rows: Vec<Vec<usize>> = Vec::new();
        let mut used = width;
        for (i, (_, text)) in self.0.iter().enumerate() {
            let w = Self::entry_width(text);
            if used + w > width || rows.is_empty() || self.1.contains(&i) {
                rows.push(Vec::new());
                used = 0;
            }
            rows.last_mut().expect("a row").push(i);
            used += w + Self::GAP;
        }
        rows
    }

    fn height(&self) -> u32 {
        if self.0.is_empty() {
            return 0;
        }
        (self.rows(WIDTH as i32 - 80).len() as i32 * LEGEND_ROW + 16) as u32
    }

    /// Draws the entries centred in rows on `area` (pixel coordinates).
    fn draw(&self, area: &Area) -> anyhow::Result<()> {
        let (w, _) = area.dim_in_pixel();
        for (r, row) in self.rows(w as i32 - 80).iter().enumerate() {
            let total: i32 = row
                .iter()
                .map(|&i| Self::entry_width(&self.0[i].1) + Self::GAP)
                .sum::<i32>()
                - Self::GAP;
            let mut x = (w as i32 - total) / 2;
            let y = 8 + r as i32 * LEGEND_ROW + LEGEND_ROW / 2;
            for &i in row {
                let (swatch, text) = &self.0[i];
                let (x0, x1) = (x, x + Self::SWATCH);
                match *swatch {
                    Swatch::Line(c) => {
                        area.draw(&PathElement::new(vec![(x0, y), (x1, y)], c.stroke_width(3)))?
                    }
                    Swatch::Dashed(c) => area.draw(&DashedPathElement::new(
                        vec![(x0, y), (x1, y)],
                        5,
                        3,
                        c.stroke_width(2),
                    ))?,
                    Swatch::Marker(m, c) => draw_marker(area, ((x0 + x1) / 2, y), m, c)?,
                }
                area.draw(&Text::new(
                    text.clone(),
                    (x1 + 6, y),
                    style(LABEL_SIZE, &INK).pos(Pos::new(HPos::Left, VPos::Center)),
                ))?;
                x += Self::entry_width(text) + Self::GAP;
            }
        }
        Ok(())
    }
}

/// Draws a phase marker at a pixel position.
pub(super) fn draw_marker(
    area: &Area,
    (x, y): (i32, i32),
    m: Marker,
    c: RGBColor,
) -> anyhow::Result<()> {
    match m {
        Marker::Forked | Marker::Ready => area.draw(&TriangleMarker::new((x, y), 6, c.filled()))?,
        Marker::Steady => area.draw(&Circle::new((x, y), 5, c.filled()))?,
        Marker::Drained | Marker::Loaded => area.draw(&Rectangle::new(
            [(x - 4, y - 4), (x + 4, y + 4)],
            c.filled(),
        ))?,
        Marker::Idle => {
            area.draw(&Circle::new((x, y), 4, WHITE.filled()))?;
            area.draw(&Circle::new((x, y), 4, c.stroke_width(2)))?
        }
        Marker::Trimmed => area.draw(&Cross::new((x, y), 5, c.stroke_width(2)))?,
        Marker::Restart => area.draw(&PathElement::new(
            vec![(x, y - 6), (x, y + 6)],
            c.stroke_width(2),
        ))?,
    }
    Ok(())
}

/// A chart image: a title and a subtitle on top, the plot area, the legend
/// below. `draw` gets the whole image (pixel coordinates) and the plot area.
pub(super) fn image(
    title: &str,
    subtitle: &str,
    legend: &Legend,
    draw: impl FnOnce(&Area, &Area) -> anyhow::Result<()>,
) -> anyhow::Result<String> {
    let height = HEADER + PLOT_HEIGHT + legend.height();
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        root.draw(&Text::new(
            title.to_string(),
            (WIDTH as i32 / 2, 10),
            style(20.0, &INK).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        // A long subtitle gets smaller rather than cut off.
        let fit = (WIDTH - 40) as f64 / (subtitle.chars().count().max(1) as f64 * 0.5);
        root.draw(&Text::new(
            subtitle.to_string(),
            (WIDTH as i32 / 2, 37),
            style(LABEL_SIZE.min(fit), &MUTED).pos(Pos::new(HPos::Center, VPos::Top)),
        ))?;
        let (_, rest) = root.split_vertically(HEADER);
        let (plot, legend_area) = rest.split_vertically(PLOT_HEIGHT);
        draw(&root, &plot)?;
        legend.draw(&legend_area)?;
        root.present()?;
    }
    Ok(svg)
}

/// Axes on `area`: x and y ranges, their descriptions and number formats.
pub(super) struct Axes<'f> {
    pub(super) x: std::ops::Range<f64>,
    pub(super) y: std::ops::Range<f64>,
    pub(super) x_desc: String,
    pub(super) y_desc: String,
    pub(super) x_fmt: &'f dyn Fn(&f64) -> String,
    pub(super) y_fmt: &'f dyn Fn(&f64) -> String,
    /// Room above the plot, for labels of vertical lines.
    pub(super) top: u32,
    pub(super) y_labels: bool,
}

/// The chart's coordinates on `area`, nothing drawn yet.
pub(super) fn layout<'a, 'b>(area: &'a Area<'b>, a: &Axes) -> anyhow::Result<Chart<'a, 'b>> {
    Ok(ChartBuilder::on(area)
        .margin_left(12)
        .margin_right(22)
        .margin_top(10 + a.top)
        .margin_bottom(6)
        .x_label_area_size(44)
        .y_label_area_size(if a.y_labels { 62 } else { 16 })
        .build_cartesian_2d(a.x.clone(), a.y.clone())?)
}

/// The chart with its axes and grid drawn.
pub(super) fn build<'a, 'b>(area: &'a Area<'b>, a: &Axes) -> anyhow::Result<Chart<'a, 'b>> {
    let mut chart = layout(area, a)?;
    let mut mesh = chart.configure_mesh();
    mesh.x_desc(a.x_desc.clone())
        .x_label_formatter(a.x_fmt)
        .y_label_formatter(a.y_fmt)
        .x_labels(8)
        .y_labels(8)
        .bold_line_style(GRID_BOLD)
        .light_line_style(GRID_LIGHT)
        .axis_style(MUTED)
        .label_style(style(SMALL_SIZE, &INK))
        .axis_desc_style(style(LABEL_SIZE, &INK));
    if a.y_labels {
        mesh.y_desc(a.y_desc.clone());
    } else {
        mesh.y_label_formatter(&|_| String::new());
    }
    mesh.draw()?;
    Ok(chart)
}

/// Where a label `w` pixels wide centred at `px` goes: at `px`, or moved in
/// to stay inside the image.
fn label_centre(px: i32, w: i32) -> i32 {
    px.clamp(w / 2 + 4, (WIDTH as i32 - w / 2 - 4).max(w / 2 + 4))
}

/// Lines closer than a few pixels share one label: `steady / drained`.
pub(super) fn merge_close(
    chart_px: &dyn Fn(f64) -> i32,
    lines: &[(f64, String)],
) -> Vec<(f64, String)> {
    let mut sorted = lines.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut out: Vec<(f64, String)> = Vec::new();
    for (x, label) in sorted {
        match out.last_mut() {
            Some((x0, l)) if (chart_px(x) - chart_px(*x0)).abs() <= 4 => {
                l.push_str(" / ");
                l.push_str(&label);
            }
            _ => out.push((x, label)),
        }
    }
    out
}

/// Rows for the labels of vertical lines at `lines` (x, label), above the
/// plot, as many as keep them apart.
pub(super) fn label_rows(chart_px: &dyn Fn(f64) -> i32, lines: &[(f64, String)]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..lines.len()).collect();
    order.sort_by(|&a, &b| lines[a].0.total_cmp(&lines[b].0));
    let mut row_end: Vec<i32> = Vec::new();
    let mut rows = vec![0; lines.len()];
    for i in order {
        let w = text_width(&lines[i].1, SMALL_SIZE);
        let start = label_centre(chart_px(lines[i].0), w) - w / 2;
        let r = row_end
            .iter()
            .position(|&end| end + 6 < start)
            .unwrap_or(row_end.len());
        if r == row_end.len() {
            row_end.push(i32::MIN);
        }
        row_end[r] = start + w;
        rows[i] = r;
    }
    rows
}

/// Draws labelled vertical lines; the room above the plot was reserved
/// with `label_rows`.
pub(super) fn draw_vlines(
    root: &Area,
    chart: &mut Chart,
    lines: &[(f64, String)],
    rows: &[usize],
) -> anyhow::Result<()> {
    let (lo, hi) = (chart.y_range().start, chart.y_range().end);
    for ((x, label), r) in lines.iter().zip(rows) {
        chart.draw_series(DashedLineSeries::new(
            vec![(*x, lo), (*x, hi)],
            4,
            4,
            MUTED.mix(0.7).stroke_width(1),
        ))?;
        let (px, top) = chart.backend_coord(&(*x, hi));
        root.draw(&Text::new(
            label.clone(),
            (
                label_centre(px, text_width(label, SMALL_SIZE)),
                top - 4 - *r as i32 * 15,
            ),
            style(SMALL_SIZE, &MUTED).pos(Pos::new(HPos::Center, VPos::Bottom)),
        ))?;
    }
    Ok(())
}

pub(super) fn draw_line(
    chart: &mut Chart,
    points: &[(f64, f64)],
    c: RGBColor,
) -> anyhow::Result<()> {
    chart.draw_series(LineSeries::new(points.iter().copied(), c.stroke_width(2)))?;
    Ok(())
}

pub(super) fn draw_dashed(
    chart: &mut Chart,
    points: &[(f64, f64)],
    c: RGBColor,
) -> anyhow::Result<()> {
    chart.draw_series(DashedLineSeries::new(
        points.iter().copied(),
        6,
        4,
        c.stroke_width(2),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legend_rows_wrap_within_the_width() {
        let legend = Legend(
            (0..12)
                .map(|i| (Swatch::Line(INK), format!("variant number {i}")))
                .collect(),
            vec![10],
        );
        let rows = legend.rows(600);
        assert!(rows.len() > 1);
        assert_eq!(rows.iter().map(Vec::len).sum::<usize>(), 12);
        assert_eq!(rows.last().unwrap(), &vec![10, 11]);
        for row in &rows {
            let w: i32 = row
                .iter()
                .map(|&i| Legend::entry_width(&legend.0[i].1) + Legend::GAP)
                .sum();
            assert!(w - Legend::GAP <= 600);
        }
    }
}
