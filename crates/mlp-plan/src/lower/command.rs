//! Interpolation in `run` and `fallback`: besides loop variables and params, `${in}`,
//! `${out}`, `${metrics}` (all, by index or by name) and `${STAGE.OUTPUT}` (which makes the
//! output an input of the stage). Every value is shell-quoted.

use mlp_syntax::ast;

use super::interp::Ctx;
use super::{Building, Lowerer};
use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};
use crate::model::{Dep, DepKind, Input, InputKind};
use crate::shell::{push_quoted, quote};
use crate::value::Value;

/// A path that `${in}`, `${out}` or `${metrics}` may name.
struct Word<'a> {
    path: &'a str,
    /// A glob input, left unquoted when it is made of safe characters.
    glob: bool,
    name: Option<&'a str>,
}

impl Lowerer {
    /// Interpolate a `run` or `fallback` command of the stage being built.
    pub(super) fn command(&self, b: &mut Building<'_>, st: &ast::Str) -> String {
        let r = b.r;
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
            let is_var = r.vars.iter().any(|(n, _)| n == head);
            if is_var || head == "params" {
                match self.lookup_plain(r.file, path, self.scope(&r.vars), Ctx::Command) {
                    Some(Value::Str(v)) => push_quoted(&mut out, v, false),
                    Some(v) => push_quoted(&mut out, &v.to_string(), false),
                    None => {}
                }
            } else if head == "in" || head == "out" || head == "metrics" {
                self.own_paths(b, path, &mut out);
            } else if let Some(&j) = self.by_name.get(head) {
                if let Some(w) = self.stage_output(b, path, j) {
                    out.push_str(&w);
                }
            } else {
                self.unknown_in_command(b, path);
            }
        }
        out
    }

    /// `${in}`, `${out.model}`, `${metrics[0]}`: the stage's own paths, quoted, into `out`.
    fn own_paths(&self, b: &Building<'_>, path: &ast::Spanned<ast::Path>, out: &mut String) {
        let head = path.node.head.as_str();
        let all: Vec<Word<'_>> = if head == "in" {
            b.stage
                .inputs
                .iter()
                .map(|i| Word {
                    path: &i.path,
                    glob: i.kind == InputKind::Glob,
                    name: None,
                })
                .collect()
        } else {
            self.outputs[b.me]
                .iter()
                .filter(|o| o.metrics == (head == "metrics"))
                .map(|o| Word {
                    path: &o.path,
                    glob: false,
                    name: o.name.as_deref(),
                })
                .collect()
        };
        if let Some(chosen) = self.select(b.r.file, path, &all) {
            for (k, w) in chosen.iter().enumerate() {
                if k > 0 {
                    out.push(' ');
                }
                push_quoted(out, w.path, w.glob);
            }
        }
    }

    /// `${stage.output}`: the path of stage `j`'s output, quoted; it becomes an input.
    fn stage_output(
        &self,
        b: &mut Building<'_>,
        path: &ast::Spanned<ast::Path>,
        j: usize,
    ) -> Option<String> {
        let (f, head) = (b.r.file, path.node.head.as_str());
        let [ast::Segment::Field(o)] = path.node.segments.as_slice() else {
            self.err(
                Diagnostic::new(
                    Code::UnknownName,
                    format!("`${{{}}}` names a stage, not one of its outputs", path.node),
                )
                .at(f, path.span, "which output?")
                .help(format!(
                    "write `${{{head}.OUTPUT}}` with one of the stage's output names"
                )),
            );
            return None;
        };
        match self.outputs[j]
            .iter()
            .find(|x| x.name.as_deref() == Some(o.as_str()))
        {
            Some(x) if j != b.me => {
                let inputs = &mut b.stage.inputs;
                if !inputs.iter().any(|i| i.path == x.path) {
                    inputs.push(Input {
                        path: x.path.clone(),
                        kind: InputKind::Path,
                        producer: Some(j),
                    });
                }
                b.deps.push(Dep {
                    stage: j,
                    kind: DepKind::Data,
                });
                Some(quote(&x.path))
            }
            Some(_) => {
                self.err(
                    Diagnostic::new(
                        Code::ReadsOwnOutput,
                        format!(
                            "stage `{}` names its own output as `${{{}}}`",
                            b.r.name, path.node
                        ),
                    )
                    .at(f, path.span, "its own output")
                    .help(format!("write `${{out.{o}}}` for the stage's own outputs")),
                );
                None
            }
            None => {
                self.unknown_output(f, &ast::Spanned::new(o.clone(), path.span), j);
                None
            }
        }
    }

    fn unknown_in_command(&self, b: &Building<'_>, path: &ast::Spanned<ast::Path>) {
        let head = path.node.head.as_str();
        let mut cands: Vec<&str> = b.r.vars.iter().map(|(n, _)| n.as_str()).collect();
        cands.extend(["params", "in", "out", "metrics"]);
        cands.extend(self.stage_names.iter().map(String::as_str));
        let help = did_you_mean(head, cands.iter().copied())
            .unwrap_or_else(|| "in `run` you can use `${in}`, `${in[0]}`, `${out.NAME}`, `${metrics.NAME}`, `${params.KEY}`, `${STAGE.OUTPUT}` and loop variables".into());
        self.err(
            Diagnostic::new(
                Code::UnknownName,
                format!("unknown name `{head}` in `${{{}}}`", path.node),
            )
            .at(b.r.file, path.span, "not known here")
            .help(help),
        );
    }

    /// `${in}`, `${in[1]}`, `${out.name}`: pick from the stage's inputs or outputs.
    fn select<'w>(
        &self,
        f: usize,
        path: &ast::Spanned<ast::Path>,
        all: &'w [Word<'w>],
    ) -> Option<&'w [Word<'w>]> {
        let what = path.node.head.as_str();
        let plural = match what {
            "in" => "inputs",
            "out" => "outputs",
            _ => "metrics files",
        };
        match path.node.segments.as_slice() {
            [] => Some(all),
            [ast::Segment::Index(i)] => match all.get(*i) {
                Some(_) => Some(&all[*i..*i + 1]),
                None => {
                    self.err(
                        Diagnostic::new(
                            Code::IndexOutOfRange,
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
                                Code::UnknownOutput,
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
                        Code::UnknownName,
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
}
