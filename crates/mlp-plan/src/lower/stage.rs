//! Pass 6, each stage: its inputs (paths, globs, references to other stages), then its
//! other items, then its dependency edges, one per upstream stage.

use std::collections::BTreeMap;

use mlp_syntax::ast::{self, Span};

use super::{Building, Lowerer, RawStage};
use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};
use crate::model::{
    Assertion, AssertionKind, Dep, DepKind, Input, InputKind, Origin, Output, Resources, Stage,
};
use crate::paths::{is_under, normalize};

impl Lowerer {
    /// Lower stage `me` (its outputs are moved in once every stage is built).
    pub(super) fn stage(&self, me: usize, r: &RawStage) -> Stage {
        // Built in place: a `Stage` is large, and there are many.
        let mut b = Building {
            me,
            r,
            deps: Vec::new(),
            stage: Stage {
                name: r.name.clone(),
                origin: Origin {
                    file: r.file,
                    span: r.name_span,
                },
                inputs: Vec::new(),
                outputs: Vec::new(),
                params: Vec::new(),
                command: String::new(),
                env: self.env.clone(),
                checks: Vec::new(),
                when: None,
                when_text: None,
                every_ms: None,
                timeout_ms: None,
                retry: 0,
                fallback: None,
                resources: Resources::default(),
                // Set last, by `stage_executor`; the pipeline's until then (its settings
                // are shared, so this allocates nothing).
                executor: self.executor.clone(),
                always: false,
                frozen: false,
                promote: false,
                cache: self.cache,
                deps: Vec::new(),
            },
        };
        // Inputs first: `run` may name them. Sized for one path per input (a reference
        // to a stage with several outputs grows it): there is one of these per stage.
        let n_inputs = r
            .ast
            .items
            .iter()
            .map(|item| match &item.kind {
                ast::StageItemKind::In(list) => list.len(),
                _ => 0,
            })
            .sum();
        b.stage.inputs.reserve_exact(n_inputs);
        for item in &r.ast.items {
            if let ast::StageItemKind::In(list) = &item.kind {
                for input in list {
                    match input {
                        ast::Input::Path(st) => self.path_input(&mut b, st),
                        ast::Input::Ref {
                            stage,
                            output,
                            span,
                        } => self.ref_input(&mut b, stage, output.as_ref(), *span),
                    }
                }
            }
        }
        let mut seen: Vec<(&'static str, Span)> = Vec::new();
        for item in &r.ast.items {
            self.stage_item(&mut b, item, &mut seen);
        }
        if b.stage.always && b.stage.frozen {
            let sp = r
                .ast
                .items
                .iter()
                .find(|i| matches!(i.kind, ast::StageItemKind::Frozen))
                .map_or(r.name_span, |i| i.span);
            self.err(
                Diagnostic::new(
                    Code::AlwaysAndFrozen,
                    format!("stage `{}` is both `always` and `frozen`", r.name),
                )
                .at(r.file, sp, "frozen here")
                .help("`always` reruns it every time, `frozen` never: keep one"),
            );
        }
        finish_deps(&mut b);
        b.stage.executor = self.stage_executor(r);
        b.stage
    }

    /// `in "path"`, `in "dir"` or `in "glob/*.csv"`: an input, and the stages whose outputs
    /// it reads.
    fn path_input(&self, b: &mut Building<'_>, st: &ast::Str) {
        let (me, r) = (b.me, b.r);
        let f = r.file;
        let text = self.plain_str(f, st, self.scope(&r.vars));
        let path = normalize(&text);
        if path.is_empty() {
            self.err(
                Diagnostic::new(Code::EmptyInput, "empty input path")
                    .at(f, st.span, "empty")
                    .help("name a file, a directory or a glob"),
            );
            return;
        }
        let kind = if path.contains(['*', '?', '[']) {
            InputKind::Glob
        } else {
            InputKind::Path
        };
        let producer = self.out_index.producer_of(&path, kind);
        if producer == Some(me) {
            let outputs = &self.outputs[me];
            let written = outputs
                .iter()
                .position(|o| is_under(&path, &o.path) || is_under(&o.path, &path))
                .unwrap_or(0);
            self.err(
                Diagnostic::new(
                    Code::ReadsOwnOutput,
                    format!("stage `{}` reads its own output `{path}`", r.name),
                )
                .at(f, st.span, "read here")
                .also(self.out_spans[me][written], "and written here")
                .help("a stage cannot depend on what it writes: read another file, or split the stage"),
            );
            return;
        }
        if let Some(p) = producer {
            b.deps.push(Dep {
                stage: p,
                kind: DepKind::Data,
            });
        }
        // Every other stage whose output a glob or directory input covers.
        let covered = self.out_index.covered(&path, kind);
        if producer.is_none() && kind == InputKind::Path && covered.is_empty() {
            // No stage writes it: `inputs` looks for it on disk.
            self.unproduced
                .borrow_mut()
                .push((f, st.span, path.clone()));
        }
        for j in covered {
            if j != me && Some(j) != producer {
                b.deps.push(Dep {
                    stage: j,
                    kind: DepKind::Data,
                });
            }
        }
        b.stage.inputs.push(Input {
            path,
            kind,
            producer,
        });
    }

    /// `in stage` or `in stage.output`: the outputs of another stage.
    fn ref_input(
        &self,
        b: &mut Building<'_>,
        stage: &ast::Spanned<String>,
        output: Option<&ast::Spanned<String>>,
        span: Span,
    ) {
        let (me, r) = (b.me, b.r);
        let f = r.file;
        let Some(j) = self.stage_ref(f, &stage.node, stage.span) else {
            return;
        };
        if j == me {
            self.err(
                Diagnostic::new(
                    Code::ReadsOwnOutput,
                    format!("stage `{}` reads its own output", r.name),
                )
                .at(f, span, "refers to the stage itself")
                .help("a stage cannot depend on what it writes"),
            );
            return;
        }
        let outputs = &self.outputs[j];
        let outs: Vec<&Output> = match output {
            Some(o) => match outputs
                .iter()
                .find(|x| x.name.as_deref() == Some(o.node.as_str()))
            {
                Some(x) => vec![x],
                None => {
                    self.unknown_output(f, o, j);
                    return;
                }
            },
            None => {
                if outputs.is_empty() {
                    let name = &self.stage_names[j];
                    self.err(
                        Diagnostic::new(
                            Code::UnknownOutput,
                            format!("stage `{name}` has no outputs to read"),
                        )
                        .at(f, span, "nothing to read")
                        .help(format!(
                            "to wait for `{name}` without reading anything, write `after {name}`"
                        )),
                    );
                    return;
                }
                outputs.iter().collect()
            }
        };
        for o in outs {
            b.stage.inputs.push(Input {
                path: o.path.clone(),
                kind: InputKind::Path,
                producer: Some(j),
            });
        }
        b.deps.push(Dep {
            stage: j,
            kind: DepKind::Data,
        });
    }

    /// Every item but `in`, `out` and `metrics` (read before) and `executor` (read after);
    /// `seen` holds the items a stage may have once.
    fn stage_item(
        &self,
        b: &mut Building<'_>,
        item: &ast::StageItem,
        seen: &mut Vec<(&'static str, Span)>,
    ) {
        use ast::StageItemKind as K;
        let r = b.r;
        let f = r.file;
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
                | K::Cache(_)
        );
        if single && let Some(&(_, prev)) = seen.iter().find(|(k, _)| *k == kw) {
            self.err(
                Diagnostic::new(
                    Code::DuplicateItem,
                    format!("stage `{}` has two `{kw}` items", r.name),
                )
                .at(f, item.span, "again here")
                .also(prev, "first here")
                .help(format!("a stage has at most one `{kw}`")),
            );
            return;
        }
        if single {
            seen.push((kw, item.span));
        }
        match &item.kind {
            K::In(_) | K::Out(_) | K::Metrics(_) | K::Executor(_) => {}
            K::After(list) => self.after(b, list),
            K::Params(keys) => {
                for k in keys {
                    let key = k.node.strip_prefix("params.").unwrap_or(&k.node);
                    match crate::value::Value::lookup(&self.params, key) {
                        Some(v) => b.stage.params.push((key.to_string(), v.clone())),
                        None => self.unknown_param(f, k.span, key, &self.params),
                    }
                }
            }
            K::Run(st) => b.stage.command = self.command(b, st),
            K::Fallback(st) => b.stage.fallback = Some(self.command(b, st)),
            K::Check { expr, message } | K::Gate { expr, message } => {
                let kind = if matches!(item.kind, K::Check { .. }) {
                    AssertionKind::Check
                } else {
                    AssertionKind::Gate
                };
                self.assertion(b, kind, expr, message.as_ref());
            }
            K::When(expr) => {
                b.stage.when = self.condition(b, expr, true);
                b.stage.when_text =
                    Some(self.sources.files[f].text[expr.span.start..expr.span.end].to_string());
            }
            K::Every(d) | K::Timeout(d) => {
                if d.node.millis == 0 {
                    self.err(
                        Diagnostic::new(
                            Code::ZeroDuration,
                            format!("`{kw}` needs a duration above zero"),
                        )
                        .at(f, d.span, "zero")
                        .help("write a duration such as `30s`, `10m` or `24h`"),
                    );
                } else if kw == "every" {
                    b.stage.every_ms = Some(d.node.millis);
                } else {
                    b.stage.timeout_ms = Some(d.node.millis);
                }
            }
            K::Retry(n) => b.stage.retry = n.node,
            K::Cache(m) => self.stage_cache(b, m),
            K::Resources(list) => self.resources(b, list),
            K::Always => b.stage.always = true,
            K::Frozen => b.stage.frozen = true,
            K::Promote => b.stage.promote = true,
            K::Env(pairs) => {
                for p in pairs {
                    let v = self.value(f, &p.value, self.scope(&r.vars));
                    b.stage.env.insert(p.name.node.clone(), v.to_string());
                }
            }
            K::Unknown(w) => self.unknown_stage_keyword(b.r, w),
        }
    }

    /// `after a, b`: wait for other stages without reading their outputs.
    fn after(&self, b: &mut Building<'_>, list: &[ast::StageName]) {
        let r = b.r;
        for n in list {
            let (name, span) = match n {
                ast::StageName::Ident(i) => (i.node.clone(), i.span),
                ast::StageName::Str(st) => {
                    (self.plain_str(r.file, st, self.scope(&r.vars)), st.span)
                }
            };
            if let Some(j) = self.stage_ref(r.file, &name, span) {
                if j == b.me {
                    self.err(
                        Diagnostic::new(
                            Code::WaitsForItself,
                            format!("stage `{}` waits for itself", r.name),
                        )
                        .at(r.file, span, "this is the stage itself")
                        .help("remove it from `after`"),
                    );
                } else {
                    b.deps.push(Dep {
                        stage: j,
                        kind: DepKind::After,
                    });
                }
            }
        }
    }

    /// A `check` or a `gate`.
    fn assertion(
        &self,
        b: &mut Building<'_>,
        kind: AssertionKind,
        expr: &ast::Expr,
        message: Option<&ast::Str>,
    ) {
        let Some(cond) = self.condition(b, expr, false) else {
            return;
        };
        let f = b.r.file;
        let text = self.sources.files[f].text[expr.span.start..expr.span.end].to_string();
        let message = message.map(|m| self.plain_str(f, m, self.scope(&b.r.vars)));
        b.stage.checks.push(Assertion {
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

    /// `resources cpu = 2, mem = 4G, gpu = 1`.
    fn resources(&self, b: &mut Building<'_>, list: &[ast::Resource]) {
        let f = b.r.file;
        let res_of = &mut b.stage.resources;
        for res in list {
            match (res.name.node.as_str(), res.amount.node) {
                ("cpu", ast::Amount::Count(n)) => res_of.cpu = u32::try_from(n).unwrap_or(u32::MAX),
                ("gpu", ast::Amount::Count(n)) => res_of.gpu = u32::try_from(n).unwrap_or(u32::MAX),
                ("mem", ast::Amount::Bytes(bytes)) => res_of.mem_bytes = bytes,
                ("cpu" | "gpu", ast::Amount::Bytes(_)) => self.err(
                    Diagnostic::new(
                        Code::TypeError,
                        format!("`{}` is a count, not a size", res.name.node),
                    )
                    .at(f, res.amount.span, "a size")
                    .help(format!("write `{} = 2`", res.name.node)),
                ),
                ("mem", ast::Amount::Count(_)) => self.err(
                    Diagnostic::new(Code::TypeError, "`mem` is a size")
                        .at(f, res.amount.span, "a plain number")
                        .help("write a size with a unit: `mem = 512M` or `mem = 4G`"),
                ),
                (other, _) => {
                    let help = did_you_mean(other, ["cpu", "mem", "gpu"])
                        .unwrap_or_else(|| "the resources are `cpu`, `mem` and `gpu`".into());
                    self.err(
                        Diagnostic::new(
                            Code::UnknownResource,
                            format!("unknown resource `{other}`"),
                        )
                        .at(f, res.name.span, "not a resource")
                        .help(help),
                    );
                }
            }
        }
    }

    fn unknown_stage_keyword(&self, r: &RawStage, w: &ast::Spanned<String>) {
        if self.string_ran_on(r.file, w) {
            return;
        }
        let help = match did_you_mean(
            &w.node,
            ast::STAGE_KEYWORDS
                .iter()
                .chain(ast::SOFT_KEYWORDS)
                .copied(),
        ) {
            Some(m) => m,
            None if matches!(w.node.as_str(), "cpu" | "mem" | "gpu") => {
                "separate resources with commas: `resources cpu = 2, mem = 4G`".into()
            }
            None => "a stage holds `in`, `out`, `metrics`, `after`, `params`, `run`, `check`, `gate`, `when`, `every`, `timeout`, `retry`, `fallback`, `resources`, `executor`, `cache`, `env`, `always`, `frozen` and `promote`".into(),
        };
        self.err(
            Diagnostic::new(
                Code::UnknownStageKeyword,
                format!("unknown keyword `{}` in stage `{}`", w.node, r.name),
            )
            .at(r.file, w.span, "not a stage keyword")
            .help(help),
        );
    }
}

/// The stage's edges: those its conditions add (metrics read, failures handled), then one
/// per upstream stage, of the strongest kind.
fn finish_deps(b: &mut Building<'_>) {
    let (me, stage) = (b.me, &mut b.stage);
    let mut deps = std::mem::take(&mut b.deps);
    for c in stage
        .checks
        .iter()
        .map(|a| &a.cond)
        .chain(stage.when.iter())
    {
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
    stage.deps = by_stage
        .into_iter()
        .map(|(stage, kind)| Dep { stage, kind })
        .collect();
}
