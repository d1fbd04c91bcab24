//! Writing the resolved DVC stages as mlp source.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use crate::Warning;
use crate::project;
use crate::stages::{Group, LoopVar, OutKind, Resolved, Stage};
use crate::template::{Seg, Text};
use crate::value::{self, is_mlp_key, key_str};

/// mlp's keywords: not usable as bare names.
pub const KEYWORDS: &[&str] = &[
    "pipeline",
    "params",
    "param",
    "env",
    "executor",
    "stage",
    "for",
    "include",
    "in",
    "out",
    "metrics",
    "after",
    "run",
    "check",
    "gate",
    "when",
    "every",
    "timeout",
    "retry",
    "fallback",
    "resources",
    "always",
    "frozen",
    "promote",
    "true",
    "false",
];

/// mlp's params: the files it reads, their merge, and the inline `param` lines.
struct Params {
    files: Vec<String>,
    /// Why a candidate file is not one of `files`.
    excluded: BTreeMap<String, String>,
    merged: Value,
    /// Each file's contents.
    values: BTreeMap<String, Value>,
    inline: Vec<(String, Value)>,
}

impl Params {
    fn get(&self, key: &str) -> Option<&Value> {
        value::select(&self.merged, key)
    }

    /// Whether mlp's `key` holds `v` (so `params KEY` and `${params.KEY}` mean DVC's).
    fn holds(&self, key: &str, v: &Value) -> bool {
        is_mlp_key(key) && self.get(key) == Some(v)
    }
}

/// What one stage's emission collects besides its text.
struct Out<'a> {
    params: Vec<String>,
    /// Keys written into the text as values (warned once).
    frozen: Vec<String>,
    inputs: Vec<String>,
    warnings: Vec<Warning>,
    stage: &'a Stage,
}

impl Out<'_> {
    fn warn(&mut self, message: String) {
        self.warn_at(self.stage.line, message);
    }

    fn warn_at(&mut self, line: usize, message: String) {
        self.warnings.push(Warning {
            file: self.stage.file.clone(),
            line,
            message,
        });
    }
}

pub struct Emitted {
    pub source: String,
    pub mapping: Vec<(String, String)>,
    pub notes: Vec<String>,
    pub warnings: Vec<Warning>,
}

pub fn emit(
    root: &Path,
    name: &str,
    dvc_files: &[String],
    mut r: Resolved,
    top_metrics: &[String],
) -> Emitted {
    let mut notes = Vec::new();
    let mut warnings = std::mem::take(&mut r.notes);
    rename_duplicates(&mut r.groups, &mut warnings);
    // Every literal output, with the stage that writes it.
    let mut outputs: Vec<(String, String)> = Vec::new();
    for g in &r.groups {
        for s in &g.stages {
            for o in &s.outs {
                if let Some(p) = o.path.literal() {
                    outputs.push((p, s.dvc_name.clone()));
                }
            }
        }
    }
    let params = namespace(root, &r, &outputs);
    let tracked = project::tracked_data(root);
    let mut src = format!(
        "# Imported from DVC by `mlp import dvc` ({}).\n\npipeline \"{}\"\n\n",
        dvc_files.join(", "),
        escape(name)
    );
    for f in &params.files {
        src.push_str(&format!("params \"{}\"\n", escape(f)));
        notes.push(format!("params file `{f}` -> `params \"{f}\"`"));
    }
    for (k, v) in &params.inline {
        src.push_str(&format!("param {k} = {}\n", literal(v)));
        notes.push(format!("vars `{k}` -> `param {k}`"));
    }
    for (f, why) in &params.excluded {
        notes.push(format!(
            "params file `{f}` is not read as mlp params: {why}"
        ));
    }
    let mut mapping = Vec::new();
    let mut tracked_used = BTreeSet::new();
    for g in &r.groups {
        for s in &g.stages {
            mapping.push((s.dvc_name.clone(), s.name.literal().unwrap_or_default()));
        }
        let (text, mut w) = match &g.looped {
            Some((vars, template)) => {
                let base = &g.name;
                let (text, w) = emit_loop(vars, template, &params, &outputs, top_metrics);
                notes.push(format!(
                    "`{base}` ({} stages) -> a `for` loop over {}",
                    g.stages.len(),
                    vars.iter()
                        .map(|v| format!("`{}`", v.var))
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
                (text, w)
            }
            None => {
                if g.stages.is_empty() {
                    notes.push(format!("`{}` generates no stage", g.name));
                } else if let Some(why) = &g.expanded {
                    notes.push(format!(
                        "`{}` ({} stages) -> expanded into one stage each: {why}",
                        g.name,
                        g.stages.len()
                    ));
                }
                let mut text = String::new();
                let mut w = Vec::new();
                for s in &g.stages {
                    let (t, ws) = emit_stage(s, &params, &outputs, top_metrics, 0);
                    text.push_str(&t);
                    text.push('\n');
                    w.extend(ws);
                }
                (text, w)
            }
        };
        src.push_str(&text);
        warnings.append(&mut w);
        for s in &g.stages {
            for d in &s.deps {
                let Some(p) = d.literal() else { continue };
                for (path, file) in &tracked {
                    if project::within(&p, path) && tracked_used.insert(file.clone()) {
                        notes.push(format!(
                            "`{path}` is tracked by DVC (`{file}`): mlp reads it as a plain input; `dvc pull` fetches it"
                        ));
                    }
                }
            }
        }
    }
    while src.ends_with("\n\n") {
        src.pop();
    }
    Emitted {
        source: src,
        mapping,
        notes,
        warnings,
    }
}

/// Two DVC stages whose mlp names collide (`a-b` from `sub/a`, `a_b`...): number them,
/// and expand their loops.
fn rename_duplicates(groups: &mut [Group], warnings: &mut Vec<Warning>) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for g in groups.iter_mut() {
        let mut renamed = false;
        for s in &mut g.stages {
            let n = s.name.literal().unwrap_or_default();
            let count = seen.entry(n.clone()).or_default();
            *count += 1;
            if *count > 1 {
                let new = format!("{n}_{count}");
                warnings.push(Warning {
                    file: s.file.clone(),
                    line: s.line,
                    message: format!(
                        "stage `{}` would be `{n}` like another: named `{new}`",
                        s.dvc_name
                    ),
                });
                s.name = Text::lit(new);
                renamed = true;
            }
        }
        if renamed {
            g.looped = None;
        }
    }
}

/// Choose the params files mlp reads: every candidate that mlp can read, that no stage
/// writes, and whose keys agree with the files before it (mlp merges them into one set).
fn namespace(root: &Path, r: &Resolved, outputs: &[(String, String)]) -> Params {
    let mut p = Params {
        files: Vec::new(),
        excluded: BTreeMap::new(),
        merged: Value::Mapping(Mapping::new()),
        values: BTreeMap::new(),
        inline: Vec::new(),
    };
    for f in &r.param_files {
        if p.files.contains(f) || p.excluded.contains_key(f) {
            continue;
        }
        if let Some((_, s)) = outputs.iter().find(|(o, _)| project::within(f, o)) {
            p.excluded
                .insert(f.clone(), format!("it is an output of stage `{s}`"));
            continue;
        }
        if !value::mlp_reads(f) {
            p.excluded.insert(
                f.clone(),
                "mlp reads params from YAML, JSON and TOML files only".into(),
            );
            continue;
        }
        match project::load(root, f) {
            Err(e) => {
                p.excluded.insert(f.clone(), e);
            }
            Ok(v) if !value::disjoint(&p.merged, &v) => {
                p.excluded.insert(
                    f.clone(),
                    "it defines keys that an earlier params file defines too (mlp merges all params files into one set of keys)".into(),
                );
            }
            Ok(v) => {
                value::merge_over(&mut p.merged, &v);
                p.files.push(f.clone());
                p.values.insert(f.clone(), v);
            }
        }
    }
    for m in &r.inline_vars {
        let mut flat = Vec::new();
        if !flat_params(m, "", &mut flat) || !value::disjoint(&p.merged, &Value::Mapping(m.clone()))
        {
            continue;
        }
        value::merge_over(&mut p.merged, &Value::Mapping(m.clone()));
        p.inline.extend(flat);
    }
    p
}

/// Leaves of inline vars as `param` lines: false when one cannot be written.
fn flat_params(m: &Mapping, prefix: &str, out: &mut Vec<(String, Value)>) -> bool {
    for (k, v) in m {
        let key = if prefix.is_empty() {
            key_str(k)
        } else {
            format!("{prefix}.{}", key_str(k))
        };
        if !is_mlp_key(&key) {
            return false;
        }
        match v {
            Value::Mapping(inner) => {
                if !flat_params(inner, &key, out) {
                    return false;
                }
            }
            v if writable(v) => out.push((key, v.clone())),
            _ => return false,
        }
    }
    true
}

fn writable(v: &Value) -> bool {
    match v {
        Value::Number(n) => n.as_f64().is_some_and(f64::is_finite),
        Value::Bool(_) | Value::String(_) => true,
        Value::Sequence(s) => s.iter().all(writable),
        _ => false,
    }
}

/// An mlp value literal.
fn literal(v: &Value) -> String {
    match v {
        Value::String(s) => format!("\"{}\"", escape(s)),
        Value::Sequence(s) => format!("[{}]", s.iter().map(literal).collect::<Vec<_>>().join(", ")),
        Value::Number(n) if n.is_f64() => {
            let t = value::py_float(n.as_f64().unwrap_or(0.0));
            if t.contains(['.', 'e']) && !t.contains("inf") && !t.contains("nan") {
                t
            } else {
                format!("{t}.0")
            }
        }
        other => value::scalar_str(other).unwrap_or_default(),
    }
}

/// Text inside an mlp string: `\`, `"` and `${` escaped.
pub fn escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace("${", "\\${")
}

fn emit_loop(
    vars: &[LoopVar],
    template: &Stage,
    params: &Params,
    outputs: &[(String, String)],
    top_metrics: &[String],
) -> (String, Vec<Warning>) {
    let mut text = String::new();
    for (depth, v) in vars.iter().enumerate() {
        let list = Value::Sequence(v.values.clone());
        let over = match &v.key {
            Some(k) if params.holds(k, &list) => k.clone(),
            _ => literal(&list),
        };
        text.push_str(&format!(
            "{}for {} in {over} {{\n",
            "  ".repeat(depth),
            v.var
        ));
    }
    let (body, w) = emit_stage(template, params, outputs, top_metrics, vars.len());
    text.push_str(&body);
    for depth in (0..vars.len()).rev() {
        text.push_str(&format!("{}}}\n", "  ".repeat(depth)));
    }
    text.push('\n');
    (text, w)
}

fn emit_stage(
    s: &Stage,
    params: &Params,
    outputs: &[(String, String)],
    top_metrics: &[String],
    depth: usize,
) -> (String, Vec<Warning>) {
    let ind = "  ".repeat(depth);
    let mut o = Out {
        params: Vec::new(),
        frozen: Vec::new(),
        inputs: Vec::new(),
        warnings: Vec::new(),
        stage: s,
    };
    let mut lines: Vec<String> = Vec::new();
    // deps
    let mut ins = Vec::new();
    for d in &s.deps {
        if d.literal().is_some_and(|p| p.contains("://")) {
            o.warn(format!(
                "stage `{}`: dependency `{}` is a URL, which mlp cannot read: left out",
                s.dvc_name,
                d.literal().unwrap_or_default()
            ));
            continue;
        }
        ins.push(format!("\"{}\"", render(d, false, params, &mut o)));
    }
    params_of(s, params, outputs, &mut o);
    // outs
    let mut outs = Vec::new();
    let mut metrics = Vec::new();
    for out in &s.outs {
        let path = render(&out.path, false, params, &mut o);
        let lit = out.path.literal().unwrap_or_else(|| path.clone());
        let readable = [".json", ".yaml", ".yml"].iter().any(|e| lit.ends_with(e));
        let is_metrics = out.kind == OutKind::Metrics || top_metrics.contains(&lit);
        match out.kind {
            _ if is_metrics && readable => metrics.push(format!("\"{path}\"")),
            OutKind::Metrics => {
                o.warn_at(out.line, format!(
                    "stage `{}`: metrics `{lit}` is not JSON or YAML, which mlp reads as metrics: an ordinary output",
                    s.dvc_name
                ));
                outs.push(format!("\"{path}\""));
            }
            OutKind::Plots => {
                o.warn_at(
                    out.line,
                    format!(
                        "stage `{}`: plots `{lit}` is an ordinary output (mlp draws no plots)",
                        s.dvc_name
                    ),
                );
                outs.push(format!("\"{path}\""));
            }
            _ => outs.push(format!("\"{path}\"")),
        }
        if !out.cache {
            o.warn_at(
                out.line,
                format!(
                    "stage `{}`: `{lit}` has `cache: false`; mlp caches every output",
                    s.dvc_name
                ),
            );
        }
        if out.persist {
            o.warn_at(out.line, format!(
                "stage `{}`: `{lit}` has `persist: true`; mlp removes declared outputs before the command runs (an earlier result stays in its cache)",
                s.dvc_name
            ));
        }
    }
    let run = s.cmd.as_ref().map(|c| render(c, true, params, &mut o));
    // Whole files read as inputs: params mlp cannot hold, files of values written in.
    for f in std::mem::take(&mut o.inputs) {
        let q = format!("\"{}\"", escape(&f));
        if !ins.contains(&q) {
            ins.push(q);
        }
    }
    if !ins.is_empty() {
        lines.push(format!("in {}", ins.join(", ")));
    }
    let mut ps: Vec<String> = Vec::new();
    for k in std::mem::take(&mut o.params) {
        if !ps.contains(&k) {
            ps.push(k);
        }
    }
    if !ps.is_empty() {
        lines.push(format!("params {}", ps.join(", ")));
    }
    if !outs.is_empty() {
        lines.push(format!("out {}", outs.join(", ")));
    }
    if !metrics.is_empty() {
        lines.push(format!("metrics {}", metrics.join(", ")));
    }
    if let Some(run) = run {
        lines.push(format!("run \"{run}\""));
    }
    if s.frozen {
        lines.push("frozen".into());
        o.warn(format!(
            "stage `{}` is frozen: DVC never runs it (missing outputs are an error), mlp runs it once if it never succeeded, then never again",
            s.dvc_name
        ));
        if s.always {
            o.warn(format!(
                "stage `{}` is both `frozen` and `always_changed`: kept `frozen`",
                s.dvc_name
            ));
        }
    } else if s.always {
        lines.push("always".into());
    }
    let mut text = String::new();
    if let Some(desc) = &s.desc {
        for l in desc.lines() {
            text.push_str(&format!("{ind}# {l}\n"));
        }
    }
    text.push_str(&format!(
        "{ind}stage {} {{\n",
        stage_name(&s.name, params, &mut o)
    ));
    for l in lines {
        text.push_str(&format!("{ind}  {l}\n"));
    }
    text.push_str(&format!("{ind}}}\n"));
    (text, o.warnings)
}

fn stage_name(t: &Text, params: &Params, o: &mut Out) -> String {
    match t.literal() {
        Some(n) if value::is_mlp_name(&n) && !KEYWORDS.contains(&n.as_str()) => n,
        _ => format!("\"{}\"", render(t, false, params, o)),
    }
}

/// The stage's `params:` as mlp `params` keys, or as whole-file inputs where mlp's params
/// cannot hold them.
fn params_of(s: &Stage, params: &Params, outputs: &[(String, String)], o: &mut Out) {
    for dep in &s.params {
        let whole = |o: &mut Out, why: String| {
            if !o.inputs.contains(&dep.file) {
                o.inputs.push(dep.file.clone());
                o.warn(format!(
                    "stage `{}`: params of `{}` become an input of the whole file: {why}",
                    s.dvc_name, dep.file
                ));
            }
        };
        if !params.files.contains(&dep.file) {
            let why = match outputs.iter().find(|(p, _)| project::within(&dep.file, p)) {
                Some((_, st)) => format!(
                    "it is an output of stage `{st}`, and mlp reads params files when it plans"
                ),
                None => params
                    .excluded
                    .get(&dep.file)
                    .cloned()
                    .unwrap_or_else(|| "it cannot be read".into()),
            };
            whole(o, why);
            continue;
        }
        let keys: Vec<String> = match &dep.keys {
            Some(k) => k.clone(),
            None => params.file_keys(&dep.file),
        };
        for k in keys {
            let in_file = params
                .values
                .get(&dep.file)
                .is_some_and(|v| value::select(v, &k).is_some());
            if !in_file {
                o.warn(format!(
                    "stage `{}`: params key `{k}` is not in `{}` (DVC would fail on it): left out",
                    s.dvc_name, dep.file
                ));
            } else if is_mlp_key(&k) {
                o.params.push(k);
            } else {
                whole(o, format!("mlp cannot name the key `{k}`"));
            }
        }
    }
}

impl Params {
    /// The top-level keys of a params file (a whole-file `params:` entry).
    fn file_keys(&self, file: &str) -> Vec<String> {
        match self.values.get(file) {
            Some(Value::Mapping(m)) => m.keys().map(key_str).collect(),
            _ => Vec::new(),
        }
    }
}

/// A resolved string as the body of an mlp string literal.
fn render(t: &Text, in_run: bool, params: &Params, o: &mut Out) -> String {
    let mut out = String::new();
    for seg in &t.0 {
        match seg {
            Seg::Lit(s) => out.push_str(&escape(s)),
            Seg::Loop(v) => out.push_str(&format!("${{{v}}}")),
            Seg::Param {
                key,
                value,
                text,
                file,
            } => {
                if params.holds(key, value) && renders_same(value, text, in_run) {
                    out.push_str(&format!("${{params.{key}}}"));
                    continue;
                }
                out.push_str(&escape(text));
                frozen_value(key, params.holds(key, value), file.as_deref(), o);
            }
            Seg::Unpacked { key, text, file } => {
                out.push_str(&escape(text));
                if let Some(k) = key {
                    let known = params.get(k).is_some() && is_mlp_key(k);
                    frozen_value(k, known, file.as_deref(), o);
                }
            }
        }
    }
    out
}

/// A value written into the command as DVC renders it today: make the stage rerun when
/// it changes (its key as a param, or else its file as an input), and say so.
fn frozen_value(key: &str, known: bool, file: Option<&str>, o: &mut Out) {
    if o.frozen.iter().any(|k| k == key) {
        return;
    }
    o.frozen.push(key.to_string());
    let name = o.stage.dvc_name.clone();
    let keeps = "but its command keeps today's value until you edit it";
    if known {
        if !o.params.iter().any(|k| k == key) {
            o.params.push(key.to_string());
        }
        o.warn(format!(
            "stage `{name}`: `${{{key}}}` is written as DVC renders it today (mlp's `${{params.{key}}}` would render differently); the stage lists `{key}` as a param, so it reruns when the value changes, {keeps}"
        ));
    } else if let Some(f) = file {
        if !o.inputs.iter().any(|i| i == f) {
            o.inputs.push(f.to_string());
        }
        o.warn(format!(
            "stage `{name}`: `${{{key}}}` is written as DVC renders it today (no mlp params key holds it); the stage reads `{f}` as an input, so it reruns when the file changes, {keeps}"
        ));
    } else {
        o.warn(format!(
            "stage `{name}`: `${{{key}}}` is written as DVC renders it today, and no mlp params key holds it: changing it will not rerun the stage"
        ));
    }
}

/// Whether mlp's `${params.KEY}` gives DVC's text here (mlp shell-quotes in commands).
fn renders_same(v: &Value, text: &str, in_run: bool) -> bool {
    match v {
        Value::String(s) => !in_run || shlex::try_quote(s).is_ok_and(|q| q == s.as_str()),
        Value::Bool(_) => true,
        Value::Number(n) => match n.as_i64() {
            Some(_) => true,
            None => n.as_f64().is_some_and(|x| format!("{x}") == text),
        },
        _ => false,
    }
}
