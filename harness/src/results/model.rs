//! The memory model fitted to a sweep, as result documents (and `plan`'s
//! JSON) hold it. `analysis::sweep` fits it and plans with it.

use serde::{Deserialize, Serialize};

/// One cell of a sweep.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct FitPoint {
    pub processes: u32,
    pub threads: u32,
    /// Tree anonymous PSS at steady, median over repetitions.
    pub measured: f64,
    pub predicted: f64,
    /// (predicted − measured) / measured, in percent.
    pub error_pct: f64,
    /// Requests per second, median over repetitions.
    pub throughput_rps: f64,
}

/// The model fitted for one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct Fit {
    pub variant: String,
    /// `a`: bytes shared once across the tree.
    pub shared_once: f64,
    /// `b`: bytes each worker process adds.
    pub per_process: f64,
    /// `c`: bytes each serving thread adds.
    pub per_thread: f64,
    /// The static memory `S`: the master's anonymous memory at the fork
    /// (`Anonymous` of its smaps_rollup at `forked`, median over the cells),
    /// the same kind of pages as the fitted anonymous PSS.
    pub static_bytes: Option<f64>,
    /// `1 − b/S`: a lower bound of the share of `S` a worker keeps shared.
    pub cow_efficiency_lower: Option<f64>,
    /// Coefficient of determination of the fit.
    pub r2: f64,
    pub points: Vec<FitPoint>,
}

/// A variant of a sweep the model could not be fitted for, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct Unfitted {
    pub variant: String,
    pub reason: String,
}

/// A configuration a plan considers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub variant: String,
    pub processes: u32,
    pub threads: u32,
    pub predicted_pss: f64,
    pub throughput_rps: f64,
    /// Whether the sweep measured this configuration (else throughput is
    /// extrapolated).
    pub measured: bool,
}
