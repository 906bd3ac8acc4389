//! The harness never needs root: it reads only its own children's /proc.

use std::process::Command;

use crate::common::*;

#[test]
fn an_ordinary_user_gets_every_metric() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    if unsafe { libc::geteuid() } != 0 {
        // Already unprivileged: every other test shows it.
        return;
    }
    let runuser = ["/usr/sbin/runuser", "/sbin/runuser"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    let Some(runuser) = runuser else {
        eprintln!("skipped: runuser is not installed");
        return;
    };
    // The test binary's directories must be readable by `nobody`.
    let exe = env!("CARGO_BIN_EXE_allocbench");
    let args = with_small(
        &["-u", "nobody", "--", exe, "compare", "--format", "json"],
        &["--variants", "glibc,jemalloc"],
    );
    let r = run_with(Command::new(runuser).args(&args).current_dir("/tmp"));
    if r.stderr.contains("Permission denied") && r.stdout.is_empty() {
        eprintln!("skipped: nobody cannot run {exe}: {}", r.stderr);
        return;
    }
    assert_eq!(r.code, 0, "{}", r.stderr);
    for c in &r.doc().cells {
        let m = c.metrics.as_ref().unwrap();
        assert!(m.cow_copied.is_some(), "{}: pagemap unread", c.variant);
        assert!(m.tree_pss_anon_steady > 0);
        assert!(
            c.phases
                .iter()
                .all(|p| p.processes.iter().all(|q| q.missed.is_none()))
        );
    }
}
