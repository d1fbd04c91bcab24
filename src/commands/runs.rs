//! `mlp runs`: the run history, one line a run, with the metrics checks and gates use (or
//! those `--metrics` names), their change against the baseline, and cost totals.

use mlp_engine::history;
use mlp_engine::run::human_ms;
use mlp_report::table::{self, Columns};

use crate::cli::{Cli, RunsArgs};
use crate::exit::{self, ExitStatus};
use crate::history_view;
use crate::human::plural;
use crate::pipeline_file::{find, history_store, workspace};
use crate::tracking;
use mlp_engine::store::Store;
use mlp_plan::Options;

/// How many metric columns `mlp runs` shows when `--metrics` does not say.
const TERMINAL_METRICS: usize = 6;

pub fn runs(cli: &Cli, args: &RunsArgs) -> ExitStatus {
    let store = match history_store(cli) {
        Ok(s) => s,
        Err(status) => return status,
    };
    if args.export.is_some() {
        return export(cli, args, &*store);
    }
    let list = match history::runs(&*store, args.limit) {
        Ok(l) => l,
        Err(e) => return exit::engine_error(e),
    };
    let mut report = match history_view::load(cli, &*store, args.limit, &args.metrics, false) {
        Ok(r) => r,
        Err(status) => return status,
    };
    // A terminal has room for a few metric columns: the first ones the gates (then the
    // checks) read; `--metrics` chooses others, the JSON has them all.
    let mut more = 0;
    if report.wanted.is_empty() && !args.json {
        let keys: Vec<String> = Columns::of(&report)
            .metrics
            .into_iter()
            .map(|m| m.key)
            .collect();
        if keys.len() > TERMINAL_METRICS {
            more = keys.len() - TERMINAL_METRICS;
            report.wanted = keys.into_iter().take(TERMINAL_METRICS).collect();
        }
    }
    if args.json {
        let cols = Columns::of(&report);
        let mut out = Vec::new();
        for summary in &list {
            let mut v = serde_json::to_value(summary).unwrap_or_default();
            if let Some(run) = report.runs.iter().find(|r| r.id == summary.id) {
                let deltas: serde_json::Map<String, serde_json::Value> = run
                    .metrics
                    .keys()
                    .filter_map(|k| Some((k.clone(), table::delta(&report, run, k)?.into())))
                    .collect();
                let costs: serde_json::Map<String, serde_json::Value> = cols
                    .costs
                    .iter()
                    .filter_map(|c| Some((c.label.to_string(), c.total(run)?.into())))
                    .collect();
                let failed: Vec<serde_json::Value> = run
                    .verdicts()
                    .chain(run.failures())
                    .map(|s| serde_json::json!({"stage": s.name, "kind": s.kind, "reason": s.reason}))
                    .collect();
                v["metrics"] = serde_json::to_value(&run.metrics).unwrap_or_default();
                v["deltas"] = deltas.into();
                v["costs"] = costs.into();
                v["failed"] = failed.into();
                v["cpu_ms"] = run.cpu_ms().into();
                v["max_rss_kb"] = run.max_rss_kb().into();
            }
            out.push(v);
        }
        outln!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
        return ExitStatus::Success;
    }
    out!("{}", mlp_report::runs_table(&report));
    if !crate::quiet() {
        eprint!("{}", mlp_report::notes(&report));
    }
    if more > 0 {
        note!(
            "({} the checks read: `--metrics KEYS` shows others)",
            plural(more, "more metric")
        );
        report.wanted.clear();
    }
    let unknown: Vec<&String> = report
        .wanted
        .iter()
        .filter(|w| {
            !report.runs.iter().any(|r| {
                r.metrics
                    .keys()
                    .any(|k| k == *w || k.split_once('.').is_some_and(|(_, m)| m == w.as_str()))
            })
        })
        .collect();
    for w in unknown {
        exit::warning(format!("no run shown has a metric `{w}`"));
    }
    ExitStatus::Success
}

/// `mlp runs --export mlflow [RUN...]`: the runs given, or the last `--limit`, and any run
/// a failed export left; exporting a run again updates its MLflow run.
fn export(cli: &Cli, args: &RunsArgs, store: &dyn Store) -> ExitStatus {
    let ws = match workspace(cli) {
        Ok(ws) => ws,
        Err(status) => return status,
    };
    // The pipeline's `tracking` item, if the pipeline plans; the environment otherwise.
    let plan = find(cli)
        .ok()
        .and_then(|f| mlp_plan::load(&f, &Options::default()).ok());
    let pipeline = plan.as_ref().map(|p| &p.pipeline);
    let name = pipeline.map_or("pipeline", |p| p.name.as_str());
    let Some(target) = tracking::target(pipeline.and_then(|p| p.tracking.as_ref()), name) else {
        return ExitStatus::Usage.error(
            "no MLflow server to export to: add `tracking mlflow { uri = \"http://HOST:PORT\" }` to the pipeline, or set MLFLOW_TRACKING_URI",
        );
    };
    let ids = if args.runs.is_empty() {
        match history::runs(store, args.limit) {
            Ok(list) => list
                .iter()
                .filter_map(|r| history::resolve(store, &r.id).ok())
                .collect(),
            Err(e) => return exit::engine_error(e),
        }
    } else {
        let mut ids = Vec::new();
        for r in &args.runs {
            match history::resolve(store, r) {
                Ok(id) => ids.push(id),
                Err(e) => return exit::engine_error(e),
            }
        }
        ids
    };
    let report = tracking::export(&ws, store, &target, &ids);
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        for (run, mlflow_id, updated) in &report.exported {
            outln!(
                "run {run:>5}  {} MLflow run {mlflow_id}",
                if *updated { "updated" } else { "created" }
            );
        }
    }
    for n in &report.notes {
        exit::warning(n);
    }
    match &report.error {
        None => {
            if !args.json {
                note!(
                    "exported {} run(s) to experiment `{}` at {} in {}",
                    report.exported.len(),
                    target.experiment,
                    target.display_uri(),
                    human_ms(report.elapsed_ms)
                );
            }
            ExitStatus::Success
        }
        Some(e) => {
            let left: Vec<String> = report.pending.iter().map(|r| history::short(r)).collect();
            ExitStatus::Failure.error(format!(
                "export to MLflow at {} failed: {e}; not exported: run {}",
                target.display_uri(),
                left.join(", ")
            ))
        }
    }
}
