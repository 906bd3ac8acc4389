//! `allocbench plan`: fit the memory model (from a sweep's file or a quick
//! sweep), recommend processes × threads × variant for a budget, and verify
//! the recommendation by running it.

use allocbench_workloads::WorkloadSpec;
use serde::Serialize;

use super::{emit, exit_code, exit_code_saying};
use crate::analysis::sweep;
use crate::cli::{Format, ListFormat};
use crate::error::note;
use crate::exec::cell;
use crate::exec::interrupt;
use crate::exec::runner;
use crate::exec::runner::Sink;
use crate::output::{self, Markup, exporter};
use crate::plans;
use crate::results;
use crate::units;

/// `plan --format json`: the budget, the models fitted, the
/// recommendation and its runners-up, and the verification when asked.
#[derive(Serialize)]
struct PlanDocument<'a> {
    allocbench_version: &'static str,
    /// The version of allocbench's output layouts (as in result documents).
    format_version: u32,
    budget_bytes: u64,
    /// CPUs the recommendation is for.
    cpus: u32,
    sweep: SweepSource<'a>,
    fits: &'a [crate::results::model::Fit],
    unfitted: &'a [crate::results::model::Unfitted],
    recommended: &'a crate::results::model::Candidate,
    /// The best five, the recommendation first.
    candidates: Vec<&'a crate::results::model::Candidate>,
    /// `null` without `--verify`.
    verification: Option<Verification>,
}

/// The sweep the model was fitted on.
#[derive(Serialize)]
struct SweepSource<'a> {
    /// The file given to `--from`; `null` for a quick sweep run here.
    from: Option<String>,
    workload: &'a str,
    spec: Option<&'a WorkloadSpec>,
    cpus_pinned: Option<usize>,
}

/// The recommendation run for real (`--verify`).
#[derive(Serialize)]
struct Verification {
    workload: String,
    variant: String,
    processes: u32,
    threads: u32,
    spec: WorkloadSpec,
    cpus_pinned: Option<usize>,
    predicted_pss: f64,
    predicted_throughput_rps: f64,
    status: results::Status,
    /// Why the run failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    measured_pss_anon: Option<u64>,
    /// (predicted − measured) / measured, in percent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pss_error_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    measured_throughput_rps: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    within_budget: Option<bool>,
}

/// Workload flags given to `plan --from` that disagree with the sweep
/// (whose cells' spec and pinning the verification runs).
fn conflicts(
    args: &crate::cli::PlanArgs,
    cell: &results::CellResult,
    sweep_cpus: Option<usize>,
) -> Vec<String> {
    let w = &args.workload;
    let Some(spec) = &cell.spec else {
        return vec!["the sweep's cells have no workload spec".into()];
    };
    let mut out = Vec::new();
    let mut differ = |flag: &str, given: String, swept: String| {
        if given != swept {
            out.push(format!("{flag} {given} (the sweep has {swept})"));
        }
    };
    if let Some(name) = &w.workload {
        differ("--workload", name.clone(), cell.workload.clone());
    }
    if let Some(v) = w.requests {
        differ("--requests", v.to_string(), spec.requests.to_string());
    }
    if let Some(v) = w.static_mib {
        differ("--static-mib", v.to_string(), spec.static_mib.to_string());
    }
    if let Some(v) = w.seed {
        differ("--seed", v.to_string(), spec.seed.to_string());
    }
    if let Some(v) = w.io_wait_share {
        differ(
            "--io-wait-share",
            v.to_string(),
            spec.io_wait_share.to_string(),
        );
    }
    if let Some(v) = w.idle_trickle {
        differ(
            "--idle-trickle",
            v.to_string(),
            spec.idle_trickle_rps.to_string(),
        );
    }
    if w.gvl && !spec.gvl {
        out.push("--gvl (the sweep ran without a GVL)".into());
    }
    if w.no_app_writes && spec.static_writes_per_request > 0 {
        out.push("--no-app-writes (the sweep's requests write into static objects)".into());
    }
    if let Some(n) = w.cpus {
        match sweep_cpus {
            Some(k) if k != n => out.push(format!("--cpus {n} (the sweep was pinned to {k})")),
            None if args.verify => out.push(format!(
                "--cpus {n} with --verify (the sweep ran unpinned, and so does its verification)"
            )),
            _ => {}
        }
    }
    if w.quick {
        out.push("--quick (the sweep's sizes are used)".into());
    }
    if w.spec.is_some() {
        out.push("--spec (the sweep's spec is used)".into());
    }
    if !w.processes.is_empty() || !w.threads.is_empty() {
        out.push("--processes/--threads (the plan chooses them from the sweep's grid)".into());
    }
    out
}

/// `allocbench plan`: fit (from a file or a quick sweep), recommend, verify.
/// Exit 1 when nothing fits, or the verification failed or measured more
/// than the budget.
pub(super) fn run(args: &crate::cli::PlanArgs) -> anyhow::Result<i32> {
    let budget =
        sweep::parse_size(&args.memory).map_err(|e| plans::usage(format!("--memory: {e}")))?;
    let (doc, source) = match &args.from {
        Some(path) => {
            let mut docs = crate::results::load::load(std::slice::from_ref(path))?;
            let doc = docs.remove(0).1;
            if doc.machines.len() > 1 {
                return Err(plans::usage(format!(
                    "--from {}: a merged document of {} machine shapes ({}); a plan is for one: merge the sweeps of one shape",
                    path.display(),
                    doc.machines.len(),
                    doc.machines
                        .iter()
                        .map(|m| m.label.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                )));
            }
            if let Some(s) = doc.shard {
                return Err(plans::usage(format!(
                    "--from {}: shard {s} holds only part of its command's cells; merge every shard first (allocbench merge)",
                    path.display()
                )));
            }
            (doc, Some(path.display().to_string()))
        }
        None => {
            let plans = plans::plan_sweep_plans(&args.workload, &args.variants)?;
            let grid = |f: fn(&cell::CellPlan) -> u32| {
                let mut v: Vec<u32> = plans.iter().map(f).collect();
                v.sort_unstable();
                v.dedup();
                v.iter().map(u32::to_string).collect::<Vec<_>>().join(",")
            };
            note(format_args!(
                "No --from: running a quick sweep (processes {} × threads {}, --quick sizes: {} cells).",
                grid(|p| p.spec.processes),
                grid(|p| p.spec.threads),
                plans.len()
            ));
            interrupt::install()?;
            let sink = Sink {
                exporter: exporter(Format::Json),
                output: None,
                previous: Vec::new(),
                json: None,
                shard: None,
            };
            let outcome = runner::run(&plans, &sink)?;
            if outcome.interrupted {
                return Ok(exit_code_saying(
                    &outcome,
                    "Interrupted: the sweep did not finish, so nothing was planned.",
                ));
            }
            (outcome.doc, None)
        }
    };
    // Only the variants asked for are fitted.
    let cells = sweep::select(&doc.cells, &args.variants).map_err(plans::usage)?;
    let fitted = sweep::fit(&cells);
    for u in &fitted.unfitted {
        note(format_args!("Not considered: {}: {}", u.variant, u.reason));
    }
    if fitted.fits.is_empty() {
        let why = "no variant of the sweep can be fitted (see above)";
        return if source.is_some() {
            Err(plans::usage(why))
        } else {
            note(why);
            Ok(1)
        };
    }
    // The configuration the model was fitted on: the spec and pinning of
    // the sweep's cells (those of the first variant fitted; a variant's
    // cells share one configuration, or it is not fitted).
    let swept = |variant: &str| {
        cells.iter().find(|c| {
            c.variant == variant
                && c.status == results::Status::Ok
                && c.spec.as_ref().is_some_and(|s| s.processes > 0)
        })
    };
    let first = swept(&fitted.fits[0].variant).expect("a fitted variant has cells");
    let sweep_cpus = first.cpus_pinned;
    if source.is_some() {
        let bad = conflicts(args, first, sweep_cpus);
        if !bad.is_empty() {
            return Err(plans::usage(format!(
                "with --from, the workload is the sweep's; these flags disagree with it: {}",
                bad.join("; ")
            )));
        }
    }
    let cpus = match (args.workload.cpus, sweep_cpus) {
        (Some(n), _) | (None, Some(n)) => n,
        (None, None) if source.is_some() => doc.environment.cpus.max(1),
        (None, None) => std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    } as u32;
    let fits = fitted.fits;
    let candidates = sweep::plan(&fits, budget as f64, cpus);
    let Some(best) = candidates.first().cloned() else {
        note(format_args!(
            "No configuration fits in {}: the smallest predicted tree needs more.",
            units::size(budget)
        ));
        return Ok(1);
    };
    let json = args.format == ListFormat::Json;
    // Stdout, written at the end (a reader that went away is no error).
    let mut out = String::new();
    if !json {
        let mut t = output::Table::new(&[
            ("", false),
            ("variant", false),
            ("processes", true),
            ("threads", true),
            ("predicted PSS", true),
            ("req/s", true),
            ("throughput", false),
        ]);
        for (i, c) in candidates.iter().take(5).enumerate() {
            t.push(vec![
                if i == 0 {
                    "recommended".into()
                } else {
                    format!("runner-up {i}")
                },
                c.variant.clone(),
                c.processes.to_string(),
                c.threads.to_string(),
                units::mib(c.predicted_pss as u64),
                units::rate(c.throughput_rps),
                if c.measured {
                    "measured".into()
                } else {
                    "extrapolated".into()
                },
            ]);
        }
        out.push_str(&format!(
            "Budget {} for the whole tree, {cpus} CPUs. Most throughput that fits, then least memory:\n\n",
            units::size(budget)
        ));
        out.push_str(&output::render(&t, Markup::Terminal));
    }
    let swept_cell = swept(&best.variant).expect("a fitted variant has cells");
    let mut code = 0;
    let mut verification = None;
    if args.verify {
        let (v, c) = verify(args, swept_cell, &best, budget, json, &mut out)?;
        verification = Some(v);
        code = c;
    }
    if json {
        let doc = PlanDocument {
            allocbench_version: env!("CARGO_PKG_VERSION"),
            format_version: results::FORMAT_VERSION,
            budget_bytes: budget,
            cpus,
            sweep: SweepSource {
                from: source,
                workload: &swept_cell.workload,
                spec: swept_cell.spec.as_ref(),
                cpus_pinned: swept_cell.cpus_pinned,
            },
            fits: &fits,
            unfitted: &fitted.unfitted,
            recommended: &best,
            candidates: candidates.iter().take(5).collect(),
            verification,
        };
        out.push_str(&serde_json::to_string_pretty(&doc)?);
        out.push('\n');
    }
    emit(&out)?;
    Ok(code)
}

/// Runs the recommended configuration: the spec of the sweep's cell
/// `swept` with the recommended processes and threads, pinned as it was.
/// Returns the verification (JSON) and the exit code: 1 when the cell
/// failed or its tree measured more than the budget.
fn verify(
    args: &crate::cli::PlanArgs,
    swept: &results::CellResult,
    best: &crate::results::model::Candidate,
    budget: u64,
    json: bool,
    out: &mut String,
) -> anyhow::Result<(Verification, i32)> {
    let spec = WorkloadSpec {
        processes: best.processes,
        threads: best.threads,
        ..swept.spec.clone().expect("a fitted cell has a spec")
    };
    spec.validate().map_err(plans::usage)?;
    plans::check_spec_size(&spec)?;
    let online = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    if let Some(n) = swept.cpus_pinned
        && n > online
    {
        return Err(plans::usage(format!(
            "--verify: the sweep was pinned to {n} CPUs; this process may run on {online}"
        )));
    }
    let w = &args.workload;
    let phase_timeout = plans::check_timeout(w.timeout)?;
    let sampling = plans::sampling(w)?;
    let plan = cell::CellPlan {
        workload: swept.workload.clone(),
        variant: swept.variant_def.clone(),
        spec: spec.clone(),
        repetition: 0,
        idle: vec![0.0],
        phase_timeout,
        sampling,
        cpus: swept.cpus_pinned,
    };
    interrupt::install()?;
    let sink = Sink {
        exporter: exporter(Format::Json),
        output: None,
        previous: Vec::new(),
        json: None,
        shard: None,
    };
    let outcome = runner::run(std::slice::from_ref(&plan), &sink)?;
    let cell = outcome.doc.cells.first();
    let mut v = Verification {
        workload: plan.workload.clone(),
        variant: best.variant.clone(),
        processes: best.processes,
        threads: best.threads,
        spec: spec.clone(),
        cpus_pinned: plan.cpus,
        predicted_pss: best.predicted_pss,
        predicted_throughput_rps: best.throughput_rps,
        status: results::Status::Failed,
        error: None,
        measured_pss_anon: None,
        pss_error_pct: None,
        measured_throughput_rps: None,
        within_budget: None,
    };
    let Some(m) = cell.and_then(|c| c.metrics.as_ref()) else {
        let error = cell
            .and_then(|c| c.error.clone())
            .unwrap_or_else(|| "interrupted".into());
        note(format_args!("Verification failed: {error}"));
        v.error = Some(error);
        let code = if outcome.interrupted {
            exit_code(&outcome)
        } else {
            1
        };
        return Ok((v, code));
    };
    let measured = m.tree_pss_anon_steady;
    let within = measured <= budget;
    let pct = |p: f64, m: f64| (p - m) / m * 100.0;
    v.status = results::Status::Ok;
    v.measured_pss_anon = Some(measured);
    v.pss_error_pct = Some(pct(best.predicted_pss, measured as f64));
    v.measured_throughput_rps = Some(m.throughput_rps);
    v.within_budget = Some(within);
    let verdict = if within {
        format!(
            "the measured tree fits the budget of {}.",
            units::size(budget)
        )
    } else {
        format!(
            "OVER BUDGET: the measured tree exceeds the budget of {} by {}; this recommendation does not fit.",
            units::size(budget),
            units::size(measured - budget)
        )
    };
    let line = format!(
        "Verified {} with {} × {}: tree PSS predicted {}, measured {} ({:+.1}%); throughput predicted {} req/s, measured {} ({:+.1}%): {verdict}",
        best.variant,
        best.processes,
        best.threads,
        units::mib(best.predicted_pss as u64),
        units::mib(measured),
        pct(best.predicted_pss, measured as f64),
        units::rate(best.throughput_rps),
        units::rate(m.throughput_rps),
        pct(best.throughput_rps, m.throughput_rps)
    );
    if json {
        note(line);
    } else {
        out.push_str(&format!("\n{line}\n"));
    }
    Ok((v, if within { exit_code(&outcome) } else { 1 }))
}
