//! `--shard K/N` and `allocbench merge`: a small matrix run whole and as
//! shards, merged, and compared; machines of other shapes kept apart;
//! documents that cannot be merged refused.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use allocbench::results::{Document, Status};

use crate::common::{self, compare, run, with_small};

/// Two variants × two hooks × two repetitions: four comparisons.
const MATRIX: &[&str] = &[
    "--variants",
    "glibc,jemalloc",
    "--prefork",
    "none,trim",
    "--repeat",
    "2",
];

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("allocbench-shard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn read(path: &Path) -> Document {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn write(path: &Path, doc: &serde_json::Value) {
    std::fs::write(path, serde_json::to_string(doc).unwrap()).unwrap();
}

/// Runs shard `k` of `n` of the matrix into `dir/sK.json`.
fn shard(dir: &Path, k: u32, n: u32) -> PathBuf {
    let out = dir.join(format!("s{k}.json"));
    let shard = format!("{k}/{n}");
    let mut extra = MATRIX.to_vec();
    extra.extend(["--shard", &shard, "--output", out.to_str().unwrap()]);
    let r = compare(&extra);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr.contains(&format!("Shard {k}/{n}:")),
        "{}",
        r.stderr
    );
    out
}

fn merge(files: &[&Path], out: &Path) -> common::Run {
    let mut args = vec!["merge".to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    args.extend(["--output".into(), out.display().to_string()]);
    run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

type Key = (String, String, u32);

fn keys(doc: &Document) -> Vec<Key> {
    let mut k: Vec<Key> = doc
        .cells
        .iter()
        .map(|c| (c.variant.clone(), c.prefork.to_string(), c.repetition))
        .collect();
    k.sort();
    k
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[test]
fn three_shards_merge_into_the_cells_of_the_whole_run() {
    let d = dir("three");
    let whole = compare(MATRIX);
    assert_eq!(whole.code, 0, "{}", whole.stderr);
    let whole = whole.doc();
    assert_eq!(whole.cells.len(), 8);

    let files: Vec<PathBuf> = (0..3).map(|k| shard(&d, k, 3)).collect();
    let shards: Vec<Document> = files.iter().map(|f| read(f)).collect();
    // Every comparison (hook × repetition) whole, in exactly one shard.
    let mut owner: BTreeMap<(String, u32), usize> = BTreeMap::new();
    for (i, s) in shards.iter().enumerate() {
        assert_eq!(s.shard.map(|x| (x.index, x.count)), Some((i as u32, 3)));
        let comparisons: BTreeSet<(String, u32)> = s
            .cells
            .iter()
            .map(|c| (c.prefork.to_string(), c.repetition))
            .collect();
        for comp in comparisons {
            let variants: BTreeSet<&str> = s
                .cells
                .iter()
                .filter(|c| (c.prefork.to_string(), c.repetition) == comp)
                .map(|c| c.variant.as_str())
                .collect();
            assert_eq!(variants.len(), 2, "comparison {comp:?} split");
            assert!(owner.insert(comp.clone(), i).is_none(), "{comp:?} twice");
        }
    }
    assert_eq!(owner.len(), 4);

    let merged_path = d.join("merged.json");
    let paths: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let r = merge(&paths, &merged_path);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("Merged 3 documents: 8 cells on 1 machine shape"),
        "{}",
        r.stderr
    );
    let merged = read(&merged_path);
    // Exactly the cells of the whole run, each once.
    assert_eq!(keys(&merged), keys(&whole));
    assert_eq!(merged.machines.len(), 1);
    let sources = &merged.machines[0].sources;
    assert_eq!(sources.len(), 3);
    assert!(sources.iter().all(|s| s.repetition_offset == 0));
    assert!(merged.cells.iter().all(|c| c.machine == Some(0)));
    assert!(
        !merged
            .command
            .iter()
            .any(|a| a.starts_with("--shard") || a.starts_with("--output"))
    );
    // The summary is the one the whole run computes: per variant and hook,
    // over both repetitions, the median of the cells' figures.
    let rows = |d: &Document| -> BTreeSet<(String, String, usize)> {
        d.summary
            .iter()
            .map(|r| (r.variant.clone(), r.prefork.to_string(), r.ok))
            .collect()
    };
    assert_eq!(rows(&merged), rows(&whole));
    for row in &merged.summary {
        let values: Vec<f64> = merged
            .cells
            .iter()
            .filter(|c| c.variant == row.variant && c.prefork == row.prefork)
            .filter(|c| c.status == Status::Ok)
            .map(|c| c.metrics.as_ref().unwrap().tree_pss_anon_steady as f64)
            .collect();
        assert_eq!(values.len(), 2);
        let stat = &row.metrics["tree_pss_anon_steady"];
        assert_eq!(stat.stat.median, median(values), "{}", row.variant);
        assert_eq!(row.machine, Some(0));
    }

    // `report` of the shards directly is the report of the merged document.
    let direct = run(&[
        "report",
        files[0].to_str().unwrap(),
        files[1].to_str().unwrap(),
        files[2].to_str().unwrap(),
    ]);
    let of_merged = run(&["report", merged_path.to_str().unwrap()]);
    assert_eq!(direct.code, 0, "{}", direct.stderr);
    assert_eq!(of_merged.code, 0, "{}", of_merged.stderr);
    let body = |s: &str| s.split("## Sources").next().unwrap().to_string();
    assert_eq!(body(&direct.stdout), body(&of_merged.stdout));
    assert!(
        of_merged.stdout.contains("merged from: "),
        "{}",
        of_merged.stdout
    );

    // A shard missing is refused, naming it.
    let r = merge(&[paths[0], paths[2]], &d.join("partial.json"));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("shard 1/3 missing"), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn more_shards_than_comparisons_leave_empty_shards_that_merge() {
    let d = dir("empty");
    let mut listed = 0;
    let mut empty_shards = 0;
    for k in 0..6 {
        let s = format!("{k}/6");
        let r = run(&with_small(
            &["compare", "--shard", &s, "--dry-run"],
            MATRIX,
        ));
        assert_eq!(r.code, 0, "{}", r.stderr);
        let cells = r.stdout.lines().filter(|l| l.starts_with("cell ")).count();
        if cells == 0 {
            empty_shards += 1;
            assert!(r.stderr.contains("nothing to run"), "{}", r.stderr);
        }
        listed += cells;
    }
    assert_eq!(listed, 8, "every cell listed by exactly one shard");
    assert_eq!(empty_shards, 2);
    let files: Vec<PathBuf> = (0..6).map(|k| shard(&d, k, 6)).collect();
    let empty: Vec<&PathBuf> = files.iter().filter(|f| read(f).cells.is_empty()).collect();
    assert_eq!(empty.len(), 2);
    let merged = d.join("merged.json");
    let r = merge(
        &files.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
        &merged,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(read(&merged).cells.len(), 8);
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_shard_that_is_not_k_of_n_is_refused() {
    for (bad, says) in [
        ("3/3", "below N"),
        ("x", "is not K/N"),
        ("0/0", "1 to 10000"),
    ] {
        let r = run(&with_small(&["compare", "--shard", bad, "--dry-run"], &[]));
        assert_eq!(r.code, 2, "{bad}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{bad}: {}", r.stderr);
    }
}

#[test]
fn machines_of_other_shapes_stay_apart_and_of_one_shape_pool() {
    let d = dir("shapes");
    let small = d.join("small.json");
    let extra = [
        "--variants",
        "glibc,jemalloc",
        "--repeat",
        "2",
        "--output",
        small.to_str().unwrap(),
    ];
    let r = compare(&extra);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&small).unwrap()).unwrap();

    // Another machine: 16 CPUs.
    let mut big = value.clone();
    big["environment"]["hostname"] = "big-node".into();
    big["environment"]["cpus"] = 16.into();
    big["environment"]["cpus_online"] = 16.into();
    let big_path = d.join("big.json");
    write(&big_path, &big);
    // A twin of the first: another host, a few MiB less memory.
    let mut twin = value.clone();
    twin["environment"]["hostname"] = "twin".into();
    let mem = twin["environment"]["mem_total_bytes"].as_u64().unwrap();
    twin["environment"]["mem_total_bytes"] = (mem - (20 << 20)).into();
    let twin_path = d.join("twin.json");
    write(&twin_path, &twin);

    let apart = d.join("apart.json");
    let r = merge(&[&small, &big_path], &apart);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = read(&apart);
    assert_eq!(doc.machines.len(), 2);
    assert!(
        doc.machines[1].label.starts_with("16 CPUs"),
        "{}",
        doc.machines[1].label
    );
    // Not pooled: each machine's rows over its own two repetitions.
    for r in &doc.summary {
        assert_eq!(r.ok, 2, "{} on machine {:?}", r.variant, r.machine);
    }
    let machines: BTreeSet<Option<u32>> = doc.summary.iter().map(|r| r.machine).collect();
    assert_eq!(machines, BTreeSet::from([Some(0), Some(1)]));
    let report = run(&["report", apart.to_str().unwrap()]);
    assert_eq!(report.code, 0, "{}", report.stderr);
    let label0 = &doc.machines[0].label;
    let label1 = &doc.machines[1].label;
    assert!(
        report.stdout.contains(&format!("runs ({label0})")),
        "{}",
        report.stdout
    );
    assert!(
        report.stdout.contains(&format!("runs ({label1})")),
        "{}",
        report.stdout
    );
    assert!(
        report.stdout.contains("across 2 machines"),
        "{}",
        report.stdout
    );
    assert!(
        report.stdout.contains("has the least memory on"),
        "{}",
        report.stdout
    );
    // A plan is for one machine shape.
    let plan = run(&[
        "plan",
        "--memory",
        "1GiB",
        "--from",
        apart.to_str().unwrap(),
    ]);
    assert_eq!(plan.code, 2, "{}", plan.stderr);
    assert!(plan.stderr.contains("2 machine shapes"), "{}", plan.stderr);

    let pooled = d.join("pooled.json");
    let r = merge(&[&small, &twin_path], &pooled);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = read(&pooled);
    assert_eq!(doc.machines.len(), 1);
    assert_eq!(doc.machines[0].sources[1].repetition_offset, 2);
    let reps: BTreeSet<u32> = doc.cells.iter().map(|c| c.repetition).collect();
    assert_eq!(reps, BTreeSet::from([0, 1, 2, 3]));
    for r in &doc.summary {
        assert_eq!(r.ok, 4, "{}", r.variant);
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn documents_that_cannot_be_merged_are_refused_naming_the_difference() {
    let d = dir("refuse");
    let a = d.join("a.json");
    let r = compare(&["--variants", "glibc", "--output", a.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&a).unwrap()).unwrap();
    let edited = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| -> PathBuf {
        let mut v = value.clone();
        edit(&mut v);
        let p = d.join(name);
        write(&p, &v);
        p
    };
    let cases: Vec<(PathBuf, &str)> = vec![
        (
            edited("version.json", &|v| {
                v["allocbench_version"] = "9.9.9".into()
            }),
            "was written by allocbench",
        ),
        (
            edited("command.json", &|v| {
                let cmd = v["command"].as_array_mut().unwrap();
                let i = cmd.iter().position(|a| a == "--requests").unwrap();
                cmd[i + 1] = "999".into();
            }),
            "has: --requests 999",
        ),
        (
            edited("variant.json", &|v| {
                v["cells"][0]["variant_def"]["env"]["MALLOC_ARENA_MAX"] = "1".into();
            }),
            "variant \"glibc\" is defined differently",
        ),
        (
            edited("spec.json", &|v| {
                v["cells"][0]["spec"]["requests"] = 999.into()
            }),
            "requests 400 against 999",
        ),
    ];
    for (path, says) in cases {
        let r = merge(&[&a, &path], &d.join("out.json"));
        assert_eq!(r.code, 2, "{}: {}", path.display(), r.stderr);
        assert!(r.stderr.contains(says), "{}: {}", path.display(), r.stderr);
        assert!(!d.join("out.json").exists());
    }
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn a_sweep_run_as_shards_is_fitted_when_merged_and_planned_from() {
    let d = dir("sweep");
    let grid = [
        "--variants",
        "glibc",
        "--processes",
        "1,2,4",
        "--threads",
        "1,2",
        "--requests",
        "400",
        "--static-mib",
        "4",
        "--idle",
        "0",
        "--format",
        "json",
    ];
    let mut files = Vec::new();
    for k in 0..2 {
        let out = d.join(format!("sweep{k}.json"));
        let shard = format!("{k}/2");
        let mut args = vec!["sweep"];
        args.extend(grid);
        args.extend(["--shard", &shard, "--output", out.to_str().unwrap()]);
        let r = run(&args);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let doc = read(&out);
        // Part of the grid: no model fitted to it.
        assert!(doc.fits.is_empty() && doc.unfitted.is_empty());
        assert!(!doc.cells.is_empty());
        files.push(out);
    }
    let merged = d.join("merged.json");
    let r = merge(
        &files.iter().map(PathBuf::as_path).collect::<Vec<_>>(),
        &merged,
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = read(&merged);
    assert_eq!(doc.cells.len(), 6);
    assert_eq!(doc.fits.len(), 1, "{:?}", doc.unfitted);
    let plan = run(&[
        "plan",
        "--memory",
        "1GiB",
        "--from",
        merged.to_str().unwrap(),
    ]);
    assert_eq!(plan.code, 0, "{}", plan.stderr);
    let shard_plan = run(&[
        "plan",
        "--memory",
        "1GiB",
        "--from",
        files[0].to_str().unwrap(),
    ]);
    assert_eq!(shard_plan.code, 2);
    assert!(
        shard_plan.stderr.contains("merge every shard first"),
        "{}",
        shard_plan.stderr
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn what_is_not_whole_is_refused_unless_partial() {
    let d = dir("whole");
    let files: Vec<PathBuf> = (0..3).map(|k| shard(&d, k, 3)).collect();
    let f: Vec<&Path> = files.iter().map(PathBuf::as_path).collect();
    let out = d.join("out.json");
    let refused = |files: &[&Path], says: &str| {
        let r = merge(files, &out);
        assert_eq!(r.code, 2, "{says}: {}", r.stderr);
        assert!(r.stderr.contains(says), "{says}: {}", r.stderr);
    };
    // The same document twice.
    refused(&[f[0], f[0], f[1], f[2]], "are the same run");
    // Shards of two partitions of one shape.
    let half = d.join("half");
    std::fs::create_dir_all(&half).unwrap();
    let h0 = shard(&half, 0, 2);
    refused(&[f[0], f[1], f[2], &h0], "come from different partitions");
    // A shard whose run did not finish (a killed pod's file).
    let mut cut: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f[1]).unwrap()).unwrap();
    let planned = cut["planned_cells"].as_u64().unwrap();
    assert_eq!(planned as usize, read(f[1]).cells.len());
    cut["cells"].as_array_mut().unwrap().pop();
    let cut_path = d.join("cut.json");
    write(&cut_path, &cut);
    refused(
        &[f[0], &cut_path, f[2]],
        &format!("of the {planned} cells its command planned"),
    );
    // A shard that ran on another machine shape leaves both shapes short.
    let mut other: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(f[2]).unwrap()).unwrap();
    other["environment"]["cpus"] = 16.into();
    let other_path = d.join("other.json");
    write(&other_path, &other);
    refused(
        &[f[0], f[1], &other_path],
        "shard 2/3 missing on machine shape [2 CPUs",
    );
    // --partial takes what is there.
    let r = run(&[
        "merge",
        "--partial",
        f[0].to_str().unwrap(),
        f[1].to_str().unwrap(),
        other_path.to_str().unwrap(),
        "--output",
        out.to_str().unwrap(),
    ]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert_eq!(read(&out).machines.len(), 2);
    // The output may not be one of the inputs.
    let r = run(&[
        "merge",
        f[0].to_str().unwrap(),
        f[1].to_str().unwrap(),
        f[2].to_str().unwrap(),
        "--output",
        f[0].to_str().unwrap(),
    ]);
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("is also an input"), "{}", r.stderr);
    assert_eq!(
        read(f[0]).shard.map(|s| s.index),
        Some(0),
        "the shard is intact"
    );
    // A shard writes the document merge reads.
    let r = run(&with_small(
        &["compare", "--shard", "0/3", "--format", "table"],
        MATRIX,
    ));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--format json"), "{}", r.stderr);
    let _ = std::fs::remove_dir_all(&d);
}
