//! What the tables show, shared by the terminal, the HTML page and the Markdown: which
//! metrics get a column, the cost totals, the params that changed, deltas against the
//! baseline, the best run.

use serde_json::Value;

use crate::model::{Report, Run};

/// A metric column.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricCol {
    /// `evaluate.eval.auc`.
    pub key: String,
    /// As shown: `eval.auc`, with the stage only when two stages have the same metric.
    pub label: String,
    /// `true`: higher is better, as a check or gate says.
    pub higher_is_better: Option<bool>,
}

/// A total over every stage of a run: `usd` or `tokens`.
#[derive(Clone, Debug, PartialEq)]
pub struct CostCol {
    pub label: &'static str,
    pub keys: Vec<String>,
}

impl CostCol {
    pub fn total(&self, run: &Run) -> Option<f64> {
        let v: Vec<f64> = self
            .keys
            .iter()
            .filter_map(|k| run.metrics.get(k).copied())
            .collect();
        (!v.is_empty()).then(|| v.iter().sum())
    }
}

/// The columns of a report's tables.
#[derive(Clone, Debug, Default)]
pub struct Columns {
    pub metrics: Vec<MetricCol>,
    pub costs: Vec<CostCol>,
    /// Params whose value differs between the runs shown.
    pub params: Vec<String>,
}

/// How many metrics get a column when neither the user nor a check names any.
const DEFAULT_METRICS: usize = 4;

impl Columns {
    pub fn of(r: &Report) -> Columns {
        let all: Vec<&String> = {
            let mut k: Vec<&String> = r.runs.iter().flat_map(|x| x.metrics.keys()).collect();
            k.sort();
            k.dedup();
            k
        };
        let mut keys: Vec<String> = Vec::new();
        let push = |k: &str, keys: &mut Vec<String>| {
            if !keys.iter().any(|x| x == k) {
                keys.push(k.to_string());
            }
        };
        if r.wanted.is_empty() {
            // Gates first (they decide whether a run may go on), then checks.
            for kind in ["gate", "check"] {
                for a in r.assertions.iter().filter(|a| a.kind == kind) {
                    if let Some(m) = &a.metric {
                        push(m, &mut keys);
                    }
                }
            }
            if keys.is_empty() {
                for k in all
                    .iter()
                    .filter(|k| cost_kind(k).is_none())
                    .take(DEFAULT_METRICS)
                {
                    push(k, &mut keys);
                }
            }
        } else {
            for w in &r.wanted {
                let hits: Vec<&&String> = all.iter().filter(|k| matches(k, w)).collect();
                if hits.is_empty() {
                    push(w, &mut keys);
                }
                for k in hits {
                    push(k, &mut keys);
                }
            }
        }
        let metrics = keys
            .iter()
            .map(|k| {
                let short = k.split_once('.').map_or(k.as_str(), |(_, m)| m);
                let unique = keys
                    .iter()
                    .filter(|o| o.split_once('.').map_or(o.as_str(), |(_, m)| m) == short)
                    .count()
                    == 1;
                MetricCol {
                    key: k.clone(),
                    label: if unique { short.into() } else { k.clone() },
                    higher_is_better: r
                        .assertions
                        .iter()
                        .find(|a| a.metric.as_deref() == Some(k) && a.higher_is_better.is_some())
                        .and_then(|a| a.higher_is_better),
                }
            })
            .collect();
        Columns {
            metrics,
            costs: costs(&all),
            params: changed_params(&r.runs),
        }
    }
}

/// How many metrics (the first columns: gates' first) get a scatter plot per param.
pub const SCATTER_METRICS: usize = 4;

/// The changed params worth a scatter plot: not the thresholds of checks and gates (they
/// judge a metric, they do not move it).
pub fn scatter_params<'a>(r: &Report, cols: &'a Columns) -> Vec<&'a String> {
    cols.params
        .iter()
        .filter(|p| {
            !r.assertions.iter().any(|a| {
                a.threshold
                    .as_ref()
                    .is_some_and(|t| matches!(&t.limit, crate::model::Limit::Param(k) if k == *p))
            })
        })
        .collect()
}

/// A key the user typed names a metric: the whole key, or the key without its stage.
fn matches(key: &str, wanted: &str) -> bool {
    key == wanted || key.split_once('.').is_some_and(|(_, m)| m == wanted)
}

/// `usd` for money, `tokens` for tokens; none for anything else.
pub fn cost_kind(key: &str) -> Option<&'static str> {
    let last = key.rsplit('.').next().unwrap_or(key).to_ascii_lowercase();
    let words: Vec<&str> = last.split(['_', '-']).collect();
    if [
        "per", "avg", "mean", "median", "p50", "p95", "p99", "max", "min",
    ]
    .iter()
    .any(|w| words.contains(w))
    {
        // A rate (`usd_per_1k`, `tokens_per_answer`), not an amount.
        None
    } else if words.contains(&"usd") || words.contains(&"cost") || words.contains(&"dollars") {
        Some("usd")
    } else if words.contains(&"tokens") {
        Some("tokens")
    } else {
        None
    }
}

fn costs(all: &[&String]) -> Vec<CostCol> {
    let mut out: Vec<CostCol> = Vec::new();
    for label in ["usd", "tokens"] {
        // Top-level fields of a metrics file only (`stage.file.field`): a stage that
        // gathers other stages' costs under a nested key is not counted twice.
        let mut keys: Vec<String> = all
            .iter()
            .filter(|k| k.split('.').count() == 3 && cost_kind(k) == Some(label))
            .map(|k| k.to_string())
            .collect();
        // A metrics file that has a total besides its parts counts once.
        let totals: Vec<String> = keys
            .iter()
            .filter(|k| {
                let last = k.rsplit('.').next().unwrap_or("");
                last == label || last == format!("total_{label}")
            })
            .map(|k| parent(k).to_string())
            .collect();
        keys.retain(|k| {
            let last = k.rsplit('.').next().unwrap_or("");
            !totals.iter().any(|t| t == parent(k))
                || last == label
                || last == format!("total_{label}")
        });
        if !keys.is_empty() {
            out.push(CostCol { label, keys });
        }
    }
    out
}

fn parent(k: &str) -> &str {
    k.rsplit_once('.').map_or("", |(p, _)| p)
}

fn changed_params(runs: &[Run]) -> Vec<String> {
    let mut keys: Vec<&String> = runs.iter().flat_map(|r| r.params.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| {
            let mut vals = runs.iter().map(|r| r.params.get(*k));
            let first = vals.next().flatten();
            vals.any(|v| v != first)
        })
        .cloned()
        .collect()
}

/// `run`'s value of a metric minus the baseline's (none for the baseline itself).
pub fn delta(r: &Report, run: &Run, key: &str) -> Option<f64> {
    let b = r.baseline.as_ref()?;
    if b.id == run.id {
        return None;
    }
    Some(run.metrics.get(key)? - b.metrics.get(key)?)
}

/// The best run for a metric whose direction a check or gate gives (successful runs only);
/// of runs that tie, the baseline, else the first.
pub fn best<'a>(r: &'a Report, col: &MetricCol) -> Option<(&'a Run, f64)> {
    let up = col.higher_is_better?;
    let base = r.baseline.as_ref().map(|b| b.id.as_str());
    r.runs
        .iter()
        .filter(|x| x.ok)
        .filter_map(|x| Some((x, *x.metrics.get(&col.key)?)))
        .fold(None, |acc: Option<(&Run, f64)>, (x, v)| match acc {
            Some((_, b)) if v == b && base == Some(x.id.as_str()) => Some((x, v)),
            Some((_, b)) if (up && v <= b) || (!up && v >= b) => acc,
            _ => Some((x, v)),
        })
}

/// A number as the tables write it: up to 4 significant decimals, no trailing zeros.
pub fn num(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == x.trunc() && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    let a = x.abs();
    let decimals = if a >= 1000.0 {
        1
    } else if a >= 1.0 {
        3
    } else if a >= 0.001 {
        4
    } else if a >= 1e-9 {
        // Two significant digits: 0.00013, not 1.32e-4.
        (-a.log10().floor()) as usize + 1
    } else {
        return format!("{x:.2e}");
    };
    let s = format!("{x:.decimals$}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A delta with its sign: `+0.0123`.
pub fn signed(x: f64) -> String {
    if x == 0.0 {
        "±0".into()
    } else if x > 0.0 {
        format!("+{}", num(x))
    } else {
        num(x)
    }
}

/// Whether a delta is an improvement (`Some(true)`), a regression, or neither known.
pub fn judged(d: f64, higher_is_better: Option<bool>) -> Option<bool> {
    if d == 0.0 {
        return None;
    }
    higher_is_better.map(|up| (d > 0.0) == up)
}

/// A param value as text (`0.05`, `"a"` without quotes).
pub fn value_text(v: Option<&Value>) -> String {
    match v {
        None => "-".into(),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.as_f64().map_or(n.to_string(), num),
        Some(other) => other.to_string(),
    }
}

/// A duration as the reports write it (`850 ms`, `2.5 s`, `3m07s`, `1h05m`).
pub fn human_ms(ms: u64) -> String {
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 60_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

/// Peak memory: `12 MiB`, `1.5 GiB`.
pub fn human_kb(kb: u64) -> String {
    if kb == 0 {
        "-".into()
    } else if kb < 1024 * 1024 {
        format!("{} MiB", kb.div_ceil(1024))
    } else {
        format!("{:.1} GiB", kb as f64 / (1024.0 * 1024.0))
    }
}

/// A time in milliseconds since the epoch as `YYYY-MM-DD hh:mm:ssZ` (UTC).
pub fn when(ms: u64) -> String {
    let secs = ms / 1000;
    let days = secs / 86_400;
    let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    // Civil date from days since the epoch (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}:{s:02}Z")
}

/// The params of a run that changed, as `key=value` pairs.
pub fn param_pairs(run: &Run, keys: &[String]) -> Vec<(String, String)> {
    keys.iter()
        .map(|k| (k.clone(), value_text(run.params.get(k))))
        .collect()
}

/// Metric values of the runs by key, oldest run first (`None` where a run has none).
pub fn series<'a>(runs: &'a [Run], key: &str) -> Vec<(&'a Run, Option<f64>)> {
    runs.iter()
        .map(|r| (r, r.metrics.get(key).copied()))
        .collect()
}
