//! The summary over repetitions, as result documents hold it: per variant
//! (and hook, and write mode), each metric's statistics and its ratio to
//! the baseline. `analysis::stats` computes it.

use std::collections::BTreeMap;

use allocbench_workloads::{Lifecycle, PreforkHook};
use serde::{Deserialize, Serialize};

use super::metric::MetricId;

/// A metric over the repetitions of one variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct Stat {
    /// Repetitions with a value.
    pub n: usize,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    /// Median absolute deviation from the median.
    pub mad: f64,
    /// Coefficient of variation (standard deviation / mean); `null` for a
    /// single value or a zero mean.
    pub cv: Option<f64>,
    /// Repetitions whose value is an outlier (|modified Z-score| > 3.5).
    pub outliers: Vec<u32>,
}

/// A variant's metric relative to the baseline's, per repetition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct Ratio {
    pub baseline: String,
    pub median: f64,
    pub min: f64,
    pub max: f64,
    /// Median absolute deviation of the per-repetition ratios: the `±`.
    pub mad: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct SummaryMetric {
    #[serde(flatten)]
    pub stat: Stat,
    /// Ratio to the baseline variant of the same group, paired by repetition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ratio: Option<Ratio>,
}

/// One variant (and hook, and write mode) of one workload configuration
/// (a sweep's grid point) over its repetitions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(test, derive(schemars::JsonSchema), schemars(deny_unknown_fields))]
pub struct SummaryRow {
    pub workload: String,
    /// Worker processes and threads of the configuration (absent for
    /// `measure` cells).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    pub variant: String,
    pub prefork: PreforkHook,
    /// The lifecycle policy (absent for `none`).
    #[serde(default, skip_serializing_if = "Lifecycle::is_none")]
    pub lifecycle: Lifecycle,
    /// Whether requests wrote into the master's static objects.
    pub app_writes: bool,
    /// Repetitions that finished.
    pub ok: usize,
    pub failed: usize,
    /// Metric key (see [`MetricId`]) → statistics.
    pub metrics: BTreeMap<String, SummaryMetric>,
    /// In a merged document: the machine shape (index in its `machines`)
    /// the row's repetitions ran on; a row never pools two shapes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<u32>,
}

impl SummaryRow {
    /// The statistics of metric `id`, when any repetition had a value.
    pub fn metric(&self, id: MetricId) -> Option<&SummaryMetric> {
        self.metrics.get(id.key())
    }

    /// The median of metric `id` over the repetitions.
    pub fn median(&self, id: MetricId) -> Option<f64> {
        self.metric(id).map(|m| m.stat.median)
    }
}
