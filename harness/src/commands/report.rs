//! `allocbench report`: result documents rendered into one report.

use super::{check_output, emit};
use crate::cli::{ReportArgs, ReportFormat};
use crate::write::write_atomic;

pub(super) fn run(args: &ReportArgs) -> anyhow::Result<i32> {
    if let Some(path) = &args.output {
        check_output(path)?;
    }
    let docs = crate::results::load::load(&args.files)?;
    // Shards given directly are merged first, as `merge` would.
    let docs = crate::analysis::merge::merge_shards(docs)?;
    crate::analysis::report::check_renderable(&docs)?;
    let report = crate::analysis::report::Report::build(docs);
    let plots = match &args.plot {
        Some(dir) => crate::output::report::write_plots(&report, dir)?,
        None => Default::default(),
    };
    let text = match args.format {
        ReportFormat::Md => {
            crate::output::report::markdown(&report, &plots, args.output.as_deref())
        }
        ReportFormat::Html => crate::output::report::html(&report, &plots),
        ReportFormat::Csv => crate::output::report_csv::csv(&report)?,
    };
    match &args.output {
        Some(path) => write_atomic(path, &text)?,
        None => emit(&text)?,
    }
    Ok(0)
}
