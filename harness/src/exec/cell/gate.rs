//! The busy gate: at most one cell keeps the CPUs busy at a time. A cell in
//! its idle period costs no CPU and lets go of the gate, so that the next
//! cell's busy phases overlap with its idle window.

use std::cell::Cell;
use std::sync::{Condvar, Mutex};

#[derive(Default)]
pub struct BusyGate {
    held: Mutex<bool>,
    freed: Condvar,
}

/// One cell's hold on the gate. Released when dropped.
pub struct Hold<'a> {
    gate: &'a BusyGate,
    holding: Cell<bool>,
}

impl BusyGate {
    /// Holds the gate if it comes free within `timeout`.
    pub fn try_acquire_for(&self, timeout: std::time::Duration) -> Option<Hold<'_>> {
        let held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        let (mut held, _) = self
            .freed
            .wait_timeout_while(held, timeout, |h| *h)
            .unwrap_or_else(|p| p.into_inner());
        if *held {
            return None;
        }
        *held = true;
        Some(Hold {
            gate: self,
            holding: Cell::new(true),
        })
    }
}

impl Hold<'_> {
    /// Lets another cell be busy (a no-op when already released).
    pub fn release(&self) {
        if !self.holding.replace(false) {
            return;
        }
        *self.gate.held.lock().unwrap_or_else(|p| p.into_inner()) = false;
        self.gate.freed.notify_all();
    }
}

impl Drop for Hold<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[test]
    fn one_holder_at_a_time() {
        let gate = BusyGate::default();
        let busy = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let hold = loop {
                            if let Some(h) = gate.try_acquire_for(Duration::from_millis(10)) {
                                break h;
                            }
                        };
                        assert_eq!(busy.fetch_add(1, Ordering::SeqCst), 0);
                        busy.fetch_sub(1, Ordering::SeqCst);
                        hold.release();
                        hold.release(); // idempotent
                    }
                });
            }
        });
    }

    #[test]
    fn a_held_gate_times_out_and_a_dropped_hold_frees_it() {
        let gate = BusyGate::default();
        let hold = gate.try_acquire_for(Duration::ZERO).unwrap();
        assert!(gate.try_acquire_for(Duration::from_millis(5)).is_none());
        drop(hold);
        assert!(gate.try_acquire_for(Duration::ZERO).is_some());
    }
}
