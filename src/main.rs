//! `mlp`: the command line.
//!
//! `cli` holds the clap types, `commands/` one file per command; `main` maps the command's
//! [`ExitStatus`](exit::ExitStatus) to the process's exit code.

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

/// `eprintln!` for what is neither asked for nor an error (progress, summaries, hints):
/// silent under `-q/--quiet`.
macro_rules! note {
    ($($t:tt)*) => {{
        if !crate::quiet() {
            eprintln!($($t)*);
        }
    }};
}

/// `-q/--quiet` was given: only errors, and what a command prints on stdout.
static QUIET: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

pub(crate) fn quiet() -> bool {
    QUIET.load(std::sync::atomic::Ordering::Relaxed)
}

/// The syntax tree and the plan are many small allocations: mimalloc makes planning a
/// 10,000-stage pipeline markedly cheaper than glibc's malloc (see bench/plan.sh).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod commands;
mod diagnostics;
mod exit;
mod history_view;
mod human;
mod pipeline_file;
mod progress;
mod remote;
mod tracking;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    QUIET.store(cli.quiet, std::sync::atomic::Ordering::Relaxed);
    commands::dispatch(&cli).into()
}
