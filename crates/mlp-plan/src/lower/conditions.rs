//! Conditions: `check`, `gate` and `when` expressions resolved (every name bound to a
//! param, a loop value, a stage's metrics, the baseline's or a stage's failure) and
//! type-checked.

use mlp_syntax::ast::{self, Span};

use super::interp::{index_value, key_of, number_value};
use super::names::backticked;
use super::{Building, Lowerer, RawStage};
use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};
use crate::expr::{Cond, Func, Ty, binary_type};
use crate::value::Value;

/// Where a condition is: the stage it belongs to, and whether it is the stage's `when`.
#[derive(Clone, Copy)]
struct Site<'s> {
    me: usize,
    r: &'s RawStage,
    is_when: bool,
}

impl Lowerer {
    /// Resolve and type-check a `check`, `gate` or `when` expression.
    pub(super) fn condition(&self, b: &Building<'_>, e: &ast::Expr, is_when: bool) -> Option<Cond> {
        let site = Site {
            me: b.me,
            r: b.r,
            is_when,
        };
        let n_before = self.n_errors();
        let (c, ty) = self.cond(site, e)?;
        if self.n_errors() > n_before {
            return None;
        }
        if !(ty == Ty::Bool || ty == Ty::Any) {
            self.err(
                Diagnostic::new(
                    Code::TypeError,
                    format!(
                        "a condition must be true or false, but this is {}",
                        crate::expr::article(ty.name())
                    ),
                )
                .at(b.r.file, e.span, crate::expr::article(ty.name()))
                .help("compare it: `x > 0.5`, `x == \"ok\"`"),
            );
            return None;
        }
        Some(c)
    }

    fn cond(&self, site: Site<'_>, e: &ast::Expr) -> Option<(Cond, Ty)> {
        let r = site.r;
        let f = r.file;
        use ast::ExprKind as E;
        Some(match &e.kind {
            E::Number(n, t) => (Cond::Const(number_value(*n, t)), Ty::Num),
            E::Bool(b) => (Cond::Const(Value::Bool(*b)), Ty::Bool),
            E::Duration(d) => (Cond::Const(Value::Float(d.millis as f64 / 1000.0)), Ty::Num),
            E::Str(s) => (
                Cond::Const(Value::Str(self.plain_str(f, s, self.scope(&r.vars)))),
                Ty::Str,
            ),
            E::Paren(inner) => self.cond(site, inner)?,
            E::Unary { op, expr } => {
                let (c, t) = self.cond(site, expr)?;
                let want = if *op == ast::UnaryOp::Not {
                    Ty::Bool
                } else {
                    Ty::Num
                };
                if !(t == want || t == Ty::Any) {
                    self.err(
                        Diagnostic::new(
                            Code::TypeError,
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
                let l = self.cond(site, lhs);
                let rr = self.cond(site, rhs);
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
                            Diagnostic::new(Code::TypeError, format!("type error: {msg}"))
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
                "failed" => self.failed_call(site, e, args)?,
                "abs" | "min" | "max" => self.numeric_call(site, e, name, args)?,
                other => {
                    let help = did_you_mean(other, ["failed", "abs", "min", "max"]).unwrap_or_else(|| "the functions are `failed(stage)`, `abs(x)`, `min(a, b, ...)` and `max(a, b, ...)`".into());
                    self.err(
                        Diagnostic::new(
                            Code::UnknownFunction,
                            format!("unknown function `{other}`"),
                        )
                        .at(f, name.span, "no such function")
                        .help(help),
                    );
                    return None;
                }
            },
            E::Path(p) => self.cond_path(site, p, e.span)?,
        })
    }

    /// `failed(stage)`.
    fn failed_call(&self, site: Site<'_>, e: &ast::Expr, args: &[ast::Expr]) -> Option<(Cond, Ty)> {
        use ast::ExprKind as E;
        let Site { me, r, .. } = site;
        let f = r.file;
        let target = match args {
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
            ] => Some((self.plain_str(f, s, self.scope(&r.vars)), *span)),
            _ => None,
        };
        let Some((stage, span)) = target else {
            self.err(
                Diagnostic::new(Code::WrongArguments, "`failed` takes one stage name")
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
        let j = self.stage_ref(f, &stage, span)?;
        if j == me {
            self.err(
                Diagnostic::new(
                    Code::WaitsForItself,
                    format!("stage `{}` cannot handle its own failure", r.name),
                )
                .at(f, span, "the stage itself")
                .help(
                    "write the handler as another stage: `stage rollback { when failed(X) ... }`",
                ),
            );
            return None;
        }
        Some((Cond::Failed(j), Ty::Bool))
    }

    /// `abs(x)`, `min(a, b, ...)`, `max(a, b, ...)`.
    fn numeric_call(
        &self,
        site: Site<'_>,
        e: &ast::Expr,
        name: &ast::Spanned<String>,
        args: &[ast::Expr],
    ) -> Option<(Cond, Ty)> {
        let f = site.r.file;
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
                    Code::WrongArguments,
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
            let (c, t) = self.cond(site, a)?;
            if !(t == Ty::Num || t == Ty::Any) {
                self.err(
                    Diagnostic::new(
                        Code::TypeError,
                        format!("`{}` takes numbers, found a {}", name.node, t.name()),
                    )
                    .at(f, a.span, format!("a {}", t.name()))
                    .help("pass a metric, a param or a number"),
                );
                return None;
            }
            cs.push(c);
        }
        Some((Cond::Call { func, args: cs }, Ty::Num))
    }

    fn cond_path(&self, site: Site<'_>, p: &ast::Path, span: Span) -> Option<(Cond, Ty)> {
        let Site { me, r, is_when } = site;
        let f = r.file;
        if let Some((_, v)) = r.vars.iter().rev().find(|(n, _)| *n == p.head) {
            let v = index_value(v, &p.segments)?.clone();
            let t = Ty::of(&v);
            return Some((Cond::Const(v), t));
        }
        if p.head == "params" {
            let key = key_of(&p.segments);
            return match Value::lookup(&self.params, &key) {
                Some(v) => Some((
                    Cond::Param {
                        key,
                        value: v.clone(),
                    },
                    Ty::of(v),
                )),
                None => {
                    self.unknown_param(f, span, &key, &self.params);
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
                        Diagnostic::new(Code::UnknownExprName, "`baseline` needs a metric")
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
            self.outputs[me]
                .iter()
                .any(|o| o.metrics && o.name.as_deref() == Some(name))
        };
        let (stage, name, field) = if own(head) {
            if is_when && !baseline {
                self.err(
                    Diagnostic::new(Code::UnknownExprName, format!("`when` cannot read the stage's own metrics `{head}`"))
                        .at(f, span, "not there yet when `when` is decided")
                        .help("`when` is decided before the stage runs: read an upstream stage's metrics (`STAGE.METRICS.FIELD`)"),
                );
                return None;
            }
            (me, head.to_string(), rest.to_vec())
        } else if let Some(&j) = self.by_name.get(head) {
            match rest.split_first() {
                Some((ast::Segment::Field(m), more))
                    if self.outputs[j]
                        .iter()
                        .any(|o| o.metrics && o.name.as_deref() == Some(m.as_str())) =>
                {
                    (j, m.clone(), more.to_vec())
                }
                other => {
                    let asked = match other {
                        Some((ast::Segment::Field(m), _)) => m.clone(),
                        _ => String::new(),
                    };
                    self.no_such_metrics(f, span, j, &asked);
                    return None;
                }
            }
        } else {
            self.unknown_expr_name(site, head, span);
            return None;
        };
        if field.is_empty() {
            self.err(
                Diagnostic::new(
                    Code::UnknownExprName,
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

    /// Stage `j` has no metrics named `asked`.
    fn no_such_metrics(&self, f: usize, span: Span, j: usize, asked: &str) {
        let head = &self.stage_names[j];
        let names: Vec<&str> = self.outputs[j]
            .iter()
            .filter(|o| o.metrics)
            .filter_map(|o| o.name.as_deref())
            .collect();
        let help = did_you_mean(asked, names.iter().copied()).unwrap_or_else(|| {
            if names.is_empty() {
                format!(
                    "`{head}` declares no named metrics: add `metrics NAME = \"file.json\"` to it"
                )
            } else {
                format!("`{head}` has metrics {}", backticked(&names))
            }
        });
        self.err(
            Diagnostic::new(
                Code::UnknownExprName,
                format!("stage `{head}` has no metrics `{asked}`"),
            )
            .at(f, span, "no such metrics")
            .help(help),
        );
    }

    /// `head` is none of the names an expression may use.
    fn unknown_expr_name(&self, site: Site<'_>, head: &str, span: Span) {
        let Site { me, r, .. } = site;
        let mut cands: Vec<String> = self.outputs[me]
            .iter()
            .filter(|o| o.metrics)
            .filter_map(|o| o.name.clone())
            .collect();
        cands.extend(self.stage_names.iter().cloned());
        cands.extend(["params".to_string(), "baseline".to_string()]);
        cands.extend(r.vars.iter().map(|(n, _)| n.clone()));
        let help = did_you_mean(head, cands.iter().map(String::as_str)).unwrap_or_else(|| {
            "name the stage's own metrics (`NAME.FIELD`), another stage's (`STAGE.NAME.FIELD`), `baseline.NAME.FIELD` or `params.KEY`".into()
        });
        self.err(
            Diagnostic::new(Code::UnknownExprName, format!("unknown name `{head}`"))
                .at(r.file, span, "not a metrics, stage or param")
                .help(help),
        );
    }
}
