//! The last bytes a stream of a tree's processes wrote (a cell's stderr, a
//! measured command's output, a load command's stdout or stderr): at most
//! [`StderrTail::KEEP_BYTES`] of it are kept, however long its lines (a
//! progress bar redrawn with `\r`, `cat /dev/zero`), read as lines when
//! asked for: shown with failures, and scanned for allocator warnings that
//! mean a variant is not in effect.

use std::collections::VecDeque;
use std::io::Read;
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The last bytes a stream carried.
pub(crate) struct StderrTail {
    bytes: Arc<Mutex<VecDeque<u8>>>,
    /// Closed when every process of the tree has closed the stream.
    done: Receiver<()>,
}

impl StderrTail {
    /// Bytes kept: the tail of the stream.
    pub(crate) const KEEP_BYTES: usize = 64 * 1024;
    /// Lines returned by [`StderrTail::lines`]: the last of those kept.
    const KEEP_LINES: usize = 40;

    pub(crate) fn collect(mut stream: impl Read + Send + 'static) -> StderrTail {
        let bytes = Arc::new(Mutex::new(VecDeque::new()));
        let (done_tx, done) = mpsc::channel::<()>();
        let tail = bytes.clone();
        let _ = std::thread::Builder::new()
            .name("cell-stderr".into())
            .spawn(move || {
                let _done = done_tx;
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    let n = match stream.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(_) => break,
                    };
                    let mut t = tail.lock().unwrap_or_else(|p| p.into_inner());
                    t.extend(&buf[..n]);
                    let over = t.len().saturating_sub(Self::KEEP_BYTES);
                    t.drain(..over);
                }
            });
        StderrTail { bytes, done }
    }

    /// Waits (a bounded time) until the tree's stream is closed, so that
    /// everything written is in the tail.
    pub(crate) fn wait_closed(&self, timeout: Duration) {
        let _ = self.done.recv_timeout(timeout);
    }

    /// The last lines kept (a line ends at `\n` or `\r`; empty ones are
    /// left out); the first may be the end of a longer one.
    pub(crate) fn lines(&self) -> Vec<String> {
        let bytes: Vec<u8> = {
            let t = self.bytes.lock().unwrap_or_else(|p| p.into_inner());
            t.iter().copied().collect()
        };
        let text = String::from_utf8_lossy(&bytes);
        let lines: Vec<String> = text
            .split(['\n', '\r'])
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        lines[lines.len().saturating_sub(Self::KEEP_LINES)..].to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tail_of(input: Vec<u8>) -> Vec<String> {
        let t = StderrTail::collect(std::io::Cursor::new(input));
        t.wait_closed(Duration::from_secs(10));
        t.lines()
    }

    #[test]
    fn keeps_the_last_lines() {
        let input: String = (0..100).map(|i| format!("line {i}\n")).collect();
        let lines = tail_of(input.into_bytes());
        assert_eq!(lines.len(), 40);
        assert_eq!(lines[0], "line 60");
        assert_eq!(lines[39], "line 99");
    }

    #[test]
    fn a_line_without_end_keeps_only_its_tail() {
        // A progress bar redrawn with \r, and a stream with no line end.
        let mut input: Vec<u8> = (0..100_000)
            .flat_map(|i| format!("{i:>6}%\r").into_bytes())
            .collect();
        input.extend(vec![b'x'; 1 << 20]);
        let lines = tail_of(input);
        let kept: usize = lines.iter().map(String::len).sum();
        assert!(kept <= StderrTail::KEEP_BYTES, "{kept} bytes kept");
        assert_eq!(lines, vec!["x".repeat(StderrTail::KEEP_BYTES)]);
    }
}
