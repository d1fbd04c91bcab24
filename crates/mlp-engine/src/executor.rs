//! Where a stage's command runs: the [`Executor`] trait, and [`Local`] processes. Slurm
//! implements it in `slurm.rs`; the next executors plug in here.

use std::io;
use std::sync::Arc;

use crate::exec::{self, Finished, Job, ProcessTable};

/// Runs one attempt of a stage's command (blocking the worker thread until it ended).
pub trait Executor: Send + Sync + std::fmt::Debug {
    /// Run one attempt of `job`; `id` names it in `table` (to cancel it).
    fn run(&self, job: &Job, id: u64, table: &ProcessTable) -> io::Result<Finished>;

    /// A job that an earlier `mlp run` submitted for this very command may still be
    /// writing the outputs: they must not be removed before it is attached to.
    fn keeps_outputs(&self, _command: &str) -> bool {
        false
    }
}

/// A child process here ([`exec::run`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Local;

impl Executor for Local {
    fn run(&self, job: &Job, id: u64, table: &ProcessTable) -> io::Result<Finished> {
        exec::run(job, id, table)
    }
}

/// The one local executor a run shares among its stages (no allocation per stage).
pub fn local() -> Arc<dyn Executor> {
    Arc::new(Local)
}
