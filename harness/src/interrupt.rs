//! Ctrl-C and SIGTERM: kill every running cell's process tree at once, let
//! the run write what it finished, and exit with 130.

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Process groups of the cells running now.
static ACTIVE: Mutex<Vec<i32>> = Mutex::new(Vec::new());

/// The exit code of an interrupted run (128 + SIGINT, as shells report it).
pub const EXIT_INTERRUPTED: i32 = 130;

/// Installs the handler. The handler runs on its own thread (not in signal
/// context), so it may lock and signal.
pub fn install() -> anyhow::Result<()> {
    ctrlc::set_handler(|| {
        INTERRUPTED.store(true, Ordering::SeqCst);
        for &pgid in ACTIVE.lock().unwrap_or_else(|p| p.into_inner()).iter() {
            // SAFETY: signalling a process group of ours.
            unsafe { libc::killpg(pgid, libc::SIGKILL) };
        }
    })?;
    Ok(())
}

pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A cell's process group, to be killed on interrupt.
pub fn register(pgid: i32) {
    ACTIVE.lock().unwrap_or_else(|p| p.into_inner()).push(pgid);
    if interrupted() {
        // SAFETY: as above; the interrupt came before registration.
        unsafe { libc::killpg(pgid, libc::SIGKILL) };
    }
}

pub fn unregister(pgid: i32) {
    ACTIVE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .retain(|&p| p != pgid);
}
