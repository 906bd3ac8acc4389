//! `--shard K/N`: the part of a command's cells one of N machines runs.
//!
//! The unit is a *comparison*: one workload configuration (a sweep's grid
//! point) × pre-fork hook × repetition, with every variant (and write mode)
//! in it, so a comparison's ratios never mix machines. Units are dealt out
//! by their estimated work, largest first, each to the least-loaded shard
//! (ties to the next shard after the command's own starting shard). The
//! starting shard comes from a hash of the units themselves, so that the
//! several commands of a matrix (scripts/publish) do not all pile their
//! first units onto shard 0. Everything is computed from the cells the
//! command line plans, never from the machine: N machines given the same
//! command line and K = 0…N−1 run every cell exactly once.

use crate::exec::cell::CellPlan;
use crate::results::shard::Shard;

/// The key of the comparison a cell belongs to: its configuration (the
/// spec but for the hook and the application's writes, and the pinning),
/// its hook and its repetition. The same on every machine.
fn unit_key(p: &CellPlan) -> String {
    let configuration =
        crate::analysis::stats::configuration_key(&p.workload, Some(&p.spec), p.cpus, None);
    format!("{configuration}|{}|{}", p.spec.prefork, p.repetition)
}

/// A cell's estimated work, in arbitrary units: the objects its serving
/// processes allocate, plus its idle window (a cell's idle time overlaps
/// the next cell's busy time, so it counts little).
fn work(p: &CellPlan) -> f64 {
    let s = &p.spec;
    let objects =
        s.requests as f64 * s.objects_per_request.max(1) as f64 * s.processes.max(1) as f64;
    let idle = p.idle.iter().copied().fold(0.0, f64::max);
    objects + idle * 1e4
}

/// FNV-1a, 64 bits: a hash that is the same on every machine and in every
/// version of Rust (std's `DefaultHasher` promises neither).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The comparisons of `plans`, in plan order: (key, indices of its cells).
fn units(plans: &[CellPlan]) -> Vec<(String, Vec<usize>)> {
    let mut out: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, p) in plans.iter().enumerate() {
        let key = unit_key(p);
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, cells)) => cells.push(i),
            None => out.push((key, vec![i])),
        }
    }
    out
}

/// Which shard each comparison of `plans` goes to, in the order of
/// [`units`].
fn assign(plans: &[CellPlan], count: u32) -> Vec<(Vec<usize>, u32)> {
    let units = units(plans);
    let n = count as usize;
    let start = units
        .iter()
        .fold(0u64, |h, (k, _)| h ^ fnv1a(k.as_bytes()).rotate_left(7))
        % count as u64;
    let cost: Vec<f64> = units
        .iter()
        .map(|(_, cells)| cells.iter().map(|&i| work(&plans[i])).sum())
        .collect();
    // Largest first; equal costs keep plan order (a stable sort).
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by(|&a, &b| cost[b].total_cmp(&cost[a]));
    let mut load = vec![0.0f64; n];
    let mut shard_of = vec![0u32; units.len()];
    for u in order {
        let best = (0..n)
            .map(|j| (start as usize + j) % n)
            .min_by(|&a, &b| load[a].total_cmp(&load[b]))
            .expect("at least one shard");
        load[best] += cost[u];
        shard_of[u] = best as u32;
    }
    units
        .into_iter()
        .zip(shard_of)
        .map(|((_, cells), s)| (cells, s))
        .collect()
}

/// What shard `shard` holds of `plans`.
struct Part {
    /// Its cells' indices, in plan order.
    cells: Vec<usize>,
    /// Its comparisons, of all comparisons.
    units: usize,
    of: usize,
    /// Its share of the estimated work.
    share: f64,
}

fn part(plans: &[CellPlan], shard: Shard) -> Part {
    let assigned = assign(plans, shard.count);
    let of = assigned.len();
    let mine: Vec<Vec<usize>> = assigned
        .into_iter()
        .filter(|(_, s)| *s == shard.index)
        .map(|(c, _)| c)
        .collect();
    let mut cells: Vec<usize> = mine.iter().flatten().copied().collect();
    cells.sort_unstable();
    let total: f64 = plans.iter().map(work).sum();
    // From +0.0: an empty float sum is -0.0, printed "-0%".
    let share = cells
        .iter()
        .map(|&i| work(&plans[i]))
        .fold(0.0, |a, b| a + b);
    Part {
        cells,
        units: mine.len(),
        of,
        share: if total > 0.0 { share / total } else { 0.0 },
    }
}

/// The cells of `plans` whose indices are `mine` (ascending).
fn take(plans: Vec<CellPlan>, mine: &[usize]) -> Vec<CellPlan> {
    plans
        .into_iter()
        .enumerate()
        .filter(|(i, _)| mine.binary_search(i).is_ok())
        .map(|(_, p)| p)
        .collect()
}

/// The cells of `plans` that shard `shard` runs, in plan order.
#[cfg(test)]
fn select(plans: Vec<CellPlan>, shard: Shard) -> Vec<CellPlan> {
    let mine = part(&plans, shard).cells;
    take(plans, &mine)
}

/// `--shard K/N` applied to a command's cells: the cells of that shard
/// (all without `--shard`), with a line on stderr saying what it holds.
pub fn apply(
    plans: Vec<CellPlan>,
    args: &crate::cli::ShardArgs,
    out: &crate::cli::OutputArgs,
) -> anyhow::Result<(Vec<CellPlan>, Option<Shard>)> {
    let Some(text) = &args.shard else {
        return Ok((plans, None));
    };
    let shard: Shard = text
        .parse()
        .map_err(|e| crate::error::usage(format!("--shard: {e}")))?;
    if !args.dry_run && out.format != crate::cli::Format::Json && out.json.is_none() {
        return Err(crate::error::usage(
            "--shard: a shard is merged from its result document: add --format json --output FILE, or --json FILE",
        ));
    }
    let total = plans.len();
    let p = part(&plans, shard);
    let plans = take(plans, &p.cells);
    crate::error::note(format!(
        "Shard {shard}: {} of {} comparisons, {} of {total} cells, {:.0}% of the estimated work{}.",
        p.units,
        p.of,
        plans.len(),
        p.share * 100.0,
        if plans.is_empty() {
            " (nothing to run: more shards than comparisons; the document records the empty shard for merge)"
        } else {
            ""
        }
    ));
    Ok((plans, Some(shard)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::Cli;
    use clap::Parser;

    fn compare(args: &str) -> Vec<CellPlan> {
        let cli = Cli::try_parse_from(format!("allocbench compare {args}").split(' ')).unwrap();
        let crate::cli::Command::Compare(a) = cli.command else {
            unreachable!()
        };
        crate::plans::compare_plans(&a).unwrap()
    }

    fn sweep(args: &str) -> Vec<CellPlan> {
        let cli = Cli::try_parse_from(format!("allocbench sweep {args}").split(' ')).unwrap();
        let crate::cli::Command::Sweep(a) = cli.command else {
            unreachable!()
        };
        crate::plans::sweep_plans(&a.workload, &a.variants, a.repeat, &[1]).unwrap()
    }

    fn key(p: &CellPlan) -> String {
        format!("{}|{}", unit_key(p), p.variant.name)
    }

    /// Every cell in exactly one shard, every comparison whole in one.
    fn check_partition(plans: &[CellPlan], n: u32) -> Vec<usize> {
        let mut seen: Vec<String> = Vec::new();
        let mut sizes = Vec::new();
        for k in 0..n {
            let mine = select(plans.to_vec(), Shard { index: k, count: n });
            sizes.push(mine.len());
            for p in &mine {
                seen.push(key(p));
                // Every cell of its comparison is here too.
                for q in plans.iter().filter(|q| unit_key(q) == unit_key(p)) {
                    assert!(mine.iter().any(|m| key(m) == key(q)), "split comparison");
                }
            }
        }
        let mut all: Vec<String> = plans.iter().map(key).collect();
        all.sort();
        seen.sort();
        assert_eq!(seen, all, "{n} shards");
        sizes
    }

    #[test]
    fn shards_partition_the_cells_keeping_comparisons_whole() {
        let plans = compare(
            "--variants glibc,jemalloc,mimalloc --prefork none,trim --repeat 5 --cow-attribution",
        );
        assert_eq!(plans.len(), 3 * 2 * 5 * 2);
        for n in [1, 2, 3, 4, 7, 10, 16] {
            let sizes = check_partition(&plans, n);
            // Ten equal comparisons of 6 cells: as even as whole units allow.
            let (lo, hi) = (sizes.iter().min().unwrap(), sizes.iter().max().unwrap());
            assert!(hi - lo <= 6, "{n} shards: {sizes:?}");
        }
        let sweep = sweep("--quick --processes 1,2,4 --threads 1,2 --repeat 2");
        for n in [1, 3, 5] {
            check_partition(&sweep, n);
        }
    }

    #[test]
    fn the_partition_ignores_output_options_and_variant_order() {
        let a = compare("--variants glibc,jemalloc --repeat 4 --output a.json");
        let b = compare("--repeat 4 --variants jemalloc,glibc --format json --output b.json");
        for k in 0..3 {
            let s = Shard { index: k, count: 3 };
            let units = |p: Vec<CellPlan>| -> Vec<String> {
                let mut v: Vec<String> = select(p, s).iter().map(unit_key).collect();
                v.dedup();
                v
            };
            assert_eq!(units(a.clone()), units(b.clone()));
        }
    }

    #[test]
    fn larger_grid_points_are_spread_first() {
        // processes 1 and 4: the 4-process points weigh four times as much.
        let plans = sweep("--quick --processes 1,4 --threads 1 --repeat 2");
        let p = part(&plans, Shard { index: 0, count: 2 });
        assert_eq!(p.of, 4);
        assert_eq!(p.units, 2);
        assert!((p.share - 0.5).abs() < 0.05, "{}", p.share);
    }
}
