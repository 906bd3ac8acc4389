//! `allocbench merge`: result documents of one command line (its shards, or
//! runs on several machines) joined into one document.

use super::{check_output, emit};
use crate::cli::MergeArgs;
use crate::write::write_atomic;

pub(super) fn run(args: &MergeArgs) -> anyhow::Result<i32> {
    if let Some(path) = &args.output {
        check_output(path)?;
    }
    let docs = crate::results::load::load(&args.files)?;
    let n = docs.len();
    let merged = crate::analysis::merge::merge(docs)?;
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
    crate::error::note(format!(
        "Merged {n} documents: {} cells on {} machine shape{}: {}.",
        merged.cells.len(),
        shapes.len(),
        if shapes.len() == 1 { "" } else { "s" },
        shapes.join("; ")
    ));
    Ok(0)
}
