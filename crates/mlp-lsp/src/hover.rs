//! Hover: a stage's command (interpolated), inputs, outputs and state; a params key's
//! value; an output's path; an expression's type.

use std::collections::BTreeMap;

use lsp_types::{Hover, HoverContents, HoverParams, MarkupContent, MarkupKind};
use mlp_engine::inspect::{self, State};
use mlp_engine::lock::Patience;
use mlp_engine::snapshot::Snapshot;
use mlp_engine::workspace::Workspace;
use mlp_plan::expr::{Ty, binary_type};
use mlp_plan::{Pipeline, Value};
use mlp_syntax::ast::{Expr, ExprKind, UnaryOp};

use crate::locate::{Index, Sym};
use crate::nav::Cursor;
use crate::world::{Root, World};

pub fn hover(w: &World, p: HoverParams) -> Option<Hover> {
    let c = Cursor::new(w, &p.text_document_position_params)?;
    let ast = c.ast.as_ref()?;
    let ix = Index::new(ast, &c.text);
    let plan = w.plan_of(&c.path);
    let (text, span) = if let Some(o) = ix.at(c.offset) {
        let text = match (&o.sym, plan) {
            (Sym::Stage(n), Some((r, plan))) => stage(r, &plan.pipeline, n)?,
            (Sym::Output { stage, name }, Some((_, plan))) => {
                let s = &plan.pipeline.stages[plan.pipeline.stage(stage)?];
                let out = s.outputs.iter().find(|o| o.name.as_deref() == Some(name))?;
                let kind = if out.metrics { "metrics" } else { "output" };
                format!("{kind} `{stage}.{name}`\n\n`{}`", out.path)
            }
            (Sym::Param(k), Some((_, plan))) => {
                let v = Value::lookup(&plan.pipeline.params, k)?;
                format!(
                    "params `{k}` ({})\n\n```json\n{}\n```",
                    v.type_name(),
                    serde_json::to_string_pretty(&v.to_json()).unwrap_or_default()
                )
            }
            (Sym::Include(f), _) => format!("include `{f}`"),
            (Sym::ParamsFile(f), _) => format!("params file `{f}`"),
            _ => return None,
        };
        (text, o.span)
    } else {
        let (e, _) = ix.expr_at(c.offset)?;
        let params = plan.map(|(_, p)| &p.pipeline.params);
        let t = ty(e, params.unwrap_or(&BTreeMap::new()));
        let src = c.text.get(e.span.start..e.span.end).unwrap_or_default();
        (format!("`{src}`: {}", t.name()), e.span)
    };
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: text,
        }),
        range: Some(c.range(span)),
    })
}

/// A stage: its command, inputs, outputs, what it waits for, and its state when the
/// workspace has run.
fn stage(r: &Root, p: &Pipeline, name: &str) -> Option<String> {
    let i = p.stage(name)?;
    let s = &p.stages[i];
    let mut t = format!("**stage `{name}`**\n\n```sh\n{}\n```\n", s.command);
    if !s.inputs.is_empty() {
        t.push_str("\n**in**\n");
        for i in &s.inputs {
            match i.producer {
                Some(j) => t.push_str(&format!("- `{}` (from `{}`)\n", i.path, p.stages[j].name)),
                None => t.push_str(&format!("- `{}`\n", i.path)),
            }
        }
    }
    if !s.outputs.is_empty() {
        t.push_str("\n**out**\n");
        for o in &s.outputs {
            match &o.name {
                Some(n) => t.push_str(&format!("- {n} = `{}`\n", o.path)),
                None => t.push_str(&format!("- `{}`\n", o.path)),
            }
        }
    }
    if !s.deps.is_empty() {
        let names: Vec<String> = s
            .deps
            .iter()
            .map(|d| format!("`{}`", p.stages[d.stage].name))
            .collect();
        t.push_str(&format!("\n**after** {}\n", names.join(", ")));
    }
    if let Some(state) = state(r, p, name) {
        t.push_str(&format!("\n---\n{state}\n"));
    }
    Some(t)
}

/// Fresh, stale and why, never run or failed, and how long it last took: read-only, from
/// the workspace's `.mlp/` (nothing when there is none).
fn state(r: &Root, p: &Pipeline, name: &str) -> Option<String> {
    let dir = r.dir();
    if !dir.join(".mlp").is_dir() {
        return None;
    }
    let ws = Workspace::new(dir);
    let file = r.path.file_name()?.to_string_lossy().into_owned();
    // An editor does not wait: while a run holds the store, the state is unknown.
    let mut out = match inspect::status(&ws, p, &file, &mut Patience::none()) {
        Ok(states) => {
            let s = states.into_iter().find(|s| s.stage == name)?;
            match &s.state {
                State::Stale { reason } | State::Failed { reason } => {
                    format!("**{}**: {reason}", s.state.label())
                }
                st => format!("**{}**", st.label()),
            }
        }
        Err(e) => format!("state unknown: {e}"),
    };
    if let Some(snap) = Snapshot::read(&ws.snapshot_path())
        && let Some(s) = snap.stage(name)
        && !s.skipped
    {
        out.push_str(&format!(" · last took {}", duration(s.duration_ms)));
    }
    Some(out)
}

fn duration(ms: u64) -> String {
    match ms {
        0..1000 => format!("{ms} ms"),
        1000..60_000 => format!("{:.1} s", ms as f64 / 1000.0),
        _ => format!("{}m {:02}s", ms / 60_000, (ms % 60_000) / 1000),
    }
}

/// The static type of an expression, as the planner sees it.
pub fn ty(e: &Expr, params: &BTreeMap<String, Value>) -> Ty {
    match &e.kind {
        ExprKind::Number(..) | ExprKind::Duration(_) => Ty::Num,
        ExprKind::Str(_) => Ty::Str,
        ExprKind::Bool(_) => Ty::Bool,
        ExprKind::Path(p) if p.head == "params" => {
            let key = p.to_string();
            let key = key.strip_prefix("params.").unwrap_or_default();
            Value::lookup(params, key).map_or(Ty::Any, Ty::of)
        }
        ExprKind::Path(_) => Ty::Any,
        ExprKind::Call { name, .. } if name.node == "failed" => Ty::Bool,
        ExprKind::Call { .. } => Ty::Num,
        ExprKind::Unary {
            op: UnaryOp::Not, ..
        } => Ty::Bool,
        ExprKind::Unary {
            op: UnaryOp::Neg, ..
        } => Ty::Num,
        ExprKind::Paren(e) => ty(e, params),
        ExprKind::Binary { op, lhs, rhs } => {
            binary_type(*op, ty(lhs, params), ty(rhs, params)).unwrap_or(Ty::Any)
        }
    }
}
