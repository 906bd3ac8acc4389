//! The commands: each turns its parsed arguments into plans, runs them, and
//! writes the output. `main` only dispatches here; `run`, `compare`, `sweep`
//! and `list` are a few lines each below, the others have a file.

mod measure;
mod merge;
mod plan;
mod report;

use crate::cli::{Cli, Command, Format, ListFormat};
use crate::exec::cell;
use crate::exec::interrupt;
use crate::exec::runner;
use crate::exec::runner::{Outcome, Sink};
use crate::output;
use crate::output::View;
use crate::output::list;
use crate::plans;
use crate::results;
use crate::write::write_atomic;

/// Runs a command; the exit code of a run that went to its end.
pub fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::List(args) => {
            let catalog = plans::catalog(args.variants_file.as_deref())?;
            match args.format {
                ListFormat::Table => emit(&list::table(&catalog))?,
                ListFormat::Json => emit(&list::json(&catalog)?)?,
            }
            Ok(0)
        }
        Command::Run(args) => {
            let plans = plans::run_plans(&args)?;
            let outcome = execute(&plans, &args.output, args.resume.resume, View::Run, None)?;
            Ok(exit_code(&outcome))
        }
        Command::Compare(args) => {
            let (plans, shard) =
                plans::shard::apply(plans::compare_plans(&args)?, &args.shard, &args.output)?;
            if args.shard.dry_run {
                emit(&dry_run(&plans))?;
                return Ok(0);
            }
            let view = if args.wide {
                View::CompareWide
            } else {
                View::Compare
            };
            let outcome = execute(&plans, &args.output, args.resume.resume, view, shard)?;
            Ok(exit_code(&outcome))
        }
        Command::Sweep(args) => {
            let plans = plans::sweep_plans(
                &args.workload,
                &args.variants,
                args.repeat,
                plans::SWEEP_THREADS,
            )?;
            let (plans, shard) = plans::shard::apply(plans, &args.shard, &args.output)?;
            if args.shard.dry_run {
                emit(&dry_run(&plans))?;
                return Ok(0);
            }
            let outcome = execute(&plans, &args.output, args.resume.resume, View::Sweep, shard)?;
            Ok(exit_code(&outcome))
        }
        Command::Plan(args) => plan::run(&args),
        Command::Report(args) => report::run(&args),
        Command::Merge(args) => merge::run(&args),
        Command::Measure(args) => measure::run(&args),
        Command::Inspect(args) => {
            let ins = crate::external::inspect::inspect(&args.pids)?;
            match args.format {
                ListFormat::Table => emit(&output::inspect::render(&ins))?,
                ListFormat::Json => emit(&(serde_json::to_string_pretty(&ins)? + "\n"))?,
            }
            Ok(if ins.trees.iter().all(|t| t.problems.is_empty()) {
                0
            } else {
                1
            })
        }
        Command::Worker(_) | Command::Watchdog => unreachable!("handled before"),
    }
}

/// With `--plot DIR`, writes the charts; Markdown output links them. A
/// failure to draw is reported after the output is written.
fn write_plots(
    doc: &results::Document,
    out: &crate::cli::OutputArgs,
    text: &mut String,
) -> anyhow::Result<()> {
    let Some(dir) = &out.plot else {
        return Ok(());
    };
    crate::plot::write_plots(doc, dir).map_err(|e| e.context("writing the plots"))?;
    if out.format == Format::Md {
        text.push_str(&crate::plot::markdown(doc, dir, out.output.as_deref()));
    }
    Ok(())
}

/// Refuses, before any work, an output file that cannot be written or a
/// plot directory that cannot be created.
fn prepare_output(out: &crate::cli::OutputArgs) -> anyhow::Result<()> {
    if let Some(path) = &out.output {
        check_output(path)?;
    }
    if let Some(path) = &out.json {
        crate::write::check_writable(path)
            .map_err(|e| plans::usage(format!("--json: cannot write {}: {e}", path.display())))?;
        if out.output.as_deref() == Some(path.as_path()) {
            return Err(plans::usage(format!(
                "--json and --output name the same file, {}",
                path.display()
            )));
        }
    }
    if let Some(dir) = &out.plot {
        crate::plot::prepare_dir(dir)
            .map_err(|e| plans::usage(format!("--plot: cannot write in {}: {e}", dir.display())))?;
    }
    Ok(())
}

/// `--json`: the document, whatever `--format` writes.
fn write_json(doc: &results::Document, out: &crate::cli::OutputArgs) -> anyhow::Result<()> {
    if let Some(path) = &out.json {
        write_atomic(path, &(serde_json::to_string(doc)? + "\n"))?;
    }
    Ok(())
}

fn check_output(path: &std::path::Path) -> anyhow::Result<()> {
    crate::write::check_writable(path)
        .map_err(|e| plans::usage(format!("--output: cannot write {}: {e}", path.display())))
}

/// Writes a command's output to stdout; a reader that went away (`| head`)
/// is not an error.
fn emit(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(anyhow::anyhow!("cannot write to stdout: {e}")),
        Ok(()) => Ok(()),
    }
}

/// Runs the plans, writing the output (to `output`, after every cell, or to
/// stdout at the end) as `view` shows it; with `resume`, only those not already
/// in the output.
fn execute(
    plans: &[cell::CellPlan],
    out: &crate::cli::OutputArgs,
    resume: bool,
    view: View,
    shard: Option<crate::results::shard::Shard>,
) -> anyhow::Result<Outcome> {
    let (format, output) = (out.format, out.output.clone());
    prepare_output(out)?;
    let previous = if resume {
        plans::previous_cells(format, output.as_deref(), plans)?
    } else {
        Vec::new()
    };
    interrupt::install()?;
    let sink = Sink {
        exporter: output::view_exporter(view, format),
        output: output.clone().filter(|p| crate::write::rewritable(p)),
        previous,
        json: out.json.clone().filter(|p| crate::write::rewritable(p)),
        shard,
    };
    let outcome = runner::run(plans, &sink)?;
    write_json(&outcome.doc, out)?;
    let mut text = sink.exporter.serialize(&outcome.doc)?;
    let plotted = write_plots(&outcome.doc, out, &mut text);
    match &output {
        Some(path) => write_atomic(path, &text)?,
        None => emit(&text)?,
    }
    plotted?;
    Ok(outcome)
}

fn plural(n: u32, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `--dry-run`: the cells a command would run, one line each.
fn dry_run(plans: &[cell::CellPlan]) -> String {
    let mut out = String::new();
    for (i, p) in plans.iter().enumerate() {
        let writes = if p.spec.static_writes_per_request == 0 {
            ", no app writes"
        } else {
            ""
        };
        out.push_str(&format!(
            "cell {}/{}: {} {} ({}, repetition {}, {} × {}{writes})\n",
            i + 1,
            plans.len(),
            p.workload,
            p.variant.name,
            crate::results::arm(p.spec.prefork, &p.spec.lifecycle),
            p.repetition,
            plural(p.spec.processes, "process", "processes"),
            plural(p.spec.threads, "thread", "threads")
        ));
    }
    out
}

fn exit_code(outcome: &Outcome) -> i32 {
    exit_code_saying(outcome, "Interrupted: finished cells are in the output.")
}

/// [`exit_code`], with what an interruption left (`plan` writes no cells).
fn exit_code_saying(outcome: &Outcome, interrupted: &str) -> i32 {
    if outcome.interrupted {
        crate::error::note(interrupted);
        interrupt::EXIT_INTERRUPTED
    } else if outcome.failed > 0 {
        1
    } else {
        0
    }
}
