//! Property tests of the preload-library checks: `check_shared_object` on
//! files of random bytes and on real ELF headers with altered fields, and
//! `Catalog::resolve` on real libraries under unusual file names. A file is
//! accepted only if `LD_PRELOAD` can really load it on this machine.

use std::path::{Path, PathBuf};

use allocbench_allocators::{Catalog, LibraryProblem, VariantError, check_shared_object};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, TestRunner};

/// Fewer cases than the parsers' tests: each one writes a file.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(cases),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/library_fuzz.txt",
        ))),
        ..ProptestConfig::default()
    }
}

/// A directory of this test's files, removed when the test ends.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!(
            "allocbench-library-fuzz-{}-{name}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs a property like `proptest!` does, so that the temp dir can outlive
/// every case; a failure panics with the smallest failing input.
fn check<S: Strategy>(cases: u32, strategy: S, test: impl Fn(S::Value) -> Result<(), TestCaseError>)
where
    S::Value: std::fmt::Debug,
{
    if let Err(e) = TestRunner::new(config(cases)).run(&strategy, test) {
        panic!("{e}");
    }
}

/// A real shared library of this machine: the libc this test runs on.
fn real_library() -> PathBuf {
    std::fs::read_to_string("/proc/self/maps")
        .unwrap()
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("/libc.so"))
        .map(PathBuf::from)
        .expect("libc is mapped")
}

fn real_header() -> Vec<u8> {
    std::fs::read(real_library()).unwrap()[..64].to_vec()
}

/// ELF `e_machine` of this machine, written out independently of the code.
fn host_machine() -> u16 {
    match std::env::consts::ARCH {
        "x86" => 3,
        "arm" => 40,
        "x86_64" => 62,
        "aarch64" => 183,
        "riscv64" => 243,
        other => panic!("no ELF machine number known for {other}"),
    }
}

const HOST_CLASS: u8 = if cfg!(target_pointer_width = "64") {
    2
} else {
    1
};
const HOST_DATA: u8 = if cfg!(target_endian = "little") { 1 } else { 2 };

/// Whether ld.so could load a file starting with `bytes` here: ELF magic,
/// this machine's class, byte order and machine, a shared object, and more
/// than the file header (its program headers and dynamic section are in the
/// rest, which only a whole real library here has).
fn loadable(bytes: &[u8]) -> bool {
    if bytes.len() <= 64 || &bytes[..4] != b"\x7fELF" {
        return false;
    }
    let read16 = |at: usize| u16::from_ne_bytes([bytes[at], bytes[at + 1]]);
    bytes[4] == HOST_CLASS
        && bytes[5] == HOST_DATA
        && read16(18) == host_machine()
        && read16(16) == 3
}

fn write(dir: &Path, bytes: &[u8]) -> PathBuf {
    let path = dir.join("lib.so");
    std::fs::write(&path, bytes).unwrap();
    path
}

fn check_file(dir: &Path, bytes: &[u8]) -> Result<(), TestCaseError> {
    let path = write(dir, bytes);
    let r = check_shared_object(&path);
    prop_assert_eq!(r.is_ok(), loadable(bytes), "{:?}", r);
    if bytes.len() < 20 {
        let not_elf = matches!(r, Err(LibraryProblem::NotElf { .. }));
        prop_assert!(not_elf, "{:?}", r);
    }
    if let Err(problem) = r {
        prop_assert!(problem.to_string().contains(&path.display().to_string()));
    }
    Ok(())
}

#[test]
fn random_files_are_refused_unless_loadable() {
    let dir = TempDir::new("random");
    let bytes = prop_oneof![
        vec(any::<u8>(), 0..64),
        // The magic, then anything: gets past the first check.
        vec(any::<u8>(), 0..60).prop_map(|rest| [b"\x7fELF".to_vec(), rest].concat()),
    ];
    check(128, bytes, |b| check_file(&dir.0, &b));
}

/// A real library with its identification and type fields set to
/// arbitrary values, written in either byte order, whole or cut short
/// within its header.
#[test]
fn altered_real_headers_are_accepted_only_when_loadable() {
    let dir = TempDir::new("altered");
    let real = std::fs::read(real_library()).unwrap();
    // This machine's values are likely, so that a single altered field
    // decides the outcome often.
    let byte = |host: u8| {
        prop_oneof![
            3 => Just(host),
            2 => Just(3 - host),
            1 => prop::sample::select(vec![0u8, 3, 255]),
        ]
    };
    let fields = (
        byte(HOST_CLASS),
        byte(HOST_DATA),
        prop_oneof![3 => Just(3u16), 1 => Just(2), 1 => any::<u16>()],
        prop_oneof![3 => Just(host_machine()), 1 => Just(40u16), 1 => any::<u16>()],
        any::<bool>(),
        prop_oneof![3 => Just(real.len()), 1 => 0usize..=64],
    );
    check(
        128,
        fields,
        |(class, data, e_type, machine, big_endian, len)| {
            let mut b = real.clone();
            b[4] = class;
            b[5] = data;
            let enc = |v: u16| {
                if big_endian {
                    v.to_be_bytes()
                } else {
                    v.to_le_bytes()
                }
            };
            b[16..18].copy_from_slice(&enc(e_type));
            b[18..20].copy_from_slice(&enc(machine));
            b.truncate(len);
            check_file(&dir.0, &b)
        },
    );
}

#[test]
fn a_real_header_for_another_machine_is_the_wrong_arch() {
    let dir = TempDir::new("machine");
    let real = real_header();
    let host = host_machine();
    check(
        64,
        any::<u16>().prop_filter("another machine", move |m| *m != host),
        |machine| {
            let mut b = real.clone();
            b[18..20].copy_from_slice(&machine.to_ne_bytes());
            let r = check_shared_object(&write(&dir.0, &b));
            let wrong_arch = matches!(r, Err(LibraryProblem::WrongArch { .. }));
            prop_assert!(wrong_arch, "{:?}", r);
            Ok(())
        },
    );
}

/// ld.so splits `LD_PRELOAD` at spaces and colons with no escape: a library
/// path with one is refused, and any other path is passed on unchanged.
#[test]
fn library_paths_are_preloaded_exactly_or_refused() {
    let dir = TempDir::new("names");
    let real = real_library();
    check(
        64,
        "[a-z0-9 :._+=,-]{1,12}".prop_filter("a file name that is its own list item", |n| {
            n.trim() == n && !n.contains(',') && n != "." && n != ".."
        }),
        |name| {
            let path = dir.0.join(&name);
            std::os::unix::fs::symlink(&real, &path).unwrap();
            let item = path.display().to_string();
            let r = Catalog::default().resolve(&item);
            let launch = r.as_ref().ok().map(|vs| vs[0].launch());
            std::fs::remove_file(&path).unwrap();
            if item.contains([' ', ':']) {
                let refused = matches!(
                    &r,
                    Err(VariantError::Library {
                        problem: LibraryProblem::Unpreloadable { .. },
                        ..
                    })
                );
                prop_assert!(refused, "{:?}", r);
            } else {
                r.map_err(|e| TestCaseError::fail(e.to_string()))?;
                let launch = launch
                    .unwrap()
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                let preload: Vec<&String> = launch
                    .set
                    .iter()
                    .filter(|(k, _)| k == "LD_PRELOAD")
                    .map(|(_, v)| v)
                    .collect();
                prop_assert_eq!(preload, vec![&item]);
            }
            Ok(())
        },
    );
}
