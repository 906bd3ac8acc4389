//! `--resume`: the finished cells of an earlier run, read back from its
//! `--output`, to keep instead of running them again.

use super::usage;
use crate::exec::cell::CellPlan;
use crate::exec::runner::same_cell;
use crate::results::Status;

/// The finished cells of the document at `output`, for `--resume` of
/// `plans`. A missing file is an empty start; anything but an allocbench
/// JSON document of this format version is refused, and so is one with
/// finished cells that none of `plans` is: they would be dropped as the
/// output is rewritten (another `--requests`, fewer variants).
pub fn previous_cells(
    format: crate::cli::Format,
    output: Option<&std::path::Path>,
    plans: &[CellPlan],
) -> anyhow::Result<Vec<crate::results::CellResult>> {
    let Some(path) = output else {
        return Err(usage(
            "--resume needs --output PATH (a JSON document to continue)",
        ));
    };
    if format != crate::cli::Format::Json {
        return Err(usage(
            "--resume needs --format json: only the JSON document holds the cells",
        ));
    }
    let text = match crate::read::read_input(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(usage(format!("--resume: {}: {e}", path.display()))),
    };
    let doc: crate::results::Document = serde_json::from_str(&text).map_err(|e| {
        usage(format!(
            "--resume: {} is not an allocbench result document: {e}",
            path.display()
        ))
    })?;
    if doc.format_version != crate::results::FORMAT_VERSION {
        return Err(usage(format!(
            "--resume: {} has format version {}, this allocbench writes {}",
            path.display(),
            doc.format_version,
            crate::results::FORMAT_VERSION
        )));
    }
    let dropped = doc
        .cells
        .iter()
        .filter(|c| c.status == Status::Ok && !plans.iter().any(|p| same_cell(c, p)))
        .count();
    if dropped > 0 {
        let now: Vec<String> = std::env::args().collect();
        let why = command_differs(&doc.command, &now)
            .map(|d| format!(" (another command line: {d})"))
            .unwrap_or_default();
        return Err(usage(format!(
            "--resume: {dropped} finished cell(s) in {} are not among this run's cells{why} and would be lost; resume with the earlier arguments, or write to another --output",
            path.display()
        )));
    }
    Ok(doc.cells)
}

/// How the command line of an earlier run (`was`) differs from this one
/// (`now`), `--resume` and the program's path aside; `None` when the same.
fn command_differs(was: &[String], now: &[String]) -> Option<String> {
    crate::analysis::merge::command_differs(was, now, &["--resume"])
        .map(|(had, has)| format!("it had: {had}; this one has: {has}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resuming_another_command_line_names_the_difference() {
        let c = |s: &str| -> Vec<String> { s.split(' ').map(String::from).collect() };
        let was = c("/bin/allocbench compare --requests 100 --output o.json");
        assert_eq!(
            command_differs(
                &was,
                &c("./allocbench compare --requests 100 --output o.json --resume")
            ),
            None
        );
        let why = command_differs(
            &was,
            &c("allocbench compare --requests 200 --output o.json --resume"),
        )
        .unwrap();
        assert_eq!(why, "it had: --requests 100; this one has: --requests 200");
    }
}
