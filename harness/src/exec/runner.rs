//! Runs the planned cells with a progress display, rewriting the output
//! after every cell. At most one cell is busy at a time; a cell in its idle
//! window lets the next one start (see [`BusyGate`]).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::mpsc;

use indicatif::{ProgressBar, ProgressStyle};

use crate::analysis::arenas;
use crate::analysis::stats::summarize;
use crate::exec::cell::{BusyGate, CellPlan, run_cell};
use crate::exec::interrupt;
use crate::output::Exporter;
use crate::results::environment::Environment;
use crate::results::{CellResult, Document, FORMAT_VERSION, Status};
use crate::write::write_atomic;

/// Where and how the document is written as cells finish.
pub struct Sink {
    pub exporter: Box<dyn Exporter>,
    /// The file rewritten after every cell: none for stdout, a device or a
    /// stream, which get the document once, at the end.
    pub output: Option<PathBuf>,
    /// Finished cells of an earlier run to keep instead of running again.
    pub previous: Vec<CellResult>,
    /// `--json`: the result document, rewritten after every cell too
    /// (none for a device or a stream, which get it once, at the end).
    pub json: Option<PathBuf>,
    /// The shard of the command's cells being run (`--shard K/N`), which
    /// the document records.
    pub shard: Option<crate::results::shard::Shard>,
}

impl Sink {
    /// Rewrites the outputs that are rewritten as the run goes.
    pub fn write(&self, doc: &Document) -> anyhow::Result<()> {
        if let Some(path) = &self.output {
            write_atomic(path, &self.exporter.serialize(doc)?)?;
        }
        if let Some(path) = &self.json {
            write_atomic(path, &(serde_json::to_string(doc)? + "\n"))?;
        }
        Ok(())
    }
}

/// Whether an earlier cell is the finished result of this plan.
pub fn same_cell(done: &CellResult, plan: &CellPlan) -> bool {
    done.status == Status::Ok
        && done.workload == plan.workload
        && done.variant_def == plan.variant
        && done.repetition == plan.repetition
        && done.spec.as_ref() == Some(&plan.spec)
        && done.cpus_pinned == plan.cpus
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
        summary: Vec::new(),
        harness: Default::default(),
        fits: Vec::new(),
        unfitted: Vec::new(),
        shard: None,
        planned_cells: None,
        machines: Vec::new(),
    }
}

/// CPU seconds (user + system) this process has used.
pub(crate) fn own_cpu_s() -> f64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_SELF)
        .map(|u| {
            let t = |tv: nix::sys::time::TimeVal| tv.tv_sec() as f64 + tv.tv_usec() as f64 / 1e6;
            t(u.user_time()) + t(u.system_time())
        })
        .unwrap_or(0.0)
}

pub fn run(plans: &[CellPlan], sink: &Sink) -> anyhow::Result<Outcome> {
    let started = std::time::Instant::now();
    let mut doc = new_document();
    doc.shard = sink.shard;
    doc.planned_cells = Some(plans.len());
    // The progress display lives in the harness, which never forks without
    // exec; the forking master is a separate process.
    let bar = ProgressBar::new(plans.len() as u64);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {pos}/{len} cells done  {wide_msg}",
        )
        .expect("valid template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    let log = |line: String| {
        if std::io::stderr().is_terminal() {
            bar.println(line);
        } else {
            crate::error::note(line);
        }
    };
    let gate = BusyGate::default();
    // The machine a new cell's arena limits are figured for.
    let machine = doc.environment.clone();
    let mut failed = 0;
    // Plan indices of the cells in `doc.cells`, ascending.
    let mut finished: Vec<usize> = Vec::new();
    let (done_tx, done_rx) = mpsc::channel::<(usize, CellResult)>();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let mut running = 0;
        let mut handle_done =
            |(i, cell): (usize, CellResult), running: &mut usize| -> anyhow::Result<()> {
                *running -= 1;
                bar.inc(1);
                if interrupt::interrupted() && cell.status == Status::Failed {
                    // An interrupted cell is not a result.
                    return Ok(());
                }
                let label = format!(
                    "{} ({}, repetition {})",
                    cell.variant,
                    crate::results::arm(cell.prefork, &cell.lifecycle),
                    cell.repetition
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
                // Every finished cell goes out at once, in plan order among
                // the finished ones: a cell still idling must not hold back
                // the results of cells after it.
                let at = finished.partition_point(|&j| j < i);
                finished.insert(at, i);
                note_allocator(&mut doc, &cell);
                doc.cells.insert(at, cell);
                doc.summary = summarize(&doc.cells);
                doc.harness.wall_s = started.elapsed().as_secs_f64();
                doc.harness.cpu_s = own_cpu_s();
                sink.write(&doc)?;
                Ok(())
            };
        for (i, plan) in plans.iter().enumerate() {
            if let Some(done) = sink.previous.iter().find(|d| same_cell(d, plan)) {
                log(format!(
                    "cell {}/{} {}: kept from the earlier run",
                    i + 1,
                    plans.len(),
                    done.variant
                ));
                running += 1;
                handle_done((i, done.clone()), &mut running)?;
                continue;
            }
            // Wait for the busy cell to go idle (or end) before starting the next.
            let hold = loop {
                while let Ok(d) = done_rx.try_recv() {
                    handle_done(d, &mut running)?;
                }
                if let Some(h) = gate.try_acquire_for(std::time::Duration::from_millis(50)) {
                    break h;
                }
            };
            if interrupt::interrupted() {
                break;
            }
            running += 1;
            let tx = done_tx.clone();
            let bar = &bar;
            let machine = &machine;
            std::thread::Builder::new()
                .name(format!("cell-{i}"))
                .spawn_scoped(scope, move || {
                    let observe = |msg: &str| bar.set_message(msg.to_string());
                    let mut cell = run_cell(plan, &hold, &observe);
                    drop(hold);
                    arenas::record(&mut cell, machine);
                    let _ = tx.send((i, cell));
                })?;
        }
        while running > 0 {
            let d = done_rx.recv()?;
            handle_done(d, &mut running)?;
        }
        Ok(())
    })?;
    // Cells dropped as interrupted leave gaps; every finished cell is out.
    bar.finish_and_clear();
    doc.harness.wall_s = started.elapsed().as_secs_f64();
    doc.harness.cpu_s = own_cpu_s();
    Ok(Outcome {
        doc,
        failed,
        interrupted: interrupt::interrupted(),
    })
}

fn note_allocator(doc: &mut Document, cell: &CellResult) {
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
}
