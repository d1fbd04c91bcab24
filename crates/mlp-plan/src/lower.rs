//! From syntax trees to the validated `Pipeline`: includes, params, `for` expansion,
//! interpolation, name resolution, validation and the dependency edges.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use mlp_syntax::ast::{self, Span};

use crate::diag::{Diagnostic, Diagnostics, SourceMap, did_you_mean};
use crate::expr::{Cond, Func, Ty, binary_type};
use crate::model::*;
use crate::paths::{OutputIndex, is_under, normalize};
use crate::shell::{push_quoted, quote};
use crate::value::Value;

/// What the caller adds to the sources.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// `--set key=value` overrides, in order.
    pub overrides: Vec<(String, String)>,
}

/// A planned pipeline and what it was planned from.
#[derive(Clone, Debug)]
pub struct Plan {
    pub pipeline: Pipeline,
    /// The workspace root: the directory of the root `.mlp` file.
    pub root: PathBuf,
    pub sources: SourceMap,
}

/// Read, parse and validate the pipeline in `path` and everything it includes.
pub fn load(path: &Path, opts: &Options) -> Result<Plan, Diagnostics> {
    let root = path
        .parent()
        .map(|p| {
            if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            }
        })
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut l = Lowerer {
        root: root.clone(),
        sources: SourceMap::default(),
        rel_names: Vec::new(),
        diags: Vec::new(),
        reported: HashSet::new(),
        params_failed: false,
    };
    let display = path.display().to_string();
    let file_name = path
        .file_name()
        .map_or_else(|| display.clone(), |n| n.to_string_lossy().into_owned());
    let Some(root_file) = l.read_source(path, display, file_name, None) else {
        return Err(l.finish_err());
    };
    let pipeline = l.lower(root_file, opts);
    if l.diags.is_empty()
        && let Some(pipeline) = pipeline
    {
        return Ok(Plan {
            pipeline,
            root,
            sources: l.sources,
        });
    }
    Err(l.finish_err())
}

/// Plan from a text held in memory (tests, fuzzing, `mlp fmt --check`): includes and params
/// files are read relative to `root`.
pub fn load_str(name: &str, text: &str, root: &Path, opts: &Options) -> Result<Plan, Diagnostics> {
    let mut l = Lowerer {
        root: root.to_path_buf(),
        sources: SourceMap::default(),
        rel_names: Vec::new(),
        diags: Vec::new(),
        reported: HashSet::new(),
        params_failed: false,
    };
    let id = l.sources.add(name.to_string(), text.to_string());
    l.rel_names.push(name.to_string());
    let parsed = match mlp_syntax::parse(text) {
        Ok(f) => f,
        Err(errs) => {
            l.syntax_errors(id, errs);
            return Err(l.finish_err());
        }
    };
    let pipeline = l.lower((id, parsed), opts);
    match pipeline {
        Some(p) if l.diags.is_empty() => Ok(Plan {
            pipeline: p,
            root: root.to_path_buf(),
            sources: l.sources,
        }),
        _ => Err(l.finish_err()),
    }
}

/// Diagnostics for a file that does not parse (for `mlp fmt`, which needs no planning).
pub fn syntax_diagnostics(
    name: &str,
    text: &str,
    errs: Vec<mlp_syntax::SyntaxError>,
) -> Diagnostics {
    let mut l = Lowerer {
        root: PathBuf::new(),
        sources: SourceMap::default(),
        rel_names: Vec::new(),
        diags: Vec::new(),
        reported: HashSet::new(),
        params_failed: false,
    };
    let id = l.sources.add(name.to_string(), text.to_string());
    l.syntax_errors(id, errs);
    l.finish_err()
}

struct Lowerer {
    root: PathBuf,
    sources: SourceMap,
    /// Workspace-relative name of each source.
    rel_names: Vec<String>,
    diags: Vec<Diagnostic>,
    /// (code, file, primary span) of every diagnostic so far: a `for` loop body is checked
    /// once per value, and the same mistake is reported once.
    reported: HashSet<(&'static str, usize, Span)>,
    /// A params file could not be read: unknown-key errors would only follow from that.
    params_failed: bool,
}

/// A stage after `for` expansion, before resolution.
struct RawStage<'a> {
    file: usize,
    ast: &'a ast::Stage,
    name: String,
    name_span: Span,
    vars: Vars,
    /// Its name could not be interpolated (already reported): not checked further.
    bad_name: bool,
}

type Vars = Vec<(String, Value)>;

/// Where an interpolation happens decides what it may name.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    /// Stage names, paths, env values, messages: loop variables and params.
    Plain,
    /// `run` and `fallback`: also `in`, `out`, `metrics` and `stage.output`; values quoted.
    Command,
}

impl Lowerer {
    fn finish_err(self) -> Diagnostics {
        Diagnostics {
            sources: self.sources,
            items: self.diags,
        }
    }

    fn err(&mut self, d: Diagnostic) {
        if let (Some(file), Some(l)) = (d.file, d.labels.iter().find(|l| l.primary))
            && !self.reported.insert((d.code, file, l.span))
        {
            return;
        }
        self.diags.push(d);
    }

    fn syntax_errors(&mut self, file: usize, errs: Vec<mlp_syntax::SyntaxError>) {
        for e in errs {
            let mut d = Diagnostic::new(e.code, e.message.clone()).at(file, e.span, label_for(&e));
            for (sp, text) in &e.also {
                d = d.also(*sp, text.clone());
            }
            self.err(d.help(e.help));
        }
    }

    /// Read and parse one file; `from` is where it was included (for the error's place).
    fn read_source(
        &mut self,
        path: &Path,
        display: String,
        rel: String,
        from: Option<(usize, Span)>,
    ) -> Option<(usize, ast::File)> {
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                let d = match from {
                    Some((f, sp)) => Diagnostic::new("E0116", format!("cannot read `{display}`: {e}"))
                        .at(f, sp, "included here")
                        .help("check the path: it is relative to the file that includes it"),
                    None => Diagnostic::new("E0116", format!("cannot read `{display}`: {e}"))
                        .help("pass the pipeline file with `-f FILE`, or run mlp in a directory that has `pipeline.mlp`"),
                };
                self.err(d);
                return None;
            }
        };
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let bytes = e.as_bytes();
                let valid = std::str::from_utf8(&bytes[..at]).unwrap_or_default();
                let (line, col) = crate::diag::line_col(valid, at);
                let mut d = Diagnostic::new(
                    "E0005",
                    format!(
                        "`{display}` is not UTF-8 text: byte 0x{:02X} at line {line}, column {col}",
                        bytes[at]
                    ),
                )
                .help("save the file as UTF-8");
                if let Some((f, sp)) = from {
                    d = d.at(f, sp, "included here");
                }
                self.err(d);
                return None;
            }
        };
        let id = self.sources.add(display, text);
        self.rel_names.push(rel);
        let text = self.sources.files[id].text.clone();
        match mlp_syntax::parse(&text) {
            Ok(f) => Some((id, f)),
            Err(errs) => {
                self.syntax_errors(id, errs);
                None
            }
        }
    }

    fn lower(&mut self, root_file: (usize, ast::File), opts: &Options) -> Option<Pipeline> {
        // 1. The root and its includes, depth first, in order.
        let mut files: Vec<(usize, ast::File)> = Vec::new();
        let mut stack = vec![self.canonical(&self.root.join(&self.rel_names[root_file.0]))];
        self.collect_includes(root_file, &mut files, &mut stack);

        // 2. Top-level items.
        let mut name: Option<String> = None;
        let mut params: BTreeMap<String, Value> = BTreeMap::new();
        let mut params_sources: Vec<String> = Vec::new();
        let mut inline: Vec<(usize, &ast::Spanned<String>, &ast::Value)> = Vec::new();
        let mut env_items: Vec<(usize, &Vec<ast::EnvPair>)> = Vec::new();
        let mut exec_items: Vec<(usize, &ast::Executor)> = Vec::new();
        for (fid, f) in &files {
            for item in &f.items {
                match &item.kind {
                    ast::ItemKind::Pipeline(s) if name.is_none() => {
                        name = Some(self.plain_str(*fid, s, &[], &BTreeMap::new()));
                    }
                    ast::ItemKind::ParamsFiles(list) => {
                        for s in list {
                            let rel = self.plain_str(*fid, s, &[], &BTreeMap::new());
                            if let Some(map) = self.read_params(*fid, s.span, &rel) {
                                merge(&mut params, map);
                                params_sources.push(rel);
                            }
                        }
                    }
                    ast::ItemKind::Param { key, value } => inline.push((*fid, key, value)),
                    ast::ItemKind::Env(pairs) => env_items.push((*fid, pairs)),
                    ast::ItemKind::Executor(e) => exec_items.push((*fid, e)),
                    ast::ItemKind::Unknown(w) => {
                        if self.string_ran_on(*fid, w) {
                            continue;
                        }
                        let mut d = Diagnostic::new(
                            "E0101",
                            format!("unknown keyword `{}`", w.node),
                        )
                        .at(*fid, w.span, "not a keyword");
                        d = d.help(match did_you_mean(&w.node, ast::TOP_KEYWORDS.iter().copied()) {
                            Some(m) => m,
                            None => "a file holds `pipeline`, `params`, `param`, `env`, `executor`, `stage`, `for` and `include` items".into(),
                        });
                        self.err(d);
                    }
                    _ => {}
                }
            }
        }
        for (fid, key, value) in inline {
            let v = self.value(fid, value, &[], &params);
            Value::insert(&mut params, &key.node, v);
        }
        let mut overrides = Vec::new();
        for (k, v) in &opts.overrides {
            if Value::lookup(&params, k).is_none() {
                if self.params_failed {
                    continue;
                }
                let keys = Value::keys(&params);
                let mut d =
                    Diagnostic::new("E0129", format!("`--set {k}=...`: no params key `{k}`"));
                d = d.help(match did_you_mean(k, keys.iter().map(String::as_str)) {
                    Some(m) => m,
                    None => "`--set` changes a key that a params file or a `param` defines".into(),
                });
                self.err(d);
                continue;
            }
            let v = Value::parse_cli(v);
            Value::insert(&mut params, k, v.clone());
            overrides.push((k.clone(), v));
        }
        let mut env = BTreeMap::new();
        for (fid, pairs) in env_items {
            for p in pairs {
                let v = self.value(fid, &p.value, &[], &params);
                env.insert(p.name.node.clone(), v.to_string());
            }
        }

        // The pipeline's executor (one at most).
        let mut pipeline_exec = Executor::default();
        for (k, (fid, e)) in exec_items.iter().enumerate() {
            if k > 0 {
                let (first_fid, first) = exec_items[0];
                let mut d = Diagnostic::new("E0139", "the pipeline has two `executor` items").at(
                    *fid,
                    e.name.span,
                    "again here",
                );
                if first_fid == *fid {
                    d = d.also(first.name.span, "first here");
                }
                self.err(d.help("keep one `executor` at the top; a stage may name its own"));
                continue;
            }
            if let Some((kind, slurm)) = self.executor(*fid, e, &[], &params) {
                pipeline_exec = Executor {
                    kind,
                    own: false,
                    slurm,
                };
            }
        }

        // 3. Expand loops.
        let mut raw: Vec<RawStage<'_>> = Vec::new();
        for (fid, f) in &files {
            self.expand(*fid, &f.items, &Vec::new(), &params, &mut raw);
        }

        // 4. Names: unique and valid.
        let mut by_name: HashMap<String, usize> = HashMap::new();
        for (i, r) in raw.iter().enumerate() {
            if r.bad_name {
                continue;
            }
            if !valid_name(&r.name) {
                self.err(
                    Diagnostic::new("E0130", format!("`{}` is not a valid stage name", r.name))
                        .at(r.file, r.name_span, "this name")
                        .help("stage names use letters, digits, `_` and `-`, and start with a letter or `_`"),
                );
            }
            if let Some(&j) = by_name.get(&r.name) {
                let first = &raw[j];
                // The same stage written once in a `for` loop, made again for another value.
                let same_place =
                    first.file == r.file && first.name_span == r.name_span && !r.vars.is_empty();
                let mut d =
                    Diagnostic::new("E0105", format!("stage `{}` is defined twice", r.name));
                if same_place {
                    d = d.at(
                        r.file,
                        r.name_span,
                        format!(
                            "the same name for every value of `{}`",
                            r.vars[r.vars.len() - 1].0
                        ),
                    );
                } else {
                    d = d.at(r.file, r.name_span, "defined again here");
                    if first.file == r.file {
                        d = d.also(first.name_span, "first defined here");
                    }
                }
                d = d.help(if r.vars.is_empty() {
                    "rename one of the stages".to_string()
                } else {
                    let text = &self.sources.files[r.file].text[r.name_span.start..r.name_span.end];
                    let stem = text.strip_suffix('"').unwrap_or(text).trim_start_matches('"');
                    format!(
                        "a `for` loop makes one stage per value: use the loop variable in the name (`\"{stem}_${{{}}}\"`)",
                        r.vars[r.vars.len() - 1].0
                    )
                });
                self.err(d);
            } else {
                by_name.insert(r.name.clone(), i);
            }
        }

        // 5. Outputs of every stage, before anything reads them.
        let mut outputs: Vec<Vec<Output>> = Vec::new();
        let mut out_spans: Vec<Vec<Span>> = Vec::new();
        let mut by_path: BTreeMap<String, (usize, Span)> = BTreeMap::new();
        for (i, r) in raw.iter().enumerate() {
            let mut outs = Vec::new();
            let mut spans = Vec::new();
            let mut names: HashMap<String, Span> = HashMap::new();
            for item in &r.ast.items {
                let (list, metrics) = match &item.kind {
                    ast::StageItemKind::Out(l) => (l, false),
                    ast::StageItemKind::Metrics(l) => (l, true),
                    _ => continue,
                };
                for np in list {
                    let text = self.plain_str(r.file, &np.path, &r.vars, &params);
                    let Some(path) = self.out_path(r.file, np.path.span, &text) else {
                        continue;
                    };
                    if let Some(n) = &np.name
                        && let Some(prev) = names.insert(n.node.clone(), n.span)
                    {
                        self.err(
                            Diagnostic::new(
                                "E0124",
                                format!("stage `{}` has two outputs named `{}`", r.name, n.node),
                            )
                            .at(r.file, n.span, "named again here")
                            .also(prev, "first here")
                            .help("give each output and metrics file its own name"),
                        );
                    }
                    if let Some((j, sp)) = by_path.get(&path).copied() {
                        let other = &raw[j];
                        let d = if j == i {
                            Some(
                                Diagnostic::new(
                                    "E0106",
                                    format!(
                                        "stage `{}` declares the output `{path}` twice",
                                        r.name
                                    ),
                                )
                                .at(r.file, np.path.span, "declared again here")
                                .also(sp, "first here")
                                .help("declare each output once"),
                            )
                        } else if other.name == r.name && !other.bad_name {
                            // The stage is defined twice, which is reported already.
                            None
                        } else if other.file == r.file && sp == np.path.span {
                            // One stage in a `for` loop, the same path for every value.
                            let var = r.vars.last().map_or("", |(n, _)| n.as_str());
                            Some(
                                Diagnostic::new(
                                    "E0106",
                                    format!(
                                        "`{path}` is an output of two stages, `{}` and `{}`",
                                        other.name, r.name
                                    ),
                                )
                                .at(
                                    r.file,
                                    np.path.span,
                                    format!("the same path for every value of `{var}`"),
                                )
                                .help(format!("use the loop variable in the path: `${{{var}}}`")),
                            )
                        } else {
                            let mut d = Diagnostic::new(
                                "E0106",
                                format!(
                                    "`{path}` is an output of two stages, `{}` and `{}`",
                                    other.name, r.name
                                ),
                            )
                            .at(
                                r.file,
                                np.path.span,
                                format!("declared by `{}`", r.name),
                            );
                            if other.file == r.file {
                                d = d.also(sp, format!("declared by `{}`", other.name));
                            }
                            Some(d.help(
                                "every output belongs to one stage: give one of them another path",
                            ))
                        };
                        if let Some(d) = d {
                            self.err(d);
                        }
                    } else {
                        by_path.insert(path.clone(), (i, np.path.span));
                    }
                    outs.push(Output {
                        name: np.name.as_ref().map(|n| n.node.clone()),
                        path,
                        metrics,
                    });
                    spans.push(np.path.span);
                }
            }
            outputs.push(outs);
            out_spans.push(spans);
        }
        // An output under another stage's output directory is ambiguous.
        let paths: Vec<(&String, &(usize, Span))> = by_path.iter().collect();
        for w in paths.windows(2) {
            let (a, (ia, _)) = w[0];
            let (b, (ib, sb)) = w[1];
            if ia != ib && is_under(b, a) {
                let r = &raw[*ib];
                self.err(
                    Diagnostic::new(
                        "E0126",
                        format!(
                            "output `{b}` of `{}` is inside output `{a}` of `{}`",
                            r.name, raw[*ia].name
                        ),
                    )
                    .at(r.file, *sb, "inside another stage's output")
                    .help("outputs of different stages must not contain each other"),
                );
            }
        }

        // 6. Each stage.
        let out_index = OutputIndex::new(by_path);
        let stage_names: Vec<String> = raw.iter().map(|r| r.name.clone()).collect();
        let mut stages: Vec<Stage> = Vec::with_capacity(raw.len());
        for (i, r) in raw.iter().enumerate() {
            let mut s = self.stage(
                i,
                r,
                &raw,
                &by_name,
                &outputs,
                &out_spans,
                &out_index,
                &params,
                &env,
                &stage_names,
            );
            s.executor = self.stage_executor(r, &pipeline_exec, &params);
            stages.push(s);
        }
        if !self.diags.is_empty() {
            return None;
        }
        for (s, o) in stages.iter_mut().zip(outputs) {
            s.outputs = o;
        }

        // 7. Cycles and the order.
        let topo = self.order(&stages, &raw)?;
        let mut sources = self.rel_names.clone();
        sources.truncate(files.len().max(1));
        sources.extend(params_sources);
        let _ = &topo;
        Some(Pipeline {
            name: name.unwrap_or_else(|| "pipeline".into()),
            sources,
            params,
            overrides,
            stages,
            order: topo,
        })
    }

    fn canonical(&self, p: &Path) -> PathBuf {
        std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
    }

    fn collect_includes(
        &mut self,
        file: (usize, ast::File),
        out: &mut Vec<(usize, ast::File)>,
        stack: &mut Vec<PathBuf>,
    ) {
        let (fid, f) = file;
        let includes: Vec<ast::Str> = f
            .items
            .iter()
            .filter_map(|i| match &i.kind {
                ast::ItemKind::Include(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        let base_rel = Path::new(&self.rel_names[fid])
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        out.push((fid, f));
        for s in includes {
            let text = self.plain_str(fid, &s, &[], &BTreeMap::new());
            let rel = normalize(&base_rel.join(&text).to_string_lossy());
            let full = self.root.join(&rel);
            let canon = self.canonical(&full);
            if let Some(pos) = stack.iter().position(|p| *p == canon) {
                let chain: Vec<String> = stack[pos..]
                    .iter()
                    .map(|p| {
                        p.file_name()
                            .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
                    })
                    .collect();
                self.err(
                    Diagnostic::new("E0117", format!("include cycle: `{}` includes itself", rel))
                        .at(fid, s.span, "this include closes the cycle")
                        .help(format!(
                            "the cycle: {} → {}",
                            chain.join(" → "),
                            chain.first().cloned().unwrap_or_default()
                        )),
                );
                continue;
            }
            if out
                .iter()
                .any(|(i, _)| self.canonical(&self.root.join(&self.rel_names[*i])) == canon)
            {
                continue; // included twice (not a cycle): once is enough
            }
            let display = self.display_of(&full);
            if let Some(parsed) = self.read_source(&full, display, rel, Some((fid, s.span))) {
                stack.push(canon);
                self.collect_includes(parsed, out, stack);
                stack.pop();
            }
        }
    }

    fn display_of(&self, full: &Path) -> String {
        full.strip_prefix("./")
            .unwrap_or(full)
            .display()
            .to_string()
    }

    fn read_params(
        &mut self,
        fid: usize,
        span: Span,
        rel: &str,
    ) -> Option<BTreeMap<String, Value>> {
        // Whatever goes wrong below, params keys will be missing because of it.
        let failed_before = std::mem::replace(&mut self.params_failed, true);
        let full = self.root.join(rel);
        let display = self.display_of(&full);
        let text = match std::fs::read(&full).map(String::from_utf8) {
            Ok(Ok(t)) => t,
            Ok(Err(_)) => {
                self.err(
                    Diagnostic::new(
                        "E0005",
                        format!("params file `{display}` is not UTF-8 text"),
                    )
                    .at(fid, span, "read here")
                    .help("save the file as UTF-8"),
                );
                return None;
            }
            Err(e) => {
                self.err(
                    Diagnostic::new("E0118", format!("cannot read params file `{display}`: {e}"))
                        .at(fid, span, "named here")
                        .help("params files are relative to the pipeline's directory"),
                );
                return None;
            }
        };
        let id = self.sources.add(display.clone(), text);
        self.rel_names.push(rel.to_string());
        let text = self.sources.files[id].text.clone();
        match crate::params::parse(&display, &text, id) {
            Ok(m) => {
                self.params_failed = failed_before;
                Some(m)
            }
            Err(mut d) => {
                if d.file.is_none() {
                    d = d.at(fid, span, "named here");
                }
                self.err(d);
                None
            }
        }
    }

    fn expand<'a>(
        &mut self,
        fid: usize,
        items: &'a [ast::Item],
        vars: &Vars,
        params: &BTreeMap<String, Value>,
        out: &mut Vec<RawStage<'a>>,
    ) {
        for item in items {
            match &item.kind {
                ast::ItemKind::Stage(s) => {
                    let n_before = self.diags.len();
                    let (name, span) = match &s.name {
                        ast::StageName::Ident(n) => (n.node.clone(), n.span),
                        ast::StageName::Str(st) => (self.plain_str(fid, st, vars, params), st.span),
                    };
                    out.push(RawStage {
                        file: fid,
                        ast: s,
                        name,
                        name_span: span,
                        vars: vars.clone(),
                        bad_name: self.diags.len() > n_before,
                    });
                }
                ast::ItemKind::For(l) => {
                    let values = match &l.over {
                        ast::ForSource::List(v) => match self.value(fid, v, vars, params) {
                            Value::List(items) => items,
                            _ => unreachable!("the grammar only allows a list here"),
                        },
                        ast::ForSource::Param(k) => {
                            let key = k.node.strip_prefix("params.").unwrap_or(&k.node);
                            match Value::lookup(params, key) {
                                Some(Value::List(items)) => items.clone(),
                                Some(other) => {
                                    self.err(
                                        Diagnostic::new("E0123", format!("`for` needs a list, but `params.{key}` is a {}", other.type_name()))
                                            .at(fid, k.span, "not a list")
                                            .help("loop over a list: `for x in [\"a\", \"b\"]` or a params key holding a list"),
                                    );
                                    continue;
                                }
                                None => {
                                    self.unknown_param(fid, k.span, key, params);
                                    continue;
                                }
                            }
                        }
                    };
                    if vars.iter().any(|(n, _)| *n == l.var.node) {
                        self.err(
                            Diagnostic::new(
                                "E0132",
                                format!("loop variable `{}` is already in use", l.var.node),
                            )
                            .at(fid, l.var.span, "shadows an outer loop variable")
                            .help("give the inner loop variable another name"),
                        );
                        continue;
                    }
                    for v in values {
                        let mut inner = vars.clone();
                        inner.push((l.var.node.clone(), v));
                        self.expand(fid, &l.items, &inner, params, out);
                    }
                }
                ast::ItemKind::Unknown(w) if !vars.is_empty() => {
                    if self.string_ran_on(fid, w) {
                        continue;
                    }
                    self.err(
                        Diagnostic::new("E0101", format!("unknown keyword `{}`", w.node))
                            .at(fid, w.span, "not a keyword")
                            .help(did_you_mean(&w.node, ["stage", "for"]).unwrap_or_else(|| {
                                "a `for` loop holds `stage` and `for` items".into()
                            })),
                    );
                }
                ast::ItemKind::Pipeline(_)
                | ast::ItemKind::Executor(_)
                | ast::ItemKind::ParamsFiles(_)
                | ast::ItemKind::Param { .. }
                | ast::ItemKind::Env(_)
                | ast::ItemKind::Include(_)
                | ast::ItemKind::Unknown(_) => {}
            }
        }
    }

    /// An unknown word right after a string that spans lines: most likely the string before
    /// it lacks its closing `"`, and the next string's opening `"` closed it. Says so (and
    /// returns true) instead of "unknown keyword".
    fn string_ran_on(&mut self, fid: usize, w: &ast::Spanned<String>) -> bool {
        let text = self.sources.files[fid].text.clone();
        let Some(quote) = w.span.start.checked_sub(1) else {
            return false;
        };
        if text.as_bytes().get(quote) != Some(&b'"') {
            return false;
        }
        let Some(start) = string_closed_at(&text, quote) else {
            return false;
        };
        if !text[start..quote].contains('\n') {
            return false;
        }
        let (line, _) = crate::diag::line_col(&text, start);
        let (end_line, _) = crate::diag::line_col(&text, quote);
        self.err(
            Diagnostic::new(
                "E0004",
                format!("unterminated string: the string on line {line} runs on to line {end_line}"),
            )
            .at(fid, Span::new(start, start + 1), "this string is not closed on its line")
            .also(
                Span::new(quote, quote + 1),
                format!("so this `\"` closes it, and `{}` is read as a keyword", w.node),
            )
            .help(format!(
                "add the missing `\"` on line {line} (a string may span lines, so one missing `\"` shifts every string after it)"
            )),
        );
        true
    }

    fn unknown_param(
        &mut self,
        fid: usize,
        span: Span,
        key: &str,
        params: &BTreeMap<String, Value>,
    ) {
        if self.params_failed {
            return; // the params file that could not be read is the error
        }
        let keys = Value::keys(params);
        let help = match did_you_mean(key, keys.iter().map(String::as_str)) {
            Some(m) => m,
            None if keys.is_empty() => {
                "no params are defined: add a `params \"params.yaml\"` file or a `param` line"
                    .to_string()
            }
            None => format!(
                "the params keys are: {}",
                keys.iter().take(12).cloned().collect::<Vec<_>>().join(", ")
            ),
        };
        self.err(
            Diagnostic::new("E0104", format!("unknown params key `{key}`"))
                .at(fid, span, "no such key")
                .help(help),
        );
    }

    fn value(
        &mut self,
        fid: usize,
        v: &ast::Value,
        vars: &[(String, Value)],
        params: &BTreeMap<String, Value>,
    ) -> Value {
        match &v.kind {
            ast::ValueKind::Str(s) => Value::Str(self.plain_str(fid, s, vars, params)),
            ast::ValueKind::Number(n, text) => number_value(*n, text),
            ast::ValueKind::Bool(b) => Value::Bool(*b),
            ast::ValueKind::List(items) => Value::List(
                items
                    .iter()
                    .map(|i| self.value(fid, i, vars, params))
                    .collect(),
            ),
        }
    }

    /// A string where only loop variables and params may be interpolated.
    fn plain_str(
        &mut self,
        fid: usize,
        s: &ast::Str,
        vars: &[(String, Value)],
        params: &BTreeMap<String, Value>,
    ) -> String {
        let mut out = String::new();
        for p in &s.parts {
            match p {
                ast::StrPart::Text(t) => out.push_str(t),
                ast::StrPart::Interp(path) => {
                    match self.lookup_plain(fid, path, vars, params, Ctx::Plain) {
                        Some(Value::Str(v)) => out.push_str(v),
                        Some(v) => out.push_str(&v.to_string()),
                        None => {}
                    }
                }
            }
        }
        out
    }

    /// `${var}` and `${params.key}`; anything else is an error here.
    fn lookup_plain<'v>(
        &mut self,
        fid: usize,
        path: &ast::Spanned<ast::Path>,
        vars: &'v [(String, Value)],
        params: &'v BTreeMap<String, Value>,
        ctx: Ctx,
    ) -> Option<&'v Value> {
        let p = &path.node;
        if let Some((_, v)) = vars.iter().rev().find(|(n, _)| *n == p.head) {
            return index_value(v, &p.segments).or_else(|| {
                self.err(
                    Diagnostic::new("E0109", format!("`{p}` does not exist in loop value `{v}`"))
                        .at(fid, path.span, "no such field")
                        .help(format!("a loop value is used as it is: `${{{}}}`", p.head)),
                );
                None
            });
        }
        if p.head == "params" {
            if p.segments.is_empty() {
                self.err(
                    Diagnostic::new("E0109", "`${params}` needs a key")
                        .at(fid, path.span, "which param?")
                        .help("write `${params.key}`"),
                );
                return None;
            }
            return match lookup_segs(params, &p.segments) {
                Some(v) => Some(v),
                None => {
                    self.unknown_param(fid, path.span, &key_of(&p.segments), params);
                    None
                }
            };
        }
        let mut cands: Vec<&str> = vars.iter().map(|(n, _)| n.as_str()).collect();
        cands.push("params");
        if ctx == Ctx::Command {
            cands.extend(["in", "out", "metrics"]);
        }
        let help = match did_you_mean(&p.head, cands.iter().copied()) {
            Some(m) => m,
            None if matches!(p.head.as_str(), "in" | "out" | "metrics") => {
                "`${in}`, `${out}` and `${metrics}` can be used in `run` and `fallback` only"
                    .to_string()
            }
            None => format!(
                "here you can use {}",
                cands
                    .iter()
                    .map(|c| format!("`${{{c}}}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        self.err(
            Diagnostic::new(
                if matches!(p.head.as_str(), "in" | "out" | "metrics") {
                    "E0110"
                } else {
                    "E0109"
                },
                format!("unknown name `{}` in `${{{p}}}`", p.head),
            )
            .at(fid, path.span, "not known here")
            .help(help),
        );
        None
    }

    fn out_path(&mut self, fid: usize, span: Span, text: &str) -> Option<String> {
        let path = normalize(text);
        if path.is_empty()
            || text.starts_with('/')
            || path == ".."
            || path.starts_with("../")
            || path == "."
            || path.starts_with(".mlp")
        {
            self.err(
                Diagnostic::new("E0125", format!("output `{text}` is not inside the workspace"))
                    .at(fid, span, "outputs are written inside the pipeline's directory")
                    .help("use a relative path such as `data/out.csv` (not absolute, not `..`, not `.mlp/`)"),
            );
            return None;
        }
        if path.contains(['*', '?', '[']) {
            self.err(
                Diagnostic::new("E0125", format!("output `{text}` is a glob"))
                    .at(fid, span, "an output is one file or directory")
                    .help("declare each output path, or one directory that holds them all"),
            );
            return None;
        }
        Some(path)
    }

    #[allow(clippy::too_many_arguments)]
    fn stage(
        &mut self,
        me: usize,
        r: &RawStage<'_>,
        raw: &[RawStage<'_>],
        by_name: &HashMap<String, usize>,
        outputs: &[Vec<Output>],
        out_spans: &[Vec<Span>],
        out_index: &OutputIndex,
        params: &BTreeMap<String, Value>,
        pipeline_env: &BTreeMap<String, String>,
        stage_names: &[String],
    ) -> Stage {
        let f = r.file;
        let mut s = Stage {
            name: r.name.clone(),
            origin: Origin {
                file: f,
                span: r.name_span,
            },
            inputs: Vec::new(),
            outputs: Vec::new(), // moved in once every stage is built
            params: Vec::new(),
            command: String::new(),
            env: pipeline_env.clone(),
            checks: Vec::new(),
            when: None,
            when_text: None,
            every_ms: None,
            timeout_ms: None,
            retry: 0,
            fallback: None,
            resources: Resources::default(),
            executor: Executor::default(), // set by `stage_executor`
            always: false,
            frozen: false,
            promote: false,
            deps: Vec::new(),
        };
        let mut seen: HashMap<&'static str, Span> = HashMap::new();
        let mut deps: Vec<Dep> = Vec::new();
        // Inputs first: `run` may name them.
        for item in &r.ast.items {
            if let ast::StageItemKind::In(list) = &item.kind {
                for input in list {
                    match input {
                        ast::Input::Path(st) => {
                            let text = self.plain_str(f, st, &r.vars, params);
                            let path = normalize(&text);
                            if path.is_empty() {
                                self.err(
                                    Diagnostic::new("E0133", "empty input path")
                                        .at(f, st.span, "empty")
                                        .help("name a file, a directory or a glob"),
                                );
                                continue;
                            }
                            let kind = if path.contains(['*', '?', '[']) {
                                InputKind::Glob
                            } else {
                                InputKind::Path
                            };
                            let producer = out_index.producer_of(&path, kind);
                            if producer == Some(me) {
                                self.err(
                                    Diagnostic::new("E0107", format!("stage `{}` reads its own output `{path}`", r.name))
                                        .at(f, st.span, "read here")
                                        .also(out_spans[me][outputs[me].iter().position(|o| is_under(&path, &o.path) || is_under(&o.path, &path)).unwrap_or(0)], "and written here")
                                        .help("a stage cannot depend on what it writes: read another file, or split the stage"),
                                );
                                continue;
                            }
                            if let Some(p) = producer {
                                deps.push(Dep {
                                    stage: p,
                                    kind: DepKind::Data,
                                });
                            }
                            // Every other stage whose output a glob or directory input covers.
                            for j in out_index.covered(&path, kind) {
                                if j != me && Some(j) != producer {
                                    deps.push(Dep {
                                        stage: j,
                                        kind: DepKind::Data,
                                    });
                                }
                            }
                            s.inputs.push(Input {
                                path,
                                kind,
                                producer,
                            });
                        }
                        ast::Input::Ref {
                            stage,
                            output,
                            span,
                        } => {
                            let Some(j) =
                                self.stage_ref(f, &stage.node, stage.span, by_name, stage_names)
                            else {
                                continue;
                            };
                            if j == me {
                                self.err(
                                    Diagnostic::new(
                                        "E0107",
                                        format!("stage `{}` reads its own output", r.name),
                                    )
                                    .at(f, *span, "refers to the stage itself")
                                    .help("a stage cannot depend on what it writes"),
                                );
                                continue;
                            }
                            let outs: Vec<&Output> = match output {
                                Some(o) => match outputs[j]
                                    .iter()
                                    .find(|x| x.name.as_deref() == Some(o.node.as_str()))
                                {
                                    Some(x) => vec![x],
                                    None => {
                                        self.unknown_output(f, o, &raw[j].name, &outputs[j]);
                                        continue;
                                    }
                                },
                                None => {
                                    if outputs[j].is_empty() {
                                        self.err(
                                            Diagnostic::new("E0103", format!("stage `{}` has no outputs to read", raw[j].name))
                                                .at(f, *span, "nothing to read")
                                                .help(format!("to wait for `{}` without reading anything, write `after {}`", raw[j].name, raw[j].name)),
                                        );
                                        continue;
                                    }
                                    outputs[j].iter().collect()
                                }
                            };
                            for o in outs {
                                s.inputs.push(Input {
                                    path: o.path.clone(),
                                    kind: InputKind::Path,
                                    producer: Some(j),
                                });
                            }
                            deps.push(Dep {
                                stage: j,
                                kind: DepKind::Data,
                            });
                        }
                    }
                }
            }
        }
        for item in &r.ast.items {
            use ast::StageItemKind as K;
            let kw = item.kind.keyword();
            let single = matches!(
                &item.kind,
                K::Run(_)
                    | K::When(_)
                    | K::Every(_)
                    | K::Timeout(_)
                    | K::Retry(_)
                    | K::Fallback(_)
                    | K::Executor(_)
            );
            if single && let Some(prev) = seen.insert(kw, item.span) {
                self.err(
                    Diagnostic::new("E0121", format!("stage `{}` has two `{kw}` items", r.name))
                        .at(f, item.span, "again here")
                        .also(prev, "first here")
                        .help(format!("a stage has at most one `{kw}`")),
                );
                continue;
            }
            match &item.kind {
                K::In(_) | K::Out(_) | K::Metrics(_) | K::Executor(_) => {}
                K::After(list) => {
                    for n in list {
                        let (name, span) = match n {
                            ast::StageName::Ident(i) => (i.node.clone(), i.span),
                            ast::StageName::Str(st) => {
                                (self.plain_str(f, st, &r.vars, params), st.span)
                            }
                        };
                        if let Some(j) = self.stage_ref(f, &name, span, by_name, stage_names) {
                            if j == me {
                                self.err(
                                    Diagnostic::new(
                                        "E0131",
                                        format!("stage `{}` waits for itself", r.name),
                                    )
                                    .at(f, span, "this is the stage itself")
                                    .help("remove it from `after`"),
                                );
                            } else {
                                deps.push(Dep {
                                    stage: j,
                                    kind: DepKind::After,
                                });
                            }
                        }
                    }
                }
                K::Params(keys) => {
                    for k in keys {
                        let key = k.node.strip_prefix("params.").unwrap_or(&k.node);
                        match Value::lookup(params, key) {
                            Some(v) => s.params.push((key.to_string(), v.clone())),
                            None => self.unknown_param(f, k.span, key, params),
                        }
                    }
                }
                K::Run(st) => {
                    s.command = self.command(
                        me,
                        r,
                        st,
                        &mut s.inputs,
                        &mut deps,
                        raw,
                        by_name,
                        outputs,
                        params,
                        stage_names,
                    )
                }
                K::Fallback(st) => {
                    s.fallback = Some(self.command(
                        me,
                        r,
                        st,
                        &mut s.inputs,
                        &mut deps,
                        raw,
                        by_name,
                        outputs,
                        params,
                        stage_names,
                    ))
                }
                K::Check { expr, message } | K::Gate { expr, message } => {
                    let kind = if matches!(item.kind, K::Check { .. }) {
                        AssertionKind::Check
                    } else {
                        AssertionKind::Gate
                    };
                    if let Some(cond) =
                        self.condition(me, r, expr, raw, by_name, outputs, params, false)
                    {
                        let text =
                            self.sources.files[f].text[expr.span.start..expr.span.end].to_string();
                        let message = message
                            .as_ref()
                            .map(|m| self.plain_str(f, m, &r.vars, params));
                        s.checks.push(Assertion {
                            kind,
                            cond,
                            text,
                            message,
                            origin: Origin {
                                file: f,
                                span: expr.span,
                            },
                        });
                    }
                }
                K::When(expr) => {
                    s.when = self.condition(me, r, expr, raw, by_name, outputs, params, true);
                    s.when_text = Some(
                        self.sources.files[f].text[expr.span.start..expr.span.end].to_string(),
                    );
                }
                K::Every(d) | K::Timeout(d) => {
                    if d.node.millis == 0 {
                        self.err(
                            Diagnostic::new("E0134", format!("`{kw}` needs a duration above zero"))
                                .at(f, d.span, "zero")
                                .help("write a duration such as `30s`, `10m` or `24h`"),
                        );
                    } else if kw == "every" {
                        s.every_ms = Some(d.node.millis);
                    } else {
                        s.timeout_ms = Some(d.node.millis);
                    }
                }
                K::Retry(n) => s.retry = n.node,
                K::Resources(list) => {
                    for res in list {
                        match (res.name.node.as_str(), res.amount.node) {
                            ("cpu", ast::Amount::Count(n)) => {
                                s.resources.cpu = u32::try_from(n).unwrap_or(u32::MAX)
                            }
                            ("gpu", ast::Amount::Count(n)) => {
                                s.resources.gpu = u32::try_from(n).unwrap_or(u32::MAX)
                            }
                            ("mem", ast::Amount::Bytes(b)) => s.resources.mem_bytes = b,
                            ("cpu" | "gpu", ast::Amount::Bytes(_)) => self.err(
                                Diagnostic::new(
                                    "E0112",
                                    format!("`{}` is a count, not a size", res.name.node),
                                )
                                .at(f, res.amount.span, "a size")
                                .help(format!("write `{} = 2`", res.name.node)),
                            ),
                            ("mem", ast::Amount::Count(_)) => self.err(
                                Diagnostic::new("E0112", "`mem` is a size")
                                    .at(f, res.amount.span, "a plain number")
                                    .help("write a size with a unit: `mem = 512M` or `mem = 4G`"),
                            ),
                            (other, _) => {
                                let help = did_you_mean(other, ["cpu", "mem", "gpu"])
                                    .unwrap_or_else(|| {
                                        "the resources are `cpu`, `mem` and `gpu`".into()
                                    });
                                self.err(
                                    Diagnostic::new("E0127", format!("unknown resource `{other}`"))
                                        .at(f, res.name.span, "not a resource")
                                        .help(help),
                                );
                            }
                        }
                    }
                }
                K::Always => s.always = true,
                K::Frozen => s.frozen = true,
                K::Promote => s.promote = true,
                K::Env(pairs) => {
                    for p in pairs {
                        let v = self.value(f, &p.value, &r.vars, params);
                        s.env.insert(p.name.node.clone(), v.to_string());
                    }
                }
                K::Unknown(w) => {
                    if self.string_ran_on(f, w) {
                        continue;
                    }
                    let help = match did_you_mean(&w.node, ast::STAGE_KEYWORDS.iter().copied()) {
                        Some(m) => m,
                        None if matches!(w.node.as_str(), "cpu" | "mem" | "gpu") => {
                            "separate resources with commas: `resources cpu = 2, mem = 4G`".into()
                        }
                        None => "a stage holds `in`, `out`, `metrics`, `after`, `params`, `run`, `check`, `gate`, `when`, `every`, `timeout`, `retry`, `fallback`, `resources`, `executor`, `env`, `always`, `frozen` and `promote`".into(),
                    };
                    self.err(
                        Diagnostic::new(
                            "E0100",
                            format!("unknown keyword `{}` in stage `{}`", w.node, r.name),
                        )
                        .at(f, w.span, "not a stage keyword")
                        .help(help),
                    );
                }
            }
        }
        if s.always && s.frozen {
            let sp = r
                .ast
                .items
                .iter()
                .find(|i| matches!(i.kind, ast::StageItemKind::Frozen))
                .map_or(r.name_span, |i| i.span);
            self.err(
                Diagnostic::new(
                    "E0135",
                    format!("stage `{}` is both `always` and `frozen`", r.name),
                )
                .at(f, sp, "frozen here")
                .help("`always` reruns it every time, `frozen` never: keep one"),
            );
        }
        for c in s.checks.iter().map(|a| &a.cond).chain(s.when.iter()) {
            let mut used = Vec::new();
            c.stages(&mut used);
            for (j, failed) in used {
                if j != me {
                    deps.push(Dep {
                        stage: j,
                        kind: if failed {
                            DepKind::Failed
                        } else {
                            DepKind::Metrics
                        },
                    });
                }
            }
        }
        deps.sort();
        deps.dedup();
        // One kind per upstream stage: the strongest (Data < After < Metrics < Failed in
        // the enum; `Failed` must win so the handler runs when it fails).
        let mut by_stage: BTreeMap<usize, DepKind> = BTreeMap::new();
        for d in deps {
            by_stage
                .entry(d.stage)
                .and_modify(|k| *k = (*k).max(d.kind))
                .or_insert(d.kind);
        }
        s.deps = by_stage
            .into_iter()
            .map(|(stage, kind)| Dep { stage, kind })
            .collect();
        s
    }

    /// A stage's executor: its own `executor` item over the pipeline's, or the pipeline's.
    fn stage_executor(
        &mut self,
        r: &RawStage<'_>,
        pipeline: &Executor,
        params: &BTreeMap<String, Value>,
    ) -> Executor {
        let own = r.ast.items.iter().find_map(|i| match &i.kind {
            ast::StageItemKind::Executor(e) => Some(e),
            _ => None,
        });
        let Some(e) = own else {
            return pipeline.clone();
        };
        match self.executor(r.file, e, &r.vars, params) {
            Some((kind, slurm)) => Executor {
                kind,
                own: true,
                slurm: pipeline.slurm.overlay(&slurm),
            },
            None => pipeline.clone(),
        }
    }

    /// `executor NAME { settings }`: the kind and the settings it gives (`None` for an
    /// unknown executor; every mistake is reported).
    fn executor(
        &mut self,
        fid: usize,
        e: &ast::Executor,
        vars: &[(String, Value)],
        params: &BTreeMap<String, Value>,
    ) -> Option<(ExecutorKind, SlurmSettings)> {
        let Some(kind) = ExecutorKind::parse(&e.name.node) else {
            let help = did_you_mean(&e.name.node, ExecutorKind::NAMES)
                .unwrap_or_else(|| "the executors are `local` and `slurm`".into());
            self.err(
                Diagnostic::new("E0136", format!("unknown executor `{}`", e.name.node))
                    .at(fid, e.name.span, "not an executor")
                    .help(help),
            );
            return None;
        };
        let mut st = SlurmSettings::default();
        let mut seen: HashMap<String, Span> = HashMap::new();
        for set in e.settings.iter().flatten() {
            let n = set.name.node.as_str();
            if kind == ExecutorKind::Local {
                self.err(
                    Diagnostic::new("E0137", format!("`executor local` has no setting `{n}`"))
                        .at(fid, set.name.span, "a setting of `local`")
                        .help("`local` takes no settings; Slurm's go in `executor slurm { ... }`"),
                );
                continue;
            }
            if !SlurmSettings::NAMES.contains(&n) {
                let help = did_you_mean(n, SlurmSettings::NAMES).unwrap_or_else(|| {
                    "the Slurm settings are `partition`, `account`, `qos`, `time` and `args`".into()
                });
                self.err(
                    Diagnostic::new("E0137", format!("unknown Slurm setting `{n}`"))
                        .at(fid, set.name.span, "not a setting")
                        .help(help),
                );
                continue;
            }
            if let Some(prev) = seen.insert(n.to_string(), set.name.span) {
                self.err(
                    Diagnostic::new("E0139", format!("`{n}` is set twice"))
                        .at(fid, set.name.span, "again here")
                        .also(prev, "first here")
                        .help("set each setting once"),
                );
                continue;
            }
            let wrong = |what: &str, help: String| {
                Diagnostic::new("E0138", format!("`{n}` is {what}"))
                    .at(fid, set.value.span(), format!("not {what}"))
                    .help(help)
            };
            match (n, &set.value) {
                ("time", ast::SettingValue::Duration(d)) => {
                    if d.node.millis == 0 {
                        self.err(
                            Diagnostic::new("E0134", "`time` needs a duration above zero")
                                .at(fid, d.span, "zero")
                                .help("write a duration such as `30m` or `2h`"),
                        );
                    } else {
                        st.time_ms = Some(d.node.millis);
                    }
                }
                ("time", _) => self.err(wrong(
                    "a duration",
                    "write a duration with a unit: `time = 30m` or `time = 2h` (Slurm counts whole minutes)".into(),
                )),
                ("args", ast::SettingValue::Value(v)) => match &v.kind {
                    ast::ValueKind::List(items) => {
                        let mut args = Vec::new();
                        for item in items {
                            match &item.kind {
                                ast::ValueKind::Str(s) => {
                                    args.push(self.plain_str(fid, s, vars, params));
                                }
                                _ => self.err(
                                    Diagnostic::new("E0138", "`args` holds strings only")
                                        .at(fid, item.span, "not a string")
                                        .help("quote every argument: `args = [\"--exclusive\", \"--nodes=1\"]`"),
                                ),
                            }
                        }
                        st.args = Some(args);
                    }
                    _ => self.err(wrong(
                        "a list of strings",
                        "write `args = [\"--exclusive\"]`".into(),
                    )),
                },
                ("args", _) => self.err(wrong(
                    "a list of strings",
                    "write `args = [\"--exclusive\"]`".into(),
                )),
                (_, ast::SettingValue::Value(ast::Value {
                    kind: ast::ValueKind::Str(s),
                    ..
                })) => {
                    let v = self.plain_str(fid, s, vars, params);
                    match n {
                        "partition" => st.partition = Some(v),
                        "account" => st.account = Some(v),
                        _ => st.qos = Some(v),
                    }
                }
                (_, _) => self.err(wrong("a string", format!("write `{n} = \"...\"`"))),
            }
        }
        Some((kind, st))
    }

    fn stage_ref(
        &mut self,
        f: usize,
        name: &str,
        span: Span,
        by_name: &HashMap<String, usize>,
        names: &[String],
    ) -> Option<usize> {
        if let Some(&j) = by_name.get(name) {
            return Some(j);
        }
        let help = did_you_mean(name, names.iter().map(String::as_str)).unwrap_or_else(|| {
            if names.is_empty() {
                "the pipeline has no stages yet".into()
            } else {
                let mut shown: Vec<&str> = Vec::new();
                for n in names {
                    if shown.len() == 12 {
                        break;
                    }
                    if !shown.contains(&n.as_str()) {
                        shown.push(n);
                    }
                }
                format!("the stages are: {}", backticked(&shown))
            }
        });
        self.err(
            Diagnostic::new("E0102", format!("unknown stage `{name}`"))
                .at(f, span, "no stage has this name")
                .help(help),
        );
        None
    }

    fn unknown_output(&mut self, f: usize, o: &ast::Spanned<String>, stage: &str, outs: &[Output]) {
        let names: Vec<&str> = outs.iter().filter_map(|x| x.name.as_deref()).collect();
        let help = did_you_mean(&o.node, names.iter().copied()).unwrap_or_else(|| {
            if names.is_empty() {
                format!("`{stage}` has no named outputs: name one with `out name = \"path\"`")
            } else {
                format!("`{stage}` has {}", backticked(&names))
            }
        });
        self.err(
            Diagnostic::new(
                "E0103",
                format!("stage `{stage}` has no output `{}`", o.node),
            )
            .at(f, o.span, "no such output")
            .help(help),
        );
    }

    /// Interpolate a `run` or `fallback` command: every value is shell-quoted.
    #[allow(clippy::too_many_arguments)]
    fn command(
        &mut self,
        me: usize,
        r: &RawStage<'_>,
        st: &ast::Str,
        inputs: &mut Vec<Input>,
        deps: &mut Vec<Dep>,
        raw: &[RawStage<'_>],
        by_name: &HashMap<String, usize>,
        outputs: &[Vec<Output>],
        params: &BTreeMap<String, Value>,
        stage_names: &[String],
    ) -> String {
        let f = r.file;
        let mut out = String::new();
        for part in &st.parts {
            let path = match part {
                ast::StrPart::Text(t) => {
                    out.push_str(t);
                    continue;
                }
                ast::StrPart::Interp(p) => p,
            };
            let head = path.node.head.as_str();
            let segs = &path.node.segments;
            let is_var = r.vars.iter().any(|(n, _)| n == head);
            if is_var || head == "params" {
                match self.lookup_plain(f, path, &r.vars, params, Ctx::Command) {
                    Some(Value::Str(v)) => push_quoted(&mut out, v, false),
                    Some(v) => push_quoted(&mut out, &v.to_string(), false),
                    None => {}
                }
                continue;
            }
            if head == "in" || head == "out" || head == "metrics" {
                let all: Vec<Word<'_>> = if head == "in" {
                    inputs
                        .iter()
                        .map(|i| Word {
                            path: &i.path,
                            glob: i.kind == InputKind::Glob,
                            name: None,
                        })
                        .collect()
                } else {
                    outputs[me]
                        .iter()
                        .filter(|o| o.metrics == (head == "metrics"))
                        .map(|o| Word {
                            path: &o.path,
                            glob: false,
                            name: o.name.as_deref(),
                        })
                        .collect()
                };
                let plural = match head {
                    "in" => "inputs",
                    "out" => "outputs",
                    _ => "metrics files",
                };
                if let Some(chosen) = self.select(f, path, head, &all, plural) {
                    for (k, w) in chosen.iter().enumerate() {
                        if k > 0 {
                            out.push(' ');
                        }
                        push_quoted(&mut out, w.path, w.glob);
                    }
                }
                continue;
            }
            let words: Option<Vec<String>> = if let Some(&j) = by_name.get(head) {
                // `${stage.output}`: the path of another stage's output; it becomes an input.
                match segs.as_slice() {
                    [ast::Segment::Field(o)] => match outputs[j]
                        .iter()
                        .find(|x| x.name.as_deref() == Some(o.as_str()))
                    {
                        Some(x) if j != me => {
                            if !inputs.iter().any(|i| i.path == x.path) {
                                inputs.push(Input {
                                    path: x.path.clone(),
                                    kind: InputKind::Path,
                                    producer: Some(j),
                                });
                            }
                            deps.push(Dep {
                                stage: j,
                                kind: DepKind::Data,
                            });
                            Some(vec![quote(&x.path)])
                        }
                        Some(_) => {
                            self.err(
                                Diagnostic::new(
                                    "E0107",
                                    format!(
                                        "stage `{}` names its own output as `${{{}}}`",
                                        r.name, path.node
                                    ),
                                )
                                .at(f, path.span, "its own output")
                                .help(format!("write `${{out.{o}}}` for the stage's own outputs")),
                            );
                            None
                        }
                        None => {
                            self.unknown_output(
                                f,
                                &ast::Spanned::new(o.clone(), path.span),
                                &raw[j].name,
                                &outputs[j],
                            );
                            None
                        }
                    },
                    _ => {
                        self.err(
                            Diagnostic::new(
                                "E0109",
                                format!(
                                    "`${{{}}}` names a stage, not one of its outputs",
                                    path.node
                                ),
                            )
                            .at(f, path.span, "which output?")
                            .help(format!(
                                "write `${{{head}.OUTPUT}}` with one of the stage's output names"
                            )),
                        );
                        None
                    }
                }
            } else {
                let mut cands: Vec<&str> = r.vars.iter().map(|(n, _)| n.as_str()).collect();
                cands.extend(["params", "in", "out", "metrics"]);
                cands.extend(stage_names.iter().map(String::as_str));
                let help = did_you_mean(head, cands.iter().copied())
                    .unwrap_or_else(|| "in `run` you can use `${in}`, `${in[0]}`, `${out.NAME}`, `${metrics.NAME}`, `${params.KEY}`, `${STAGE.OUTPUT}` and loop variables".into());
                self.err(
                    Diagnostic::new(
                        "E0109",
                        format!("unknown name `{head}` in `${{{}}}`", path.node),
                    )
                    .at(f, path.span, "not known here")
                    .help(help),
                );
                None
            };
            for w in words.into_iter().flatten() {
                out.push_str(&w);
            }
        }
        out
    }

    /// `${in}`, `${in[1]}`, `${out.name}`: pick from the stage's inputs or outputs.
    fn select<'w>(
        &mut self,
        f: usize,
        path: &ast::Spanned<ast::Path>,
        what: &str,
        all: &'w [Word<'w>],
        plural: &str,
    ) -> Option<&'w [Word<'w>]> {
        match path.node.segments.as_slice() {
            [] => Some(all),
            [ast::Segment::Index(i)] => match all.get(*i) {
                Some(_) => Some(&all[*i..*i + 1]),
                None => {
                    self.err(
                        Diagnostic::new(
                            "E0111",
                            format!(
                                "`${{{}}}` is out of range: the stage has {} {}",
                                path.node,
                                all.len(),
                                if all.len() == 1 {
                                    plural.strip_suffix('s').unwrap_or(plural)
                                } else {
                                    plural
                                }
                            ),
                        )
                        .at(f, path.span, "no such item")
                        .help(if all.is_empty() {
                            format!("declare `{what}` first")
                        } else {
                            format!("indexes start at 0 and go to {}", all.len() - 1)
                        }),
                    );
                    None
                }
            },
            [ast::Segment::Field(n)] if what != "in" => {
                match all.iter().position(|w| w.name == Some(n.as_str())) {
                    Some(i) => Some(&all[i..i + 1]),
                    None => {
                        let known: Vec<&str> = all.iter().filter_map(|w| w.name).collect();
                        let help = did_you_mean(n, known.iter().copied()).unwrap_or_else(|| {
                            format!(
                                "the stage's named {} are: {}",
                                plural,
                                if known.is_empty() {
                                    "none".to_string()
                                } else {
                                    known.join(", ")
                                }
                            )
                        });
                        self.err(
                            Diagnostic::new(
                                "E0103",
                                format!(
                                    "no {} named `{n}` in this stage",
                                    if what == "out" {
                                        "output"
                                    } else {
                                        "metrics file"
                                    }
                                ),
                            )
                            .at(f, path.span, "no such name")
                            .help(help),
                        );
                        None
                    }
                }
            }
            _ => {
                self.err(
                    Diagnostic::new(
                        "E0109",
                        format!("`${{{}}}` is not a valid use of `{what}`", path.node),
                    )
                    .at(f, path.span, "cannot be resolved")
                    .help(format!(
                        "write `${{{what}}}` for all, `${{{what}[0]}}` for one{}",
                        if what == "in" {
                            ""
                        } else {
                            ", or `${NAME}` by name"
                        }
                        .replace("${NAME}", &format!("${{{what}.NAME}}"))
                    )),
                );
                None
            }
        }
    }

    /// Resolve and type-check a `check`, `gate` or `when` expression.
    #[allow(clippy::too_many_arguments)]
    fn condition(
        &mut self,
        me: usize,
        r: &RawStage<'_>,
        e: &ast::Expr,
        raw: &[RawStage<'_>],
        by_name: &HashMap<String, usize>,
        outputs: &[Vec<Output>],
        params: &BTreeMap<String, Value>,
        is_when: bool,
    ) -> Option<Cond> {
        let n_before = self.diags.len();
        let (c, ty) = self.cond(me, r, e, raw, by_name, outputs, params, is_when)?;
        if self.diags.len() > n_before {
            return None;
        }
        if !(ty == Ty::Bool || ty == Ty::Any) {
            self.err(
                Diagnostic::new(
                    "E0112",
                    format!(
                        "a condition must be true or false, but this is {}",
                        crate::expr::article(ty.name())
                    ),
                )
                .at(r.file, e.span, crate::expr::article(ty.name()))
                .help("compare it: `x > 0.5`, `x == \"ok\"`"),
            );
            return None;
        }
        Some(c)
    }

    #[allow(clippy::too_many_arguments)]
    fn cond(
        &mut self,
        me: usize,
        r: &RawStage<'_>,
        e: &ast::Expr,
        raw: &[RawStage<'_>],
        by_name: &HashMap<String, usize>,
        outputs: &[Vec<Output>],
        params: &BTreeMap<String, Value>,
        is_when: bool,
    ) -> Option<(Cond, Ty)> {
        let f = r.file;
        use ast::ExprKind as E;
        Some(match &e.kind {
            E::Number(n, t) => (Cond::Const(number_value(*n, t)), Ty::Num),
            E::Bool(b) => (Cond::Const(Value::Bool(*b)), Ty::Bool),
            E::Duration(d) => (Cond::Const(Value::Float(d.millis as f64 / 1000.0)), Ty::Num),
            E::Str(s) => (
                Cond::Const(Value::Str(self.plain_str(f, s, &r.vars, params))),
                Ty::Str,
            ),
            E::Paren(inner) => self.cond(me, r, inner, raw, by_name, outputs, params, is_when)?,
            E::Unary { op, expr } => {
                let (c, t) = self.cond(me, r, expr, raw, by_name, outputs, params, is_when)?;
                let want = if *op == ast::UnaryOp::Not {
                    Ty::Bool
                } else {
                    Ty::Num
                };
                if !(t == want || t == Ty::Any) {
                    self.err(
                        Diagnostic::new(
                            "E0112",
                            format!(
                                "`{}` needs a {}, found a {}",
                                if want == Ty::Bool { "!" } else { "-" },
                                want.name(),
                                t.name()
                            ),
                        )
                        .at(f, expr.span, format!("a {}", t.name()))
                        .help(if want == Ty::Bool {
                            "`!` negates a condition"
                        } else {
                            "`-` negates a number"
                        }),
                    );
                    return None;
                }
                (
                    Cond::Unary {
                        op: *op,
                        expr: Box::new(c),
                    },
                    want,
                )
            }
            E::Binary { op, lhs, rhs } => {
                let l = self.cond(me, r, lhs, raw, by_name, outputs, params, is_when);
                let rr = self.cond(me, r, rhs, raw, by_name, outputs, params, is_when);
                let ((lc, lt), (rc, rt)) = (l?, rr?);
                match binary_type(*op, lt, rt) {
                    Ok(t) => (
                        Cond::Binary {
                            op: *op,
                            lhs: Box::new(lc),
                            rhs: Box::new(rc),
                        },
                        t,
                    ),
                    Err(msg) => {
                        self.err(
                            Diagnostic::new("E0112", format!("type error: {msg}"))
                                .at(f, e.span, "here")
                                .also(lhs.span, format!("a {}", lt.name()))
                                .also(rhs.span, format!("a {}", rt.name()))
                                .help("compare numbers with numbers and strings with strings; join conditions with `&&` and `||`"),
                        );
                        return None;
                    }
                }
            }
            E::Call { name, args } => match name.node.as_str() {
                "failed" => {
                    let target = match args.as_slice() {
                        [
                            ast::Expr {
                                kind: E::Path(p),
                                span,
                            },
                        ] if p.segments.is_empty() => Some((p.head.clone(), *span)),
                        [
                            ast::Expr {
                                kind: E::Str(s),
                                span,
                            },
                        ] => Some((self.plain_str(f, s, &r.vars, params), *span)),
                        _ => None,
                    };
                    let Some((stage, span)) = target else {
                        self.err(
                            Diagnostic::new("E0114", "`failed` takes one stage name")
                                .at(
                                    f,
                                    e.span,
                                    match args.len() {
                                        1 => "not a stage name".to_string(),
                                        n => format!("{n} arguments"),
                                    },
                                )
                                .help("write `failed(stage)`"),
                        );
                        return None;
                    };
                    let names: Vec<String> = raw.iter().map(|x| x.name.clone()).collect();
                    let j = self.stage_ref(f, &stage, span, by_name, &names)?;
                    if j == me {
                        self.err(
                            Diagnostic::new("E0131", format!("stage `{}` cannot handle its own failure", r.name))
                                .at(f, span, "the stage itself")
                                .help("write the handler as another stage: `stage rollback { when failed(X) ... }`"),
                        );
                        return None;
                    }
                    (Cond::Failed(j), Ty::Bool)
                }
                "abs" | "min" | "max" => {
                    let func = match name.node.as_str() {
                        "abs" => Func::Abs,
                        "min" => Func::Min,
                        _ => Func::Max,
                    };
                    let ok_count = if func == Func::Abs {
                        args.len() == 1
                    } else {
                        !args.is_empty()
                    };
                    if !ok_count {
                        self.err(
                            Diagnostic::new(
                                "E0114",
                                format!(
                                    "`{}` takes {}",
                                    name.node,
                                    if func == Func::Abs {
                                        "one number"
                                    } else {
                                        "one or more numbers"
                                    }
                                ),
                            )
                            .at(f, e.span, format!("{} arguments", args.len()))
                            .help(format!("write `{}(x)`", name.node)),
                        );
                        return None;
                    }
                    let mut cs = Vec::new();
                    for a in args {
                        let (c, t) = self.cond(me, r, a, raw, by_name, outputs, params, is_when)?;
                        if !(t == Ty::Num || t == Ty::Any) {
                            self.err(
                                Diagnostic::new(
                                    "E0112",
                                    format!("`{}` takes numbers, found a {}", name.node, t.name()),
                                )
                                .at(f, a.span, format!("a {}", t.name()))
                                .help("pass a metric, a param or a number"),
                            );
                            return None;
                        }
                        cs.push(c);
                    }
                    (Cond::Call { func, args: cs }, Ty::Num)
                }
                other => {
                    let help = did_you_mean(other, ["failed", "abs", "min", "max"]).unwrap_or_else(|| "the functions are `failed(stage)`, `abs(x)`, `min(a, b, ...)` and `max(a, b, ...)`".into());
                    self.err(
                        Diagnostic::new("E0113", format!("unknown function `{other}`"))
                            .at(f, name.span, "no such function")
                            .help(help),
                    );
                    return None;
                }
            },
            E::Path(p) => {
                self.cond_path(me, r, p, e.span, raw, by_name, outputs, params, is_when)?
            }
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn cond_path(
        &mut self,
        me: usize,
        r: &RawStage<'_>,
        p: &ast::Path,
        span: Span,
        raw: &[RawStage<'_>],
        by_name: &HashMap<String, usize>,
        outputs: &[Vec<Output>],
        params: &BTreeMap<String, Value>,
        is_when: bool,
    ) -> Option<(Cond, Ty)> {
        let f = r.file;
        if let Some((_, v)) = r.vars.iter().rev().find(|(n, _)| *n == p.head) {
            let v = index_value(v, &p.segments)?.clone();
            let t = Ty::of(&v);
            return Some((Cond::Const(v), t));
        }
        if p.head == "params" {
            let key = key_of(&p.segments);
            return match Value::lookup(params, &key) {
                Some(v) => Some((
                    Cond::Param {
                        key,
                        value: v.clone(),
                    },
                    Ty::of(v),
                )),
                None => {
                    self.unknown_param(f, span, &key, params);
                    None
                }
            };
        }
        let baseline = p.head == "baseline";
        let (head, rest): (&str, &[ast::Segment]) = if baseline {
            match p.segments.split_first() {
                Some((ast::Segment::Field(h), rest)) => (h.as_str(), rest),
                _ => {
                    self.err(
                        Diagnostic::new("E0115", "`baseline` needs a metric")
                            .at(f, span, "which metric?")
                            .help("write `baseline.METRICS.FIELD`, e.g. `baseline.eval.auc`"),
                    );
                    return None;
                }
            }
        } else {
            (p.head.as_str(), &p.segments)
        };
        let own = |name: &str| {
            outputs[me]
                .iter()
                .any(|o| o.metrics && o.name.as_deref() == Some(name))
        };
        let (stage, name, field) = if own(head) {
            if is_when && !baseline {
                self.err(
                    Diagnostic::new("E0115", format!("`when` cannot read the stage's own metrics `{head}`"))
                        .at(f, span, "not there yet when `when` is decided")
                        .help("`when` is decided before the stage runs: read an upstream stage's metrics (`STAGE.METRICS.FIELD`)"),
                );
                return None;
            }
            (me, head.to_string(), rest.to_vec())
        } else if let Some(&j) = by_name.get(head) {
            match rest.split_first() {
                Some((ast::Segment::Field(m), more))
                    if outputs[j]
                        .iter()
                        .any(|o| o.metrics && o.name.as_deref() == Some(m.as_str())) =>
                {
                    (j, m.clone(), more.to_vec())
                }
                other => {
                    let names: Vec<&str> = outputs[j]
                        .iter()
                        .filter(|o| o.metrics)
                        .filter_map(|o| o.name.as_deref())
                        .collect();
                    let asked = match other {
                        Some((ast::Segment::Field(m), _)) => m.clone(),
                        _ => String::new(),
                    };
                    let help = did_you_mean(&asked, names.iter().copied()).unwrap_or_else(|| {
                        if names.is_empty() {
                            format!("`{head}` declares no named metrics: add `metrics NAME = \"file.json\"` to it")
                        } else {
                            format!("`{head}` has metrics {}", backticked(&names))
                        }
                    });
                    self.err(
                        Diagnostic::new(
                            "E0115",
                            format!("stage `{head}` has no metrics `{asked}`"),
                        )
                        .at(f, span, "no such metrics")
                        .help(help),
                    );
                    return None;
                }
            }
        } else {
            let mut cands: Vec<String> = outputs[me]
                .iter()
                .filter(|o| o.metrics)
                .filter_map(|o| o.name.clone())
                .collect();
            cands.extend(raw.iter().map(|x| x.name.clone()));
            cands.extend(["params".to_string(), "baseline".to_string()]);
            cands.extend(r.vars.iter().map(|(n, _)| n.clone()));
            let help = did_you_mean(head, cands.iter().map(String::as_str)).unwrap_or_else(|| {
                "name the stage's own metrics (`NAME.FIELD`), another stage's (`STAGE.NAME.FIELD`), `baseline.NAME.FIELD` or `params.KEY`".into()
            });
            self.err(
                Diagnostic::new("E0115", format!("unknown name `{head}`"))
                    .at(f, span, "not a metrics, stage or param")
                    .help(help),
            );
            return None;
        };
        if field.is_empty() {
            self.err(
                Diagnostic::new(
                    "E0115",
                    format!("`{name}` is a whole metrics file: name a field"),
                )
                .at(f, span, "which field?")
                .help(format!("write `{}.FIELD`, e.g. `{}.accuracy`", p, p)),
            );
            return None;
        }
        let c = if baseline {
            Cond::Baseline { stage, name, field }
        } else {
            Cond::Metric { stage, name, field }
        };
        Some((c, Ty::Any))
    }

    /// Cycles (every stage of each cycle labelled) and a topological order.
    fn order(&mut self, stages: &[Stage], raw: &[RawStage<'_>]) -> Option<Vec<StageId>> {
        let g = crate::graph::build(stages);
        let mut cyclic = false;
        for scc in petgraph::algo::tarjan_scc(&g) {
            let self_loop = scc.len() == 1 && g.contains_edge(scc[0], scc[0]);
            if scc.len() < 2 && !self_loop {
                continue;
            }
            cyclic = true;
            let mut ids: Vec<usize> = scc.iter().map(|n| g[*n]).collect();
            ids.sort_unstable();
            let names: Vec<String> = ids
                .iter()
                .map(|&i| format!("`{}`", stages[i].name))
                .collect();
            let first = &raw[ids[0]];
            // Each stage of the cycle, with the stages of the cycle it needs.
            let needs = |i: usize| {
                let up: Vec<String> = stages[i]
                    .deps
                    .iter()
                    .filter(|dd| ids.contains(&dd.stage))
                    .map(|dd| format!("`{}`", stages[dd.stage].name))
                    .collect();
                if up.is_empty() {
                    "in the cycle".to_string()
                } else {
                    format!("needs {}", up.join(", "))
                }
            };
            let mut d = Diagnostic::new(
                "E0108",
                format!("dependency cycle between {}", names.join(", ")),
            )
            .at(first.file, first.name_span, needs(ids[0]));
            for &i in &ids[1..] {
                if raw[i].file == first.file {
                    d = d.also(raw[i].name_span, needs(i));
                }
            }
            self.err(d.help("a stage cannot depend, directly or not, on its own outputs: break one of the edges"));
        }
        if cyclic {
            return None;
        }
        // Kahn's algorithm, taking ready stages in source order: a stable, readable order.
        let mut indeg: Vec<usize> = stages.iter().map(|s| s.deps.len()).collect();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); stages.len()];
        for (i, s) in stages.iter().enumerate() {
            for d in &s.deps {
                dependents[d.stage].push(i);
            }
        }
        let mut ready: std::collections::BinaryHeap<std::cmp::Reverse<usize>> = (0..stages.len())
            .filter(|&i| indeg[i] == 0)
            .map(std::cmp::Reverse)
            .collect();
        let mut order = Vec::with_capacity(stages.len());
        while let Some(std::cmp::Reverse(i)) = ready.pop() {
            order.push(i);
            for &j in &dependents[i] {
                indeg[j] -= 1;
                if indeg[j] == 0 {
                    ready.push(std::cmp::Reverse(j));
                }
            }
        }
        Some(order)
    }
}

fn label_for(e: &mlp_syntax::SyntaxError) -> String {
    if let Some(l) = &e.label {
        return l.clone();
    }
    match e.code {
        "E0004" => "this string is never closed".into(),
        "E0003" => "unknown escape".into(),
        "E0002" => "out of range".into(),
        _ => "unexpected here".into(),
    }
}

/// Where the string literal whose closing `"` is at byte `quote` starts (strings, escapes
/// and comments are followed from the start of the file).
fn string_closed_at(text: &str, quote: usize) -> Option<usize> {
    let b = text.as_bytes();
    let mut open: Option<usize> = None;
    let mut i = 0;
    while i <= quote && i < b.len() {
        match (open, b[i]) {
            (Some(_), b'\\') => i += 1,
            (Some(s), b'"') => {
                if i == quote {
                    return Some(s);
                }
                open = None;
            }
            (Some(_), _) => {}
            (None, b'"') => open = Some(i),
            (None, b'#') => {
                i = text[i..].find('\n').map_or(b.len(), |n| i + n);
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

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

fn number_value(n: f64, text: &str) -> Value {
    if !text.contains(['.', 'e', 'E'])
        && let Ok(i) = text.parse::<i64>()
    {
        return Value::Int(i);
    }
    Value::Float(n)
}

fn key_of(segs: &[ast::Segment]) -> String {
    segs.iter()
        .map(|s| match s {
            ast::Segment::Field(f) => f.clone(),
            ast::Segment::Index(i) => i.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

fn index_value<'a>(v: &'a Value, segs: &[ast::Segment]) -> Option<&'a Value> {
    let mut cur = v;
    for s in segs {
        cur = match (cur, s) {
            (Value::List(l), ast::Segment::Index(i)) => l.get(*i)?,
            (Value::Map(m), ast::Segment::Field(f)) => m.get(f)?,
            _ => return None,
        };
    }
    Some(cur)
}

/// `Value::lookup(map, &key_of(segs))`, without building the key.
fn lookup_segs<'a>(map: &'a BTreeMap<String, Value>, segs: &[ast::Segment]) -> Option<&'a Value> {
    use ast::Segment as S;
    let Some((first, rest)) = segs.split_first() else {
        return map.get("");
    };
    let mut cur = match first {
        S::Field(f) => map.get(f.as_str())?,
        S::Index(i) => map.get(&i.to_string())?,
    };
    for s in rest {
        cur = match (cur, s) {
            (Value::Map(m), S::Field(f)) => m.get(f.as_str())?,
            (Value::Map(m), S::Index(i)) => m.get(&i.to_string())?,
            (Value::List(l), S::Index(i)) => l.get(*i)?,
            (Value::List(l), S::Field(f)) => l.get(f.parse::<usize>().ok()?)?,
            _ => return None,
        };
    }
    Some(cur)
}

fn valid_name(n: &str) -> bool {
    let mut chars = n.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// `` `a`, `b`, `c` `` for a help line.
fn backticked<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|n| format!("`{}`", n.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A path that `${in}`, `${out}` or `${metrics}` may name.
struct Word<'a> {
    path: &'a str,
    /// A glob input, left unquoted when it is made of safe characters.
    glob: bool,
    name: Option<&'a str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_lookup_is_key_lookup() {
        use ast::Segment::{Field, Index};
        let params = crate::params::parse(
            "p.json",
            r#"{"a": {"b": [10, {"c": 1}], "0": "zero"}, "l": [[1, 2]], "": 5}"#,
            0,
        )
        .unwrap();
        let cases: Vec<Vec<ast::Segment>> = vec![
            vec![],
            vec![Field("a".into())],
            vec![
                Field("a".into()),
                Field("b".into()),
                Index(1),
                Field("c".into()),
            ],
            vec![Field("a".into()), Index(0)],
            vec![Field("l".into()), Index(0), Index(1)],
            vec![Field("l".into()), Field("x".into())],
            vec![Field("nope".into())],
            vec![Index(3)],
        ];
        for segs in cases {
            assert_eq!(
                lookup_segs(&params, &segs),
                Value::lookup(&params, &key_of(&segs)),
                "{segs:?}"
            );
        }
    }
}
