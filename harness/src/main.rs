//! allocbench: measure allocators and their settings on preforking server
//! workloads. A thin pipeline: parse arguments → plans → run → export.

// One executable carries glibc, jemalloc and mimalloc; a worker process picks
// one at its first allocation from ALLOCBENCH_ALLOCATOR (see the
// allocbench-allocators crate). The harness itself runs on libc malloc.
#[global_allocator]
static GLOBAL: allocbench_allocators::DispatchAlloc = allocbench_allocators::DispatchAlloc;

use allocbench::cli::{Cli, Command, Format, ListFormat};
use allocbench::export::{Markup, exporter, write_atomic};
use allocbench::options::UsageError;
use allocbench::runner::{Outcome, Sink};
use allocbench::{cell, detail, export, interrupt, list, measure, options, result, runner, worker};
use clap::Parser;

fn main() {
    let cli = Cli::parse();
    if let Command::Worker(args) = &cli.command {
        std::process::exit(worker::main(args));
    }
    let code = match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("Error: {e:#}");
            if e.downcast_ref::<UsageError>().is_some() {
                2
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}

fn run(cli: Cli) -> anyhow::Result<i32> {
    match cli.command {
        Command::List(args) => {
            let catalog = options::catalog(args.variants_file.as_deref())?;
            match args.format {
                ListFormat::Table => print!("{}", list::table(&catalog)),
                ListFormat::Json => print!("{}", list::json(&catalog)?),
            }
            Ok(0)
        }
        Command::Run(args) => {
            let plans = options::run_plans(&args)?;
            let outcome = execute(
                &plans,
                args.output.format,
                args.output.output.clone(),
                |doc, format| match format {
                    Format::Table | Format::Md => {
                        let markup = if format == Format::Md {
                            Markup::Markdown
                        } else {
                            Markup::Terminal
                        };
                        Ok(doc
                            .cells
                            .iter()
                            .map(|c| detail::render_cell(c, markup))
                            .collect::<Vec<_>>()
                            .join("\n"))
                    }
                    _ => exporter(format).serialize(doc),
                },
            )?;
            Ok(exit_code(&outcome))
        }
        Command::Compare(args) => {
            let plans = options::compare_plans(&args)?;
            let outcome = execute(
                &plans,
                args.output.format,
                args.output.output.clone(),
                |doc, format| exporter(format).serialize(doc),
            )?;
            Ok(exit_code(&outcome))
        }
        Command::Measure(args) => {
            let plan = measure::plan(&args)?;
            interrupt::install()?;
            let sink = Sink {
                exporter: export::measure_exporter(args.output.format),
                output: args.output.output.clone(),
            };
            let outcome = measure::run(&plan, &sink)?;
            let text = sink.exporter.serialize(&outcome.doc)?;
            match &sink.output {
                Some(path) => write_atomic(path, &text)?,
                None => print!("{text}"),
            }
            Ok(exit_code(&outcome))
        }
        Command::Worker(_) => unreachable!("handled before"),
    }
}

/// Runs the plans, writing the output (to `output`, after every cell, or to
/// stdout at the end) with `render`.
fn execute(
    plans: &[cell::CellPlan],
    format: Format,
    output: Option<std::path::PathBuf>,
    render: impl Fn(&result::Document, Format) -> anyhow::Result<String> + 'static,
) -> anyhow::Result<Outcome> {
    interrupt::install()?;
    struct Render<F>(F, Format);
    impl<F: Fn(&result::Document, Format) -> anyhow::Result<String>> export::Exporter for Render<F> {
        fn serialize(&self, doc: &result::Document) -> anyhow::Result<String> {
            (self.0)(doc, self.1)
        }
    }
    let sink = Sink {
        exporter: Box::new(Render(render, format)),
        output,
    };
    let outcome = runner::run(plans, &sink)?;
    let text = sink.exporter.serialize(&outcome.doc)?;
    match &sink.output {
        Some(path) => write_atomic(path, &text)?,
        None => print!("{text}"),
    }
    Ok(outcome)
}

fn exit_code(outcome: &Outcome) -> i32 {
    if outcome.interrupted {
        eprintln!("Interrupted: finished cells are in the output.");
        interrupt::EXIT_INTERRUPTED
    } else if outcome.failed > 0 {
        1
    } else {
        0
    }
}
