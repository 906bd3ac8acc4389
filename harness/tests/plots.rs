//! `--plot DIR`: SVG charts written after a run, linked from the Markdown.

use crate::common::{run, temp_dir, with_small};

fn read(path: &std::path::Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn compare_writes_charts_that_the_markdown_links() {
    let dir = temp_dir("plots");
    let plots = dir.join("plots");
    let out = dir.join("report").join("compare.md");
    // --output makes no directory; --plot makes its own.
    std::fs::create_dir(dir.join("report")).unwrap();
    let (plots_arg, out_arg) = (plots.display().to_string(), out.display().to_string());
    let r = run(&with_small(
        &["compare", "--format", "md"],
        &[
            "--variants",
            "glibc,jemalloc",
            "--sample-hz",
            "100",
            "--plot",
            &plots_arg,
            "--output",
            &out_arg,
        ],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let md = read(&out);
    assert!(md.contains("## Plots"), "{md}");
    for file in [
        "server-none-tree-pss.svg",
        "server-none-returned.svg",
        "server-none-glibc-processes.svg",
        "server-none-jemalloc-processes.svg",
    ] {
        let svg = read(&plots.join(file));
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{file}"
        );
        assert!(
            md.contains(&format!("(../plots/{file})")),
            "{file} not linked:\n{md}"
        );
    }
    for file in ["server-none-tree-pss.svg", "server-none-returned.svg"] {
        let svg = read(&plots.join(file));
        for variant in ["glibc", "jemalloc"] {
            assert!(
                svg.contains(&format!(">\n{variant}\n")),
                "{file}: no {variant} in the legend"
            );
        }
    }
    // Every file written is linked.
    for entry in std::fs::read_dir(&plots).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(
            md.contains(&format!("../plots/{name}")),
            "{name} not linked"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn without_a_timeline_only_the_returned_chart_is_written() {
    let dir = temp_dir("plots-nohz");
    let arg = dir.display().to_string();
    let r = run(&with_small(
        &["run", "--format", "json"],
        &["--variant", "glibc", "--sample-hz", "0", "--plot", &arg],
    ));
    assert_eq!(r.code, 0, "{}", r.stderr);
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["server-none-returned.svg"]);
    // JSON output stays a document: no links appended.
    r.doc();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_plot_directory_that_cannot_be_made_is_refused_before_any_work() {
    let dir = temp_dir("plots-bad");
    let file = dir.join("file");
    std::fs::write(&file, "").unwrap();
    let arg = file.join("sub").display().to_string();
    let r = run(&with_small(
        &["compare"],
        &["--variants", "glibc", "--plot", &arg],
    ));
    assert_eq!(r.code, 2, "{}", r.stderr);
    assert!(r.stderr.contains("--plot"), "{}", r.stderr);
    assert!(!r.stderr.contains("cell 1/1"), "a cell ran: {}", r.stderr);
    std::fs::remove_dir_all(&dir).unwrap();
}
