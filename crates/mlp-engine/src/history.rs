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
use crate::lock;
use crate::run::{BASELINE, EngineError};
use crate::store::{OutputRecord, SledStore, Store};
use crate::workspace::Workspace;

/// The store, for reading; a clear message when a run holds it or nothing ever ran.
pub fn open(ws: &Workspace) -> Result<SledStore, EngineError> {
    if !ws.store_path().exists() {
        return Err(EngineError::Usage(
            "no runs yet in this workspace; `mlp run` records one".into(),
        ));
    }
    if let Some(holder) = lock::holder(&ws.dir) {
        return Err(EngineError::InProgress(format!(
            "this workspace is in use by {holder}; try again when it has finished"
        )));
    }
    Ok(ws.open_store()?)
}

/// The id a user typed (`7`, `00000007`, `last`, `baseline`) as stored.
pub fn resolve(store: &SledStore, name: &str) -> Result<String, EngineError> {
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
    let t = id.trim_start_matches('0');
    if t.is_empty() { "0".into() } else { t.into() }
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

pub fn runs(store: &SledStore, limit: usize) -> Result<Vec<RunSummary>, EngineError> {
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
    pub a: Option<Value>,
    pub b: Option<Value>,
    /// `b - a` for numbers.
    pub delta: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Diff {
    pub a: String,
    pub b: String,
    pub rows: Vec<DiffRow>,
}

/// Params and metrics of two runs side by side, only what differs unless `all`.
/// Default: the last run against the baseline (or, with none, the run before it).
pub fn diff(
    store: &SledStore,
    a: Option<&str>,
    b: Option<&str>,
    all: bool,
) -> Result<Diff, EngineError> {
    let b_id = resolve(store, b.unwrap_or("last"))?;
    let a_id = match a {
        Some(a) => resolve(store, a)?,
        None => match store.meta(BASELINE)? {
            Some(base) if base != b_id => base,
            _ => {
                let runs = store.runs()?;
                let pos = runs.iter().position(|(k, _)| *k == b_id).unwrap_or(0);
                if pos == 0 {
                    return Err(EngineError::Usage(format!(
                        "nothing to compare run {} with: there is no baseline and no earlier run",
                        short(&b_id)
                    )));
                }
                runs[pos - 1].0.clone()
            }
        },
    };
    let ra = flatten_run(&store.run(&a_id)?.unwrap_or_default());
    let rb = flatten_run(&store.run(&b_id)?.unwrap_or_default());
    let mut keys: Vec<&String> = ra.keys().chain(rb.keys()).collect();
    keys.sort();
    keys.dedup();
    let rows = keys
        .into_iter()
        .filter_map(|k| {
            let (x, y) = (ra.get(k), rb.get(k));
            if !all && x == y {
                return None;
            }
            let delta = match (x.and_then(Value::as_f64), y.and_then(Value::as_f64)) {
                (Some(p), Some(q)) => Some(q - p),
                _ => None,
            };
            Some(DiffRow {
                key: k.clone(),
                a: x.cloned(),
                b: y.cloned(),
                delta,
            })
        })
        .collect();
    Ok(Diff {
        a: short(&a_id),
        b: short(&b_id),
        rows,
    })
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
