//! The checks of a run's options and sizes against the machine: the
//! spec's size on the command line, idle times, repetitions, timeouts,
//! sampling, threads and memory.

use std::time::Duration;

use allocbench_workloads::WorkloadSpec;

use crate::cli::WorkloadArgs;
use crate::error::usage;
use crate::sample::environment::mem_available;
use crate::sample::timeline::Sampling;

/// The most bytes Linux passes in one argument or environment string
/// (`MAX_ARG_STRLEN`, 32 pages), its terminating NUL included.
const MAX_ARG_STRLEN: usize = 32 * 4096;

/// Checks that the spec fits the worker's command line, which carries it
/// as one JSON argument: a longer one fails every cell's launch with
/// "Argument list too long".
pub fn check_spec_size(spec: &WorkloadSpec) -> anyhow::Result<()> {
    let len = serde_json::to_string(spec).map_or(0, |s| s.len());
    if len >= MAX_ARG_STRLEN {
        return Err(usage(format!(
            "the workload spec is {len} bytes as JSON; a cell's process receives it as one argument, which Linux caps at {} KiB (fewer size bands, say)",
            MAX_ARG_STRLEN / 1024
        )));
    }
    Ok(())
}

/// `--idle`, checked: increasing offsets of 0 to 86400 seconds.
pub fn check_idle(idle: &[f64]) -> anyhow::Result<()> {
    if let Some(bad) = idle
        .iter()
        .find(|s| !(s.is_finite() && **s >= 0.0 && **s <= 86_400.0))
    {
        return Err(usage(format!(
            "--idle: offsets must be seconds between 0 and 86400, got {bad}"
        )));
    }
    if idle.windows(2).any(|w| w[1] <= w[0]) {
        return Err(usage("--idle: offsets must be increasing"));
    }
    Ok(())
}

/// `--repeat`: 1 to 1000 repetitions.
pub fn check_repeat(n: u32) -> anyhow::Result<u32> {
    if !(1..=1000).contains(&n) {
        return Err(usage(format!(
            "--repeat: between 1 and 1000 repetitions, got {n}"
        )));
    }
    Ok(n)
}

/// `--timeout`, checked.
pub fn check_timeout(timeout: f64) -> anyhow::Result<Duration> {
    if !(timeout.is_finite() && timeout > 0.0 && timeout <= 1e6) {
        return Err(usage(format!(
            "--timeout: must be a positive number of seconds, got {timeout}"
        )));
    }
    Ok(Duration::from_secs_f64(timeout))
}

/// `--sample-hz`, checked.
pub fn check_sample_hz(hz: f64) -> anyhow::Result<f64> {
    if !(hz.is_finite() && (0.0..=1000.0).contains(&hz)) {
        return Err(usage(format!(
            "--sample-hz: must be between 0 (off) and 1000, got {hz}"
        )));
    }
    Ok(hz)
}

/// `--sample-budget`, a percentage of one CPU, as a share (0–1].
pub fn check_sample_budget(percent: f64) -> anyhow::Result<f64> {
    if !(percent.is_finite() && percent > 0.0 && percent <= 100.0) {
        return Err(usage(format!(
            "--sample-budget: must be a percentage of one CPU above 0 and at most 100, got {percent}"
        )));
    }
    Ok(percent / 100.0)
}

/// The timeline options of `args`, checked.
pub fn sampling(args: &WorkloadArgs) -> anyhow::Result<Sampling> {
    let hz = check_sample_hz(args.sample_hz)?;
    let budget = check_sample_budget(args.sample_budget)?;
    let toggle = match args.sample_toggle {
        None => None,
        Some(_) if hz == 0.0 => {
            return Err(usage(
                "--sample-toggle: turns the timeline off and on, which --sample-hz 0 turns off",
            ));
        }
        Some(s) if s.is_finite() && (0.1..=3600.0).contains(&s) => Some(Duration::from_secs_f64(s)),
        Some(s) => {
            return Err(usage(format!(
                "--sample-toggle: must be a window of 0.1 to 3600 seconds, got {s}"
            )));
        }
    };
    Ok(Sampling { hz, budget, toggle })
}

/// Serving threads a cell may run in all without `--force`: more is a typo
/// on the machines this is for, not a benchmark.
const SANE_THREADS: u64 = 4096;

/// The most threads this system lets a user start: the kernel's
/// `threads-max` and `pid_max`, and `ulimit -u`.
fn system_threads() -> Option<u64> {
    let nproc = nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC)
        .ok()
        .map(|(soft, _)| soft);
    [
        procfs::sys::kernel::threads_max().ok().map(u64::from),
        procfs::sys::kernel::pid_max()
            .ok()
            .and_then(|n| u64::try_from(n).ok()),
        nproc,
    ]
    .into_iter()
    .flatten()
    .min()
}

pub(super) fn check_threads(spec: &WorkloadSpec, force: bool) -> anyhow::Result<()> {
    let total = u64::from(spec.serving_processes()) * u64::from(spec.threads);
    let shape = format!(
        "{} processes × {} threads is {total} threads",
        spec.serving_processes(),
        spec.threads
    );
    if let Some(system) = system_threads()
        && total >= system
    {
        return Err(usage(format!(
            "{shape}, and this system allows {system} (kernel.threads-max, kernel.pid_max, ulimit -u)"
        )));
    }
    if total > SANE_THREADS && !force {
        return Err(usage(format!(
            "{shape}, more than {SANE_THREADS} in all; use fewer or --force"
        )));
    }
    Ok(())
}

pub(super) fn check_memory(spec: &WorkloadSpec) -> anyhow::Result<()> {
    let need = spec.memory_estimate_bytes();
    if let Some(avail) = mem_available()
        && need > avail
    {
        return Err(usage(format!(
            "these sizes may need up to {} MiB ({} MiB static × (1 + {} workers) plus request and cache memory of {} threads), \
             but only {} MiB are available; use smaller sizes or --force",
            need >> 20,
            spec.static_mib,
            spec.processes,
            spec.processes * spec.threads,
            avail >> 20
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_thread_limit_is_the_least_of_the_kernel_limits_and_ulimit() {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .unwrap()
                .trim()
                .parse::<u64>()
                .unwrap()
        };
        let (nproc, _) =
            nix::sys::resource::getrlimit(nix::sys::resource::Resource::RLIMIT_NPROC).unwrap();
        let least = read("/proc/sys/kernel/threads-max")
            .min(read("/proc/sys/kernel/pid_max"))
            .min(nproc);
        assert_eq!(system_threads(), Some(least));
    }
}
