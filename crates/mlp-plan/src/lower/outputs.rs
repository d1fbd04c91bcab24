//! Pass 5, outputs: every stage's outputs and metrics files, checked (inside the
//! workspace, not a glob, one stage per path, no output inside another stage's), before
//! anything reads them; then the output index that inputs are resolved with.

use std::collections::BTreeMap;

use mlp_syntax::ast::{self, Span};

use super::names::backticked;
use super::{Lowerer, RawStage};
use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};
use crate::model::Output;
use crate::paths::{OutputIndex, is_under, normalize};

/// Every output path so far, with its stage and the span of its path.
type ByPath = BTreeMap<String, (usize, Span)>;

impl Lowerer {
    /// Fill `outputs`, `out_spans` and `out_index`.
    pub(super) fn outputs(&mut self, raw: &[RawStage]) {
        let mut outputs: Vec<Vec<Output>> = Vec::new();
        let mut out_spans: Vec<Vec<Span>> = Vec::new();
        let mut by_path: ByPath = BTreeMap::new();
        for i in 0..raw.len() {
            let (outs, spans) = self.stage_outputs(i, raw, &mut by_path);
            outputs.push(outs);
            out_spans.push(spans);
        }
        self.nested_outputs(raw, &by_path);
        self.outputs = outputs;
        self.out_spans = out_spans;
        self.out_index = OutputIndex::new(by_path);
    }

    /// The outputs of stage `i`, and the span of each path.
    fn stage_outputs(
        &self,
        i: usize,
        raw: &[RawStage],
        by_path: &mut ByPath,
    ) -> (Vec<Output>, Vec<Span>) {
        let r = &raw[i];
        // Sized exactly: there is one of these per stage.
        let n = r
            .ast
            .items
            .iter()
            .map(|item| match &item.kind {
                ast::StageItemKind::Out(l) | ast::StageItemKind::Metrics(l) => l.len(),
                _ => 0,
            })
            .sum();
        let mut outs = Vec::with_capacity(n);
        let mut spans = Vec::with_capacity(n);
        // The names so far, with where each was last given (a stage has a few outputs: a
        // list, not a map, which would allocate and hash for every stage).
        let mut names: Vec<(&str, Span)> = Vec::new();
        for item in &r.ast.items {
            let (list, metrics) = match &item.kind {
                ast::StageItemKind::Out(l) => (l, false),
                ast::StageItemKind::Metrics(l) => (l, true),
                _ => continue,
            };
            for np in list {
                let text = self.plain_str(r.file, &np.path, self.scope(&r.vars));
                let Some(path) = self.out_path(r.file, np.path.span, &text) else {
                    continue;
                };
                if let Some(n) = &np.name
                    && let Some(prev) = match names.iter_mut().find(|(k, _)| *k == n.node) {
                        Some(e) => Some(std::mem::replace(&mut e.1, n.span)),
                        None => {
                            names.push((n.node.as_str(), n.span));
                            None
                        }
                    }
                {
                    self.err(
                        Diagnostic::new(
                            Code::DuplicateOutputName,
                            format!("stage `{}` has two outputs named `{}`", r.name, n.node),
                        )
                        .at(r.file, n.span, "named again here")
                        .also(prev, "first here")
                        .help("give each output and metrics file its own name"),
                    );
                }
                if let Some(first) = by_path.get(&path).copied() {
                    if let Some(d) = self.clash(raw, (i, np.path.span), first, &path) {
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
        (outs, spans)
    }

    /// Stage `i` declares `path` at `span`, which stage `j` declared first at `sp`.
    fn clash(
        &self,
        raw: &[RawStage],
        (i, span): (usize, Span),
        (j, sp): (usize, Span),
        path: &str,
    ) -> Option<Diagnostic> {
        let r = &raw[i];
        let other = &raw[j];
        if j == i {
            Some(
                Diagnostic::new(
                    Code::DuplicateOutput,
                    format!("stage `{}` declares the output `{path}` twice", r.name),
                )
                .at(r.file, span, "declared again here")
                .also(sp, "first here")
                .help("declare each output once"),
            )
        } else if other.name == r.name && !other.bad_name {
            // The stage is defined twice, which is reported already.
            None
        } else if other.file == r.file && sp == span {
            // One stage in a `for` loop, the same path for every value.
            let var = r.vars.last().map_or("", |(n, _)| n.as_str());
            Some(
                Diagnostic::new(
                    Code::DuplicateOutput,
                    format!(
                        "`{path}` is an output of two stages, `{}` and `{}`",
                        other.name, r.name
                    ),
                )
                .at(
                    r.file,
                    span,
                    format!("the same path for every value of `{var}`"),
                )
                .help(format!("use the loop variable in the path: `${{{var}}}`")),
            )
        } else {
            let mut d = Diagnostic::new(
                Code::DuplicateOutput,
                format!(
                    "`{path}` is an output of two stages, `{}` and `{}`",
                    other.name, r.name
                ),
            )
            .at(r.file, span, format!("declared by `{}`", r.name));
            if other.file == r.file {
                d = d.also(sp, format!("declared by `{}`", other.name));
            }
            Some(d.help("every output belongs to one stage: give one of them another path"))
        }
    }

    /// An output under another stage's output directory is ambiguous.
    fn nested_outputs(&self, raw: &[RawStage], by_path: &ByPath) {
        let paths: Vec<(&String, &(usize, Span))> = by_path.iter().collect();
        for w in paths.windows(2) {
            let (a, (ia, _)) = w[0];
            let (b, (ib, sb)) = w[1];
            if ia != ib && is_under(b, a) {
                let r = &raw[*ib];
                self.err(
                    Diagnostic::new(
                        Code::NestedOutput,
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
    }

    fn out_path(&self, fid: usize, span: Span, text: &str) -> Option<String> {
        let path = normalize(text);
        if path.is_empty()
            || text.starts_with('/')
            || path == ".."
            || path.starts_with("../")
            || path == "."
            || path.starts_with(".mlp")
        {
            self.err(
                Diagnostic::new(Code::OutputOutside, format!("output `{text}` is not inside the workspace"))
                    .at(fid, span, "outputs are written inside the pipeline's directory")
                    .help("use a relative path such as `data/out.csv` (not absolute, not `..`, not `.mlp/`)"),
            );
            return None;
        }
        if path.contains(['*', '?', '[']) {
            self.err(
                Diagnostic::new(Code::OutputOutside, format!("output `{text}` is a glob"))
                    .at(fid, span, "an output is one file or directory")
                    .help("declare each output path, or one directory that holds them all"),
            );
            return None;
        }
        Some(path)
    }

    /// Stage `j` has no output named `o`.
    pub(super) fn unknown_output(&self, f: usize, o: &ast::Spanned<String>, j: usize) {
        let (stage, outs) = (&self.stage_names[j], &self.outputs[j]);
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
                Code::UnknownOutput,
                format!("stage `{stage}` has no output `{}`", o.node),
            )
            .at(f, o.span, "no such output")
            .help(help),
        );
    }
}
