//! An mlp run record (as `mlp show --json` prints it) to MLflow's entities: params,
//! metrics, tags and the run's status.

use std::collections::BTreeMap;

use serde_json::Value;

/// One file to upload: where it goes under the run's artifacts, and its bytes.
#[derive(Clone, Debug)]
pub struct Artifact {
    pub path: String,
    pub bytes: Vec<u8>,
}

/// What one mlp run becomes in MLflow.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Entities {
    pub run_name: String,
    pub start_ms: u64,
    pub end_ms: u64,
    /// `FINISHED`, `FAILED` or `KILLED`.
    pub status: &'static str,
    pub params: BTreeMap<String, String>,
    pub metrics: BTreeMap<String, f64>,
    pub tags: BTreeMap<String, String>,
}

/// MLflow keeps at most this many characters of a param value (6000 since 2.x; older
/// servers 500) and of a tag value (8000; older 5000).
const PARAM_MAX: usize = 6000;
const TAG_MAX: usize = 5000;

/// The entities of `record`: `workspace` tells runs of different workspaces apart (their
/// numbers restart at 1); `baseline` is the workspace's promoted run now (stored id).
pub fn entities(record: &Value, workspace: &str, baseline: Option<&str>) -> Entities {
    let id = record["id"].as_str().unwrap_or("");
    let short = short(id);
    let mut e = Entities {
        run_name: format!("{} #{short}", record["pipeline"].as_str().unwrap_or("mlp")),
        start_ms: record["started_ms"].as_u64().unwrap_or(0),
        end_ms: record["ended_ms"].as_u64().unwrap_or(0),
        status: if record["interrupted"] == true {
            "KILLED"
        } else if record["ok"] == true {
            "FINISHED"
        } else {
            "FAILED"
        },
        ..Entities::default()
    };
    params(record, &mut e);
    metrics(record, &mut e);
    tags(record, workspace, baseline, &mut e);
    e
}

/// The params values the stages used (every stage's `params` keys), or the pipeline's
/// params for records written before stages listed theirs. An override (`--set`) is
/// logged with its value and marked by a tag `mlp.override.KEY`.
fn params(record: &Value, e: &mut Entities) {
    let mut used = BTreeMap::new();
    let mut listed = false;
    for s in stages(record) {
        if let Some(m) = s.1["params"].as_object() {
            listed = true;
            for (k, v) in m {
                used.insert(k.clone(), v.clone());
            }
        }
    }
    if !listed {
        flatten("", &record["params"], &mut used);
    }
    for (k, v) in used {
        e.params.insert(key(&k), text(&v, PARAM_MAX));
    }
}

/// Every metric (`stage.file.key`, numbers and booleans), and per stage that ran in this
/// run its duration, CPU time and peak memory.
fn metrics(record: &Value, e: &mut Entities) {
    for (name, s) in stages(record) {
        if let Some(m) = s["metrics"].as_object() {
            let mut flat = BTreeMap::new();
            for (file, v) in m {
                flatten(&format!("{name}.{file}"), v, &mut flat);
            }
            for (k, v) in flat {
                let n = match v {
                    Value::Number(n) => n.as_f64(),
                    Value::Bool(b) => Some(if b { 1.0 } else { 0.0 }),
                    _ => None,
                };
                if let Some(n) = n.filter(|n| n.is_finite()) {
                    e.metrics.insert(key(&k), n);
                }
            }
        }
        if let Some(ms) = s["duration_ms"].as_u64() {
            e.metrics
                .insert(key(&format!("{name}.duration_s")), ms as f64 / 1000.0);
        }
        if let Some(ms) = s["cpu_ms"].as_u64() {
            e.metrics
                .insert(key(&format!("{name}.cpu_s")), ms as f64 / 1000.0);
        }
        if let Some(kb) = s["max_rss_kb"].as_u64().filter(|&kb| kb > 0) {
            e.metrics
                .insert(key(&format!("{name}.peak_rss_mb")), kb as f64 / 1024.0);
        }
    }
    if e.end_ms >= e.start_ms && e.start_ms > 0 {
        e.metrics.insert(
            "run.duration_s".into(),
            (e.end_ms - e.start_ms) as f64 / 1000.0,
        );
    }
}

fn tags(record: &Value, workspace: &str, baseline: Option<&str>, e: &mut Entities) {
    let id = record["id"].as_str().unwrap_or("");
    let mut t = BTreeMap::new();
    t.insert("mlp.run_id".to_string(), short(id));
    t.insert("mlp.workspace".into(), workspace.to_string());
    if let Some(p) = record["pipeline"].as_str() {
        t.insert("mlp.pipeline".into(), p.to_string());
    }
    let outcome = match e.status {
        "KILLED" => "interrupted",
        "FINISHED" => "ok",
        _ => "failed",
    };
    t.insert("mlp.outcome".into(), outcome.into());
    if let Some(c) = record["git"]["commit"].as_str() {
        t.insert("mlp.git.commit".into(), c.to_string());
        t.insert("mlflow.source.git.commit".into(), c.to_string());
        t.insert(
            "mlp.git.dirty".into(),
            (record["git"]["dirty"] == true).to_string(),
        );
    }
    let is_baseline = baseline.is_some_and(|b| b == id);
    t.insert("mlp.baseline".into(), is_baseline.to_string());
    if let Some(b) = record["baseline"].as_str() {
        t.insert("mlp.baseline_run".into(), short(b));
    }
    t.insert(
        "mlp.promoted".into(),
        (record["promoted"] == true).to_string(),
    );
    if let Some(targets) = record["targets"].as_array().filter(|t| !t.is_empty()) {
        let names: Vec<&str> = targets.iter().filter_map(Value::as_str).collect();
        t.insert("mlp.targets".into(), names.join(", "));
    }
    let mut overrides = Vec::new();
    for o in record["overrides"].as_array().into_iter().flatten() {
        if let (Some(k), Some(v)) = (o[0].as_str(), o[1].as_str()) {
            t.insert(key(&format!("mlp.override.{k}")), v.to_string());
            overrides.push(format!("{k}={v}"));
        }
    }
    if !overrides.is_empty() {
        t.insert("mlp.overrides".into(), overrides.join(" "));
    }
    let (mut gates, mut checks, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for (name, s) in stages(record) {
        let status = s["status"].as_str().unwrap_or("?");
        t.insert(key(&format!("mlp.stage.{name}")), status.to_string());
        if let Some(reason) = s["reason"].as_str() {
            t.insert(
                key(&format!("mlp.stage.{name}.reason")),
                clip(reason, TAG_MAX),
            );
        }
        if status == "failed" {
            failed.push(name.clone());
            match s["kind"].as_str() {
                Some("gate") => {
                    gates.push(format!("{name}: {}", s["reason"].as_str().unwrap_or("")))
                }
                Some("check") => {
                    checks.push(format!("{name}: {}", s["reason"].as_str().unwrap_or("")))
                }
                _ => {}
            }
        }
    }
    if !failed.is_empty() {
        t.insert("mlp.failed_stages".into(), failed.join(", "));
    }
    if !gates.is_empty() {
        t.insert("mlp.failed_gates".into(), clip(&gates.join("; "), TAG_MAX));
    }
    if !checks.is_empty() {
        t.insert(
            "mlp.failed_checks".into(),
            clip(&checks.join("; "), TAG_MAX),
        );
    }
    e.tags = t;
}

fn stages(record: &Value) -> impl Iterator<Item = (&String, &Value)> {
    record["stages"].as_object().into_iter().flatten()
}

fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&p, x, out);
            }
        }
        Value::Null => {}
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}

/// A key MLflow accepts: alphanumerics, `_ - . / space`; anything else becomes `_`.
fn key(k: &str) -> String {
    k.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "_-./ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(250)
        .collect()
}

fn text(v: &Value, max: usize) -> String {
    match v {
        Value::String(s) => clip(s, max),
        other => clip(&other.to_string(), max),
    }
}

fn clip(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// A run id as users type it: `00000007` -> `7`.
pub(crate) fn short(id: &str) -> String {
    let t = id.trim_start_matches('0');
    if t.is_empty() { "0".into() } else { t.into() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_record_becomes_entities() {
        let rec = json!({
            "id": "00000003", "pipeline": "churn", "started_ms": 1000, "ended_ms": 4500,
            "ok": false, "interrupted": false, "baseline": "00000002",
            "git": {"commit": "abc", "dirty": true},
            "params": {"train": {"lr": 0.5}},
            "overrides": [["train.lr", "0.1"]],
            "stages": {
                "train": {"status": "ran", "duration_ms": 2000, "cpu_ms": 1500, "max_rss_kb": 2048,
                          "params": {"train.lr": 0.1},
                          "metrics": {"train": {"loss": 0.5, "nested": {"a": 1}, "name": "x"}}},
                "evaluate": {"status": "failed", "kind": "gate", "reason": "gate `auc >= 0.9` failed",
                             "metrics": {"eval": {"auc": 0.8}}}
            }
        });
        let e = entities(&rec, "ws1", Some("00000002"));
        assert_eq!(e.status, "FAILED");
        assert_eq!(e.run_name, "churn #3");
        assert_eq!(e.params["train.lr"], "0.1");
        assert_eq!(e.metrics["train.train.loss"], 0.5);
        assert_eq!(e.metrics["train.train.nested.a"], 1.0);
        assert!(!e.metrics.contains_key("train.train.name"));
        assert_eq!(e.metrics["evaluate.eval.auc"], 0.8);
        assert_eq!(e.metrics["train.duration_s"], 2.0);
        assert_eq!(e.metrics["train.cpu_s"], 1.5);
        assert_eq!(e.metrics["train.peak_rss_mb"], 2.0);
        assert_eq!(e.metrics["run.duration_s"], 3.5);
        assert_eq!(e.tags["mlp.run_id"], "3");
        assert_eq!(e.tags["mlp.baseline_run"], "2");
        assert_eq!(e.tags["mlp.baseline"], "false");
        assert_eq!(e.tags["mlp.git.dirty"], "true");
        assert_eq!(e.tags["mlp.override.train.lr"], "0.1");
        assert_eq!(
            e.tags["mlp.failed_gates"],
            "evaluate: gate `auc >= 0.9` failed"
        );
        assert_eq!(e.tags["mlp.outcome"], "failed");
    }

    #[test]
    fn old_records_fall_back_to_the_pipeline_params() {
        let rec = json!({"id": "1", "ok": true, "params": {"a": {"b": [1, 2]}, "c": "s"}});
        let e = entities(&rec, "w", Some("1"));
        assert_eq!(e.params["a.b"], "[1,2]");
        assert_eq!(e.params["c"], "s");
        assert_eq!(e.tags["mlp.baseline"], "true");
        assert_eq!(e.status, "FINISHED");
    }
}
