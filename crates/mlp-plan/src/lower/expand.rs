//! Pass 3, `for` expansion: one raw stage per stage item and loop value, its name
//! interpolated with the loop variables.

use std::rc::Rc;

use mlp_syntax::ast;

use super::{Lowerer, RawStage, StageAst, Vars};
use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};
use crate::value::Value;

impl Lowerer {
    /// Every stage of every file, loops expanded, in source order. Takes the trees: each
    /// top-level item goes to the raw stages written in it (see [`StageAst`]).
    pub(super) fn expand_all(&self, files: Vec<(usize, ast::File)>) -> Vec<RawStage> {
        let mut raw = Vec::new();
        for (fid, f) in files {
            for item in f.items {
                let item = Rc::new(item);
                self.expand(fid, &item, &item, &mut Vec::new(), &Vec::new(), &mut raw);
            }
        }
        raw
    }

    /// The raw stages of `item`, which is in the top-level item `top` at `path`.
    fn expand(
        &self,
        fid: usize,
        top: &Rc<ast::Item>,
        item: &ast::Item,
        path: &mut Vec<usize>,
        vars: &Vars,
        out: &mut Vec<RawStage>,
    ) {
        match &item.kind {
            ast::ItemKind::Stage(s) => {
                let n_before = self.n_errors();
                let (name, span) = match &s.name {
                    ast::StageName::Ident(n) => (n.node.clone(), n.span),
                    ast::StageName::Str(st) => (self.plain_str(fid, st, self.scope(vars)), st.span),
                };
                out.push(RawStage {
                    file: fid,
                    ast: StageAst {
                        item: Rc::clone(top),
                        path: path.as_slice().into(),
                    },
                    name,
                    name_span: span,
                    vars: vars.clone(),
                    bad_name: self.n_errors() > n_before,
                });
            }
            ast::ItemKind::For(l) => {
                let Some(values) = self.loop_values(fid, l, vars) else {
                    return;
                };
                for v in values {
                    let mut inner = vars.clone();
                    inner.push((l.var.node.clone(), v));
                    for (j, body_item) in l.items.iter().enumerate() {
                        path.push(j);
                        self.expand(fid, top, body_item, path, &inner, out);
                        path.pop();
                    }
                }
            }
            ast::ItemKind::Unknown(w) if !vars.is_empty() => {
                if self.string_ran_on(fid, w) {
                    return;
                }
                self.err(
                    Diagnostic::new(
                        Code::UnknownKeyword,
                        format!("unknown keyword `{}`", w.node),
                    )
                    .at(fid, w.span, "not a keyword")
                    .help(
                        did_you_mean(&w.node, ["stage", "for"])
                            .unwrap_or_else(|| "a `for` loop holds `stage` and `for` items".into()),
                    ),
                );
            }
            ast::ItemKind::Pipeline(_)
            | ast::ItemKind::Executor(_)
            | ast::ItemKind::Tracking(_)
            | ast::ItemKind::Cache(_)
            | ast::ItemKind::Remote(_)
            | ast::ItemKind::ParamsFiles(_)
            | ast::ItemKind::Param { .. }
            | ast::ItemKind::Env(_)
            | ast::ItemKind::Include(_)
            | ast::ItemKind::Unknown(_) => {}
        }
    }

    /// The values a `for` loop runs over (`None`: a mistake, reported).
    fn loop_values(&self, fid: usize, l: &ast::ForLoop, vars: &Vars) -> Option<Vec<Value>> {
        let values = match &l.over {
            ast::ForSource::List(v) => match self.value(fid, v, self.scope(vars)) {
                Value::List(items) => items,
                _ => unreachable!("the grammar only allows a list here"),
            },
            ast::ForSource::Param(k) => {
                let key = k.node.strip_prefix("params.").unwrap_or(&k.node);
                match Value::lookup(&self.params, key) {
                    Some(Value::List(items)) => items.clone(),
                    Some(other) => {
                        self.err(
                            Diagnostic::new(Code::ForNotList, format!("`for` needs a list, but `params.{key}` is a {}", other.type_name()))
                                .at(fid, k.span, "not a list")
                                .help("loop over a list: `for x in [\"a\", \"b\"]` or a params key holding a list"),
                        );
                        return None;
                    }
                    None => {
                        self.unknown_param(fid, k.span, key, &self.params);
                        return None;
                    }
                }
            }
        };
        if vars.iter().any(|(n, _)| *n == l.var.node) {
            self.err(
                Diagnostic::new(
                    Code::LoopVarInUse,
                    format!("loop variable `{}` is already in use", l.var.node),
                )
                .at(fid, l.var.span, "shadows an outer loop variable")
                .help("give the inner loop variable another name"),
            );
            return None;
        }
        Some(values)
    }
}
