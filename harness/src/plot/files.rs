//! Where the charts go: their groups and file names, the plot directory,
//! and Markdown links to them.

use std::path::{Component, Path, PathBuf};

use super::series::{cow_copied_points, has_worker_series, steady_points};
use crate::results::{Document, Status};

/// What one chart file shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    TreePss,
    WorkerUss,
    Returned,
    Growth,
    CowCopied,
    /// One cell's processes (the index into `Document::cells`).
    Processes(usize),
}

/// One chart file of a group.
#[derive(Debug, Clone)]
pub struct PlotFile {
    /// The file name inside the plot directory.
    pub file: String,
    /// What it shows, for a link's text.
    pub caption: String,
    pub(super) kind: Kind,
}

/// The charts of one workload × pre-fork hook × repetition.
#[derive(Debug, Clone)]
pub struct PlotGroup {
    /// `server, prefork none` (and `, repetition N` after the first).
    pub title: String,
    pub plots: Vec<PlotFile>,
    /// Indices into `Document::cells` of the group's finished cells.
    pub(super) cells: Vec<usize>,
}

/// Maps a name to characters safe in a file name on any system and in a
/// URL: letters, digits, `.`, `_` and `-`; every run of anything else
/// becomes one `_`. No leading `.` or `-` (hidden files, options), at most 60
/// characters, never empty.
pub fn sanitize(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
            out.push(c);
        } else if !out.ends_with('_') {
            out.push('_');
        }
    }
    let out = out.trim_start_matches(['.', '-', '_']);
    let mut out: String = out.chars().take(60).collect();
    while out.ends_with('_') {
        out.pop();
    }
    if out.is_empty() {
        "unnamed".into()
    } else {
        out
    }
}

/// The charts `write_plots` writes for `doc`, grouped, with their file names.
pub fn chart_groups(doc: &Document) -> Vec<PlotGroup> {
    let mut keys: Vec<(&str, &str, bool, u32, &allocbench_workloads::Lifecycle)> = Vec::new();
    for c in &doc.cells {
        let k = (
            c.workload.as_str(),
            c.prefork.name(),
            c.app_writes(),
            c.repetition,
            &c.lifecycle,
        );
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    // Runs with and without application writes (`--cow-attribution`) get
    // charts of their own: a variant is one line per chart.
    let both_modes = keys.iter().any(|k| k.2) && keys.iter().any(|k| !k.2);
    let mut groups = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    for (workload, prefork, app_writes, repetition, lifecycle) in keys {
        let cells: Vec<usize> = (0..doc.cells.len())
            .filter(|&i| {
                let c = &doc.cells[i];
                c.workload == workload
                    && c.prefork.name() == prefork
                    && c.app_writes() == app_writes
                    && c.repetition == repetition
                    && &c.lifecycle == lifecycle
                    && c.status == Status::Ok
            })
            .collect();
        if cells.is_empty() {
            continue;
        }
        let first = &doc.cells[cells[0]];
        let (mut prefix, mut title) = match &first.measure {
            // A measured command has no hook: it is named by its command.
            Some(m) if workload == crate::results::measure::WORKLOAD => {
                let mut command = m.command.join(" ");
                if command.chars().count() > 48 {
                    command = command.chars().take(47).collect::<String>() + "…";
                }
                (sanitize(workload), format!("{workload}: {command}"))
            }
            _ => (
                format!("{}-{}", sanitize(workload), sanitize(prefork)),
                format!("{workload}, prefork {prefork}"),
            ),
        };
        if !lifecycle.is_none() {
            prefix.push_str(&format!("-{}", sanitize(&lifecycle.to_string())));
            title.push_str(&format!(", lifecycle {lifecycle}"));
        }
        if both_modes && !app_writes {
            prefix.push_str("-no-app-writes");
            title.push_str(", no application writes");
        }
        if repetition > 0 {
            prefix.push_str(&format!("-r{repetition}"));
            title.push_str(&format!(", repetition {repetition}"));
        }
        // Two groups may map to the same characters (`refork=1000/2` and
        // `refork=1000,2`): number the later ones.
        let base = prefix.clone();
        let mut n = 2;
        while prefixes.contains(&prefix) {
            prefix = format!("{base}-{n}");
            n += 1;
        }
        prefixes.push(prefix.clone());
        let of = |i: &usize| &doc.cells[*i];
        let timed = cells.iter().any(|i| !of(i).timeline.is_empty());
        let mut plots = Vec::new();
        let mut add = |suffix: &str, caption: &str, kind: Kind| {
            plots.push(PlotFile {
                file: format!("{prefix}-{suffix}.svg"),
                caption: caption.to_string(),
                kind,
            })
        };
        if timed {
            add("tree-pss", "Tree anonymous PSS over time", Kind::TreePss);
        }
        if cells.iter().any(|i| has_worker_series(&of(i).timeline)) {
            add("worker-uss", "Worker USS over time", Kind::WorkerUss);
        }
        if cells.iter().any(|i| {
            of(i)
                .metrics
                .as_ref()
                .is_some_and(|m| !m.returned.is_empty())
        }) {
            add(
                "returned",
                "Share of the steady-state excess given back",
                Kind::Returned,
            );
        }
        if cells
            .iter()
            .any(|i| !steady_points(&of(i).timeline).is_empty())
        {
            add(
                "growth",
                "Tree anonymous PSS against requests",
                Kind::Growth,
            );
        }
        if cells
            .iter()
            .any(|i| !cow_copied_points(&of(i).timeline).is_empty())
        {
            add(
                "cow-copied",
                "Copy-on-write copies against requests",
                Kind::CowCopied,
            );
        }
        let mut taken: Vec<String> = Vec::new();
        for &i in &cells {
            let c = of(&i);
            if c.timeline.is_empty() {
                continue;
            }
            // Two names may map to the same characters: number the later ones.
            let base = sanitize(&c.variant);
            let mut name = base.clone();
            let mut n = 2;
            while taken.contains(&name) {
                name = format!("{base}-{n}");
                n += 1;
            }
            taken.push(name.clone());
            add(
                &format!("{name}-processes"),
                &format!("{}: anonymous PSS per process", c.variant),
                Kind::Processes(i),
            );
        }
        groups.push(PlotGroup {
            title,
            plots,
            cells,
        });
    }
    groups
}

/// Creates the plot directory and checks that files can be written in it
/// (before a run, so a bad path is refused before any work).
pub fn prepare_dir(dir: &Path) -> std::io::Result<()> {
    crate::write::check_dir_writable(dir)
}

/// A Markdown section that shows the charts `write_plots` writes into `dir`:
/// paths relative to the directory of `output` (the Markdown file) when it is
/// given, else as `dir` was given. Empty when there is nothing to show.
pub fn markdown(doc: &Document, dir: &Path, output: Option<&Path>) -> String {
    let groups = chart_groups(doc);
    if groups.iter().all(|g| g.plots.is_empty()) {
        return String::new();
    }
    let link = |file: &str| link(&dir.join(file), output);
    let mut out = String::from("\n## Plots\n");
    for g in &groups {
        out.push_str(&format!("\n### {}\n\n", g.title));
        let mut per_cell = Vec::new();
        for p in &g.plots {
            match p.kind {
                Kind::Processes(i) => per_cell.push(format!(
                    "[{}]({})",
                    link_text(&doc.cells[i].variant),
                    link(&p.file)
                )),
                _ => out.push_str(&format!("![{}]({})\n\n", p.caption, link(&p.file))),
            }
        }
        if !per_cell.is_empty() {
            out.push_str(&format!(
                "Anonymous PSS per process: {}\n",
                per_cell.join(" · ")
            ));
        }
    }
    out
}

/// `target` as a Markdown link target from the directory of `output` (the
/// Markdown file) when given, else as given.
pub fn link(target: &Path, output: Option<&Path>) -> String {
    let path = match output {
        Some(out) => relative_to(target, out.parent().unwrap_or(Path::new(""))),
        None => target.to_path_buf(),
    };
    let s = path.to_string_lossy().into_owned();
    if s.contains([' ', '(', ')', '<', '>']) {
        format!("<{}>", s.replace('<', "%3C").replace('>', "%3E"))
    } else {
        s
    }
}

/// A name as Markdown link text: brackets and backslashes escaped.
fn link_text(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('[', "\\[")
        .replace(']', "\\]")
}

/// `target` as seen from directory `base`, both taken from the current
/// directory when relative; `..` where they part.
fn relative_to(target: &Path, base: &Path) -> PathBuf {
    // The parent of a bare file name is empty: the current directory.
    let base = if base.as_os_str().is_empty() {
        Path::new(".")
    } else {
        base
    };
    let abs = |p: &Path| -> Vec<String> {
        let p = std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
        let mut parts: Vec<String> = Vec::new();
        for c in p.components() {
            match c {
                Component::Normal(s) => parts.push(s.to_string_lossy().into_owned()),
                Component::ParentDir => {
                    parts.pop();
                }
                _ => {}
            }
        }
        parts
    };
    let (t, b) = (abs(target), abs(base));
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let mut out = PathBuf::new();
    for _ in common..b.len() {
        out.push("..");
    }
    for part in &t[common..] {
        out.push(part);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plot::fixtures::{cell, document};

    #[test]
    fn names_that_sanitize_alike_get_their_own_files() {
        let doc = document(vec![cell("a/b", 1), cell("a_b", 1), cell("a b", 1)]);
        let names: Vec<String> = chart_groups(&doc)
            .into_iter()
            .flat_map(|g| g.plots)
            .map(|p| p.file)
            .filter(|f| f.ends_with("-processes.svg"))
            .collect();
        assert_eq!(
            names,
            [
                "server-none-a_b-processes.svg",
                "server-none-a_b-2-processes.svg",
                "server-none-a_b-3-processes.svg"
            ]
        );
    }

    #[test]
    fn groups_split_by_hook_and_repetition() {
        let mut trim = cell("glibc", 1);
        trim.prefork = allocbench_workloads::PreforkHook::Trim;
        let mut again = cell("glibc", 1);
        again.repetition = 1;
        // --cow-attribution's run without application writes.
        let mut alone = cell("glibc", 1);
        if let Some(s) = &mut alone.spec {
            s.static_writes_per_request = 0;
        }
        let groups = chart_groups(&document(vec![cell("glibc", 1), trim, again, alone]));
        let titles: Vec<&str> = groups.iter().map(|g| g.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "server, prefork none",
                "server, prefork trim",
                "server, prefork none, repetition 1",
                "server, prefork none, no application writes"
            ]
        );
        assert_eq!(groups[1].plots[0].file, "server-trim-tree-pss.svg");
        assert_eq!(groups[2].plots[0].file, "server-none-r1-tree-pss.svg");
        assert_eq!(
            groups[3].plots[0].file,
            "server-none-no-app-writes-tree-pss.svg"
        );
    }

    #[test]
    fn lifecycles_that_sanitize_alike_get_their_own_files() {
        let with = |l: &str| {
            let mut c = cell("glibc", 1);
            c.lifecycle = l.parse().unwrap();
            c
        };
        let groups = chart_groups(&document(vec![
            with("refork=1000/2"),
            with("refork=1000,2"),
        ]));
        let titles: Vec<&str> = groups.iter().map(|g| g.title.as_str()).collect();
        assert_eq!(
            titles,
            [
                "server, prefork none, lifecycle refork=1000/2",
                "server, prefork none, lifecycle refork=1000,2"
            ]
        );
        assert_eq!(
            groups[0].plots[0].file,
            "server-none-refork_1000_2-tree-pss.svg"
        );
        assert_eq!(
            groups[1].plots[0].file,
            "server-none-refork_1000_2-2-tree-pss.svg"
        );
    }

    #[test]
    fn markdown_links_are_relative_to_the_markdown_file() {
        let doc = document(vec![cell("glibc", 1)]);
        let md = markdown(
            &doc,
            Path::new("/r/plots"),
            Some(Path::new("/r/out/report.md")),
        );
        assert!(md.contains("![Tree anonymous PSS over time](../plots/server-none-tree-pss.svg)"));
        assert!(md.contains("[glibc](../plots/server-none-glibc-processes.svg)"));
        let md = markdown(&doc, Path::new("plots dir"), None);
        assert!(
            md.contains("(<plots dir/server-none-returned.svg>)"),
            "{md}"
        );
        assert!(markdown(&document(Vec::new()), Path::new("p"), None).is_empty());
    }

    #[test]
    fn names_become_safe_file_names() {
        assert_eq!(sanitize("glibc-arena2"), "glibc-arena2");
        assert_eq!(
            sanitize("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"),
            "usr_lib_x86_64-linux-gnu_libjemalloc.so.2"
        );
        assert_eq!(sanitize("../../etc/passwd"), "etc_passwd");
        assert_eq!(sanitize("a b:c*?"), "a_b_c");
        assert_eq!(sanitize("é"), "unnamed");
        assert_eq!(sanitize(""), "unnamed");
        assert!(sanitize(&"x".repeat(500)).len() <= 60);
    }

    #[test]
    fn relative_paths_climb_out_of_the_output_directory() {
        assert_eq!(
            relative_to(Path::new("/r/plots/a.svg"), Path::new("/r/out")),
            PathBuf::from("../plots/a.svg")
        );
        assert_eq!(
            relative_to(Path::new("/r/plots/a.svg"), Path::new("/r")),
            PathBuf::from("plots/a.svg")
        );
        assert_eq!(
            relative_to(Path::new("/r/x/../plots/a.svg"), Path::new("/r/./")),
            PathBuf::from("plots/a.svg")
        );
        // `--output report.md`: its directory is the current one.
        assert_eq!(
            relative_to(Path::new("plots/a.svg"), Path::new("")),
            PathBuf::from("plots/a.svg")
        );
        assert_eq!(link_text("a[1]"), "a\\[1\\]");
    }
}
