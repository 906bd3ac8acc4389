//! Writing output files: atomically (a temporary file, then a rename), and
//! checked before any work.

use std::path::Path;

/// The temporary file [`write_atomic`] writes before renaming it to `path`.
fn temp_path(path: &Path) -> std::path::PathBuf {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{file}.{}.tmp", std::process::id()))
}

fn create_parent(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => std::fs::create_dir_all(dir),
        None => Ok(()),
    }
}

/// Writes `text` to `path` atomically: a temporary file beside it, then a
/// rename, so a reader never sees a half-written file.
pub fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let write = || -> std::io::Result<()> {
        create_parent(path)?;
        let tmp = temp_path(path);
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// Checks, before any work, that [`write_atomic`] will be able to write
/// `path`: its directory can be made and written, and it is not a directory.
pub fn check_writable(path: &Path) -> std::io::Result<()> {
    if path.is_dir() {
        return Err(std::io::Error::other("it is a directory"));
    }
    create_parent(path)?;
    let tmp = temp_path(path);
    std::fs::File::create(&tmp)?;
    std::fs::remove_file(&tmp)
}
