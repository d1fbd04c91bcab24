//! `mlp`: the command line.

mod cli;
mod commands;
mod progress;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
