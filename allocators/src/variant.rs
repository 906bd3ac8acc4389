//! What an allocator variant is, the named presets, user-defined variants
//! from a TOML file, and the environment a process is launched with.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::dispatch::{SELECT_ENV, Selection};
use crate::settings::{self, Family};

/// Which allocator a variant runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Base {
    /// glibc malloc, tuned through its environment.
    Glibc,
    /// The jemalloc compiled into allocbench (tikv-jemallocator).
    Jemalloc,
    /// The mimalloc compiled into allocbench (the `mimalloc` crate).
    Mimalloc,
    /// A shared library put in front of libc through `LD_PRELOAD`. `library`
    /// is a path (it contains `/`) or a file name looked up in the system's
    /// library directories.
    Preload {
        /// The library's path or file name.
        library: String,
        /// The allocator the library must turn out to be, for presets.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        expect: Option<String>,
        /// The Debian package that provides it, for presets.
        #[serde(skip_serializing_if = "Option::is_none", default)]
        package: Option<String>,
    },
}

/// A named allocator configuration: a base allocator plus environment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variant {
    /// What the user calls it on the command line and in reports.
    pub name: String,
    /// The allocator it runs on.
    pub base: Base,
    /// Environment as the user wrote it (for built-in jemalloc, `MALLOC_CONF`
    /// is passed on as `_RJEM_MALLOC_CONF`; see [`Variant::launch`]).
    pub env: BTreeMap<String, String>,
    /// One line for `allocbench list` saying what the variant is for.
    pub description: String,
    /// Run the process tree with transparent huge pages disabled
    /// (`prctl(PR_SET_THP_DISABLE)`, inherited across fork).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub thp_disable: bool,
    /// jemalloc only: turn background threads on again in each worker after
    /// the fork (jemalloc's background threads do not survive a fork).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub background_thread_in_workers: bool,
}

/// The workspace's preload library of the built-in (prefixed) jemalloc.
const JEMALLOC_LIBRARY: &str = "liballocbench_jemalloc.so";

/// Injects a fault into a cell's processes, for the harness's own tests
/// (read by the workload: `allocbench_workloads::fault`). Set through a
/// variant's environment, never inherited from the user's shell.
pub const FAULT_ENV: &str = "ALLOCBENCH_FAULT";

/// Set in a launched process when its variant disables THP.
pub const THP_DISABLE_ENV: &str = "ALLOCBENCH_THP_DISABLE";
/// Set in a launched process when its workers turn jemalloc's background
/// threads on after the fork.
pub const WORKER_BACKGROUND_THREAD_ENV: &str = "ALLOCBENCH_WORKER_BACKGROUND_THREAD";

/// Bad variant names, definitions or files: usage errors.
#[derive(Debug, Error, PartialEq)]
pub enum VariantError {
    /// A name on the variant list that is neither a preset nor defined in the
    /// variants file.
    #[error("unknown variant {name:?}; valid variants: {valid}")]
    Unknown {
        /// The name as the user gave it.
        name: String,
        /// The known variant names, comma-separated.
        valid: String,
    },
    /// An environment variable name no shell would accept.
    #[error(
        "variant {variant:?}: invalid environment variable name {name:?} (letters, digits and '_', not starting with a digit)"
    )]
    BadEnvName {
        /// The variant that sets it.
        variant: String,
        /// The bad variable name.
        name: String,
    },
    /// A variable that allocbench sets itself, or that would change what is
    /// measured behind the variant's back.
    #[error("variant {variant:?}: environment variable {name} must not be set here: {why}")]
    ReservedEnv {
        /// The variant that sets it.
        variant: String,
        /// The reserved variable.
        name: String,
        /// Why the variant may not set it.
        why: &'static str,
    },
    /// A value with a NUL byte, which no environment can hold.
    #[error("variant {variant:?}: value of {name} contains a NUL byte")]
    BadEnvValue {
        /// The variant that sets it.
        variant: String,
        /// The variable whose value holds the NUL.
        name: String,
    },
    /// A value the allocator reading it would not parse, and so would
    /// silently ignore.
    #[error("variant {variant:?}: {name}={value:?} is malformed: expected {expected}")]
    BadEnvFormat {
        /// The variant that sets it.
        variant: String,
        /// The variable.
        name: String,
        /// The value as written.
        value: String,
        /// The format the allocator reads.
        expected: String,
    },
    /// A variable only another allocator family reads: the variant would
    /// measure its allocator's defaults under a tuned name.
    #[error(
        "variant {variant:?}: {what} is read only by {reader}, but this variant runs on {runs_on}, which would ignore it"
    )]
    ForeignEnv {
        /// The variant that sets it.
        variant: String,
        /// The variable.
        name: String,
        /// The variable, or for `GLIBC_TUNABLES` its malloc tunables.
        what: String,
        /// The allocator family that reads it.
        reader: &'static str,
        /// The allocator family the variant runs on.
        runs_on: &'static str,
    },
    /// A `NAME=VALUE` item without `=`, or with an empty name.
    #[error("invalid environment assignment {0:?}: expected NAME=VALUE")]
    BadAssignment(
        /// The item as the user gave it.
        String,
    ),
    /// A variant name with characters outside the allowed set.
    #[error("invalid variant name {0:?}: use letters, digits, '.', '_', '+' and '-'")]
    BadName(
        /// The name as the user gave it.
        String,
    ),
    /// A variants file defining a name already defined (a preset's, or one
    /// an earlier file defined).
    #[error("variant {name:?} is defined twice")]
    Duplicate {
        /// The name defined twice.
        name: String,
    },
    /// One variant twice on the variant list.
    #[error("variant {name:?} is listed twice")]
    ListedTwice {
        /// The name listed twice.
        name: String,
    },
    /// A variants-file `base` that names no variant and no `.so` file.
    #[error(
        "variant {variant:?}: base {base:?} is neither a variant name nor a path to a .so file; valid bases: {valid}"
    )]
    UnknownBase {
        /// The variant whose base it is.
        variant: String,
        /// The base as written.
        base: String,
        /// The known variant names, comma-separated.
        valid: String,
    },
    /// Variants-file bases that lead back to where they started.
    #[error(
        "variant {variant:?}: base {base:?} leads back to {variant:?}; bases must not form a cycle"
    )]
    BaseCycle {
        /// The variant where the cycle was found.
        variant: String,
        /// Its base, which leads back to it.
        base: String,
    },
    /// A variants file that cannot be read or is not valid TOML for variants.
    #[error("variants file {path}: {message}")]
    File {
        /// The file as the user named it.
        path: String,
        /// What is wrong with it (the I/O or TOML error).
        message: String,
    },
    /// A variant whose preload library cannot be used.
    #[error("variant {variant:?}: {problem}")]
    Library {
        /// The variant.
        variant: String,
        /// What is wrong with its library.
        problem: LibraryProblem,
    },
    /// No variant to run.
    #[error("the variant list is empty")]
    Empty,
    /// `background_thread_in_workers` on a variant that does not run on
    /// jemalloc.
    #[error("variant {variant:?}: background_thread_in_workers needs a jemalloc base")]
    NotJemalloc {
        /// The variant.
        variant: String,
    },
}

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
    fn preset(name: &str, base: Base, env: &[(&str, &str)], description: &str) -> Variant {
        Variant {
            name: name.into(),
            base,
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            description: description.into(),
            thp_disable: false,
            background_thread_in_workers: false,
        }
    }

    /// `glibc`, `built-in` or `preload`: how the allocator gets into the process.
    pub fn kind(&self) -> &'static str {
        match self.base {
            Base::Glibc => "glibc",
            Base::Jemalloc | Base::Mimalloc => "built-in",
            Base::Preload { .. } => "preload",
        }
    }

    /// The allocator name the worker must report for this variant to be in
    /// effect; `None` for a user's `.so`, which may be any allocator (its
    /// library must still be the one defining `malloc`).
    pub fn expected_allocator(&self) -> Option<&str> {
        match &self.base {
            Base::Glibc => Some("glibc"),
            Base::Jemalloc => Some("jemalloc"),
            Base::Mimalloc => Some("mimalloc"),
            Base::Preload { expect, .. } => expect.as_deref(),
        }
    }

    /// The allocator family the variant runs on, where it is known: the
    /// base's, a preset library's, or what a library's file name clearly
    /// says (`libjemalloc.so.2`); `None` for a library of unknown family.
    pub fn family(&self) -> Option<Family> {
        match &self.base {
            Base::Glibc => Some(Family::Glibc),
            Base::Jemalloc => Some(Family::Jemalloc),
            Base::Mimalloc => Some(Family::Mimalloc),
            Base::Preload {
                expect: Some(name), ..
            } => Family::from_allocator(name),
            Base::Preload { library, .. } => Family::of_library(library),
        }
    }

    /// Whether the variant's jemalloc is the prefixed build, which reads
    /// `_RJEM_MALLOC_CONF`: the built-in one, or the workspace's library
    /// that carries it.
    fn prefixed_jemalloc(&self) -> bool {
        match &self.base {
            Base::Jemalloc => true,
            Base::Preload { library, .. } => library.rsplit('/').next() == Some(JEMALLOC_LIBRARY),
            _ => false,
        }
    }

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

    /// The environment to launch a process under this variant with.
    pub fn launch(&self) -> Result<Launch, VariantError> {
        let mut set = Vec::new();
        let selection = match self.base {
            Base::Jemalloc => Selection::Jemalloc,
            Base::Mimalloc => Selection::Mimalloc,
            _ => Selection::System,
        };
        set.push((SELECT_ENV.to_string(), selection.env_value().to_string()));
        if let Some(path) = self
            .preload_path()
            .map_err(|problem| VariantError::Library {
                variant: self.name.clone(),
                problem,
            })?
        {
            set.push(("LD_PRELOAD".into(), path.to_string_lossy().into_owned()));
        }
        for (k, v) in &self.env {
            // The built-in jemalloc is prefixed: it reads _RJEM_MALLOC_CONF.
            let key = if self.prefixed_jemalloc() && k == "MALLOC_CONF" {
                "_RJEM_MALLOC_CONF".to_string()
            } else {
                k.clone()
            };
            set.push((key, v.clone()));
        }
        if self.thp_disable {
            set.push((THP_DISABLE_ENV.into(), "1".into()));
        }
        if self.background_thread_in_workers {
            set.push((WORKER_BACKGROUND_THREAD_ENV.into(), "1".into()));
        }
        Ok(Launch { set })
    }

    /// The file name of the preload library that carries a built-in
    /// allocator into any program (built by the workspace's `preload/`
    /// crates next to the `allocbench` executable); `None` for other bases.
    pub fn builtin_preload_file(&self) -> Option<&'static str> {
        match self.base {
            Base::Jemalloc => Some(JEMALLOC_LIBRARY),
            Base::Mimalloc => Some("liballocbench_mimalloc.so"),
            _ => None,
        }
    }

    /// The environment to launch *another program* under this variant
    /// (`allocbench measure`): a built-in allocator comes in through its
    /// preload library, `builtin_library` (see
    /// [`Variant::builtin_preload_file`]), since a foreign program has no
    /// `DispatchAlloc` to select it. `MALLOC_CONF` becomes
    /// `_RJEM_MALLOC_CONF` for the jemalloc library, which is prefixed like
    /// the built-in. The variables only allocbench's own workload reads
    /// ([`THP_DISABLE_ENV`], …) are left out: the caller applies what it can.
    pub fn launch_program(&self, builtin_library: Option<&Path>) -> Result<Launch, VariantError> {
        let library = match (&self.base, self.builtin_preload_file()) {
            (_, Some(file)) => Some(builtin_library.map(Path::to_path_buf).ok_or_else(|| {
                VariantError::Library {
                    variant: self.name.clone(),
                    problem: LibraryProblem::Missing { path: file.into() },
                }
            })?),
            _ => self
                .preload_path()
                .map_err(|problem| VariantError::Library {
                    variant: self.name.clone(),
                    problem,
                })?,
        };
        let mut set = Vec::new();
        if let Some(path) = library {
            set.push(("LD_PRELOAD".into(), path.to_string_lossy().into_owned()));
        }
        for (k, v) in &self.env {
            let key = if self.prefixed_jemalloc() && k == "MALLOC_CONF" {
                "_RJEM_MALLOC_CONF".to_string()
            } else {
                k.clone()
            };
            set.push((key, v.clone()));
        }
        Ok(Launch { set })
    }

    fn validate(&self) -> Result<(), VariantError> {
        validate_name(&self.name)?;
        if self.background_thread_in_workers && matches!(self.base, Base::Glibc | Base::Mimalloc) {
            return Err(VariantError::NotJemalloc {
                variant: self.name.clone(),
            });
        }
        for (k, v) in &self.env {
            validate_env(&self.name, k, v)?;
            // The allocator would ignore a value it cannot parse, silently.
            settings::check_value(k, v).map_err(|expected| VariantError::BadEnvFormat {
                variant: self.name.clone(),
                name: k.clone(),
                value: v.clone(),
                expected,
            })?;
            // Nor does an allocator read another's variables.
            if let (Some(runs_on), Some(reader)) = (self.family(), settings::reader(k, v))
                && runs_on != reader
            {
                return Err(VariantError::ForeignEnv {
                    variant: self.name.clone(),
                    name: k.clone(),
                    what: if k == "GLIBC_TUNABLES" {
                        format!("{k} with glibc.malloc tunables")
                    } else {
                        k.clone()
                    },
                    reader: reader.name(),
                    runs_on: runs_on.name(),
                });
            }
        }
        Ok(())
    }
}

/// The environment of a process launched under a variant: variables to set,
/// after removing every allocator variable the parent had (see
/// [`is_allocator_env`]) so that the user's shell does not leak into a row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launch {
    /// The variables to set, in order, as (name, value).
    pub set: Vec<(String, String)>,
}

impl Launch {
    /// Applies the launch environment to a command.
    pub fn apply(&self, cmd: &mut std::process::Command) {
        for (k, _) in std::env::vars_os() {
            if let Some(k) = k.to_str()
                && is_allocator_env(k)
            {
                cmd.env_remove(k);
            }
        }
        for (k, v) in &self.set {
            cmd.env(k, v);
        }
    }
}

/// Environment variables that tune or replace an allocator, or that
/// allocbench's own workload reads; a launched process gets only those its
/// variant sets.
pub fn is_allocator_env(name: &str) -> bool {
    const EXACT: &[&str] = &[
        "LD_PRELOAD",
        "GLIBC_TUNABLES",
        SELECT_ENV,
        THP_DISABLE_ENV,
        WORKER_BACKGROUND_THREAD_ENV,
        FAULT_ENV,
    ];
    const PREFIXES: &[&str] = &["MALLOC_", "_RJEM_", "MIMALLOC_", "TCMALLOC_", "JE_MALLOC"];
    EXACT.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p))
}

fn validate_name(name: &str) -> Result<(), VariantError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._+-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(VariantError::BadName(name.into()))
    }
}

fn validate_env(variant: &str, name: &str, value: &str) -> Result<(), VariantError> {
    let mut chars = name.chars();
    let ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ok {
        return Err(VariantError::BadEnvName {
            variant: variant.into(),
            name: name.into(),
        });
    }
    let reserved = match name {
        "LD_PRELOAD" => Some("preload a library by giving its path as the variant's base"),
        SELECT_ENV => Some("allocbench sets it from the variant's base"),
        "_RJEM_MALLOC_CONF" => {
            Some("write MALLOC_CONF; allocbench passes it to the built-in jemalloc")
        }
        _ => None,
    };
    if let Some(why) = reserved {
        return Err(VariantError::ReservedEnv {
            variant: variant.into(),
            name: name.into(),
            why,
        });
    }
    if value.contains('\0') {
        return Err(VariantError::BadEnvValue {
            variant: variant.into(),
            name: name.into(),
        });
    }
    Ok(())
}

/// Parses `NAME=VALUE`.
pub fn parse_env_assignment(s: &str) -> Result<(String, String), VariantError> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(VariantError::BadAssignment(s.into())),
    }
}

fn preload(library: &str, expect: &str, package: &str) -> Base {
    Base::Preload {
        library: library.into(),
        expect: Some(expect.into()),
        package: Some(package.into()),
    }
}

/// The named presets, in the order tables show them (baseline first).
pub fn presets() -> Vec<Variant> {
    vec![
        Variant::preset("glibc", Base::Glibc, &[], "glibc malloc, default settings"),
        Variant::preset(
            "glibc-arena1",
            Base::Glibc,
            &[("MALLOC_ARENA_MAX", "1")],
            "glibc malloc with a single arena",
        ),
        Variant::preset(
            "glibc-arena2",
            Base::Glibc,
            &[("MALLOC_ARENA_MAX", "2")],
            "glibc malloc with at most two arenas",
        ),
        Variant::preset(
            "glibc-mmap128k",
            Base::Glibc,
            &[("MALLOC_MMAP_THRESHOLD_", "131072")],
            "glibc malloc with a fixed 128 KiB mmap threshold (disables the dynamic threshold)",
        ),
        Variant::preset(
            "jemalloc",
            Base::Jemalloc,
            &[],
            "jemalloc built in (tikv-jemallocator), default settings",
        ),
        Variant::preset(
            "mimalloc",
            Base::Mimalloc,
            &[],
            "mimalloc built in (mimalloc crate), default settings",
        ),
        Variant::preset(
            "glibc-trim128k",
            Base::Glibc,
            &[("MALLOC_TRIM_THRESHOLD_", "131072")],
            "glibc malloc with a fixed 128 KiB trim threshold (no dynamic growth)",
        ),
        Variant::preset(
            "jemalloc-decay0",
            Base::Jemalloc,
            &[("MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")],
            "built-in jemalloc returning freed pages at once",
        ),
        Variant::preset(
            "jemalloc-decay1s",
            Base::Jemalloc,
            &[("MALLOC_CONF", "dirty_decay_ms:1000,muzzy_decay_ms:1000")],
            "built-in jemalloc decaying freed pages over 1 s (default 10 s)",
        ),
        Variant::preset(
            "jemalloc-bg",
            Base::Jemalloc,
            &[("MALLOC_CONF", "background_thread:true")],
            "built-in jemalloc with background threads (in the master only: they do not survive fork)",
        ),
        Variant {
            background_thread_in_workers: true,
            ..Variant::preset(
                "jemalloc-bg-workers",
                Base::Jemalloc,
                &[("MALLOC_CONF", "background_thread:true")],
                "built-in jemalloc with background threads turned on again in every worker",
            )
        },
        Variant::preset(
            "mimalloc-purge0",
            Base::Mimalloc,
            &[("MIMALLOC_PURGE_DELAY", "0")],
            "built-in mimalloc purging freed memory at once",
        ),
        Variant::preset(
            "jemalloc-so",
            preload("libjemalloc.so.2", "jemalloc", "libjemalloc2"),
            &[],
            "the system's jemalloc through LD_PRELOAD",
        ),
        Variant::preset(
            "tcmalloc-so",
            preload(
                "libtcmalloc_minimal.so.4",
                "tcmalloc",
                "libtcmalloc-minimal4",
            ),
            &[],
            "the system's tcmalloc (gperftools, minimal) through LD_PRELOAD",
        ),
        Variant::preset(
            "mimalloc-so",
            preload("libmimalloc.so.2", "mimalloc", "libmimalloc2.0"),
            &[],
            "the system's mimalloc through LD_PRELOAD",
        ),
        Variant::preset(
            "tcmalloc-so-release10",
            preload(
                "libtcmalloc_minimal.so.4",
                "tcmalloc",
                "libtcmalloc-minimal4",
            ),
            &[("TCMALLOC_RELEASE_RATE", "10")],
            "the system's tcmalloc releasing freed memory ten times faster than by default",
        ),
    ]
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

fn resolve_library(library: &str, package: Option<&str>) -> Result<PathBuf, LibraryProblem> {
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
    let mut f = match std::fs::File::open(path) {
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
        Err(what) => Err(LibraryProblem::Damaged { path: shown, what }),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantsFile {
    variants: BTreeMap<String, VariantDef>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VariantDef {
    base: String,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    thp_disable: Option<bool>,
    #[serde(default)]
    background_thread_in_workers: Option<bool>,
}

/// The error for variants that all wait for each other's bases: follows the
/// bases from the first one until a variant repeats, which is on the cycle.
fn cycle(pending: &[(String, VariantDef)]) -> VariantError {
    let base_of = |name: &str| {
        pending
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, d)| d.base.clone())
    };
    let mut seen = vec![pending[0].0.clone()];
    let mut at = pending[0].0.clone();
    loop {
        let base = base_of(&at).expect("every pending base is a pending variant");
        if seen.contains(&base) {
            let next = base_of(&base).expect("every pending base is a pending variant");
            return VariantError::BaseCycle {
                variant: base,
                base: next,
            };
        }
        seen.push(base.clone());
        at = base;
    }
}

/// Every variant known to a run: the presets, then those of a variants file.
#[derive(Debug, Clone)]
pub struct Catalog {
    /// The variants in definition order: presets first.
    pub variants: Vec<Variant>,
}

impl Default for Catalog {
    fn default() -> Self {
        Catalog {
            variants: presets(),
        }
    }
}

impl Catalog {
    /// The presets plus the variants defined in the TOML file at `path`.
    pub fn with_file(path: &Path) -> Result<Catalog, VariantError> {
        let text = std::fs::read_to_string(path).map_err(|e| VariantError::File {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let mut catalog = Catalog::default();
        catalog.add_toml(&text).map_err(|e| match e {
            VariantError::File { message, .. } => VariantError::File {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })?;
        Ok(catalog)
    }

    /// Adds the variants of a variants-file text (`[variants.NAME]` tables
    /// with `base`, `env` and an optional `description`). A variant may be
    /// based on another of the file, wherever that one is defined.
    pub fn add_toml(&mut self, text: &str) -> Result<(), VariantError> {
        let file: VariantsFile = toml::from_str(text).map_err(|e| VariantError::File {
            path: String::new(),
            message: e.to_string(),
        })?;
        let mut pending: Vec<(String, VariantDef)> = file.variants.into_iter().collect();
        while !pending.is_empty() {
            // Bases first: a variant is added once its base is not a variant
            // still pending (TOML tables come in name order, not file order).
            let waits_for = |def: &VariantDef| {
                self.get(&def.base).is_none() && pending.iter().any(|(n, _)| *n == def.base)
            };
            let Some(i) = pending.iter().position(|(_, def)| !waits_for(def)) else {
                return Err(cycle(&pending));
            };
            let (name, def) = pending.remove(i);
            self.add_def(name, def)?;
        }
        Ok(())
    }

    fn add_def(&mut self, name: String, def: VariantDef) -> Result<(), VariantError> {
        if self.get(&name).is_some() {
            return Err(VariantError::Duplicate { name });
        }
        validate_name(&name)?;
        let (base, mut env, base_desc, thp, bg) = match self.get(&def.base) {
            Some(b) => (
                b.base.clone(),
                b.env.clone(),
                b.name.clone(),
                b.thp_disable,
                b.background_thread_in_workers,
            ),
            None if def.base.contains('/') => (
                Base::Preload {
                    library: def.base.clone(),
                    expect: None,
                    package: None,
                },
                BTreeMap::new(),
                def.base.clone(),
                false,
                false,
            ),
            None => {
                return Err(VariantError::UnknownBase {
                    variant: name,
                    base: def.base,
                    valid: self.names().join(", "),
                });
            }
        };
        env.extend(def.env);
        let description = def.description.unwrap_or_else(|| {
            let pairs: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
            if pairs.is_empty() {
                base_desc
            } else {
                format!("{base_desc} with {}", pairs.join(" "))
            }
        });
        let v = Variant {
            name,
            base,
            env,
            description,
            thp_disable: def.thp_disable.unwrap_or(thp),
            background_thread_in_workers: def.background_thread_in_workers.unwrap_or(bg),
        };
        v.validate()?;
        self.variants.push(v);
        Ok(())
    }

    /// The variant of that name, if one is defined.
    pub fn get(&self, name: &str) -> Option<&Variant> {
        self.variants.iter().find(|v| v.name == name)
    }

    /// Every variant's name, in definition order.
    pub fn names(&self) -> Vec<String> {
        self.variants.iter().map(|v| v.name.clone()).collect()
    }

    /// Resolves a comma-separated list of variant names and `.so` paths:
    /// [`Catalog::resolve_each`] of its items.
    pub fn resolve(&self, list: &str) -> Result<Vec<Variant>, VariantError> {
        self.resolve_each(list.split(','))
    }

    /// Resolves variant names and `.so` paths (an item containing `/` is a
    /// preload of that file), trimmed, empty items skipped. Each variant is
    /// checked: unknown names and unusable libraries are errors.
    pub fn resolve_each<S: AsRef<str>>(
        &self,
        items: impl IntoIterator<Item = S>,
    ) -> Result<Vec<Variant>, VariantError> {
        let mut out: Vec<Variant> = Vec::new();
        for item in items {
            let item = item.as_ref().trim();
            if item.is_empty() {
                continue;
            }
            let v = if item.contains('/') {
                Variant {
                    name: item.to_string(),
                    base: Base::Preload {
                        library: item.to_string(),
                        expect: None,
                        package: None,
                    },
                    env: BTreeMap::new(),
                    description: format!("{item} through LD_PRELOAD"),
                    thp_disable: false,
                    background_thread_in_workers: false,
                }
            } else {
                self.get(item)
                    .cloned()
                    .ok_or_else(|| VariantError::Unknown {
                        name: item.into(),
                        valid: self.names().join(", "),
                    })?
            };
            v.availability().map_err(|problem| VariantError::Library {
                variant: v.name.clone(),
                problem,
            })?;
            if out.iter().any(|o| o.name == v.name) {
                return Err(VariantError::ListedTwice { name: v.name });
            }
            out.push(v);
        }
        if out.is_empty() {
            return Err(VariantError::Empty);
        }
        Ok(out)
    }

    /// Every variant that can run here, in catalog order.
    pub fn available(&self) -> Vec<Variant> {
        self.variants
            .iter()
            .filter(|v| v.availability().is_ok())
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_have_unique_valid_names() {
        let p = presets();
        for v in &p {
            v.validate().unwrap();
        }
        let mut names: Vec<_> = p.iter().map(|v| &v.name).collect();
        names.dedup();
        assert_eq!(names.len(), p.len());
        assert_eq!(p[0].name, "glibc");
    }

    #[test]
    fn a_variant_listed_twice_is_refused_as_such() {
        // It said "defined twice", though it was defined once.
        let e = Catalog::default()
            .resolve("glibc,jemalloc, glibc")
            .unwrap_err();
        assert_eq!(
            e,
            VariantError::ListedTwice {
                name: "glibc".into()
            }
        );
        assert_eq!(e.to_string(), "variant \"glibc\" is listed twice");
    }

    #[test]
    fn unknown_variant_lists_valid_ones() {
        let err = Catalog::default().resolve("glibc,nope").unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("\"nope\""), "{msg}");
        assert!(msg.contains("glibc-arena1"), "{msg}");
    }

    #[test]
    fn builtin_jemalloc_gets_prefixed_malloc_conf() {
        let mut c = Catalog::default();
        c.add_toml("[variants.je2]\nbase = \"jemalloc\"\nenv = { MALLOC_CONF = \"narenas:2\" }\n")
            .unwrap();
        let l = c.get("je2").unwrap().launch().unwrap();
        assert!(
            l.set
                .contains(&("_RJEM_MALLOC_CONF".into(), "narenas:2".into()))
        );
        assert!(
            l.set
                .contains(&("ALLOCBENCH_ALLOCATOR".into(), "jemalloc".into()))
        );
        assert!(!l.set.iter().any(|(k, _)| k == "MALLOC_CONF"));
    }

    #[test]
    fn a_program_gets_builtin_allocators_through_their_preload_library() {
        let mut c = Catalog::default();
        c.add_toml("[variants.je2]\nbase = \"jemalloc\"\nenv = { MALLOC_CONF = \"narenas:2\" }\n")
            .unwrap();
        let lib = Path::new("/opt/ab/liballocbench_jemalloc.so");
        let l = c.get("je2").unwrap().launch_program(Some(lib)).unwrap();
        assert_eq!(
            l.set,
            vec![
                ("LD_PRELOAD".into(), lib.display().to_string()),
                ("_RJEM_MALLOC_CONF".into(), "narenas:2".into()),
            ]
        );
        let e = c.get("mimalloc").unwrap().launch_program(None).unwrap_err();
        assert!(e.to_string().contains("liballocbench_mimalloc.so"), "{e}");
        // glibc: its variables only, no allocator selection.
        let l = c.get("glibc-arena2").unwrap().launch_program(None).unwrap();
        assert_eq!(l.set, vec![("MALLOC_ARENA_MAX".into(), "2".into())]);
    }

    #[test]
    fn user_variant_inherits_base_env() {
        let mut c = Catalog::default();
        c.add_toml(
            "[variants.a2t]\nbase = \"glibc-arena2\"\nenv = { GLIBC_TUNABLES = \"glibc.malloc.trim_threshold=0\" }\n",
        )
        .unwrap();
        let v = c.get("a2t").unwrap();
        assert_eq!(v.base, Base::Glibc);
        assert_eq!(v.env.get("MALLOC_ARENA_MAX").unwrap(), "2");
        assert_eq!(v.env.len(), 2);
    }

    #[test]
    fn a_variant_may_be_based_on_one_defined_after_it() {
        // The file's variants used to be added in name order, so `a` based on
        // `b` was refused as an unknown base wherever `b` was defined.
        let mut c = Catalog::default();
        c.add_toml(
            "[variants.b]\nbase = \"glibc-arena1\"\n\
             [variants.a]\nbase = \"b\"\nenv = { GLIBC_TUNABLES = \"glibc.malloc.top_pad=0\" }\n",
        )
        .unwrap();
        let a = c.get("a").unwrap();
        assert_eq!(a.base, Base::Glibc);
        assert_eq!(a.env.get("MALLOC_ARENA_MAX").unwrap(), "1");
        assert_eq!(a.env.len(), 2);
    }

    #[test]
    fn generated_descriptions_list_the_env() {
        // A variant without env used to be described as "jemalloc with ".
        let mut c = Catalog::default();
        c.add_toml(
            "[variants.a1]\nbase = \"glibc-arena1\"\n[variants.plain]\nbase = \"jemalloc\"\n",
        )
        .unwrap();
        assert_eq!(
            c.get("a1").unwrap().description,
            "glibc-arena1 with MALLOC_ARENA_MAX=1"
        );
        assert_eq!(c.get("plain").unwrap().description, "jemalloc");
    }

    #[test]
    fn cycles_of_bases_are_refused() {
        for text in [
            "[variants.x]\nbase = \"x\"\n",
            "[variants.a]\nbase = \"b\"\n[variants.b]\nbase = \"c\"\n[variants.c]\nbase = \"b\"\n",
        ] {
            let e = Catalog::default().add_toml(text).unwrap_err();
            assert!(
                matches!(&e, VariantError::BaseCycle { variant, .. } if variant != "a"),
                "{e}"
            );
            assert!(e.to_string().contains("cycle"), "{e}");
        }
    }

    #[test]
    fn variants_file_errors_name_the_problem() {
        let mut c = Catalog::default();
        let e = c
            .add_toml("[variants.x]\nbase = \"glibc\"\nenv = { \"BAD-NAME\" = \"1\" }\n")
            .unwrap_err();
        assert!(matches!(e, VariantError::BadEnvName { .. }), "{e}");
        let e = c
            .add_toml("[variants.x]\nbase = \"glibc\"\nenv = { MALLOC_ARENA_MAX = 2 }\n")
            .unwrap_err();
        assert!(e.to_string().contains("string"), "{e}");
        let e = c.add_toml("[variants.x]\nbase = \"glibcc\"\n").unwrap_err();
        assert!(matches!(e, VariantError::UnknownBase { .. }), "{e}");
        let e = c
            .add_toml("[variants.x]\nbase = \"glibc\"\nflavour = 1\n")
            .unwrap_err();
        assert!(e.to_string().contains("flavour"), "{e}");
        let e = c
            .add_toml("[variants.glibc]\nbase = \"glibc\"\n")
            .unwrap_err();
        assert!(matches!(e, VariantError::Duplicate { .. }), "{e}");
        let e = c
            .add_toml("[variants.x]\nbase = \"glibc\"\nenv = { LD_PRELOAD = \"/x.so\" }\n")
            .unwrap_err();
        assert!(matches!(e, VariantError::ReservedEnv { .. }), "{e}");
    }

    #[test]
    fn malformed_values_are_refused_naming_variable_value_and_format() {
        // These were accepted, and glibc, jemalloc, mimalloc or tcmalloc
        // ignored them without a word: the row measured the defaults.
        for (base, name, value, expected) in [
            ("glibc", "MALLOC_ARENA_MAX", "two", "non-negative integer"),
            (
                "glibc",
                "MALLOC_MMAP_THRESHOLD_",
                "128k",
                "non-negative integer",
            ),
            (
                "glibc",
                "GLIBC_TUNABLES",
                "glibc.malloc.arena_max",
                "name=value",
            ),
            (
                "glibc",
                "GLIBC_TUNABLES",
                "glibc.malloc.arena_mx=1",
                "no glibc.malloc.arena_mx",
            ),
            ("jemalloc", "MALLOC_CONF", "narenas=2", "key:value"),
            ("mimalloc", "MIMALLOC_PURGE_DELAY", "soon", "an integer"),
            ("mimalloc", "MIMALLOC_SHOW_STATS", "2", "true, false"),
            (
                "tcmalloc-so",
                "TCMALLOC_RELEASE_RATE",
                "fast",
                "non-negative number",
            ),
        ] {
            let text =
                format!("[variants.v]\nbase = \"{base}\"\nenv = {{ {name} = \"{value}\" }}\n");
            let e = Catalog::default().add_toml(&text).unwrap_err();
            assert!(matches!(e, VariantError::BadEnvFormat { .. }), "{e}");
            let msg = e.to_string();
            for part in ["\"v\"", name, value, expected] {
                assert!(msg.contains(part), "{part:?} not in {msg}");
            }
        }
        let mut c = Catalog::default();
        c.add_toml(
            "[variants.ok]\nbase = \"glibc\"\n\
             env = { MALLOC_ARENA_MAX = \"0x2\", GLIBC_TUNABLES = \"glibc.malloc.trim_threshold=0:glibc.pthread.rseq=0\" }\n",
        )
        .unwrap();
    }

    #[test]
    fn variables_of_another_allocator_family_are_refused() {
        // These ran as rows of the defaults: only another allocator reads them.
        for (base, name, value, reader) in [
            ("tcmalloc-so", "MALLOC_CONF", "narenas:2", "jemalloc"),
            ("glibc", "MIMALLOC_PURGE_DELAY", "0", "mimalloc"),
            ("jemalloc", "MALLOC_ARENA_MAX", "2", "glibc malloc"),
            ("jemalloc-so", "TCMALLOC_RELEASE_RATE", "10", "tcmalloc"),
            (
                "mimalloc",
                "GLIBC_TUNABLES",
                "glibc.malloc.arena_max=1",
                "glibc malloc",
            ),
            (
                "/opt/lib/libtcmalloc.so.4",
                "MALLOC_TOP_PAD_",
                "0",
                "glibc malloc",
            ),
            (
                "/opt/liballocbench_mimalloc.so",
                "MALLOC_CONF",
                "narenas:1",
                "jemalloc",
            ),
        ] {
            let text =
                format!("[variants.v]\nbase = \"{base}\"\nenv = {{ {name} = \"{value}\" }}\n");
            let e = Catalog::default().add_toml(&text).unwrap_err();
            assert!(matches!(e, VariantError::ForeignEnv { .. }), "{base}: {e}");
            let msg = e.to_string();
            for part in ["\"v\"", name, reader, "would ignore it"] {
                assert!(msg.contains(part), "{part:?} not in {msg}");
            }
        }
        // Any program reads the other tunables; a library of unknown family
        // gets no family check.
        let mut c = Catalog::default();
        c.add_toml(
            "[variants.je]\nbase = \"jemalloc\"\nenv = { GLIBC_TUNABLES = \"glibc.pthread.rseq=0\" }\n\
             [variants.any]\nbase = \"/opt/libhoard.so\"\nenv = { MALLOC_CONF = \"narenas:1\", MALLOC_ARENA_MAX = \"1\" }\n",
        )
        .unwrap();
    }

    #[test]
    fn the_workspace_jemalloc_library_gets_a_prefixed_malloc_conf() {
        // It is the prefixed build: MALLOC_CONF never reached it.
        let mut c = Catalog::default();
        c.add_toml(
            "[variants.je]\nbase = \"/opt/ab/liballocbench_jemalloc.so\"\nenv = { MALLOC_CONF = \"narenas:2\" }\n",
        )
        .unwrap();
        let v = c.get("je").unwrap();
        assert_eq!(v.family(), Some(Family::Jemalloc));
        let dir = std::env::temp_dir().join(format!("allocbench-prefixed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let lib = dir.join("liballocbench_jemalloc.so");
        std::fs::copy(resolve_library("libc.so.6", None).unwrap(), &lib).unwrap();
        let v = Variant {
            base: Base::Preload {
                library: lib.display().to_string(),
                expect: None,
                package: None,
            },
            ..v.clone()
        };
        for set in [v.launch().unwrap().set, v.launch_program(None).unwrap().set] {
            assert!(
                set.contains(&("_RJEM_MALLOC_CONF".into(), "narenas:2".into())),
                "{set:?}"
            );
            assert!(!set.iter().any(|(k, _)| k == "MALLOC_CONF"), "{set:?}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn env_assignments_parse() {
        assert_eq!(
            parse_env_assignment("MALLOC_CONF=narenas:2,dirty_decay_ms:0").unwrap(),
            ("MALLOC_CONF".into(), "narenas:2,dirty_decay_ms:0".into())
        );
        assert!(parse_env_assignment("NOEQUALS").is_err());
        assert!(parse_env_assignment("=x").is_err());
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

    #[test]
    fn allocator_env_is_recognised() {
        for k in [
            "LD_PRELOAD",
            "MALLOC_ARENA_MAX",
            "MALLOC_CONF",
            "_RJEM_MALLOC_CONF",
            "GLIBC_TUNABLES",
            "MIMALLOC_PURGE_DELAY",
            "TCMALLOC_RELEASE_RATE",
            // It leaked from the user's shell into every cell.
            "ALLOCBENCH_FAULT",
        ] {
            assert!(is_allocator_env(k), "{k}");
        }
        assert!(!is_allocator_env("PATH"));
    }
}
