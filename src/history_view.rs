//! The run history as `mlp-report` reads it: run records from the store, and from the
//! pipeline (when it loads) its checks and gates and its DAG.

use mlp_engine::history;
use mlp_engine::store::Store;
use mlp_plan::expr::{Cond, Segment};
use mlp_plan::{AssertionKind, Options, Pipeline};
use mlp_report::{Assertion, DagNode, Limit, Report, Run, Threshold};
use mlp_syntax::ast::BinOp;

use crate::cli::Cli;
use crate::exit::{self, ExitStatus};
use crate::pipeline_file;

/// What a report or `mlp runs` needs: the last `last` runs, the baseline, and the
/// pipeline's checks, gates and DAG. A pipeline that does not load (edited into an error
/// since) leaves those out: the history is still worth seeing; `warn` says so on stderr.
pub fn load(
    cli: &Cli,
    store: &dyn Store,
    last: usize,
    wanted: &[String],
    warn: bool,
) -> Result<Report, ExitStatus> {
    let (records, baseline) = history::records(store, last).map_err(exit::engine_error)?;
    let runs: Vec<Run> = records.iter().map(Run::from_record).collect();
    let pipeline = pipeline_file::find(cli)
        .ok()
        .and_then(|f| mlp_plan::load(&f, &Options::default()).ok());
    if pipeline.is_none() && warn {
        exit::warning(
            "the pipeline does not load (`mlp check` says why): the report has no gate thresholds and no DAG",
        );
    }
    let name = records
        .last()
        .and_then(|r| r["pipeline"].as_str().map(String::from))
        .or_else(|| pipeline.as_ref().map(|p| p.pipeline.name.clone()))
        .unwrap_or_default();
    let (assertions, dag) = match &pipeline {
        Some(p) => (assertions(&p.pipeline), dag(&p.pipeline)),
        None => (Vec::new(), Vec::new()),
    };
    Ok(Report {
        pipeline: name,
        runs,
        baseline: baseline.as_ref().map(Run::from_record),
        assertions,
        dag,
        wanted: wanted
            .iter()
            .map(|w| w.trim().to_string())
            .filter(|w| !w.is_empty())
            .collect(),
    })
}

/// The DAG in a topological order, each stage with the stages it needs.
pub fn dag(p: &Pipeline) -> Vec<DagNode> {
    let pos = |id: usize| p.order.iter().position(|&o| o == id);
    p.order
        .iter()
        .map(|&i| {
            let s = &p.stages[i];
            let mut deps: Vec<usize> = s.deps.iter().filter_map(|d| pos(d.stage)).collect();
            deps.sort_unstable();
            deps.dedup();
            DagNode {
                name: s.name.clone(),
                deps,
            }
        })
        .collect()
}

/// Every check and gate, with the metric it compares and its threshold when that is a
/// number or a param.
pub fn assertions(p: &Pipeline) -> Vec<Assertion> {
    let mut out = Vec::new();
    for s in &p.stages {
        for a in &s.checks {
            let mut x = Assertion {
                stage: s.name.clone(),
                kind: match a.kind {
                    AssertionKind::Check => "check",
                    AssertionKind::Gate => "gate",
                }
                .into(),
                text: a.text.clone(),
                message: a.message.clone(),
                ..Default::default()
            };
            if let Cond::Binary { op, lhs, rhs } = &a.cond {
                let (metric, other, flipped) = match (metric_key(p, lhs), metric_key(p, rhs)) {
                    (Some(m), _) => (Some(m), rhs, false),
                    (None, Some(m)) => (Some(m), lhs, true),
                    _ => (None, rhs, false),
                };
                let op = match (op, flipped) {
                    (BinOp::Ge, false) | (BinOp::Le, true) => Some(">="),
                    (BinOp::Gt, false) | (BinOp::Lt, true) => Some(">"),
                    (BinOp::Le, false) | (BinOp::Ge, true) => Some("<="),
                    (BinOp::Lt, false) | (BinOp::Gt, true) => Some("<"),
                    (BinOp::Eq, _) => Some("=="),
                    _ => None,
                };
                if let (Some(m), Some(op)) = (metric, op) {
                    x.metric = Some(m);
                    x.higher_is_better = match op {
                        ">=" | ">" => Some(true),
                        "<=" | "<" => Some(false),
                        _ => None,
                    };
                    let limit = match other.as_ref() {
                        Cond::Const(v) => v.as_f64().map(Limit::Const),
                        Cond::Param { key, .. } => Some(Limit::Param(key.clone())),
                        _ => None,
                    };
                    x.threshold = limit.map(|limit| Threshold {
                        op: op.into(),
                        limit,
                    });
                }
            } else if let Some(m) = first_metric(p, &a.cond) {
                x.metric = Some(m);
            }
            out.push(x);
        }
    }
    out
}

/// `stage.name.field` of a metric reference.
fn metric_key(p: &Pipeline, c: &Cond) -> Option<String> {
    let Cond::Metric { stage, name, field } = c else {
        return None;
    };
    let mut k = format!("{}.{name}", p.stages.get(*stage)?.name);
    for f in field {
        match f {
            Segment::Field(x) => k.push_str(&format!(".{x}")),
            Segment::Index(i) => k.push_str(&format!(".{i}")),
        }
    }
    Some(k)
}

/// The first metric an expression reads (`a.x > 0.05 && a.x < 0.6` reads `a.x`).
fn first_metric(p: &Pipeline, c: &Cond) -> Option<String> {
    match c {
        Cond::Metric { .. } => metric_key(p, c),
        Cond::Unary { expr, .. } => first_metric(p, expr),
        Cond::Binary { lhs, rhs, .. } => first_metric(p, lhs).or_else(|| first_metric(p, rhs)),
        Cond::Call { args, .. } => args.iter().find_map(|a| first_metric(p, a)),
        _ => None,
    }
}
