//! `allocbench measure`: the user's own command under each variant.

use super::{emit, exit_code, prepare_output, write_plots};
use crate::cli::MeasureArgs;
use crate::export::{self, write_atomic};
use crate::interrupt;
use crate::runner::Sink;

pub(super) fn run(args: &MeasureArgs) -> anyhow::Result<i32> {
    let plan = crate::measure::plan(args)?;
    prepare_output(&args.output)?;
    interrupt::install()?;
    let sink = Sink {
        exporter: export::measure_exporter(args.output.format),
        output: args.output.output.clone(),
        previous: Vec::new(),
    };
    let outcome = crate::measure::run(&plan, &sink)?;
    let mut text = sink.exporter.serialize(&outcome.doc)?;
    let plotted = write_plots(&outcome.doc, &args.output, &mut text);
    match &sink.output {
        Some(path) => write_atomic(path, &text)?,
        None => emit(&text)?,
    }
    plotted?;
    Ok(exit_code(&outcome))
}
