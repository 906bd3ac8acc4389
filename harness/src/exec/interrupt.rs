//! Ctrl-C and SIGTERM: kill every running cell's process tree at once
//! (everything [`contain`](super::contain) reaches: the registered groups,
//! every descendant and every process allocbench adopted), let the run
//! write what it finished, and exit with 130.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use super::contain::{self, Targets};

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
                // Held throughout: a group unregistered meanwhile would be
                // reaped, and its id free for another process.
                let active = ACTIVE.lock().unwrap_or_else(|p| p.into_inner());
                kill_all(active.clone());
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
        kill_all(vec![pgid]);
    }
}

/// Every tree of `roots` (each the leader of its group, not reaped yet, so
/// the ids are still ours), and every process allocbench adopted.
fn kill_all(roots: Vec<i32>) {
    contain::kill(&Targets {
        groups: roots.clone(),
        roots,
        known: Vec::new(),
        adopted: true,
    });
}

pub fn unregister(pgid: i32) {
    ACTIVE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|&p| p != pgid);
}
