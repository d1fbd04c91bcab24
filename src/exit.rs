//! How `mlp` ends: the exit status of every command, and the one place that prints an
//! error as `mlp: {message}`.
//!
//! The codes are documented in the book (`book/src/cli.md`, "Exit codes"); `tests/book.rs`
//! reads this enum to check that they agree.

use std::fmt::Display;
use std::process::ExitCode;

use mlp_engine::lock::LockError;
use mlp_engine::run::EngineError;

/// The exit status of a command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum ExitStatus {
    /// Success.
    Success = 0,
    /// A stage failed, or the pipeline has errors.
    Failure = 1,
    /// Bad command line (clap's own code).
    Usage = 2,
    /// A `check` or `gate` failed.
    CheckFailed = 3,
    /// The workspace is busy: another `mlp run` holds it.
    Busy = 4,
    /// `mlp fmt --check`: a file is not formatted.
    Unformatted = 5,
    /// Interrupted (Ctrl-C, SIGTERM, SIGHUP); also how `mlp watch` ends.
    Interrupted = 130,
}

impl ExitStatus {
    const ALL: [ExitStatus; 7] = [
        ExitStatus::Success,
        ExitStatus::Failure,
        ExitStatus::Usage,
        ExitStatus::CheckFailed,
        ExitStatus::Busy,
        ExitStatus::Unformatted,
        ExitStatus::Interrupted,
    ];

    /// The status a numeric code stands for (`mlp watch` returns a code); any other code
    /// is a failure.
    pub fn from_code(code: u8) -> ExitStatus {
        Self::ALL
            .into_iter()
            .find(|s| *s as u8 == code)
            .unwrap_or(ExitStatus::Failure)
    }
}

impl From<ExitStatus> for ExitCode {
    fn from(s: ExitStatus) -> ExitCode {
        ExitCode::from(s as u8)
    }
}

impl ExitStatus {
    /// Print `message` as an error (see [`error`]) and end with this status.
    pub fn error(self, message: impl Display) -> ExitStatus {
        error(message);
        self
    }
}

/// Print an error of the binary or the engine on stderr: `mlp: {message}`.
pub fn error(message: impl Display) {
    print_error(None, message);
}

/// Print an error that one command reports and goes on after (a file `mlp fmt` cannot
/// read, a run `mlp watch` could not start): `mlp {command}: {message}`.
pub fn command_error(command: &str, message: impl Display) {
    print_error(Some(command), message);
}

/// Print a warning that does not change how the command ends: `mlp: warning: {message}`.
pub fn warning(message: impl Display) {
    print_error(None, format!("warning: {message}"));
}

/// The one place the binary's `mlp: ` prefix is written.
fn print_error(command: Option<&str>, message: impl Display) {
    match command {
        None => eprintln!("mlp: {message}"),
        Some(c) => eprintln!("mlp {c}: {message}"),
    }
}

/// Print an engine error and choose the exit status its kind calls for.
pub fn engine_error(e: EngineError) -> ExitStatus {
    let status = match &e {
        // A lock file that cannot be written (a full disk) is a failure, not a busy workspace.
        EngineError::Busy(LockError::Held { .. }) | EngineError::InProgress(_) => ExitStatus::Busy,
        EngineError::Usage(_) => ExitStatus::Usage,
        _ => ExitStatus::Failure,
    };
    status.error(e)
}
