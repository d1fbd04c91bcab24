//! The read-only commands: `mlp status`, `mlp explain`, and `mlp gc` (which only removes
//! what no kept record refers to).
//!
//! sled locks its directory for the whole process, so these commands cannot read the
//! store while `mlp run` holds it. They first take the answer the snapshot can give
//! (a stage the snapshot proves fresh needs nothing else); only what is left needs the
//! store, and when a run holds it they say so instead of waiting.

use std::collections::{HashMap, HashSet};

use mlp_plan::{Pipeline, StageId};
use serde::Serialize;

use crate::cache::ObjectCache;
use crate::hash::{Content, Digest, Hasher, StatCache, hex, parse_hex};
use crate::identity::{self, StageKey};
use crate::lock;
use crate::run::{EngineError, shape};
use crate::snapshot::Snapshot;
use crate::store::{Outcome, SledStore, StageRecord, Store};
use crate::workspace::{Workspace, now_ms};

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

/// Why a command that needs the store cannot have it now.
fn store_for_reading(ws: &Workspace) -> Result<Option<SledStore>, EngineError> {
    if !ws.store_path().exists() {
        return Ok(None);
    }
    if let Some(holder) = lock::holder(&ws.dir) {
        return Err(EngineError::InProgress(format!(
            "mlp: this workspace is in use by {holder}; try again when it has finished"
        )));
    }
    Ok(Some(ws.open_store()?))
}

/// Every stage's state, in pipeline order.
pub fn status(
    ws: &Workspace,
    p: &Pipeline,
    pipeline_file: &str,
) -> Result<Vec<StageState>, EngineError> {
    let snap = Snapshot::read(&ws.snapshot_path())
        .filter(|s| s.pipeline_file == pipeline_file && s.overrides.is_empty());
    let fresh = snap
        .as_ref()
        .map(|s| s.check(&ws.root, now_ms()).fresh)
        .unwrap_or_default();
    let snap_fresh = |i: StageId| {
        let s = &p.stages[i];
        fresh.get(&s.name).copied().unwrap_or(false)
            && snap
                .as_ref()
                .and_then(|o| o.stage(&s.name))
                .is_some_and(|o| o.shape == shape(s) && !o.skipped)
    };
    // Fresh by the snapshot only when everything upstream is too (in order).
    let mut states: Vec<Option<State>> = vec![None; p.stages.len()];
    for &i in &p.order {
        if snap_fresh(i)
            && p.stages[i]
                .deps
                .iter()
                .all(|d| states[d.stage] == Some(State::Fresh))
        {
            states[i] = Some(State::Fresh);
        }
    }
    if states.iter().any(Option::is_none) {
        let store = store_for_reading(ws)?;
        let stats = match &store {
            Some(s) => s.stat_entries()?,
            None => Vec::new(),
        };
        let stat_cache = StatCache::new(stats);
        let hasher = Hasher::new(&ws.root, &stat_cache);
        for &i in &p.order {
            if states[i].is_some() {
                continue;
            }
            let state = match &store {
                None => State::NeverRun,
                Some(store) => stage_state(store, &hasher, p, i, &states)?,
            };
            states[i] = Some(state);
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

fn stage_state(
    store: &SledStore,
    hasher: &Hasher<'_>,
    p: &Pipeline,
    i: StageId,
    done: &[Option<State>],
) -> Result<State, EngineError> {
    let s = &p.stages[i];
    let last = store.last(&s.name)?;
    let last_ok = store.last_success(&s.name)?;
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
    if let Some(l) = &last
        && l.fallback_used
    {
        return Ok(State::Stale {
            reason: "its last run used the fallback: the command is tried again".into(),
        });
    }
    let Some(ok) = last_ok else {
        return Ok(State::NeverRun);
    };
    if !s.checks.is_empty() && ok.checks != crate::run::checks_digest(s) {
        return Ok(State::Stale {
            reason: "its checks or gates changed: its outputs are judged again".into(),
        });
    }
    if let Some(d) = s.deps.iter().find(|d| {
        matches!(
            done[d.stage],
            Some(State::Stale { .. } | State::NeverRun | State::Failed { .. })
        )
    }) {
        return Ok(State::Stale {
            reason: format!("upstream `{}` is not up to date", p.stages[d.stage].name),
        });
    }
    if s.always {
        return Ok(State::Stale {
            reason: "`always`: it runs every time".into(),
        });
    }
    if let Some(every) = s.every_ms
        && now_ms() >= ok.ended_ms.saturating_add(every)
    {
        return Ok(State::Stale {
            reason: format!("`every {}` has expired", crate::run::human_ms(every)),
        });
    }
    let mut key = identity::key(s, hasher)?;
    identity::add_after(&mut key, p, i, |j| {
        store
            .last_success(&p.stages[j].name)
            .ok()
            .flatten()
            .map(|r| (r.identity, r.run_id))
    });
    if hex(&key.digest()) != ok.identity && !s.frozen {
        let old: Option<StageKey> = serde_json::from_value(ok.key.clone()).ok();
        let reason = old
            .and_then(|o| identity::diff(&o, &key).into_iter().next())
            .unwrap_or_else(|| "its identity changed".to_string());
        return Ok(State::Stale { reason });
    }
    if let Some(changed) = changed_output(hasher, &ok)? {
        return Ok(State::Stale { reason: changed });
    }
    Ok(State::Fresh)
}

fn changed_output(hasher: &Hasher<'_>, rec: &StageRecord) -> Result<Option<String>, EngineError> {
    for o in &rec.outputs {
        let now = hasher.path(&o.path)?;
        match now {
            Content::Missing => return Ok(Some(format!("output `{}` is missing", o.path))),
            c if c.digest().map(hex).as_deref() != Some(o.digest.as_str()) => {
                return Ok(Some(format!("output `{}` was changed by hand", o.path)));
            }
            _ => {}
        }
    }
    Ok(None)
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

pub fn explain(ws: &Workspace, p: &Pipeline, stage: &str) -> Result<Explanation, EngineError> {
    let i = p.stage(stage).ok_or_else(|| {
        let hint = mlp_plan::diag::did_you_mean(stage, p.stages.iter().map(|s| s.name.as_str()))
            .map(|m| format!("; {m}"))
            .unwrap_or_default();
        EngineError::Usage(format!(
            "mlp: no stage `{stage}` in pipeline `{}`{hint}",
            p.name
        ))
    })?;
    let s = &p.stages[i];
    let store = store_for_reading(ws)?;
    let stat_cache = StatCache::new(match &store {
        Some(st) => st.stat_entries()?,
        None => Vec::new(),
    });
    let hasher = Hasher::new(&ws.root, &stat_cache);
    let mut key = identity::key(s, &hasher)?;
    if let Some(st) = &store {
        identity::add_after(&mut key, p, i, |j| {
            st.last_success(&p.stages[j].name)
                .ok()
                .flatten()
                .map(|r| (r.identity, r.run_id))
        });
    }
    let identity = hex(&key.digest());
    let last = match &store {
        Some(st) => st.last_success(&s.name)?,
        None => None,
    };
    let mut changes = Vec::new();
    if let Some(l) = &last {
        match serde_json::from_value::<StageKey>(l.key.clone()) {
            Ok(old) => changes = identity::diff(&old, &key),
            Err(_) => changes
                .push("the recorded key cannot be read (written by another mlp version)".into()),
        }
        if changes.is_empty()
            && let Some(c) = changed_output(&hasher, l)?
        {
            changes.push(c);
        }
    }
    Ok(Explanation {
        stage: s.name.clone(),
        identity,
        key,
        last_success: last.map(|l| LastSuccess {
            run: l.run_id,
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
    let mut kept_runs: HashSet<String> = runs
        .iter()
        .rev()
        .take(keep_runs)
        .map(|(id, _)| id.clone())
        .collect();
    kept_runs.extend(keep.iter().cloned());
    // The baseline is always kept: gates compare with it and `mlp checkout baseline`
    // must work.
    if let Some(b) = store.meta(crate::run::BASELINE)? {
        kept_runs.insert(b);
    }
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
