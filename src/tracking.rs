//! Runs into MLflow: after every `mlp run` that did work, and `mlp runs --export mlflow`.
//!
//! The target is the pipeline's `tracking mlflow { ... }` item, with `MLFLOW_TRACKING_URI`
//! and `MLFLOW_EXPERIMENT_NAME` over it (either alone is enough). A run that could not be
//! exported is remembered in `.mlp/tracking/pending` and tried again first at the next run
//! or export; the pipeline's outcome never depends on the server.

use std::fs;
use std::path::PathBuf;
use std::time::Instant;

use mlp_engine::cache::ObjectCache;
use mlp_engine::hash::parse_hex;
use mlp_engine::history;
use mlp_engine::run::BASELINE;
use mlp_engine::store::Store;
use mlp_engine::workspace::Workspace;
use mlp_plan::model::Tracking;
use mlp_track::{Artifact, Auth, Exporter, Target, TrackError};

/// The target: the pipeline's item and MLflow's variables (which win); `None` when neither
/// names a server. `pipeline` names the experiment when nothing else does.
pub fn target(item: Option<&Tracking>, pipeline: &str) -> Option<Target> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let uri = env("MLFLOW_TRACKING_URI").or_else(|| item.and_then(|t| t.uri.clone()))?;
    let experiment = env("MLFLOW_EXPERIMENT_NAME")
        .or_else(|| item.and_then(|t| t.experiment.clone()))
        .unwrap_or_else(|| pipeline.to_string());
    Some(Target {
        uri,
        experiment,
        auth: Auth::from_vars(|k| std::env::var(k).ok()),
    })
}

/// What one export call did, for the command's report.
#[derive(Debug, Default, serde::Serialize)]
pub struct Report {
    /// `(mlp run, MLflow run id, updated)`.
    pub exported: Vec<(String, String, bool)>,
    /// Runs not exported, to be tried again.
    pub pending: Vec<String>,
    /// Why the first failed export failed (never holds a credential).
    pub error: Option<String>,
    /// Notes: artifacts that could not be uploaded.
    pub notes: Vec<String>,
    pub elapsed_ms: u64,
    /// The target cannot work as configured (not an `http://` URI): retrying will not help,
    /// so the new runs are not added to the pending list.
    #[serde(skip)]
    pub unusable: bool,
}

impl Report {
    /// The one-line warning after a run, if anything is left to export.
    pub fn warning(&self, t: &Target) -> Option<String> {
        let err = self.error.as_deref()?;
        if self.unusable {
            return Some(format!(
                "runs are not exported to MLflow: {err}; fix the `tracking` item or MLFLOW_TRACKING_URI, then `mlp runs --export mlflow` sends them"
            ));
        }
        let mut runs: Vec<String> = self.pending.iter().map(|r| history::short(r)).collect();
        if runs.len() > 6 {
            let n = runs.len();
            runs.drain(3..n - 2);
            runs.insert(3, format!("... ({n} runs)"));
        }
        Some(format!(
            "run {} not exported to MLflow at {} ({err}); it is tried again at the next run, or with `mlp runs --export mlflow`",
            runs.join(", "),
            t.display_uri()
        ))
    }
}

/// Export `runs` (stored ids) and every pending run before them, oldest first. Stops at
/// the first run that fails (the others stay pending); never fails itself.
pub fn export(ws: &Workspace, store: &dyn Store, t: &Target, runs: &[String]) -> Report {
    let t0 = Instant::now();
    let pending_before = read_pending(ws);
    let mut todo = pending_before.clone();
    for r in runs {
        if !todo.contains(r) {
            todo.push(r.clone());
        }
    }
    todo.sort();
    let mut report = Report::default();
    let workspace = workspace_key(ws);
    let baseline = store.meta(BASELINE).ok().flatten();
    let cache = ObjectCache::open(&ws.cache_path()).ok();
    let mut exporter = match Exporter::new(t) {
        Ok(x) => x,
        Err(e) => {
            report.error = Some(e.to_string());
            report.unusable = true;
            report.pending = pending_before;
            write_pending(ws, &report.pending);
            return report;
        }
    };
    for (k, id) in todo.iter().enumerate() {
        let record = match store.run(id) {
            Ok(Some(r)) => r,
            // Gone from the history (a new store): nothing to export.
            Ok(None) => continue,
            Err(e) => {
                report.error = Some(format!("cannot read run {}: {e}", history::short(id)));
                report.pending.extend(todo[k..].iter().cloned());
                break;
            }
        };
        let entities = mlp_track::entities(&record, &workspace, baseline.as_deref());
        let artifacts = artifacts(&record, cache.as_ref());
        match exporter.export(&entities, &artifacts) {
            Ok(done) => {
                if let Some(why) = done.artifacts_skipped {
                    report.notes.push(format!(
                        "run {}: artifacts not uploaded: {why}",
                        history::short(id)
                    ));
                }
                report
                    .exported
                    .push((history::short(id), done.run_id, done.updated));
            }
            Err(TrackError::Config(m)) => {
                report.error = Some(m);
                report.unusable = true;
                report.pending = pending_before;
                break;
            }
            Err(TrackError::Unreachable(m) | TrackError::Server(m)) => {
                report.error = Some(m);
                report.pending.extend(todo[k..].iter().cloned());
                break;
            }
        }
    }
    write_pending(ws, &report.pending);
    report.elapsed_ms = u64::try_from(t0.elapsed().as_millis()).unwrap_or(u64::MAX);
    report
}

/// The metrics files of every stage, as the run recorded them (from the object cache, so
/// a later run's files are never sent for an earlier run), under `STAGE/PATH`.
fn artifacts(record: &serde_json::Value, cache: Option<&ObjectCache>) -> Vec<Artifact> {
    let mut out = Vec::new();
    let Some(cache) = cache else { return out };
    for (stage, s) in record["stages"].as_object().into_iter().flatten() {
        for path in s["metric_files"].as_array().into_iter().flatten() {
            let Some(path) = path.as_str() else { continue };
            let digest = s["outputs"]
                .as_array()
                .into_iter()
                .flatten()
                .find(|o| o["path"] == path && o["is_dir"] != true)
                .and_then(|o| o["digest"].as_str())
                .and_then(parse_hex);
            let Some(d) = digest else { continue };
            if let Ok(bytes) = fs::read(cache.blob_path(&d)) {
                out.push(Artifact {
                    path: format!("{stage}/{path}"),
                    bytes,
                });
            }
        }
    }
    out
}

/// Leave `run` for the next export, without contacting the server.
pub fn remember(ws: &Workspace, run: &str) {
    let mut pending = read_pending(ws);
    if !pending.iter().any(|r| r == run) {
        pending.push(run.to_string());
        pending.sort();
    }
    write_pending(ws, &pending);
}

fn dir(ws: &Workspace) -> PathBuf {
    ws.dir.join("tracking")
}

/// This workspace's name in MLflow (`mlp.workspace`): run numbers restart at 1 in every
/// workspace, so the tag tells apart two workspaces exporting to one experiment. Made once.
fn workspace_key(ws: &Workspace) -> String {
    let path = dir(ws).join("workspace");
    if let Ok(k) = fs::read_to_string(&path) {
        let k = k.trim();
        if !k.is_empty() {
            return k.to_string();
        }
    }
    let root = fs::canonicalize(&ws.root).unwrap_or_else(|_| ws.root.clone());
    let seed = format!(
        "{}|{}|{:?}",
        root.display(),
        std::process::id(),
        std::time::SystemTime::now()
    );
    // SipHash with this process's random keys: a random, short name.
    let k = format!(
        "{:016x}",
        std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), seed)
    );
    let _ = fs::create_dir_all(dir(ws));
    let _ = write_atomic(&path, &k);
    k
}

fn read_pending(ws: &Workspace) -> Vec<String> {
    fs::read_to_string(dir(ws).join("pending"))
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

fn write_pending(ws: &Workspace, pending: &[String]) {
    let path = dir(ws).join("pending");
    if pending.is_empty() {
        let _ = fs::remove_file(path);
        return;
    }
    let _ = fs::create_dir_all(dir(ws));
    let _ = write_atomic(&path, &(pending.join("\n") + "\n"));
}

fn write_atomic(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let tmp = path.with_extension(format!("tmp{}", std::process::id()));
    fs::write(&tmp, text)?;
    fs::rename(tmp, path)
}
