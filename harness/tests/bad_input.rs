//! Bad input is refused before any work: exit code 2, a message naming the
//! problem, and no result rows.

use crate::common::*;

fn refused(args: &[&str], needles: &[&str]) {
    let r = run(args);
    assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    for n in needles {
        assert!(r.stderr.contains(n), "{args:?}: {n:?} not in {}", r.stderr);
    }
    assert!(r.stdout.is_empty(), "{args:?} printed {}", r.stdout);
    assert!(!r.stderr.contains("panicked"), "{}", r.stderr);
}

#[test]
fn unknown_workload_lists_the_valid_ones() {
    refused(
        &["compare", "--workload", "srever"],
        &["srever", "valid workloads: server"],
    );
}

#[test]
fn unknown_variant_lists_the_valid_ones() {
    refused(
        &["compare", "--variants", "glibc,jemallocc"],
        &["jemallocc", "glibc-arena1", "mimalloc-so"],
    );
}

#[test]
fn a_variant_listed_twice_is_refused_as_such() {
    refused(
        &["compare", "--variants", "glibc,glibc"],
        &["variant \"glibc\" is listed twice"],
    );
}

#[test]
fn empty_items_and_repeated_hooks_are_refused_like_repeated_variants() {
    // "glibc,,jemalloc" and "none,none" ran, while "glibc,glibc" was
    // refused.
    refused(
        &["compare", "--variants", "glibc,,jemalloc"],
        &["empty item"],
    );
    refused(
        &["compare", "--prefork", "none,"],
        &["--prefork", "empty item"],
    );
    refused(
        &["compare", "--prefork", "none,none"],
        &["hook \"none\" is listed twice"],
    );
}

#[test]
fn unknown_hook_lists_the_valid_ones() {
    refused(
        &["compare", "--prefork", "none,trimm"],
        &["trimm", "none, trim, warmup, freeze"],
    );
}

#[test]
fn missing_library_is_refused_before_any_run() {
    refused(
        &["compare", "--variants", "glibc,/nonexistent/libfoo.so"],
        &["/nonexistent/libfoo.so", "no such file"],
    );
}

#[test]
fn a_file_that_is_not_a_shared_object_is_refused() {
    let dir = temp_dir("not-elf");
    let f = dir.join("libtext.so");
    std::fs::write(&f, "just text").unwrap();
    refused(
        &["compare", "--variants", &f.display().to_string()],
        &["not an ELF file"],
    );
}

#[test]
fn an_executable_is_refused_as_a_preload() {
    // A PIE is ET_DYN like a library: it passed the check, then ld.so
    // refused to preload it once the cell ran.
    let exe = env!("CARGO_BIN_EXE_allocbench");
    refused(
        &["compare", "--variants", exe],
        &[
            exe,
            "position-independent executable",
            "not a shared library",
        ],
    );
}

#[test]
fn the_workspace_preload_library_passes_the_check() {
    // Built before these tests through a dev-dependency, in deps/.
    let exe = std::path::Path::new(env!("CARGO_BIN_EXE_allocbench"));
    let lib = exe.parent().unwrap().join("deps/liballocbench_jemalloc.so");
    allocbench_allocators::check_shared_object(&lib).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn malformed_variants_files_name_the_offending_item() {
    let dir = temp_dir("bad-variants");
    let cases = [
        (
            "[variants.x]\nbase = \"glibc\"\nenv = { \"MALLOC-ARENA\" = \"1\" }\n",
            "MALLOC-ARENA",
        ),
        (
            "[variants.x]\nbase = \"glibc\"\nenv = { MALLOC_ARENA_MAX = 2 }\n",
            "MALLOC_ARENA_MAX",
        ),
        ("[variants.x]\nbase = \"glibcc\"\n", "glibcc"),
        (
            "[variants.x]\nbase = \"glibc\"\ncolour = \"red\"\n",
            "colour",
        ),
        ("[variants.x\nbase = \"glibc\"\n", "variants file"),
        (
            "[variants.x]\nbase = \"glibc\"\nenv = { LD_PRELOAD = \"/x.so\" }\n",
            "LD_PRELOAD",
        ),
    ];
    for (text, needle) in cases {
        let file = variants_file(&dir, text);
        refused(&["compare", "--variants-file", &file], &[needle]);
    }
}

#[test]
fn malformed_values_of_known_variables_are_refused_before_any_run() {
    // The allocators ignore values they cannot parse: these ran as rows of
    // the defaults under the variant's name.
    let dir = temp_dir("bad-values");
    let cases = [
        ("glibc", "MALLOC_ARENA_MAX", "two", "a non-negative integer"),
        ("glibc", "MALLOC_PERTURB_", "-1", "a non-negative integer"),
        (
            "glibc",
            "GLIBC_TUNABLES",
            "glibc.malloc.arena_max:2",
            "name=value pairs separated by ':'",
        ),
        (
            "glibc",
            "GLIBC_TUNABLES",
            "glibc.malloc.trim_treshold=0",
            "no glibc.malloc.trim_treshold",
        ),
        (
            "glibc",
            "GLIBC_TUNABLES",
            "glibc.malloc.arena_max=1k",
            "a non-negative integer",
        ),
        ("jemalloc", "MALLOC_CONF", "narenas=2", "key:value pairs"),
        ("mimalloc", "MIMALLOC_PURGE_DELAY", "10ms", "an integer"),
        (
            "tcmalloc-so",
            "TCMALLOC_RELEASE_RATE",
            "ten",
            "a non-negative number",
        ),
    ];
    for (base, name, value, expected) in cases {
        let file = variants_file(
            &dir,
            &format!("[variants.bad]\nbase = \"{base}\"\nenv = {{ {name} = \"{value}\" }}\n"),
        );
        refused(
            &["compare", "--variants-file", &file, "--variants", "bad"],
            &["variant \"bad\"", name, value, expected],
        );
    }
}

#[test]
fn variables_only_another_allocator_reads_are_refused_before_any_run() {
    // The allocator ignored them: the row was its defaults.
    let dir = temp_dir("foreign-env");
    let cases = [
        (
            "tcmalloc-so",
            "MALLOC_CONF",
            "narenas:2",
            "jemalloc",
            "tcmalloc",
        ),
        (
            "glibc",
            "MIMALLOC_PURGE_DELAY",
            "0",
            "mimalloc",
            "glibc malloc",
        ),
        (
            "jemalloc",
            "MALLOC_ARENA_MAX",
            "2",
            "glibc malloc",
            "jemalloc",
        ),
    ];
    for (base, name, value, reader, runs_on) in cases {
        let file = variants_file(
            &dir,
            &format!("[variants.odd]\nbase = \"{base}\"\nenv = {{ {name} = \"{value}\" }}\n"),
        );
        refused(
            &["compare", "--variants-file", &file, "--variants", "odd"],
            &[
                "variant \"odd\"",
                &format!("{name} is read only by {reader}"),
                &format!("runs on {runs_on}"),
            ],
        );
    }
}

#[test]
fn a_malformed_fault_in_a_variants_file_is_refused() {
    // It was accepted, and the variant's every cell failed in its master.
    let dir = temp_dir("bad-fault");
    let file = variants_file(
        &dir,
        "[variants.faulty]\nbase = \"glibc\"\nenv = { ALLOCBENCH_FAULT = \"boom@steady\" }\n",
    );
    refused(
        &["compare", "--variants-file", &file, "--variants", "glibc"],
        &[
            "variant \"faulty\"",
            "ALLOCBENCH_FAULT=\"boom@steady\"",
            "expected KIND@PHASE[#WORKER]",
        ],
    );
}

#[test]
fn malformed_spec_files_name_the_offending_key() {
    let dir = temp_dir("bad-spec");
    let cases = [
        ("procesess = 2\n", "procesess"),
        ("threads = \"two\"\n", "threads"),
        ("requests = -5\n", "requests"),
        ("processes = 300\n", "processes"),
        ("retain_share = 1.5\n", "retain_share"),
        ("sizes = [{ min = 8, max = 64 }]\n", "sizes[0]"),
    ];
    for (text, needle) in cases {
        let p = dir.join("spec.toml");
        std::fs::write(&p, text).unwrap();
        refused(&["compare", "--spec", &p.display().to_string()], &[needle]);
    }
}

#[test]
fn bad_counts_and_flags_are_refused() {
    refused(&["compare", "--threads", "0"], &["threads"]);
    refused(&["compare", "--threads", "100000"], &["threads", "1024"]);
    refused(&["compare", "--processes", "-1"], &["-1"]);
    refused(&["compare", "--idle", "1,0.5"], &["increasing"]);
    refused(&["compare", "--timeout", "0"], &["timeout"]);
    refused(&["run", "--variant", "glibc,jemalloc"], &["one variant"]);
    refused(&["compare", "--sample-hz", "-1"], &["--sample-hz"]);
    refused(
        &["compare", "--sample-budget", "0"],
        &["--sample-budget", "got 0"],
    );
    refused(
        &["compare", "--sample-budget", "101"],
        &["--sample-budget", "got 101"],
    );
    refused(
        &["compare", "--sample-toggle", "0.01"],
        &["--sample-toggle", "0.1 to 3600"],
    );
    refused(
        &["compare", "--sample-toggle", "1", "--sample-hz", "0"],
        &["--sample-toggle", "--sample-hz 0"],
    );
}

#[test]
fn sizes_beyond_available_memory_are_refused_with_the_numbers() {
    refused(
        &["compare", "--static-mib", "900000"],
        &["900000 MiB static", "available", "--force"],
    );
}

#[test]
fn list_forms_are_refused_where_the_command_takes_one_value() {
    // clap refuses them: `compare --help` shows no list form.
    refused(&["compare", "--processes", "1,2"], &["--processes", "1,2"]);
    refused(
        &["run", "--variant", "glibc", "--threads", "1,2"],
        &["--threads"],
    );
    refused(
        &["compare", "--processes", "1", "--processes", "2"],
        &["--processes", "multiple times"],
    );
    refused(
        &["run", "--variant", "glibc", "--prefork", "none,trim"],
        &["one hook"],
    );
    refused(&["measure", "--resume", "--", "true"], &["--resume"]);
    refused(
        &["measure", "--idle", "1,0.5", "--", "true"],
        &["increasing"],
    );
}

#[test]
fn a_load_metric_that_cannot_read_a_number_is_refused() {
    refused(
        &[
            "measure",
            "--load",
            "true",
            "--load-metric",
            "rps: (",
            "--",
            "true",
        ],
        &["--load-metric", "unclosed group"],
    );
    refused(
        &[
            "measure",
            "--load",
            "true",
            "--load-metric",
            r"rps: \d+",
            "--",
            "true",
        ],
        &["--load-metric", "no capture group"],
    );
    refused(
        &["measure", "--load-metric", "rps: (\\d+)", "--", "true"],
        &["--load-metric", "--load"],
    );
}
