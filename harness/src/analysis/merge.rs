//! `allocbench merge`: result documents of one command line, run as shards
//! (`--shard K/N`) or on several machines, joined into one document.
//!
//! Documents of different commands, allocbench versions, specs or variant
//! definitions are refused, naming the difference; so is a partition with a
//! shard missing. Machines are kept apart by *shape*, the facts that make
//! their results comparable ([`same_shape`]); the cells of machines of one
//! shape are pooled as repetitions (renumbered where two documents would
//! collide), and each shape keeps its own summary, so a ratio never pairs
//! cells of two shapes. `report` shows the shapes side by side.

use std::collections::{BTreeMap, BTreeSet};

use crate::analysis::stats::{configuration, summarize};
use crate::error::usage;
use crate::results::environment::Environment;
use crate::results::shard::{MachineShape, MergedSource, Shard};
use crate::results::{CellResult, Document, FORMAT_VERSION};

/// Options that say where a run's output goes, not what it runs: two
/// documents of one command may differ in them.
const OUTPUT_OPTIONS: &[&str] = &[
    "--shard",
    "--output",
    "--json",
    "--plot",
    "--format",
    "--resume",
    "--dry-run",
    "--wide",
];

/// A command line's options, each with its values (`--requests 100`), in
/// order; `--opt=value` is spelt `--opt value`. The program is left out.
fn option_groups(command: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for a in command.iter().skip(1) {
        let a = match a.split_once('=') {
            Some((opt, v)) if opt.starts_with("--") => format!("{opt} {v}"),
            _ => a.clone(),
        };
        match out.last_mut() {
            Some(last) if last.starts_with('-') && !a.starts_with('-') => {
                last.push(' ');
                last.push_str(&a);
            }
            _ => out.push(a),
        }
    }
    out
}

fn is_output_option(group: &str) -> bool {
    let opt = group.split(' ').next().unwrap_or_default();
    OUTPUT_OPTIONS.contains(&opt)
}

/// How command line `was` differs from `now`, the program's path and the
/// options in `ignored` aside: (what only `was` has, what only `now` has),
/// each "nothing" when empty; `None` when they are the same, in any order of
/// their options.
pub fn command_differs(
    was: &[String],
    now: &[String],
    ignored: &[&str],
) -> Option<(String, String)> {
    let keep = |c: &[String]| -> Vec<String> {
        option_groups(c)
            .into_iter()
            .filter(|g| !ignored.contains(&g.split(' ').next().unwrap_or_default()))
            .collect()
    };
    let (was, now) = (keep(was), keep(now));
    let sorted = |v: &[String]| -> Vec<String> {
        let mut v = v.to_vec();
        v.sort();
        v
    };
    if sorted(&was) == sorted(&now) {
        return None;
    }
    let only = |a: &[String], b: &[String]| -> String {
        let s = a
            .iter()
            .filter(|x| !b.contains(x))
            .map(String::as_str)
            .collect::<Vec<_>>()
            .join(" ");
        if s.is_empty() { "nothing".into() } else { s }
    };
    Some((only(&was, &now), only(&now, &was)))
}

/// The command line without the options that only direct its output.
fn command_of(command: &[String]) -> Vec<String> {
    let mut out: Vec<String> = command.first().cloned().into_iter().collect();
    for g in option_groups(command) {
        if !is_output_option(&g) {
            out.extend(g.split(' ').map(String::from));
        }
    }
    out
}

/// The facts of a machine that must agree for results to be pooled, each
/// named: CPUs, memory, CPU model, kernel, glibc, THP, architecture, and
/// the cgroup's CPU and memory limits.
fn shape_facts(e: &Environment) -> Vec<(&'static str, String)> {
    // Each value as a label shows it.
    let cgroup = |known: bool, limit: Option<String>, what: &str| match (known, limit) {
        (false, _) => format!("cgroup {what} limit not recorded"),
        (true, None) => format!("no cgroup {what} limit"),
        (true, Some(l)) => format!("cgroup {what} limit {l}"),
    };
    vec![
        ("CPUs", crate::units::cpus(e.cpus as f64)),
        ("CPUs online", format!("{} online", e.cpus_online)),
        // Identical machines differ by some MiB of reserved memory.
        (
            "GiB",
            format!(
                "{} GiB",
                (e.mem_total_bytes as f64 / (1u64 << 30) as f64).round()
            ),
        ),
        ("CPU", e.cpu_model.clone()),
        ("kernel", format!("kernel {}", e.kernel)),
        ("glibc", format!("glibc {}", e.glibc_version)),
        ("THP", format!("THP {}", e.thp_enabled)),
        ("arch", e.arch.clone()),
        (
            "cgroup CPU limit",
            cgroup(
                e.cgroup_cpu_limit.is_some(),
                e.cpu_limit().map(crate::units::cpus),
                "CPU",
            ),
        ),
        (
            "cgroup memory limit",
            cgroup(
                e.cgroup_memory_limit.is_some(),
                e.memory_limit().map(crate::units::mib),
                "memory",
            ),
        ),
    ]
}

/// Whether two machines are of one shape: the same [`shape_facts`], and no
/// allocator both name at different versions (a version only one of them
/// recorded, because only it ran that allocator, does not part them).
pub fn same_shape(a: &Environment, b: &Environment) -> bool {
    shape_facts(a) == shape_facts(b)
        && a.allocator_versions
            .iter()
            .all(|(k, v)| b.allocator_versions.get(k).is_none_or(|w| w == v))
}

/// Labels for shapes: CPUs and memory, and each other fact on which some
/// of them differ.
fn shape_labels(envs: &[&Environment]) -> Vec<String> {
    let facts: Vec<Vec<(&str, String)>> = envs.iter().map(|e| shape_facts(e)).collect();
    envs.iter()
        .zip(&facts)
        .map(|(e, mine)| {
            // Memory as the report's machine facts show it (whole GiB).
            let mut parts = vec![format!(
                "{}, {} GiB",
                crate::units::cpus(e.cpus as f64),
                e.mem_total_bytes >> 30
            )];
            for (i, (name, value)) in mine.iter().enumerate() {
                if *name == "CPUs" || *name == "GiB" {
                    continue;
                }
                if facts.iter().any(|f| f[i].1 != *value) {
                    parts.push(value.clone());
                }
            }
            let versions: BTreeSet<String> = envs
                .iter()
                .flat_map(|o| o.allocator_versions.iter())
                .filter(|(k, v)| e.allocator_versions.get(*k).is_some_and(|w| w != *v))
                .map(|(k, _)| format!("{k} {}", e.allocator_versions[k]))
                .collect();
            parts.extend(versions);
            parts.join(", ")
        })
        .collect()
}

/// Configuration, hook and lifecycle, write mode, variant, repetition.
type CellKey = (String, String, bool, String, u32);

/// Where a cell's comparison would collide with another document's cell of
/// the same shape: its configuration, hook, write mode, variant and
/// repetition.
fn cell_key(c: &CellResult) -> CellKey {
    (
        configuration(c),
        crate::results::arm(c.prefork, &c.lifecycle),
        c.app_writes(),
        c.variant.clone(),
        c.repetition,
    )
}

/// Refuses documents that cannot be merged, naming the difference.
fn check(docs: &[(String, Document)]) -> anyhow::Result<()> {
    let Some((first_path, first)) = docs.first() else {
        return Err(usage("merge needs at least one result file"));
    };
    for (path, d) in docs {
        if !d.machines.is_empty() {
            return Err(usage(format!(
                "{path} is already a merged document; merge the documents it was made from"
            )));
        }
        if d.allocbench_version != first.allocbench_version {
            return Err(usage(format!(
                "{first_path} was written by allocbench {}, {path} by {}: merge documents of one version",
                first.allocbench_version, d.allocbench_version
            )));
        }
        if let Some((had, has)) = command_differs(&first.command, &d.command, OUTPUT_OPTIONS) {
            return Err(usage(format!(
                "{first_path} and {path} come from different commands ({first_path} has: {had}; {path} has: {has}): merge documents of one command line"
            )));
        }
    }
    // One definition per variant name, one spec per configuration point.
    let mut variants: BTreeMap<&str, (&str, &CellResult)> = BTreeMap::new();
    let mut specs: BTreeMap<String, (&str, &CellResult)> = BTreeMap::new();
    for (path, d) in docs {
        for c in &d.cells {
            match variants.get(c.variant.as_str()) {
                Some((p, o)) if o.variant_def != c.variant_def => {
                    return Err(usage(format!(
                        "variant {:?} is defined differently in {p} ({}) and {path} ({}): merge documents of one set of variants",
                        c.variant,
                        describe_variant(o),
                        describe_variant(c)
                    )));
                }
                Some(_) => {}
                None => {
                    variants.insert(&c.variant, (path, c));
                }
            }
            let point = format!(
                "{}|{:?}|{:?}|{:?}|{}",
                c.workload,
                c.spec.as_ref().map(|s| (s.processes, s.threads)),
                c.cpus_pinned,
                c.measure.as_ref().map(|m| &m.command),
                c.prefork
            );
            match specs.get(&point) {
                Some((p, o)) if configuration(o) != configuration(c) => {
                    return Err(usage(format!(
                        "the workload differs between {p} and {path}: {}; merge documents of one spec",
                        spec_difference(o, c)
                    )));
                }
                Some(_) => {}
                None => {
                    specs.insert(point, (path, c));
                }
            }
        }
    }
    Ok(())
}

fn describe_variant(c: &CellResult) -> String {
    let v = &c.variant_def;
    let env: Vec<String> = v.env.iter().map(|(k, x)| format!("{k}={x}")).collect();
    let base = serde_json::to_string(&v.base).unwrap_or_default();
    format!("base {base}, env {{{}}}", env.join(" "))
}

/// The spec fields on which two cells differ: `requests 100 against 200`.
fn spec_difference(a: &CellResult, b: &CellResult) -> String {
    let value = |c: &CellResult| serde_json::to_value(&c.spec).unwrap_or_default();
    let (va, vb) = (value(a), value(b));
    let (Some(ma), Some(mb)) = (va.as_object(), vb.as_object()) else {
        return "one has a spec, the other none".into();
    };
    let diffs: Vec<String> = ma
        .iter()
        .filter(|(k, v)| mb.get(*k) != Some(v))
        .map(|(k, v)| format!("{k} {v} against {}", mb.get(k).cloned().unwrap_or_default()))
        .collect();
    if diffs.is_empty() {
        "the CPU pinning".into()
    } else {
        diffs.join(", ")
    }
}

/// Refuses, per machine shape, what would be merged as if it were whole
/// and is not: a document given twice, a run that did not finish its cells
/// (interrupted, or its pod killed), a partition with a shard missing or
/// given more often than the others. `partial` lets the last two through.
fn check_whole(
    docs: &[(String, Document)],
    shape_of: &[usize],
    labels: &[String],
    partial: bool,
) -> anyhow::Result<()> {
    let id = |d: &Document| {
        (
            d.environment.hostname.clone(),
            d.environment.started_unix_s,
            d.shard,
        )
    };
    for (i, (p, d)) in docs.iter().enumerate() {
        if let Some((q, _)) = docs[..i].iter().find(|(_, e)| id(e) == id(d)) {
            return Err(usage(format!(
                "{q} and {p} are the same run (host {}, started at {}{}): give each document once",
                d.environment.hostname,
                d.environment.started_unix_s,
                d.shard.map(|s| format!(", shard {s}")).unwrap_or_default()
            )));
        }
    }
    // One partition per shape: shards of another N would hold the same
    // comparisons again, cut otherwise.
    for shape in shape_of.iter().copied().collect::<BTreeSet<usize>>() {
        let here: Vec<String> = docs
            .iter()
            .zip(shape_of)
            .filter(|(_, m)| **m == shape)
            .filter_map(|((p, d), _)| d.shard.map(|s| format!("{p} is shard {s}")))
            .collect();
        let counts: BTreeSet<u32> = docs
            .iter()
            .zip(shape_of)
            .filter(|(_, m)| **m == shape)
            .filter_map(|((_, d), _)| d.shard.map(|s| s.count))
            .collect();
        if counts.len() > 1 {
            return Err(usage(format!(
                "the shards of machine shape [{}] come from different partitions ({}): merge the shards of one N",
                labels[shape],
                here.join(", ")
            )));
        }
    }
    if partial {
        return Ok(());
    }
    for (p, d) in docs {
        if let Some(planned) = d.planned_cells
            && d.cells.len() < planned
        {
            return Err(usage(format!(
                "{p} holds {} of the {planned} cells its command planned (interrupted, or killed): finish it with --resume, or merge with --partial to take what is there",
                d.cells.len()
            )));
        }
    }
    let shapes: BTreeSet<usize> = shape_of.iter().copied().collect();
    for shape in shapes {
        let mut times: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
        let mut n = None;
        for ((p, d), _) in docs.iter().zip(shape_of).filter(|(_, m)| **m == shape) {
            if let Some(s) = d.shard {
                n = Some(s.count);
                times.entry(s.index).or_default().push(p);
            }
        }
        let Some(n) = n else { continue };
        let most = times.values().map(Vec::len).max().unwrap_or(0);
        let short: Vec<String> = (0..n)
            .filter(|k| times.get(k).map_or(0, Vec::len) < most)
            .map(|k| format!("{k}/{n}"))
            .collect();
        if !short.is_empty() {
            let given: Vec<String> = times
                .iter()
                .flat_map(|(k, ps)| ps.iter().map(move |p| format!("{p} ({k}/{n})")))
                .collect();
            return Err(usage(format!(
                "shard {} missing on machine shape [{}] (given there: {}): each machine shape needs whole partitions, or the comparisons it lacks are silently fewer; merge with --partial to take what is there",
                short.join(", "),
                labels[shape],
                given.join("; ")
            )));
        }
    }
    Ok(())
}

/// Joins `docs` (path, document) into one document, or says why not;
/// `partial` accepts unfinished runs and incomplete partitions.
pub fn merge(docs: Vec<(String, Document)>, partial: bool) -> anyhow::Result<Document> {
    check(&docs)?;
    let mut envs: Vec<&Environment> = Vec::new();
    let shape_of: Vec<usize> = docs
        .iter()
        .map(
            |(_, d)| match envs.iter().position(|e| same_shape(e, &d.environment)) {
                Some(m) => m,
                None => {
                    envs.push(&d.environment);
                    envs.len() - 1
                }
            },
        )
        .collect();
    check_whole(&docs, &shape_of, &shape_labels(&envs), partial)?;
    let mut shapes: Vec<(Environment, Vec<MergedSource>)> =
        envs.into_iter().map(|e| (e.clone(), Vec::new())).collect();
    let mut keys: Vec<BTreeSet<CellKey>> = vec![BTreeSet::new(); shapes.len()];
    let mut cells: Vec<CellResult> = Vec::new();
    let mut wall_s: f64 = 0.0;
    let mut cpu_s = 0.0;
    let (version, command) = (
        docs[0].1.allocbench_version.clone(),
        docs[0].1.command.clone(),
    );
    let sweep = command.get(1).is_some_and(|c| c == "sweep");
    for ((path, doc), &m) in docs.into_iter().zip(&shape_of) {
        // A second run of the same comparisons on this shape: more
        // repetitions, numbered after those already here.
        let collides = doc.cells.iter().any(|c| keys[m].contains(&cell_key(c)));
        let offset = if collides {
            keys[m].iter().map(|k| k.4).max().map_or(0, |r| r + 1)
        } else {
            0
        };
        for (k, v) in &doc.environment.allocator_versions {
            shapes[m]
                .0
                .allocator_versions
                .entry(k.clone())
                .or_insert_with(|| v.clone());
        }
        shapes[m].1.push(MergedSource {
            path,
            hostname: doc.environment.hostname.clone(),
            shard: doc.shard,
            cells: doc.cells.len(),
            repetition_offset: offset,
            wall_s: doc.harness.wall_s,
        });
        wall_s = wall_s.max(doc.harness.wall_s);
        cpu_s += doc.harness.cpu_s;
        for mut c in doc.cells {
            c.repetition += offset;
            c.machine = Some(m as u32);
            keys[m].insert(cell_key(&c));
            cells.push(c);
        }
    }
    let labels = shape_labels(&shapes.iter().map(|(e, _)| e).collect::<Vec<_>>());
    let machines: Vec<MachineShape> = shapes
        .into_iter()
        .zip(labels)
        .map(|((environment, sources), label)| MachineShape {
            label,
            environment,
            sources,
        })
        .collect();
    let mut summary = Vec::new();
    for m in 0..machines.len() {
        let mine: Vec<CellResult> = cells
            .iter()
            .filter(|c| c.machine == Some(m as u32))
            .cloned()
            .collect();
        summary.extend(summarize(&mine));
    }
    // A sweep's model is fitted on one machine's cells.
    let fitted = if sweep && machines.len() == 1 {
        crate::analysis::sweep::fit(&cells)
    } else {
        Default::default()
    };
    Ok(Document {
        allocbench_version: version,
        format_version: FORMAT_VERSION,
        command: command_of(&command),
        environment: machines[0].environment.clone(),
        cells,
        summary,
        harness: crate::results::HarnessCost { wall_s, cpu_s },
        fits: fitted.fits,
        unfitted: fitted.unfitted,
        shard: None::<Shard>,
        planned_cells: None,
        machines,
    })
}

/// With `report` given shard documents directly: the shards of each
/// command merged (as `merge` would), the other documents as they are.
pub fn merge_shards(docs: Vec<(String, Document)>) -> anyhow::Result<Vec<(String, Document)>> {
    let mut out: Vec<(String, Document)> = Vec::new();
    let mut partitions: Vec<Vec<(String, Document)>> = Vec::new();
    for (path, doc) in docs {
        if doc.shard.is_none() {
            out.push((path, doc));
            continue;
        }
        match partitions
            .iter_mut()
            .find(|p| command_differs(&p[0].1.command, &doc.command, OUTPUT_OPTIONS).is_none())
        {
            Some(p) => p.push((path, doc)),
            None => partitions.push(vec![(path, doc)]),
        }
    }
    for p in partitions {
        let name = p
            .iter()
            .map(|(path, _)| path.as_str())
            .collect::<Vec<_>>()
            .join(" + ");
        out.push((name, merge(p, false)?));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Vec<String> {
        s.split(' ').map(String::from).collect()
    }

    #[test]
    fn commands_differ_only_in_what_they_run() {
        let a = c("/bin/allocbench compare --workload server --shard 0/3 --output s0.json");
        let b =
            c("allocbench compare --output=s1.json --shard=1/3 --workload server --format json");
        assert_eq!(command_differs(&a, &b, OUTPUT_OPTIONS), None);
        let d = c("allocbench compare --workload churn --shard 2/3");
        assert_eq!(
            command_differs(&a, &d, OUTPUT_OPTIONS).unwrap(),
            ("--workload server".into(), "--workload churn".into())
        );
        assert_eq!(
            command_of(&a),
            c("/bin/allocbench compare --workload server")
        );
    }

    #[test]
    fn machines_of_one_shape_differ_only_outside_it() {
        let mut a = Environment {
            cpus: 2,
            cpus_online: 2,
            mem_total_bytes: 24 << 30,
            kernel: "6.1.0".into(),
            glibc_version: "2.36".into(),
            thp_enabled: "madvise".into(),
            ..Default::default()
        };
        a.allocator_versions
            .insert("jemalloc (built-in)".into(), "5.3.0".into());
        let mut b = a.clone();
        b.hostname = "pod-1".into();
        b.mem_total_bytes -= 50 << 20;
        b.mem_available_bytes = 1;
        b.allocator_versions
            .insert("tcmalloc".into(), "2.10".into());
        assert!(same_shape(&a, &b));
        let mut c16 = a.clone();
        c16.cpus = 16;
        c16.cpus_online = 16;
        assert!(!same_shape(&a, &c16));
        let mut other_je = a.clone();
        other_je
            .allocator_versions
            .insert("jemalloc (built-in)".into(), "5.3.1".into());
        assert!(!same_shape(&a, &other_je));
        let labels = shape_labels(&[&a, &c16]);
        assert_eq!(
            labels,
            ["2 CPUs, 24 GiB, 2 online", "16 CPUs, 24 GiB, 16 online"]
        );
    }
}
