//! The comparison table over repetitions: a row per variant with medians,
//! ratios to the baseline with their spread, and the coefficient of
//! variation; and the notes naming the repetitions flagged as outliers.

use super::{baseline_name, ratio_heading, shape, shows_huge, table, with_huge};
use crate::output::markup::Table;
use crate::results::Document;
use crate::results::metric::MetricId;
use crate::results::summary::{SummaryMetric, SummaryRow};

fn median_with_ratio(row: &SummaryRow, id: MetricId) -> String {
    let Some(m) = row.metric(id) else {
        return "—".into();
    };
    let median = id.format(m.stat.median);
    match &m.ratio {
        Some(r) => format!("{median} ({:.2} ± {:.2}×)", r.median, r.mad),
        None => median,
    }
}

fn cv(m: Option<&SummaryMetric>) -> String {
    m.and_then(|m| m.stat.cv)
        .map(|c| format!("{:.1}%", c * 100.0))
        .unwrap_or_else(|| "—".into())
}

/// A column of the table over repetitions.
#[derive(Debug, Clone, Copy)]
enum SummaryColumn {
    /// Repetitions that finished (and failed).
    Runs,
    /// The median, with its ratio to the baseline and the ratio's spread
    /// when `true`.
    Median(MetricId, bool),
    /// The ratio to the baseline alone, with its spread.
    RatioTo(MetricId),
    /// The coefficient of variation over the repetitions.
    Cv(MetricId),
    /// The majority's growth verdict and the median slope.
    Growth,
}

impl SummaryColumn {
    fn heading(self, base: Option<&str>) -> String {
        match self {
            SummaryColumn::Runs => "runs".into(),
            SummaryColumn::Median(id, _) => id.label().into(),
            SummaryColumn::RatioTo(_) => ratio_heading(base),
            SummaryColumn::Cv(_) => "CV".into(),
            SummaryColumn::Growth => MetricId::GrowthBytesPer1kRequests.label().into(),
        }
    }

    fn text(self, r: &SummaryRow) -> String {
        match self {
            SummaryColumn::Runs => {
                if r.failed > 0 {
                    format!("{} ({} failed)", r.ok, r.failed)
                } else {
                    r.ok.to_string()
                }
            }
            SummaryColumn::Median(id, true) => median_with_ratio(r, id),
            SummaryColumn::Median(id, false) => r
                .median(id)
                .map(|v| id.format(v))
                .unwrap_or_else(|| "—".into()),
            SummaryColumn::RatioTo(id) => r
                .metric(id)
                .and_then(|m| m.ratio.as_ref())
                .map(|x| format!("{:.2} ± {:.2}", x.median, x.mad))
                .unwrap_or_else(|| "—".into()),
            SummaryColumn::Cv(id) => cv(r.metric(id)),
            SummaryColumn::Growth => match (
                r.median(MetricId::Growing),
                r.median(MetricId::GrowthBytesPer1kRequests),
            ) {
                (Some(v), Some(slope)) => format!(
                    "{} {}",
                    MetricId::Growing.format(v),
                    MetricId::GrowthBytesPer1kRequests.format(slope)
                ),
                _ => "—".into(),
            },
        }
    }
}

use MetricId as M;
use SummaryColumn as S;

/// The table over repetitions as a terminal shows it by default: the
/// figures that decide, and one ratio per row (memory); it fits 120 columns.
const SUMMARY_COLUMNS: &[SummaryColumn] = &[
    S::Runs,
    S::Median(M::TreePssAnonSteady, false),
    S::RatioTo(M::TreePssAnonSteady),
    S::Cv(M::TreePssAnonSteady),
    S::Median(M::CowCopied, false),
    S::Median(M::ThroughputRps, false),
    S::Median(M::LatencyP99Us, false),
];

/// The table over repetitions of a document with lifecycle policies.
const LIFECYCLE_SUMMARY_COLUMNS: &[SummaryColumn] = &[
    S::Runs,
    S::Median(M::TreePssAnonMean, false),
    S::RatioTo(M::TreePssAnonMean),
    S::Median(M::TreePssAnonPeak, false),
    S::Median(M::Restarts, false),
    S::Median(M::ThroughputRps, false),
    S::Median(M::LatencyP99Us, false),
];

/// The table over repetitions with every column (`--wide`, Markdown).
const WIDE_SUMMARY_COLUMNS: &[SummaryColumn] = &[
    S::Runs,
    S::Median(M::TreePssAnonSteady, true),
    S::Cv(M::TreePssAnonSteady),
    S::Median(M::TreePssAnonTrimmed, true),
    S::Median(M::CowCopied, true),
    S::Median(M::Arenas, false),
    S::Growth,
    S::Median(M::ThroughputRps, true),
    S::Cv(M::ThroughputRps),
    S::Median(M::LatencyP99Us, true),
];

/// One row per variant over its repetitions: medians, ratios to the
/// baseline with their spread (± is the median absolute deviation of the
/// per-repetition ratios), and the coefficient of variation; every column
/// when `wide`.
pub fn summary_table(doc: &Document, wide: bool) -> Table {
    let shape = shape(doc);
    let summary_columns = with_huge(
        if shape.lifecycles {
            LIFECYCLE_SUMMARY_COLUMNS
        } else if wide {
            WIDE_SUMMARY_COLUMNS
        } else {
            SUMMARY_COLUMNS
        },
        shows_huge(doc),
        |c| {
            // After the memory figure's ratio and its CV, which belongs
            // to the column before it.
            matches!(
                c,
                S::Median(M::TreePssAnonSteady | M::TreePssAnonMean, _)
                    | S::RatioTo(M::TreePssAnonSteady | M::TreePssAnonMean)
                    | S::Cv(M::TreePssAnonSteady)
            )
        },
        S::Median(M::AnonHugeSteady, false),
    );
    let summary_columns = &summary_columns[..];
    let base = baseline_name(doc);
    let figures = summary_columns
        .iter()
        .map(|c| (c.heading(base.as_deref()), true))
        .collect();
    let mut table = table(&shape, figures);
    for r in &doc.summary {
        let mut row = shape.row(&r.variant, r.prefork, &r.lifecycle, r.app_writes);
        row.extend(summary_columns.iter().map(|c| c.text(r)));
        table.push(row);
    }
    table
}

/// The metrics the summary table shows.
const SHOWN: &[MetricId] = &[
    MetricId::TreePssAnonSteady,
    MetricId::TreePssAnonTrimmed,
    MetricId::CowCopied,
    MetricId::ThroughputRps,
    MetricId::LatencyP99Us,
];

/// Lines naming the repetitions flagged as outliers, per variant and shown
/// metric (the JSON summary has them for every metric).
pub fn outlier_notes(summary: &[SummaryRow]) -> Vec<String> {
    let mut out = Vec::new();
    for r in summary {
        for (name, m) in r
            .metrics
            .iter()
            .filter(|(k, _)| SHOWN.iter().any(|id| id.key() == k.as_str()))
        {
            if !m.stat.outliers.is_empty() {
                let reps: Vec<String> = m.stat.outliers.iter().map(|x| x.to_string()).collect();
                out.push(format!(
                    "{} ({}): {name} of repetition {} is an outlier",
                    r.variant,
                    crate::results::arm(r.prefork, &r.lifecycle),
                    reps.join(", ")
                ));
            }
        }
    }
    out
}
