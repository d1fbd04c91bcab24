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

mod cli;
mod commands;
mod progress;

use std::process::ExitCode;

fn main() -> ExitCode {
    cli::main()
}
