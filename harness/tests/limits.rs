//! Sizes and counts beyond what a run can be are refused before any work,
//! naming the flag or the limit (exit code 2).

use crate::common::*;

fn refused(args: &[&str], needles: &[&str]) {
    let r = run(args);
    assert_eq!(r.code, 2, "{args:?}: {}", r.stderr);
    for n in needles {
        assert!(r.stderr.contains(n), "{args:?}: {n:?} not in {}", r.stderr);
    }
    assert!(!r.stderr.contains("cell 1/"), "a cell ran: {}", r.stderr);
}

#[test]
fn more_threads_than_a_sane_limit_are_refused_unless_forced() {
    let args = ["compare", "--variants", "glibc", "--static-mib", "1"];
    let many = [&args[..], &["--processes", "8", "--threads", "1000"]].concat();
    refused(
        &many,
        &["8 processes × 1000 threads is 8000 threads", "--force"],
    );
    // More than the kernel allows at all: --force does not help.
    let huge = [&args[..], &["--processes", "256", "--threads", "1024"]].concat();
    refused(
        &[&huge[..], &["--force"]].concat(),
        &["262144 threads", "this system allows"],
    );
}

#[test]
fn negative_counts_name_their_flag() {
    for (flag, value) in [
        ("--processes", "-1"),
        ("--threads", "-2"),
        ("--static-mib", "-3"),
        ("--requests", "-4"),
    ] {
        refused(
            &["compare", flag, value],
            &[&format!("invalid value '{value}' for '{flag}")],
        );
    }
    refused(&["compare", "--idle", "-1"], &["--idle"]);
    refused(&["compare", "--sample-hz", "-1"], &["--sample-hz"]);
}
