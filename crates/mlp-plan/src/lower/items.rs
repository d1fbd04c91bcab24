//! Pass 2, the top-level items: the pipeline's name, its params (params files, then
//! `param` lines, then `--set`), its `env` and its `executor`.

use std::collections::BTreeMap;

use mlp_syntax::ast;

use super::{Lowerer, Options, Scope};
use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};
use crate::model::{Executor, RemoteItem, Tracking};
use crate::value::Value;

/// What the top-level items give besides the context's params, env and executor.
pub(super) struct Top {
    /// The `pipeline` item's name, if there is one.
    pub(super) name: Option<String>,
    /// The params files read, workspace-relative.
    pub(super) params_sources: Vec<String>,
    /// The `--set` overrides that name a key, parsed.
    pub(super) overrides: Vec<(String, Value)>,
    /// The `tracking` item, checked.
    pub(super) tracking: Option<Tracking>,
    /// The `remote` item, checked.
    pub(super) remote: Option<RemoteItem>,
}

/// The items that wait until every params file is read.
#[derive(Default)]
struct Later<'f> {
    params: Vec<(usize, &'f ast::Spanned<String>, &'f ast::Value)>,
    env: Vec<(usize, &'f Vec<ast::EnvPair>)>,
    executors: Vec<(usize, &'f ast::Executor)>,
    tracking: Vec<(usize, &'f ast::Tracking)>,
    cache: Vec<(usize, &'f ast::Spanned<String>)>,
    remote: Vec<(usize, &'f ast::Remote)>,
}

impl Lowerer {
    /// Read the top-level items of every file: sets `params`, `env` and `executor`.
    pub(super) fn top_level(&mut self, files: &[(usize, ast::File)], opts: &Options) -> Top {
        let mut name: Option<String> = None;
        let mut params_sources: Vec<String> = Vec::new();
        let mut later = Later::default();
        for (fid, f) in files {
            for item in &f.items {
                match &item.kind {
                    ast::ItemKind::Pipeline(s) if name.is_none() => {
                        name = Some(self.plain_str(*fid, s, Scope::empty()));
                    }
                    ast::ItemKind::ParamsFiles(list) => {
                        for s in list {
                            let rel = self.plain_str(*fid, s, Scope::empty());
                            if let Some(map) = self.read_params(*fid, s.span, &rel) {
                                merge(&mut self.params, map);
                                params_sources.push(rel);
                            }
                        }
                    }
                    ast::ItemKind::Param { key, value } => later.params.push((*fid, key, value)),
                    ast::ItemKind::Env(pairs) => later.env.push((*fid, pairs)),
                    ast::ItemKind::Executor(e) => later.executors.push((*fid, e)),
                    ast::ItemKind::Tracking(t) => later.tracking.push((*fid, t)),
                    ast::ItemKind::Cache(m) => later.cache.push((*fid, m)),
                    ast::ItemKind::Remote(r) => later.remote.push((*fid, r)),
                    ast::ItemKind::Unknown(w) => self.unknown_top_keyword(*fid, w),
                    _ => {}
                }
            }
        }
        for (fid, key, value) in later.params {
            let v = self.value(fid, value, self.scope(&[]));
            Value::insert(&mut self.params, &key.node, v);
        }
        let overrides = self.overrides(opts);
        for (fid, pairs) in later.env {
            for p in pairs {
                let v = self.value(fid, &p.value, self.scope(&[]));
                self.env.insert(p.name.node.clone(), v.to_string());
            }
        }
        self.pipeline_executor(&later.executors);
        self.pipeline_cache(&later.cache);
        let tracking = self.tracking(&later.tracking);
        let remote = self.remote(&later.remote);
        Top {
            name,
            params_sources,
            overrides,
            tracking,
            remote,
        }
    }

    fn unknown_top_keyword(&self, fid: usize, w: &ast::Spanned<String>) {
        if self.string_ran_on(fid, w) {
            return;
        }
        let mut d = Diagnostic::new(
            Code::UnknownKeyword,
            format!("unknown keyword `{}`", w.node),
        )
        .at(fid, w.span, "not a keyword");
        if w.node == "remote" {
            // Not reserved (a stage may be called `remote`): pest read a `remote` item
            // without its quoted URL as an unknown word.
            d = d.help("a `remote` item takes a quoted URL: `remote \"s3://bucket/prefix\"`");
            self.err(d);
            return;
        }
        d = d.help(match did_you_mean(
            &w.node,
            ast::TOP_KEYWORDS
                .iter()
                .chain(ast::SOFT_KEYWORDS)
                .chain(&["remote"])
                .copied(),
        ) {
            Some(m) => m,
            None => "a file holds `pipeline`, `params`, `param`, `env`, `executor`, `tracking`, `cache`, `remote`, `stage`, `for` and `include` items".into(),
        });
        self.err(d);
    }

    /// Apply the `--set` overrides to `params`; those that name a key, parsed.
    fn overrides(&mut self, opts: &Options) -> Vec<(String, Value)> {
        let mut overrides = Vec::new();
        for (k, v) in &opts.overrides {
            if Value::lookup(&self.params, k).is_none() {
                if self.params_failed {
                    continue;
                }
                let keys = Value::keys(&self.params);
                let mut d = Diagnostic::new(
                    Code::UnknownOverride,
                    format!("`--set {k}=...`: no params key `{k}`"),
                );
                d = d.help(match did_you_mean(k, keys.iter().map(String::as_str)) {
                    Some(m) => m,
                    None => "`--set` changes a key that a params file or a `param` defines".into(),
                });
                self.err(d);
                continue;
            }
            let parsed = Value::parse_cli(v);
            if let Some(old) = Value::lookup(&self.params, k)
                && !same_kind(old, &parsed)
                && !v.starts_with('"')
            {
                let (was, is) = (old.type_name(), parsed.type_name());
                let d = Diagnostic::new(
                    Code::OverrideType,
                    format!("`--set {k}={v}`: `{k}` is a {was} in the params, and `{v}` is a {is}"),
                )
                .help(if was == "string" {
                    format!("quote it to give a string: --set '{k}=\"{v}\"'")
                } else {
                    format!(
                        "give a {was}, or quote the value to force a string: --set '{k}=\"{v}\"'"
                    )
                });
                self.err(d);
                continue;
            }
            let v = parsed;
            Value::insert(&mut self.params, k, v.clone());
            overrides.push((k.clone(), v));
        }
        overrides
    }

    /// The pipeline's executor (one at most).
    fn pipeline_executor(&mut self, items: &[(usize, &ast::Executor)]) {
        for (k, (fid, e)) in items.iter().enumerate() {
            if k > 0 {
                let (first_fid, first) = items[0];
                let mut d = Diagnostic::new(
                    Code::DuplicateExecutor,
                    "the pipeline has two `executor` items",
                )
                .at(*fid, e.name.span, "again here");
                if first_fid == *fid {
                    d = d.also(first.name.span, "first here");
                }
                self.err(d.help("keep one `executor` at the top; a stage may name its own"));
                continue;
            }
            if let Some(g) = self.executor(*fid, e, self.scope(&[])) {
                self.executor = Executor {
                    kind: g.kind,
                    own: false,
                    slurm: std::sync::Arc::new(g.slurm),
                    ray: std::sync::Arc::new(g.ray),
                };
            }
        }
    }
}

/// Whether `--set` may replace `old` with `new`: the same kind of value (an integer and a
/// float are both numbers; a null in the params takes anything).
fn same_kind(old: &Value, new: &Value) -> bool {
    let number = |v: &Value| matches!(v, Value::Int(_) | Value::Float(_));
    matches!(old, Value::Null)
        || (number(old) && number(new))
        || std::mem::discriminant(old) == std::mem::discriminant(new)
}

/// Merge a params file into the params read so far: maps merge key by key, anything else
/// replaces.
fn merge(into: &mut BTreeMap<String, Value>, from: BTreeMap<String, Value>) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Map(a)), Value::Map(b)) => merge(a, b),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}
