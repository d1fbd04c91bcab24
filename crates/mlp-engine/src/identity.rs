//! A stage's identity: blake3 over one canonical key of everything that decides its outputs.
//!
//! The key lists the command after interpolation, the content of every input (files,
//! directories, glob matches; upstream outputs are inputs like any other, so a rerun that
//! reproduces the same bytes does not invalidate what is downstream: early cutoff), the
//! values of the params keys the stage lists, its environment, its declared outputs, and
//! the cache-format version. No mtimes and no absolute paths of the workspace: a clone
//! elsewhere computes the same identities. Printing the key answers "why did this rerun?".

use std::collections::BTreeMap;
use std::io;

use mlp_plan::{InputKind, Stage};
use serde::{Deserialize, Serialize};

use crate::hash::{Content, Digest, Hasher, hex};

/// Bump when the key's meaning changes: every identity changes with it.
pub const CACHE_FORMAT: u32 = 1;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageKey {
    pub format: u32,
    pub command: String,
    /// Every input path with its content digest (`missing` when absent); glob patterns
    /// expand to their matches.
    pub inputs: BTreeMap<String, String>,
    pub params: BTreeMap<String, serde_json::Value>,
    pub env: BTreeMap<String, String>,
    pub outputs: Vec<String>,
    /// `after` stages, by name, with their identity (for an `always` stage, with the run
    /// it last ran in): `after x` reruns when `x` changes, without reading its outputs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub after: BTreeMap<String, String>,
}

impl StageKey {
    pub fn digest(&self) -> Digest {
        let mut h = blake3::Hasher::new();
        // serde_json writes struct fields in declaration order and BTreeMaps sorted:
        // the bytes are canonical.
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        h.update(&bytes);
        *h.finalize().as_bytes()
    }

    /// A key for nothing (a dry run's stage below one that would run).
    pub fn empty() -> StageKey {
        StageKey {
            format: CACHE_FORMAT,
            command: String::new(),
            inputs: BTreeMap::new(),
            params: BTreeMap::new(),
            env: BTreeMap::new(),
            outputs: Vec::new(),
            after: BTreeMap::new(),
        }
    }

    /// The key as a record keeps it.
    pub fn to_json(&self) -> crate::store::KeyJson {
        crate::store::KeyJson::of(self)
    }
}

/// How an input's content is written in a key.
pub fn content_text(c: &Content) -> String {
    match c {
        Content::Missing => "missing".to_string(),
        Content::File { digest, .. } => hex(digest),
        Content::Dir { digest, .. } => format!("dir:{}", hex(digest)),
    }
}

/// Hash a stage's inputs and build its key.
pub fn key(stage: &Stage, hasher: &Hasher<'_>) -> io::Result<StageKey> {
    let mut inputs = BTreeMap::new();
    for i in &stage.inputs {
        match i.kind {
            InputKind::Path => {
                let c = hash_input(hasher, &i.path)?;
                inputs.insert(i.path.clone(), content_text(&c));
            }
            InputKind::Glob => {
                let matches = hasher.glob(&i.path)?;
                let mut h = blake3::Hasher::new();
                for (p, c) in &matches {
                    h.update(p.as_bytes());
                    h.update(b"\0");
                    h.update(content_text(c).as_bytes());
                    h.update(b"\n");
                }
                inputs.insert(
                    i.path.clone(),
                    format!("glob:{}:{}", matches.len(), h.finalize().to_hex()),
                );
            }
        }
    }
    Ok(StageKey {
        format: CACHE_FORMAT,
        command: stage.command.clone(),
        inputs,
        params: stage
            .params
            .iter()
            .map(|(k, v)| (k.clone(), v.to_json()))
            .collect(),
        env: stage.env.clone(),
        outputs: stage.outputs.iter().map(|o| o.path.clone()).collect(),
        after: BTreeMap::new(),
    })
}

/// Add the `after` stages' identities to a key; `upstream` gives a stage's last successful
/// record's identity and run id.
pub fn add_after(
    key: &mut StageKey,
    p: &mlp_plan::Pipeline,
    stage: mlp_plan::StageId,
    upstream: impl Fn(mlp_plan::StageId) -> Option<(String, String)>,
) {
    for d in &p.stages[stage].deps {
        if d.kind != mlp_plan::DepKind::After {
            continue;
        }
        let up = &p.stages[d.stage];
        let v = match upstream(d.stage) {
            Some((id, run)) if up.always => format!("{id}:{run}"),
            Some((id, _)) => id,
            None => "never run".to_string(),
        };
        key.after.insert(up.name.clone(), v);
    }
}

/// Workspace paths go through the stat cache; paths outside it (absolute, `..`) are
/// hashed directly (they are external data: DVC calls them external dependencies).
pub fn hash_input(hasher: &Hasher<'_>, path: &str) -> io::Result<Content> {
    if path.starts_with('/') || path == ".." || path.starts_with("../") {
        let full = hasher.root().join(path);
        return match std::fs::metadata(&full) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Content::Missing),
            Err(e) => Err(e),
            Ok(m) if m.is_file() => {
                let (digest, size) = crate::hash::hash_file(&full)?;
                Ok(Content::File { digest, size })
            }
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "`{path}` is a directory outside the workspace: only files outside it can be inputs"
                ),
            )),
        };
    }
    hasher.path(path)
}

/// Which parts of two keys differ, for `mlp explain` and `mlp status`.
pub fn diff(old: &StageKey, new: &StageKey) -> Vec<String> {
    let mut out = Vec::new();
    if old.format != new.format {
        out.push(format!(
            "the cache format changed ({} → {})",
            old.format, new.format
        ));
    }
    if old.command != new.command {
        out.push(format!(
            "the command changed: `{}` → `{}`",
            old.command, new.command
        ));
    }
    for (p, d) in &new.inputs {
        match old.inputs.get(p) {
            None => out.push(format!("new input `{p}`")),
            Some(o) if o != d => {
                if d == "missing" {
                    out.push(format!("input `{p}` is missing"));
                } else {
                    out.push(format!("input `{p}` changed"));
                }
            }
            _ => {}
        }
    }
    for p in old.inputs.keys() {
        if !new.inputs.contains_key(p) {
            out.push(format!("input `{p}` was removed"));
        }
    }
    for (k, v) in &new.params {
        match old.params.get(k) {
            None => out.push(format!("new param `{k}` = {v}")),
            Some(o) if o != v => out.push(format!("param `{k}` changed: {o} → {v}")),
            _ => {}
        }
    }
    for k in old.params.keys() {
        if !new.params.contains_key(k) {
            out.push(format!("param `{k}` is no longer listed"));
        }
    }
    if old.env != new.env {
        let mut keys: Vec<&String> = old.env.keys().chain(new.env.keys()).collect();
        keys.sort();
        keys.dedup();
        for k in keys {
            if old.env.get(k) != new.env.get(k) {
                out.push(format!("env `{k}` changed"));
            }
        }
    }
    for (k, v) in &new.after {
        if old.after.get(k) != Some(v) {
            out.push(format!("`after` stage `{k}` changed"));
        }
    }
    if old.outputs != new.outputs {
        out.push("the declared outputs changed".to_string());
    }
    out
}
