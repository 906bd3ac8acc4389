//! What the topics of these integration tests share.

use std::process::Command;

/// Set in a test process that [`alone`] started: the name of the one test
/// it runs.
const ALONE: &str = "ALLOCBENCH_TEST_ALONE";

/// Runs `body` in a test process of its own, for a test that must have the
/// process to itself (glibc's `mallinfo2()` counters are the whole
/// process's: another test's thread that frees meanwhile hides an
/// allocation). The topics share one test binary and run side by side, so
/// this starts the binary again to run only the test `name` (its full
/// name in the binary, `topic::function`) on one thread, and runs `body`
/// in that process; here it checks that the test ran there and passed.
pub fn alone(name: &str, body: impl FnOnce()) {
    if std::env::var_os(ALONE).is_some_and(|v| v == name) {
        body();
        return;
    }
    let exe = std::env::current_exe().expect("the test binary's path");
    let out = Command::new(exe)
        .args([name, "--exact", "--test-threads=1"])
        .env(ALONE, name)
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && stdout.contains("test result: ok. 1 passed;"),
        "{name}, alone in a test process, did not pass ({}):\n{stdout}\n{stderr}",
        out.status
    );
}
