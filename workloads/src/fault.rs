//! Fault injection for the harness's own tests: `ALLOCBENCH_FAULT=KIND@PHASE[#WORKER]`
//! makes a process of the cell fail in the period that ends at boundary PHASE
//! (`started`/`preloaded` in the master; `forked`/`steady`/`drained`/`trimmed`
//! in worker WORKER, default 0), or with PHASE `retired` as worker WORKER
//! retires under a lifecycle policy (before it tells the harness). KIND is `segv`, `abort`, `double-free`,
//! `kill`, `hang` or `exit`. The faults are real: a real signal, a real
//! hang, a real double free that libc malloc's own check aborts.
//!
//! The faults are compiled in only with the crate's `testing` feature, which
//! the harness's dev-dependency turns on for the `allocbench` binary that
//! `cargo test` builds. Without it [`Fault::parse`] refuses every fault, so a
//! variants file that asks for one is refused when it is loaded and a worker
//! that finds one in its environment stops with that error.

#[cfg(feature = "testing")]
use std::fmt;

use thiserror::Error;

use crate::protocol::{Phase, Role};

/// The environment variable that injects a fault (the launch scrubs it from
/// the inherited environment, with the allocator variables).
pub const FAULT_ENV: &str = allocbench_allocators::FAULT_ENV;

#[cfg(feature = "testing")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Segv,
    Abort,
    DoubleFree,
    Kill,
    Hang,
    Exit,
}

#[cfg(feature = "testing")]
impl Kind {
    const ALL: [Kind; 6] = [
        Kind::Segv,
        Kind::Abort,
        Kind::DoubleFree,
        Kind::Kill,
        Kind::Hang,
        Kind::Exit,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::Segv => "segv",
            Kind::Abort => "abort",
            Kind::DoubleFree => "double-free",
            Kind::Kill => "kill",
            Kind::Hang => "hang",
            Kind::Exit => "exit",
        }
    }
}

/// Where a fault fires: at a phase boundary, or as a worker retires.
#[cfg(feature = "testing")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Point {
    At(Phase),
    Retired,
}

#[cfg(feature = "testing")]
impl Point {
    fn name(self) -> &'static str {
        match self {
            Point::At(p) => p.name(),
            Point::Retired => "retired",
        }
    }
}

#[cfg(feature = "testing")]
fn is_master_phase(point: Point) -> bool {
    matches!(point, Point::At(Phase::Started | Phase::Preloaded))
}

/// Why a fault's spelling is refused.
#[derive(Debug, Error, PartialEq, Eq, Clone)]
pub enum FaultError {
    /// A fault asked of a build without the `testing` feature.
    #[error(
        "{FAULT_ENV}={value:?}: this allocbench is built without fault injection, which only its own tests turn on (feature `testing` of allocbench-workloads)"
    )]
    NotBuilt {
        /// The value as written.
        value: String,
    },
    /// Not `KIND@PHASE[#WORKER]` with a known kind and phase.
    #[error(
        "{FAULT_ENV}={value:?}: expected KIND@PHASE[#WORKER], KIND one of segv, abort, double-free, kill, hang, exit"
    )]
    Malformed {
        /// The value as written.
        value: String,
    },
    /// A worker index on one of the master's phases.
    #[error(
        "{FAULT_ENV}={value:?}: #WORKER applies only to the workers' phases forked, steady, drained and trimmed"
    )]
    WorkerOnMaster {
        /// The value as written.
        value: String,
    },
}

/// A fault to inject, or none (always none without the `testing` feature).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Fault(#[cfg(feature = "testing")] Option<(Kind, Point, u32)>);

impl Fault {
    /// Reads a fault from `KIND@PHASE[#WORKER]`, as [`FAULT_ENV`] holds it;
    /// refuses every fault without the `testing` feature.
    pub fn parse(s: &str) -> Result<Fault, FaultError> {
        #[cfg(feature = "testing")]
        return Fault::parse_injected(s);
        #[cfg(not(feature = "testing"))]
        Err(FaultError::NotBuilt { value: s.into() })
    }

    #[cfg(feature = "testing")]
    fn parse_injected(s: &str) -> Result<Fault, FaultError> {
        let bad = || FaultError::Malformed { value: s.into() };
        let (kind, rest) = s.split_once('@').ok_or_else(bad)?;
        let kind = Kind::ALL
            .into_iter()
            .find(|k| k.name() == kind)
            .ok_or_else(bad)?;
        let (phase, index) = match rest.split_once('#') {
            Some((p, i)) => (p, Some(i.parse().map_err(|_| bad())?)),
            None => (rest, None),
        };
        let phase = match phase {
            "retired" => Point::Retired,
            p => Point::At(Phase::from_name(p).ok_or_else(bad)?),
        };
        // The master has no worker index: a given one would be ignored.
        if index.is_some() && is_master_phase(phase) {
            return Err(FaultError::WorkerOnMaster { value: s.into() });
        }
        Ok(Fault(Some((kind, phase, index.unwrap_or(0)))))
    }

    /// The worker a fault of the workers' phases fires in (0 by default);
    /// `None` for no fault or one of the master's phases.
    pub fn worker(&self) -> Option<u32> {
        #[cfg(feature = "testing")]
        return self
            .0
            .filter(|&(_, phase, _)| !is_master_phase(phase))
            .map(|(_, _, w)| w);
        #[cfg(not(feature = "testing"))]
        None
    }

    /// The fault [`FAULT_ENV`] asks for; none when it is unset or empty.
    pub fn from_env() -> Result<Fault, FaultError> {
        match std::env::var(FAULT_ENV) {
            Ok(s) if !s.is_empty() => Fault::parse(&s),
            _ => Ok(Fault::default()),
        }
    }

    /// Triggers the fault if it is due for this process at this boundary.
    pub fn at(&self, role: Role, index: u32, phase: Phase) {
        #[cfg(feature = "testing")]
        self.trigger(role, index, Point::At(phase));
        #[cfg(not(feature = "testing"))]
        let _ = (role, index, phase);
    }

    /// Triggers the fault if it is due for worker `index` as it retires.
    pub fn at_retire(&self, index: u32) {
        #[cfg(feature = "testing")]
        self.trigger(Role::Worker, index, Point::Retired);
        #[cfg(not(feature = "testing"))]
        let _ = index;
    }

    #[cfg(feature = "testing")]
    fn trigger(&self, role: Role, index: u32, phase: Point) {
        let Some((kind, at, who)) = self.0 else {
            return;
        };
        // Master phases fire in the master; serving phases in worker WORKER,
        // or in the master when it serves itself (no fork; index 0).
        let master_phase = is_master_phase(at);
        let mine = if master_phase {
            role == Role::Master
        } else {
            who == index
        };
        if !mine || at != phase {
            return;
        }
        // SAFETY: raising a signal or exiting; nothing after this runs.
        unsafe {
            match kind {
                // A real invalid access: a raised SIGSEGV would be swallowed
                // by Rust's stack-overflow handler.
                Kind::Segv => std::ptr::write_volatile(std::ptr::null_mut::<u8>(), 1),
                Kind::Abort => libc::abort(),
                // libc malloc's corruption check, as an allocator bug or a
                // use-after-free in the application would trip it.
                Kind::DoubleFree => {
                    let p = std::hint::black_box(libc::malloc(64));
                    libc::free(p);
                    libc::free(std::hint::black_box(p));
                    // A malloc that does not check: die as it would have.
                    libc::abort();
                }
                Kind::Kill => {
                    libc::raise(libc::SIGKILL);
                }
                Kind::Hang => std::thread::sleep(crate::engine::HANG),
                Kind::Exit => libc::_exit(7),
            }
        }
    }
}

/// The fault as `ALLOCBENCH_FAULT` spells it (`KIND@PHASE`, with `#WORKER` for
/// the workers' phases); empty for no fault, as [`Fault::from_env`] reads it.
#[cfg(feature = "testing")]
impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some((kind, phase, worker)) = self.0 else {
            return Ok(());
        };
        write!(f, "{}@{}", kind.name(), phase.name())?;
        if !is_master_phase(phase) {
            write!(f, "#{worker}")?;
        }
        Ok(())
    }
}

#[cfg(all(test, feature = "testing"))]
mod tests {
    use super::*;

    #[test]
    fn parses_kind_phase_and_worker() {
        assert_eq!(
            Fault::parse("segv@steady#1").unwrap(),
            Fault(Some((Kind::Segv, Point::At(Phase::Steady), 1)))
        );
        assert_eq!(
            Fault::parse("hang@preloaded").unwrap(),
            Fault(Some((Kind::Hang, Point::At(Phase::Preloaded), 0)))
        );
        assert_eq!(
            Fault::parse("kill@retired#1").unwrap(),
            Fault(Some((Kind::Kill, Point::Retired, 1)))
        );
        assert_eq!(
            Fault::parse("kill@retired#1").unwrap().to_string(),
            "kill@retired#1"
        );
        assert!(Fault::parse("boom@steady").is_err());
        assert!(Fault::parse("segv@nowhere").is_err());
        assert!(Fault::parse("segv").is_err());
    }

    #[test]
    fn worker_index_on_a_master_phase_is_refused() {
        // "abort@preloaded#3" used to be accepted and the index
        // silently ignored.
        let e = Fault::parse("abort@preloaded#3").unwrap_err();
        assert!(matches!(e, FaultError::WorkerOnMaster { .. }), "{e}");
        assert!(e.to_string().contains("#WORKER applies only"), "{e}");
        assert!(Fault::parse("abort@started#0").is_err());
        assert_eq!(
            Fault::parse("abort@preloaded").unwrap().to_string(),
            "abort@preloaded"
        );
        assert_eq!(
            Fault::parse("kill@drained").unwrap().to_string(),
            "kill@drained#0"
        );
    }
}
