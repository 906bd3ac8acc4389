//! The `__worker` entry point: the process a cell runs in. It is this same
//! executable, launched under the variant's environment; the dispatching
//! global allocator has already chosen the allocator from it.

use allocbench_workloads::WorkloadSpec;

use crate::cli::WorkerArgs;

pub fn main(args: &WorkerArgs) -> i32 {
    let spec: WorkloadSpec = match serde_json::from_str(&args.spec_json) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("allocbench worker: bad spec: {e}");
            return 2;
        }
    };
    match allocbench_workloads::run_master(&spec, &args.socket) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("allocbench master: {e}");
            1
        }
    }
}
