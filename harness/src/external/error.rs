//! Why a row of `measure` failed: [`MeasureError`], kept in its result as
//! text.

use std::process::ExitStatus;
use std::time::Duration;

use super::watchdog;
use crate::exec::cell::describe_exit;

/// Why a row of `measure` failed: its result's reason (`error`), stored as
/// text.
#[derive(Debug, thiserror::Error)]
pub enum MeasureError {
    /// Something listens on the ready port before the command started.
    #[error("port {0} is open before the command started: another process listens there")]
    PortInUse(u16),
    /// The pipe for the command's output.
    #[error("cannot make a pipe for the output: {0}")]
    Pipe(#[source] std::io::Error),
    /// The row's watchdog.
    #[error(transparent)]
    Watchdog(#[from] watchdog::WatchdogError),
    /// The command could not be started.
    #[error("cannot start {program}: {source}")]
    Start {
        /// The program.
        program: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A process of the server runs without the variant, as the tracker
    /// describes it.
    #[error("{0}")]
    NotInEffect(String),
    /// A line of the command's output that says the configuration was not
    /// taken.
    #[error("variant is not in effect as defined: {0}")]
    Rejected(String),
    /// Ctrl-C or SIGTERM.
    #[error("interrupted")]
    Interrupted,
    /// The command ended.
    #[error("the command {} {stage}{}", describe_exit(*status), output_excerpt(lines))]
    Ended {
        /// How.
        status: ExitStatus,
        /// When: before it was ready, during the load, ...
        stage: &'static str,
        /// The lines of its output kept.
        lines: Vec<String>,
    },
    /// The ready port did not open in time.
    #[error("port {port} never opened within {} s", timeout.as_secs_f64())]
    PortNeverOpened {
        /// The port.
        port: u16,
        /// `--timeout`.
        timeout: Duration,
    },
    /// `--ignore-process` leaves no process of the server.
    #[error(
        "no process of the server to check: --ignore-process {0} matches every process but the launchers"
    )]
    IgnoredAll(String),
    /// The command left no process.
    #[error("no process of the command runs")]
    NoProcess,
}

/// The part of a failed command's message that quotes its output: all of
/// it, or its first and last lines.
fn output_excerpt(lines: &[String]) -> String {
    match lines.len() {
        0 => String::new(),
        1..=6 => format!("; its output: {}", lines.join(" | ")),
        n => format!(
            "; its output began: {} … and ended: {}",
            lines[..2].join(" | "),
            lines[n - 4..].join(" | ")
        ),
    }
}
