//! What `allocbench inspect` found in a running process tree (read by
//! `external::inspect`, shown by `output::inspect`).

use std::path::PathBuf;

use serde::Serialize;

use super::ProcessRole;

/// What `inspect` found, as its JSON.
#[derive(Debug, Clone, Serialize)]
pub struct Inspection {
    pub allocbench_version: &'static str,
    pub format_version: u32,
    pub trees: Vec<InspectedTree>,
}

/// One PID given and its descendants.
#[derive(Debug, Clone, Serialize)]
pub struct InspectedTree {
    pub pid: i32,
    pub processes: Vec<InspectedProcess>,
    /// What is wrong with the server's processes (they disagree, or a
    /// preload did not take); empty when all is well.
    pub problems: Vec<String>,
}

/// One process as read.
#[derive(Debug, Clone, Serialize)]
pub struct InspectedProcess {
    pub pid: i32,
    pub parent: Option<i32>,
    pub role: ProcessRole,
    /// `/proc/PID/comm`.
    pub command: String,
    /// The allocator family serving `malloc` (`unknown` when its maps
    /// could not be read): `glibc malloc` when no
    /// allocator library is mapped (one linked statically into the program
    /// would not show).
    pub allocator: String,
    /// Its library, when one is mapped.
    pub library: Option<PathBuf>,
    /// Its version, where the library file says it (jemalloc's and glibc's
    /// version strings); else `null`, and the library's file name tells.
    pub version: Option<String>,
    /// The allocator variables of the environment its program started with.
    pub variables: Vec<Variable>,
    /// Why the variables could not be read (a process title over them).
    pub variables_unread: Option<String>,
    /// glibc's arenas: the main one plus one per distinct arena among the
    /// heaps found; `null` when glibc does not serve `malloc` or its memory
    /// could not be read.
    pub arenas: Option<u32>,
    pub pss: Option<u64>,
    pub uss: Option<u64>,
    /// What could not be read.
    pub errors: Vec<String>,
}

/// An allocator variable in a process's environment.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Variable {
    pub name: String,
    pub value: String,
    /// Who reads it (`jemalloc`, `glibc malloc`, …); `null` when any
    /// program may (`LD_PRELOAD`).
    pub read_by: Option<String>,
    /// Whether the allocator serving this process reads it.
    pub read_here: bool,
}

impl InspectedProcess {
    /// The allocator and its variables, in a line.
    pub fn describe(&self) -> String {
        let p = self;
        let mut s = p.allocator.clone();
        if let Some(v) = &p.version {
            s.push(' ');
            s.push_str(v);
        }
        if let Some(lib) = p.library.as_ref().and_then(|l| l.file_name()) {
            s.push_str(&format!(" ({})", lib.to_string_lossy()));
        }
        match &p.variables_unread {
            Some(_) => s.push_str(", variables unread"),
            None if p.variables.is_empty() => s.push_str(", no allocator variable"),
            None => {
                let vars: Vec<String> = p
                    .variables
                    .iter()
                    .map(|v| format!("{}={}", v.name, v.value))
                    .collect();
                s.push_str(&format!(", {}", vars.join(" ")));
            }
        }
        s
    }
}
