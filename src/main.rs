//! `mlp`: the command line.

/// `println!` that stops quietly when stdout is closed (`mlp runs | head`) instead of
/// panicking on a broken pipe.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(0);
        }
    }};
}

/// `print!` with the same care.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        if write!(std::io::stdout(), $($t)*).is_err() {
            std::process::exit(0);
        }
    }};
}

/// The syntax tree and the plan are many small allocations: mimalloc makes planning a
/// 10,000-stage pipeline markedly cheaper than glibc's malloc (see bench/plan.sh).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod commands;
mod progress;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
