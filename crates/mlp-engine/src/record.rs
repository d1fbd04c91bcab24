//! Recording: what a finished stage's record says, the run's entry in the history, and
//! the next snapshot. Only the coordinator writes the store.

use mlp_plan::{Pipeline, Stage};

use crate::control::RunOptions;
use crate::decide::SnapView;
use crate::events::{EngineError, FailureKind, Status, human_ms};
use crate::exec::Exit;
use crate::snapshot::{self, Entry, Snapshot, StageSnap};
use crate::state::StageState;
use crate::store::{Outcome, OutputRecord, SledStore, StageRecord, Store, StoreError};
use crate::worker::Done;
use crate::workspace::{Workspace, now_ms};

/// What does not change during a run.
pub struct Facts<'a> {
    pub ws: &'a Workspace,
    pub p: &'a Pipeline,
    pub opts: &'a RunOptions,
    pub store: &'a SledStore,
    pub run_id: String,
}

/// How a worker's stage ended: its outcome, its status, and (on success) its outputs and
/// metrics.
pub struct Ended {
    pub outcome: Outcome,
    pub status: Status,
    pub outputs: Vec<(OutputRecord, Vec<Entry>)>,
    pub metrics: serde_json::Value,
}

/// Read what a worker sent back.
pub fn ended(s: &Stage, done: &mut Done) -> Ended {
    let failed = |code, signal, kind, reason: String| Ended {
        outcome: Outcome::Failed { code, signal },
        status: Status::failed(kind, reason),
        outputs: Vec::new(),
        metrics: serde_json::Value::Null,
    };
    let note = attempts_note(done.attempts);
    let f = match &done.finished {
        Err(e) => {
            let why = format!("cannot run the command: {e}");
            return failed(None, None, FailureKind::Executor, why);
        }
        Ok(f) => f,
    };
    match &f.exit {
        Exit::Code(0) => {
            let outs = std::mem::replace(&mut done.outputs, Ok(Vec::new()));
            let metrics = std::mem::replace(&mut done.metrics, Ok(serde_json::Value::Null));
            match (outs, metrics) {
                (Ok(outputs), Ok(metrics)) => Ended {
                    outcome: Outcome::Succeeded,
                    status: Status::Ran {
                        attempts: done.attempts,
                    },
                    outputs,
                    metrics,
                },
                (Ok(_), Err(e)) | (Err(e), _) => failed(Some(0), None, e.kind(), e.to_string()),
            }
        }
        Exit::Code(c) => failed(
            Some(*c),
            None,
            FailureKind::Command,
            format!("exit code {c}{note}"),
        ),
        Exit::Signal(sig) => failed(
            None,
            Some(*sig),
            FailureKind::Command,
            format!("killed by signal {sig}{note}"),
        ),
        Exit::TimedOut => Ended {
            outcome: Outcome::TimedOut,
            status: Status::failed(
                FailureKind::Timeout,
                format!("timed out after {}", human_ms(s.timeout_ms.unwrap_or(0))),
            ),
            outputs: Vec::new(),
            metrics: serde_json::Value::Null,
        },
        Exit::Cancelled => Ended {
            outcome: Outcome::Interrupted,
            status: Status::Interrupted,
            outputs: Vec::new(),
            metrics: serde_json::Value::Null,
        },
        Exit::Scheduler(why) => failed(None, None, FailureKind::Executor, format!("{why}{note}")),
    }
}

fn attempts_note(n: u32) -> String {
    if n > 1 {
        format!(" (after {n} attempts)")
    } else {
        String::new()
    }
}

/// The record of a stage that failed before it could run (a missing input): remembered,
/// so that `mlp status` can say why.
pub fn failed_before_running(name: &str, run_id: &str, reason: String) -> StageRecord {
    let t = now_ms();
    StageRecord {
        stage: name.to_string(),
        identity: String::new(),
        key: crate::store::KeyJson::null(),
        outputs: Vec::new(),
        outcome: Outcome::Failed {
            code: None,
            signal: None,
        },
        run_id: run_id.to_string(),
        started_ms: t,
        ended_ms: t,
        attempts: 0,
        cpu_ms: 0,
        max_rss_kb: 0,
        metrics: serde_json::Value::Null,
        fallback_used: false,
        checks: String::new(),
        reason,
    }
}

/// How the run went, for its record.
pub struct Outcomes {
    pub started_ms: u64,
    pub ok: bool,
    pub interrupted: bool,
    /// A `promote` stage succeeded.
    pub promote: bool,
}

/// The run's entry in the history, as JSON text: what ran and how, with params, metrics
/// and output hashes of every stage (a stage that did not run this time is listed with
/// what its last success left, so that `mlp checkout` and baselines see the whole
/// pipeline). Each stage's entry is encoded as soon as it is made: at 100,000 stages a
/// JSON tree of the whole run was hundreds of megabytes.
pub fn run_record(
    f: &Facts<'_>,
    states: &[StageState],
    o: &Outcomes,
) -> Result<Vec<u8>, EngineError> {
    // In parallel: most entries read a stage's last success from the store (99,999 of
    // them in a one-change run at 100,000 stages).
    use rayon::prelude::*;
    let entries: Vec<Box<serde_json::value::RawValue>> =
        f.p.order
            .par_iter()
            .map(|&i| {
                let v = stage_entry(f, i, &states[i])?;
                serde_json::value::to_raw_value(&v).map_err(|e| {
                    EngineError::Store(StoreError::Encode {
                        what: "run record".into(),
                        detail: e.to_string(),
                    })
                })
            })
            .collect::<Result<_, _>>()?;
    let stages: std::collections::BTreeMap<&str, Box<serde_json::value::RawValue>> =
        f.p.order
            .iter()
            .map(|&i| f.p.stages[i].name.as_str())
            .zip(entries)
            .collect();
    let git = crate::git::state(&f.ws.root);
    let run = RunRecord {
        id: &f.run_id,
        pipeline: &f.p.name,
        started_ms: o.started_ms,
        ended_ms: now_ms(),
        ok: o.ok,
        interrupted: o.interrupted,
        git: git.map(|(commit, dirty)| serde_json::json!({"commit": commit, "dirty": dirty})),
        targets: &f.opts.targets,
        params: mlp_plan::Value::Map(f.p.params.clone()).to_json(),
        overrides: &f.opts.overrides,
        promoted: o.promote && o.ok,
        baseline: f.store.meta(crate::judge::BASELINE)?,
        order: f
            .p
            .order
            .iter()
            .map(|&i| f.p.stages[i].name.as_str())
            .collect(),
        stages,
    };
    serde_json::to_vec(&run).map_err(|e| {
        EngineError::Store(StoreError::Encode {
            what: "run record".into(),
            detail: e.to_string(),
        })
    })
}

/// The run record's top level (its keys in the order a JSON map of it would have).
#[derive(serde::Serialize)]
struct RunRecord<'a> {
    baseline: Option<String>,
    ended_ms: u64,
    git: Option<serde_json::Value>,
    id: &'a str,
    interrupted: bool,
    ok: bool,
    order: Vec<&'a str>,
    overrides: &'a [(String, String)],
    params: serde_json::Value,
    pipeline: &'a str,
    promoted: bool,
    stages: std::collections::BTreeMap<&'a str, Box<serde_json::value::RawValue>>,
    started_ms: u64,
    targets: &'a [String],
}

/// One stage's entry in the run record.
fn stage_entry(f: &Facts<'_>, i: usize, st: &StageState) -> Result<serde_json::Value, EngineError> {
    let s = &f.p.stages[i];
    let status = if st.selected {
        st.status.clone().unwrap_or(Status::NotRun)
    } else {
        Status::NotRun
    };
    let mut v = serde_json::to_value(&status).unwrap_or_default();
    let last;
    let rec = match &st.record {
        Some(r) => Some(&**r),
        None => {
            last = f.store.last_success(&s.name)?;
            last.as_ref()
        }
    };
    if let Some(obj) = v.as_object_mut() {
        if !st.selected {
            obj.insert("status".into(), "not_selected".into());
        }
        if let Some(r) = rec {
            obj.insert("identity".into(), r.identity.clone().into());
            obj.insert(
                "outputs".into(),
                serde_json::to_value(&r.outputs).unwrap_or_default(),
            );
            obj.insert("metrics".into(), r.metrics.clone());
            if st.record.is_some() {
                obj.insert("started_ms".into(), r.started_ms.into());
                obj.insert("ended_ms".into(), r.ended_ms.into());
                obj.insert(
                    "duration_ms".into(),
                    r.ended_ms.saturating_sub(r.started_ms).into(),
                );
                obj.insert("attempts".into(), r.attempts.into());
                obj.insert("cpu_ms".into(), r.cpu_ms.into());
                obj.insert("max_rss_kb".into(), r.max_rss_kb.into());
                obj.insert("fallback_used".into(), r.fallback_used.into());
            } else {
                obj.insert("from_run".into(), r.run_id.clone().into());
            }
        }
        // What an exporter (MLflow) needs without the pipeline at hand: the params
        // values the stage used and which of its outputs are metrics files.
        let used: serde_json::Map<String, serde_json::Value> = s
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect();
        obj.insert("params".into(), used.into());
        let metric_files: Vec<&str> = s
            .outputs
            .iter()
            .filter(|o| o.metrics)
            .map(|o| o.path.as_str())
            .collect();
        obj.insert("metric_files".into(), metric_files.into());
        if !st.notes.is_empty() {
            obj.insert("notes".into(), st.notes.clone().into());
        }
    }
    Ok(v)
}

/// The next snapshot: every stage that is up to date now, with what it watched.
pub fn snapshot(f: &Facts<'_>, states: &[StageState], snap: &SnapView<'_>) -> Snapshot {
    let mut b = snapshot::Builder::default();
    let root = &f.ws.root;
    let mut sources = Vec::new();
    for src in &f.p.sources {
        if let Ok(e) = Entry::stat(root, src) {
            sources.push(b.add(e));
        }
    }
    let mut stages = Vec::new();
    for (i, s) in f.p.stages.iter().enumerate() {
        let st = &states[i];
        let fresh_now = matches!(
            st.status,
            Some(Status::Fresh | Status::Restored | Status::Ran { .. })
        );
        // What it watched at the last snapshot, carried over as it was.
        let old_watch = || {
            let old = snap.snap?;
            let o = old.stage(&s.name).filter(|o| !o.skipped)?;
            Some(Watched::Old(old, o))
        };
        let watch = if fresh_now {
            if st.carried {
                old_watch()
            } else {
                st.watch.as_ref().map(Watched::New)
            }
        } else if !st.selected {
            // Not part of this run: what it was up to date with still holds (or not:
            // the stats decide next time).
            old_watch()
        } else if matches!(st.status, Some(Status::Skipped { .. })) {
            // Skipped by a `when` (or below one): while everything else stays as it
            // is, it stays skipped. The no-op needs to know that, not more.
            stages.push(StageSnap {
                name: s.name.clone(),
                shape: snap.shapes[i],
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
        let old = snap.stage(&s.name);
        let (succeeded_ms, duration_ms) = match st.status {
            Some(Status::Ran { .. }) => (st.ended_ms, st.ended_ms.saturating_sub(st.started_ms)),
            Some(Status::Restored) => (st.ended_ms, old.map_or(0, |o| o.duration_ms)),
            _ => (
                old.map(|o| o.succeeded_ms)
                    .or_else(|| {
                        f.store
                            .last_success(&s.name)
                            .ok()
                            .flatten()
                            .map(|r| r.ended_ms)
                    })
                    .unwrap_or_else(now_ms),
                old.map_or(0, |o| o.duration_ms),
            ),
        };
        let (identity, watch) = match w {
            Watched::New(w) => (w.identity, w.entries.iter().map(|e| b.add_ref(e)).collect()),
            Watched::Old(old, o) => (o.identity, b.carry(old, &o.watch)),
        };
        stages.push(StageSnap {
            name: s.name.clone(),
            shape: snap.shapes[i],
            identity,
            watch,
            always: s.always,
            skipped: false,
            succeeded_ms,
            // A frozen stage does not expire (see `decide::every_due`).
            every_ms: crate::decide::every_due(s, 0),
            duration_ms,
        });
    }
    stages.sort_by(|a, b| a.name.cmp(&b.name));
    Snapshot {
        written_ns: now_ns(),
        pipeline_file: f.opts.pipeline_file.clone(),
        total_stages: f.p.stages.len(),
        sources,
        overrides: f.opts.overrides.clone(),
        entries: b.entries,
        stages,
    }
}

/// What a stage is up to date with, for the next snapshot.
enum Watched<'a> {
    /// Seen in this run.
    New(&'a crate::snapshot::Watch),
    /// Its entry in the last snapshot (the snapshot, the entry).
    Old(&'a Snapshot, &'a StageSnap),
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

/// A run id as every command writes it, in text and in JSON: `10`, not the stored
/// `00000010`.
pub fn short_id(id: &str) -> String {
    let t = id.trim_start_matches('0');
    if t.is_empty() { "0".into() } else { t.into() }
}

/// Run ids: a counter per workspace, short and typeable (`1`, `2`, ...), stored
/// zero-padded so that they sort.
pub fn next_run_id(store: &SledStore) -> Result<String, StoreError> {
    let last = store
        .last_run_id()?
        .and_then(|k| k.trim_start_matches('0').parse::<u64>().ok())
        .unwrap_or(0);
    Ok(format!("{:08}", last + 1))
}
