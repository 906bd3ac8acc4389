//! `allocbench measure -- CMD ARGS…`: a real program (an operator's
//! preforking server) under each variant. The command runs once per variant
//! in its own process group; allocbench waits until it is ready, runs the
//! load command (or waits), keeps measuring while it idles, then stops it
//! (SIGTERM to the group, SIGKILL after a grace period). Meanwhile it
//! follows the whole process tree through `/proc` (`track.rs`; allocbench
//! is its subreaper, so a daemon stays in it) and samples
//! every process on a timer and at the phase boundaries `started` (ready),
//! `loaded` (end of the load) and `idle+<S>s`. A [`watchdog`] process
//! kills the tree and the load command if allocbench itself dies. Each
//! variant is one [`CellResult`] of workload `measure`, so every exporter
//! reads it.

mod check;
mod error;
pub mod inspect;
mod load;
mod load_output;
mod plan;
mod proc;
mod record;
mod roles;
mod row;
mod stop;
mod track;
pub mod watchdog;

use std::cell::Cell;
use std::collections::BTreeMap;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub use crate::results::measure::{MeasureMetrics, MeasureRecord, MeasuredProcess};
pub use load_output::LoadFigures;
pub use plan::{MeasurePlan, MeasureVariant, Ready, builtin_library, plan};
pub use record::compute;

use crate::exec::cell::StderrTail;
use crate::exec::interrupt;
use crate::exec::runner::{Outcome, Sink, new_document, own_cpu_s};
use crate::results::{CellResult, PhaseSample, Status, Timeline, TimelinePhase};
use crate::sample::timeline::TimelineSampler;
pub use error::MeasureError;
use row::run_row;
use track::Tracker;
use watchdog::Watchdog;

pub use crate::results::measure::WORKLOAD;
/// Between SIGTERM and SIGKILL when stopping the command.
pub const STOP_GRACE: Duration = Duration::from_secs(5);

/// Runs the command under every variant in turn (they would share the
/// port), `plan.repeat` times interleaved across variants (A B A B), as
/// `compare` does, rewriting the output after each row. After Ctrl-C the
/// row that was cut short is kept as a failed row that names it and the
/// rows not run.
pub fn run(plan: &MeasurePlan, sink: &Sink) -> anyhow::Result<Outcome> {
    let started = Instant::now();
    let mut doc = new_document();
    let mut failed = 0;
    let rows: Vec<(u32, &MeasureVariant)> = (0..plan.repeat)
        .flat_map(|rep| plan.variants.iter().map(move |v| (rep, v)))
        .collect();
    let n = rows.len();
    for (i, &(rep, v)) in rows.iter().enumerate() {
        let name = |rep: u32, v: &MeasureVariant| match plan.repeat {
            1 => v.variant.name.clone(),
            _ => format!("{} (repetition {rep})", v.variant.name),
        };
        let log =
            |msg: &str| crate::error::note(format_args!("[{}/{n}] {}: {msg}", i + 1, name(rep, v)));
        let mut cell = if interrupt::interrupted() {
            // Between rows: the next one never began.
            let mut cell = new_cell(v, rep);
            cell.measure = Some(new_record(plan));
            cell
        } else {
            run_row(plan, v, rep, &log)
        };
        crate::analysis::arenas::record(&mut cell, &doc.environment);
        if interrupt::interrupted() && cell.status == Status::Failed {
            // An interrupted row is not a result: it says what was cut
            // short, and which rows did not run.
            let stage = record::interrupted_stage(&cell);
            cell.error = Some(format!(
                "interrupted (Ctrl-C or SIGTERM) {stage}: not a result"
            ));
            if let Some(r) = &mut cell.measure {
                r.interrupted = true;
                r.not_run = rows[i + 1..].iter().map(|&(rep, v)| name(rep, v)).collect();
            }
            doc.cells.push(cell);
            doc.harness.wall_s = started.elapsed().as_secs_f64();
            doc.harness.cpu_s = own_cpu_s();
            sink.write(&doc)?;
            break;
        }
        match (&cell.status, &cell.error) {
            (Status::Ok, _) => log(&format!("ok in {:.1} s", cell.wall_ms / 1e3)),
            (Status::Failed, e) => log(&format!("FAILED: {}", e.as_deref().unwrap_or("?"))),
        }
        let load_failed = cell
            .measure
            .as_ref()
            .and_then(|m| m.load_error.as_ref())
            .inspect(|e| log(&format!("load command failed: {e}")))
            .is_some();
        if cell.status == Status::Failed || load_failed {
            failed += 1;
        }
        doc.cells.push(cell);
        doc.harness.wall_s = started.elapsed().as_secs_f64();
        doc.harness.cpu_s = own_cpu_s();
        sink.write(&doc)?;
    }
    Ok(Outcome {
        doc,
        failed,
        interrupted: interrupt::interrupted(),
    })
}

/// One variant's run of the command.
struct Row<'a> {
    plan: &'a MeasurePlan,
    log: &'a dyn Fn(&str),
    child: Child,
    root: i32,
    t0: Instant,
    output: StderrTail,
    tracker: Arc<Mutex<Tracker>>,
    /// Kills the command's tree and the load command's group if allocbench
    /// dies.
    watchdog: Arc<Watchdog>,
    /// What the command is doing now, for the timeline.
    now: Arc<Mutex<TimelinePhase>>,
    /// The tree on a timer, and every phase sample.
    timeline: Option<TimelineSampler>,
    phases: Vec<PhaseSample>,
    record: MeasureRecord,
    load_summary: Option<String>,
    load: LoadFigures,
    /// When the root, having exited with status 0, was last seen to leave
    /// processes running (a daemon).
    daemon_seen: Cell<Option<Instant>>,
}

/// A row not run yet: failed until it finishes.
fn new_cell(v: &MeasureVariant, repetition: u32) -> CellResult {
    CellResult {
        workload: WORKLOAD.into(),
        variant: v.variant.name.clone(),
        variant_def: v.variant.clone(),
        launch_env: v.launch.set.iter().cloned().collect::<BTreeMap<_, _>>(),
        prefork: allocbench_workloads::PreforkHook::None,
        prefork_call: None,
        lifecycle: allocbench_workloads::Lifecycle::None,
        repetition,
        cpus_pinned: None,
        cpus_allowed: None,
        glibc_arena_limit: None,
        glibc_arena_limit_cgroup: None,
        status: Status::Failed,
        error: None,
        allocator: None,
        spec: None,
        phases: Vec::new(),
        timeline: Timeline::default(),
        metrics: None,
        wall_ms: 0.0,
        stderr_tail: Vec::new(),
        measure: None,
        load_summary: None,
        machine: None,
    }
}

fn new_record(plan: &MeasurePlan) -> MeasureRecord {
    MeasureRecord {
        command: plan.command.clone(),
        ready: plan.ready.describe(),
        load: plan.load.clone(),
        duration_s: plan.load.is_none().then_some(plan.duration_s),
        idle_s: plan.idle_s(),
        ..MeasureRecord::default()
    }
}
