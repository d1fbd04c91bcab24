//! `mlp watch`: run, then rerun exactly what each edit invalidates.
//!
//! This is the only crate that depends on notify. It watches *directories*, never single
//! files: an editor's atomic save (write a temp file, rename it over the original)
//! replaces the inode, and inotify silently drops a watch on the old one; the directory's
//! watch sees the rename. Which directories: the parent of every source file (`.mlp`,
//! includes, params files) and of every file input, every directory input recursively,
//! the base of every glob; for a path that does not exist yet, its nearest existing
//! ancestor (the set is recomputed after every change, so deeper watches follow as
//! directories appear).
//!
//! Events on declared outputs and under `.mlp/` are ignored (a stage writing its outputs
//! never retriggers a run). A change to a source re-plans (a syntax error shows its
//! diagnostic; watching goes on until it is fixed). A change to an input of a stage that
//! is running cancels that stage's process group; it reruns in the next run, which starts
//! as soon as the current one ends. `every` timers start runs when they expire.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::Duration;

use mlp_engine::decide;
use mlp_engine::run::{self, EngineError, Reporter, RunControl, RunOptions, RunReport};
use mlp_engine::snapshot::Snapshot;
use mlp_engine::workspace::{Workspace, now_ms};
use mlp_plan::{Diagnostics, InputKind, Options, Pipeline};
use notify::RecursiveMode;
use notify::event::{EventKind, MetadataKind, ModifyKind};
use notify_debouncer_full::{DebounceEventResult, new_debouncer};

/// What the user sees, supplied by the binary.
pub trait Ui {
    /// A reporter for one run.
    fn reporter(&self) -> Box<dyn Reporter>;
    /// The pipeline does not plan.
    fn diagnostics(&self, d: &Diagnostics);
    /// What the watcher itself has to say.
    fn event(&self, e: &WatchEvent);
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchEvent {
    /// Watching this many directories for this many stages.
    Watching { dirs: usize, stages: usize },
    /// These paths changed (workspace-relative).
    Changed { paths: Vec<String> },
    /// A running stage's inputs changed: its process group was stopped; it runs again.
    Restart { stage: String },
    /// An `every` timer expired.
    Timer { stages: Vec<String> },
    /// The pipeline has errors: watching its sources until they are fixed.
    PlanError { errors: usize },
    /// A run could not start (e.g. another `mlp run` holds the workspace).
    RunError { message: String },
    /// Ctrl-C: stopped.
    Stopped,
    /// `--timeout` reached: the run in progress (if any) finished, then stopped.
    TimedOut,
}

pub struct WatchOptions {
    /// The pipeline file.
    pub file: PathBuf,
    /// Everything a run needs (targets, -j, --set, ...).
    pub run: RunOptions,
    /// How long the file system must be quiet before a change counts.
    pub debounce: Duration,
    /// End by itself after this long (`--timeout`): no new run starts, the one in
    /// progress finishes.
    pub timeout: Option<Duration>,
}

enum Msg {
    Fs(Vec<PathBuf>),
    FsError(String),
    Done(Result<RunReport, EngineError>),
}

/// What the current plan says about paths.
#[derive(Default)]
struct Scope {
    /// Workspace-relative source files (pipeline, includes, params).
    sources: BTreeSet<String>,
    /// Per stage: its inputs (path, is glob).
    inputs: Vec<(String, Vec<(String, bool)>)>,
    /// Declared outputs (ignored when written).
    outputs: Vec<String>,
}

impl Scope {
    fn of(p: &Pipeline) -> Scope {
        Scope {
            sources: p.sources.iter().cloned().collect(),
            inputs: p
                .stages
                .iter()
                .map(|s| {
                    (
                        s.name.clone(),
                        s.inputs
                            .iter()
                            .map(|i| (i.path.clone(), i.kind == InputKind::Glob))
                            .collect(),
                    )
                })
                .collect(),
            outputs: p
                .stages
                .iter()
                .flat_map(|s| s.outputs.iter().map(|o| o.path.clone()))
                .collect(),
        }
    }

    fn is_output(&self, rel: &str) -> bool {
        self.outputs
            .iter()
            .any(|o| rel == o || mlp_plan::is_under(rel, o))
    }

    /// Stages that read `rel`.
    fn readers(&self, rel: &str) -> Vec<String> {
        self.inputs
            .iter()
            .filter(|(_, ins)| {
                ins.iter().any(|(p, glob)| {
                    if *glob {
                        mlp_plan::glob_match(p, rel) || is_ancestor(rel, p)
                    } else {
                        rel == p || mlp_plan::is_under(rel, p) || is_ancestor(rel, p)
                    }
                })
            })
            .map(|(n, _)| n.clone())
            .collect()
    }

    /// `rel` matters: a source, an input, or a directory on the way to one.
    fn relevant(&self, rel: &str) -> bool {
        if rel == mlp_engine::hash::MLP_DIR || rel.starts_with(".mlp/") || self.is_output(rel) {
            return false;
        }
        self.sources.contains(rel)
            || self.sources.iter().any(|s| is_ancestor(rel, s))
            || !self.readers(rel).is_empty()
    }

    /// The directories to watch, with how.
    fn dirs(&self, root: &Path) -> BTreeMap<PathBuf, RecursiveMode> {
        let mut out: BTreeMap<PathBuf, RecursiveMode> = BTreeMap::new();
        let mut add = |rel: &str, dir_recursive: bool| {
            let full = root.join(rel);
            if dir_recursive && full.is_dir() {
                out.insert(full, RecursiveMode::Recursive);
                return;
            }
            // A file (or a path not there yet): its nearest existing parent.
            let mut dir = full
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_else(|| root.to_path_buf());
            while !dir.is_dir() {
                match dir.parent() {
                    Some(p) => dir = p.to_path_buf(),
                    None => return,
                }
            }
            out.entry(dir).or_insert(RecursiveMode::NonRecursive);
        };
        for s in &self.sources {
            add(s, false);
        }
        for (_, ins) in &self.inputs {
            for (p, glob) in ins {
                if p.starts_with('/') || p.starts_with("../") {
                    continue;
                }
                if *glob {
                    let base: Vec<&str> = p
                        .split('/')
                        .take_while(|c| !c.contains(['*', '?', '[']))
                        .collect();
                    let base = base.join("/");
                    // An empty base is the root itself.
                    add(if base.is_empty() { "." } else { &base }, true);
                } else {
                    add(p, true);
                }
            }
        }
        // A directory watched recursively covers those below it.
        let recursive: Vec<PathBuf> = out
            .iter()
            .filter(|(_, m)| **m == RecursiveMode::Recursive)
            .map(|(p, _)| p.clone())
            .collect();
        out.retain(|p, _| !recursive.iter().any(|r| p != r && p.starts_with(r)));
        out
    }
}

/// `a` is a proper ancestor directory of `b` (both workspace-relative).
fn is_ancestor(a: &str, b: &str) -> bool {
    a.is_empty() || (b.len() > a.len() && b.starts_with(a) && b.as_bytes()[a.len()] == b'/')
}

/// Run, then watch. Returns the exit code (130 after Ctrl-C).
pub fn watch(opts: WatchOptions, ui: &dyn Ui) -> u8 {
    let root = opts
        .file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let ws = Workspace::new(&root);
    let root = ws.root.clone();
    // One watcher per workspace: `.mlp/watch.lock` for as long as we watch. The workspace
    // lock and the store are taken only while a run is in progress (RunControl::watching),
    // so other commands read the store while we idle, and the history at any time.
    let _watching = match ws
        .create()
        .map_err(mlp_engine::lock::LockError::from)
        .and_then(|()| {
            mlp_engine::lock::acquire_file(
                &ws.dir,
                mlp_engine::lock::WATCH_LOCK_FILE,
                "mlp watch",
                false,
            )
        }) {
        Ok(l) => l,
        Err(e) => {
            let busy = matches!(e, mlp_engine::lock::LockError::Held { .. });
            ui.event(&WatchEvent::RunError {
                message: e.to_string(),
            });
            return if busy { 4 } else { 1 };
        }
    };
    let control = RunControl::watching();
    let mut run_opts = opts.run.clone();
    run_opts.control = Some(Arc::clone(&control));
    // An edit must not stop the branches it does not touch.
    run_opts.keep_going = true;

    let (tx, rx) = mpsc::channel::<Msg>();
    let fs_tx = tx.clone();
    let root_for_events = root.clone();
    let debouncer = new_debouncer(opts.debounce, None, move |res: DebounceEventResult| {
        let msg = match res {
            Ok(events) => Msg::Fs(
                events
                    .into_iter()
                    // Reads (inotify's open/close-nowrite) are not changes: a stage
                    // reading its input must not retrigger itself.
                    .filter(|e| {
                        matches!(
                            e.event.kind,
                            EventKind::Create(_)
                                | EventKind::Modify(_)
                                | EventKind::Remove(_)
                                | EventKind::Any
                        ) && !matches!(
                            e.event.kind,
                            EventKind::Modify(ModifyKind::Metadata(MetadataKind::AccessTime))
                        )
                    })
                    .flat_map(|e| e.event.paths)
                    .map(|p| {
                        p.strip_prefix(&root_for_events)
                            .map(Path::to_path_buf)
                            .unwrap_or(p)
                    })
                    .collect(),
            ),
            Err(errs) => Msg::FsError(
                errs.iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
        };
        let _ = fs_tx.send(msg);
    });
    let mut debouncer = match debouncer {
        Ok(d) => d,
        Err(e) => {
            ui.event(&WatchEvent::RunError {
                message: format!("cannot watch files: {e}"),
            });
            return 1;
        }
    };
    // Events arrive with absolute paths when the root is absolute: watch the canonical root.
    let abs_root = std::fs::canonicalize(&root).unwrap_or(root.clone());

    let mut scope = Scope::default();
    let mut watched: BTreeMap<PathBuf, RecursiveMode> = BTreeMap::new();
    let mut running: Option<std::thread::JoinHandle<()>> = None;
    let mut pending = true; // run once at the start
    let mut replan = true;
    let mut plan: Option<Pipeline> = None;
    let mut timers: Vec<(String, u64)> = Vec::new(); // (stage, due at ms)
    let deadline = opts.timeout.map(|t| std::time::Instant::now() + t);
    let mut last_ok = true;

    loop {
        if control.interrupted.load(Ordering::SeqCst) {
            control.give_up.store(true, Ordering::SeqCst);
            if let Some(h) = running.take() {
                let _ = h.join();
            }
            ui.event(&WatchEvent::Stopped);
            return 130;
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) && running.is_none() {
            ui.event(&WatchEvent::TimedOut);
            return if last_ok { 0 } else { 1 };
        }
        if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
            // Time is up: let the run in progress end (one still waiting for the workspace
            // gives up), start no other.
            pending = false;
            control.give_up.store(true, Ordering::SeqCst);
        }
        // Start a run when one is due and none is going.
        if pending && running.is_none() {
            pending = false;
            if replan || plan.is_none() {
                replan = false;
                match mlp_plan::load(
                    &opts.file,
                    &Options {
                        overrides: run_opts.overrides.clone(),
                        ..Options::default()
                    },
                ) {
                    Ok(p) => {
                        scope = Scope::of(&p.pipeline);
                        plan = Some(p.pipeline);
                    }
                    Err(d) => {
                        last_ok = false;
                        ui.diagnostics(&d);
                        ui.event(&WatchEvent::PlanError { errors: d.len() });
                        plan = None;
                        // Watch what can be watched: the pipeline file's directory.
                        let name = opts
                            .file
                            .file_name()
                            .map(|n| n.to_string_lossy().into_owned())
                            .unwrap_or_default();
                        scope.sources.insert(name);
                    }
                }
                rewatch(
                    &mut debouncer,
                    &mut watched,
                    scope.dirs(&abs_root),
                    ui,
                    plan.as_ref().map_or(0, |p| p.stages.len()),
                );
            }
            if let Some(p) = plan.clone() {
                let ws = ws.clone();
                let o = run_opts.clone();
                let mut reporter = ui.reporter();
                let tx = tx.clone();
                running = Some(std::thread::spawn(move || {
                    let r = run::run(&ws, &p, &o, reporter.as_mut());
                    let _ = tx.send(Msg::Done(r));
                }));
            }
        }
        // Wait for something: a file event, the run's end, a timer, or Ctrl-C.
        let now = now_ms();
        let next_timer = timers.iter().map(|(_, at)| *at).min();
        let wait = next_timer.map_or(Duration::from_millis(200), |at| {
            Duration::from_millis(at.saturating_sub(now).min(200))
        });
        match rx.recv_timeout(wait) {
            Ok(Msg::Fs(paths)) => {
                let mut changed: BTreeSet<String> = BTreeSet::new();
                for p in paths {
                    let rel = rel_of(&p, &abs_root, &root);
                    if scope.relevant(&rel) || (plan.is_none() && scope.sources.contains(&rel)) {
                        changed.insert(rel);
                    }
                }
                if changed.is_empty() {
                    continue;
                }
                if changed.iter().any(|c| scope.sources.contains(c)) {
                    replan = true;
                }
                ui.event(&WatchEvent::Changed {
                    paths: changed.iter().cloned().collect(),
                });
                if running.is_some() {
                    let running_now = control.running_stages();
                    let mut restart: BTreeSet<String> = BTreeSet::new();
                    for c in &changed {
                        for s in scope.readers(c) {
                            if running_now.contains(&s) {
                                restart.insert(s);
                            }
                        }
                    }
                    for s in restart {
                        if control.cancel_stage(&s) {
                            ui.event(&WatchEvent::Restart { stage: s });
                        }
                    }
                }
                pending = true;
                // Directories may have appeared: watch deeper.
                rewatch(
                    &mut debouncer,
                    &mut watched,
                    scope.dirs(&abs_root),
                    ui,
                    plan.as_ref().map_or(0, |p| p.stages.len()),
                );
            }
            Ok(Msg::FsError(e)) => ui.event(&WatchEvent::RunError {
                message: format!("file watching: {e}"),
            }),
            Ok(Msg::Done(r)) => {
                if let Some(h) = running.take() {
                    let _ = h.join();
                }
                match r {
                    // The watch is ending while this run waited for the workspace: it did
                    // not happen; the last run's outcome stands.
                    Err(_)
                        if control.give_up.load(Ordering::SeqCst)
                            || control.interrupted.load(Ordering::SeqCst) => {}
                    Err(e) => {
                        last_ok = false;
                        ui.event(&WatchEvent::RunError {
                            message: e.to_string(),
                        });
                    }
                    Ok(report) => last_ok = report.ok(),
                }
                timers = every_timers(&ws, plan.as_ref());
                if !pending {
                    ui.event(&WatchEvent::Watching {
                        dirs: watched.len(),
                        stages: plan.as_ref().map_or(0, |p| p.stages.len()),
                    });
                }
            }
            Err(RecvTimeoutError::Timeout) => {
                let now = now_ms();
                let due: Vec<String> = timers
                    .iter()
                    .filter(|(_, at)| *at <= now)
                    .map(|(s, _)| s.clone())
                    .collect();
                if !due.is_empty() && running.is_none() {
                    timers.retain(|(_, at)| *at > now);
                    ui.event(&WatchEvent::Timer { stages: due });
                    pending = true;
                }
            }
            Err(RecvTimeoutError::Disconnected) => return 1,
        }
    }
}

fn rel_of(p: &Path, abs_root: &Path, root: &Path) -> String {
    let rel = p
        .strip_prefix(abs_root)
        .or_else(|_| p.strip_prefix(root))
        .unwrap_or(p);
    rel.to_string_lossy().trim_start_matches("./").to_string()
}

/// When each `every` stage is due, from the snapshot the last run wrote.
fn every_timers(ws: &Workspace, plan: Option<&Pipeline>) -> Vec<(String, u64)> {
    let Some(p) = plan else { return Vec::new() };
    let snap = Snapshot::read(&ws.snapshot_path());
    p.stages
        .iter()
        .filter_map(|s| {
            let last = snap
                .as_ref()
                .and_then(|sn| sn.stage(&s.name))
                .map_or(0, |st| st.succeeded_ms);
            // Never succeeded: the next edit or run decides; do not spin. A frozen
            // stage has no timer: `every` does not make it stale (the decision says).
            let due = decide::every_due(s, last)?;
            (last > 0).then(|| (s.name.clone(), due))
        })
        .collect()
}

fn rewatch(
    debouncer: &mut notify_debouncer_full::Debouncer<
        notify::RecommendedWatcher,
        notify_debouncer_full::RecommendedCache,
    >,
    watched: &mut BTreeMap<PathBuf, RecursiveMode>,
    want: BTreeMap<PathBuf, RecursiveMode>,
    ui: &dyn Ui,
    _stages: usize,
) {
    let stale: Vec<PathBuf> = watched
        .iter()
        .filter(|(p, m)| want.get(*p) != Some(m))
        .map(|(p, _)| p.clone())
        .collect();
    for p in stale {
        let _ = debouncer.unwatch(&p);
        watched.remove(&p);
    }
    for (p, m) in want {
        if watched.contains_key(&p) {
            continue;
        }
        match debouncer.watch(&p, m) {
            Ok(()) => {
                watched.insert(p, m);
            }
            Err(e) => ui.event(&WatchEvent::RunError {
                message: format!("cannot watch {}: {e}", p.display()),
            }),
        }
    }
}

/// The `--json` form of a watch event.
pub fn event_json(e: &WatchEvent) -> serde_json::Value {
    match e {
        WatchEvent::Watching { dirs, stages } => {
            serde_json::json!({"event": "watching", "dirs": dirs, "stages": stages})
        }
        WatchEvent::Changed { paths } => serde_json::json!({"event": "changed", "paths": paths}),
        WatchEvent::Restart { stage } => serde_json::json!({"event": "restart", "stage": stage}),
        WatchEvent::Timer { stages } => serde_json::json!({"event": "timer", "stages": stages}),
        WatchEvent::PlanError { errors } => {
            serde_json::json!({"event": "plan_error", "errors": errors})
        }
        WatchEvent::RunError { message } => {
            serde_json::json!({"event": "run_error", "message": message})
        }
        WatchEvent::Stopped => serde_json::json!({"event": "stopped"}),
        WatchEvent::TimedOut => serde_json::json!({"event": "timed_out"}),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mlp_engine::snapshot::StageSnap;

    #[test]
    fn a_frozen_stage_gets_no_every_timer() {
        let dir = tempfile::tempdir().unwrap();
        let text = r#"
pipeline "t"
stage a { out o = "a.txt" run "x" every 1s frozen }
stage b { out o = "b.txt" run "x" every 1s }
stage c { out o = "c.txt" run "x" every 1s }
"#;
        let p = mlp_plan::load_str("pipeline.mlp", text, dir.path(), &Options::default())
            .unwrap_or_else(|d| panic!("{d:?}"))
            .pipeline;
        let ws = Workspace::new(dir.path());
        ws.create().unwrap();
        let stage = |name: &str| StageSnap {
            name: name.into(),
            shape: [0; 32],
            identity: [0; 32],
            watch: Vec::new(),
            always: false,
            skipped: false,
            succeeded_ms: 5_000,
            every_ms: Some(1000),
            duration_ms: 1,
        };
        let snap = Snapshot {
            stages: vec![stage("a"), stage("b")],
            ..Snapshot::default()
        };
        snap.write(&ws.snapshot_path()).unwrap();
        // `a` is frozen: `every` does not make it stale; `c` never succeeded: no timer.
        assert_eq!(every_timers(&ws, Some(&p)), [("b".to_string(), 6_000)]);
    }
}
