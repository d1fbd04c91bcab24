//! Interpolation: values and strings with `${var}` and `${params.key}`, and the lookups
//! behind them (`run` and `fallback`, which may name more, are in `command`).

use std::collections::BTreeMap;

use mlp_syntax::ast::{self, Span};

use super::{Lowerer, Scope};
use crate::codes::Code;
use crate::diag::{Diagnostic, did_you_mean};
use crate::value::Value;

/// Where an interpolation happens decides what it may name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Ctx {
    /// Stage names, paths, env values, messages: loop variables and params.
    Plain,
    /// `run` and `fallback`: also `in`, `out`, `metrics` and `stage.output`; values quoted.
    Command,
}

impl Lowerer {
    /// `key` is not a params key.
    pub(super) fn unknown_param(
        &self,
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
            Diagnostic::new(Code::UnknownParam, format!("unknown params key `{key}`"))
                .at(fid, span, "no such key")
                .help(help),
        );
    }

    /// A value, its strings interpolated.
    pub(super) fn value(&self, fid: usize, v: &ast::Value, scope: Scope<'_>) -> Value {
        match &v.kind {
            ast::ValueKind::Str(s) => Value::Str(self.plain_str(fid, s, scope)),
            ast::ValueKind::Number(n, text) => number_value(*n, text),
            ast::ValueKind::Bool(b) => Value::Bool(*b),
            ast::ValueKind::List(items) => {
                Value::List(items.iter().map(|i| self.value(fid, i, scope)).collect())
            }
        }
    }

    /// A string where only loop variables and params may be interpolated.
    pub(super) fn plain_str(&self, fid: usize, s: &ast::Str, scope: Scope<'_>) -> String {
        let mut out = String::new();
        for p in &s.parts {
            match p {
                ast::StrPart::Text(t) => out.push_str(t),
                ast::StrPart::Interp(path) => {
                    match self.lookup_plain(fid, path, scope, Ctx::Plain) {
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
    pub(super) fn lookup_plain<'v>(
        &self,
        fid: usize,
        path: &ast::Spanned<ast::Path>,
        scope: Scope<'v>,
        ctx: Ctx,
    ) -> Option<&'v Value> {
        let Scope { vars, params } = scope;
        let p = &path.node;
        if let Some((_, v)) = vars.iter().rev().find(|(n, _)| *n == p.head) {
            return index_value(v, &p.segments).or_else(|| {
                self.err(
                    Diagnostic::new(
                        Code::UnknownName,
                        format!("`{p}` does not exist in loop value `{v}`"),
                    )
                    .at(fid, path.span, "no such field")
                    .help(format!("a loop value is used as it is: `${{{}}}`", p.head)),
                );
                None
            });
        }
        if p.head == "params" {
            if p.segments.is_empty() {
                self.err(
                    Diagnostic::new(Code::UnknownName, "`${params}` needs a key")
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
                    Code::CommandOnlyName
                } else {
                    Code::UnknownName
                },
                format!("unknown name `{}` in `${{{p}}}`", p.head),
            )
            .at(fid, path.span, "not known here")
            .help(help),
        );
        None
    }
}

pub(super) fn number_value(n: f64, text: &str) -> Value {
    if !text.contains(['.', 'e', 'E'])
        && let Ok(i) = text.parse::<i64>()
    {
        return Value::Int(i);
    }
    Value::Float(n)
}

pub(super) fn key_of(segs: &[ast::Segment]) -> String {
    segs.iter()
        .map(|s| match s {
            ast::Segment::Field(f) => f.clone(),
            ast::Segment::Index(i) => i.to_string(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

pub(super) fn index_value<'a>(v: &'a Value, segs: &[ast::Segment]) -> Option<&'a Value> {
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
