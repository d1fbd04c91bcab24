//! `mlp run`: decide what is stale, restore what the run-cache has, run the rest.
//!
//! This file is the entry point and the public face; the work is done by rooms of their
//! own: the one decision (`decide.rs`), the ready queue and its tokens (`queue.rs`), the
//! coordinator that drives them (`coordinator.rs`), the workers and the executors
//! (`worker.rs`, `executor.rs`, `exec.rs`, `slurm.rs`), checks and gates (`judge.rs`),
//! and the records and the snapshot (`record.rs`).

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use mlp_plan::Pipeline;

use crate::cache::ObjectCache;
use crate::control::Mode;
use crate::coordinator::Coordinator;
use crate::decide::{Decider, SnapView};
use crate::hash::StatCache;
use crate::lock::{self, LockError, Patience};
use crate::published;
use crate::queue::{Queue, machine_tokens, needs};
use crate::record::{self, Facts, Outcomes};
use crate::snapshot::Snapshot;
use crate::state::StageState;
use crate::store::{SledStore, Store};
use crate::sweep::Unfinished;
use crate::workspace::{Workspace, now_ms};

pub use crate::control::{RunControl, RunOptions};
pub use crate::decide::shape;
pub use crate::events::{
    EngineError, Event, FailureKind, Reporter, RunReport, Status, human_bytes, human_ms,
};
pub use crate::judge::{BASELINE, checks_digest};

/// The fast no-op: when the snapshot says every stage is up to date and nothing it lists
/// was touched (and the last run finished), answer without parsing or opening the store.
pub fn nothing_to_do(ws: &Workspace, pipeline_file: &str) -> bool {
    // A run that did not finish may have left strays for the next run to sweep.
    if ws.dir.join(crate::sweep::RUNNING).exists() {
        return false;
    }
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
        let id = p.stage(t).ok_or_else(|| EngineError::no_stage(p, t))?;
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
    let control = opts.control.clone().unwrap_or_else(RunControl::new);
    // Declared before the store: dropped after it (the store is closed under the lock).
    let _lock = take_workspace(ws, opts, &control, reporter)?;
    for f in &opts.force {
        if pipeline.stage(f).is_none() {
            return Err(EngineError::no_stage(pipeline, f));
        }
    }
    let selected = selection(pipeline, &opts.targets, opts.downstream)?;
    let jobs = opts.jobs.max(1);
    let total = machine_tokens(jobs);
    for (i, s) in pipeline.stages.iter().enumerate() {
        if !selected[i] {
            continue;
        }
        let need = needs(s, total, opts.executor);
        if need.mem > total.mem {
            return Err(EngineError::Usage(format!(
                "stage `{}` asks for {} of memory, but this machine has {}; lower its `resources mem`",
                s.name,
                human_bytes(need.mem),
                human_bytes(total.mem)
            )));
        }
        if need.gpu > total.gpu {
            return Err(EngineError::Usage(format!(
                "stage `{}` asks for {} GPU(s), but {} {} available; set MLP_GPUS if the count is wrong",
                s.name,
                need.gpu,
                total.gpu,
                if total.gpu == 1 { "is" } else { "are" }
            )));
        }
    }

    // Strays of a run that did not finish are swept before anything is decided.
    let unfinished = if opts.dry_run {
        None
    } else {
        Some(Unfinished::begin(ws, pipeline)?.0)
    };

    let old_snap = Snapshot::read(&ws.snapshot_path())
        .filter(|s| s.pipeline_file == opts.pipeline_file && s.overrides == opts.overrides);
    let snap = SnapView::new(pipeline, old_snap.as_ref(), &ws.root);

    let store = ws.open_store()?;
    let store: &SledStore = &store;
    let run_id = record::next_run_id(store)?;
    let stat_cache = StatCache::new(store.stat_entries()?);
    let cache = ObjectCache::open(&ws.cache_path())?.with_workspace(&ws.root);
    let interrupted = Arc::clone(&control.interrupted);
    let started = Instant::now();
    let started_ms = now_ms();
    let n_selected = selected.iter().filter(|s| **s).count();
    reporter.event(&Event::Start {
        run: record::short_id(&run_id),
        stages: n_selected,
    });

    if let Some(from) = store.meta(crate::workspace::RECOVERED_FROM)?
        && !from.is_empty()
    {
        reporter.event(&Event::Warning {
            message: format!(
                "the state store could not be read after a crash; it was moved to `{from}` and a new one started (run history and run-cache start afresh; outputs are checked and rebuilt as needed)"
            ),
        });
        store.put_meta(crate::workspace::RECOVERED_FROM, "")?;
    }
    let baseline = crate::judge::baseline(store)?;
    let facts = Facts {
        ws,
        p: pipeline,
        opts,
        store,
        run_id: run_id.clone(),
    };
    let decider = Decider {
        root: &ws.root,
        p: pipeline,
        store,
        stat_cache: &stat_cache,
        cache: (!opts.dry_run).then_some(&cache),
        snap: &snap,
        baseline: &baseline,
        run_id: &run_id,
        dry_run: opts.dry_run,
        remote: opts.remote.as_deref().filter(|_| !opts.dry_run),
        pull_only: opts.pull_only,
    };
    let duration = |i: usize| {
        snap.stage(&pipeline.stages[i].name)
            .map_or(1, |s| s.duration_ms)
    };
    let mut c = Coordinator {
        f: &facts,
        decider: &decider,
        queue: Queue::new(pipeline, &selected, duration, total),
        states: StageState::all(&selected, |i| opts.force.contains(&pipeline.stages[i].name)),
        reporter,
        baseline: &baseline,
        local: crate::executor::local(),
        stopping: false,
        interrupted: false,
        promote: false,
        pending: Vec::new(),
        caching: 0,
    };
    c.schedule(jobs, &control, &stat_cache, &cache)?;

    // The stat cache, the snapshot and the run record.
    let was_interrupted = interrupted.load(Ordering::SeqCst);
    if !opts.dry_run {
        store.put_stats(&stat_cache.dirty())?;
        store.remove_stats(&stat_cache.removed())?;
        let next = record::snapshot(&facts, &c.states, &snap);
        if let Err(e) = next.write(&ws.snapshot_path()) {
            c.reporter.event(&Event::Warning {
                message: format!("cannot write {}: {e}", ws.snapshot_path().display()),
            });
        }
    }
    let statuses: Vec<(String, Status)> = pipeline
        .order
        .iter()
        .filter(|&&i| c.states[i].selected)
        .map(|&i| {
            (
                pipeline.stages[i].name.clone(),
                c.states[i].status.clone().unwrap_or(Status::NotRun),
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
        // The published copy is about to be behind the store.
        let was_complete = published::begin(ws, store);
        let outcomes = Outcomes {
            started_ms,
            ok: report.ok(),
            interrupted: was_interrupted,
            promote: c.promote,
        };
        let rec = record::run_record(&facts, &c.states, &outcomes)?;
        store.put_run_json(&run_id, &rec)?;
        if c.promote && report.ok() {
            store.put_meta(BASELINE, &run_id)?;
        }
        store.flush()?;
        // Readers of the history while a later run holds the store read this copy.
        if let Err(e) = published::catch_up(ws, store, Some((&run_id, &rec)), was_complete) {
            c.reporter.event(&Event::Warning {
                message: format!(
                    "cannot copy the run record to {e}; while a run holds the workspace, `mlp runs` cannot show it"
                ),
            });
        }
    }
    if let Some(u) = unfinished {
        u.finish()?;
    }
    c.reporter.event(&Event::Finish {
        run: record::short_id(&run_id),
        ok: report.ok(),
        elapsed_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(0),
    });
    Ok(report)
}

/// The workspace lock for this run: `mlp run` takes it or fails (`--wait`: waits); a
/// dry run (which reads the store) waits a while for its holder; a run of `mlp watch`
/// waits until it is free or the watch ends ([`RunControl::give_up`]).
fn take_workspace(
    ws: &Workspace,
    opts: &RunOptions,
    control: &RunControl,
    reporter: &mut dyn Reporter,
) -> Result<lock::WorkspaceLock, EngineError> {
    let mut waiting = |holder: &str| {
        reporter.event(&Event::Waiting {
            holder: holder.to_string(),
        })
    };
    let mut patience = Patience {
        limit: None,
        cancel: Some(&control.interrupted),
        waiting: Some(&mut waiting),
    };
    if opts.dry_run {
        patience.limit = Some(opts.read_wait.unwrap_or(lock::READ_WAIT));
        return lock::acquire_patiently(&ws.dir, "mlp run --dry-run", &mut patience).map_err(|e| {
            match e {
                LockError::Held { holder, .. } => EngineError::in_use(&holder),
                e => e.into(),
            }
        });
    }
    if control.mode == Mode::Watch {
        patience.cancel = Some(&control.give_up);
        return Ok(lock::acquire_patiently(
            &ws.dir,
            "mlp watch",
            &mut patience,
        )?);
    }
    Ok(lock::acquire(&ws.dir, "mlp run", opts.wait)?)
}
