//! Metrics files: JSON, YAML or CSV, read after a stage succeeds.
//!
//! The format follows the extension (`.json`, `.yaml`/`.yml`, `.csv`; anything else is read
//! as JSON). JSON and YAML must hold a mapping at the top. A CSV file has a header row and
//! at least one data row; its metrics are the **last** row (a training log's final epoch),
//! with numbers, `true`/`false` and text told apart. An error names the file, the line and
//! what is wrong.

use std::path::Path;

use serde_json::{Map, Value};

/// Why a metrics file could not be read. The messages name the file (and, when the
/// parser knows it, the line).
#[derive(thiserror::Error, Debug)]
pub enum MetricsError {
    /// The file could not be read.
    #[error("cannot read metrics file `{rel}`: {source}")]
    Read {
        /// The file, relative to the workspace.
        rel: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid JSON, YAML or CSV.
    #[error("metrics file `{rel}`: {detail}")]
    Malformed {
        /// The file, relative to the workspace.
        rel: String,
        /// The parser's message, with the line.
        detail: String,
    },
    /// The file holds something other than a mapping at the top.
    #[error("metrics file `{rel}` must hold a mapping of names to values at the top, not {found}")]
    NotMapping {
        /// The file, relative to the workspace.
        rel: String,
        /// What it holds ("a list", ...).
        found: &'static str,
    },
}

/// The metrics in the file `rel` under `root`: a mapping (see the module docs).
pub fn read(root: &Path, rel: &str) -> Result<Value, MetricsError> {
    let full = root.join(rel);
    let bytes = std::fs::read(&full).map_err(|source| MetricsError::Read {
        rel: rel.to_string(),
        source,
    })?;
    let ext = Path::new(rel)
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("")
        .to_ascii_lowercase();
    let v = match ext.as_str() {
        "yaml" | "yml" => yaml(&bytes),
        "csv" => csv_last_row(&bytes),
        _ => json(&bytes),
    }
    .map_err(|detail| MetricsError::Malformed {
        rel: rel.to_string(),
        detail,
    })?;
    if !v.is_object() {
        return Err(MetricsError::NotMapping {
            rel: rel.to_string(),
            found: kind(&v),
        });
    }
    Ok(v)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "nothing",
        Value::Bool(_) => "a bool",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn json(bytes: &[u8]) -> Result<Value, String> {
    serde_json::from_slice(bytes)
        .map_err(|e| format!("line {}, column {}: {e}", e.line(), e.column()))
}

fn yaml(bytes: &[u8]) -> Result<Value, String> {
    serde_yaml_ng::from_slice::<Value>(bytes).map_err(|e| match e.location() {
        Some(l) => format!("line {}, column {}: {e}", l.line(), l.column()),
        None => e.to_string(),
    })
}

fn csv_last_row(bytes: &[u8]) -> Result<Value, String> {
    let mut r = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = r.headers().map_err(|e| csv_error(&e))?.clone();
    if headers.is_empty() || headers.iter().all(str::is_empty) {
        return Err("line 1: no header row".to_string());
    }
    let mut last = None;
    for rec in r.records() {
        last = Some(rec.map_err(|e| csv_error(&e))?);
    }
    let Some(row) = last else {
        return Err("line 2: a header but no data row".to_string());
    };
    let mut m = Map::new();
    for (h, v) in headers.iter().zip(row.iter()) {
        m.insert(h.to_string(), scalar(v));
    }
    Ok(Value::Object(m))
}

fn csv_error(e: &csv::Error) -> String {
    match e.position() {
        Some(p) => format!("line {}: {e}", p.line()),
        None => e.to_string(),
    }
}

fn scalar(s: &str) -> Value {
    if let Ok(i) = s.parse::<i64>() {
        return Value::from(i);
    }
    if let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        return Value::from(f);
    }
    match s {
        "true" => Value::Bool(true),
        "false" => Value::Bool(false),
        _ => Value::String(s.to_string()),
    }
}

/// A field of a metrics value by path (`report.by_class.0.f1`).
pub fn field<'a>(v: &'a Value, path: &[mlp_plan::expr::Segment]) -> Option<&'a Value> {
    let mut cur = v;
    for seg in path {
        cur = match seg {
            mlp_plan::expr::Segment::Field(f) => cur.get(f.as_str())?,
            mlp_plan::expr::Segment::Index(i) => cur.get(*i)?,
        };
    }
    Some(cur)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: &str, text: &str) -> Result<Value, String> {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(name), text).unwrap();
        read(d.path(), name).map_err(|e| e.to_string())
    }

    #[test]
    fn formats() {
        assert_eq!(with("m.json", r#"{"auc": 0.9}"#).unwrap()["auc"], 0.9);
        assert_eq!(with("m.yaml", "auc: 0.9\nn: 3\n").unwrap()["n"], 3);
        let v = with("m.csv", "epoch, loss, ok\n1, 0.5, false\n2, 0.25, true\n").unwrap();
        assert_eq!(v["epoch"], 2);
        assert_eq!(v["loss"], 0.25);
        assert_eq!(v["ok"], true);
    }

    #[test]
    fn malformed_files_name_the_line() {
        let e = with("m.json", "{\n  \"auc\": 0.9,\n  oops\n}").unwrap_err();
        assert!(e.contains("m.json") && e.contains("line 3"), "{e}");
        let e = with("m.yaml", "auc: 0.9\n  bad: [\n").unwrap_err();
        assert!(e.contains("m.yaml") && e.contains("line 2"), "{e}");
        let e = with("m.csv", "a,b\n1,2\n3\n").unwrap_err();
        assert!(e.contains("m.csv") && e.contains("line 3"), "{e}");
        let e = with("m.csv", "a,b\n").unwrap_err();
        assert!(e.contains("no data row"), "{e}");
        let e = with("m.json", "[1, 2]").unwrap_err();
        assert!(e.contains("mapping"), "{e}");
    }
}
