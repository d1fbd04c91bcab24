//! [`RunOptions`], and [`RunControl`]: what outlives one run: the process table, Ctrl-C, which stage runs as
//! which job, and (for `mlp watch`) the open store and the workspace lock.

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};

use mlp_plan::ExecutorKind;

use crate::exec::{self, ProcessTable};
use crate::lock::{self, LockError};
use crate::store::{SledStore, StoreError};
use crate::workspace::Workspace;

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

/// The processes of a run, and a way to stop one stage while the others go on.
#[derive(Debug)]
pub struct RunControl {
    pub table: ProcessTable,
    /// Set by Ctrl-C (the handler also cancels every process).
    pub interrupted: Arc<AtomicBool>,
    running: Mutex<HashMap<String, u64>>,
    /// Keep the store open between runs (`mlp watch`): sled does not give back all it
    /// allocates when a database is closed, and reopening races its flusher for the lock.
    keep_store: bool,
    store: Mutex<Option<Arc<SledStore>>>,
    /// The workspace lock, held for the control's whole life (`mlp watch`).
    lock: Mutex<Option<lock::WorkspaceLock>>,
}

impl RunControl {
    /// A control with the process's Ctrl-C handler (installed once per process).
    pub fn new() -> Arc<RunControl> {
        Self::make(false)
    }

    /// Take the workspace lock for as long as this control lives: its runs do not take
    /// it again, and other mlp commands see who holds the workspace.
    pub fn hold_lock(&self, ws: &Workspace, what: &str) -> Result<(), LockError> {
        ws.create()?;
        let l = lock::acquire(&ws.dir, what, false)?;
        *self.lock.lock().unwrap_or_else(|p| p.into_inner()) = Some(l);
        Ok(())
    }

    pub(crate) fn holds_lock(&self) -> bool {
        self.lock.lock().map(|l| l.is_some()).unwrap_or(false)
    }

    /// A control for many runs in one process: the store stays open between them.
    pub fn long_lived() -> Arc<RunControl> {
        Self::make(true)
    }

    pub(crate) fn store(&self, ws: &Workspace) -> Result<Arc<SledStore>, StoreError> {
        let mut slot = self.store.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = slot.as_ref() {
            return Ok(Arc::clone(s));
        }
        let s = Arc::new(ws.open_store()?);
        if self.keep_store {
            *slot = Some(Arc::clone(&s));
        }
        Ok(s)
    }

    fn make(keep_store: bool) -> Arc<RunControl> {
        let table = ProcessTable::new();
        let interrupted = exec::install_interrupt_handler(&table)
            .unwrap_or_else(|_| Arc::new(AtomicBool::new(false)));
        Arc::new(RunControl {
            table,
            interrupted,
            running: Mutex::new(HashMap::new()),
            keep_store,
            store: Mutex::new(None),
            lock: Mutex::new(None),
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
