//! What the timeline sampler costs the workload it watches, measured within
//! one run: `allocbench run --sample-toggle W` turns the sampler's timer off
//! and on in windows of W seconds while the cell serves (on, off, off, on,
//! …) and records the requests served in each window. Each group of four
//! windows (a quad: on, off, off, on) gives one estimate of the change in
//! throughput, on against off; drift of the machine's speed that is steady
//! over a quad cancels. The first quad is the workers' warm-up (caches
//! filling) and is left out.
//!
//! For each variant the benchmark first runs one cell at the preset's sizes
//! with the sampler off to learn its rate, then sizes `--requests` so that
//! serving takes about `--seconds`, and runs one cell per walk budget.
//! It prints, per variant and budget: the quads, the median and mean change
//! with a 95% confidence interval, and the sampler's own CPU time per second
//! of sampling (and as a share of the machine).
//!
//! ```sh
//! cargo bench -p allocbench --bench sampler
//! cargo bench -p allocbench --bench sampler -- --variants glibc --seconds 120 --budgets 1
//! ```
//!
//! Run it on an otherwise quiet machine: anything else running takes CPU
//! from the windows unevenly.

use std::process::Command;

use allocbench::results::{CellResult, Document, Status, ToggleWindow};

struct Args {
    variants: Vec<String>,
    seconds: f64,
    window: f64,
    budgets: Vec<f64>,
    workload: String,
}

fn parse() -> Args {
    let mut a = Args {
        variants: vec!["glibc".into(), "jemalloc".into()],
        seconds: 120.0,
        window: 1.0,
        budgets: vec![1.0, 100.0],
        workload: "server".into(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || {
            it.next()
                .unwrap_or_else(|| fail(&format!("{flag} needs a value")))
        };
        let number = |s: String| {
            s.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite() && *v > 0.0)
                .unwrap_or_else(|| fail(&format!("not a positive number: {s}")))
        };
        match flag.as_str() {
            // What cargo passes to every benchmark binary.
            "--bench" => {}
            "--variants" => a.variants = value().split(',').map(String::from).collect(),
            "--seconds" => a.seconds = number(value()),
            "--window" => a.window = number(value()),
            "--workload" => a.workload = value(),
            "--budgets" => a.budgets = value().split(',').map(|s| number(s.into())).collect(),
            other => fail(&format!(
                "unknown option {other}; options: --variants V,… --seconds S --window S \
                 --budgets PERCENT,… --workload W"
            )),
        }
    }
    a
}

fn fail(message: &str) -> ! {
    eprintln!("sampler bench: {message}");
    std::process::exit(2)
}

/// Runs one cell and returns its result.
fn run_cell(args: &[String]) -> CellResult {
    let out = std::env::temp_dir().join(format!("allocbench-sampler-{}.json", std::process::id()));
    let status = Command::new(env!("CARGO_BIN_EXE_allocbench"))
        .arg("run")
        .args(args)
        .args(["--idle", "0", "--format", "json", "--output"])
        .arg(&out)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap_or_else(|e| fail(&format!("cannot run allocbench: {e}")));
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    let _ = std::fs::remove_file(&out);
    if !status.success() {
        fail(&format!(
            "allocbench run {} failed: {status}",
            args.join(" ")
        ));
    }
    let doc: Document = serde_json::from_str(&text).unwrap_or_else(|e| fail(&e.to_string()));
    let cell = doc
        .cells
        .into_iter()
        .next()
        .unwrap_or_else(|| fail("the document has no cell"));
    if cell.status != Status::Ok {
        fail(&format!("the cell failed: {:?}", cell.error));
    }
    cell
}

/// Two-sided 95% quantile of Student's t with `df` degrees of freedom.
fn t95(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.71, 4.30, 3.18, 2.78, 2.57, 2.45, 2.36, 2.31, 2.26, 2.23, 2.20, 2.18, 2.16, 2.14, 2.13,
        2.12, 2.11, 2.10, 2.09, 2.09, 2.08, 2.07, 2.07, 2.06, 2.06, 2.06, 2.05, 2.05, 2.05, 2.04,
    ];
    T.get(df.wrapping_sub(1)).copied().unwrap_or(1.96)
}

fn median(v: &[f64]) -> f64 {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn main() {
    let args = parse();
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get()) as f64;
    println!(
        "{:<12} {:>7} {:>5} {:>9} {:>17} {:>13} {:>9} {:>8}",
        "variant", "budget", "quads", "median", "mean ± 95% CI", "sampler CPU", "machine", "walked"
    );
    for variant in &args.variants {
        let base = [
            "--workload".to_string(),
            args.workload.clone(),
            "--variant".into(),
            variant.clone(),
        ];
        // The preset's rate with the sampler off, to size the long cells.
        let mut calibrate = base.to_vec();
        calibrate.extend(["--sample-hz".into(), "0".into()]);
        let cell = run_cell(&calibrate);
        let rps = cell.metrics.as_ref().map_or(0.0, |m| m.throughput_rps);
        let serving = cell.spec.as_ref().map_or(1, |s| s.serving_processes()) as f64;
        let requests = (rps * args.seconds / serving).ceil() as u64;
        for &budget in &args.budgets {
            let mut long = base.to_vec();
            long.extend([
                "--requests".into(),
                requests.to_string(),
                // Serving is one phase: give it room beyond --seconds.
                "--timeout".into(),
                (args.seconds * 3.0 + 600.0).to_string(),
                "--sample-toggle".into(),
                args.window.to_string(),
                "--sample-budget".into(),
                budget.to_string(),
            ]);
            let cell = run_cell(&long);
            let t = &cell.timeline;
            let mut changes = Vec::new();
            let (mut on_ms, mut on_cpu) = (0.0, 0.0);
            let ms = |w: &ToggleWindow| w.end_ms - w.start_ms;
            for quad in t.toggle.chunks_exact(4).skip(1) {
                let rate = |on: bool| {
                    let (r, d) = quad
                        .iter()
                        .filter(|w| w.sampling == on)
                        .fold((0.0, 0.0), |(r, d), w| (r + w.requests as f64, d + ms(w)));
                    r / d
                };
                changes.push(rate(true) / rate(false) - 1.0);
                for w in quad.iter().filter(|w| w.sampling) {
                    on_ms += ms(w);
                    on_cpu += w.sampler_cpu_ms;
                }
            }
            let walked =
                t.walked.iter().filter(|w| **w).count() as f64 / t.walked.len().max(1) as f64;
            let n = changes.len();
            if n < 2 {
                println!(
                    "{variant:<12} {budget:>6}% {n:>5}  too few windows: raise --seconds or lower --window"
                );
                continue;
            }
            let mean = changes.iter().sum::<f64>() / n as f64;
            let sd =
                (changes.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt();
            let half = t95(n - 1) * sd / (n as f64).sqrt();
            let cpu_per_s = on_cpu / (on_ms / 1e3);
            println!(
                "{variant:<12} {budget:>6}% {n:>5} {:>+8.2}% {:>+8.2}% ± {:.2}% {:>8.1} ms/s {:>8.2}% {:>7.0}%",
                median(&changes) * 100.0,
                mean * 100.0,
                half * 100.0,
                cpu_per_s,
                cpu_per_s / 10.0 / cpus,
                walked * 100.0,
            );
        }
    }
    println!(
        "change: requests per second in the sampled windows against the windows between, \
         per quad; sampler CPU: the sampling thread's CPU time per second of sampled \
         window; machine: that as a share of all {cpus} CPUs; walked: timeline points that \
         read smaps_rollup"
    );
}
