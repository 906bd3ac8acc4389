//! Each variant's worker reports the allocator that really serves it.

use allocbench::results::Status;

use crate::common::{self, *};

#[test]
fn builtin_jemalloc_and_mimalloc_report_themselves() {
    let r = compare(&["--variants", "jemalloc,mimalloc"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let je = doc.cells[0].allocator.as_ref().unwrap();
    assert_eq!((je.name.as_str(), je.builtin), ("jemalloc", true));
    assert!(je.version.as_ref().unwrap().starts_with("5."), "{je:?}");
    assert_eq!(je.owns_allocations, Some(true));
    let mi = doc.cells[1].allocator.as_ref().unwrap();
    assert_eq!((mi.name.as_str(), mi.builtin), ("mimalloc", true));
    assert!(mi.version.as_ref().unwrap().starts_with("3."), "{mi:?}");
    assert_eq!(mi.owns_allocations, Some(true));
}

#[test]
fn builtin_snmalloc_reports_itself_and_owns_the_workloads_memory() {
    let r = compare(&["--variants", "snmalloc", "--prefork", "trim"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let cell = &doc.cells[0];
    let sn = cell.allocator.as_ref().unwrap();
    assert_eq!((sn.name.as_str(), sn.builtin), ("snmalloc", true), "{sn:?}");
    assert_eq!(
        sn.version.as_deref(),
        Some(allocbench_allocators::SNMALLOC_VERSION)
    );
    assert_eq!(sn.library, None, "malloc is not what serves it: {sn:?}");
    // snmalloc's page map knows the fresh block the probe made through the
    // global allocator, as it knows every block the workload makes.
    assert_eq!(sn.owns_allocations, Some(true), "{sn:?}");
    // It has no release call, and says so rather than pretending.
    assert_eq!(
        cell.prefork_call.as_deref(),
        Some(allocbench_allocators::SNMALLOC_NO_RELEASE)
    );
}

#[test]
fn glibc_arena1_has_one_arena_with_threads_and_glibc_more() {
    let r = compare(&["--variants", "glibc,glibc-arena1", "--threads", "4"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    let arenas = |i: usize| doc.cells[i].metrics.as_ref().unwrap().arenas.unwrap();
    assert!(arenas(0) > 1, "glibc with 4 threads: {} arenas", arenas(0));
    assert_eq!(arenas(1), 1);
    assert_eq!(doc.cells[1].allocator.as_ref().unwrap().name, "glibc");
    // The contract's `allocator.arenas` is the same count, not the master's
    // before any thread ran.
    for i in 0..2 {
        assert_eq!(
            doc.cells[i].allocator.as_ref().unwrap().arenas,
            Some(arenas(i))
        );
    }
}

#[test]
fn a_glibc_cell_with_more_arenas_than_its_limit_fails() {
    // glibc ignores an arena limit out of its range (0) without a word: the
    // row was glibc's default under the variant's name.
    let dir = temp_dir("arena0");
    let file = variants_file(
        &dir,
        "[variants.arena0]\nbase = \"glibc\"\nenv = { MALLOC_ARENA_MAX = \"0\" }\n",
    );
    let r = compare(&[
        "--variants-file",
        &file,
        "--variants",
        "arena0,glibc-arena1",
        "--threads",
        "4",
    ]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc = r.doc();
    let bad = &doc.cells[0];
    assert_eq!(bad.status, Status::Failed);
    assert!(bad.metrics.is_none());
    let err = bad.error.as_deref().unwrap();
    assert!(
        err.contains("variant arena0 is not in effect: MALLOC_ARENA_MAX=0 allows at most 0 arenas")
            && err.contains("glibc did not apply the setting"),
        "{err}"
    );
    assert_eq!(doc.cells[1].status, Status::Ok, "{:?}", doc.cells[1].error);
}

#[test]
fn malloc_conf_reaches_the_builtin_jemalloc() {
    let dir = temp_dir("malloc-conf");
    let file = variants_file(
        &dir,
        "[variants.je-n1]\nbase = \"jemalloc\"\nenv = { MALLOC_CONF = \"narenas:1\" }\n",
    );
    let r = compare(&["--variants-file", &file, "--variants", "jemalloc,je-n1"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    assert_eq!(doc.cells[1].launch_env["_RJEM_MALLOC_CONF"], "narenas:1");
    let default = doc.cells[0].metrics.as_ref().unwrap().arenas.unwrap();
    // narenas:1 leaves one automatic arena plus jemalloc 5.3's dedicated
    // arena for huge allocations.
    assert_eq!(doc.cells[1].metrics.as_ref().unwrap().arenas, Some(2));
    assert!(default > 2, "{default}");
}

#[test]
fn an_invalid_malloc_conf_fails_the_cell() {
    let dir = temp_dir("bad-conf");
    let file = variants_file(
        &dir,
        "[variants.je-typo]\nbase = \"jemalloc\"\nenv = { MALLOC_CONF = \"narenaz:1\" }\n",
    );
    let r = compare(&["--variants-file", &file, "--variants", "je-typo"]);
    assert_eq!(r.code, 1);
    let cell = &r.doc().cells[0];
    assert_eq!(cell.status, Status::Failed);
    assert!(
        cell.error.as_ref().unwrap().contains("Invalid conf pair"),
        "{:?}",
        cell.error
    );
}

#[test]
fn a_library_that_is_not_an_allocator_fails_its_cell_and_others_run() {
    // A real shared library that preloads fine but defines no malloc.
    let libm = allocbench_allocators::library_dirs()
        .into_iter()
        .map(|d| d.join("libm.so.6"))
        .find(|p| p.exists())
        .expect("libm.so.6");
    let libm = libm.display().to_string();
    let r = compare(&["--variants", &format!("glibc,{libm}")]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let doc = r.doc();
    assert_eq!(doc.cells[0].status, Status::Ok);
    assert_eq!(doc.cells[1].status, Status::Failed);
    let err = doc.cells[1].error.as_ref().unwrap();
    assert!(
        err.contains("not in effect") && err.contains("libc.so"),
        "{err}"
    );
    assert!(doc.cells[1].metrics.is_none());
}

#[test]
fn a_preload_that_ld_so_ignores_fails_its_cell() {
    // A real library with an OS ABI byte ld.so does not know: the pre-check
    // passes, ld.so ignores the preload with a warning ("ELF file OS ABI
    // invalid"), and the worker finds glibc in its place.
    let dir = temp_dir("broken-so");
    let libm = allocbench_allocators::library_dirs()
        .into_iter()
        .map(|d| d.join("libm.so.6"))
        .find(|p| p.exists())
        .expect("libm.so.6");
    let mut bytes = std::fs::read(&libm).unwrap();
    bytes[7] = 0x42; // EI_OSABI
    let broken = dir.join("libbroken.so");
    std::fs::write(&broken, &bytes).unwrap();
    let broken = broken.display().to_string();
    let r = compare(&["--variants", &broken]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    let cell = &r.doc().cells[0];
    assert_eq!(cell.status, Status::Failed);
    let err = cell.error.as_ref().unwrap();
    assert!(err.contains("not in effect"), "{err}");
    assert!(
        cell.stderr_tail
            .iter()
            .any(|l| l.contains("cannot be preloaded")),
        "{:?}",
        cell.stderr_tail
    );
}

/// The workspace's jemalloc preload library: cargo writes it to
/// target/<profile>/deps/ before these tests (a dev-dependency).
fn workspace_jemalloc_so() -> std::path::PathBuf {
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_allocbench"));
    let dir = exe.parent().unwrap();
    [dir.join("deps"), dir.to_path_buf()]
        .into_iter()
        .map(|d| d.join("liballocbench_jemalloc.so"))
        .find(|p| p.exists())
        .expect("liballocbench_jemalloc.so built next to allocbench")
}

/// A cell of a working preload library is ok and names jemalloc, served
/// from that file.
fn assert_preloaded_jemalloc(cell: &allocbench::results::CellResult, file: &std::path::Path) {
    assert_eq!(
        cell.status,
        Status::Ok,
        "{}: {:?}",
        cell.variant,
        cell.error
    );
    let a = cell.allocator.as_ref().unwrap();
    assert_eq!((a.name.as_str(), a.builtin), ("jemalloc", false), "{a:?}");
    assert_eq!(a.owns_allocations, Some(true), "{a:?}");
    assert!(a.version.as_ref().unwrap().starts_with("5."), "{a:?}");
    let served = std::fs::canonicalize(a.library.as_ref().unwrap()).unwrap();
    assert_eq!(served, std::fs::canonicalize(file).unwrap());
    assert!(cell.metrics.is_some());
}

#[test]
fn the_workspace_jemalloc_library_as_a_path_variant_is_jemalloc() {
    let so = workspace_jemalloc_so();
    let r = compare(&["--variants", so.to_str().unwrap()]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    assert_eq!(doc.cells.len(), 1);
    assert_preloaded_jemalloc(&doc.cells[0], &so);
}

#[test]
fn debians_jemalloc_as_the_preset_and_as_a_path_is_jemalloc() {
    let preset = allocbench_allocators::presets()
        .into_iter()
        .find(|v| v.name == "jemalloc-so")
        .unwrap();
    let Some(so) = common::debian_jemalloc() else {
        return;
    };
    assert!(preset.availability().is_ok(), "{:?}", preset.availability());
    let r = compare(&["--variants", &format!("jemalloc-so,{}", so.display())]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    let doc = r.doc();
    assert_eq!(doc.cells.len(), 2);
    assert_eq!(doc.cells[0].variant, "jemalloc-so");
    for cell in &doc.cells {
        assert_preloaded_jemalloc(cell, &so);
    }
}
