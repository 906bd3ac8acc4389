//! Ctrl-C and SIGTERM: kill every running cell's process tree at once, let
//! the run write what it finished, and exit with 130.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Process groups of the cells running now.
static ACTIVE: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// The exit code of an interrupted run (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Installs the handler, once per process: a command that runs cells in
/// several steps (`plan` sweeps, then verifies) may call it for each. The
/// handler runs on its own thread (not in signal context), so it may lock and
/// signal.
pub fn install() -> anyhow::Result<()> {
    static INSTALLED: OnceLock<Result<(), String>> = OnceLock::new();
    INSTALLED
        .get_or_init(|| {
            ctrlc::set_handler(|| {
                INTERRUPTED.store(true, Ordering::SeqCst);
                for &pgid in ACTIVE.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                    // A process group of ours; a group already gone is fine.
                    let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
                }
            })
            .map_err(|e| e.to_string())
        })
        .clone()
        .map_err(|e| anyhow::anyhow!("cannot handle Ctrl-C: {e}"))
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A cell's process group, to be killed on interrupt.
pub fn register(pgid: i32) {
    ACTIVE.lock().unwrap_or_else(|p| p.into_inner()).push(pgid);
    if interrupted() {
        // As above; the interrupt came before registration.
        let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
    }
}

pub fn unregister(pgid: i32) {
    ACTIVE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|&p| p != pgid);
}
