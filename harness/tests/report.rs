//! `allocbench report`: result files rendered, grouped by machine and
//! configuration (never merged), anything else refused; and the published
//! `results/README.md` is exactly what it renders from the committed JSON.

use std::path::{Path, PathBuf};

use crate::common::*;

/// A small comparison's result document, written to `dir/name`.
fn result_file(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let path = dir.join(name);
    let p = path.display().to_string();
    let r = compare(&[&["--output", &p, "--sample-hz", "0"][..], extra].concat());
    assert_eq!(r.code, 0, "{}", r.stderr);
    path
}

fn report(args: &[&str]) -> Run {
    run(&[&["report"][..], args].concat())
}

#[test]
fn what_is_not_a_result_is_refused() {
    let dir = temp_dir("report-bad");
    let write = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.display().to_string()
    };
    for (file, needle) in [
        (
            write("text.json", "not json"),
            "is not an allocbench result (not JSON",
        ),
        (
            write("other.json", "{\"x\": 1}"),
            "is not an allocbench result (no format_version)",
        ),
        (
            write("future.json", "{\"format_version\": 999}"),
            "has result format version 999; this allocbench reads version 1",
        ),
        (
            write("partial.json", "{\"format_version\": 1, \"cells\": []}"),
            "is not an allocbench result",
        ),
        (
            dir.join("missing.json").display().to_string(),
            "missing.json",
        ),
    ] {
        let r = report(&[&file]);
        assert_eq!(r.code, 2, "{file}: {}", r.stderr);
        assert!(r.stderr.contains(needle), "{file}: {}", r.stderr);
        assert!(r.stdout.is_empty());
    }
}

#[test]
fn workloads_configurations_and_machines_are_grouped_apart() {
    let dir = temp_dir("report-groups");
    let server = result_file(&dir, "server.json", &["--variants", "glibc,jemalloc"]);
    let one_thread = result_file(
        &dir,
        "server-t1.json",
        &["--variants", "glibc,jemalloc", "--threads", "1"],
    );
    let cow = result_file(
        &dir,
        "cow.json",
        &["--workload", "cow", "--variants", "glibc,jemalloc"],
    );
    // The same results as if from another machine.
    let mut doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&server).unwrap()).unwrap();
    doc["environment"]["hostname"] = "elsewhere".into();
    let other = dir.join("other.json");
    std::fs::write(&other, doc.to_string()).unwrap();

    let files: Vec<String> = [&server, &one_thread, &cow, &other]
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    let files: Vec<&str> = files.iter().map(String::as_str).collect();
    let r = report(&files);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let md = &r.stdout;
    let headings: Vec<&str> = md.lines().filter(|l| l.starts_with("### ")).collect();
    assert_eq!(headings.len(), 3, "{headings:?}");
    assert!(headings[0].starts_with("### server: 2 workers × 2 threads"));
    assert!(headings[1].starts_with("### server: 2 workers × 1 thread,"));
    assert!(headings[2].starts_with("### cow:"));
    // Two machines: a column group each in the table they share.
    let header = md
        .lines()
        .find(|l| l.starts_with("| variant") && l.contains("elsewhere"))
        .unwrap_or_else(|| panic!("no column group per machine:\n{md}"));
    assert!(header.matches("runs (").count() == 2, "{header}");
    assert_eq!(md.matches("## Machines").count(), 1);
    assert!(md.contains("**elsewhere ("), "{md}");

    // CSV: one line per machine, group, row and metric.
    let r = report(&[&["--format", "csv"][..], &files].concat());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("machine,group,variant,prefork"));
    assert!(r.stdout.lines().any(|l| l.starts_with("\"elsewhere (")));
    // HTML: one page.
    let r = report(&[&["--format", "html"][..], &files].concat());
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.starts_with("<!doctype html>") && r.stdout.contains("<table>"));
}

#[test]
fn what_to_choose_names_the_rows_it_rests_on() {
    let dir = temp_dir("report-choose");
    let file = result_file(
        &dir,
        "server.json",
        &["--variants", "glibc,glibc-arena2,jemalloc", "--repeat", "2"],
    );
    let r = report(&[file.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let md = &r.stdout;
    let choose = md
        .split("## What to choose")
        .nth(1)
        .and_then(|s| s.split("## Machines").next())
        .unwrap_or_else(|| panic!("no What to choose:\n{md}"));
    assert!(
        choose.contains("glibc 2.36") || choose.contains("glibc "),
        "{choose}"
    );
    assert!(choose.contains("Rows: jemalloc, glibc-arena2."), "{choose}");
    assert!(choose.contains("Rule: lowest tree PSS whose throughput is within 5%"));
    // Two repetitions per variant, medians with their spread.
    assert!(md.contains("|    2 |") || md.contains("| 2 |"), "{md}");
}

/// The workspace root, where `scripts/publish` runs the report.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

#[test]
fn published_results_are_what_report_renders() {
    let root = root();
    let published = std::fs::read_to_string(root.join("results/README.md"))
        .expect("results/README.md is committed (scripts/publish writes it)");
    // The sources it names, in its order, are every committed result file.
    let sources: Vec<String> = published
        .split("## Sources")
        .nth(1)
        .expect("a Sources section")
        .lines()
        .filter_map(|l| Some(l.strip_prefix("- `")?.split_once('`')?.0.to_string()))
        .collect();
    let mut committed: Vec<String> = std::fs::read_dir(root.join("results/json"))
        .unwrap()
        .map(|e| format!("results/json/{}", e.unwrap().file_name().to_string_lossy()))
        .collect();
    committed.sort();
    let mut listed = sources.clone();
    listed.sort();
    assert_eq!(
        listed, committed,
        "results/README.md must render every file in results/json"
    );

    let dir = temp_dir("report-published");
    let out = dir.join("README.md");
    let plots = dir.join("plots");
    let r = run_with(
        allocbench()
            .current_dir(&root)
            .args(["report", "--format", "md", "--output"])
            .arg(&out)
            .arg("--plot")
            .arg(&plots)
            .args(&sources),
    );
    assert_eq!(r.code, 0, "{}", r.stderr);
    let rendered = std::fs::read_to_string(&out).unwrap();
    assert!(
        rendered == published,
        "results/README.md differs from what allocbench report renders from results/json \
         (rerun scripts/publish, or the report command it ends with; never edit it by hand)"
    );
    // The project's README shows its first table, as it is.
    let first_table: Vec<&str> = published
        .split("## Tables")
        .nth(1)
        .expect("a Tables section")
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .collect();
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(
        readme.contains(&first_table.join("\n")),
        "README.md's headline table is not results/README.md's first table"
    );
    // And so are its charts.
    for entry in walk(&plots) {
        let rel = entry.strip_prefix(&plots).unwrap();
        let committed = root.join("results/plots").join(rel);
        assert_eq!(
            std::fs::read_to_string(&entry).unwrap(),
            std::fs::read_to_string(&committed)
                .unwrap_or_else(|e| panic!("{}: {e}", committed.display())),
            "{} differs from what report draws",
            committed.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_measure_document_renders_and_one_with_nothing_to_show_is_refused() {
    let dir = temp_dir("report-measure");
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/measure.json");
    let r = report(&[fixture]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    assert!(r.stdout.contains("## What to choose for this server"));
    assert!(
        r.stdout
            .contains("- Choose glibc: the least tree PSS (0.8 MiB). Rule: least tree PSS"),
        "{}",
        r.stdout
    );
    assert!(!r.stdout.contains("| — | — | — |"), "{}", r.stdout);

    // Every row failed, or none at all: nothing to report.
    let doc: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let mut failed = doc.clone();
    for c in failed["cells"].as_array_mut().unwrap() {
        c["status"] = "failed".into();
        c["error"] = "port 8080 never opened within 60 s".into();
        c["measure"]["metrics"] = serde_json::Value::Null;
    }
    let mut empty = doc.clone();
    empty["cells"] = serde_json::json!([]);
    for (name, doc, needle) in [
        (
            "failed.json",
            failed,
            "nothing to report: none of its 2 cells finished with figures (2 failed)",
        ),
        ("empty.json", empty, "nothing to report: it holds no cell"),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, doc.to_string()).unwrap();
        // Alone, or beside a document that renders.
        for files in [
            vec![path.display().to_string()],
            vec![fixture.to_string(), path.display().to_string()],
        ] {
            let args: Vec<&str> = files.iter().map(String::as_str).collect();
            let r = report(&args);
            assert_eq!(r.code, 2, "{name}: {}", r.stdout);
            assert!(r.stderr.contains(needle), "{name}: {}", r.stderr);
            assert!(r.stdout.is_empty());
        }
    }
}
