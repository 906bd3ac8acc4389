//! The most arenas glibc gives a process of a glibc cell, and what it would
//! give if it counted the cgroup's CPU limit as its CPUs: computed here
//! once, recorded with the cell (`glibc_arena_limit`,
//! `glibc_arena_limit_cgroup`) and told in the report.
//!
//! glibc (`arena_get2`, malloc/arena.c) gives a thread that finds no free
//! arena a new one while there are at most `arena_test` arenas (8 on
//! 64-bit), and then sizes its limit once: `arena_max` when set, else 8 ×
//! the CPUs online (`__get_nprocs`, which reads
//! `/sys/devices/system/cpu/online`: neither the affinity nor a cgroup's
//! limit). So a process has at most the setting, or else the larger of
//! `arena_test + 1` and 8 × CPUs online arenas, the main arena included:
//! 16 on 2 CPUs, 512 on 64, and 9 on one.

use allocbench_allocators::settings::glibc_malloc_setting;
use allocbench_allocators::{Base, Variant};

use crate::analysis::report::Report;
use crate::results::CellResult;
use crate::results::environment::Environment;
use crate::units;

/// Arenas per CPU online, and glibc's default `arena_test`
/// (`NARENAS_FROM_NCORES`).
pub const ARENAS_PER_CPU: u64 = if cfg!(target_pointer_width = "64") {
    8
} else {
    2
};

/// A malloc number the variant sets, as glibc takes it: glibc's tunables
/// refuse 0 (their minimum is 1) and keep the default.
fn setting(variant: &Variant, alias: &str, tunable: &str) -> Option<u64> {
    let env = variant.env.iter().map(|(k, v)| (k.as_str(), v.as_str()));
    glibc_malloc_setting(env, alias, tunable)
        .map(|(n, _)| n)
        .filter(|&n| n >= 1)
}

fn arena_max(variant: &Variant) -> Option<u64> {
    setting(variant, "MALLOC_ARENA_MAX", "glibc.malloc.arena_max")
}

fn arena_test(variant: &Variant) -> u64 {
    setting(variant, "MALLOC_ARENA_TEST", "glibc.malloc.arena_test").unwrap_or(ARENAS_PER_CPU)
}

/// The most arenas a glibc process of `variant` has with `cpus` CPUs
/// online (glibc assumes 2 when it cannot tell).
pub fn most_arenas(variant: &Variant, cpus: u64) -> u64 {
    let cpus = if cpus == 0 { 2 } else { cpus };
    arena_max(variant).unwrap_or_else(|| (arena_test(variant) + 1).max(ARENAS_PER_CPU * cpus))
}

/// What [`most_arenas`] comes from without an arena setting, for people:
/// `8 × 2 CPUs online`, or the arena test.
fn why(variant: &Variant, cpus: u64, counted: &str) -> String {
    let test = arena_test(variant);
    if test + 1 > ARENAS_PER_CPU * cpus {
        format!("its arena test, {test}, plus one")
    } else {
        format!("{ARENAS_PER_CPU} × {}{counted}", units::cpus(cpus as f64))
    }
}

/// The cell's two figures on a machine (`environment`): the most arenas
/// glibc gives, from the CPUs online; and from the cgroup's CPU limit
/// rounded up, when there is one. `None` for other allocators and when the
/// CPUs online are unknown.
pub fn glibc_arena_limits(
    variant: &Variant,
    environment: &Environment,
) -> Option<(u64, Option<u64>)> {
    if variant.base != Base::Glibc || environment.cpus_online == 0 {
        return None;
    }
    let online = most_arenas(variant, environment.cpus_online as u64);
    let cgroup = environment
        .cpu_limit()
        .map(|limit| most_arenas(variant, limit.ceil().max(1.0) as u64));
    Some((online, cgroup))
}

/// Records the figures with a cell run on the machine `environment`.
pub fn record(cell: &mut CellResult, environment: &Environment) {
    let (online, cgroup) = glibc_arena_limits(&cell.variant_def, environment).unzip();
    cell.glibc_arena_limit = online;
    cell.glibc_arena_limit_cgroup = cgroup.flatten();
}

/// The report's sentences for machine `m`: where glibc variants that ran
/// there would get a different arena limit from the cgroup's CPU limit
/// than from the CPUs online (a variant with an arena setting never does),
/// one sentence per pair of limits, naming the variants.
pub fn machine_notes(report: &Report, m: usize) -> Vec<String> {
    let environment = &report.machines[m].environment;
    let Some(cpu_limit) = environment.cpu_limit() else {
        return Vec::new();
    };
    let mut found: Vec<(u64, u64, &Variant, Vec<&str>)> = Vec::new();
    let cells = report
        .groups
        .iter()
        .flat_map(|g| g.runs.iter().filter(|(i, _)| *i == m))
        .flat_map(|(_, cells)| cells);
    for c in cells {
        let (Some(online), Some(cgroup)) = (c.glibc_arena_limit, c.glibc_arena_limit_cgroup) else {
            continue;
        };
        if online == cgroup {
            continue;
        }
        match found.iter_mut().find(|f| (f.0, f.1) == (online, cgroup)) {
            Some(f) if f.3.contains(&c.variant.as_str()) => {}
            Some(f) => f.3.push(&c.variant),
            None => found.push((online, cgroup, &c.variant_def, vec![&c.variant])),
        }
    }
    let cpus = environment.cpus_online as u64;
    found
        .into_iter()
        .map(|(online, cgroup, variant, names)| {
            format!(
                "glibc ({}): up to {online} arenas per process ({}); the cgroup's limit of {} would give {cgroup} ({}) — set MALLOC_ARENA_MAX",
                names.join(", "),
                why(variant, cpus, " online"),
                units::cpus(cpu_limit),
                why(variant, cpu_limit.ceil().max(1.0) as u64, ""),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn glibc(env: &[(&str, &str)]) -> Variant {
        Variant {
            name: "v".into(),
            base: Base::Glibc,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            description: String::new(),
            thp_disable: false,
            background_thread_in_workers: false,
        }
    }

    #[test]
    fn the_most_arenas_follow_glibcs_arena_get2() {
        let default = glibc(&[]);
        assert_eq!(most_arenas(&default, 2), 16);
        assert_eq!(most_arenas(&default, 64), 512);
        // Nine arenas exist before glibc sizes its limit of 8 × 1.
        assert_eq!(most_arenas(&default, 1), 9);
        assert_eq!(most_arenas(&glibc(&[("MALLOC_ARENA_MAX", "2")]), 64), 2);
        assert_eq!(
            most_arenas(&glibc(&[("GLIBC_TUNABLES", "glibc.malloc.arena_max=1")]), 2),
            1
        );
        // glibc ignores 0.
        assert_eq!(most_arenas(&glibc(&[("MALLOC_ARENA_MAX", "0")]), 2), 16);
        let test20 = glibc(&[("GLIBC_TUNABLES", "glibc.malloc.arena_test=20")]);
        assert_eq!(most_arenas(&test20, 2), 21);
        assert_eq!(most_arenas(&test20, 4), 32);
        assert_eq!(why(&default, 2, " online"), "8 × 2 CPUs online");
        assert_eq!(why(&default, 1, ""), "its arena test, 8, plus one");
    }

    #[test]
    fn the_cgroup_limit_counts_rounded_up_and_only_glibc_cells_get_figures() {
        let mut e = Environment {
            cpus_online: 2,
            cgroup_cpu_limit: Some(Some(1.5)),
            ..Environment::default()
        };
        let default = glibc(&[]);
        assert_eq!(glibc_arena_limits(&default, &e), Some((16, Some(16))));
        e.cgroup_cpu_limit = Some(Some(0.5));
        assert_eq!(glibc_arena_limits(&default, &e), Some((16, Some(9))));
        let arena2 = glibc(&[("MALLOC_ARENA_MAX", "2")]);
        assert_eq!(glibc_arena_limits(&arena2, &e), Some((2, Some(2))));
        e.cgroup_cpu_limit = Some(None);
        assert_eq!(glibc_arena_limits(&default, &e), Some((16, None)));
        let mut je = glibc(&[]);
        je.base = Base::Jemalloc;
        assert_eq!(glibc_arena_limits(&je, &e), None);
        e.cpus_online = 0;
        assert_eq!(glibc_arena_limits(&default, &e), None);
    }
}
