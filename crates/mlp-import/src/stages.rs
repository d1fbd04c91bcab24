//! DVC stages resolved as DVC resolves them: vars loaded, `${...}` interpolated,
//! `foreach`/`matrix` generated, paths made relative to the project root through the
//! `dvc.yaml`'s directory and `wdir`. A loop that mlp can say as a `for` is also kept as
//! a template whose strings hold loop variables.

use std::path::Path;

use serde_yaml_ng::{Mapping, Value};

use crate::Warning;
use crate::project::{self, DvcFile};
use crate::template::{Context, Error, Seg, Symbol, Text};
use crate::value::{self, key_str};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutKind {
    Out,
    Metrics,
    Plots,
}

#[derive(Clone, Debug)]
pub struct Out {
    pub path: Text,
    pub kind: OutKind,
    pub cache: bool,
    pub persist: bool,
    /// Its line in the `dvc.yaml`.
    pub line: usize,
}

/// `params:` of a stage: keys of one file (`None`: the whole file).
#[derive(Clone, Debug)]
pub struct ParamsDep {
    pub file: String,
    pub keys: Option<Vec<String>>,
}

/// A stage, resolved.
#[derive(Clone, Debug)]
pub struct Stage {
    /// As `dvc dag` names it: `train@gbm`, `sub/dvc.yaml:train`.
    pub dvc_name: String,
    /// The mlp name (with loop variables in a template).
    pub name: Text,
    pub file: String,
    pub line: usize,
    pub desc: Option<String>,
    pub cmd: Option<Text>,
    pub deps: Vec<Text>,
    pub outs: Vec<Out>,
    pub params: Vec<ParamsDep>,
    pub frozen: bool,
    pub always: bool,
}

/// The list a kept loop runs over.
#[derive(Clone, Debug)]
pub struct LoopVar {
    pub var: String,
    pub values: Vec<Value>,
    /// The global vars key the list came from (`foreach: ${models}`), if any.
    pub key: Option<String>,
}

/// A stage, or a `foreach`/`matrix` group.
#[derive(Clone, Debug)]
pub struct Group {
    /// The DVC name of the group (`train`, `sub/dvc.yaml:train`).
    pub name: String,
    /// The generated stages (one, for a plain stage).
    pub stages: Vec<Stage>,
    /// When the group can stay a `for` loop: its variables (outermost first) and the
    /// stage template.
    pub looped: Option<(Vec<LoopVar>, Stage)>,
    /// For a `foreach`/`matrix` that is not kept as a loop: why.
    pub expanded: Option<String>,
}

/// Everything resolution found.
#[derive(Default)]
pub struct Resolved {
    pub groups: Vec<Group>,
    /// Params and vars files, in the order DVC meets them (candidates for mlp's params).
    pub param_files: Vec<String>,
    /// Inline global vars (`vars: [{a: 1}]`): candidates for `param` lines.
    pub inline_vars: Vec<Mapping>,
    pub notes: Vec<Warning>,
}

/// Resolve every stage of every `dvc.yaml`.
pub fn resolve(root: &Path, files: &[DvcFile]) -> Resolved {
    let unpack = project::unpack_config(root);
    let mut r = Resolved::default();
    for f in files {
        let mut ctx = Context {
            unpack: unpack.clone(),
            ..Context::default()
        };
        let default = project::join(&f.dir, "params.yaml");
        if root.join(&default).is_file() {
            match project::load(root, &default) {
                Ok(Value::Mapping(m)) => {
                    ctx.data = m;
                    ctx.imports.push(default.clone());
                    ctx.sources
                        .push((default.clone(), Value::Mapping(ctx.data.clone())));
                    r.param_files.push(default.clone());
                }
                Ok(_) => {}
                Err(e) => r
                    .notes
                    .push(warn(f, &["stages"], format!("{default}: {e}"))),
            }
        }
        if f.doc.get("vars").is_some_and(|v| !v.is_sequence()) {
            r.notes
                .push(warn(f, &["vars"], "`vars` must be a list: ignored".into()));
        }
        if let Some(Value::Sequence(vars)) = f.doc.get("vars") {
            for item in vars {
                if let Err(e) = load_vars(root, &f.dir, item, &mut ctx, None, &mut r) {
                    r.notes.push(warn(f, &["vars"], e));
                }
            }
        }
        let Some(Value::Mapping(stages)) = f.doc.get("stages") else {
            continue;
        };
        for (name, def) in stages {
            let name = key_str(name);
            let Value::Mapping(def) = def else {
                r.notes.push(warn(
                    f,
                    &["stages", &name],
                    format!("stage `{name}` is not a mapping: skipped"),
                ));
                continue;
            };
            match group(root, f, &name, def, &ctx, &mut r) {
                Ok(g) => r.groups.push(g),
                Err(e) => r.notes.push(warn(
                    f,
                    &["stages", &name],
                    format!("stage `{name}`: {e}: skipped"),
                )),
            }
        }
    }
    r
}

pub fn warn(f: &DvcFile, path: &[&str], message: String) -> Warning {
    Warning {
        file: f.rel.clone(),
        line: project::line_of(&f.text, path),
        message,
    }
}

/// Load one `vars` entry (a `file[:keys]` or an inline mapping) into `data`; `local`
/// also receives it (stage vars).
fn load_vars(
    root: &Path,
    wdir: &str,
    item: &Value,
    ctx: &mut Context,
    local: Option<&mut Mapping>,
    r: &mut Resolved,
) -> Result<(), String> {
    let mut source = None;
    let new = match item {
        Value::String(s) => {
            let (file, keys) = match s.split_once(':') {
                Some((f, k)) => (f, Some(k)),
                None => (s.as_str(), None),
            };
            let path = project::join(wdir, file);
            if keys.is_none() {
                if ctx.imports.contains(&path) {
                    return Ok(());
                }
                ctx.imports.push(path.clone());
            }
            source = Some(path.clone());
            let v = project::load(root, &path).map_err(|e| format!("vars file {path}: {e}"))?;
            // Stage vars are written into the stage: they need not be mlp params.
            if local.is_none() && !r.param_files.contains(&path) {
                r.param_files.push(path.clone());
            }
            let Value::Mapping(m) = v else { unreachable!() };
            match keys {
                None => m,
                Some(keys) => {
                    let mut sel = Mapping::new();
                    for k in keys.split(',').filter(|k| !k.is_empty()) {
                        let v = m
                            .get(k)
                            .ok_or_else(|| format!("could not find '{k}' in '{path}'"))?;
                        sel.insert(Value::String(k.to_string()), v.clone());
                    }
                    sel
                }
            }
        }
        Value::Mapping(m) => {
            if local.is_none() {
                r.inline_vars.push(m.clone());
            }
            m.clone()
        }
        _ => return Err("a `vars` entry must be a file name or a mapping".into()),
    };
    value::merge_strict(&mut ctx.data, &new, "")
        .map_err(|k| format!("vars: `{k}` is already defined"))?;
    if local.is_none()
        && let Some(path) = source
    {
        ctx.sources.push((path, Value::Mapping(new.clone())));
    }
    if let Some(local) = local {
        value::merge_strict(local, &new, "")
            .map_err(|k| format!("vars: `{k}` is already defined"))?;
    }
    Ok(())
}

/// A stage name as mlp can hold it: `sub/dir` + `train@a-b` → `sub_dir_train_a-b`.
pub fn mlp_name(dir: &str, dvc: &str) -> String {
    let full = if dir.is_empty() {
        dvc.to_string()
    } else {
        format!("{dir}/{dvc}")
    };
    let mut s: String = full
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if !s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_') {
        s.insert(0, '_');
    }
    s
}

fn dvc_name(f: &DvcFile, name: &str) -> String {
    if f.dir.is_empty() {
        name.to_string()
    } else {
        format!("{}:{name}", f.rel)
    }
}

/// Whether a loop value can be written into an mlp list and come out of `${var}` as DVC
/// renders it, in a stage name and a command alike.
fn loop_safe(v: &Value) -> bool {
    match v {
        Value::String(s) => {
            !s.is_empty()
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        }
        Value::Number(n) => n.is_i64(),
        _ => false,
    }
}

fn exact_key(v: &Value) -> Option<String> {
    let s = v.as_str()?.trim();
    let inner = s.strip_prefix("${")?.strip_suffix('}')?;
    (!inner.contains("${")).then(|| inner.trim().to_string())
}

fn group(
    root: &Path,
    f: &DvcFile,
    name: &str,
    def: &Mapping,
    ctx: &Context,
    r: &mut Resolved,
) -> Result<Group, String> {
    let site = Site { root, f, key: name };
    let bad = |e: Error| match e {
        Error::Bad(m) => m,
        Error::NeedsExpansion => "cannot resolve".into(),
    };
    if let Some(data) = def.get("foreach") {
        let body = match def.get("do") {
            Some(Value::Mapping(m)) => m,
            _ => return Err("`foreach` without a `do` mapping".into()),
        };
        let iterable = ctx.resolve_value(data).map_err(bad)?;
        let pairs: Vec<(String, Value)> = match &iterable {
            Value::Mapping(m) => m.iter().map(|(k, v)| (key_str(k), v.clone())).collect(),
            Value::Sequence(s) if s.iter().any(|v| v.is_mapping() || v.is_sequence()) => s
                .iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v.clone()))
                .collect(),
            Value::Sequence(s) => s
                .iter()
                .map(|v| (value::scalar_str(v).unwrap_or_default(), v.clone()))
                .collect(),
            _ => return Err("`foreach` needs a list or a mapping".into()),
        };
        let mut stages = Vec::new();
        for (key, item) in &pairs {
            let mut c = ctx.clone();
            let mut temp = Mapping::new();
            temp.insert("item".into(), item.clone());
            if iterable.is_mapping() {
                temp.insert("key".into(), Value::String(key.clone()));
            }
            set_temporarily(&mut c, temp);
            let generated = format!("{name}@{key}");
            let mlp = Text::lit(mlp_name(&f.dir, &generated));
            stages.push(stage(site, &dvc_name(f, &generated), mlp, body, &c, r)?);
        }
        let mut looped = None;
        if let Value::Sequence(items) = &iterable
            && !items.is_empty()
            && items.iter().all(loop_safe)
        {
            let mut c = ctx.clone();
            c.symbols.push(("item".into(), Symbol::Var("item".into())));
            let mut text = Text::lit(format!("{}_", mlp_name(&f.dir, name)));
            text.0.push(Seg::Loop("item".into()));
            let mut scratch = Resolved::default();
            if let Ok(t) = stage(site, &dvc_name(f, name), text, body, &c, &mut scratch) {
                let key = exact_key(data);
                looped = Some((
                    vec![LoopVar {
                        var: "item".into(),
                        values: items.clone(),
                        key,
                    }],
                    t,
                ));
            }
        }
        let expanded = looped.is_none().then(|| {
            if iterable.is_mapping() {
                "mlp's `for` runs over lists, not mappings"
            } else {
                expand_reason(&iterable)
            }
            .to_string()
        });
        return Ok(Group {
            name: dvc_name(f, name),
            stages,
            looped,
            expanded,
        });
    }
    if let Some(data) = def.get("matrix") {
        let Value::Mapping(dims) = ctx.resolve_value(data).map_err(bad)? else {
            return Err("`matrix` needs a mapping".into());
        };
        let mut axes: Vec<(String, Vec<Value>, Option<String>)> = Vec::new();
        let Some(Value::Mapping(raw)) = Some(data) else {
            unreachable!()
        };
        for (k, v) in &dims {
            let Value::Sequence(list) = v else {
                return Err(format!("matrix `{}` is not a list", key_str(k)));
            };
            let from = raw.get(k).and_then(exact_key);
            axes.push((key_str(k), list.clone(), from));
        }
        let mut body = def.clone();
        body.remove("matrix");
        let mut stages = Vec::new();
        for combo in product(&axes) {
            let mut item = Mapping::new();
            let mut frags = Vec::new();
            for ((dim, _, _), (i, v)) in axes.iter().zip(&combo) {
                item.insert(Value::String(dim.clone()), v.clone());
                frags.push(if v.is_mapping() || v.is_sequence() {
                    format!("{dim}{i}")
                } else {
                    value::scalar_str(v).unwrap_or_default()
                });
            }
            let key = frags.join("-");
            let mut c = ctx.clone();
            let mut temp = Mapping::new();
            temp.insert("key".into(), Value::String(key.clone()));
            temp.insert("item".into(), Value::Mapping(item));
            set_temporarily(&mut c, temp);
            let generated = format!("{name}@{key}");
            let mlp = Text::lit(mlp_name(&f.dir, &generated));
            stages.push(stage(site, &dvc_name(f, &generated), mlp, &body, &c, r)?);
        }
        let mut looped = None;
        let names_ok = axes
            .iter()
            .all(|(d, _, _)| value::is_mlp_name(d) && !crate::emit::KEYWORDS.contains(&d.as_str()));
        if names_ok
            && !axes.is_empty()
            && axes
                .iter()
                .all(|(_, l, _)| !l.is_empty() && l.iter().all(loop_safe))
        {
            let mut c = ctx.clone();
            let dims: Vec<(String, String)> = axes
                .iter()
                .map(|(d, _, _)| (d.clone(), d.clone()))
                .collect();
            c.symbols.push(("item".into(), Symbol::Dims(dims)));
            c.symbols.push((
                "key".into(),
                Symbol::Joined(axes.iter().map(|(d, _, _)| d.clone()).collect()),
            ));
            let mut text = Text::lit(format!("{}_", mlp_name(&f.dir, name)));
            for (i, (d, _, _)) in axes.iter().enumerate() {
                if i > 0 {
                    text.push_str("-");
                }
                text.0.push(Seg::Loop(d.clone()));
            }
            let mut scratch = Resolved::default();
            if let Ok(t) = stage(site, &dvc_name(f, name), text, &body, &c, &mut scratch) {
                let vars = axes
                    .iter()
                    .map(|(d, l, k)| LoopVar {
                        var: d.clone(),
                        values: l.clone(),
                        key: k.clone(),
                    })
                    .collect();
                looped = Some((vars, t));
            }
        }
        let expanded = looped.is_none().then(|| {
            if !names_ok {
                "a matrix key is not a name mlp can use as a loop variable".to_string()
            } else {
                let all: Vec<Value> = axes.iter().flat_map(|(_, l, _)| l.clone()).collect();
                expand_reason(&Value::Sequence(all)).to_string()
            }
        });
        return Ok(Group {
            name: dvc_name(f, name),
            stages,
            looped,
            expanded,
        });
    }
    let s = stage(
        site,
        &dvc_name(f, name),
        Text::lit(mlp_name(&f.dir, name)),
        def,
        ctx,
        r,
    )?;
    Ok(Group {
        name: dvc_name(f, name),
        stages: vec![s],
        looped: None,
        expanded: None,
    })
}

fn expand_reason(list: &Value) -> &'static str {
    match list {
        Value::Sequence(items) if !items.is_empty() && items.iter().all(loop_safe) => {
            "a loop variable is used where mlp cannot interpolate one (params keys, `wdir`, `vars`, flags)"
        }
        _ => {
            "its values are not all names or integers that mlp can write into stage names as DVC does"
        }
    }
}

/// `item`/`key` for one iteration: they shadow global vars of the same name, and are
/// never live.
fn set_temporarily(c: &mut Context, temp: Mapping) {
    for (k, v) in temp {
        c.data.insert(k.clone(), v.clone());
        c.local.insert(k, v);
    }
}

fn product(axes: &[(String, Vec<Value>, Option<String>)]) -> Vec<Vec<(usize, Value)>> {
    let mut out: Vec<Vec<(usize, Value)>> = vec![vec![]];
    for (_, list, _) in axes {
        let mut next = Vec::new();
        for prefix in &out {
            for (i, v) in list.iter().enumerate() {
                let mut p = prefix.clone();
                p.push((i, v.clone()));
                next.push(p);
            }
        }
        out = next;
    }
    out
}

struct StageCtx {
    base: String,
    c: Context,
}

/// Where a stage is defined.
#[derive(Clone, Copy)]
struct Site<'a> {
    root: &'a Path,
    f: &'a DvcFile,
    /// The name under `stages:`.
    key: &'a str,
}

/// Resolve one stage body.
fn stage(
    site: Site,
    dvc: &str,
    name: Text,
    def: &Mapping,
    ctx: &Context,
    r: &mut Resolved,
) -> Result<Stage, String> {
    let err = |e: Error| match e {
        Error::Bad(m) => m,
        Error::NeedsExpansion => "a loop variable where mlp cannot interpolate one".into(),
    };
    let Site { root, f, key } = site;
    let mut c = ctx.clone();
    let wdir = match def.get("wdir") {
        Some(w) => match c.resolve_value(w).map_err(err)? {
            Value::String(s) => s,
            other => value::scalar_str(&other).unwrap_or_default(),
        },
        None => String::new(),
    };
    let base = project::join(&f.dir, &wdir);
    if def.get("vars").is_some_and(|v| !v.is_sequence()) {
        return Err("`vars` must be a list".into());
    }
    if let Some(Value::Sequence(vars)) = def.get("vars") {
        let mut local = c.local.clone();
        for item in vars {
            load_vars(root, &base, item, &mut c, Some(&mut local), r)?;
            if let Some(file) = item.as_str() {
                r.notes.push(warn(
                    f,
                    &["stages", key, "vars"],
                    format!(
                        "stage `{key}`: the values of its vars file `{file}` are written into the stage; editing the file will not rerun it"
                    ),
                ));
            }
        }
        c.local = local;
    }
    let sc = StageCtx { base, c };
    let cmd = match def.get("cmd") {
        None => None,
        Some(Value::String(s)) => Some(sc.c.resolve(s, true).map_err(err)?),
        Some(Value::Sequence(items)) => {
            let mut t = Text::default();
            let many = items.len() > 1;
            for (i, item) in items.iter().enumerate() {
                let s = item.as_str().ok_or("`cmd` list items must be strings")?;
                let one = sc.c.resolve(s, true).map_err(err)?;
                if i > 0 {
                    t.push_str(" && ");
                }
                if many && s.contains('\n') {
                    t.push_str("(");
                    t.append(one);
                    t.push_str(")");
                } else {
                    t.append(one);
                }
            }
            Some(t)
        }
        Some(_) => return Err("`cmd` must be a string or a list of strings".into()),
    };
    let cmd = cmd.map(|t| {
        if sc.base.is_empty() {
            return t;
        }
        let multi =
            t.0.iter()
                .any(|s| matches!(s, Seg::Lit(l) if l.contains('\n')));
        let q = value::py_quote(&sc.base);
        Text::prefixed(
            &if multi {
                format!("cd {q} || exit 1\n")
            } else {
                format!("cd {q} && ")
            },
            t,
        )
    });
    let mut deps = Vec::new();
    for d in list(def, "deps") {
        let s = d.as_str().ok_or("`deps` items must be strings")?;
        deps.push(sc.path(s).map_err(err)?);
    }
    let mut outs = Vec::new();
    for (field, kind) in [
        ("outs", OutKind::Out),
        ("metrics", OutKind::Metrics),
        ("plots", OutKind::Plots),
    ] {
        for o in list(def, field) {
            let (path, opts) = match o {
                Value::String(s) => (s.clone(), None),
                Value::Mapping(m) if m.len() == 1 => {
                    let (k, v) = m.iter().next().expect("one entry");
                    (key_str(k), v.as_mapping().cloned())
                }
                _ => return Err(format!("bad `{field}` entry")),
            };
            let flag = |name: &str, default: bool| -> Result<bool, String> {
                match opts.as_ref().and_then(|o| o.get(name)) {
                    None => Ok(default),
                    Some(v) => Ok(sc
                        .c
                        .resolve_value(v)
                        .map_err(err)?
                        .as_bool()
                        .unwrap_or(default)),
                }
            };
            outs.push(Out {
                path: sc.path(&path).map_err(err)?,
                kind,
                cache: flag("cache", true)?,
                persist: flag("persist", false)?,
                line: project::line_of(&f.text, &["stages", key, &path]),
            });
        }
    }
    let mut params = Vec::new();
    for p in list(def, "params") {
        match sc.c.resolve_value(p).map_err(err)? {
            Value::String(k) => {
                let file = project::join(&sc.base, "params.yaml");
                if !r.param_files.contains(&file) {
                    r.param_files.push(file.clone());
                }
                params.push(ParamsDep {
                    file,
                    keys: Some(vec![k]),
                });
            }
            Value::Mapping(m) => {
                for (file, keys) in m {
                    let file = project::join(&sc.base, &key_str(&file));
                    let keys = match keys {
                        Value::Sequence(ks) if !ks.is_empty() => {
                            Some(ks.iter().map(key_str).collect())
                        }
                        _ => None,
                    };
                    if !r.param_files.contains(&file) {
                        r.param_files.push(file.clone());
                    }
                    params.push(ParamsDep { file, keys });
                }
            }
            _ => return Err("bad `params` entry".into()),
        }
    }
    let flag = |k: &str| -> Result<bool, String> {
        match def.get(k) {
            None => Ok(false),
            Some(v) => Ok(sc
                .c
                .resolve_value(v)
                .map_err(err)?
                .as_bool()
                .unwrap_or(false)),
        }
    };
    let desc = def.get("desc").and_then(Value::as_str).map(|d| {
        sc.c.resolve(d, false)
            .ok()
            .and_then(|t| t.literal())
            .unwrap_or_else(|| d.to_string())
    });
    for k in def.keys() {
        let k = key_str(k);
        if !KNOWN.contains(&k.as_str()) {
            r.notes.push(warn(
                f,
                &["stages", key, &k],
                format!("stage `{dvc}`: `{k}` has no mlp equivalent: ignored"),
            ));
        }
    }
    Ok(Stage {
        dvc_name: dvc.to_string(),
        name,
        file: f.rel.clone(),
        line: project::line_of(&f.text, &["stages", key]),
        desc,
        cmd,
        deps,
        outs,
        params,
        frozen: flag("frozen")?,
        always: flag("always_changed")?,
    })
}

const KNOWN: &[&str] = &[
    "cmd",
    "deps",
    "outs",
    "metrics",
    "plots",
    "params",
    "wdir",
    "vars",
    "frozen",
    "always_changed",
    "desc",
    "meta",
    "do",
    "foreach",
    "matrix",
];

fn list<'a>(def: &'a Mapping, key: &str) -> &'a [Value] {
    match def.get(key) {
        Some(Value::Sequence(s)) => s,
        _ => &[],
    }
}

impl StageCtx {
    /// A dep or out path: interpolated, then from the project root.
    fn path(&self, s: &str) -> Result<Text, Error> {
        let t = self.c.resolve(s, false)?;
        if let Some(lit) = t.literal()
            && !t.0.iter().any(|s| matches!(s, Seg::Param { .. }))
        {
            return Ok(Text::lit(project::join(&self.base, &lit)));
        }
        let absolute =
            matches!(t.0.first(), Some(Seg::Lit(l)) if l.starts_with('/') || l.contains("://"));
        if absolute || self.base.is_empty() {
            Ok(t)
        } else {
            Ok(Text::prefixed(&format!("{}/", self.base), t))
        }
    }
}
