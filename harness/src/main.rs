//! allocbench: measure allocators and their settings on preforking server
//! workloads. A thin pipeline: parse arguments → plans → run → export (the
//! commands are in the library's `commands` module).

// One executable carries glibc, jemalloc and mimalloc; a worker process picks
// one at its first allocation from ALLOCBENCH_ALLOCATOR (see the
// allocbench-allocators crate). The harness itself runs on libc malloc.
#[global_allocator]
static GLOBAL: allocbench_allocators::DispatchAlloc = allocbench_allocators::DispatchAlloc;

use allocbench::cli::{Cli, Command};
use allocbench::commands;
use allocbench::error::UsageError;
use allocbench::exec::worker;
use clap::Parser;

fn main() {
    let cli = Cli::parse();
    if let Command::Worker(args) = &cli.command {
        std::process::exit(worker::main(args));
    }
    if let Command::Watchdog = &cli.command {
        std::process::exit(allocbench::external::watchdog::main());
    }
    let code = match commands::run(cli) {
        Ok(code) => code,
        Err(e) => {
            allocbench::error::note(format_args!("Error: {e:#}"));
            if e.downcast_ref::<UsageError>().is_some() {
                2
            } else {
                1
            }
        }
    };
    std::process::exit(code);
}
