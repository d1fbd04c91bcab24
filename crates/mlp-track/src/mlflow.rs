//! One mlp run into MLflow: the experiment (found or made), the run (found by its tags or
//! made), its params, metrics and tags in batches, its artifacts, its status.

use serde_json::{Value, json};

use crate::client::{Client, refused};
use crate::convert::{Artifact, Entities};
use crate::{Target, TrackError};

/// What an export did.
#[derive(Clone, Debug)]
pub struct Exported {
    pub experiment_id: String,
    pub run_id: String,
    /// The MLflow run existed already (a re-export updated it).
    pub updated: bool,
    /// Artifacts uploaded.
    pub artifacts: usize,
    /// Why no artifact was uploaded although there were some (the server keeps them where
    /// mlp cannot write through the REST API).
    pub artifacts_skipped: Option<String>,
}

/// MLflow's limits for one `log-batch`.
const BATCH_METRICS: usize = 1000;
const BATCH_PARAMS: usize = 100;
const BATCH_TAGS: usize = 100;

/// Exports runs to one target over one connection, looking the experiment up once.
pub struct Exporter {
    client: Client,
    experiment: String,
    experiment_id: Option<String>,
}

impl Exporter {
    /// Checks the URI; contacts nobody yet.
    pub fn new(t: &Target) -> Result<Exporter, TrackError> {
        Ok(Exporter {
            client: Client::new(t)?,
            experiment: t.experiment.clone(),
            experiment_id: None,
        })
    }

    /// Export one run: `e` from [`crate::entities`], `artifacts` the metrics files' bytes.
    pub fn export(&mut self, e: &Entities, artifacts: &[Artifact]) -> Result<Exported, TrackError> {
        let id = match &self.experiment_id {
            Some(id) => id.clone(),
            None => {
                let id = experiment(&self.client, &self.experiment)?;
                self.experiment_id = Some(id.clone());
                id
            }
        };
        run(&self.client, id, e, artifacts)
    }
}

/// Export one run to `t` (see [`Exporter`] for several).
pub fn export(t: &Target, e: &Entities, artifacts: &[Artifact]) -> Result<Exported, TrackError> {
    Exporter::new(t)?.export(e, artifacts)
}

fn run(
    c: &Client,
    experiment_id: String,
    e: &Entities,
    artifacts: &[Artifact],
) -> Result<Exported, TrackError> {
    let workspace = e.tags.get("mlp.workspace").cloned().unwrap_or_default();
    let mlp_run = e.tags.get("mlp.run_id").cloned().unwrap_or_default();
    let found = find(
        c,
        &experiment_id,
        &format!(
            "tags.`mlp.workspace` = '{}' and tags.`mlp.run_id` = '{}'",
            quote(&workspace),
            quote(&mlp_run)
        ),
    )?;
    let updated = !found.is_empty();
    let info = match found.into_iter().next() {
        Some(info) => info,
        None => {
            let r = c.call(
                "runs/create",
                &json!({
                    "experiment_id": experiment_id,
                    "run_name": e.run_name,
                    "start_time": e.start_ms,
                    "tags": [
                        {"key": "mlp.workspace", "value": workspace},
                        {"key": "mlp.run_id", "value": mlp_run},
                    ],
                }),
            )?;
            r["run"]["info"].clone()
        }
    };
    let run_id = info["run_id"].as_str().unwrap_or_default().to_string();
    if run_id.is_empty() {
        return Err(TrackError::Server(
            "MLflow's `runs/create` answered no run id".into(),
        ));
    }
    log(c, &run_id, e)?;
    if e.tags.get("mlp.baseline").map(String::as_str) == Some("true") {
        unmark_old_baselines(c, &experiment_id, &workspace, &run_id)?;
    }
    let (uploaded, artifacts_skipped) =
        upload(c, info["artifact_uri"].as_str().unwrap_or(""), artifacts)?;
    c.call(
        "runs/update",
        &json!({"run_id": run_id, "status": e.status, "end_time": e.end_ms}),
    )?;
    Ok(Exported {
        experiment_id,
        run_id,
        updated,
        artifacts: uploaded,
        artifacts_skipped,
    })
}

/// The experiment's id, made when no experiment has that name.
fn experiment(c: &Client, name: &str) -> Result<String, TrackError> {
    let endpoint = "experiments/get-by-name";
    match c.get(endpoint, &[("experiment_name", name)])? {
        Ok(v) => {
            let exp = &v["experiment"];
            if exp["lifecycle_stage"] == "deleted" {
                return Err(TrackError::Server(format!(
                    "the MLflow experiment `{name}` is deleted: restore it in MLflow, or name another experiment"
                )));
            }
            Ok(exp["experiment_id"]
                .as_str()
                .unwrap_or_default()
                .to_string())
        }
        Err(r) if r.code == "RESOURCE_DOES_NOT_EXIST" || r.status == 404 => {
            let made = c.post("experiments/create", &json!({ "name": name }))?;
            match made {
                Ok(v) => Ok(v["experiment_id"].as_str().unwrap_or_default().to_string()),
                // Made meanwhile by another exporter: look it up again.
                Err(r) if r.code == "RESOURCE_ALREADY_EXISTS" => {
                    match c.get(endpoint, &[("experiment_name", name)])? {
                        Ok(v) => Ok(v["experiment"]["experiment_id"]
                            .as_str()
                            .unwrap_or_default()
                            .to_string()),
                        Err(r) => Err(refused(endpoint, &r)),
                    }
                }
                Err(r) => Err(refused("experiments/create", &r)),
            }
        }
        Err(r) => Err(refused(endpoint, &r)),
    }
}

/// The `info` of every active run of the experiment that matches `filter`.
fn find(c: &Client, experiment_id: &str, filter: &str) -> Result<Vec<Value>, TrackError> {
    let v = c.call(
        "runs/search",
        &json!({
            "experiment_ids": [experiment_id],
            "filter": filter,
            "run_view_type": "ACTIVE_ONLY",
            "max_results": 100,
        }),
    )?;
    Ok(v["runs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["info"].clone())
        .collect())
}

/// Params, metrics and tags, in batches within MLflow's limits. A metric is logged at the
/// run's end time, step 0: logging it again adds nothing new.
fn log(c: &Client, run_id: &str, e: &Entities) -> Result<(), TrackError> {
    let params: Vec<Value> = e
        .params
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let metrics: Vec<Value> = e
        .metrics
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v, "timestamp": e.end_ms, "step": 0}))
        .collect();
    let tags: Vec<Value> = e
        .tags
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let batches = params
        .len()
        .div_ceil(BATCH_PARAMS)
        .max(metrics.len().div_ceil(BATCH_METRICS))
        .max(tags.len().div_ceil(BATCH_TAGS));
    for b in 0..batches {
        let part = |v: &[Value], n: usize| -> Vec<Value> {
            v.iter().skip(b * n).take(n).cloned().collect()
        };
        c.call(
            "runs/log-batch",
            &json!({
                "run_id": run_id,
                "params": part(&params, BATCH_PARAMS),
                "metrics": part(&metrics, BATCH_METRICS),
                "tags": part(&tags, BATCH_TAGS),
            }),
        )?;
    }
    Ok(())
}

/// This run is the baseline now: any other run of the workspace still tagged so is not.
fn unmark_old_baselines(
    c: &Client,
    experiment_id: &str,
    workspace: &str,
    run_id: &str,
) -> Result<(), TrackError> {
    let old = find(
        c,
        experiment_id,
        &format!(
            "tags.`mlp.workspace` = '{}' and tags.`mlp.baseline` = 'true'",
            quote(workspace)
        ),
    )?;
    for info in old {
        let id = info["run_id"].as_str().unwrap_or_default();
        if id != run_id && !id.is_empty() {
            c.call(
                "runs/set-tag",
                &json!({"run_id": id, "key": "mlp.baseline", "value": "false"}),
            )?;
        }
    }
    Ok(())
}

/// Upload the artifacts when the run's artifact URI is served by the tracking server
/// (`mlflow-artifacts:/...`, `mlflow server`'s default); otherwise say why not.
fn upload(
    c: &Client,
    artifact_uri: &str,
    artifacts: &[Artifact],
) -> Result<(usize, Option<String>), TrackError> {
    if artifacts.is_empty() {
        return Ok((0, None));
    }
    let Some(root) = artifact_uri.strip_prefix("mlflow-artifacts:") else {
        return Ok((
            0,
            Some(format!(
                "the run's artifacts go to `{}`, which the server does not serve (start `mlflow server` with artifact serving, its default)",
                artifact_uri.split('?').next().unwrap_or("")
            )),
        ));
    };
    // `mlflow-artifacts:/1/abc/artifacts` or `mlflow-artifacts://host:port/1/abc/artifacts`.
    let root = match root.strip_prefix("//") {
        Some(rest) => rest.split_once('/').map_or("", |(_, p)| p),
        None => root.trim_start_matches('/'),
    };
    for a in artifacts {
        c.put_artifact(
            &format!("{}/{}", root.trim_end_matches('/'), a.path),
            &a.bytes,
        )?;
    }
    Ok((artifacts.len(), None))
}

/// A value inside a `'...'` literal of MLflow's search syntax.
fn quote(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "\\'")
}
