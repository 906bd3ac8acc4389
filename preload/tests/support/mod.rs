//! Shared by the preload libraries' integration tests: find the library
//! cargo built, compile the small C and C++ programs of this folder with the
//! system compiler, run them under `LD_PRELOAD` and check what they print.
//! Each library's `tests/` includes this file with `#[path]`.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use allocbench_allocators::AllocatorIdentity;

/// A preload library under test.
pub struct Library {
    /// The allocator's name as allocbench reports it.
    pub allocator: &'static str,
    /// The file cargo writes to `target/<profile>/`.
    pub file: &'static str,
}

pub const JEMALLOC: Library = Library {
    allocator: "jemalloc",
    file: "liballocbench_jemalloc.so",
};

pub const MIMALLOC: Library = Library {
    allocator: "mimalloc",
    file: "liballocbench_mimalloc.so",
};

pub const SNMALLOC: Library = Library {
    allocator: "snmalloc",
    file: "liballocbench_snmalloc.so",
};

/// Every symbol of the malloc family the libraries export.
pub const FAMILY: &[&str] = &[
    "malloc",
    "free",
    "calloc",
    "realloc",
    "reallocarray",
    "posix_memalign",
    "aligned_alloc",
    "memalign",
    "valloc",
    "pvalloc",
    "malloc_usable_size",
    "free_sized",
    "free_aligned_sized",
];

impl Library {
    /// The library cargo built for this package. Before the integration
    /// tests, cargo builds the package's library (as a dependency, because
    /// it is also an rlib) into `target/<profile>/deps/`, where the test
    /// executables are; `cargo build` also copies it to `target/<profile>/`.
    pub fn path(&self) -> PathBuf {
        let exe = std::env::current_exe().expect("the test knows its executable");
        let deps = exe.parent().expect("the test executable is in a directory");
        let path = deps.join(self.file);
        assert!(
            path.is_file(),
            "{} is missing: cargo builds it before this package's tests",
            path.display()
        );
        path.canonicalize().expect("the library's path resolves")
    }

    /// Runs `program` with this library preloaded and `env` added to an
    /// environment without any allocator variable of the caller's.
    pub fn run(&self, program: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = Command::new(program);
        cmd.args(args);
        for (name, _) in std::env::vars_os() {
            if name
                .to_str()
                .is_some_and(allocbench_allocators::is_allocator_env)
            {
                cmd.env_remove(name);
            }
        }
        cmd.env("LD_PRELOAD", self.path()).envs(env.iter().copied());
        Run::of(
            format!("{} under {}", program.display(), self.file),
            cmd.output().expect("the program starts"),
        )
    }
}

/// What a program did.
pub struct Run {
    pub what: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn of(what: String, out: Output) -> Run {
        Run {
            what,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Panics with everything the program said unless it exited 0 and its
    /// last line is `OK`.
    pub fn assert_ok(&self) {
        assert!(
            self.code == Some(0) && self.stdout.lines().last() == Some("OK"),
            "{self}"
        );
    }

    /// Panics unless the program exited 0; returns its stdout.
    pub fn stdout(&self) -> &str {
        assert_eq!(self.code, Some(0), "{self}");
        &self.stdout
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} exited with {:?} (None: killed by a signal)\n--- stdout\n{}--- stderr\n{}",
            self.what, self.code, self.stdout, self.stderr
        )
    }
}

/// The language of a test program, and the compiler for it.
#[derive(Clone, Copy)]
pub enum Lang {
    C,
    Cxx,
}

impl Lang {
    fn compiler(self) -> String {
        let (var, default) = match self {
            Lang::C => ("CC", "cc"),
            Lang::Cxx => ("CXX", "c++"),
        };
        std::env::var(var).unwrap_or_else(|_| default.into())
    }

    /// Whether the compiler can be run at all.
    pub fn available(self) -> bool {
        Command::new(self.compiler())
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

/// Compiles `source` (a file of this folder) into the package's test
/// directory under `target/`. `-fno-builtin` keeps every allocation call a
/// real call the compiler may not fold or remove.
pub fn compile(lang: Lang, source: &str, lib: &Library) -> PathBuf {
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/support")
        .join(source);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("preload-{}", lib.allocator));
    std::fs::create_dir_all(&dir).expect("the test directory can be created");
    let exe = dir.join(Path::new(source).file_stem().expect("a file name"));
    let out = Command::new(lang.compiler())
        .args(["-O1", "-g", "-Wall", "-fno-builtin", "-pthread", "-o"])
        .arg(&exe)
        .arg(&src)
        .arg("-ldl")
        .output()
        .unwrap_or_else(|e| panic!("{} cannot be run: {e}", lang.compiler()));
    assert!(
        out.status.success(),
        "compiling {} failed:\n{}",
        src.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    exe
}

/// The malloc family program passes all its checks under `lib`.
pub fn malloc_family_keeps_c_semantics(lib: &Library) {
    let exe = compile(Lang::C, "family.c", lib);
    lib.run(&exe, &[], &[]).assert_ok();
}

/// Every family symbol and every `identity` symbol resolves to `lib`, and
/// the allocator names itself and owns a fresh `malloc` block. Returns the
/// line the allocator printed about itself (`jemalloc 5.3.1-…`,
/// `mimalloc 30302`, `snmalloc 0.7.6`).
pub fn symbols_resolve_to_the_library(lib: &Library, identity: &[&str]) -> String {
    let exe = compile(Lang::C, "identity.c", lib);
    let names: Vec<&str> = FAMILY.iter().chain(identity).copied().collect();
    let run = lib.run(&exe, &names, &[]);
    let stdout = run.stdout();
    let path = lib.path();
    for name in &names {
        let line = format!("symbol {name} {}", path.display());
        assert!(stdout.lines().any(|l| l == line), "no `{line}`: {run}");
    }
    assert!(stdout.lines().any(|l| l == "owns 1"), "{run}");
    let prefix = format!("{} ", lib.allocator);
    stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("the allocator did not name itself: {run}"))
        .to_owned()
}

/// Parent and children allocate with threads around 20 forks made while
/// other threads allocate; nothing deadlocks (the program's alarm would end
/// it) and every block keeps its contents.
pub fn fork_with_threads_neither_deadlocks_nor_corrupts(lib: &Library) {
    let exe = compile(Lang::C, "fork.c", lib);
    lib.run(&exe, &[], &[]).assert_ok();
}

/// C++ `new`/`delete` (plain, array, over-aligned) and the standard
/// containers allocate from `lib`. Skipped without a C++ compiler.
pub fn cxx_new_and_delete_use_the_library(lib: &Library) {
    if !Lang::Cxx.available() {
        eprintln!(
            "skipped: no C++ compiler ({}); C++ new/delete not tested",
            Lang::Cxx.compiler()
        );
        return;
    }
    let exe = compile(Lang::Cxx, "cxx.cpp", lib);
    lib.run(&exe, &[], &[]).assert_ok();
}

/// Set in the probe test's child process.
const PROBE_CHILD: &str = "ALLOCBENCH_PRELOAD_PROBE_CHILD";

/// The body of a `harness = false` test: allocbench's own probe, run in a
/// child of this test executable with `lib` preloaded, must name the
/// allocator, give the built-in allocator's version, name `lib` as the
/// object defining `malloc`, see a fresh allocation owned, and find the
/// release call.
pub fn probe_test_main(lib: &Library) {
    if std::env::var_os(PROBE_CHILD).is_some() {
        let id = allocbench_allocators::probe();
        // The error crosses to the parent as text.
        let release = allocbench_allocators::release().map_err(|e| e.to_string());
        println!(
            "{}",
            serde_json::to_string(&(id, release)).expect("serialisable")
        );
        return;
    }
    let exe = std::env::current_exe().expect("the test knows its executable");
    let run = lib.run(&exe, &[], &[(PROBE_CHILD, "1")]);
    let (id, release): (AllocatorIdentity, Result<String, String>) =
        serde_json::from_str(run.stdout().trim())
            .unwrap_or_else(|e| panic!("no probe report ({e}): {run}"));
    let builtin = allocbench_allocators::builtin_versions()
        .into_iter()
        .find(|(name, _)| *name == lib.allocator)
        .map(|(_, version)| version);
    assert_eq!(id.name, lib.allocator, "{id:?}");
    assert_eq!(
        id.version, builtin,
        "the built-in allocator's version: {id:?}"
    );
    assert!(!id.builtin, "{id:?}");
    assert_eq!(id.library, Some(lib.path().display().to_string()), "{id:?}");
    assert_eq!(id.owns_allocations, Some(true), "{id:?}");
    assert!(release.is_ok(), "{release:?}");
    println!("probe under {}: {id:?}, release {release:?}: ok", lib.file);
}
