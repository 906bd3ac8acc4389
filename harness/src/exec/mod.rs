//! Running cells: the runner (cells in order, output after each), one
//! cell's processes and protocol, the worker process, the containment of
//! every process a run starts, and interrupts.

pub mod cell;
pub mod contain;
pub mod interrupt;
pub mod runner;
pub mod worker;
