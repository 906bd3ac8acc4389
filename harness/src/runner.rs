//! Runs the planned cells one after another with a progress display,
//! rewriting the output after every cell.

use std::io::IsTerminal;
use std::path::PathBuf;

use indicatif::{ProgressBar, ProgressStyle};

use crate::cell::{CellPlan, run_cell};
use crate::environment::Environment;
use crate::export::{Exporter, write_atomic};
use crate::interrupt;
use crate::result::{Document, FORMAT_VERSION, Status};

/// Where and how the document is written as cells finish.
pub struct Sink {
    pub exporter: Box<dyn Exporter>,
    pub output: Option<PathBuf>,
}

/// How a run ended.
pub struct Outcome {
    pub doc: Document,
    pub failed: usize,
    pub interrupted: bool,
}

pub fn new_document() -> Document {
    Document {
        allocbench_version: env!("CARGO_PKG_VERSION").into(),
        format_version: FORMAT_VERSION,
        command: std::env::args().collect(),
        environment: Environment::collect(),
        cells: Vec::new(),
    }
}

pub fn run(plans: &[CellPlan], sink: &Sink) -> anyhow::Result<Outcome> {
    let mut doc = new_document();
    // The progress display lives in the harness, which never forks without
    // exec; the forking master is a separate process.
    let bar = ProgressBar::new(plans.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] cell {pos}/{len} {wide_msg}")
            .expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let log = |line: String| {
        if std::io::stderr().is_terminal() {
            bar.println(line);
        } else {
            eprintln!("{line}");
        }
    };
    let mut failed = 0;
    for (i, plan) in plans.iter().enumerate() {
        if interrupt::interrupted() {
            break;
        }
        bar.set_position(i as u64);
        let observe = |msg: &str| bar.set_message(msg.to_string());
        let cell = run_cell(plan, &observe);
        if interrupt::interrupted() && cell.status == Status::Failed {
            // The interrupted cell is not a result.
            break;
        }
        let label = format!(
            "{} (prefork {}, repetition {})",
            cell.variant, cell.prefork, cell.repetition
        );
        match (&cell.status, &cell.error) {
            (Status::Ok, _) => log(format!(
                "cell {}/{} {label}: ok in {:.1} s",
                i + 1,
                plans.len(),
                cell.wall_ms / 1e3
            )),
            (Status::Failed, e) => {
                failed += 1;
                log(format!(
                    "cell {}/{} {label}: FAILED: {}",
                    i + 1,
                    plans.len(),
                    e.as_deref().unwrap_or("?")
                ));
            }
        }
        if let Some(a) = &cell.allocator
            && let Some(v) = &a.version
        {
            doc.environment
                .allocator_versions
                .entry(if a.builtin {
                    format!("{} (built-in)", a.name)
                } else {
                    a.name.clone()
                })
                .or_insert_with(|| v.clone());
        }
        doc.cells.push(cell);
        if let Some(path) = &sink.output {
            write_atomic(path, &sink.exporter.serialize(&doc)?)?;
        }
    }
    bar.finish_and_clear();
    Ok(Outcome {
        doc,
        failed,
        interrupted: interrupt::interrupted(),
    })
}
