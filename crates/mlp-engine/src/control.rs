//! [`RunOptions`], and [`RunControl`]: what outlives one run: the process table, Ctrl-C, which stage runs as
//! which job, and (for `mlp watch`) how each run takes the workspace ([`Mode`]).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use mlp_plan::ExecutorKind;

use crate::exec::{self, ProcessTable};

#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Run these stages and what they need (empty: all).
    pub targets: Vec<String>,
    /// With targets: also everything downstream of them.
    pub downstream: bool,
    pub jobs: usize,
    pub keep_going: bool,
    pub dry_run: bool,
    /// Run these even when they are up to date.
    pub force: Vec<String>,
    /// Stream stage output live.
    pub verbose: bool,
    /// Wait for another run of this workspace to finish instead of failing.
    pub wait: bool,
    /// A dry run: how long to wait for a command holding the workspace (`None`:
    /// [`crate::lock::READ_WAIT`]).
    pub read_wait: Option<std::time::Duration>,
    /// The `--set` overrides the plan was made with (recorded, and keyed in the snapshot).
    pub overrides: Vec<(String, String)>,
    /// The pipeline file, workspace-relative (the snapshot is only valid for it).
    pub pipeline_file: String,
    /// Shared across runs of one process (`mlp watch`): processes, Ctrl-C, which stage
    /// runs as which job. `None`: the run makes its own.
    pub control: Option<Arc<RunControl>>,
    /// `--executor`: where the stages that do not name their own executor run (`None`: as
    /// the pipeline says).
    pub executor: Option<ExecutorKind>,
    /// `--pull`: a stale stage that misses the local run-cache asks this remote's
    /// run-cache before it runs.
    pub remote: Option<Arc<dyn crate::remote::RemoteCache>>,
    /// `mlp pull`: restore from the caches only; a stage that would run is skipped.
    pub pull_only: bool,
}

/// How the runs of a [`RunControl`] take the workspace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// One run (`mlp run`): take the lock at once or fail (or wait, with `--wait`).
    Once,
    /// Many runs of `mlp watch`: each run waits for the workspace (until Ctrl-C), holds
    /// the lock and the store only while it runs, and lets both go when it ends, so
    /// that other commands can read the store while the watcher idles.
    Watch,
}

/// The processes of a run, and a way to stop one stage while the others go on.
#[derive(Debug)]
pub struct RunControl {
    pub table: ProcessTable,
    /// Set by Ctrl-C (the handler also cancels every process).
    pub interrupted: Arc<AtomicBool>,
    running: Mutex<HashMap<String, u64>>,
    pub mode: Mode,
    /// [`Mode::Watch`]: a run still waiting for the workspace gives up when this is set
    /// (the watch is ending: Ctrl-C or `--timeout`); a run already going is not touched.
    pub give_up: AtomicBool,
}

impl RunControl {
    /// A control with the process's Ctrl-C handler (installed once per process).
    pub fn new() -> Arc<RunControl> {
        Self::make(Mode::Once)
    }

    /// A control for the runs of `mlp watch` (see [`Mode::Watch`]).
    pub fn watching() -> Arc<RunControl> {
        Self::make(Mode::Watch)
    }

    fn make(mode: Mode) -> Arc<RunControl> {
        let table = ProcessTable::new();
        let interrupted = exec::install_interrupt_handler(&table)
            .unwrap_or_else(|_| Arc::new(AtomicBool::new(false)));
        Arc::new(RunControl {
            table,
            interrupted,
            running: Mutex::new(HashMap::new()),
            mode,
            give_up: AtomicBool::new(false),
        })
    }

    pub(crate) fn started(&self, stage: &str, job: u64) {
        if let Ok(mut m) = self.running.lock() {
            m.insert(stage.to_string(), job);
        }
    }

    pub(crate) fn ended(&self, stage: &str) {
        if let Ok(mut m) = self.running.lock() {
            m.remove(stage);
        }
    }

    /// The stages whose command is running now.
    pub fn running_stages(&self) -> Vec<String> {
        self.running
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Stop one stage's process group (it ends as interrupted); false if it is not running.
    pub fn cancel_stage(&self, stage: &str) -> bool {
        let job = self.running.lock().ok().and_then(|m| m.get(stage).copied());
        match job {
            Some(id) => {
                crate::jobs::cancel(id);
                self.table.cancel(id);
                true
            }
            None => false,
        }
    }
}
