//! Writing output files, checked before any work. A regular file (or a new
//! path) is written atomically: a temporary file beside it, then a rename,
//! so a reader never sees half a document. Anything else a path can name
//! — a character device (`/dev/null`), a FIFO, an open descriptor
//! (`/dev/stdout`, `/dev/fd/N` of a process substitution) — is written to
//! directly, as any Unix tool does. A symbolic link is followed: the file
//! it points to is replaced and the link kept. The directory must exist.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Where the bytes for a path go.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    /// A regular file or a new one, at its real path (symbolic links
    /// followed): a temporary file there, then a rename.
    Atomic(PathBuf),
    /// A device, FIFO, socket or open descriptor: opened and written.
    Direct(PathBuf),
}

fn io_error(message: String) -> std::io::Error {
    std::io::Error::other(message)
}

/// Whether `dir` (canonical) is a process's descriptor directory,
/// `/proc/PID/fd`, whose entries are the open files themselves, not links
/// to paths one could rename onto.
fn descriptor_dir(dir: &Path) -> bool {
    dir.starts_with("/proc") && dir.file_name().is_some_and(|n| n == "fd")
}

/// Where writing `path` goes: follows symbolic links (at most 40, as the
/// kernel does) to a regular file, a new path, or something else.
fn target(path: &Path) -> std::io::Result<Target> {
    use std::os::unix::ffi::OsStrExt;
    // `out/` names a directory; `Path` would drop the slash and write a
    // file `out`.
    if path.as_os_str().as_bytes().ends_with(b"/") {
        return Err(io_error("a path ending in / names a directory".into()));
    }
    let mut at = path.to_path_buf();
    for _ in 0..40 {
        let Some(name) = at.file_name().map(|n| n.to_owned()) else {
            return Err(io_error("it is a directory".into()));
        };
        let parent = match at.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let dir = match std::fs::canonicalize(&parent) {
            Ok(d) => d,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(io_error(format!(
                    "no such directory: {} (allocbench does not create it)",
                    parent.display()
                )));
            }
            Err(e) => return Err(e),
        };
        if !dir.is_dir() {
            return Err(io_error(format!("{} is not a directory", parent.display())));
        }
        if descriptor_dir(&dir) {
            return Ok(Target::Direct(path.to_path_buf()));
        }
        let real = dir.join(&name);
        let meta = match std::fs::symlink_metadata(&real) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Target::Atomic(real)),
            Err(e) => return Err(e),
        };
        let kind = meta.file_type();
        if kind.is_symlink() {
            // A relative link is relative to the link's directory.
            at = dir.join(std::fs::read_link(&real)?);
        } else if kind.is_file() {
            return Ok(Target::Atomic(real));
        } else if kind.is_dir() {
            return Err(io_error("it is a directory".into()));
        } else {
            return Ok(Target::Direct(real));
        }
    }
    Err(io_error("too many levels of symbolic links".into()))
}

/// Whether `path` is rewritten as a run goes (a regular file or a new
/// path), rather than written once at the end: a device or a stream
/// (`/dev/stdout`, a FIFO) would receive the document many times over.
pub fn rewritable(path: &Path) -> bool {
    matches!(target(path), Ok(Target::Atomic(_)))
}

/// The temporary file [`write_atomic`] writes before renaming it to `path`.
fn temp_path(path: &Path) -> PathBuf {
    let file = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_else(|| "output".into());
    path.with_file_name(format!(".{file}.{}.tmp", std::process::id()))
}

/// Writes `text` to `real` through a temporary file beside it, removed on
/// any error (a full disk must not leave it behind).
fn replace(real: &Path, text: &str) -> std::io::Result<()> {
    let tmp = temp_path(real);
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        // A delayed allocation failure (ENOSPC, EDQUOT) shows here or not
        // at all.
        f.sync_all()?;
        std::fs::rename(&tmp, real)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// Writes `text` to `path`: atomically for a regular file or a new path,
/// directly for a device, FIFO or open descriptor (see the module doc).
pub fn write_atomic(path: &Path, text: &str) -> anyhow::Result<()> {
    let write = || -> std::io::Result<()> {
        match target(path)? {
            Target::Atomic(real) => replace(&real, text),
            Target::Direct(p) => {
                let mut f = std::fs::OpenOptions::new().write(true).open(p)?;
                f.write_all(text.as_bytes())?;
                f.flush()
            }
        }
    };
    write().map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}

/// Checks, before any work, that [`write_atomic`] will be able to write
/// `path`: its directory exists and takes a new file (for a regular file
/// or a new path), or the device or stream is writable to this user. A
/// FIFO is not opened: its reader would see the end of its input.
pub fn check_writable(path: &Path) -> std::io::Result<()> {
    match target(path)? {
        Target::Atomic(real) => {
            let tmp = temp_path(&real);
            std::fs::File::create(&tmp)?;
            std::fs::remove_file(&tmp)
        }
        Target::Direct(p) => {
            nix::unistd::access(&p, nix::unistd::AccessFlags::W_OK).map_err(std::io::Error::from)
        }
    }
}

/// Checks, before any work, that files can be written in `dir`, which is
/// made (with its parents) if missing.
pub fn check_dir_writable(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    check_writable(&dir.join("allocbench-check"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("allocbench-write-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_symlink_is_followed_and_kept() {
        let dir = scratch("link");
        std::fs::write(dir.join("real.json"), "old").unwrap();
        std::os::unix::fs::symlink("real.json", dir.join("link.json")).unwrap();
        write_atomic(&dir.join("link.json"), "new").unwrap();
        assert!(
            std::fs::symlink_metadata(dir.join("link.json"))
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("real.json")).unwrap(),
            "new"
        );
        // A dangling link makes its target, as a shell's `>` does.
        std::os::unix::fs::symlink("made.json", dir.join("dangling")).unwrap();
        write_atomic(&dir.join("dangling"), "made").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("made.json")).unwrap(),
            "made"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_fifo_is_written_to_not_replaced() {
        let dir = scratch("fifo");
        let fifo = dir.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(!rewritable(&fifo));
        check_writable(&fifo).unwrap();
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read_to_string(fifo).unwrap())
        };
        write_atomic(&fifo, "through").unwrap();
        assert_eq!(reader.join().unwrap(), "through");
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn descriptors_and_devices_are_written_directly() {
        assert_eq!(
            target(Path::new("/dev/null")).unwrap(),
            Target::Direct("/dev/null".into())
        );
        // Whatever fd 1 is here, /dev/stdout names the descriptor.
        assert_eq!(
            target(Path::new("/dev/stdout")).unwrap(),
            Target::Direct("/dev/stdout".into())
        );
        assert_eq!(
            target(Path::new("/dev/fd/2")).unwrap(),
            Target::Direct("/dev/fd/2".into())
        );
        check_writable(Path::new("/dev/null")).unwrap();
        write_atomic(Path::new("/dev/null"), "gone").unwrap();
    }

    #[test]
    fn a_missing_directory_is_refused_not_made() {
        let dir = scratch("missing");
        let e = check_writable(&dir.join("no/such/out.json")).unwrap_err();
        assert!(e.to_string().contains("no such directory"), "{e}");
        assert!(!dir.join("no").exists());
        let e = check_writable(&dir).unwrap_err();
        assert!(e.to_string().contains("directory"), "{e}");
        let e = check_writable(&dir.join("out/")).unwrap_err();
        assert!(e.to_string().contains("ending in /"), "{e}");
        assert!(!dir.join("out").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
