//! `mlp run`: decide what is stale, restore what the run-cache has, run the rest.
//!
//! One coordinator (the calling thread) owns all state and is the only writer of the
//! store. It keeps a ready queue ordered by critical path (recorded durations) and hands
//! stages to a dedicated pool of `-j` worker threads (child processes block a thread, so
//! they never run on rayon's pool, which hashing uses). Resource tokens (`cpu`, `mem`,
//! `gpu`) are never oversubscribed. Workers send results back over a channel.

use std::collections::{BinaryHeap, HashMap};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlp_plan::{DepKind, ExecutorKind, InputKind, Pipeline, Stage, StageId};
use rayon::prelude::*;
use serde::Serialize;

use crate::cache::ObjectCache;
use crate::exec::{self, Exit, Finished, Job, ProcessTable};
use crate::hash::{Content, Digest, Hasher, StatCache, hex, parse_hex};
use crate::identity::{self, StageKey};
use crate::lock::{self, LockError};
use crate::slurm::{self, Runner};
use crate::snapshot::{self, Entry, Snapshot, StageSnap};
use crate::store::{Outcome, OutputRecord, SledStore, StageRecord, Store, StoreError};
use crate::workspace::{Workspace, ms_of, now_ms};

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

    fn holds_lock(&self) -> bool {
        self.lock.lock().map(|l| l.is_some()).unwrap_or(false)
    }

    /// A control for many runs in one process: the store stays open between them.
    pub fn long_lived() -> Arc<RunControl> {
        Self::make(true)
    }

    fn store(&self, ws: &Workspace) -> Result<Arc<SledStore>, StoreError> {
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

    fn started(&self, stage: &str, job: u64) {
        if let Ok(mut m) = self.running.lock() {
            m.insert(stage.to_string(), job);
        }
    }

    fn ended(&self, stage: &str) {
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
                slurm::cancel(id);
                self.table.cancel(id);
                true
            }
            None => false,
        }
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
    fn ok(&self) -> bool {
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
    Finish {
        run: String,
        ok: bool,
        elapsed_ms: u64,
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
        self.statuses.iter().any(|(_, s)| matches!(s, Status::Failed { reason } if reason.starts_with("check failed") || reason.starts_with("gate failed")))
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

/// The fast no-op: when the snapshot says every stage is up to date and nothing it lists
/// was touched, answer without parsing or opening the store.
pub fn nothing_to_do(ws: &Workspace, pipeline_file: &str) -> bool {
    let Some(snap) = Snapshot::read(&ws.snapshot_path()) else {
        return false;
    };
    if !snap.overrides.is_empty()
        || snap.pipeline_file != pipeline_file
        || snap.stages.len() != snap.total_stages
    {
        return false;
    }
    snap.check(&ws.root, now_ms()).all_fresh()
}

/// Tokens the scheduler hands out.
#[derive(Clone, Copy, Debug)]
struct Tokens {
    cpu: u64,
    mem: u64,
    gpu: u64,
}

fn machine_tokens(jobs: usize) -> Tokens {
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(u64::MAX, |kb| kb * 1024);
    let gpu = std::env::var("MLP_GPUS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| {
            std::fs::read_dir("/dev")
                .map(|d| {
                    d.filter_map(Result::ok)
                        .filter(|e| {
                            let n = e.file_name();
                            let n = n.to_string_lossy();
                            n.strip_prefix("nvidia").is_some_and(|r| {
                                !r.is_empty() && r.chars().all(|c| c.is_ascii_digit())
                            })
                        })
                        .count() as u64
                })
                .unwrap_or(0)
        });
    Tokens {
        cpu: jobs as u64,
        mem,
        gpu,
    }
}

/// What a stage needs from the tokens. A Slurm job takes one job slot here, and the
/// cluster's resources there.
fn needs(s: &Stage, total: Tokens, opts: &RunOptions) -> Tokens {
    if slurm::kind_of(s, opts.executor) == ExecutorKind::Slurm {
        return Tokens {
            cpu: 1,
            mem: 0,
            gpu: 0,
        };
    }
    Tokens {
        cpu: u64::from(s.resources.cpu.max(1)).min(total.cpu),
        mem: s.resources.mem_bytes,
        gpu: u64::from(s.resources.gpu),
    }
}

/// What the coordinator decided for a stage before running anything.
enum Decision {
    Fresh {
        watch: Option<Watch>,
    },
    Restored {
        record: StageRecord,
        watch: Watch,
    },
    Run {
        key: StageKey,
        reason: String,
        watch: Watch,
    },
    Skip(String),
    Fail(String),
}

/// Paths a stage was up to date with, for the next snapshot.
#[derive(Default, Clone)]
struct Watch {
    entries: Vec<Entry>,
    identity: Digest,
}

/// What a worker sends back.
struct Done {
    stage: StageId,
    finished: Result<Finished, String>,
    attempts: u32,
    used_fallback: bool,
    outputs: Result<Vec<(OutputRecord, Vec<Entry>)>, String>,
    /// Each metrics file parsed (`name → content`), when the outputs are all there.
    metrics: Result<serde_json::Value, String>,
    log: PathBuf,
}

struct Task {
    stage: StageId,
    name: String,
    job: Job,
    retry: u32,
    fallback: Option<String>,
    /// Where the command runs.
    runner: Runner,
    outputs: Vec<String>,
    /// `(name, path)` of each metrics file.
    metrics: Vec<(String, String)>,
}

/// The shape of a stage's key (everything but input contents), for snapshot validity.
pub fn shape(stage: &Stage) -> Digest {
    let mut h = blake3::Hasher::new();
    let v = serde_json::json!({
        "format": identity::CACHE_FORMAT,
        "command": stage.command,
        "inputs": stage.inputs.iter().map(|i| (&i.path, i.kind == InputKind::Glob)).collect::<Vec<_>>(),
        "params": stage.params.iter().map(|(k, v)| (k, v.to_json())).collect::<Vec<_>>(),
        "env": stage.env,
        "outputs": stage.outputs.iter().map(|o| &o.path).collect::<Vec<_>>(),
                "every": stage.every_ms,
        "checks": checks_digest(stage),
        "always": stage.always,
    });
    h.update(v.to_string().as_bytes());
    *h.finalize().as_bytes()
}

fn content_of(o: &OutputRecord) -> Content {
    let digest = parse_hex(&o.digest).unwrap_or([0; 32]);
    if o.digest == "missing" {
        Content::Missing
    } else if o.is_dir {
        Content::Dir {
            digest,
            files: 0,
            size: o.size,
        }
    } else {
        Content::File {
            digest,
            size: o.size,
        }
    }
}

fn record_of(path: &str, c: &Content) -> OutputRecord {
    OutputRecord {
        path: path.to_string(),
        digest: c.digest().map_or_else(|| "missing".to_string(), hex),
        size: c.size(),
        is_dir: c.is_dir(),
    }
}

/// The stages to consider: the targets and what they need (and, with `downstream`,
/// what needs them).
pub fn selection(
    p: &Pipeline,
    targets: &[String],
    downstream: bool,
) -> Result<Vec<bool>, EngineError> {
    let n = p.stages.len();
    if targets.is_empty() {
        return Ok(vec![true; n]);
    }
    let mut sel = vec![false; n];
    let mut stack = Vec::new();
    for t in targets {
        let id = p.stage(t).ok_or_else(|| {
            let names: Vec<&str> = p.stages.iter().map(|s| s.name.as_str()).collect();
            let hint = mlp_plan::diag::did_you_mean(t, names.iter().copied())
                .map(|m| format!("; {m}"))
                .unwrap_or_default();
            EngineError::Usage(format!(
                "mlp: no stage `{t}` in pipeline `{}`{hint}",
                p.name
            ))
        })?;
        stack.push(id);
    }
    let roots = stack.clone();
    while let Some(i) = stack.pop() {
        if !sel[i] {
            sel[i] = true;
            stack.extend(p.stages[i].deps.iter().map(|d| d.stage));
        }
    }
    if downstream {
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        for (i, s) in p.stages.iter().enumerate() {
            for d in &s.deps {
                dependents[d.stage].push(i);
            }
        }
        let mut stack = roots;
        let mut seen = vec![false; n];
        while let Some(i) = stack.pop() {
            if !seen[i] {
                seen[i] = true;
                stack.extend(dependents[i].iter().copied());
            }
        }
        // Everything downstream, and what those need.
        let mut stack: Vec<usize> = (0..n).filter(|&i| seen[i]).collect();
        while let Some(i) = stack.pop() {
            if !sel[i] {
                sel[i] = true;
            }
            for d in &p.stages[i].deps {
                if !sel[d.stage] {
                    stack.push(d.stage);
                }
            }
        }
    }
    Ok(sel)
}

/// Run the pipeline.
pub fn run(
    ws: &Workspace,
    pipeline: &Pipeline,
    opts: &RunOptions,
    reporter: &mut dyn Reporter,
) -> Result<RunReport, EngineError> {
    ws.create()?;
    let holds = opts.control.as_ref().is_some_and(|c| c.holds_lock());
    let _lock = if opts.dry_run {
        // A dry run writes nothing, but it reads the store, which a run holds.
        if !holds && let Some(holder) = lock::holder(&ws.dir) {
            return Err(EngineError::InProgress(format!(
                "mlp: this workspace is in use by {holder}; try again when it has finished"
            )));
        }
        None
    } else if holds {
        None
    } else {
        Some(lock::acquire(&ws.dir, "mlp run", opts.wait)?)
    };
    for f in &opts.force {
        if pipeline.stage(f).is_none() {
            return Err(selection(pipeline, std::slice::from_ref(f), false)
                .err()
                .unwrap_or_else(|| EngineError::Usage(f.clone())));
        }
    }
    let selected = selection(pipeline, &opts.targets, opts.downstream)?;
    let jobs = opts.jobs.max(1);
    let total = machine_tokens(jobs);
    for (i, s) in pipeline.stages.iter().enumerate() {
        if !selected[i] {
            continue;
        }
        let need = needs(s, total, opts);
        if need.mem > total.mem {
            return Err(EngineError::Usage(format!(
                "mlp: stage `{}` asks for {} of memory, but this machine has {}; lower its `resources mem`",
                s.name,
                human_bytes(need.mem),
                human_bytes(total.mem)
            )));
        }
        if need.gpu > total.gpu {
            return Err(EngineError::Usage(format!(
                "mlp: stage `{}` asks for {} GPU(s), but {} {} available; set MLP_GPUS if the count is wrong",
                s.name,
                need.gpu,
                total.gpu,
                if total.gpu == 1 { "is" } else { "are" }
            )));
        }
    }

    let old_snap = Snapshot::read(&ws.snapshot_path())
        .filter(|s| s.pipeline_file == opts.pipeline_file && s.overrides == opts.overrides);
    let check = old_snap.as_ref().map(|s| s.check(&ws.root, now_ms()));

    let control = opts.control.clone().unwrap_or_else(RunControl::new);
    let store = control.store(ws)?;
    let store: &SledStore = &store;
    let run_id = next_run_id(store)?;
    let stat_cache = Arc::new(StatCache::new(store.stat_entries()?));
    let cache = ObjectCache::open(&ws.cache_path())?.with_workspace(&ws.root);
    let interrupted = Arc::clone(&control.interrupted);
    let started = Instant::now();
    let started_ms = now_ms();
    let n_selected = selected.iter().filter(|s| **s).count();
    reporter.event(&Event::Start {
        run: run_id.clone(),
        stages: n_selected,
    });

    let force: Vec<bool> = pipeline
        .stages
        .iter()
        .map(|s| opts.force.contains(&s.name))
        .collect();
    let shapes: Vec<Digest> = pipeline.stages.par_iter().map(shape).collect();

    let mut c = Coordinator {
        ws,
        p: pipeline,
        opts,
        store,
        cache: &cache,
        stat_cache: &stat_cache,
        run_id: run_id.clone(),
        selected,
        force,
        shapes,
        old_snap: old_snap.as_ref(),
        snap_fresh: check.map(|c| c.fresh).unwrap_or_default(),
        status: vec![None; pipeline.stages.len()],
        watch: vec![None; pipeline.stages.len()],
        times: vec![(0, 0); pipeline.stages.len()],
        keys: HashMap::new(),
        stopping: false,
        interrupted: false,
        last_done: 0,
        reporter,
        records: vec![None; pipeline.stages.len()],
        notes: vec![Vec::new(); pipeline.stages.len()],
        baseline: baseline(store)?,
        promote: false,
        pending: Vec::new(),
    };
    c.schedule(jobs, total, &control, &interrupted)?;

    // The stat cache, the snapshot and the run record.
    let was_interrupted = interrupted.load(Ordering::SeqCst);
    if !opts.dry_run {
        store.put_stats(&stat_cache.dirty())?;
        store.remove_stats(&stat_cache.removed())?;
        let snap = c.snapshot(started_ms);
        if let Err(e) = snap.write(&ws.snapshot_path()) {
            eprintln!(
                "mlp: warning: cannot write {}: {e}",
                ws.snapshot_path().display()
            );
        }
    }
    let statuses: Vec<(String, Status)> = pipeline
        .order
        .iter()
        .filter(|&&i| c.selected[i])
        .map(|&i| {
            (
                pipeline.stages[i].name.clone(),
                c.status[i].clone().unwrap_or(Status::NotRun),
            )
        })
        .collect();
    let nothing_to_do = statuses.iter().all(|(_, s)| *s == Status::Fresh);
    let report = RunReport {
        id: run_id.clone(),
        statuses,
        interrupted: was_interrupted,
        nothing_to_do,
    };
    if !opts.dry_run && !nothing_to_do {
        let rec = c.run_record(started_ms, report.ok(), was_interrupted)?;
        store.put_run(&run_id, &rec)?;
        if c.promote && report.ok() {
            store.put_meta(BASELINE, &run_id)?;
        }
        store.flush()?;
    }
    c.reporter.event(&Event::Finish {
        run: run_id,
        ok: report.ok(),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(0),
    });
    Ok(report)
}

/// The store's `meta` key naming the promoted run.
pub const BASELINE: &str = "baseline";

/// The promoted run, if any: its id and record.
fn baseline(store: &SledStore) -> Result<Option<(String, serde_json::Value)>, StoreError> {
    let Some(id) = store.meta(BASELINE)? else {
        return Ok(None);
    };
    Ok(store.run(&id)?.map(|r| (id, r)))
}

/// The commit checked out in the workspace's git repository, and whether the work tree
/// differs from it (`None` outside git).
fn git_state(root: &Path) -> Option<(String, bool)> {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    let commit = git(&["rev-parse", "HEAD"])?.trim().to_string();
    let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.trim().is_empty());
    Some((commit, dirty))
}

fn human_bytes(b: u64) -> String {
    const U: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < U.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    format!("{v:.1} {}", U[u])
}

/// Run ids: a counter per workspace, short and typeable (`1`, `2`, ...), stored
/// zero-padded so that they sort.
fn next_run_id(store: &SledStore) -> Result<String, StoreError> {
    let last = store
        .last_run_id()?
        .and_then(|k| k.trim_start_matches('0').parse::<u64>().ok())
        .unwrap_or(0);
    Ok(format!("{:08}", last + 1))
}

struct Coordinator<'a> {
    ws: &'a Workspace,
    p: &'a Pipeline,
    opts: &'a RunOptions,
    store: &'a SledStore,
    cache: &'a ObjectCache,
    stat_cache: &'a Arc<StatCache>,
    run_id: String,
    selected: Vec<bool>,
    force: Vec<bool>,
    shapes: Vec<Digest>,
    old_snap: Option<&'a Snapshot>,
    snap_fresh: HashMap<String, bool>,
    status: Vec<Option<Status>>,
    watch: Vec<Option<Watch>>,
    times: Vec<(u64, u64)>,
    keys: HashMap<StageId, StageKey>,
    stopping: bool,
    /// Ctrl-C: not even failure handlers start.
    interrupted: bool,
    last_done: StageId,
    reporter: &'a mut dyn Reporter,
    /// The record each stage got in this run (ran, restored, failed).
    records: Vec<Option<StageRecord>>,
    /// Why each stage ended as it did, beyond its status (e.g. a gate with no baseline).
    notes: Vec<Vec<String>>,
    /// The promoted run: its id and record.
    baseline: Option<(String, serde_json::Value)>,
    /// A `promote` stage succeeded in this run.
    promote: bool,
    /// Records of finished stages not yet written (see `write_pending`).
    pending: Vec<StageRecord>,
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
struct Ready {
    priority: u64,
    /// Earlier in the order first among equals.
    order: std::cmp::Reverse<usize>,
    stage: StageId,
}

impl Coordinator<'_> {
    fn schedule(
        &mut self,
        jobs: usize,
        total: Tokens,
        control: &Arc<RunControl>,
        interrupted: &AtomicBool,
    ) -> Result<(), EngineError> {
        let n = self.p.stages.len();
        let mut dependents: Vec<Vec<(StageId, DepKind)>> = vec![Vec::new(); n];
        let mut remaining = vec![0usize; n];
        for (i, s) in self.p.stages.iter().enumerate() {
            if !self.selected[i] {
                continue;
            }
            for d in &s.deps {
                if self.selected[d.stage] {
                    dependents[d.stage].push((i, d.kind));
                    remaining[i] += 1;
                }
            }
        }
        let prio = self.priorities(&dependents);
        let pos: Vec<usize> = {
            let mut v = vec![0; n];
            for (k, &i) in self.p.order.iter().enumerate() {
                v[i] = k;
            }
            v
        };

        // The worker pool.
        let (task_tx, task_rx) = mpsc::channel::<Task>();
        let task_rx = Arc::new(Mutex::new(task_rx));
        let (done_tx, done_rx) = mpsc::channel::<Done>();
        let root = self.ws.root.clone();
        std::thread::scope(|scope| -> Result<(), EngineError> {
            for w in 0..jobs {
                let rx = Arc::clone(&task_rx);
                let tx = done_tx.clone();
                let control = Arc::clone(control);
                let root = root.clone();
                let stat_cache = Arc::clone(self.stat_cache);
                let cache = self.cache.clone();
                std::thread::Builder::new()
                    .name(format!("mlp-worker-{w}"))
                    .spawn_scoped(scope, move || {
                        worker(&rx, &tx, &control, &root, &stat_cache, &cache)
                    })
                    .map_err(EngineError::Io)?;
            }
            drop(done_tx);

            let mut evaluable: Vec<StageId> = self
                .p
                .order
                .iter()
                .copied()
                .filter(|&i| self.selected[i] && remaining[i] == 0)
                .collect();
            let mut ready: BinaryHeap<Ready> = BinaryHeap::new();
            let mut free = total;
            let mut running: HashMap<StageId, Tokens> = HashMap::new();
            let mut next_id: u64 = 0;
            let result = loop {
                if interrupted.load(Ordering::SeqCst) {
                    self.stopping = true;
                    self.interrupted = true;
                }
                // 1. Decide every stage whose upstream is done (in parallel: it hashes).
                if !evaluable.is_empty() {
                    let batch = std::mem::take(&mut evaluable);
                    let decisions: Vec<(StageId, Decision)> =
                        batch.par_iter().map(|&i| (i, self.decide(i))).collect();
                    for (i, d) in decisions {
                        let finished = match d {
                            Decision::Fresh { watch } => {
                                self.watch[i] = watch.or_else(|| self.carried(i));
                                Some(Status::Fresh)
                            }
                            Decision::Restored { .. } if self.opts.dry_run => {
                                Some(Status::WouldRun {
                                    reason:
                                        "its outputs would come back from the cache (and be judged)"
                                            .to_string(),
                                })
                            }
                            Decision::Restored { mut record, watch } => {
                                let t = now_ms();
                                self.times[i] = (t, t);
                                let st = match self.judge(i, &record.metrics) {
                                    Ok(notes) => {
                                        record.outcome = Outcome::Succeeded;
                                        record.reason.clear();
                                        self.notes[i] = notes;
                                        self.watch[i] = Some(watch);
                                        self.promote |= self.p.stages[i].promote;
                                        Status::Restored
                                    }
                                    Err(reason) => {
                                        record.outcome = Outcome::CheckFailed {
                                            message: reason.clone(),
                                        };
                                        record.reason = reason.clone();
                                        let st = Status::Failed { reason };
                                        // `finish` reports only what did not fail.
                                        self.reporter.event(&Event::StageFinished {
                                            stage: self.p.stages[i].name.clone(),
                                            status: st.clone(),
                                            started_ms: t,
                                            ended_ms: t,
                                            log: None,
                                            notes: vec![
                                                "outputs restored from the cache, then judged"
                                                    .to_string(),
                                            ],
                                        });
                                        st
                                    }
                                };
                                self.store.put_record(&record)?;
                                self.records[i] = Some(record);
                                Some(st)
                            }
                            Decision::Skip(reason) => Some(Status::Skipped { reason }),
                            Decision::Fail(reason) => {
                                if !self.opts.dry_run {
                                    // Remembered, so that `mlp status` can say why.
                                    let t = now_ms();
                                    self.store.put_record(&StageRecord {
                                        stage: self.p.stages[i].name.clone(),
                                        identity: String::new(),
                                        key: serde_json::Value::Null,
                                        outputs: Vec::new(),
                                        outcome: Outcome::Failed {
                                            code: None,
                                            signal: None,
                                        },
                                        run_id: self.run_id.clone(),
                                        started_ms: t,
                                        ended_ms: t,
                                        attempts: 0,
                                        cpu_ms: 0,
                                        max_rss_kb: 0,
                                        metrics: serde_json::Value::Null,
                                        fallback_used: false,
                                        checks: String::new(),
                                        reason: reason.clone(),
                                    })?;
                                }
                                Some(Status::Failed { reason })
                            }
                            Decision::Run { key, reason, watch } => {
                                if self.opts.dry_run {
                                    Some(Status::WouldRun { reason })
                                } else if self.stopping && (self.interrupted || !self.is_handler(i))
                                {
                                    Some(Status::NotRun)
                                } else {
                                    self.keys.insert(i, key);
                                    self.watch[i] = Some(watch);
                                    ready.push(Ready {
                                        priority: prio[i],
                                        order: std::cmp::Reverse(pos[i]),
                                        stage: i,
                                    });
                                    None
                                }
                            }
                        };
                        if let Some(st) = finished {
                            self.finish(i, st, &dependents, &mut remaining, &mut evaluable);
                        }
                    }
                    continue;
                }
                // 2. Hand out work while tokens last (look a little past a stage that
                //    does not fit, so a big stage does not idle the machine).
                {
                    let mut skipped = Vec::new();
                    while let Some(r) = ready.pop() {
                        if self.stopping && (self.interrupted || !self.is_handler(r.stage)) {
                            self.finish(
                                r.stage,
                                Status::NotRun,
                                &dependents,
                                &mut remaining,
                                &mut evaluable,
                            );
                            continue;
                        }
                        let need = needs(&self.p.stages[r.stage], total, self.opts);
                        if need.cpu <= free.cpu && need.mem <= free.mem && need.gpu <= free.gpu {
                            free.cpu -= need.cpu;
                            free.mem -= need.mem;
                            free.gpu -= need.gpu;
                            running.insert(r.stage, need);
                            let task = self.task(r.stage, next_id);
                            next_id += 1;
                            let t = now_ms();
                            self.times[r.stage].0 = t;
                            self.reporter.event(&Event::StageStarted {
                                stage: self.p.stages[r.stage].name.clone(),
                                at_ms: t,
                            });
                            if task_tx.send(task).is_err() {
                                break;
                            }
                        } else {
                            skipped.push(r);
                            if skipped.len() >= 64 || free.cpu == 0 {
                                break;
                            }
                        }
                    }
                    ready.extend(skipped);
                }
                if running.is_empty() {
                    if evaluable.is_empty() && (ready.is_empty() || self.stopping) {
                        break Ok(());
                    }
                    continue;
                }
                // 3. Wait for a worker. The records of what finished are written now,
                //    after the stages they unblocked were handed out: the store's
                //    transaction is off the critical path.
                if let Err(e) = self.write_pending() {
                    break Err(e);
                }
                let Ok(done) = done_rx.recv() else {
                    break Ok(());
                };
                if let Some(need) = running.remove(&done.stage) {
                    free.cpu += need.cpu;
                    free.mem += need.mem;
                    free.gpu += need.gpu;
                }
                let st = self.completed(done)?;
                let i = self.last_done;
                self.finish(i, st, &dependents, &mut remaining, &mut evaluable);
            };
            drop(task_tx);
            let written = self.write_pending();
            result.and(written)
        })?;
        // Everything selected that never got a status did not run.
        for i in 0..n {
            if self.selected[i] && self.status[i].is_none() {
                self.status[i] = Some(Status::NotRun);
            }
        }
        Ok(())
    }

    /// Critical path first: a stage's priority is its own recorded duration plus the
    /// longest chain of recorded durations below it.
    fn priorities(&self, dependents: &[Vec<(StageId, DepKind)>]) -> Vec<u64> {
        let n = self.p.stages.len();
        let mut prio = vec![0u64; n];
        for &i in self.p.order.iter().rev() {
            let own = self
                .old_snap
                .and_then(|s| s.stage(&self.p.stages[i].name))
                .map_or(1, |s| s.duration_ms.max(1));
            let below = dependents[i]
                .iter()
                .map(|(j, _)| prio[*j])
                .max()
                .unwrap_or(0);
            prio[i] = own + below;
        }
        prio
    }

    fn carried(&self, i: StageId) -> Option<Watch> {
        let old = self.old_snap?;
        let s = old.stage(&self.p.stages[i].name).filter(|s| !s.skipped)?;
        Some(Watch {
            entries: s
                .watch
                .iter()
                .filter_map(|&k| old.entries.get(k as usize).cloned())
                .collect(),
            identity: s.identity,
        })
    }

    /// Decide what to do with a stage whose upstream is done.
    fn decide(&self, i: StageId) -> Decision {
        let s = &self.p.stages[i];
        // Upstream failures and skips.
        for d in &s.deps {
            if !self.selected[d.stage] {
                continue;
            }
            match &self.status[d.stage] {
                Some(st) if st.ok() => {}
                Some(Status::WouldRun { .. }) => {}
                Some(_) if d.kind == DepKind::Failed => {}
                Some(Status::Skipped { .. }) => {
                    return Decision::Skip(format!(
                        "upstream `{}` was skipped",
                        self.p.stages[d.stage].name
                    ));
                }
                Some(Status::NotRun) | None => {
                    return Decision::Skip(format!(
                        "upstream `{}` did not run",
                        self.p.stages[d.stage].name
                    ));
                }
                Some(Status::Interrupted) => {
                    return Decision::Skip(format!(
                        "upstream `{}` was interrupted",
                        self.p.stages[d.stage].name
                    ));
                }
                Some(_) => {
                    return Decision::Skip(format!(
                        "upstream `{}` failed",
                        self.p.stages[d.stage].name
                    ));
                }
            }
        }
        // A handler (`when failed(x)`) with no failure to handle is skipped.
        if let Some(w) = &s.when {
            let mut seen = Vec::new();
            let names = |j: StageId| self.p.stages[j].name.clone();
            match w.eval(&Ctx { c: self, own: None }, &names, &mut seen) {
                Ok(mlp_plan::Value::Bool(true)) => {}
                Ok(_) => {
                    let saw = if seen.is_empty() {
                        String::new()
                    } else {
                        format!(" {}", mlp_plan::expr::describe_seen(w, &seen))
                    };
                    return Decision::Skip(format!("`when {}` is false{saw}", w_text(s)));
                }
                Err(e) => {
                    return Decision::Skip(format!("`when {}` cannot be decided: {e}", w_text(s)));
                }
            }
        }
        // In a dry run, whatever is downstream of a stage that would run would run too.
        if self.opts.dry_run
            && let Some(d) = s
                .deps
                .iter()
                .find(|d| matches!(self.status[d.stage], Some(Status::WouldRun { .. })))
        {
            return Decision::Run {
                key: empty_key(),
                reason: format!("upstream `{}` would run", self.p.stages[d.stage].name),
                watch: Watch::default(),
            };
        }
        // The snapshot: nothing this stage reads or writes was touched.
        if !self.force[i]
                        && !s.always
            && !self.is_handler(i)
            && self.snap_fresh.get(&s.name).copied().unwrap_or(false)
                        && self.old_snap.and_then(|o| o.stage(&s.name)).is_some_and(|o| o.shape == self.shapes[i] && !o.skipped)
            // What the snapshot saw of an upstream output holds only if that stage did
            // not just write it again.
            && s.deps.iter().all(|d| !self.selected[d.stage] || self.status[d.stage] == Some(Status::Fresh))
        {
            return Decision::Fresh { watch: None };
        }
        match self.evaluate(i) {
            Ok(d) => d,
            Err(e) => Decision::Fail(e),
        }
    }

    /// Hash the inputs, compute the identity and compare with the store.
    fn evaluate(&self, i: StageId) -> Result<Decision, String> {
        let s = &self.p.stages[i];
        let root = &self.ws.root;
        let hasher = Hasher::new(root, self.stat_cache);
        let mut entries = Vec::new();
        for inp in &s.inputs {
            if inp.path.starts_with('/') || inp.path.starts_with("../") {
                entries.push(
                    Entry::stat(Path::new("/"), &abs_of(root, &inp.path))
                        .map_err(|e| format!("cannot read input `{}`: {e}", inp.path))?,
                );
                continue;
            }
            entries.extend(
                snapshot::watch(root, &inp.path, inp.kind == InputKind::Glob)
                    .map_err(|e| format!("cannot read input `{}`: {e}", inp.path))?,
            );
        }
        let mut key = identity::key(s, &hasher)
            .map_err(|e| format!("cannot hash the inputs of `{}`: {e}", s.name))?;
        identity::add_after(&mut key, self.p, i, |j| match &self.records[j] {
            Some(r) if r.outcome == Outcome::Succeeded => {
                Some((r.identity.clone(), r.run_id.clone()))
            }
            _ => self
                .store
                .last_success(&self.p.stages[j].name)
                .ok()
                .flatten()
                .map(|r| (r.identity, r.run_id)),
        });
        let id = key.digest();
        let id_hex = hex(&id);
        let last = self
            .store
            .last_success(&s.name)
            .map_err(|e| e.to_string())?;
        let frozen_ok = s.frozen && last.is_some();
        // `every`: stale that long after the last success, whatever else holds.
        let expired = !frozen_ok
            && s.every_ms
                .zip(last.as_ref())
                .is_some_and(|(every, l)| now_ms() >= l.ended_ms.saturating_add(every));
        // An input that is not there and that no stage makes: a typo, or data not
        // fetched. Say so instead of hashing "missing" into the identity.
        for inp in &s.inputs {
            if inp.kind == InputKind::Path
                && inp.producer.is_none()
                && key.inputs.get(&inp.path).is_some_and(|c| c == "missing")
            {
                return Err(format!(
                    "input `{}` does not exist, and no stage declares it as an output",
                    inp.path
                ));
            }
        }
        // A failure handler runs whenever it is triggered.
        let always = s.always || self.is_handler(i);
        // The latest verdict on this identity was a failed check or gate: judge again.
        let judged_failed = self
            .store
            .last(&s.name)
            .map_err(|e| e.to_string())?
            .is_some_and(|l| {
                l.identity == id_hex && matches!(l.outcome, Outcome::CheckFailed { .. })
            });
        let checks = checks_digest(s);
        if !self.force[i] && !always && !expired {
            if let Some(last) = &last
                && (last.identity == id_hex || frozen_ok)
            {
                // Up to date if the outputs are still what it made.
                let (intact, out_entries) = self.outputs_intact(s, last)?;
                if intact && (judged_failed || last.checks != checks) && !s.checks.is_empty() {
                    // Its checks or gates changed (or failed last time): judge its
                    // outputs again without running it.
                    entries.extend(out_entries);
                    let mut record = self.restored_record(s, last);
                    record.key = key.to_json();
                    return Ok(Decision::Restored {
                        record,
                        watch: Watch {
                            entries: with_digests(entries, &key),
                            identity: id,
                        },
                    });
                }
                if intact {
                    entries.extend(out_entries);
                    return Ok(Decision::Fresh {
                        watch: Some(Watch {
                            entries: with_digests(entries, &key),
                            identity: parse_hex(&last.identity).unwrap_or(id),
                        }),
                    });
                }
                if frozen_ok {
                    // A frozen stage never reruns: bring its outputs back.
                    if let Some(w) = self.restore(s, last, &mut entries)? {
                        return Ok(Decision::Restored {
                            record: self.restored_record(s, last),
                            watch: w,
                        });
                    }
                    return Err(format!(
                        "stage `{}` is frozen, but its outputs changed and the cache no longer has them; remove `frozen` to rebuild them",
                        s.name
                    ));
                }
            }
            // The run-cache: any earlier success with this identity.
            if !s.frozen
                && let Some(rec) = self.store.cached(&id_hex).map_err(|e| e.to_string())?
                && let Some(mut w) = self.restore(s, &rec, &mut entries)?
            {
                w.identity = id;
                let mut record = self.restored_record(s, &rec);
                record.key = key.to_json();
                return Ok(Decision::Restored { record, watch: w });
            }
        }
        let reason = if self.force[i] {
            "forced".to_string()
        } else if s.always {
            "`always`".to_string()
        } else if always {
            "a failure handler runs whenever it is triggered".to_string()
        } else if expired {
            format!(
                "`every {}` has passed since its last success",
                human_ms(s.every_ms.unwrap_or(0))
            )
        } else {
            match &last {
                None => "never run".to_string(),
                Some(l) => {
                    let old: Option<StageKey> = serde_json::from_value(l.key.clone()).ok();
                    old.and_then(|o| identity::diff(&o, &key).into_iter().next())
                        .unwrap_or_else(|| "outputs changed or missing".to_string())
                }
            }
        };
        Ok(Decision::Run {
            watch: Watch {
                entries: with_digests(entries, &key),
                identity: id,
            },
            key,
            reason,
        })
    }

    fn outputs_intact(&self, s: &Stage, last: &StageRecord) -> Result<(bool, Vec<Entry>), String> {
        let root = &self.ws.root;
        let hasher = Hasher::new(root, self.stat_cache);
        let mut entries = Vec::new();
        for o in &s.outputs {
            let Some(rec) = last.outputs.iter().find(|r| r.path == o.path) else {
                return Ok((false, entries));
            };
            entries.extend(
                snapshot::watch(root, &o.path, false)
                    .map_err(|e| format!("cannot read output `{}`: {e}", o.path))?,
            );
            let now = hasher
                .path(&o.path)
                .map_err(|e| format!("cannot hash output `{}`: {e}", o.path))?;
            if now.digest().map(hex) != parse_hex(&rec.digest).map(|d| hex(&d)) {
                return Ok((false, entries));
            }
        }
        Ok((true, entries))
    }

    /// Bring a record's outputs back from the object cache. `None` when an object is
    /// missing or corrupt (the stage then runs).
    fn restore(
        &self,
        s: &Stage,
        rec: &StageRecord,
        entries: &mut Vec<Entry>,
    ) -> Result<Option<Watch>, String> {
        let root = &self.ws.root;
        let hasher = Hasher::new(root, self.stat_cache);
        let mut out_entries = Vec::new();
        for o in &s.outputs {
            let Some(r) = rec.outputs.iter().find(|r| r.path == o.path) else {
                return Ok(None);
            };
            let want = content_of(r);
            let dst = root.join(&o.path);
            let have = hasher.path(&o.path).ok();
            if have.as_ref().and_then(Content::digest) != want.digest() {
                if self.opts.dry_run {
                    continue;
                }
                if self.cache.restore(&want, &dst).is_err() {
                    return Ok(None);
                }
            }
            let mut es = snapshot::watch(root, &o.path, false)
                .map_err(|e| format!("cannot read output `{}`: {e}", o.path))?;
            set_digest(&mut es, &o.path, &want);
            out_entries.extend(es);
        }
        let mut all = std::mem::take(entries);
        all.extend(out_entries);
        Ok(Some(Watch {
            entries: all,
            identity: parse_hex(&rec.identity).unwrap_or([0; 32]),
        }))
    }

    fn restored_record(&self, s: &Stage, from: &StageRecord) -> StageRecord {
        let t = now_ms();
        StageRecord {
            stage: s.name.clone(),
            run_id: self.run_id.clone(),
            started_ms: t,
            ended_ms: t,
            attempts: 0,
            cpu_ms: 0,
            max_rss_kb: 0,
            checks: checks_digest(s),
            ..from.clone()
        }
    }

    fn task(&self, i: StageId, id: u64) -> Task {
        let s = &self.p.stages[i];
        let _ = id;
        Task {
            stage: i,
            name: s.name.clone(),
            job: Job {
                command: s.command.clone(),
                cwd: self.ws.root.clone(),
                env: s
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .chain(param_env(s))
                    .collect(),
                log: self.ws.log_path(&self.run_id, &s.name),
                timeout: s.timeout_ms.map(Duration::from_millis),
                echo: self.opts.verbose.then(|| exec::Echo {
                    prefix: s.name.clone(),
                }),
                append_log: false,
            },
            retry: s.retry,
            fallback: s.fallback.clone(),
            runner: match slurm::kind_of(s, self.opts.executor) {
                ExecutorKind::Local => Runner::Local,
                ExecutorKind::Slurm => Runner::Slurm(Arc::new(slurm::Submission::new(
                    s,
                    &self.run_id,
                    self.watch[i]
                        .as_ref()
                        .map(|w| hex(&w.identity))
                        .unwrap_or_default(),
                    self.ws.dir.join("slurm"),
                ))),
            },
            outputs: s.outputs.iter().map(|o| o.path.clone()).collect(),
            metrics: s
                .outputs
                .iter()
                .filter(|o| o.metrics)
                .map(|o| {
                    (
                        o.name.clone().unwrap_or_else(|| o.path.clone()),
                        o.path.clone(),
                    )
                })
                .collect(),
        }
    }

    /// A worker finished a stage: record it.
    fn completed(&mut self, done: Done) -> Result<Status, EngineError> {
        let i = done.stage;
        self.last_done = i;
        let s = &self.p.stages[i];
        let ended = now_ms();
        self.times[i].1 = ended;
        let key = self.keys.remove(&i).unwrap_or_else(empty_key);
        let mut metrics = serde_json::Value::Null;
        let (mut outcome, mut status, outputs) = match (&done.finished, done.outputs) {
            (Err(e), _) => (
                Outcome::Failed {
                    code: None,
                    signal: None,
                },
                Status::Failed { reason: e.clone() },
                Vec::new(),
            ),
            (Ok(f), outs) => match &f.exit {
                Exit::Code(0) => match (outs, done.metrics) {
                    (Ok(outs), Ok(m)) => {
                        metrics = m;
                        (
                            Outcome::Succeeded,
                            Status::Ran {
                                attempts: done.attempts,
                            },
                            outs,
                        )
                    }
                    (Ok(_), Err(e)) => (
                        Outcome::Failed {
                            code: Some(0),
                            signal: None,
                        },
                        Status::Failed { reason: e },
                        Vec::new(),
                    ),
                    (Err(e), _) => (
                        Outcome::Failed {
                            code: Some(0),
                            signal: None,
                        },
                        Status::Failed { reason: e },
                        Vec::new(),
                    ),
                },
                Exit::Code(c) => (
                    Outcome::Failed {
                        code: Some(*c),
                        signal: None,
                    },
                    Status::Failed {
                        reason: format!("exit code {c}{}", attempts_note(done.attempts)),
                    },
                    Vec::new(),
                ),
                Exit::Signal(sig) => (
                    Outcome::Failed {
                        code: None,
                        signal: Some(*sig),
                    },
                    Status::Failed {
                        reason: format!("killed by signal {sig}{}", attempts_note(done.attempts)),
                    },
                    Vec::new(),
                ),
                Exit::TimedOut => (
                    Outcome::TimedOut,
                    Status::Failed {
                        reason: format!("timed out after {}", human_ms(s.timeout_ms.unwrap_or(0))),
                    },
                    Vec::new(),
                ),
                Exit::Cancelled => (Outcome::Interrupted, Status::Interrupted, Vec::new()),
                Exit::Scheduler(why) => (
                    Outcome::Failed {
                        code: None,
                        signal: None,
                    },
                    Status::Failed {
                        reason: format!("{why}{}", attempts_note(done.attempts)),
                    },
                    Vec::new(),
                ),
            },
        };
        let (cpu_ms, rss) = done
            .finished
            .as_ref()
            .map_or((0, 0), |f| (f.cpu_ms, f.max_rss_kb));
        // From the first attempt: retries and the fallback are part of the stage's time.
        let started_ms = if self.times[i].0 > 0 {
            self.times[i].0
        } else {
            done.finished.as_ref().map_or(ended, |f| ms_of(f.started))
        };
        if outcome == Outcome::Succeeded {
            match self.judge(i, &metrics) {
                Ok(notes) => {
                    self.notes[i] = notes;
                    self.promote |= s.promote;
                }
                Err(reason) => {
                    outcome = Outcome::CheckFailed {
                        message: reason.clone(),
                    };
                    status = Status::Failed { reason };
                }
            }
        }
        if done.used_fallback && status.ok() {
            self.notes[i].push("the fallback command produced the outputs".to_string());
        }
        if let Ok(f) = &done.finished {
            self.notes[i].extend(f.notes.iter().cloned());
        }
        let mut watch = self.watch[i].take().unwrap_or_default();
        let record = StageRecord {
            stage: s.name.clone(),
            identity: hex(&watch.identity),
            key: key.to_json(),
            outputs: outputs.iter().map(|(r, _)| r.clone()).collect(),
            outcome,
            run_id: self.run_id.clone(),
            started_ms,
            ended_ms: ended,
            attempts: done.attempts,
            cpu_ms,
            max_rss_kb: rss,
            metrics,
            fallback_used: done.used_fallback,
            checks: checks_digest(s),
            reason: match &status {
                Status::Failed { reason } => reason.clone(),
                _ => String::new(),
            },
        };
        self.pending.push(record.clone());
        self.records[i] = Some(record);
        // A fallback's outputs serve this run only: no snapshot entry, so the next run
        // tries the command again.
        if status.ok() && !done.used_fallback {
            for (_, e) in outputs {
                watch.entries.extend(e);
            }
            self.watch[i] = Some(watch);
        }
        self.reporter.event(&Event::StageFinished {
            stage: s.name.clone(),
            status: status.clone(),
            started_ms,
            ended_ms: ended,
            log: Some(done.log.display().to_string()),
            notes: self.notes[i].clone(),
        });
        Ok(status)
    }

    /// The run's entry in the history: what ran and how, with params, metrics and output
    /// hashes of every stage (a stage that did not run this time is listed with what its
    /// last success left, so that `mlp checkout` and baselines see the whole pipeline).
    fn run_record(
        &self,
        started_ms: u64,
        ok: bool,
        interrupted: bool,
    ) -> Result<serde_json::Value, EngineError> {
        let mut stages = serde_json::Map::new();
        for &i in &self.p.order {
            let s = &self.p.stages[i];
            let status = if self.selected[i] {
                self.status[i].clone().unwrap_or(Status::NotRun)
            } else {
                Status::NotRun
            };
            let mut v = serde_json::to_value(&status).unwrap_or_default();
            let rec = match &self.records[i] {
                Some(r) => Some(r.clone()),
                None => self.store.last_success(&s.name)?,
            };
            if let Some(o) = v.as_object_mut() {
                if !self.selected[i] {
                    o.insert("status".into(), "not_selected".into());
                }
                if let Some(r) = &rec {
                    let this_run = self.records[i].is_some();
                    o.insert("identity".into(), r.identity.clone().into());
                    o.insert(
                        "outputs".into(),
                        serde_json::to_value(&r.outputs).unwrap_or_default(),
                    );
                    o.insert("metrics".into(), r.metrics.clone());
                    if this_run {
                        o.insert("started_ms".into(), r.started_ms.into());
                        o.insert("ended_ms".into(), r.ended_ms.into());
                        o.insert(
                            "duration_ms".into(),
                            r.ended_ms.saturating_sub(r.started_ms).into(),
                        );
                        o.insert("attempts".into(), r.attempts.into());
                        o.insert("cpu_ms".into(), r.cpu_ms.into());
                        o.insert("max_rss_kb".into(), r.max_rss_kb.into());
                        o.insert("fallback_used".into(), r.fallback_used.into());
                    } else {
                        o.insert("from_run".into(), r.run_id.clone().into());
                    }
                }
                if !self.notes[i].is_empty() {
                    o.insert("notes".into(), self.notes[i].clone().into());
                }
            }
            stages.insert(s.name.clone(), v);
        }
        let git = git_state(&self.ws.root);
        Ok(serde_json::json!({
            "id": self.run_id,
            "pipeline": self.p.name,
            "started_ms": started_ms,
            "ended_ms": now_ms(),
            "ok": ok,
            "interrupted": interrupted,
            "git": git.map(|(commit, dirty)| serde_json::json!({"commit": commit, "dirty": dirty})),
            "targets": self.opts.targets,
            "params": mlp_plan::Value::Map(self.p.params.clone()).to_json(),
            "overrides": self.opts.overrides,
                        "promoted": self.promote && ok,
            "order": self.p.order.iter().map(|&i| self.p.stages[i].name.clone()).collect::<Vec<_>>(),
            "stages": stages,
        }))
    }

    /// Write the records of stages that finished since the last call.
    fn write_pending(&mut self) -> Result<(), EngineError> {
        for r in std::mem::take(&mut self.pending) {
            self.store.put_record(&r)?;
        }
        Ok(())
    }

    /// A failure handler: `when failed(x)`.
    fn is_handler(&self, i: StageId) -> bool {
        self.p.stages[i]
            .deps
            .iter()
            .any(|d| d.kind == DepKind::Failed)
    }

    /// A stage's metrics as seen in this run: what it produced now, or at its last success
    /// when it was fresh or not part of the run.
    fn metrics_of(&self, i: StageId) -> Option<serde_json::Value> {
        match &self.status[i] {
            Some(Status::Ran { .. } | Status::Restored) => {
                self.records[i].as_ref().map(|r| r.metrics.clone())
            }
            Some(Status::Fresh) | None => self
                .store
                .last_success(&self.p.stages[i].name)
                .ok()
                .flatten()
                .map(|r| r.metrics),
            _ => None,
        }
    }

    /// Evaluate a stage's checks and gates on its metrics: notes when they hold, the
    /// failure (the expression and the values it saw) when one does not.
    fn judge(&self, i: StageId, own: &serde_json::Value) -> Result<Vec<String>, String> {
        let s = &self.p.stages[i];
        let ctx = Ctx {
            c: self,
            own: Some((i, own)),
        };
        let names = |j: StageId| self.p.stages[j].name.clone();
        let mut notes = Vec::new();
        for a in &s.checks {
            let kind = match a.kind {
                mlp_plan::AssertionKind::Check => "check",
                mlp_plan::AssertionKind::Gate => "gate",
            };
            let mut seen = Vec::new();
            let suffix = a
                .message
                .as_ref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default();
            match a.cond.eval(&ctx, &names, &mut seen) {
                Ok(mlp_plan::Value::Bool(true)) => {
                    if seen.iter().any(|(k, v)| {
                        k.starts_with("baseline.") && *v == mlp_plan::Value::Str("none".into())
                    }) {
                        notes.push(format!("{kind} `{}` passed without comparing: no baseline yet (a run with a `promote` stage, or `mlp promote RUN`, sets it)", a.text));
                    }
                }
                Ok(mlp_plan::Value::Bool(false)) => {
                    return Err(format!(
                        "{kind} failed: {} {}{suffix}",
                        a.text,
                        mlp_plan::expr::describe_seen(&a.cond, &seen)
                    ));
                }
                Ok(v) => {
                    return Err(format!(
                        "{kind} failed: `{}` is a {}, not a bool",
                        a.text,
                        v.type_name()
                    ));
                }
                Err(e) => return Err(format!("{kind} failed: {}: {e}{suffix}", a.text)),
            }
        }
        Ok(notes)
    }

    fn finish(
        &mut self,
        i: StageId,
        st: Status,
        dependents: &[Vec<(StageId, DepKind)>],
        remaining: &mut [usize],
        evaluable: &mut Vec<StageId>,
    ) {
        if self.status[i].is_some() {
            return;
        }
        // What a worker finished (or a restore judged) was reported where it ended.
        let reported = matches!(st, Status::Ran { .. } | Status::Interrupted)
            || (matches!(st, Status::Failed { .. }) && self.records[i].is_some());
        if !reported {
            // Finished without a worker: report it too.
            self.reporter.event(&Event::StageFinished {
                stage: self.p.stages[i].name.clone(),
                status: st.clone(),
                started_ms: self.times[i].0,
                ended_ms: self.times[i].1,
                log: None,
                notes: self.notes[i].clone(),
            });
        }
        if matches!(st, Status::Failed { .. } | Status::Interrupted) && !self.opts.keep_going {
            self.stopping = true;
        }
        self.status[i] = Some(st);
        for &(j, _) in &dependents[i] {
            remaining[j] -= 1;
            if remaining[j] == 0 {
                evaluable.push(j);
            }
        }
    }

    /// The next snapshot: every stage that is up to date now, with what it watched.
    fn snapshot(&self, _started_ms: u64) -> Snapshot {
        let mut b = snapshot::Builder::default();
        let root = &self.ws.root;
        let mut sources = Vec::new();
        for src in &self.p.sources {
            if let Ok(e) = Entry::stat(root, src) {
                sources.push(b.add(e));
            }
        }
        let mut stages = Vec::new();
        for (i, s) in self.p.stages.iter().enumerate() {
            let fresh_now = matches!(
                self.status[i],
                Some(Status::Fresh | Status::Restored | Status::Ran { .. })
            );
            let watch = if fresh_now {
                self.watch[i].clone()
            } else if !self.selected[i] {
                // Not part of this run: what it was up to date with still holds (or not:
                // the stats decide next time).
                self.carried(i)
            } else if matches!(self.status[i], Some(Status::Skipped { .. })) {
                // Skipped by a `when` (or below one): while everything else stays as it
                // is, it stays skipped. The no-op needs to know that, not more.
                stages.push(StageSnap {
                    name: s.name.clone(),
                    shape: self.shapes[i],
                    identity: [0; 32],
                    watch: Vec::new(),
                    always: false,
                    skipped: true,
                    succeeded_ms: 0,
                    every_ms: None,
                    duration_ms: 0,
                });
                None
            } else {
                None
            };
            let Some(w) = watch else { continue };
            let old = self.old_snap.and_then(|o| o.stage(&s.name));
            let (succeeded_ms, duration_ms) = match self.status[i] {
                Some(Status::Ran { .. }) => (
                    self.times[i].1,
                    self.times[i].1.saturating_sub(self.times[i].0),
                ),
                Some(Status::Restored) => (self.times[i].1, old.map_or(0, |o| o.duration_ms)),
                _ => (
                    old.map(|o| o.succeeded_ms)
                        .or_else(|| {
                            self.store
                                .last_success(&s.name)
                                .ok()
                                .flatten()
                                .map(|r| r.ended_ms)
                        })
                        .unwrap_or_else(now_ms),
                    old.map_or(0, |o| o.duration_ms),
                ),
            };
            let watch: Vec<u32> = w.entries.into_iter().map(|e| b.add(e)).collect();
            stages.push(StageSnap {
                name: s.name.clone(),
                shape: self.shapes[i],
                identity: w.identity,
                watch,
                always: s.always,
                skipped: false,
                succeeded_ms,
                every_ms: s.every_ms,
                duration_ms,
            });
        }
        stages.sort_by(|a, b| a.name.cmp(&b.name));
        Snapshot {
            written_ns: now_ns(),
            pipeline_file: self.opts.pipeline_file.clone(),
            total_stages: self.p.stages.len(),
            sources,
            overrides: self.opts.overrides.clone(),
            entries: b.entries,
            stages,
        }
    }
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

fn abs_of(root: &Path, p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        std::fs::canonicalize(root.join(p)).map_or_else(
            |_| root.join(p).display().to_string(),
            |c| c.display().to_string(),
        )
    }
}

/// Put the content digests the key saw on the watched files, so that a racily clean
/// entry can be verified by its bytes.
fn with_digests(mut entries: Vec<Entry>, key: &StageKey) -> Vec<Entry> {
    for e in &mut entries {
        if e.kind == snapshot::Kind::File
            && let Some(d) = key.inputs.get(&e.path)
        {
            e.digest = parse_hex(d);
        }
    }
    entries
}

/// A file output's digest on its snapshot entry (it was just written: racily clean).
fn set_digest(entries: &mut [Entry], path: &str, c: &Content) {
    if let (Some(e), Content::File { digest, .. }) = (entries.first_mut(), c)
        && e.path == path
        && e.kind == snapshot::Kind::File
    {
        e.digest = Some(*digest);
    }
}

fn w_text(s: &Stage) -> String {
    s.when_text.clone().unwrap_or_default()
}

fn empty_key() -> StageKey {
    StageKey {
        format: identity::CACHE_FORMAT,
        command: String::new(),
        inputs: Default::default(),
        params: Default::default(),
        env: Default::default(),
        outputs: Vec::new(),
        after: Default::default(),
    }
}

fn attempts_note(n: u32) -> String {
    if n > 1 {
        format!(" (after {n} attempts)")
    } else {
        String::new()
    }
}

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

/// Params reach the command as environment variables: `MLP_PARAM_TRAIN__LR=0.1` for
/// `train.lr` (dots become `__`, upper case), and all of them as one JSON object in
/// `MLP_PARAMS`.
fn param_env(s: &Stage) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = s
        .params
        .iter()
        .map(|(k, v)| {
            (
                format!(
                    "MLP_PARAM_{}",
                    k.replace('.', "__").replace('-', "_").to_uppercase()
                ),
                v.to_string(),
            )
        })
        .collect();
    let obj: serde_json::Map<String, serde_json::Value> = s
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.to_json()))
        .collect();
    out.push((
        "MLP_PARAMS".to_string(),
        serde_json::Value::Object(obj).to_string(),
    ));
    out.push(("MLP_STAGE".to_string(), s.name.clone()));
    out
}

/// What conditions, checks and gates see: metrics of this run (a stage that ran or was
/// restored), or of the last success (a fresh stage), the baseline, and failures.
struct Ctx<'a, 'b> {
    c: &'a Coordinator<'b>,
    /// The stage being judged, with the metrics it just produced.
    own: Option<(StageId, &'a serde_json::Value)>,
}

impl mlp_plan::expr::EvalContext for Ctx<'_, '_> {
    fn metric(
        &self,
        stage: StageId,
        name: &str,
        field: &[mlp_plan::expr::Segment],
    ) -> Option<mlp_plan::Value> {
        let all = match self.own {
            Some((j, m)) if j == stage => m.clone(),
            _ => self.c.metrics_of(stage)?,
        };
        let v = crate::metrics::field(all.get(name)?, field)?;
        Some(mlp_plan::Value::from_json(v.clone()))
    }

    fn baseline(
        &self,
        stage: StageId,
        name: &str,
        field: &[mlp_plan::expr::Segment],
    ) -> Option<mlp_plan::Value> {
        let (_, run) = self.c.baseline.as_ref()?;
        let m = run
            .get("stages")?
            .get(&self.c.p.stages[stage].name)?
            .get("metrics")?
            .get(name)?;
        Some(mlp_plan::Value::from_json(
            crate::metrics::field(m, field)?.clone(),
        ))
    }

    fn failed(&self, stage: StageId) -> bool {
        matches!(self.c.status[stage], Some(Status::Failed { .. }))
    }
}

/// A worker thread: take a task, run it (with retries and the fallback), hash and cache
/// its outputs, send the result.
fn worker(
    rx: &Mutex<mpsc::Receiver<Task>>,
    tx: &mpsc::Sender<Done>,
    control: &RunControl,
    root: &Path,
    stat_cache: &StatCache,
    cache: &ObjectCache,
) {
    let mut id: u64 = 0;
    loop {
        let task = {
            let Ok(guard) = rx.lock() else { return };
            match guard.recv() {
                Ok(t) => t,
                Err(_) => return,
            }
        };
        id += 1;
        let job_id = (task.stage as u64) << 20 | (id & 0xfffff);
        let table = &control.table;
        control.started(&task.name, job_id);
        let mut attempts = 0;
        let mut used_fallback = false;
        let cleared = if task.runner.keeps_outputs(&task.job.command) {
            Ok(()) // a job of an earlier run is writing them: attach to it
        } else {
            clear_outputs(root, &task.outputs)
        };
        let mut finished = match cleared {
            Err(e) => Err(io::Error::other(e)),
            Ok(()) => loop {
                attempts += 1;
                let mut job = task.job.clone();
                if attempts > 1 {
                    // Keep what the earlier attempts printed.
                    note_in_log(
                        &job.log,
                        &format!("attempt {attempts} of {}", task.retry + 1),
                    );
                    job.append_log = true;
                }
                let r = task.runner.run(&job, job_id, table);
                let retry = matches!(&r, Ok(f) if !f.success() && !matches!(f.exit, Exit::Cancelled))
                    && attempts <= task.retry;
                if !retry {
                    break r;
                }
                // Exponential backoff: 0.5 s, 1 s, 2 s ... capped at 30 s.
                let wait = Duration::from_millis((500u64 << (attempts - 1).min(6)).min(30_000));
                std::thread::sleep(wait);
                if table.is_cancelled() {
                    break r;
                }
            },
        };
        if let (Ok(f), Some(fb)) = (&finished, &task.fallback)
            && !f.success()
            && !matches!(f.exit, Exit::Cancelled)
        {
            let mut job = task.job.clone();
            job.command = fb.clone();
            job.append_log = true;
            note_in_log(&job.log, "the command failed: running the fallback");
            finished = task.runner.run(&job, job_id, table);
            used_fallback = true;
        }
        let outputs = match &finished {
            Ok(f) if f.success() => collect_outputs(root, stat_cache, cache, &task.outputs),
            _ => Ok(Vec::new()),
        };
        control.ended(&task.name);
        let metrics = match (&finished, &outputs) {
            (Ok(f), Ok(_)) if f.success() => read_metrics(root, &task.metrics),
            _ => Ok(serde_json::Value::Null),
        };
        let done = Done {
            stage: task.stage,
            finished: finished.map_err(|e| format!("cannot run the command: {e}")),
            attempts,
            used_fallback,
            outputs,
            metrics,
            log: task.job.log.clone(),
        };
        if tx.send(done).is_err() {
            return;
        }
    }
}

/// What a stage's checks and gates say, as written: a record judged under other checks is
/// judged again. Empty for a stage without any.
pub fn checks_digest(s: &Stage) -> String {
    if s.checks.is_empty() {
        return String::new();
    }
    let mut h = blake3::Hasher::new();
    for a in &s.checks {
        h.update(
            format!(
                "{:?}\0{}\0{}\n",
                a.kind,
                a.text,
                a.message.as_deref().unwrap_or("")
            )
            .as_bytes(),
        );
    }
    h.finalize().to_hex().to_string()
}

/// A line of mlp's own in a stage's log, between attempts.
fn note_in_log(log: &Path, what: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "── mlp: {what} ──");
    }
}

/// Remove a stage's declared outputs before its command runs, so that an output the
/// command no longer writes cannot pass for a new one (the old bytes are in the cache).
fn clear_outputs(root: &Path, outputs: &[String]) -> Result<(), String> {
    for o in outputs {
        let p = root.join(o);
        let r = match std::fs::symlink_metadata(&p) {
            Ok(m) if m.is_dir() => std::fs::remove_dir_all(&p),
            Ok(_) => std::fs::remove_file(&p),
            Err(_) => Ok(()),
        };
        r.map_err(|e| format!("cannot remove the old output `{o}` before running: {e}"))?;
    }
    Ok(())
}

/// Every metrics file of a stage, parsed: `{name: content}`.
fn read_metrics(root: &Path, files: &[(String, String)]) -> Result<serde_json::Value, String> {
    let mut m = serde_json::Map::new();
    for (name, path) in files {
        m.insert(name.clone(), crate::metrics::read(root, path)?);
    }
    Ok(serde_json::Value::Object(m))
}

/// After success: every declared output must exist; stat, hash and cache each.
fn collect_outputs(
    root: &Path,
    stat_cache: &StatCache,
    cache: &ObjectCache,
    outputs: &[String],
) -> Result<Vec<(OutputRecord, Vec<Entry>)>, String> {
    let hasher = Hasher::new(root, stat_cache);
    let mut out = Vec::new();
    for o in outputs {
        let mut entries = snapshot::watch(root, o, false)
            .map_err(|e| format!("cannot read output `{o}`: {e}"))?;
        let content = hasher
            .path(o)
            .map_err(|e| format!("cannot hash output `{o}`: {e}"))?;
        set_digest(&mut entries, o, &content);
        if content == Content::Missing {
            return Err(format!(
                "the command succeeded but did not write its declared output `{o}`"
            ));
        }
        cache
            .put(&root.join(o), &content)
            .map_err(|e| format!("cannot cache output `{o}`: {e}"))?;
        out.push((record_of(o, &content), entries));
    }
    Ok(out)
}
