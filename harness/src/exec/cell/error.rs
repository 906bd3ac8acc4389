//! Why a cell failed: [`CellError`], kept in its result as text.

use std::process::ExitStatus;
use std::time::Duration;

use super::{VerifyError, describe_exit};
use crate::analysis::metrics;
use crate::results::TimelinePhase;

/// Why a cell failed: its result's reason (`error`), stored as text.
#[derive(Debug, thiserror::Error)]
pub enum CellError {
    /// The variant cannot be launched.
    #[error(transparent)]
    Launch(#[from] allocbench_allocators::VariantError),
    /// The variant's preload library cannot be used.
    #[error(transparent)]
    Library(#[from] allocbench_allocators::LibraryProblem),
    /// The variant is not in effect as defined.
    #[error(transparent)]
    Verify(#[from] VerifyError),
    /// The cell's figures cannot be computed.
    #[error(transparent)]
    Metrics(#[from] metrics::MetricsError),
    /// The spec cannot be handed to the master.
    #[error(transparent)]
    Spec(#[from] serde_json::Error),
    /// The socket the cell's processes connect to.
    #[error("cannot open the cell's socket: {0}")]
    Socket(#[source] std::io::Error),
    /// This executable, which the master runs.
    #[error("cannot find allocbench: {0}")]
    Exe(#[source] std::io::Error),
    /// The master could not be started.
    #[error("cannot start the worker process: {0}")]
    Spawn(#[source] std::io::Error),
    /// The master's `started` report has no allocator.
    #[error("the master did not report its allocator")]
    NoAllocator,
    /// The master ended badly after the last phase.
    #[error("master {pid} {} at exit", describe_exit(*status))]
    MasterAtExit {
        /// The master.
        pid: i32,
        /// How it ended.
        status: ExitStatus,
    },
    /// A phase that did not end in time.
    #[error("timed out in phase {phase} after {}", crate::units::seconds(timeout.as_secs_f64()))]
    Timeout {
        /// What the cell was doing.
        phase: TimelinePhase,
        /// The phase timeout.
        timeout: Duration,
    },
    /// Ctrl-C or SIGTERM.
    #[error("interrupted")]
    Interrupted,
    /// A slot's workers reported more requests than it has (a report
    /// counted twice).
    #[error("worker slot {slot} reported {counted} requests of {requests}")]
    CountedTwice {
        /// The slot.
        slot: u32,
        /// What its workers reported, retired ones included.
        counted: u64,
        /// The requests each slot serves.
        requests: u64,
    },
    /// The thread that accepts the processes' connections ended.
    #[error("lost the cell's socket")]
    SocketLost,
    /// A line on a connection that is no event.
    #[error("{who} sent a line that is not an event: {line:?}")]
    Garbage {
        /// The process: `master PID`, `worker PID` or `a process`.
        who: String,
        /// The line.
        line: String,
    },
    /// A hello on a connection not accepted.
    #[error("a hello on an unknown connection")]
    UnknownConnection,
    /// An event of a process that has not said hello.
    #[error("a {0} event before hello")]
    BeforeHello(&'static str),
    /// An error a process of the cell reported.
    #[error("{who}: {message}")]
    Reported {
        /// The process.
        who: String,
        /// Its message, as sent.
        message: String,
    },
    /// The master ended before the cell did.
    #[error("master {pid} {} in phase {phase}", describe_exit(*status))]
    MasterEnded {
        /// The master.
        pid: i32,
        /// How it ended.
        status: ExitStatus,
        /// What the cell was doing.
        phase: TimelinePhase,
    },
    /// A worker's connection closed with no exit report from its forker.
    #[error("worker {pid} closed its connection in phase {phase} without an exit report")]
    Closed {
        /// The worker.
        pid: i32,
        /// What the cell was doing.
        phase: TimelinePhase,
    },
    /// A worker that ended without retiring.
    #[error("worker {pid} {status} in phase {phase} before it served its requests")]
    EndedEarly {
        /// The worker.
        pid: i32,
        /// How it ended, as its forker described it.
        status: String,
        /// What the cell was doing.
        phase: TimelinePhase,
    },
    /// A worker that ended before it connected.
    #[error("worker {pid} {status} before it connected")]
    EndedBeforeConnecting {
        /// The worker.
        pid: i32,
        /// How it ended, as its forker described it.
        status: String,
    },
    /// A retirement without a lifecycle policy, or of the master.
    #[error("{who} retired without a lifecycle policy")]
    RetiredWithoutPolicy {
        /// The process.
        who: String,
    },
    /// A worker that failed.
    #[error("worker {pid} {status} in phase {phase}")]
    WorkerFailed {
        /// The worker.
        pid: i32,
        /// How it ended, as its forker described it.
        status: String,
        /// What the cell was doing.
        phase: TimelinePhase,
    },
    /// A line on stderr that says the configuration was not taken.
    #[error("variant {variant} is not in effect as defined: {line}")]
    NotInEffect {
        /// The variant's name.
        variant: String,
        /// The line.
        line: String,
    },
    /// A failure, with the last line the cell's processes wrote on stderr.
    #[error("{error} (stderr: {line})")]
    WithStderr {
        /// The failure.
        #[source]
        error: Box<CellError>,
        /// The last stderr line.
        line: String,
    },
}
