//! `allocbench measure`: the user's own command under each variant.

use super::{emit, exit_code, prepare_output, write_json, write_plots};
use crate::cli::MeasureArgs;
use crate::exec::interrupt;
use crate::exec::runner::Sink;
use crate::output;
use crate::write::write_atomic;

pub(super) fn run(args: &MeasureArgs) -> anyhow::Result<i32> {
    let plan = crate::external::plan(args)?;
    prepare_output(&args.output)?;
    interrupt::install()?;
    let sink = Sink {
        exporter: output::measure_exporter(args.output.format, args.wide),
        output: args
            .output
            .output
            .clone()
            .filter(|p| crate::write::rewritable(p)),
        previous: Vec::new(),
        json: args
            .output
            .json
            .clone()
            .filter(|p| crate::write::rewritable(p)),
        shard: None,
    };
    let outcome = crate::external::run(&plan, &sink)?;
    write_json(&outcome.doc, &args.output)?;
    let mut text = sink.exporter.serialize(&outcome.doc)?;
    let plotted = write_plots(&outcome.doc, &args.output, &mut text);
    match &args.output.output {
        Some(path) => write_atomic(path, &text)?,
        None => emit(&text)?,
    }
    plotted?;
    Ok(exit_code(&outcome))
}
