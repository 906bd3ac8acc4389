//! The error that refuses bad input before any work: exit code 2.

/// Bad input: the run refuses to start. Exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// A [`UsageError`] with this message.
pub fn usage(e: impl std::fmt::Display) -> anyhow::Error {
    UsageError(e.to_string()).into()
}

/// Writes a line to stderr. An unwritable stderr (`2>/dev/full`, a closed
/// pipe) loses the line, not the run: `eprintln!` would panic, before the
/// results reach `--output`.
pub fn note(line: impl std::fmt::Display) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}
