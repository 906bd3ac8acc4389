//! From command-line arguments to checked plans. Every problem with the
//! user's input is a [`UsageError`] (exit code 2), found before any cell runs.

use std::time::Duration;

use allocbench_allocators::{Catalog, Variant};
use allocbench_workloads::fault::{FAULT_ENV, Fault};
use allocbench_workloads::{Lifecycle, PreforkHook, SpecError, WorkloadSpec, workload};

use crate::cli::{CompareArgs, RunArgs, WorkloadArgs};
use crate::exec::cell::CellPlan;
use crate::sample::timeline::Sampling;

mod arms;
mod checks;
mod resume;
pub mod shard;
use arms::{hooks, lifecycles};
pub use checks::{
    check_idle, check_repeat, check_sample_budget, check_sample_hz, check_spec_size, check_timeout,
    sampling,
};
use checks::{check_memory, check_threads};
pub use resume::previous_cells;

pub use crate::error::usage;

/// The workload run when `--workload` is not given.
pub const DEFAULT_WORKLOAD: &str = "server";

impl WorkloadArgs {
    /// The workload asked for, or the default.
    pub fn workload_name(&self) -> &str {
        self.workload.as_deref().unwrap_or(DEFAULT_WORKLOAD)
    }
}

/// Default idle offsets after `drained`, in seconds.
pub const IDLE_DEFAULT: &[f64] = &[0.0, 0.1, 1.0, 10.0, 30.0];
pub const IDLE_QUICK: &[f64] = &[0.0, 0.1, 1.0];
/// Idle offsets of the quick sweep `plan` runs: the model needs none.
pub const IDLE_PLAN: &[f64] = &[0.0];

/// The checked workload part of a run.
#[derive(Debug, Clone)]
pub struct WorkloadChoice {
    pub name: String,
    pub spec: WorkloadSpec,
    pub idle: Vec<f64>,
    pub timeout: Duration,
    pub sampling: Sampling,
    /// Pin the cell's processes to this many CPUs.
    pub cpus: Option<usize>,
}

pub(crate) fn check_proc() -> anyhow::Result<()> {
    if !cfg!(target_os = "linux") {
        return Err(usage("allocbench runs on Linux only: it reads /proc"));
    }
    let rollup = procfs::process::Process::myself()
        .and_then(|p| p.smaps_rollup())
        .map_err(|e| {
            usage(format!(
                "cannot read /proc/self/smaps_rollup ({e}); allocbench needs Linux 5.8 or later with /proc mounted"
            ))
        })?;
    // Tables compare on Pss_Anon (Linux 5.8): without it they would compare
    // zeros.
    let has_pss_anon = rollup
        .memory_map_rollup
        .0
        .first()
        .is_some_and(|m| m.extension.map.contains_key("Pss_Anon"));
    if !has_pss_anon {
        return Err(usage(
            "/proc/self/smaps_rollup has no Pss_Anon line; allocbench needs Linux 5.8 or later",
        ));
    }
    Ok(())
}

/// The variant catalog: presets plus the user's variants file, whose
/// `ALLOCBENCH_FAULT` values must parse (a malformed one would fail every
/// cell of the variant in its first process).
pub fn catalog(file: Option<&std::path::Path>) -> anyhow::Result<Catalog> {
    let catalog = match file {
        Some(path) => {
            let text = crate::read::read_input(path)
                .map_err(|e| usage(format!("variants file {}: {e}", path.display())))?;
            Catalog::with_file_text(path, &text).map_err(usage)?
        }
        None => Catalog::default(),
    };
    for v in &catalog.variants {
        if let Some(fault) = v.env.get(FAULT_ENV).filter(|f| !f.is_empty()) {
            Fault::parse(fault).map_err(|e| usage(format!("variant {:?}: {e}", v.name)))?;
        }
    }
    Ok(catalog)
}

pub fn workload_choice(args: &WorkloadArgs) -> anyhow::Result<WorkloadChoice> {
    check_proc()?;
    let w = workload(args.workload_name()).map_err(usage)?;
    let mut spec = if args.quick { w.quick } else { w.spec };
    if let Some(path) = &args.spec {
        let text = crate::read::read_input(path)
            .map_err(|e| usage(format!("spec file {}: {e}", path.display())))?;
        spec = spec.overlay_toml(&text).map_err(|e| match e {
            SpecError::File { message, .. } => {
                usage(format!("spec file {}: {message}", path.display()))
            }
            other => usage(other),
        })?;
    }
    // Several values make a grid (`sweep`); the spec takes the largest,
    // which the memory check then covers.
    if let Some(&v) = args.processes.iter().max() {
        spec.processes = v;
    }
    if let Some(&v) = args.threads.iter().max() {
        spec.threads = v;
    }
    if let Some(v) = args.requests {
        spec.requests = v;
    }
    if let Some(v) = args.static_mib {
        spec.static_mib = v;
    }
    if let Some(v) = args.seed {
        spec.seed = v;
    }
    if args.gvl {
        spec.gvl = true;
    }
    if let Some(v) = args.io_wait_share {
        spec.io_wait_share = v;
    }
    if let Some(v) = args.idle_trickle {
        spec.idle_trickle_rps = v;
    }
    if args.no_app_writes {
        spec.static_writes_per_request = 0;
    }
    spec.validate().map_err(usage)?;
    check_spec_size(&spec)?;
    let online = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if let Some(n) = args.cpus
        && !(1..=online).contains(&n)
    {
        return Err(usage(format!(
            "--cpus: this process may run on {online} CPUs; pin to 1 to {online}, got {n}"
        )));
    }

    let idle = match &args.idle {
        Some(v) => v.clone(),
        None if args.quick => IDLE_QUICK.to_vec(),
        None => IDLE_DEFAULT.to_vec(),
    };
    check_idle(&idle)?;
    let timeout = check_timeout(args.timeout)?;
    let sampling = sampling(args)?;
    check_threads(&spec, args.force)?;
    if !args.force {
        check_memory(&spec)?;
    }
    Ok(WorkloadChoice {
        name: args.workload_name().to_string(),
        spec,
        idle,
        timeout,
        sampling,
        cpus: args.cpus,
    })
}

/// How the cells of a run are laid out.
#[derive(Debug, Clone, Copy)]
pub struct Layout<'a> {
    /// The lifecycle policies to compare (one cell of each per variant).
    pub lifecycles: &'a [Lifecycle],
    pub repeat: u32,
    /// Each variant also without application writes into static objects.
    pub cow_attribution: bool,
}

impl Default for Layout<'_> {
    fn default() -> Self {
        Layout {
            lifecycles: &[],
            repeat: 1,
            cow_attribution: false,
        }
    }
}

/// The cells: repetitions outermost, so that variants interleave (A B C A B C)
/// and drift on a noisy machine does not favour one of them.
pub fn plans(
    w: &WorkloadChoice,
    variants: &[Variant],
    hooks: &[PreforkHook],
    layout: Layout,
) -> Vec<CellPlan> {
    let mut out = Vec::new();
    let default = [w.spec.lifecycle.clone()];
    let lifecycles = if layout.lifecycles.is_empty() {
        &default[..]
    } else {
        layout.lifecycles
    };
    for repetition in 0..layout.repeat {
        for (&hook, lifecycle) in hooks
            .iter()
            .flat_map(|h| lifecycles.iter().map(move |l| (h, l)))
        {
            for v in variants {
                let writes: &[bool] = if layout.cow_attribution {
                    &[true, false]
                } else {
                    &[true]
                };
                for &app_writes in writes {
                    let mut spec = WorkloadSpec {
                        prefork: hook,
                        lifecycle: lifecycle.clone(),
                        ..w.spec.clone()
                    };
                    if !app_writes {
                        spec.static_writes_per_request = 0;
                    }
                    out.push(CellPlan {
                        workload: w.name.clone(),
                        variant: v.clone(),
                        spec,
                        repetition,
                        idle: w.idle.clone(),
                        phase_timeout: w.timeout,
                        sampling: w.sampling,
                        cpus: w.cpus,
                    });
                }
            }
        }
    }
    out
}

/// Refuses lists of processes or threads outside `sweep`.
fn single_point(args: &WorkloadArgs) -> anyhow::Result<()> {
    if args.processes.len() > 1 || args.threads.len() > 1 {
        return Err(usage(
            "--processes and --threads take one value here; use sweep for a grid",
        ));
    }
    Ok(())
}

pub fn run_plans(args: &RunArgs) -> anyhow::Result<Vec<CellPlan>> {
    single_point(&args.workload)?;
    let w = workload_choice(&args.workload)?;
    let catalog = catalog(args.workload.variants_file.as_deref())?;
    if args.variant.contains(',') {
        return Err(usage(
            "--variant takes one variant; use compare for several",
        ));
    }
    let variants = catalog.resolve(&args.variant).map_err(usage)?;
    if args.prefork.as_deref().is_some_and(|p| p.contains(',')) {
        return Err(usage(
            "--prefork takes one hook with run; use compare for several",
        ));
    }
    let hooks = hooks(args.prefork.as_slice(), w.spec.prefork)?;
    if args
        .lifecycle
        .as_deref()
        .is_some_and(|l| Lifecycle::split_list(l).len() > 1)
    {
        return Err(usage(
            "--lifecycle takes one policy with run; use compare for several",
        ));
    }
    let lifecycles = lifecycles(args.lifecycle.as_slice(), &w.spec)?;
    let layout = Layout {
        lifecycles: &lifecycles,
        ..Layout::default()
    };
    check_faults(plans(&w, &variants, &hooks, layout))
}

pub fn compare_plans(args: &CompareArgs) -> anyhow::Result<Vec<CellPlan>> {
    single_point(&args.workload)?;
    let w = workload_choice(&args.workload)?;
    let catalog = catalog(args.workload.variants_file.as_deref())?;
    let variants = match args.variants.as_slice() {
        [] => catalog
            .available()
            .into_iter()
            // Default: the presets (user-defined variants are asked for by name).
            .filter(|v| {
                allocbench_allocators::presets()
                    .iter()
                    .any(|p| p.name == v.name)
            })
            .collect(),
        list => catalog.resolve_each(list).map_err(usage)?,
    };
    let hooks = hooks(&args.prefork, w.spec.prefork)?;
    check_repeat(args.repeat)?;
    if args.cow_attribution && w.spec.static_writes_per_request == 0 {
        return Err(usage(
            "--cow-attribution: this workload makes no application writes to compare against",
        ));
    }
    let lifecycles = lifecycles(&args.lifecycle, &w.spec)?;
    let layout = Layout {
        lifecycles: &lifecycles,
        repeat: args.repeat,
        cow_attribution: args.cow_attribution,
    };
    check_faults(plans(&w, &variants, &hooks, layout))
}

/// Refuses a variant whose `ALLOCBENCH_FAULT` (the project's tests only)
/// aims at a worker none of its cells forks: it would never fire.
fn check_faults(plans: Vec<CellPlan>) -> anyhow::Result<Vec<CellPlan>> {
    for p in &plans {
        let Some(fault) = p.variant.env.get(FAULT_ENV).filter(|f| !f.is_empty()) else {
            continue;
        };
        let Some(worker) = Fault::parse(fault).ok().and_then(|f| f.worker()) else {
            continue;
        };
        // Without workers (0 processes) the master serves, as worker 0.
        let most = plans
            .iter()
            .filter(|q| q.variant.name == p.variant.name)
            .map(|q| q.spec.processes.max(1))
            .max()
            .unwrap_or(1);
        if worker >= most {
            return Err(usage(format!(
                "variant {:?}: {FAULT_ENV}={fault:?} aims at worker {worker}, but its cells fork at most {most} (workers count from 0)",
                p.variant.name
            )));
        }
    }
    Ok(plans)
}

/// Variants a sweep or plan uses by default.
pub const SWEEP_VARIANTS: &str = "glibc,glibc-arena2,jemalloc,mimalloc";
/// The grid a sweep uses by default, and a plan's own quick sweep.
pub const SWEEP_PROCESSES: &[u32] = &[1, 2, 4];
pub const SWEEP_THREADS: &[u32] = &[1, 2, 4, 8];
pub const PLAN_THREADS: &[u32] = &[1, 2, 4];

/// The cells of the quick sweep `plan` runs without `--from`: processes
/// 1,2,4 × threads 1,2,4 (unless given) at the workload's `--quick` sizes
/// (flags and `--spec` still override them), one idle sample at 0 s.
pub fn plan_sweep_plans(args: &WorkloadArgs, variants: &[String]) -> anyhow::Result<Vec<CellPlan>> {
    let mut quick = args.clone();
    quick.quick = true;
    if quick.idle.is_none() {
        quick.idle = Some(IDLE_PLAN.to_vec());
    }
    sweep_plans(&quick, variants, 1, PLAN_THREADS)
}

/// The cells of a sweep: every grid point, the variants interleaved within
/// it, repetitions outermost.
pub fn sweep_plans(
    args: &WorkloadArgs,
    variants: &[String],
    repeat: u32,
    default_threads: &[u32],
) -> anyhow::Result<Vec<CellPlan>> {
    let w = workload_choice(args)?;
    let catalog = catalog(args.variants_file.as_deref())?;
    let variants = if variants.is_empty() {
        catalog.resolve(SWEEP_VARIANTS)
    } else {
        catalog.resolve_each(variants)
    }
    .map_err(usage)?;
    if !(1..=1000).contains(&repeat) {
        return Err(usage(format!(
            "--repeat: between 1 and 1000 repetitions, got {repeat}"
        )));
    }
    let ps = if args.processes.is_empty() {
        SWEEP_PROCESSES.to_vec()
    } else {
        args.processes.clone()
    };
    let ts = if args.threads.is_empty() {
        default_threads.to_vec()
    } else {
        args.threads.clone()
    };
    let mut out = Vec::new();
    for repetition in 0..repeat {
        for &p in &ps {
            for &t in &ts {
                let spec = WorkloadSpec {
                    processes: p,
                    threads: t,
                    ..w.spec.clone()
                };
                spec.validate().map_err(usage)?;
                check_threads(&spec, args.force)?;
                if !args.force {
                    check_memory(&spec)?;
                }
                for v in &variants {
                    out.push(CellPlan {
                        workload: w.name.clone(),
                        variant: v.clone(),
                        spec: spec.clone(),
                        repetition,
                        idle: w.idle.clone(),
                        phase_timeout: w.timeout,
                        sampling: w.sampling,
                        cpus: w.cpus,
                    });
                }
            }
        }
    }
    check_faults(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn plan_args(extra: &[&str]) -> WorkloadArgs {
        let mut argv = vec!["allocbench", "plan", "--memory", "1GiB"];
        argv.extend_from_slice(extra);
        match crate::cli::Cli::try_parse_from(argv).unwrap().command {
            crate::cli::Command::Plan(p) => p.workload,
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_quick_sweep_of_plan_is_at_quick_sizes_with_one_idle_sample() {
        let glibc = ["glibc".to_string()];
        let plans = plan_sweep_plans(&plan_args(&[]), &glibc).unwrap();
        let quick = workload("server").unwrap().quick;
        let grid: Vec<(u32, u32)> = plans
            .iter()
            .map(|p| (p.spec.processes, p.spec.threads))
            .collect();
        assert_eq!(
            grid,
            [
                (1, 1),
                (1, 2),
                (1, 4),
                (2, 1),
                (2, 2),
                (2, 4),
                (4, 1),
                (4, 2),
                (4, 4)
            ]
        );
        for p in &plans {
            let spec = WorkloadSpec {
                processes: quick.processes,
                threads: quick.threads,
                ..p.spec.clone()
            };
            assert_eq!(spec, quick);
            assert_eq!(p.idle, IDLE_PLAN);
        }
        // Flags still override the quick sizes and offsets.
        let plans = plan_sweep_plans(
            &plan_args(&["--requests", "400", "--idle", "0,1", "--threads", "1,2"]),
            &glibc,
        )
        .unwrap();
        assert_eq!(plans.len(), 6);
        assert!(
            plans
                .iter()
                .all(|p| p.spec.requests == 400 && p.idle == [0.0, 1.0])
        );
    }

    #[test]
    fn this_machine_has_the_proc_files_allocbench_reads() {
        check_proc().unwrap();
    }
}
