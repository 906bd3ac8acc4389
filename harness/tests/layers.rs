//! The harness's modules form layers in data-flow order, and a module uses
//! only its own layer and those below (tests aside): no circle of imports
//! between layers. ARCHITECTURE.md draws the same order. No source file of
//! the workspace's crates grows past 600 lines.

use std::path::{Path, PathBuf};

/// Bottom first. A module may use `crate::X` only for X in its own layer
/// or a lower one.
const LAYERS: &[&[&str]] = &[
    // Leaves: the command line's definitions, numbers for people, the
    // usage error, reading input files, writing output files.
    &["cli", "units", "error", "read", "write"],
    // The result document, the metric registry, reading documents back.
    &["results"],
    // Reading the kernel.
    &["sample"],
    // What the samples mean.
    &["analysis"],
    // Charts, then every command's view of a document.
    &["plot"],
    &["output"],
    // Running cells, planning them from the command line.
    &["exec"],
    &["plans"],
    // `measure`: a user's own command.
    &["external"],
    &["commands"],
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            sources(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The `crate::X` names a source uses outside its tests and comments: the
/// code before its `#[cfg(test)] mod tests`, less any other item marked
/// `#[cfg(test)]` on one line (`#[cfg(test)] mod fixtures;`), with grouped
/// imports (`use crate::{a, b::C}`) counted name by name.
fn uses(text: &str) -> Vec<String> {
    let code = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
    let mut out: Vec<String> = Vec::new();
    let mut add = |name: String| {
        if !name.is_empty() && !out.contains(&name) {
            out.push(name);
        }
    };
    let word = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_lowercase() || *c == '_')
            .collect()
    };
    let mut skip_next = false;
    for line in code.lines() {
        let line = line.split("//").next().unwrap_or("");
        if std::mem::take(&mut skip_next) {
            continue;
        }
        if line.trim() == "#[cfg(test)]" {
            skip_next = true;
            continue;
        }
        if line.trim_start().starts_with("#[cfg(test)]") {
            continue;
        }
        let mut rest = line;
        while let Some(i) = rest.find("crate::") {
            rest = &rest[i + "crate::".len()..];
            if let Some(group) = rest.strip_prefix('{') {
                let inner = group.split('}').next().unwrap_or("");
                for item in inner.split(',') {
                    add(word(item));
                }
            } else {
                add(word(rest));
            }
        }
    }
    out
}

#[test]
fn every_module_uses_only_its_layer_and_those_below() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    sources(&src, &mut files);
    let mut wrong = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let top = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let top = top.trim_end_matches(".rs");
        if top == "lib" || top == "main" {
            continue;
        }
        let Some(mine) = layer(top) else {
            wrong.push(format!("{}: module {top} is in no layer", rel.display()));
            continue;
        };
        for used in uses(&std::fs::read_to_string(f).unwrap()) {
            match layer(&used) {
                Some(theirs) if theirs <= mine => {}
                Some(_) => wrong.push(format!(
                    "{}: {top} uses {used}, a layer above",
                    rel.display()
                )),
                None => wrong.push(format!(
                    "{}: uses crate::{used}, in no layer",
                    rel.display()
                )),
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn the_check_sees_a_use_from_above() {
    // A known answer for the parser: a use in code counts; one in a comment
    // or in the tests does not.
    let text = "use crate::results::Document;\n// crate::commands in a comment\n\
                #[cfg(test)] mod fixtures;\n#[cfg(test)]\nuse crate::plans;\n\
                use crate::{write, error::usage};\n\
                fn f() { crate::units::mib(1); }\n#[cfg(test)]\nmod tests { use crate::exec; }\n";
    assert_eq!(uses(text), ["results", "write", "error", "units"]);
}

#[test]
fn no_source_file_is_over_600_lines() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for krate in [
        "harness",
        "workloads",
        "allocators",
        "preload",
        "preload/jemalloc",
        "preload/mimalloc",
        "preload/snmalloc",
    ] {
        sources(&root.join(krate).join("src"), &mut files);
    }
    assert!(files.len() > 100, "found only {} source files", files.len());
    let long: Vec<String> = files
        .iter()
        .filter_map(|f| {
            let n = std::fs::read_to_string(f).unwrap().lines().count();
            (n > 600).then(|| format!("{}: {n} lines", f.display()))
        })
        .collect();
    assert!(long.is_empty(), "{}", long.join("\n"));
}

#[test]
fn every_test_file_is_a_module_of_its_crates_test_binary() {
    // With `autotests = false`, a file of `tests/` that `tests.rs` does not
    // name is never compiled nor run.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    for krate in ["harness", "workloads", "allocators"] {
        let dir = root.join(krate).join("tests");
        let main = std::fs::read_to_string(dir.join("tests.rs")).unwrap();
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            let Some(name) = p.file_stem().and_then(|n| n.to_str()) else {
                continue;
            };
            let topic = p.extension().is_some_and(|x| x == "rs") && name != "tests";
            let helpers = p.is_dir() && p.join("mod.rs").exists();
            if topic || helpers {
                assert!(
                    main.lines().any(|l| l.trim() == format!("mod {name};")),
                    "{krate}/tests/{name} is not a module of {krate}/tests/tests.rs"
                );
            }
        }
    }
}
