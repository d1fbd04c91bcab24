//! Param and metric values: what YAML, TOML, JSON and `.mlp` literals have in common.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) | Value::Float(_) => "number",
            Value::Str(_) => "string",
            Value::List(_) => "list",
            Value::Map(_) => "map",
        }
    }

    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Look up a dotted key (`train.lr`) in a nested map.
    pub fn lookup<'a>(map: &'a BTreeMap<String, Value>, key: &str) -> Option<&'a Value> {
        let mut parts = key.split('.');
        let mut cur = map.get(parts.next()?)?;
        for p in parts {
            cur = match cur {
                Value::Map(m) => m.get(p)?,
                Value::List(l) => l.get(p.parse::<usize>().ok()?)?,
                _ => return None,
            };
        }
        Some(cur)
    }

    /// Set a dotted key, creating maps on the way (replacing non-maps).
    pub fn insert(map: &mut BTreeMap<String, Value>, key: &str, value: Value) {
        match key.split_once('.') {
            None => {
                map.insert(key.to_string(), value);
            }
            Some((head, rest)) => {
                let entry = map
                    .entry(head.to_string())
                    .or_insert_with(|| Value::Map(BTreeMap::new()));
                if !matches!(entry, Value::Map(_)) {
                    *entry = Value::Map(BTreeMap::new());
                }
                if let Value::Map(m) = entry {
                    Value::insert(m, rest, value);
                }
            }
        }
    }

    /// Every leaf key of a nested map, dotted (for "did you mean").
    pub fn keys(map: &BTreeMap<String, Value>) -> Vec<String> {
        let mut out = Vec::new();
        for (k, v) in map {
            out.push(k.clone());
            if let Value::Map(m) = v {
                out.extend(Value::keys(m).into_iter().map(|s| format!("{k}.{s}")));
            }
        }
        out
    }

    /// Parse a `--set key=value` value: a number, bool or JSON value if it reads as one,
    /// else the string as it is.
    pub fn parse_cli(text: &str) -> Value {
        if let Ok(i) = text.parse::<i64>() {
            return Value::Int(i);
        }
        if let Ok(f) = text.parse::<f64>()
            && f.is_finite()
        {
            return Value::Float(f);
        }
        match text {
            "true" => return Value::Bool(true),
            "false" => return Value::Bool(false),
            "null" => return Value::Null,
            _ => {}
        }
        // `--set 'k="5"'`: a JSON string, forced (no number, bool or list is read into it).
        if text.starts_with('"')
            && let Ok(serde_json::Value::String(s)) = serde_json::from_str(text)
        {
            return Value::Str(s);
        }
        if (text.starts_with('[') || text.starts_with('{'))
            && let Ok(j) = serde_json::from_str::<serde_json::Value>(text)
        {
            return Value::from_json(j);
        }
        Value::Str(text.to_string())
    }

    pub fn from_json(j: serde_json::Value) -> Value {
        match j {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(b),
            serde_json::Value::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            serde_json::Value::String(s) => Value::Str(s),
            serde_json::Value::Array(a) => {
                Value::List(a.into_iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(o) => Value::Map(
                o.into_iter()
                    .map(|(k, v)| (k, Value::from_json(v)))
                    .collect(),
            ),
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map_or(serde_json::Value::Null, serde_json::Value::Number),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::List(l) => serde_json::Value::Array(l.iter().map(Value::to_json).collect()),
            Value::Map(m) => {
                serde_json::Value::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect())
            }
        }
    }
}

/// How a value reads when interpolated into a string: strings as they are, numbers and
/// bools as written, lists and maps as JSON.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write!(f, "{x}"),
            Value::Str(s) => f.write_str(s),
            Value::List(_) | Value::Map(_) => write!(f, "{}", self.to_json()),
        }
    }
}
