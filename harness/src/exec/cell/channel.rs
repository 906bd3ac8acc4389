//! The cell's socket: every process of the tree connects and sends JSON
//! event lines; a reader thread per connection forwards them to the cell.

use std::io::{BufRead, BufReader};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener, UnixStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;

use allocbench_workloads::Event;

/// What arrives from the cell's processes.
pub(crate) enum Incoming {
    Connected { conn: usize, writer: UnixStream },
    Event { conn: usize, event: Event },
    Garbage { conn: usize, line: String },
    Closed { conn: usize },
}

/// Accepts connections on the cell's socket until dropped.
pub(crate) struct Acceptor {
    name: String,
    stop: Arc<AtomicBool>,
}

impl Acceptor {
    pub(crate) fn start(tx: mpsc::Sender<Incoming>) -> std::io::Result<(Acceptor, String)> {
        static SERIAL: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "allocbench-{}-{}",
            std::process::id(),
            SERIAL.fetch_add(1, Ordering::Relaxed)
        );
        let listener = UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes())?)?;
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        std::thread::Builder::new()
            .name("cell-accept".into())
            .spawn(move || {
                for (conn, stream) in listener.incoming().enumerate() {
                    if stop2.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let Ok(writer) = stream.try_clone() else {
                        continue;
                    };
                    if tx.send(Incoming::Connected { conn, writer }).is_err() {
                        break;
                    }
                    let tx = tx.clone();
                    let _ = std::thread::Builder::new()
                        .name("cell-read".into())
                        .spawn(move || read_events(conn, stream, tx));
                }
            })?;
        Ok((
            Acceptor {
                name: name.clone(),
                stop,
            },
            name,
        ))
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the blocked accept so the thread sees the flag.
        if let Ok(addr) = SocketAddr::from_abstract_name(self.name.as_bytes()) {
            let _ = UnixStream::connect_addr(&addr);
        }
    }
}

fn read_events(conn: usize, stream: UnixStream, tx: mpsc::Sender<Incoming>) {
    for line in BufReader::new(stream).lines() {
        let Ok(line) = line else { break };
        let msg = match serde_json::from_str::<Event>(&line) {
            Ok(event) => Incoming::Event { conn, event },
            Err(_) => Incoming::Garbage { conn, line },
        };
        if tx.send(msg).is_err() {
            return;
        }
    }
    let _ = tx.send(Incoming::Closed { conn });
}
