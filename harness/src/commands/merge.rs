//! `allocbench merge`: result documents of one command line (its shards, or
//! runs on several machines) joined into one document.

use super::{check_output, emit};
use crate::cli::MergeArgs;
use crate::write::write_atomic;

pub(super) fn run(args: &MergeArgs) -> anyhow::Result<i32> {
    if let Some(path) = &args.output {
        check_output(path)?;
    }
    if let Some(out) = &args.output {
        let same = |a: &std::path::Path| {
            std::fs::canonicalize(a)
                .ok()
                .is_some_and(|a| std::fs::canonicalize(out).ok() == Some(a))
        };
        if let Some(f) = args.files.iter().find(|f| same(f)) {
            return Err(crate::error::usage(format!(
                "--output {} is also an input: the merge would replace it; write to another file",
                f.display()
            )));
        }
    }
    let docs = crate::results::load::load(&args.files)?;
    let n = docs.len();
    let merged = crate::analysis::merge::merge(docs, args.partial)?;
    let text = serde_json::to_string(&merged)? + "\n";
    match &args.output {
        Some(path) => write_atomic(path, &text)?,
        None => emit(&text)?,
    }
    let shapes: Vec<String> = merged
        .machines
        .iter()
        .map(|m| {
            format!(
                "{} ({} document{})",
                m.label,
                m.sources.len(),
                if m.sources.len() == 1 { "" } else { "s" }
            )
        })
        .collect();
    let plural = |k: usize, what: &str| format!("{k} {what}{}", if k == 1 { "" } else { "s" });
    crate::error::note(format!(
        "Merged {}: {} on {} machine shape{}: {}.",
        plural(n, "document"),
        plural(merged.cells.len(), "cell"),
        shapes.len(),
        if shapes.len() == 1 { "" } else { "s" },
        shapes.join("; ")
    ));
    Ok(0)
}
