//! What an allocator variant is, the named presets, user-defined variants
//! from a TOML file, and the environment a process is launched with.
//!
//! One job a file: the type and its errors here, checking a variant's
//! environment (`env`), the named presets (`presets`), the preload
//! library's checks (`library`), the launch environment (`launch`) and the
//! variants file (`catalog`).

mod catalog;
mod env;
mod launch;
mod library;
mod presets;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::settings::Family;

pub use catalog::Catalog;
pub use env::parse_env_assignment;
pub use launch::{Launch, is_allocator_env};
pub use library::{LibraryProblem, check_shared_object, library_dirs};
pub use presets::presets;

/// Which allocator a variant runs on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Base {
    /// glibc malloc, tuned through its environment.
    Glibc,
    /// The jemalloc compiled into allocbench (tikv-jemallocator).
    Jemalloc,
    /// The mimalloc compiled into allocbench (the `mimalloc` crate).
    Mimalloc,
    /// The snmalloc compiled into allocbench (the `snmalloc-rs` crate).
    Snmalloc,
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
#[cfg_attr(
    feature = "schema",
    derive(schemars::JsonSchema),
    schemars(deny_unknown_fields)
)]
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
        expected: crate::settings::Expected,
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
    #[error(
        "variant {name:?} is defined twice: a preset (see `allocbench list`) or an earlier variant has that name"
    )]
    Duplicate {
        /// The name defined twice.
        name: String,
    },
    /// An empty item on the variant list (`a,,b`, a comma at an end).
    #[error("the variant list has an empty item (two commas together, or one at an end)")]
    EmptyItem,
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
    /// An environment string too long for Linux to pass to a program.
    #[error(
        "variant {variant:?}: {name}=… is {bytes} bytes; Linux passes at most 128 KiB per environment string"
    )]
    EnvTooLong {
        /// The variant.
        variant: String,
        /// The variable.
        name: String,
        /// `NAME=VALUE`'s length.
        bytes: usize,
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

impl Variant {
    /// `glibc`, `built-in` or `preload`: how the allocator gets into the process.
    pub fn kind(&self) -> &'static str {
        match self.base {
            Base::Glibc => "glibc",
            Base::Jemalloc | Base::Mimalloc | Base::Snmalloc => "built-in",
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
            Base::Snmalloc => Some("snmalloc"),
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
            Base::Snmalloc => Some(Family::Snmalloc),
            Base::Preload {
                expect: Some(name), ..
            } => Family::from_allocator(name),
            Base::Preload { library, .. } => Family::of_library(library),
        }
    }
}
