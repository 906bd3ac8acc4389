//! The preload library of a variant: finding it, and checking that
//! `LD_PRELOAD` can load it on this machine (the ELF checks; `crate::elf`
//! reads the dynamic section).

use std::io::Read;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use thiserror::Error;

use super::{Base, Variant};

/// Why a preload library can't be used.
#[derive(Debug, Error, PartialEq, Clone)]
pub enum LibraryProblem {
    /// The path names no file.
    #[error("{path}: no such file")]
    Missing {
        /// The library's path.
        path: String,
    },
    /// The file exists but cannot be opened or read.
    #[error("{path}: cannot be read: {error}")]
    Unreadable {
        /// The library's path.
        path: String,
        /// The I/O error.
        error: String,
    },
    /// A FIFO, device, directory or socket: reading it could block for
    /// ever, and ld.so cannot map it.
    #[error("{path}: not a regular file, so no shared library")]
    NotRegular {
        /// The library's path.
        path: String,
    },
    /// The file does not start with the ELF magic.
    #[error("{path}: not an ELF file")]
    NotElf {
        /// The library's path.
        path: String,
    },
    /// A path `LD_PRELOAD` would split into several.
    #[error(
        "{path}: LD_PRELOAD cannot load a path containing a space or ':' (ld.so splits its list there); use a path without them, e.g. a symbolic link"
    )]
    Unpreloadable {
        /// The library's path.
        path: String,
    },
    /// An ELF file of another type (an executable, an object file).
    #[error("{path}: an ELF file but not a shared object")]
    NotShared {
        /// The library's path.
        path: String,
    },
    /// A position-independent executable, which looks like a shared object.
    #[error(
        "{path}: a position-independent executable (DF_1_PIE), not a shared library; LD_PRELOAD cannot load a program"
    )]
    Executable {
        /// The program's path.
        path: String,
    },
    /// An ELF file whose headers point outside it or do not parse.
    #[error("{path}: a damaged ELF file: {what}")]
    Damaged {
        /// The library's path.
        path: String,
        /// What in the file is wrong.
        what: String,
    },
    /// A shared object for another architecture.
    #[error("{path}: built for {found}, this machine runs {expected}")]
    WrongArch {
        /// The library's path.
        path: String,
        /// The library's architecture.
        found: String,
        /// This machine's architecture.
        expected: String,
    },
    /// A library file name found in none of the system's library
    /// directories.
    #[error("{file} is not installed (looked in {searched}){hint}")]
    NotInstalled {
        /// The file name looked for.
        file: String,
        /// The directories searched, comma-separated.
        searched: String,
        /// For presets: which package to install, or empty.
        hint: String,
    },
}

impl Variant {
    /// The library file to preload, resolved and checked; `None` for
    /// variants that preload nothing.
    pub fn preload_path(&self) -> Result<Option<PathBuf>, LibraryProblem> {
        match &self.base {
            Base::Preload {
                library, package, ..
            } => resolve_library(library, package.as_deref()).map(Some),
            _ => Ok(None),
        }
    }

    /// Whether the variant can run on this machine, and if not, why.
    pub fn availability(&self) -> Result<(), LibraryProblem> {
        self.preload_path().map(|_| ())
    }
}

/// The directories searched for a preload library given by file name, in
/// the dynamic linker's order for this architecture.
pub fn library_dirs() -> Vec<PathBuf> {
    let triple = format!("{}-linux-gnu", std::env::consts::ARCH);
    [
        format!("/usr/lib/{triple}"),
        format!("/lib/{triple}"),
        "/usr/local/lib".into(),
        "/usr/lib64".into(),
        "/lib64".into(),
        "/usr/lib".into(),
        "/lib".into(),
    ]
    .into_iter()
    .map(PathBuf::from)
    .collect()
}

pub(super) fn resolve_library(
    library: &str,
    package: Option<&str>,
) -> Result<PathBuf, LibraryProblem> {
    // ld.so splits LD_PRELOAD at these, with no escape: the file would
    // silently not be preloaded.
    if library.contains([' ', ':']) {
        return Err(LibraryProblem::Unpreloadable {
            path: library.into(),
        });
    }
    if library.contains('/') {
        let path = PathBuf::from(library);
        check_shared_object(&path)?;
        return Ok(path);
    }
    let dirs = library_dirs();
    for dir in &dirs {
        let path = dir.join(library);
        if path.exists() {
            check_shared_object(&path)?;
            return Ok(path);
        }
    }
    Err(LibraryProblem::NotInstalled {
        file: library.into(),
        searched: dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect::<Vec<_>>()
            .join(", "),
        hint: package
            .map(|p| format!("; install Debian's {p} (scripts/install-allocators)"))
            .unwrap_or_default(),
    })
}

/// ELF machine numbers of the architectures we name in messages.
fn machine_name(machine: u16) -> String {
    match machine {
        3 => "x86 (32-bit)".into(),
        40 => "arm (32-bit)".into(),
        62 => "x86_64".into(),
        183 => "aarch64".into(),
        243 => "riscv".into(),
        m => format!("ELF machine {m}"),
    }
}

fn host_machine() -> u16 {
    match std::env::consts::ARCH {
        "x86" => 3,
        "arm" => 40,
        "x86_64" => 62,
        "aarch64" => 183,
        "riscv64" => 243,
        _ => 0,
    }
}

/// Checks that `path` exists, is readable, and is an ELF shared object for
/// this machine: `LD_PRELOAD` of anything else is ignored by ld.so with a
/// warning only, and the row would silently be glibc.
pub fn check_shared_object(path: &Path) -> Result<(), LibraryProblem> {
    let shown = path.display().to_string();
    // Non-blocking, so that a FIFO's open returns at once to be refused.
    let opened = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path);
    let mut f = match opened {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(LibraryProblem::Missing { path: shown });
        }
        Err(e) => {
            return Err(LibraryProblem::Unreadable {
                path: shown,
                error: e.to_string(),
            });
        }
    };
    if !f.metadata().is_ok_and(|m| m.is_file()) {
        return Err(LibraryProblem::NotRegular { path: shown });
    }
    // The file header: 64 bytes for 64-bit ELF, 52 for 32-bit; the
    // identification, type and machine are in the first 20.
    let mut header = Vec::with_capacity(64);
    if let Err(e) = (&mut f).take(64).read_to_end(&mut header) {
        return Err(LibraryProblem::Unreadable {
            path: shown,
            error: e.to_string(),
        });
    }
    if header.len() < 20 {
        return Err(LibraryProblem::NotElf { path: shown });
    }
    if &header[..4] != b"\x7fELF" {
        return Err(LibraryProblem::NotElf { path: shown });
    }
    // ELFCLASS32/64 and ELFDATA2LSB/MSB; anything else is no valid header.
    let (class64, little) = match (header[4], header[5]) {
        (1 | 2, 1 | 2) => (header[4] == 2, header[5] == 1),
        _ => return Err(LibraryProblem::NotElf { path: shown }),
    };
    let read16 = |at: usize| {
        let b = [header[at], header[at + 1]];
        if little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    };
    let (e_type, e_machine) = (read16(16), read16(18));
    let host = host_machine();
    // The byte order counts too: a big-endian header whose bytes spell this
    // machine's number is still not loadable here.
    let host_little = cfg!(target_endian = "little");
    if e_machine != host || class64 != cfg!(target_pointer_width = "64") || little != host_little {
        return Err(LibraryProblem::WrongArch {
            path: shown,
            found: format!(
                "{} ({}-bit{})",
                machine_name(e_machine),
                if class64 { 64 } else { 32 },
                match (little, host_little) {
                    (true, false) => ", little-endian",
                    (false, true) => ", big-endian",
                    _ => "",
                }
            ),
            expected: std::env::consts::ARCH.into(),
        });
    }
    // ET_DYN: a shared object, or a PIE executable, which ld.so refuses to
    // preload ("cannot dynamically load position-independent executable").
    if e_type != 3 {
        return Err(LibraryProblem::NotShared { path: shown });
    }
    let elf = crate::elf::Elf {
        file: &f,
        class64,
        little,
        header: &header,
    };
    match elf.is_pie() {
        Ok(false) => Ok(()),
        Ok(true) => Err(LibraryProblem::Executable { path: shown }),
        Err(what) => Err(LibraryProblem::Damaged {
            path: shown,
            what: what.to_string(),
        }),
    }
}
#[cfg(test)]
mod tests {
    use super::*;
    use crate::variant::{Catalog, VariantError};

    #[test]
    fn a_fifo_or_device_is_no_library() {
        // Opening a FIFO without a writer used to block for ever.
        let dir = std::env::temp_dir().join(format!("allocbench-fifo-so-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("lib.so");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: `c` is a NUL-terminated path that outlives the call.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        for path in [fifo.as_path(), Path::new("/dev/zero"), dir.as_path()] {
            assert!(
                matches!(
                    check_shared_object(path),
                    Err(LibraryProblem::NotRegular { .. })
                ),
                "{}",
                path.display()
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn shared_object_checks() {
        let dir = std::env::temp_dir().join(format!("allocbench-elf-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let missing = dir.join("missing.so");
        assert!(matches!(
            check_shared_object(&missing),
            Err(LibraryProblem::Missing { .. })
        ));
        let text = dir.join("text.so");
        std::fs::write(&text, "not an elf file at all").unwrap();
        assert!(matches!(
            check_shared_object(&text),
            Err(LibraryProblem::NotElf { .. })
        ));
        // The running test executable is ELF for this machine; a PIE is ET_DYN.
        let exe = std::env::current_exe().unwrap();
        let mut bytes = std::fs::read(&exe).unwrap()[..64].to_vec();
        let wrong = dir.join("wrong-arch.so");
        bytes[18] = 40; // EM_ARM
        bytes[19] = 0;
        std::fs::write(&wrong, &bytes).unwrap();
        assert!(matches!(
            check_shared_object(&wrong),
            Err(LibraryProblem::WrongArch { .. })
        ));
        let exec = dir.join("exec.so");
        bytes[18..20].copy_from_slice(&host_machine().to_le_bytes());
        bytes[16] = 2; // ET_EXEC
        std::fs::write(&exec, &bytes).unwrap();
        assert!(matches!(
            check_shared_object(&exec),
            Err(LibraryProblem::NotShared { .. })
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn header_byte_order_and_class_must_be_this_machines() {
        // A header claiming big-endian whose bytes spell this machine's
        // number and ET_DYN in big-endian order used to be accepted on a
        // little-endian host; invalid class or byte-order bytes passed the
        // magic check as "32-bit" or "big-endian".
        let dir = std::env::temp_dir().join(format!("allocbench-elf-order-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let exe = std::env::current_exe().unwrap();
        let real = std::fs::read(&exe).unwrap()[..64].to_vec();
        let f = dir.join("lib.so");
        let mut swapped = real.clone();
        let host_little = cfg!(target_endian = "little");
        swapped[5] = if host_little { 2 } else { 1 };
        let enc = |v: u16| {
            if host_little {
                v.to_be_bytes()
            } else {
                v.to_le_bytes()
            }
        };
        swapped[16..18].copy_from_slice(&enc(3));
        swapped[18..20].copy_from_slice(&enc(host_machine()));
        std::fs::write(&f, &swapped).unwrap();
        let e = check_shared_object(&f).unwrap_err();
        assert!(matches!(e, LibraryProblem::WrongArch { .. }), "{e}");
        assert!(e.to_string().contains("-endian"), "{e}");
        for (at, byte) in [(4, 0), (4, 3), (5, 0), (5, 255)] {
            let mut bad = real.clone();
            bad[at] = byte;
            std::fs::write(&f, &bad).unwrap();
            let e = check_shared_object(&f).unwrap_err();
            assert!(
                matches!(e, LibraryProblem::NotElf { .. }),
                "{at}={byte}: {e}"
            );
        }
        // The whole of a real library passes (a header alone is cut short).
        std::fs::write(&f, &real).unwrap();
        let e = check_shared_object(&f).unwrap_err();
        assert!(matches!(e, LibraryProblem::Damaged { .. }), "{e}");
        let libc = resolve_library("libc.so.6", None).unwrap();
        std::fs::copy(&libc, &f).unwrap();
        check_shared_object(&f).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn executables_are_refused_and_shared_libraries_pass() {
        // A PIE is ET_DYN like a library and passed the header check; ld.so
        // then refused to preload it and the cell failed only after its start.
        let exe = std::env::current_exe().unwrap();
        let e = check_shared_object(&exe).unwrap_err();
        assert!(matches!(e, LibraryProblem::Executable { .. }), "{e}");
        assert!(e.to_string().contains("executable"), "{e}");
        let e = Catalog::default()
            .resolve(&exe.display().to_string())
            .unwrap_err();
        assert!(e.to_string().contains("not a shared library"), "{e}");
        // libc itself has an interpreter (it runs as a program) but is no PIE.
        for lib in [
            "libc.so.6",
            "libm.so.6",
            "libjemalloc.so.2",
            "libtcmalloc_minimal.so.4",
        ] {
            match resolve_library(lib, None) {
                Ok(path) => check_shared_object(&path).unwrap(),
                Err(LibraryProblem::NotInstalled { .. }) if lib.contains("malloc") => {}
                Err(e) => panic!("{lib}: {e}"),
            }
        }
    }

    #[test]
    fn a_dynamic_section_outside_the_file_is_damage() {
        let dir = std::env::temp_dir().join(format!("allocbench-elf-cut-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let libc = std::fs::read(resolve_library("libc.so.6", None).unwrap()).unwrap();
        let f = dir.join("cut.so");
        std::fs::write(&f, &libc[..libc.len() / 8]).unwrap();
        let e = check_shared_object(&f).unwrap_err();
        assert!(matches!(e, LibraryProblem::Damaged { .. }), "{e}");
        assert!(e.to_string().contains("outside the file"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn paths_ld_so_would_split_are_refused() {
        // A path with a space or ':' passed every check, then ld.so split
        // LD_PRELOAD there and the row ran without the library.
        let exe = std::env::current_exe().unwrap();
        let dir = std::env::temp_dir().join(format!("allocbench-split {}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let spaced = dir.join("lib.so");
        std::os::unix::fs::symlink(&exe, &spaced).unwrap();
        for path in [spaced.display().to_string(), "/opt/a:b/lib.so".into()] {
            let e = Catalog::default().resolve(&path).unwrap_err();
            assert!(
                matches!(
                    &e,
                    VariantError::Library {
                        problem: LibraryProblem::Unpreloadable { .. },
                        ..
                    }
                ),
                "{e}"
            );
            assert!(e.to_string().contains("space or ':'"), "{e}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
