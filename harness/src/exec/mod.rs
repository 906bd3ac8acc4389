//! Running cells: the runner (cells in order, output after each), one
//! cell's processes and protocol, the worker process, and interrupts.

pub mod cell;
pub mod interrupt;
pub mod runner;
pub mod worker;
