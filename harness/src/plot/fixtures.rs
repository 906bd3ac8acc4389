//! Cells and documents for the tests of the charts.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::results::cow::CowSample;
use crate::results::{
    CellResult, Document, Mem, Metrics, PhaseSample, ProcessRole, ProcessSample, Timeline,
    TimelinePhase,
};
use allocbench_workloads::WorkloadSpec;

const M: u64 = 1 << 20;

fn mem(mib: u64) -> Mem {
    Mem {
        pss: mib * M + M,
        pss_anon: mib * M,
        rss: mib * M + 2 * M,
        uss: mib * M,
        anonymous: mib * M,
        ..Mem::default()
    }
}

fn procs(master: u64, workers: &[u64]) -> Vec<ProcessSample> {
    let mut out = vec![ProcessSample {
        pid: 100,
        role: ProcessRole::Master,
        index: None,
        mem: Some(mem(master)),
        missed: None,
        cow: None,
        cow_missed: None,
    }];
    for (i, &w) in workers.iter().enumerate() {
        out.push(ProcessSample {
            pid: 101 + i as i32,
            role: ProcessRole::Worker,
            index: Some(i as u32),
            mem: Some(mem(w)),
            missed: None,
            cow: Some(CowSample {
                cow_copied: w * M / 4,
                ..CowSample::default()
            }),
            cow_missed: None,
        });
    }
    out
}

/// A finished cell of two workers: phases, a 10 Hz timeline, metrics.
pub(super) fn cell(variant: &str, scale: u64) -> CellResult {
    // (boundary, t_ms, requests, master MiB, workers' MiB)
    let bounds: [(&str, f64, u64, u64, &[u64]); 8] = [
        ("started", 5.0, 0, 1, &[]),
        ("preloaded", 50.0, 0, 20, &[]),
        ("forked", 60.0, 0, 10, &[2, 2]),
        ("steady", 1000.0, 4000, 10, &[30 * scale, 32 * scale]),
        ("drained", 1010.0, 4000, 10, &[25 * scale, 26 * scale]),
        ("idle+0s", 1012.0, 4000, 10, &[25 * scale, 26 * scale]),
        ("idle+1s", 2010.0, 4000, 10, &[20 * scale, 21 * scale]),
        ("trimmed", 2050.0, 4000, 10, &[5, 6]),
    ];
    let phases: Vec<PhaseSample> = bounds
        .iter()
        .map(|&(name, t_ms, requests, master, workers)| {
            let processes = procs(master, workers);
            let mut tree = Mem::default();
            for p in &processes {
                tree.add(p.mem.as_ref().unwrap());
            }
            PhaseSample {
                requests,
                name: name.parse().unwrap(),
                t_ms,
                tree,
                processes,
            }
        })
        .collect();
    let mut timeline = Timeline {
        sample_hz: 10.0,
        ..Timeline::default()
    };
    for k in 0..22 {
        let t = k as f64 * 100.0;
        let next = bounds.iter().find(|b| b.1 >= t);
        let phase = match next {
            Some(b) if b.0.starts_with("idle") => TimelinePhase::Idle,
            Some(b) => b.0.parse().unwrap(),
            None => TimelinePhase::Exit,
        };
        let serving = (t - 60.0).clamp(0.0, 940.0) / 940.0;
        let requests = (serving * 4000.0) as u64;
        let w = 2 + (serving * 28.0) as u64 * scale;
        let processes = if t < 60.0 {
            procs(10, &[])
        } else {
            procs(10, &[w, w + 1])
        };
        let mut tree = Mem::default();
        for p in &processes {
            tree.add(p.mem.as_ref().unwrap());
        }
        timeline.push(t, phase, requests, &tree, &processes, true);
        timeline.live_bytes.push(requests * 1000);
    }
    let share = |v: &[f64]| -> BTreeMap<String, f64> {
        ["drained", "idle+0s", "idle+1s", "trimmed"]
            .iter()
            .zip(v)
            .map(|(k, v)| (k.to_string(), *v))
            .collect()
    };
    let metrics = Metrics {
        returned: share(&[0.2, 0.2, 0.4, 0.9]),
        returned_lazyfree: share(&[0.1, 0.1, 0.05, 0.0]),
        growth_verdict: Some(crate::results::GrowthVerdict::Plateau),
        growth_bytes_per_1k_requests: Some(2048.0),
        ..Metrics::default()
    };
    let server = WorkloadSpec::server();
    CellResult {
        phases,
        timeline,
        spec: Some(server.clone()),
        wall_ms: 2100.0,
        ..crate::results::test_cell(
            variant,
            server.processes,
            server.threads,
            0,
            Mem::default(),
            metrics,
        )
    }
}

pub(super) fn document(cells: Vec<CellResult>) -> Document {
    Document {
        allocbench_version: "test".into(),
        format_version: crate::results::FORMAT_VERSION,
        command: Vec::new(),
        environment: Default::default(),
        cells,
        summary: Vec::new(),
        harness: Default::default(),
        fits: Vec::new(),
        unfitted: Vec::new(),
        shard: None,
        planned_cells: None,
        machines: Vec::new(),
    }
}

pub(super) fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("allocbench-plot-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

/// Text as the SVG writes it.
pub(super) fn escaped(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

pub(super) fn file_names(paths: &[PathBuf]) -> Vec<String> {
    paths
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect()
}
