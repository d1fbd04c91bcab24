//! The read-only commands: `mlp status`, `mlp explain`, and `mlp gc` (which only removes
//! what no kept record refers to).
//!
//! sled locks its directory for the whole process, so these commands cannot read the
//! store while `mlp run` (or a run of `mlp watch`) holds it. They first take the answer
//! the snapshot can give (a stage the snapshot proves fresh needs nothing else); only
//! what is left needs the store: they take the workspace lock while they read it,
//! waiting for a holder as the caller's [`Patience`] says, then name it.

use std::collections::{HashMap, HashSet};

use mlp_plan::Pipeline;
use serde::Serialize;

use crate::cache::ObjectCache;
use crate::decide::{Decider, Decision, Skip, SnapView};
use crate::events::{EngineError, Status};
use crate::hash::{Digest, Hasher, StatCache, hex, parse_hex};
use crate::identity::{self, StageKey};
use crate::lock::{self, LockError, Patience};
use crate::snapshot::Snapshot;
use crate::store::{Outcome, SledStore, Store};
use crate::workspace::Workspace;
use crate::{outputs, state};

/// A stage's state as `mlp status` reports it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum State {
    Fresh,
    Stale { reason: String },
    NeverRun,
    Failed { reason: String },
}

impl State {
    pub fn label(&self) -> &'static str {
        match self {
            State::Fresh => "fresh",
            State::Stale { .. } => "stale",
            State::NeverRun => "never run",
            State::Failed { .. } => "failed",
        }
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct StageState {
    pub stage: String,
    #[serde(flatten)]
    pub state: State,
}

/// The store with the workspace lock that lets us read it (a tuple drops in order: the
/// store is closed before the lock is let go); `None` when nothing ever ran. Waits for a
/// holder as `patience` says, then names it.
fn store_for_reading(
    ws: &Workspace,
    what: &str,
    patience: &mut Patience<'_>,
) -> Result<Option<(SledStore, lock::WorkspaceLock)>, EngineError> {
    if !ws.store_path().exists() {
        return Ok(None);
    }
    let l = match lock::acquire_patiently(&ws.dir, what, patience) {
        Ok(l) => l,
        Err(LockError::Held { holder, .. }) => return Err(EngineError::in_use(&holder)),
        Err(e) => return Err(e.into()),
    };
    Ok(Some((ws.open_store()?, l)))
}

/// Every stage's state, in pipeline order: what `mlp run --dry-run` would decide, in
/// the words of `mlp status` (both ask [`Decider`]).
pub fn status(
    ws: &Workspace,
    p: &Pipeline,
    pipeline_file: &str,
    patience: &mut Patience<'_>,
) -> Result<Vec<StageState>, EngineError> {
    let snap = Snapshot::read(&ws.snapshot_path())
        .filter(|s| s.pipeline_file == pipeline_file && s.overrides.is_empty());
    let view = SnapView::new(p, snap.as_ref(), &ws.root);
    let mut pass = state::StageState::all(&vec![true; p.stages.len()], |_| false);
    // Fresh by the snapshot (everything upstream too): no store needed.
    let mut states: Vec<Option<State>> = vec![None; p.stages.len()];
    for &i in &p.order {
        if view.proves_fresh(p, i, &pass) {
            pass[i].status = Some(Status::Fresh);
            states[i] = Some(State::Fresh);
        }
    }
    if states.iter().any(Option::is_none) {
        let reading = store_for_reading(ws, "mlp status", patience)?;
        if let Some((store, _lock)) = &reading {
            let stat_cache = StatCache::new(store.stat_entries()?);
            let baseline = crate::judge::baseline(store)?;
            let decider = Decider {
                root: &ws.root,
                p,
                store,
                stat_cache: &stat_cache,
                cache: None,
                snap: &view,
                baseline: &baseline,
                run_id: "",
                dry_run: true,
                remote: None,
                pull_only: false,
            };
            for &i in &p.order {
                if states[i].is_some() {
                    continue;
                }
                let d = decider.decide(i, &pass);
                states[i] = Some(state_of(store, &p.stages[i].name, &d)?);
                pass[i].status = Some(dry_status(&d));
                if let Decision::Restore { record, .. } = d {
                    // What is below is decided against the bytes the restore brings back.
                    pass[i].record = Some(Box::new(record));
                }
            }
        }
    }
    Ok(p.order
        .iter()
        .map(|&i| StageState {
            stage: p.stages[i].name.clone(),
            state: states[i].clone().unwrap_or(State::NeverRun),
        })
        .collect())
}

/// What `--dry-run` reports for a decision.
fn dry_status(d: &Decision) -> Status {
    match d {
        Decision::Fresh { .. } => Status::Fresh,
        Decision::Restore { .. } => Status::WouldRun {
            reason: crate::decide::WOULD_RESTORE.to_string(),
        },
        Decision::Run { why, .. } => Status::WouldRun {
            reason: why.run_text(),
        },
        Decision::Skip(s) => Status::Skipped {
            reason: s.to_string(),
        },
        Decision::Fail(e) => Status::failed(e.kind(), e.to_string()),
    }
}

/// A decision in the words of `mlp status`: a stage `mlp run` would leave alone is fresh
/// (or never run, when a `when` keeps skipping it); one it would run or restore is
/// failed (its last run failed), stale with the first reason, or never run.
fn state_of(store: &SledStore, name: &str, d: &Decision) -> Result<State, EngineError> {
    let left_alone = match d {
        Decision::Fresh { .. } => return Ok(State::Fresh),
        Decision::Skip(Skip::When(_)) => true,
        Decision::Skip(Skip::Upstream { how, .. }) => *how == "was skipped",
        _ => false,
    };
    let last = store.last(name)?;
    let last_ok = store.last_success(name)?;
    if let Some(l) = &last
        && l.outcome != Outcome::Succeeded
        && last_ok.as_ref().is_none_or(|ok| ok.ended_ms <= l.ended_ms)
    {
        let reason = if l.reason.is_empty() {
            failure_text(&l.outcome)
        } else {
            l.reason.clone()
        };
        return Ok(State::Failed { reason });
    }
    if !left_alone && last.is_some_and(|l| l.fallback_used) {
        return Ok(State::Stale {
            reason: "its last run used the fallback: the command is tried again".into(),
        });
    }
    if last_ok.is_none() {
        return Ok(State::NeverRun);
    }
    if left_alone {
        return Ok(State::Fresh);
    }
    let reason = match d {
        Decision::Run { why, .. } | Decision::Restore { why, .. } => why.status_text(),
        Decision::Fail(e) => e.to_string(),
        Decision::Skip(Skip::Upstream { stage, .. }) => {
            format!("upstream `{stage}` is not up to date")
        }
        Decision::Skip(s) => s.to_string(),
        Decision::Fresh { .. } => String::new(),
    };
    Ok(State::Stale { reason })
}

pub fn failure_text(o: &Outcome) -> String {
    match o {
        Outcome::Succeeded => "succeeded".into(),
        Outcome::Failed { code: Some(c), .. } => format!("exit code {c}"),
        Outcome::Failed {
            signal: Some(s), ..
        } => format!("killed by signal {s}"),
        Outcome::Failed { .. } => "failed".into(),
        Outcome::TimedOut => "timed out".into(),
        Outcome::Interrupted => "interrupted".into(),
        Outcome::CheckFailed { message } => message.clone(),
    }
}

/// `mlp explain STAGE`: the identity's parts now, and what changed since the last success.
#[derive(Debug, Serialize)]
pub struct Explanation {
    pub stage: String,
    pub identity: String,
    pub key: StageKey,
    pub last_success: Option<LastSuccess>,
    pub changes: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct LastSuccess {
    pub run: String,
    pub identity: String,
    pub ended_ms: u64,
}

pub fn explain(
    ws: &Workspace,
    p: &Pipeline,
    stage: &str,
    patience: &mut Patience<'_>,
) -> Result<Explanation, EngineError> {
    let i = p
        .stage(stage)
        .ok_or_else(|| EngineError::no_stage(p, stage))?;
    let s = &p.stages[i];
    let reading = store_for_reading(ws, "mlp explain", patience)?;
    let store = reading.as_ref().map(|(s, _)| s);
    let stat_cache = StatCache::new(match store {
        Some(st) => st.stat_entries()?,
        None => Vec::new(),
    });
    let hasher = Hasher::new(&ws.root, &stat_cache);
    let key = match store {
        // The key exactly as a run computes it (its `after` stages included).
        Some(st) => {
            let view = SnapView::new(p, None, &ws.root);
            let decider = Decider {
                root: &ws.root,
                p,
                store: st,
                stat_cache: &stat_cache,
                cache: None,
                snap: &view,
                baseline: &None,
                run_id: "",
                dry_run: true,
                remote: None,
                pull_only: false,
            };
            let pass = state::StageState::all(&vec![false; p.stages.len()], |_| false);
            decider.key(i, &pass).map_err(|e| match e {
                crate::decide::DecideError::HashInputs { source, .. } => EngineError::Io(source),
                other => EngineError::Io(std::io::Error::other(other)),
            })?
        }
        None => identity::key(s, &hasher)?,
    };
    let identity = hex(&key.digest());
    let last = match store {
        Some(st) => st.last_success(&s.name)?,
        None => None,
    };
    let mut changes = Vec::new();
    if let Some(l) = &last {
        match l.key.parse::<StageKey>() {
            Some(old) => changes = identity::diff(&old, &key),
            None => changes
                .push("the recorded key cannot be read (written by another mlp version)".into()),
        }
        if changes.is_empty()
            && let Some(c) =
                outputs::first_changed(&hasher, s, l, &mut Vec::new()).map_err(|e| match e {
                    outputs::OutputError::Hash { source, .. }
                    | outputs::OutputError::Read { source, .. } => EngineError::Io(source),
                    other => EngineError::Io(std::io::Error::other(other)),
                })?
        {
            changes.push(c.to_string());
        }
    }
    Ok(Explanation {
        stage: s.name.clone(),
        identity,
        key,
        last_success: last.map(|l| LastSuccess {
            run: crate::record::short_id(&l.run_id),
            identity: l.identity,
            ended_ms: l.ended_ms,
        }),
        changes,
    })
}

/// What `mlp gc` did.
#[derive(Debug, Default, Serialize)]
pub struct GcReport {
    pub records_dropped: usize,
    pub objects_removed: usize,
    pub bytes_freed: u64,
    pub objects_kept: usize,
}

/// Drop run-cache records of runs not kept (the last `keep_runs` runs, the baseline, and
/// every stage's last success are kept), then every object no remaining record refers to.
/// `mlp cache verify`: every object re-hashed (under the workspace lock, so that no run
/// restores from an object while it is judged).
pub fn verify_cache(
    ws: &Workspace,
    dry_run: bool,
) -> Result<crate::cache::VerifyReport, EngineError> {
    let _lock = lock::acquire(&ws.dir, "mlp cache verify", false)?;
    let cache = ObjectCache::open(&ws.cache_path())?;
    cache
        .verify(dry_run)
        .map_err(|e| EngineError::Io(std::io::Error::other(e.to_string())))
}

/// The runs gc keeps: the last `keep_runs`, those named in `keep`, and the baseline
/// (gates compare with it and `mlp checkout baseline` must work).
fn kept_run_ids(
    store: &dyn Store,
    runs: &[(String, serde_json::Value)],
    keep_runs: usize,
    keep: &HashSet<String>,
) -> Result<HashSet<String>, crate::store::StoreError> {
    let mut kept: HashSet<String> = runs
        .iter()
        .rev()
        .take(keep_runs)
        .map(|(id, _)| id.clone())
        .collect();
    kept.extend(keep.iter().cloned());
    if let Some(b) = store.meta(crate::judge::BASELINE)? {
        kept.insert(b);
    }
    Ok(kept)
}

/// The stage identities that the runs gc keeps (the last `keep_runs` and the baseline)
/// list, sorted: what `mlp push --kept` sends.
pub fn kept_identities(
    store: &dyn Store,
    keep_runs: usize,
) -> Result<Vec<String>, crate::store::StoreError> {
    let runs = store.runs()?;
    let kept = kept_run_ids(store, &runs, keep_runs, &HashSet::new())?;
    let mut out: Vec<String> = runs
        .iter()
        .filter(|(id, _)| kept.contains(id))
        .flat_map(|(_, run)| {
            run["stages"]
                .as_object()
                .into_iter()
                .flat_map(|m| m.values())
        })
        .filter_map(|s| s["identity"].as_str().map(str::to_string))
        .collect();
    out.sort();
    out.dedup();
    Ok(out)
}

pub fn gc(
    ws: &Workspace,
    keep_runs: usize,
    keep: &HashSet<String>,
    dry_run: bool,
) -> Result<GcReport, EngineError> {
    let _lock = lock::acquire(&ws.dir, "mlp gc", false)?;
    let store = ws.open_store()?;
    let cache = ObjectCache::open(&ws.cache_path())?;
    let runs = store.runs()?;
    let kept_runs = kept_run_ids(&store, &runs, keep_runs, keep)?;
    // A kept run needs every output it lists (also those of stages that were fresh in
    // it), and the records of those identities.
    let mut kept_ids: HashSet<String> = HashSet::new();
    let mut kept_outputs: Vec<crate::store::OutputRecord> = Vec::new();
    for (id, run) in &runs {
        if !kept_runs.contains(id) {
            continue;
        }
        for s in run["stages"]
            .as_object()
            .into_iter()
            .flat_map(|m| m.values())
        {
            if let Some(i) = s["identity"].as_str() {
                kept_ids.insert(i.to_string());
            }
            if let Ok(outs) =
                serde_json::from_value::<Vec<crate::store::OutputRecord>>(s["outputs"].clone())
            {
                kept_outputs.extend(outs);
            }
        }
    }
    let records = store.all_cached()?;
    let mut last_ok: HashMap<String, String> = HashMap::new();
    for r in &records {
        if let Some(l) = store.last_success(&r.stage)? {
            last_ok.insert(l.stage.clone(), l.identity.clone());
        }
    }
    let mut report = GcReport::default();
    let mut live: HashSet<Digest> = HashSet::new();
    for r in &records {
        let keep_it = kept_runs.contains(&r.run_id)
            || kept_ids.contains(&r.identity)
            || last_ok.get(&r.stage) == Some(&r.identity);
        if !keep_it {
            report.records_dropped += 1;
            if !dry_run {
                store.remove_cached(&r.identity)?;
            }
            continue;
        }
        for o in &r.outputs {
            let Some(d) = parse_hex(&o.digest) else {
                continue;
            };
            live.insert(d);
            if o.is_dir
                && let Ok(Some(entries)) = cache.manifest(&d)
            {
                live.extend(entries.iter().map(|e| e.digest));
            }
        }
    }
    // Stage records outside the run-cache (last success) keep their objects too.
    for l in last_ok.keys() {
        if let Some(rec) = store.last_success(l)? {
            for o in &rec.outputs {
                if let Some(d) = parse_hex(&o.digest) {
                    live.insert(d);
                }
            }
        }
    }
    for o in &kept_outputs {
        if let Some(d) = parse_hex(&o.digest) {
            live.insert(d);
            if o.is_dir
                && let Ok(Some(entries)) = cache.manifest(&d)
            {
                live.extend(entries.iter().map(|e| e.digest));
            }
        }
    }
    for (d, size) in cache.objects()? {
        if live.contains(&d) {
            report.objects_kept += 1;
            continue;
        }
        report.objects_removed += 1;
        report.bytes_freed += size;
        if !dry_run {
            cache.remove(&d)?;
        }
    }
    if !dry_run {
        let _ = cache.clean_tmp(std::time::Duration::from_secs(3600));
        store.flush()?;
    }
    Ok(report)
}
