//! `measure`'s command line turned into a plan: the variants (each with its
//! launch and, for built-in bases, the preload library beside
//! the executable), when the command is ready, the load or duration, idle
//! offsets, sampling and timeouts. Every problem is a usage error (exit 2)
//! before anything runs.

use std::path::PathBuf;
use std::time::Duration;

use allocbench_allocators::{Launch, Variant, check_shared_object};

use super::{load, load_output};
use crate::cli::MeasureArgs;
use crate::plans::{catalog, usage};

/// Variants run when none are named.
pub const DEFAULT_VARIANTS: &[&str] = &["glibc", "jemalloc", "mimalloc", "snmalloc"];
/// Seconds after the start at which the command counts as ready, without
/// `--ready`.
pub const READY_AFTER_DEFAULT_S: f64 = 1.0;
/// Seconds measured without `--load`.
pub const DURATION_DEFAULT_S: f64 = 10.0;

/// When the command counts as ready.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ready {
    /// A TCP connection to 127.0.0.1:PORT succeeds.
    Port(u16),
    /// This many seconds after the start.
    After(f64),
}

impl Ready {
    pub(super) fn describe(self) -> String {
        match self {
            Ready::Port(p) => format!("port {p}"),
            Ready::After(s) => format!("after {s} s"),
        }
    }
}

/// One variant to run the command under, with its launch environment.
#[derive(Debug, Clone)]
pub struct MeasureVariant {
    pub variant: Variant,
    pub launch: Launch,
}

/// A checked `measure` invocation.
#[derive(Debug, Clone)]
pub struct MeasurePlan {
    pub command: Vec<String>,
    pub variants: Vec<MeasureVariant>,
    pub ready: Ready,
    pub load: Option<Vec<String>>,
    /// `--load-metric`: reads requests per second from the load command's
    /// output instead of the known tools' summaries.
    pub load_metric: Option<regex::Regex>,
    /// Seconds measured when there is no load command.
    pub duration_s: f64,
    /// Idle samples, in seconds after the load, increasing; the idle
    /// metrics are read at the last.
    pub idle: Vec<f64>,
    pub sample_hz: f64,
    /// The share of one CPU the timeline's walks may use (0–1].
    pub sample_budget: f64,
    pub timeout: Duration,
    /// Runs of each variant, interleaved across variants.
    pub repeat: u32,
    /// `--ignore-process`: command lines of processes that are not part of
    /// the server.
    pub ignore: Option<regex::Regex>,
}

impl MeasurePlan {
    /// How long the command idles after the load: the last idle sample.
    pub fn idle_s(&self) -> f64 {
        self.idle.last().copied().unwrap_or(0.0)
    }
}

fn seconds(flag: &str, v: Option<f64>, default: f64) -> anyhow::Result<f64> {
    let v = v.unwrap_or(default);
    if !(v.is_finite() && (0.0..=86_400.0).contains(&v)) {
        return Err(usage(format!(
            "{flag}: must be seconds between 0 and 86400, got {v}"
        )));
    }
    Ok(v)
}

/// Why a built-in allocator's preload library cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum BuiltinLibraryError {
    /// This executable cannot be found.
    #[error("cannot find allocbench: {0}")]
    Exe(#[source] std::io::Error),
    /// The library is there but cannot be preloaded.
    #[error(transparent)]
    Unusable(#[from] allocbench_allocators::LibraryProblem),
    /// The library is not built.
    #[error(
        "{file} is not next to {} (looked in {} and {}/deps); build it once with `{build}` at the workspace root (`cargo run -- measure` builds only the allocbench package)",
        exe.display(),
        exe.parent().unwrap_or(std::path::Path::new("/")).display(),
        exe.parent().unwrap_or(std::path::Path::new("/")).display()
    )]
    NotBuilt {
        /// The library's file name.
        file: String,
        /// The running allocbench.
        exe: PathBuf,
        /// The command that builds it.
        build: &'static str,
    },
}

/// Where the preload library of a built-in allocator is: next to the
/// running allocbench, or in its `deps/` (where cargo writes it first).
pub fn builtin_library(file: &str) -> Result<PathBuf, BuiltinLibraryError> {
    let exe = std::env::current_exe().map_err(BuiltinLibraryError::Exe)?;
    let dir = exe.parent().unwrap_or(std::path::Path::new("/"));
    for d in [dir.to_path_buf(), dir.join("deps")] {
        let p = d.join(file);
        if p.is_file() {
            check_shared_object(&p)?;
            return Ok(p.canonicalize().unwrap_or(p));
        }
    }
    let build = if dir.ends_with("release") {
        "cargo build --release"
    } else {
        "cargo build"
    };
    Err(BuiltinLibraryError::NotBuilt {
        file: file.into(),
        exe,
        build,
    })
}

/// Checks the arguments; every problem is a usage error (exit code 2).
pub fn plan(args: &MeasureArgs) -> anyhow::Result<MeasurePlan> {
    crate::plans::check_proc()?;
    let Some(program) = args.command.first().filter(|c| !c.is_empty()) else {
        return Err(usage("no command to measure: give it after `--`"));
    };
    if !load::findable(program) {
        return Err(usage(format!(
            "{program}: not found{}, or not executable: nothing to measure",
            if program.contains('/') {
                ""
            } else {
                " in PATH"
            }
        )));
    }
    let ignore = args
        .ignore_process
        .as_deref()
        .map(|re| {
            regex::Regex::new(re).map_err(|e| usage(format!("--ignore-process: not a regex: {e}")))
        })
        .transpose()?;
    let catalog = catalog(args.variants_file.as_deref())?;
    let explicit = !args.variants.is_empty();
    let resolved = if explicit {
        catalog.resolve_each(&args.variants)
    } else {
        catalog.resolve_each(DEFAULT_VARIANTS)
    };
    let mut variants = Vec::new();
    for variant in resolved.map_err(usage)? {
        if variant.background_thread_in_workers {
            return Err(usage(format!(
                "variant {}: background_thread_in_workers needs allocbench's own workload (it \
                 turns background threads on in each worker after the fork); measure cannot \
                 do that in another program",
                variant.name
            )));
        }
        let library = match variant.builtin_preload_file() {
            Some(file) => match builtin_library(file) {
                Ok(p) => Some(p),
                Err(e) if explicit => {
                    return Err(usage(format!("variant {}: {e}", variant.name)));
                }
                Err(e) => {
                    crate::error::note(format_args!("Skipping variant {}: {e}", variant.name));
                    continue;
                }
            },
            None => None,
        };
        let launch = variant.launch_program(library.as_deref()).map_err(usage)?;
        variants.push(MeasureVariant { variant, launch });
    }
    if variants.is_empty() {
        return Err(usage("no variant can run here"));
    }
    let ready = match (args.ready, args.ready_after) {
        (Some(0), _) => return Err(usage("--ready: port 0 is not a port to wait on")),
        (Some(port), _) => Ready::Port(port),
        (None, s) => Ready::After(seconds("--ready-after", s, READY_AFTER_DEFAULT_S)?),
    };
    let load = match &args.load {
        Some(cmd) => {
            let words = load::split(cmd).map_err(usage)?;
            if !load::findable(&words[0]) {
                return Err(usage(format!(
                    "--load: {} not found{}",
                    words[0],
                    if words[0].contains('/') {
                        ""
                    } else {
                        " in PATH"
                    }
                )));
            }
            Some(words)
        }
        None => None,
    };
    let load_metric = match &args.load_metric {
        Some(_) if load.is_none() => {
            return Err(usage(
                "--load-metric: reads the output of --load, which is not given",
            ));
        }
        Some(re) => Some(load_output::metric_regex(re).map_err(usage)?),
        None => None,
    };
    // The same offsets as the other commands' idle samples; the idle
    // metrics are read at the last.
    crate::plans::check_idle(&args.idle)?;
    if args.idle.is_empty() {
        return Err(usage("--idle: no offset given"));
    }
    let timeout = crate::plans::check_timeout(args.timeout)?;
    let sample_hz = crate::plans::check_sample_hz(args.sample_hz)?;
    let sample_budget = crate::plans::check_sample_budget(args.sample_budget)?;
    let repeat = crate::plans::check_repeat(args.repeat)?;
    Ok(MeasurePlan {
        command: args.command.clone(),
        variants,
        ready,
        load,
        load_metric,
        duration_s: seconds("--duration", args.duration, DURATION_DEFAULT_S)?,
        idle: args.idle.clone(),
        sample_hz,
        sample_budget,
        timeout,
        repeat,
        ignore,
    })
}
