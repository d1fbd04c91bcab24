//! Values as DVC sees them: params and vars files read into ordered YAML values, and the
//! text DVC renders for a value in a `${...}` (Python's `str()`, with DVC's own rules for
//! booleans and for dictionaries unpacked into command-line flags).

use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

/// Read a params or vars file as DVC does, by extension: YAML (`.yaml`, `.yml`, and
/// anything unknown), JSON or TOML. Keys keep their order (TOML's are sorted).
pub fn load_file(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it: {e}"))?;
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("");
    let mut v: Value = match ext {
        "toml" => {
            let t: toml::Value = toml::from_str(&text).map_err(|e| e.to_string())?;
            serde_yaml_ng::to_value(t).map_err(|e| e.to_string())?
        }
        // JSON is YAML (and keeps its key order this way).
        _ => serde_yaml_ng::from_str(&text).map_err(|e| e.to_string())?,
    };
    v.apply_merge().map_err(|e| e.to_string())?;
    if v.is_null() {
        v = Value::Mapping(Mapping::new());
    }
    if !v.is_mapping() {
        return Err("its top level is not a mapping".into());
    }
    Ok(v)
}

/// Whether mlp reads this file as params (it chooses the format by extension).
pub fn mlp_reads(path: &str) -> bool {
    [".yaml", ".yml", ".json", ".toml"]
        .iter()
        .any(|e| path.ends_with(e))
}

/// A mapping key as text (`str(key)` in DVC).
pub fn key_str(k: &Value) -> String {
    match k {
        Value::String(s) => s.clone(),
        other => scalar_str(other).unwrap_or_default(),
    }
}

/// Python's `repr()` of a float, which `str()` gives too: the shortest digits that
/// round-trip, positional from 1e-4 up to 1e16, scientific (`1e-05`, `1e+16`) outside.
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf".into() } else { "-inf".into() };
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{x:e}"); // "1.5e-7", "-2e3"
    let (mant, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if (-4..16).contains(&exp) {
        let s = format!("{x}");
        if s.contains('.') { s } else { format!("{s}.0") }
    } else {
        let sign = if exp < 0 { '-' } else { '+' };
        format!("{mant}e{sign}{:02}", exp.abs())
    }
}

/// The text of a scalar as DVC renders it in `${...}`; `None` for a list or a mapping.
pub fn scalar_str(v: &Value) -> Option<String> {
    Some(match v {
        Value::Null => "None".into(),
        Value::Bool(b) => if *b { "true" } else { "false" }.into(),
        Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => i.to_string(),
            (_, Some(u)) => u.to_string(),
            _ => py_float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Value::String(s) => s.clone(),
        Value::Tagged(t) => return scalar_str(&t.value),
        Value::Sequence(_) | Value::Mapping(_) => return None,
    })
}

/// How `${dict}` in a `cmd` is unpacked (`.dvc/config`, section `parsing`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Unpack {
    /// `bool = boolean_optional`: false is `--no-KEY` (default: omitted).
    pub boolean_optional: bool,
    /// `list = append`: `--KEY a --KEY b` (default: `--KEY a b`).
    pub list_append: bool,
}

/// `dict` unpacked into flags as DVC does: nested keys joined with `.`, `--key value`,
/// strings shell-quoted, `true` as a bare `--key`, lists as several values.
pub fn unpack_dict(m: &Mapping, how: &Unpack) -> Result<String, String> {
    let mut flat = Vec::new();
    flatten(m, "", &mut flat);
    let mut out = String::new();
    for (k, v) in flat {
        match &v {
            Value::Bool(true) => out.push_str(&format!("--{k} ")),
            Value::Bool(false) => {
                if how.boolean_optional {
                    out.push_str(&format!("--no-{k} "));
                }
            }
            Value::String(s) => out.push_str(&format!("--{k} {} ", py_quote(s))),
            Value::Sequence(items) => {
                for (n, i) in items.iter().enumerate() {
                    let text = match i {
                        Value::String(s) => py_quote(s),
                        Value::Sequence(_) | Value::Mapping(_) => {
                            return Err(format!("cannot interpolate nested iterable in '{k}'"));
                        }
                        other => scalar_str(other).unwrap_or_default(),
                    };
                    if how.list_append || n == 0 {
                        out.push_str(&format!("--{k} {text} "));
                    } else {
                        out.push_str(&format!("{text} "));
                    }
                }
            }
            other => out.push_str(&format!("--{k} {} ", scalar_str(other).unwrap_or_default())),
        }
    }
    Ok(out.trim_end().to_string())
}

fn flatten(m: &Mapping, prefix: &str, out: &mut Vec<(String, Value)>) {
    for (k, v) in m {
        let key = if prefix.is_empty() {
            key_str(k)
        } else {
            format!("{prefix}.{}", key_str(k))
        };
        match v {
            Value::Mapping(inner) => flatten(inner, &key, out),
            other => out.push((key, other.clone())),
        }
    }
}

/// Python's `shlex.quote`: unchanged when made only of safe characters, else in single
/// quotes (an empty string is `''`).
pub fn py_quote(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./-_".contains(c))
    {
        return s.to_string();
    }
    format!("'{}'", s.replace('\'', "'\"'\"'"))
}

/// Look a dotted path up (`a.b.0.c`: list items by index), as DVC's `Context.select`.
pub fn select<'a>(root: &'a Value, path: &str) -> Option<&'a Value> {
    let mut cur = root;
    for seg in path.split('.') {
        let seg = seg.trim();
        cur = match cur {
            Value::Mapping(m) => m.iter().find(|(k, _)| key_str(k) == seg).map(|(_, v)| v)?,
            Value::Sequence(s) => s.get(seg.parse::<usize>().ok()?)?,
            Value::Tagged(t) => return select(&t.value, seg),
            _ => return None,
        };
    }
    Some(cur)
}

/// Merge `new` into `into` as DVC merges vars: mappings recursively, and a key defined in
/// both (not both mappings) is a conflict, reported by its dotted path.
pub fn merge_strict(into: &mut Mapping, new: &Mapping, prefix: &str) -> Result<(), String> {
    for (k, v) in new {
        let path = if prefix.is_empty() {
            key_str(k)
        } else {
            format!("{prefix}.{}", key_str(k))
        };
        match (into.get_mut(k), v) {
            (Some(Value::Mapping(a)), Value::Mapping(b)) => merge_strict(a, b, &path)?,
            (Some(_), _) => return Err(path),
            (None, _) => {
                into.insert(k.clone(), v.clone());
            }
        }
    }
    Ok(())
}

/// Whether two params trees define no key in common (they may share mappings): mlp merges
/// all params files into one set of keys, so two files defining one key would read, and
/// later follow, a single value.
pub fn disjoint(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Mapping(x), Value::Mapping(y)) => x.iter().all(|(k, v)| {
            y.get(k)
                .is_none_or(|w| v.is_mapping() && w.is_mapping() && disjoint(v, w))
        }),
        _ => false,
    }
}

/// Merge `b` over `a` (mappings recursively), as mlp merges params files.
pub fn merge_over(a: &mut Value, b: &Value) {
    match (a, b) {
        (Value::Mapping(x), Value::Mapping(y)) => {
            for (k, v) in y {
                match x.get_mut(k) {
                    Some(old) => merge_over(old, v),
                    None => {
                        x.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (a, b) => *a = b.clone(),
    }
}

/// A params key mlp can write (`train.lr`): segments are names.
pub fn is_mlp_key(key: &str) -> bool {
    !key.is_empty() && key.split('.').all(is_mlp_name)
}

/// `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_mlp_name(s: &str) -> bool {
    let mut c = s.chars();
    c.next()
        .is_some_and(|f| f.is_ascii_alphabetic() || f == '_')
        && c.all(|x| x.is_ascii_alphanumeric() || x == '_')
}

#[cfg(test)]
#[path = "value_tests.rs"]
mod tests;
