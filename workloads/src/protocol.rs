//! The event protocol between the harness and the processes of a cell.
//!
//! Every process of a cell (the master, and each worker after it forks)
//! opens its own connection to the harness's abstract Unix socket and sends
//! JSON lines: first [`Event::Hello`], then [`Event::Phase`] at each phase
//! boundary, after which it blocks until the harness answers with a line
//! [`CONTINUE`] (the harness samples `/proc` in between). The master, after
//! forking, reports each worker's exit as [`Event::ChildExit`].

use std::io::{BufRead, BufReader, ErrorKind, Write};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixStream};
use std::time::{Duration, Instant};

use allocbench_allocators::AllocatorIdentity;
use serde::{Deserialize, Serialize};

/// The harness's answer that lets a process leave a phase boundary.
pub const CONTINUE: &str = "continue";

/// Environment variable naming the abstract socket of the harness.
pub const SOCKET_ENV: &str = "ALLOCBENCH_SOCKET";

/// A phase boundary the processes of a cell stop at. Idle samples and the
/// exit are the harness's own and have no boundary here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// The master has started; nothing allocated yet by the workload.
    Started,
    /// The master has preloaded its static memory (before the pre-fork hook).
    Preloaded,
    /// The workers exist and have done nothing yet.
    Forked,
    /// The workers have served every request and still hold their caches.
    Steady,
    /// The workers have freed their caches.
    Drained,
    /// The workers have called the allocator's release call.
    Trimmed,
}

impl Phase {
    /// Every phase, in the order a cell passes them.
    pub const ALL: [Phase; 6] = [
        Phase::Started,
        Phase::Preloaded,
        Phase::Forked,
        Phase::Steady,
        Phase::Drained,
        Phase::Trimmed,
    ];

    /// The phase named `name` (as [`Phase::name`] spells it).
    pub fn from_name(name: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.name() == name)
    }

    /// The phase's name in results, tables and fault specs: `started`, ….
    pub fn name(self) -> &'static str {
        match self {
            Phase::Started => "started",
            Phase::Preloaded => "preloaded",
            Phase::Forked => "forked",
            Phase::Steady => "steady",
            Phase::Drained => "drained",
            Phase::Trimmed => "trimmed",
        }
    }
}

/// Who a connection belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// The process the harness spawned, which preloads and forks.
    Master,
    /// A process the master forked, which serves requests.
    Worker,
}

/// What a process tells the harness at a phase boundary; each field is
/// present where it applies.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseReport {
    /// The allocator that serves this process (master, at `started`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub allocator: Option<AllocatorIdentity>,
    /// Bytes of static objects live after preloading (master).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub static_live_bytes: Option<u64>,
    /// Static objects allocated while preloading (master).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub static_objects: Option<u64>,
    /// Of those, the objects freed again before the fork (master).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub static_freed_objects: Option<u64>,
    /// The release call the pre-fork hook or the trim made, if any.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub release_call: Option<String>,
    /// Worker pids, in index order (master, at `forked`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub workers: Option<Vec<i32>>,
    /// Requests served (worker, at `steady`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub requests: Option<u64>,
    /// Wall time from the start of serving to the last thread's last
    /// request, in nanoseconds (worker, at `steady`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub serve_ns: Option<u64>,
    /// Request latency histogram as (value in ns, count) pairs at the
    /// histogram's resolution (worker, at `steady`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub latency_ns: Option<Vec<(u64, u64)>>,
    /// Bytes the worker's own allocations since fork hold live (its caches).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub live_bytes: Option<u64>,
    /// Arena count (glibc, jemalloc) after the threads ran.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub arenas: Option<u32>,
    /// CPUs the process may run on (its affinity mask).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub cpus_allowed: Option<u32>,
    /// Whether THP is disabled for the process (`PR_GET_THP_DISABLE`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub thp_disabled: Option<bool>,
    /// Whether jemalloc's background threads are on in the process.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub background_thread: Option<bool>,
    /// Checksum of the bytes read back, proof the writes happened.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub checksum: Option<u64>,
    /// Requests served through the idle window (`idle_trickle_rps`; serving
    /// process, at `trimmed`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub idle_requests: Option<u64>,
}

/// Why a worker stopped serving before its slot's requests ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[serde(rename_all = "lowercase")]
pub enum RetireReason {
    /// It served its quota (`requests=N`).
    Quota,
    /// It was told to by SIGQUIT: over the memory limit, or replaced by a
    /// mold.
    Asked,
    /// It became the mold, which forks the next workers.
    Mold,
}

impl RetireReason {
    /// Its name in JSON and messages.
    pub fn name(self) -> &'static str {
        match self {
            RetireReason::Quota => "quota",
            RetireReason::Asked => "asked",
            RetireReason::Mold => "mold",
        }
    }
}

impl std::fmt::Display for RetireReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A message from a process of a cell to the harness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The first line on every connection: who is speaking.
    Hello {
        /// The process's pid.
        pid: i32,
        /// Master or worker.
        role: Role,
        /// Worker index 0..P (0 for the master): the worker's slot.
        index: u32,
        /// The worker's generation in its slot: 0 for the workers the master
        /// forks at start, then one more for each replacement.
        #[serde(default, skip_serializing_if = "is_zero")]
        generation: u32,
        /// The process that forked this one (a replacement's: the master or
        /// the mold).
        #[serde(default, skip_serializing_if = "is_zero_i32")]
        parent: i32,
    },
    /// The process reached a phase boundary and waits for [`CONTINUE`].
    Phase {
        /// The boundary reached.
        phase: Phase,
        /// What the process reports there.
        #[serde(default)]
        report: Box<PhaseReport>,
    },
    /// The master saw a worker end.
    ChildExit {
        /// The worker's pid.
        pid: i32,
        /// The worker's index 0..P.
        index: u32,
        /// `exited with status N` or `killed by SIGxxx`.
        status: String,
        /// True for exit status 0.
        success: bool,
    },
    /// A worker's requests served so far, sent about fifty times a second
    /// while serving (for the timeline).
    Progress {
        /// Requests served since the worker started serving.
        requests: u64,
        /// Bytes the process's caches hold live now.
        #[serde(default)]
        live_bytes: u64,
    },
    /// A worker stopped serving before its slot's requests ran out: it exits
    /// (or, as the mold, forks the next workers) and its slot's next
    /// generation serves the rest.
    Retired {
        /// Requests this process served.
        requests: u64,
        /// Its request latencies, as at `steady`.
        latency_ns: Vec<(u64, u64)>,
        /// Checksum of the bytes it read back.
        checksum: u64,
        /// Why it stopped serving.
        reason: RetireReason,
    },
    /// The process cannot go on; it exits after sending this.
    Error {
        /// What went wrong, for the user.
        message: String,
    },
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

fn is_zero_i32(v: &i32) -> bool {
    *v == 0
}

/// One process's connection to the harness.
pub struct Channel {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Channel {
    /// Connects to the harness's abstract socket `name` and says hello.
    pub fn connect(name: &str, role: Role, index: u32) -> std::io::Result<Channel> {
        Channel::connect_as(name, role, index, 0, 0)
    }

    /// As [`Channel::connect`], for generation `generation` of a worker
    /// forked by `parent`.
    pub fn connect_as(
        name: &str,
        role: Role,
        index: u32,
        generation: u32,
        parent: i32,
    ) -> std::io::Result<Channel> {
        let addr = SocketAddr::from_abstract_name(name.as_bytes())?;
        let stream = UnixStream::connect_addr(&addr)?;
        let mut ch = Channel {
            // A small buffer: the harness only ever sends short lines, and a
            // worker's first allocation of 1 KiB or more must be its
            // workload's (glibc consolidates its inherited free chunks then).
            reader: BufReader::with_capacity(64, stream.try_clone()?),
            writer: stream,
        };
        ch.send(&Event::Hello {
            pid: std::process::id() as i32,
            role,
            index,
            generation,
            parent,
        })?;
        Ok(ch)
    }

    /// Sends one event as one JSON line.
    pub fn send(&mut self, event: &Event) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        self.writer.write_all(&line)
    }

    /// Reports reaching `phase` and blocks until the harness says continue.
    pub fn phase(&mut self, phase: Phase, report: PhaseReport) -> std::io::Result<()> {
        self.send(&Event::Phase {
            phase,
            report: Box::new(report),
        })?;
        self.wait_continue()
    }

    /// Reports reaching `phase` and, until the harness says continue, calls
    /// `tick` every `period` (on a fixed schedule: a slow tick does not
    /// shift the next ones); returns the ticks made.
    pub fn phase_ticking<E>(
        &mut self,
        phase: Phase,
        report: PhaseReport,
        period: Duration,
        tick: &mut dyn FnMut() -> Result<(), E>,
    ) -> std::io::Result<u64>
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        self.send(&Event::Phase {
            phase,
            report: Box::new(report),
        })?;
        let start = Instant::now();
        let mut ticks = 0u64;
        // What was read before a timeout stays in `line`.
        let mut line = String::new();
        loop {
            let next = start + period.mul_f64((ticks + 1) as f64);
            let wait = next.saturating_duration_since(Instant::now());
            if wait.is_zero() {
                tick().map_err(std::io::Error::other)?;
                ticks += 1;
                continue;
            }
            self.reader.get_ref().set_read_timeout(Some(wait))?;
            let read = self.reader.read_line(&mut line);
            match read {
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                other => {
                    self.reader.get_ref().set_read_timeout(None)?;
                    if other? == 0 || line.ends_with('\n') {
                        return check_continue(&line).map(|()| ticks);
                    }
                }
            }
        }
    }

    fn wait_continue(&mut self) -> std::io::Result<()> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        check_continue(&line)
    }
}

/// `line` (read whole, or empty at the end of the connection) must be
/// [`CONTINUE`].
fn check_continue(line: &str) -> std::io::Result<()> {
    {
        if line.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the harness closed the connection",
            ));
        }
        if line.trim_end() == CONTINUE {
            Ok(())
        } else {
            Err(std::io::Error::other(format!(
                "unexpected message from the harness: {:?}",
                line.trim_end()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retire_reasons_are_named_in_json_as_in_messages() {
        for r in [RetireReason::Quota, RetireReason::Asked, RetireReason::Mold] {
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.name()));
            assert_eq!(serde_json::from_str::<RetireReason>(&json).unwrap(), r);
        }
    }

    #[test]
    fn events_round_trip_as_tagged_json() {
        let e = Event::Phase {
            phase: Phase::Steady,
            report: Box::new(PhaseReport {
                requests: Some(10),
                latency_ns: Some(vec![(100, 2)]),
                ..Default::default()
            }),
        };
        let s = serde_json::to_string(&e).unwrap();
        assert!(s.starts_with(r#"{"event":"phase","phase":"steady""#), "{s}");
        assert_eq!(serde_json::from_str::<Event>(&s).unwrap(), e);
        let h: Event =
            serde_json::from_str(r#"{"event":"hello","pid":5,"role":"worker","index":1}"#).unwrap();
        assert_eq!(
            h,
            Event::Hello {
                pid: 5,
                role: Role::Worker,
                index: 1,
                generation: 0,
                parent: 0,
            }
        );
    }
}
