//! Reading result documents back: anything that is not a result document
//! of this format version is refused (exit 2).

use std::path::PathBuf;

use crate::error::usage;

use super::{Document, FORMAT_VERSION};

/// Reads result documents; anything else is refused (exit 2).
pub fn load(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, Document)>> {
    if paths.is_empty() {
        return Err(usage("report needs at least one result file"));
    }
    let mut docs = Vec::new();
    for path in paths {
        let shown = path.display().to_string();
        let text = crate::read::read_input(path).map_err(|e| usage(format!("{shown}: {e}")))?;
        let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            usage(format!(
                "{shown} is not an allocbench result (not JSON: {e})"
            ))
        })?;
        let Some(version) = value.get("format_version").and_then(|v| v.as_u64()) else {
            return Err(usage(format!(
                "{shown} is not an allocbench result (no format_version)"
            )));
        };
        if version != u64::from(FORMAT_VERSION) {
            return Err(usage(format!(
                "{shown} has result format version {version}; this allocbench reads version {FORMAT_VERSION}"
            )));
        }
        let doc: Document = serde_json::from_value(value)
            .map_err(|e| usage(format!("{shown} is not an allocbench result: {e}")))?;
        docs.push((shown, doc));
    }
    Ok(docs)
}
