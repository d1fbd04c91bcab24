//! `mlp runs`: the run history, one line a run.

use mlp_engine::history;
use mlp_engine::run::human_ms;

use crate::cli::{Cli, RunsArgs};
use crate::exit::{self, ExitStatus};
use crate::human::when;
use crate::pipeline_file::{find, history_store, workspace};
use crate::tracking;
use mlp_engine::store::SledStore;
use mlp_plan::Options;

pub fn runs(cli: &Cli, args: &RunsArgs) -> ExitStatus {
    let store = match history_store(cli) {
        Ok(s) => s,
        Err(status) => return status,
    };
    if args.export.is_some() {
        return export(cli, args, &store);
    }
    let list = match history::runs(&store, args.limit) {
        Ok(l) => l,
        Err(e) => return exit::engine_error(e),
    };
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
        return ExitStatus::Success;
    }
    outln!(
        "{:>5}  {:20}  {:>8}  {:11}  {:10}  stages",
        "run",
        "started",
        "took",
        "result",
        "commit"
    );
    for r in &list {
        let result = if r.interrupted {
            "interrupted"
        } else if r.ok {
            "ok"
        } else {
            "FAILED"
        };
        let commit = r.git["commit"].as_str().map_or("-".to_string(), |c| {
            format!(
                "{}{}",
                &c[..8.min(c.len())],
                if r.git["dirty"] == true { "+" } else { "" }
            )
        });
        let counts: Vec<String> = r.counts.iter().map(|(k, v)| format!("{v} {k}")).collect();
        outln!(
            "{:>5}{} {:20}  {:>8}  {:11}  {:10}  {}",
            r.id,
            if r.baseline { "*" } else { " " },
            when(r.started_ms),
            human_ms(r.duration_ms),
            result,
            commit,
            counts.join(", ")
        );
    }
    if list.iter().any(|r| r.baseline) {
        eprintln!("* the baseline");
    }
    ExitStatus::Success
}

/// `mlp runs --export mlflow [RUN...]`: the runs given, or the last `--limit`, and any run
/// a failed export left; exporting a run again updates its MLflow run.
fn export(cli: &Cli, args: &RunsArgs, store: &SledStore) -> ExitStatus {
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
                eprintln!(
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
