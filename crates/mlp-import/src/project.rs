//! The files of a DVC project: every `dvc.yaml` (as `dvc dag` collects them), the `.dvc`
//! files that track data, `.dvc/config`'s parsing options, and line numbers in YAML text.

use std::path::{Path, PathBuf};

use serde_yaml_ng::{Mapping, Value};

use crate::value::{self, Unpack};

/// One `dvc.yaml`.
pub struct DvcFile {
    /// Its path from the project root, `/`-separated (`dvc.yaml`, `sub/dir/dvc.yaml`).
    pub rel: String,
    /// Its directory from the root (`""` for the root's).
    pub dir: String,
    pub text: String,
    pub doc: Mapping,
}

/// Every `dvc.yaml` under `root` (the root's first, then the others sorted by path),
/// skipping hidden directories (`.git`, `.dvc`, `.mlp`, virtualenvs named `.venv`).
pub fn dvc_files(root: &Path) -> Result<Vec<DvcFile>, String> {
    let mut paths = Vec::new();
    walk(root, root, &mut |rel, p| {
        if p.file_name().is_some_and(|n| n == "dvc.yaml") {
            paths.push((rel.to_string(), p.to_path_buf()));
        }
    });
    paths.sort_by(|a, b| {
        let depth = |s: &str| s.matches('/').count();
        (depth(&a.0), &a.0).cmp(&(depth(&b.0), &b.0))
    });
    let mut out = Vec::new();
    for (rel, p) in paths {
        let text = std::fs::read_to_string(&p).map_err(|e| format!("cannot read {rel}: {e}"))?;
        let mut v: Value =
            serde_yaml_ng::from_str(&text).map_err(|e| format!("{rel} does not parse: {e}"))?;
        v.apply_merge().map_err(|e| format!("{rel}: {e}"))?;
        let doc = match v {
            Value::Mapping(m) => m,
            Value::Null => Mapping::new(),
            _ => return Err(format!("{rel}: its top level is not a mapping")),
        };
        let dir = rel
            .strip_suffix("dvc.yaml")
            .unwrap_or("")
            .trim_end_matches('/')
            .to_string();
        out.push(DvcFile {
            rel,
            dir,
            text,
            doc,
        });
    }
    Ok(out)
}

/// The data `.dvc` files track: (tracked path, the `.dvc` file), both from the root.
pub fn tracked_data(root: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    walk(root, root, &mut |rel, p| {
        if !rel.ends_with(".dvc") || !p.is_file() {
            return;
        }
        let Ok(text) = std::fs::read_to_string(p) else {
            return;
        };
        let Ok(v) = serde_yaml_ng::from_str::<Value>(&text) else {
            return;
        };
        let dir = rel.rsplit_once('/').map_or("", |(d, _)| d);
        if let Some(Value::Sequence(outs)) = v.get("outs") {
            for o in outs {
                if let Some(path) = o.get("path").and_then(Value::as_str) {
                    out.push((join(dir, path), rel.to_string()));
                }
            }
        }
    });
    out.sort();
    out
}

fn walk(root: &Path, dir: &Path, f: &mut dyn FnMut(&str, &Path)) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for p in entries {
        let name = p.file_name().and_then(|n| n.to_str()).unwrap_or("");
        let rel = p
            .strip_prefix(root)
            .unwrap_or(&p)
            .to_string_lossy()
            .replace('\\', "/");
        if p.is_dir() {
            if !name.starts_with('.') && name != "node_modules" && name != "__pycache__" {
                walk(root, &p, f);
            }
        } else {
            f(&rel, &p);
        }
    }
}

/// `.dvc/config`'s `[parsing]` section: how `${dict}` is unpacked in commands.
pub fn unpack_config(root: &Path) -> Unpack {
    let mut u = Unpack::default();
    let Ok(text) = std::fs::read_to_string(root.join(".dvc/config")) else {
        return u;
    };
    let mut in_parsing = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with('[') {
            in_parsing = t == "[parsing]";
        } else if in_parsing && let Some((k, v)) = t.split_once('=') {
            match (k.trim(), v.trim()) {
                ("bool", "boolean_optional") => u.boolean_optional = true,
                ("list", "append") => u.list_append = true,
                _ => {}
            }
        }
    }
    u
}

/// Join and normalize a path from the root: `a/./b/../c` is `a/c`; absolute paths and
/// URLs stay as they are.
pub fn join(dir: &str, path: &str) -> String {
    if path.starts_with('/') || path.contains("://") {
        return path.to_string();
    }
    normalize(&if dir.is_empty() {
        path.to_string()
    } else {
        format!("{dir}/{path}")
    })
}

pub fn normalize(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for seg in p.split('/') {
        match seg {
            "" | "." => {}
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            s => parts.push(s),
        }
    }
    let s = parts.join("/");
    if p.starts_with('/') {
        format!("/{s}")
    } else {
        s
    }
}

/// Whether path `a` is `b` or lies inside directory `b`.
pub fn within(a: &str, b: &str) -> bool {
    a == b || a.starts_with(&format!("{b}/")) || b.is_empty()
}

/// The 1-based line of a key in YAML text: `path` is the chain of mapping keys from the
/// top (`["stages", "train", "outs"]`). The last key may be at any depth below its parent
/// (it can sit in a list item). The line of the deepest key found when one is missing.
pub fn line_of(text: &str, path: &[&str]) -> usize {
    let lines: Vec<&str> = text.lines().collect();
    let mut from = 0;
    let mut parent_indent: isize = -1;
    let mut found = 1;
    for (n, key) in path.iter().enumerate() {
        let last = n + 1 == path.len() && n > 0;
        let mut hit = None;
        let mut child_indent: Option<isize> = None;
        for (i, raw) in lines.iter().enumerate().skip(from) {
            let t = raw.trim_start();
            if t.is_empty() || t.starts_with('#') {
                continue;
            }
            let indent = (raw.len() - t.len()) as isize;
            if indent <= parent_indent {
                break;
            }
            let t = t.trim_start_matches("- ");
            let direct = child_indent.is_none_or(|c| c == indent);
            if child_indent.is_none() {
                child_indent = Some(indent);
            }
            if (direct || last) && key_matches(t, key) {
                hit = Some((i, indent));
                break;
            }
        }
        match hit {
            Some((i, indent)) => {
                found = i + 1;
                from = i + 1;
                parent_indent = indent;
            }
            None => break,
        }
    }
    found
}

fn key_matches(t: &str, key: &str) -> bool {
    t.trim_end() == key
        || [
            format!("{key}:"),
            format!("\"{key}\":"),
            format!("'{key}':"),
        ]
        .iter()
        .any(|k| t.starts_with(k.as_str()))
}

/// Read a params/vars file relative to the root.
pub fn load(root: &Path, rel: &str) -> Result<Value, String> {
    value::load_file(&root.join(rel))
}
