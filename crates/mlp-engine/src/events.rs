//! What a run reports: each stage's [`Status`], the [`Event`]s a [`Reporter`] hears, the
//! [`RunReport`] at the end, and the [`EngineError`]s that stop a run before it starts.
//! Nothing in the engine prints: the binary turns these into text.

use std::io;

use serde::Serialize;

use crate::lock::LockError;
use crate::store::StoreError;

/// Why a stage failed, for exit codes and tools (the `reason` text says it in words).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FailureKind {
    /// The command exited non-zero, was killed by a signal, or did not write its outputs.
    Command,
    /// A `check` failed.
    Check,
    /// A `gate` failed.
    Gate,
    /// The command ran past its `timeout`.
    Timeout,
    /// Ctrl-C, or `mlp watch` stopped it.
    Interrupted,
    /// An input does not exist (or cannot be read), and no stage makes it.
    MissingInput,
    /// The store or the object cache failed (or no longer has what a `frozen` stage needs).
    Cache,
    /// The command could not be started, or the executor (Slurm) ended it.
    Executor,
}

impl FailureKind {
    /// A `check` or `gate` said no (exit code 3), as opposed to a command failing.
    pub fn is_judgement(self) -> bool {
        matches!(self, FailureKind::Check | FailureKind::Gate)
    }
}

/// How one stage ended in this run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Status {
    /// Up to date: nothing to do.
    Fresh,
    /// Its outputs came back from the run-cache.
    Restored,
    /// It ran and succeeded.
    Ran {
        attempts: u32,
    },
    Failed {
        reason: String,
        kind: FailureKind,
    },
    /// Not run, and not a failure (an upstream stage failed or was skipped).
    Skipped {
        reason: String,
    },
    Interrupted,
    /// `--dry-run`: it would run.
    WouldRun {
        reason: String,
    },
    /// The run stopped (a failure without `--keep-going`, or Ctrl-C) before it.
    NotRun,
}

impl Status {
    pub(crate) fn ok(&self) -> bool {
        matches!(
            self,
            Status::Fresh | Status::Restored | Status::Ran { .. } | Status::WouldRun { .. }
        )
    }

    pub fn label(&self) -> &'static str {
        match self {
            Status::Fresh => "fresh",
            Status::Restored => "restored",
            Status::Ran { .. } => "ran",
            Status::Failed { .. } => "failed",
            Status::Skipped { .. } => "skipped",
            Status::Interrupted => "interrupted",
            Status::WouldRun { .. } => "would run",
            Status::NotRun => "not run",
        }
    }

    pub(crate) fn failed(kind: FailureKind, reason: impl Into<String>) -> Status {
        Status::Failed {
            reason: reason.into(),
            kind,
        }
    }
}

/// What the progress display hears.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Start {
        run: String,
        stages: usize,
    },
    StageStarted {
        stage: String,
        at_ms: u64,
    },
    StageFinished {
        stage: String,
        #[serde(flatten)]
        status: Status,
        started_ms: u64,
        ended_ms: u64,
        log: Option<String>,
        /// Worth knowing beyond the status (a gate with no baseline yet, a fallback used).
        #[serde(skip_serializing_if = "Vec::is_empty", default)]
        notes: Vec<String>,
    },
    /// Something went wrong that does not change the run's result (the snapshot could not
    /// be written: the next run takes the slow path). The binary prints it as a warning.
    Warning {
        message: String,
    },
    Finish {
        run: String,
        ok: bool,
        elapsed_ms: u64,
    },
    /// Another command holds the workspace: this run waits for it (told once).
    Waiting {
        holder: String,
    },
}

pub trait Reporter: Send + Sync {
    fn event(&mut self, e: &Event);
}

/// A run's result.
#[derive(Debug)]
pub struct RunReport {
    pub id: String,
    pub statuses: Vec<(String, Status)>,
    pub interrupted: bool,
    pub nothing_to_do: bool,
}

impl RunReport {
    /// A `check` or `gate` failed (not a command).
    pub fn gate_failed(&self) -> bool {
        self.statuses
            .iter()
            .any(|(_, s)| matches!(s, Status::Failed { kind, .. } if kind.is_judgement()))
    }

    pub fn ok(&self) -> bool {
        !self.interrupted
            && self
                .statuses
                .iter()
                .all(|(_, s)| s.ok() || matches!(s, Status::Skipped { .. }))
    }
}

#[derive(thiserror::Error, Debug)]
pub enum EngineError {
    #[error(transparent)]
    Busy(#[from] LockError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{0}")]
    Usage(String),
    /// A run holds the workspace; the message names it.
    #[error("{0}")]
    InProgress(String),
}

impl EngineError {
    /// Another command holds the workspace.
    pub fn in_use(holder: &str) -> EngineError {
        EngineError::InProgress(format!(
            "this workspace is in use by {holder}; try again when it has finished"
        ))
    }

    /// A stage name that is not in the pipeline, with the closest one as a hint.
    pub(crate) fn no_stage(p: &mlp_plan::Pipeline, name: &str) -> EngineError {
        let hint = mlp_plan::diag::did_you_mean(name, p.stages.iter().map(|s| s.name.as_str()))
            .map(|m| format!("; {m}"))
            .unwrap_or_default();
        EngineError::Usage(format!("no stage `{name}` in pipeline `{}`{hint}", p.name))
    }
}

/// A size as the reports write it (`512 B`, `3.4 KiB`, `1.0 GiB`).
pub fn human_bytes(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < U.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} B")
    } else {
        format!("{v:.1} {}", U[u])
    }
}

/// A duration as the reports write it (`850 ms`, `2.5 s`, `3m07s`, `1h05m`).
pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}
