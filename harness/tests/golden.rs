//! What every command renders from fixed result documents, as reviewed
//! snapshots (`tests/snapshots/`): the committed `results/json/*` (compare
//! documents of every preset), a small sweep and a small `measure` run
//! (`tests/fixtures/`). A change to any table, Markdown, CSV or JSON output
//! shows here as a diff; `INSTA_UPDATE=always cargo test -p allocbench
//! --test integration golden::` rewrites the snapshots after a reviewed
//! change.

use std::path::{Path, PathBuf};

use allocbench::cli::Format;
use allocbench::output::{View, view_text};
use allocbench::results::Document;

use crate::common::*;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// The committed result documents, by name, in name order.
fn published() -> Vec<(String, PathBuf)> {
    let mut files: Vec<(String, PathBuf)> = std::fs::read_dir(root().join("results/json"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    files.sort();
    assert!(
        !files.is_empty(),
        "results/json holds the published documents"
    );
    files
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load(path: &Path) -> Document {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn settings() -> insta::Settings {
    let mut s = insta::Settings::clone_current();
    s.set_prepend_module_to_snapshot(false);
    s.set_omit_expression(true);
    s
}

fn snapshot(name: &str, text: &str) {
    settings().bind(|| insta::assert_snapshot!(name, text));
}

/// Asserts that two long texts are equal, showing where they first differ.
fn same_text(name: &str, got: &str, want: &str) {
    if got != want {
        let at = got
            .bytes()
            .zip(want.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(got.len().min(want.len()));
        let around = |s: &str| {
            let from = s.floor_char_boundary(at.saturating_sub(80));
            let to = s.ceil_char_boundary((at + 80).min(s.len()));
            s[from..to].to_string()
        };
        panic!(
            "{name}: the JSON export differs from the file at byte {at}:\n got: {}\nwant: {}",
            around(got),
            around(want)
        );
    }
}

const TEXT_FORMATS: [(Format, &str); 3] = [
    (Format::Table, "table"),
    (Format::Md, "md"),
    (Format::Csv, "csv"),
];

/// `compare`'s views of `doc`: the default terminal table, which fits 120
/// columns (the notes under it are prose), the wide one, Markdown and CSV.
fn compare_views(name: &str, doc: &Document) {
    for (format, ext) in TEXT_FORMATS {
        let text = view_text(View::Compare, doc, format).unwrap();
        snapshot(&format!("compare-{name}.{ext}"), &text);
        if format == Format::Table {
            for line in text.lines().take_while(|l| !l.is_empty()) {
                let width = line.chars().count();
                assert!(width <= 120, "{name}: a line of {width} columns:\n{line}");
            }
        }
    }
    let wide = view_text(View::CompareWide, doc, Format::Table).unwrap();
    snapshot(&format!("compare-{name}.wide"), &wide);
}

#[test]
fn compare_renders_the_published_documents() {
    for (name, path) in published() {
        let doc = load(&path);
        compare_views(&name, &doc);
        // The JSON export is the document itself: what was written reads
        // back and writes again byte for byte.
        let json = view_text(View::Compare, &doc, Format::Json).unwrap();
        same_text(&name, &json, &std::fs::read_to_string(&path).unwrap());
    }
}

#[test]
fn compare_renders_one_run_of_the_published_documents() {
    // The first repetition alone: the one-run table (a row per cell).
    for name in ["server", "cow"] {
        let mut doc = load(&root().join(format!("results/json/{name}.json")));
        doc.cells.retain(|c| c.repetition == 0);
        doc.summary.clear();
        compare_views(&format!("{name}-one-run"), &doc);
    }
}

#[test]
fn run_renders_a_cell_of_each_published_document() {
    for (name, path) in published() {
        let mut doc = load(&path);
        // One cell is enough to show the layout; all would be a megabyte.
        doc.cells.truncate(1);
        for (format, ext) in TEXT_FORMATS {
            let text = view_text(View::Run, &doc, format).unwrap();
            snapshot(&format!("run-{name}.{ext}"), &text);
        }
    }
}

#[test]
fn sweep_renders_its_fixture() {
    let doc = load(&fixture("sweep.json"));
    for (format, ext) in TEXT_FORMATS {
        let text = view_text(View::Sweep, &doc, format).unwrap();
        snapshot(&format!("sweep.{ext}"), &text);
    }
    // The JSON adds the fitted model to the cells.
    let json: serde_json::Value =
        serde_json::from_str(&view_text(View::Sweep, &doc, Format::Json).unwrap()).unwrap();
    let fits = serde_json::to_string_pretty(&json["fits"]).unwrap();
    snapshot("sweep-fits.json", &fits);
}

#[test]
fn measure_renders_its_fixture() {
    let doc = load(&fixture("measure.json"));
    for (format, ext) in TEXT_FORMATS {
        let text = view_text(View::Measure, &doc, format).unwrap();
        snapshot(&format!("measure.{ext}"), &text);
    }
    // Every column in a terminal.
    let wide = view_text(View::MeasureWide, &doc, Format::Table).unwrap();
    snapshot("measure-wide.table", &wide);
    let json = view_text(View::Measure, &doc, Format::Json).unwrap();
    same_text(
        "measure",
        &json,
        &std::fs::read_to_string(fixture("measure.json")).unwrap(),
    );
}

#[test]
fn report_renders_the_published_documents() {
    // Paths relative to the checkout, as the report names its sources.
    let report = |args: &[String]| {
        let r = run_with(allocbench().current_dir(root()).arg("report").args(args));
        assert_eq!(r.code, 0, "{}", r.stderr);
        r.stdout
    };
    let files: Vec<String> = published()
        .into_iter()
        .map(|(name, _)| format!("results/json/{name}.json"))
        .collect();
    for ext in ["md", "html", "csv"] {
        let args = [vec!["--format".to_string(), ext.to_string()], files.clone()].concat();
        snapshot(&format!("report.{ext}"), &report(&args));
    }
    // `report` does not show `measure`'s own figures yet (its table is
    // the synthetic workload's, every figure `—`): this records today's
    // output, so the change that shows them is a visible diff.
    for ext in ["md", "csv"] {
        let args = ["--format", ext, "harness/tests/fixtures/measure.json"].map(String::from);
        snapshot(&format!("report-measure.{ext}"), &report(&args));
    }
}

#[test]
fn plan_renders_its_recommendation_from_the_sweep_fixture() {
    // The path relative to the checkout, as the JSON names its source.
    let sweep = "harness/tests/fixtures/sweep.json";
    let run = |args: &[&str]| run_with(allocbench().current_dir(root()).args(args));
    for budget in ["512MiB", "40MiB"] {
        let r = run(&["plan", "--from", sweep, "--memory", budget]);
        snapshot(
            &format!("plan-{budget}"),
            &format!(
                "exit {}\n--- stdout\n{}--- stderr\n{}",
                r.code, r.stdout, r.stderr
            ),
        );
        // The JSON as values (keys sorted), the versions aside.
        let r = run(&[
            "plan", "--from", sweep, "--memory", budget, "--format", "json",
        ]);
        assert_eq!(r.code, 0, "{}", r.stderr);
        let mut v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("allocbench_version");
        o.remove("format_version");
        snapshot(
            &format!("plan-{budget}.json"),
            &serde_json::to_string_pretty(&v).unwrap(),
        );
    }
}

/// `list` depends on the machine (which libraries are installed), so it is
/// checked for what holds everywhere: every workload, the built-in
/// variants available, and a versioned JSON document.
#[test]
fn list_names_every_workload_and_the_built_in_variants() {
    let r = run(&["list", "--format", "json"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["allocbench_version"], env!("CARGO_PKG_VERSION"));
    let names = |key: &str| -> Vec<String> {
        v[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap().to_string())
            .collect()
    };
    let workloads = names("workloads");
    for w in ["server", "threaded", "cow", "churn"] {
        assert!(workloads.contains(&w.to_string()), "{workloads:?}");
    }
    for built_in in ["glibc", "jemalloc", "mimalloc", "snmalloc"] {
        let e = v["variants"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == built_in)
            .unwrap_or_else(|| panic!("{built_in} is listed"));
        assert_eq!(e["available"], true, "{e}");
    }
    let table = run(&["list"]);
    assert_eq!(table.code, 0, "{}", table.stderr);
    for name in workloads.iter().chain(&names("variants")) {
        assert!(
            table.stdout.contains(name.as_str()),
            "{name} in\n{}",
            table.stdout
        );
    }
}
