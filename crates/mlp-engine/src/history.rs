//! The run history, the experiment tracker: `mlp runs`, `show`, `diff`, `promote`,
//! `checkout`.
//!
//! Run ids are a counter per workspace (`1`, `2`, ...; stored zero-padded so that they
//! sort). `last` names the latest run and `baseline` the promoted one.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::cache::ObjectCache;
use crate::hash::parse_hex;
use crate::lock::{self, LockError, Patience};
use crate::published;
use crate::run::{BASELINE, EngineError};
use crate::store::{OutputRecord, Store};
use crate::workspace::Workspace;

/// The run history, for reading: the published records ([`published`]) when they are
/// complete, so that it answers while a run or `mlp watch` holds the store; else the
/// store itself, under the workspace lock (waiting as `patience` says).
pub struct History {
    // Field order is drop order: the store is closed before the lock is let go.
    store: Box<dyn Store>,
    _lock: Option<lock::WorkspaceLock>,
}

impl std::ops::Deref for History {
    type Target = dyn Store;
    fn deref(&self) -> &(dyn Store + 'static) {
        self.store.as_ref()
    }
}

/// The run history, for reading; a clear message when nothing ever ran, or when the
/// published records are incomplete and a run holds the store past `patience`.
pub fn open(ws: &Workspace, patience: &mut Patience<'_>) -> Result<History, EngineError> {
    if !ws.store_path().exists() {
        return Err(EngineError::Usage(
            "no runs yet in this workspace; `mlp run` records one".into(),
        ));
    }
    if published::is_complete(ws) {
        return Ok(History {
            store: Box::new(published::Published::new(ws)),
            _lock: None,
        });
    }
    let lock = match lock::acquire_patiently(&ws.dir, "mlp (reading the run history)", patience) {
        Ok(l) => l,
        Err(LockError::Held { holder, .. }) => return Err(EngineError::in_use(&holder)),
        Err(e) => return Err(e.into()),
    };
    Ok(History {
        store: Box::new(ws.open_store()?),
        _lock: Some(lock),
    })
}

/// The id a user typed (`7`, `00000007`, `last`, `baseline`) as stored.
pub fn resolve(store: &dyn Store, name: &str) -> Result<String, EngineError> {
    let id = match name {
        "last" | "latest" => store
            .runs()?
            .last()
            .map(|(k, _)| k.clone())
            .ok_or_else(|| EngineError::Usage("no runs yet".into()))?,
        "baseline" => store.meta(BASELINE)?.ok_or_else(|| {
            EngineError::Usage("no baseline yet: a run with a successful `promote` stage, or `mlp promote RUN`, sets it".into())
        })?,
        n if !n.is_empty() && n.len() <= 8 && n.bytes().all(|b| b.is_ascii_digit()) => format!("{:08}", n.parse::<u64>().unwrap_or(0)),
        other => {
            return Err(EngineError::Usage(format!(
                "`{other}` is not a run: give its number (as `mlp runs` lists it), `last` or `baseline`"
            )));
        }
    };
    if store.run(&id)?.is_none() {
        return Err(EngineError::Usage(format!(
            "there is no run {} (see `mlp runs`)",
            short(&id)
        )));
    }
    Ok(id)
}

/// A run id as users type it.
pub fn short(id: &str) -> String {
    crate::record::short_id(id)
}

/// One line of `mlp runs`.
#[derive(Debug, Serialize)]
pub struct RunSummary {
    pub id: String,
    pub started_ms: u64,
    pub duration_ms: u64,
    pub ok: bool,
    pub interrupted: bool,
    pub baseline: bool,
    pub counts: BTreeMap<String, u64>,
    pub git: Value,
    pub overrides: Value,
}

pub fn runs(store: &dyn Store, limit: usize) -> Result<Vec<RunSummary>, EngineError> {
    let baseline = store.meta(BASELINE)?;
    let all = store.runs()?;
    let from = all.len().saturating_sub(limit);
    Ok(all[from..]
        .iter()
        .rev()
        .map(|(id, r)| {
            let mut counts = BTreeMap::new();
            if let Some(stages) = r["stages"].as_object() {
                for s in stages.values() {
                    let st = s["status"].as_str().unwrap_or("?");
                    if st != "not_selected" {
                        *counts.entry(st.to_string()).or_default() += 1;
                    }
                }
            }
            RunSummary {
                id: short(id),
                started_ms: r["started_ms"].as_u64().unwrap_or(0),
                duration_ms: r["ended_ms"]
                    .as_u64()
                    .unwrap_or(0)
                    .saturating_sub(r["started_ms"].as_u64().unwrap_or(0)),
                ok: r["ok"].as_bool().unwrap_or(false),
                interrupted: r["interrupted"].as_bool().unwrap_or(false),
                baseline: baseline.as_deref() == Some(id.as_str()),
                counts,
                git: r["git"].clone(),
                overrides: r["overrides"].clone(),
            }
        })
        .collect())
}

/// Params and metrics of a run, flattened to dotted keys: `params.train.lr`,
/// `metrics.evaluate.eval.auc`.
pub fn flatten_run(run: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    flatten("params", &run["params"], &mut out);
    if let Some(stages) = run["stages"].as_object() {
        for (name, s) in stages {
            if let Some(m) = s["metrics"].as_object() {
                for (metric, v) in m {
                    flatten(&format!("metrics.{name}.{metric}"), v, &mut out);
                }
            }
        }
    }
    out
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                flatten(&format!("{prefix}.{k}"), x, out);
            }
        }
        Value::Null => {}
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// One row of `mlp diff`.
#[derive(Debug, Serialize)]
pub struct DiffRow {
    pub key: String,
    /// With two runs: the first run's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub a: Option<Value>,
    /// With two runs: the second run's value.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub b: Option<Value>,
    /// With two runs: `b - a` for numbers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub delta: Option<f64>,
    /// Every run's value, in the order of [`Diff::runs`].
    pub values: Vec<Option<Value>>,
    /// Each value minus the first run's, for numbers.
    pub deltas: Vec<Option<f64>>,
}

#[derive(Debug, Serialize)]
pub struct Diff {
    /// The first run (what the others are compared with).
    pub a: String,
    /// The last run.
    pub b: String,
    /// Every run compared, as `mlp runs` writes them.
    pub runs: Vec<String>,
    pub rows: Vec<DiffRow>,
}

/// Which runs `mlp diff` compares.
pub enum DiffRuns<'a> {
    /// The runs named (none: the last run against the baseline, or against the run before
    /// it; one: that run against the last).
    Named(&'a [String]),
    /// The last N runs, oldest first.
    Last(usize),
}

/// Params and metrics of runs side by side, only what differs unless `all`.
pub fn diff(store: &dyn Store, which: DiffRuns<'_>, all: bool) -> Result<Diff, EngineError> {
    let ids: Vec<String> = match which {
        DiffRuns::Last(n) => {
            let runs = store.runs()?;
            if n < 2 {
                return Err(EngineError::Usage(format!(
                    "`--last {n}`: give 2 or more runs to compare"
                )));
            }
            if runs.len() < 2 {
                return Err(EngineError::Usage(
                    "only one run so far: nothing to compare it with".into(),
                ));
            }
            runs[runs.len().saturating_sub(n)..]
                .iter()
                .map(|(k, _)| k.clone())
                .collect()
        }
        DiffRuns::Named(names) if names.len() >= 2 => names
            .iter()
            .map(|n| resolve(store, n))
            .collect::<Result<_, _>>()?,
        DiffRuns::Named(names) => {
            let b_id = resolve(store, "last")?;
            let a_id = match names.first() {
                Some(a) => resolve(store, a)?,
                None => default_against(store, &b_id)?,
            };
            vec![a_id, b_id]
        }
    };
    let flat: Vec<BTreeMap<String, Value>> = ids
        .iter()
        .map(|id| Ok(flatten_run(&store.run(id)?.unwrap_or_default())))
        .collect::<Result<_, EngineError>>()?;
    let mut keys: Vec<&String> = flat.iter().flat_map(|f| f.keys()).collect();
    keys.sort();
    keys.dedup();
    let two = ids.len() == 2;
    let rows = keys
        .into_iter()
        .filter_map(|k| {
            let values: Vec<Option<Value>> = flat.iter().map(|f| f.get(k).cloned()).collect();
            if !all && values.iter().all(|v| *v == values[0]) {
                return None;
            }
            let first = values[0].as_ref().and_then(Value::as_f64);
            let deltas: Vec<Option<f64>> = values
                .iter()
                .map(|v| Some(v.as_ref()?.as_f64()? - first?))
                .collect();
            Some(DiffRow {
                key: k.clone(),
                a: if two { values[0].clone() } else { None },
                b: if two { values[1].clone() } else { None },
                delta: if two { deltas[1] } else { None },
                values,
                deltas,
            })
        })
        .collect();
    Ok(Diff {
        a: short(&ids[0]),
        b: short(&ids[ids.len() - 1]),
        runs: ids.iter().map(|i| short(i)).collect(),
        rows,
    })
}

/// What the last run is compared with by default: the baseline, else the run before it.
fn default_against(store: &dyn Store, b_id: &str) -> Result<String, EngineError> {
    if let Some(base) = store.meta(BASELINE)?.filter(|b| b != b_id) {
        return Ok(base);
    }
    let runs = store.runs()?;
    let pos = runs.iter().position(|(k, _)| k == b_id).unwrap_or(0);
    if pos == 0 {
        return Err(EngineError::Usage(format!(
            "nothing to compare run {} with: there is no baseline and no earlier run",
            short(b_id)
        )));
    }
    Ok(runs[pos - 1].0.clone())
}

/// A run's record as commands print it: run ids written as `mlp runs` writes them.
pub fn record(store: &dyn Store, id: &str) -> Result<Value, EngineError> {
    let mut run = store.run(id)?.unwrap_or_default();
    if let Some(i) = run["id"].as_str().map(short) {
        run["id"] = i.into();
    }
    if let Some(stages) = run["stages"].as_object_mut() {
        for s in stages.values_mut() {
            if let Some(f) = s["from_run"].as_str().map(short) {
                s["from_run"] = f.into();
            }
        }
    }
    Ok(run)
}

/// The records of the last `last` runs, oldest first, and the baseline's record.
pub fn records(store: &dyn Store, last: usize) -> Result<(Vec<Value>, Option<Value>), EngineError> {
    let ids: Vec<String> = store.runs()?.into_iter().map(|(k, _)| k).collect();
    let from = ids.len().saturating_sub(last);
    let runs = ids[from..]
        .iter()
        .map(|id| record(store, id))
        .collect::<Result<_, _>>()?;
    let baseline = match store.meta(BASELINE)? {
        Some(b) if store.run(&b)?.is_some() => Some(record(store, &b)?),
        _ => None,
    };
    Ok((runs, baseline))
}

/// Make a run the baseline.
pub fn promote(ws: &Workspace, name: &str) -> Result<String, EngineError> {
    let _lock = lock::acquire(&ws.dir, "mlp promote", false)?;
    let store = ws.open_store()?;
    let id = resolve(&store, name)?;
    let run = store.run(&id)?.unwrap_or_default();
    if !run["ok"].as_bool().unwrap_or(false) {
        return Err(EngineError::Usage(format!(
            "run {} did not succeed; only a successful run can be the baseline",
            short(&id)
        )));
    }
    store.put_meta(BASELINE, &id)?;
    // Not written: the copy is marked incomplete, and readers read the store instead.
    let _ = published::set_baseline(ws, &id);
    Ok(short(&id))
}

/// What `mlp checkout` did.
#[derive(Debug, Default, Serialize)]
pub struct Checkout {
    pub run: String,
    pub restored: Vec<String>,
    pub unchanged: Vec<String>,
}

/// Put every output of a run back, byte for byte, from the object cache. Nothing is
/// touched unless every object is still there.
pub fn checkout(ws: &Workspace, name: &str) -> Result<Checkout, EngineError> {
    let _lock = lock::acquire(&ws.dir, "mlp checkout", false)?;
    let store = ws.open_store()?;
    let id = resolve(&store, name)?;
    let run = store.run(&id)?.unwrap_or_default();
    let cache = ObjectCache::open(&ws.cache_path())?.with_workspace(&ws.root);
    let mut outputs: Vec<OutputRecord> = Vec::new();
    if let Some(stages) = run["stages"].as_object() {
        for s in stages.values() {
            if let Ok(outs) = serde_json::from_value::<Vec<OutputRecord>>(s["outputs"].clone()) {
                outputs.extend(outs);
            }
        }
    }
    let content = |o: &OutputRecord| {
        let digest = parse_hex(&o.digest).unwrap_or([0; 32]);
        if o.is_dir {
            crate::hash::Content::Dir {
                digest,
                files: 0,
                size: o.size,
            }
        } else {
            crate::hash::Content::File {
                digest,
                size: o.size,
            }
        }
    };
    let missing: Vec<&str> = outputs
        .iter()
        .filter(|o| o.digest != "missing" && !cache.contains(&content(o)))
        .map(|o| o.path.as_str())
        .collect();
    if !missing.is_empty() {
        return Err(EngineError::Usage(format!(
            "run {} cannot be checked out: the cache no longer has {} (removed by `mlp gc`); nothing was changed",
            short(&id),
            missing
                .iter()
                .map(|p| format!("`{p}`"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    let stat_cache = crate::hash::StatCache::new(Vec::new());
    let hasher = crate::hash::Hasher::new(&ws.root, &stat_cache);
    let mut report = Checkout {
        run: short(&id),
        ..Default::default()
    };
    for o in &outputs {
        if o.digest == "missing" {
            continue;
        }
        let want = content(o);
        if hasher
            .path(&o.path)
            .ok()
            .as_ref()
            .and_then(|c| c.digest().copied())
            == want.digest().copied()
        {
            report.unchanged.push(o.path.clone());
            continue;
        }
        cache
            .restore(&want, &ws.root.join(&o.path))
            .map_err(|e| EngineError::Usage(format!("cannot restore `{}`: {e}", o.path)))?;
        report.restored.push(o.path.clone());
    }
    // The no-op snapshot described the outputs before: let the next run look again.
    let _ = std::fs::remove_file(ws.snapshot_path());
    Ok(report)
}
