//! The last lines a cell's processes wrote to stderr: shown with failures,
//! and scanned for allocator warnings that mean a variant is not in effect.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The last lines a cell's processes wrote to stderr.
pub(crate) struct StderrTail {
    lines: Arc<Mutex<VecDeque<String>>>,
    /// Closed when every process of the tree has closed its stderr.
    done: Receiver<()>,
}

impl StderrTail {
    const KEEP: usize = 40;

    pub(crate) fn collect(stream: impl std::io::Read + Send + 'static) -> StderrTail {
        let lines = Arc::new(Mutex::new(VecDeque::new()));
        let (done_tx, done) = mpsc::channel::<()>();
        let tail = lines.clone();
        let _ = std::thread::Builder::new()
            .name("cell-stderr".into())
            .spawn(move || {
                let _done = done_tx;
                for line in BufReader::new(stream).lines() {
                    let Ok(line) = line else { break };
                    let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                    if t.len() == Self::KEEP {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            });
        StderrTail { lines, done }
    }

    /// Waits (a bounded time) until the tree's stderr is closed, so that
    /// everything written is in the tail.
    pub(crate) fn wait_closed(&self, timeout: Duration) {
        let _ = self.done.recv_timeout(timeout);
    }

    pub(crate) fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }
}
