//! What a report is made of: plain data, read from run records (the JSON `mlp show --json`
//! prints) and from the pipeline's checks and gates. Nothing here reads a file.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

/// Everything a report shows.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    /// The pipeline's name.
    pub pipeline: String,
    /// The runs shown, oldest first.
    pub runs: Vec<Run>,
    /// The promoted run's id, if any (it need not be among `runs`).
    pub baseline: Option<Run>,
    /// The pipeline's checks and gates.
    pub assertions: Vec<Assertion>,
    /// The stages in pipeline order with the stages each one needs (indices into this list).
    pub dag: Vec<DagNode>,
    /// Metrics the user asked for (`--metrics eval.auc,cost.usd`), as typed.
    pub wanted: Vec<String>,
}

/// One run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Run {
    /// As users type it: `10`.
    pub id: String,
    pub started_ms: u64,
    pub ended_ms: u64,
    pub ok: bool,
    pub interrupted: bool,
    /// The git commit (short) and whether the work tree was dirty.
    pub commit: Option<(String, bool)>,
    /// Params, flattened: `train.lr`.
    pub params: BTreeMap<String, Value>,
    /// Numeric metrics, flattened with their stage: `evaluate.eval.auc`.
    pub metrics: BTreeMap<String, f64>,
    /// Every stage the run knows about, in pipeline order.
    pub stages: Vec<StageRun>,
}

/// One stage in one run.
#[derive(Clone, Debug, Default, Serialize)]
pub struct StageRun {
    pub name: String,
    /// `ran`, `restored`, `fresh`, `failed`, `skipped`, `interrupted`, `not_run`,
    /// `not_selected`.
    pub status: String,
    /// Why it failed or was skipped.
    pub reason: Option<String>,
    /// How it failed: `gate`, `check`, `command`, ...
    pub kind: Option<String>,
    /// When it ran (only for a stage that ran or was restored in this run).
    pub started_ms: Option<u64>,
    pub ended_ms: Option<u64>,
    pub cpu_ms: u64,
    pub max_rss_kb: u64,
    pub notes: Vec<String>,
}

impl StageRun {
    pub fn duration_ms(&self) -> Option<u64> {
        Some(self.ended_ms?.saturating_sub(self.started_ms?))
    }
}

/// A `check` or `gate` of the pipeline.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Assertion {
    pub stage: String,
    /// `check` or `gate`.
    pub kind: String,
    /// The expression as written.
    pub text: String,
    pub message: Option<String>,
    /// The metric it compares (`evaluate.eval.auc`), when it compares one.
    pub metric: Option<String>,
    /// What the metric is compared with, when that is a number known before the run.
    pub threshold: Option<Threshold>,
    /// Whether it wants the metric high (`>=`, `>`) or low (`<=`, `<`).
    pub higher_is_better: Option<bool>,
}

/// `metric OP threshold`, with the metric on the left.
#[derive(Clone, Debug, Serialize)]
pub struct Threshold {
    /// `>=`, `>`, `<=`, `<`, `==`.
    pub op: String,
    pub limit: Limit,
}

/// A threshold's value.
#[derive(Clone, Debug, Serialize)]
pub enum Limit {
    /// A number written in the pipeline.
    Const(f64),
    /// A param (`params.eval.min_auc`): each run's own value.
    Param(String),
}

impl Threshold {
    /// The threshold as it was in `run`.
    pub fn value_in(&self, run: &Run) -> Option<f64> {
        match &self.limit {
            Limit::Const(x) => Some(*x),
            Limit::Param(k) => run.params.get(k).and_then(Value::as_f64),
        }
    }
}

/// A stage of the DAG.
#[derive(Clone, Debug, Default, Serialize)]
pub struct DagNode {
    pub name: String,
    /// The stages it needs, as indices into [`Report::dag`].
    pub deps: Vec<usize>,
}

impl Run {
    /// Read a run record as the store keeps it (`mlp show --json`).
    pub fn from_record(r: &Value) -> Run {
        let id = r["id"].as_str().unwrap_or("").trim_start_matches('0');
        let mut params = BTreeMap::new();
        flatten("", &r["params"], &mut params);
        let mut metrics = BTreeMap::new();
        let mut stages = Vec::new();
        let order: Vec<String> = match r["order"].as_array() {
            Some(o) => o
                .iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect(),
            None => r["stages"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default(),
        };
        for name in order {
            let s = &r["stages"][&name];
            if s.is_null() {
                continue;
            }
            // A stage that did not run in this run (skipped, not run, not selected, failed
            // before it could run) is listed with what its last success left (`from_run`):
            // not this run's result. A fresh stage's metrics still hold.
            let judged = match s["status"].as_str() {
                Some("ran" | "restored" | "fresh") => true,
                Some("failed") => s["from_run"].is_null(),
                _ => false,
            };
            if let Some(m) = s["metrics"].as_object().filter(|_| judged) {
                let mut flat = BTreeMap::new();
                for (k, v) in m {
                    flatten(&format!("{name}.{k}"), v, &mut flat);
                }
                metrics.extend(flat.into_iter().filter_map(|(k, v)| Some((k, v.as_f64()?))));
            }
            let text = |k: &str| s[k].as_str().map(String::from);
            stages.push(StageRun {
                status: text("status").unwrap_or_else(|| "?".into()),
                reason: text("reason"),
                kind: text("kind"),
                started_ms: s["started_ms"].as_u64(),
                ended_ms: s["ended_ms"].as_u64(),
                cpu_ms: s["cpu_ms"].as_u64().unwrap_or(0),
                max_rss_kb: s["max_rss_kb"].as_u64().unwrap_or(0),
                notes: s["notes"]
                    .as_array()
                    .map(|n| {
                        n.iter()
                            .filter_map(|x| x.as_str().map(String::from))
                            .collect()
                    })
                    .unwrap_or_default(),
                name,
            });
        }
        Run {
            id: if id.is_empty() { "0".into() } else { id.into() },
            started_ms: r["started_ms"].as_u64().unwrap_or(0),
            ended_ms: r["ended_ms"].as_u64().unwrap_or(0),
            ok: r["ok"].as_bool().unwrap_or(false),
            interrupted: r["interrupted"].as_bool().unwrap_or(false),
            commit: r["git"]["commit"].as_str().map(|c| {
                (
                    c.chars().take(8).collect(),
                    r["git"]["dirty"].as_bool().unwrap_or(false),
                )
            }),
            params,
            metrics,
            stages,
        }
    }

    pub fn duration_ms(&self) -> u64 {
        self.ended_ms.saturating_sub(self.started_ms)
    }

    /// CPU time of every stage that ran.
    pub fn cpu_ms(&self) -> u64 {
        self.stages.iter().map(|s| s.cpu_ms).sum()
    }

    /// The largest peak memory of a stage, KiB.
    pub fn max_rss_kb(&self) -> u64 {
        self.stages.iter().map(|s| s.max_rss_kb).max().unwrap_or(0)
    }

    /// `ok`, `FAILED` or `interrupted`.
    pub fn outcome(&self) -> &'static str {
        if self.interrupted {
            "interrupted"
        } else if self.ok {
            "ok"
        } else {
            "FAILED"
        }
    }

    /// The stages whose check or gate failed: (stage, kind, message).
    pub fn verdicts(&self) -> impl Iterator<Item = &StageRun> {
        self.stages
            .iter()
            .filter(|s| s.status == "failed" && matches!(s.kind.as_deref(), Some("gate" | "check")))
    }

    /// Failed stages whose command (not a check or gate) failed.
    pub fn failures(&self) -> impl Iterator<Item = &StageRun> {
        self.stages.iter().filter(|s| {
            s.status == "failed" && !matches!(s.kind.as_deref(), Some("gate" | "check"))
        })
    }
}

/// Nested JSON as dotted keys (`a.b.c`); lists keep their index (`a.0`).
pub fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, Value>) {
    let key = |k: &str| {
        if prefix.is_empty() {
            k.to_string()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                flatten(&key(k), x, out);
            }
        }
        Value::Null => {}
        other => {
            out.insert(prefix.to_string(), other.clone());
        }
    }
}
