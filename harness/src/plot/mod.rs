//! SVG charts drawn from the result document (`--plot DIR`): how a cell's
//! memory moves over time and against requests, and how much of it goes back
//! to the OS after the workers freed their caches. One file per chart and per
//! workload × pre-fork hook × repetition, one line per variant; plus, per
//! cell, its processes one by one. Failed cells are left out (the tables list
//! them); cells without a timeline (`--sample-hz 0`) get no time series.
//!
//! Text is written as SVG `<text>`: nothing is rasterised, so no font
//! library is needed. Sizes of text are estimated to lay out legends and
//! labels.
//!
//! `files` plans the files and links them, `series` takes the numbers from
//! the cells, `style` and `layout` hold the look and the drawing the charts
//! share; `time`, `returned`, `requests` and `processes` draw the charts.

mod files;
#[cfg(test)]
mod fixtures;
mod layout;
mod processes;
mod requests;
mod returned;
mod series;
mod style;
mod time;

use std::path::{Path, PathBuf};

use crate::results::{CellResult, Document};
use crate::write::write_atomic;

use files::Kind;
pub use files::{chart_groups, link, markdown, prepare_dir, sanitize};
use processes::processes;
use requests::{cow_copied, growth};
use returned::returned;
use style::colours;
use time::over_time;

/// Writes every chart of `doc` into `dir` (each file atomically) and returns
/// their paths.
pub fn write_plots(doc: &Document, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    Ok(write_charts(doc, dir, true)?
        .into_iter()
        .map(|(_, path)| path)
        .collect())
}

/// The group charts only (no per-process charts), for reports: (caption,
/// path) of each file written.
pub fn write_summary_plots(doc: &Document, dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    write_charts(doc, dir, false)
}

fn write_charts(
    doc: &Document,
    dir: &Path,
    per_process: bool,
) -> anyhow::Result<Vec<(String, PathBuf)>> {
    use anyhow::Context;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let colours = colours(doc);
    let mut written = Vec::new();
    for group in chart_groups(doc) {
        let cells: Vec<&CellResult> = group.cells.iter().map(|&i| &doc.cells[i]).collect();
        for plot in &group.plots {
            if !per_process && matches!(plot.kind, Kind::Processes(_)) {
                continue;
            }
            let svg = match plot.kind {
                Kind::TreePss => over_time(&group.title, &cells, &colours, &time::TREE_PSS),
                Kind::WorkerUss => over_time(&group.title, &cells, &colours, &time::WORKER_USS),
                Kind::Returned => returned(&group.title, &cells, &colours),
                Kind::Growth => growth(&group.title, &cells, &colours),
                Kind::CowCopied => cow_copied(&group.title, &cells, &colours),
                Kind::Processes(i) => processes(&group.title, &doc.cells[i]),
            }
            .with_context(|| format!("drawing {}", plot.file))?;
            let path = dir.join(&plot.file);
            write_atomic(&path, &svg).with_context(|| format!("writing {}", path.display()))?;
            written.push((plot.caption.clone(), path));
        }
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::fixtures::{cell, document, escaped, file_names, temp_dir};
    use super::*;
    use crate::results::{Status, Timeline};

    #[test]
    fn every_chart_is_an_svg_with_one_legend_entry_per_variant() {
        let variants = ["glibc", "/opt/my alloc/libmy.so", "je<&>'\"x"];
        let mut cells: Vec<CellResult> = variants
            .iter()
            .enumerate()
            .map(|(i, v)| cell(v, i as u64 + 1))
            .collect();
        let mut broken = cell("broken", 1);
        broken.status = Status::Failed;
        broken.metrics = None;
        cells.push(broken);
        let doc = document(cells);
        let dir = temp_dir("all");
        let paths = write_plots(&doc, &dir).unwrap();
        let names = file_names(&paths);
        for chart in ["tree-pss", "worker-uss", "returned", "growth", "cow-copied"] {
            assert!(
                names.contains(&format!("server-none-{chart}.svg")),
                "{chart} missing from {names:?}"
            );
        }
        assert!(names.contains(&"server-none-opt_my_alloc_libmy.so-processes.svg".into()));
        assert!(names.contains(&"server-none-je_x-processes.svg".into()));
        assert_eq!(names.len(), 5 + 3, "no chart of the failed cell: {names:?}");
        for (path, name) in paths.iter().zip(&names) {
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c)),
                "{name}"
            );
            assert_eq!(path.parent(), Some(dir.as_path()));
            let svg = std::fs::read_to_string(path).unwrap();
            assert!(svg.starts_with("<svg"), "{name}");
            assert!(svg.trim_end().ends_with("</svg>"), "{name}");
            assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
            assert!(!svg.contains("broken"), "{name} shows a failed cell");
            if !name.ends_with("-processes.svg") {
                for v in variants {
                    // plotters writes a text's content on a line of its own.
                    let entry = format!(">\n{}", escaped(v));
                    assert_eq!(
                        svg.matches(&entry).count(),
                        1,
                        "{name}: legend entry {entry}"
                    );
                }
            }
        }
        let lazy = std::fs::read_to_string(dir.join("server-none-returned.svg")).unwrap();
        assert!(lazy.contains("LazyFree"));
        let growth = std::fs::read_to_string(dir.join("server-none-growth.svg")).unwrap();
        assert!(growth.contains("plateau, +2.0 KiB per 1k requests"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn cells_without_a_timeline_get_no_time_series() {
        let mut c = cell("glibc", 1);
        c.timeline = Timeline::default();
        let dir = temp_dir("untimed");
        let names = file_names(&write_plots(&document(vec![c]), &dir).unwrap());
        assert_eq!(names, ["server-none-returned.svg"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
