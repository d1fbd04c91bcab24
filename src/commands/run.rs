//! `mlp run`: run what is stale.

use std::sync::Arc;
use std::time::Instant;

use mlp_engine::history;
use mlp_engine::lock::LockError;
use mlp_engine::remote::RemoteCache;
use mlp_engine::run::{self, EngineError, RunOptions};
use mlp_engine::workspace::Workspace;
use mlp_plan::model::Pipeline;
use mlp_remote::Puller;

use crate::cli::{Cli, ExecutorArg, RunArgs};
use crate::exit::{self, ExitStatus};
use crate::pipeline_file::{load, sets_and_file, workspace_of};
use crate::progress;
use crate::remote;
use crate::tracking;

/// `-j` by default: the number of CPUs.
pub fn default_jobs() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

pub fn run(cli: &Cli, a: &RunArgs) -> ExitStatus {
    let t0 = Instant::now();
    let (sets, file) = match sets_and_file(cli, &a.set) {
        Ok(x) => x,
        Err(status) => return status,
    };
    let (ws, name) = workspace_of(&file);
    if a.jobs == Some(0) {
        return ExitStatus::Usage.error("`-j 0`: give at least one job slot");
    }
    // The no-op path: the snapshot alone proves every stage fresh; no parsing, no store.
    let plain = sets.is_empty() && a.stages.is_empty() && a.force.is_empty() && !a.dry_run;
    if plain && run::nothing_to_do(&ws, &name) {
        if a.json {
            outln!(
                "{}",
                serde_json::json!({"event": "finish", "run": null, "ok": true, "nothing_to_do": true, "elapsed_ms": t0.elapsed().as_millis() as u64})
            );
        } else {
            note!(
                "nothing to do: every stage is up to date ({})",
                run::human_ms(t0.elapsed().as_millis() as u64)
            );
        }
        return ExitStatus::Success;
    }
    let plan = match load(cli, sets.clone(), false) {
        Ok(p) => p,
        Err(status) => return status,
    };
    crate::diagnostics::warn(&plan);
    let jobs = a.jobs.unwrap_or_else(default_jobs);
    if jobs == 0 {
        return ExitStatus::Usage.error("`-j 0`: give at least one job slot");
    }
    // `--pull` (or the pipeline's `remote { pull = true }`): the remote is opened here, and
    // asked only for a stale stage the local run-cache misses.
    let pull = !a.no_pull && !a.dry_run && (a.pull || remote::pull_by_default(&plan.pipeline));
    let remote_cache: Option<Arc<dyn RemoteCache>> = if pull {
        let Some(url) = remote::url(a.remote.as_deref(), Some(&plan.pipeline)) else {
            return ExitStatus::Usage.error(
                "`--pull` without a remote: pass `--remote URL`, set MLP_REMOTE, or add `remote \"URL\"` to the pipeline",
            );
        };
        if let Err(e) = mlp_plan::remote_url::parse(&url) {
            return ExitStatus::Usage.error(format!("remote `{url}`: {e}"));
        }
        Some(Arc::new(Puller::lazy(&url, &ws.root, remote::DEFAULT_JOBS)))
    } else {
        None
    };
    let opts = RunOptions {
        targets: a.stages.clone(),
        downstream: a.downstream,
        jobs,
        keep_going: a.keep_going,
        dry_run: a.dry_run,
        force: a.force.clone(),
        verbose: a.verbose,
        wait: a.wait,
        read_wait: Some(crate::pipeline_file::read_wait()),
        overrides: sets,
        pipeline_file: name,
        control: None,
        executor: a.executor.map(ExecutorArg::kind),
        remote: remote_cache,
        pull_only: false,
    };
    let mut reporter = progress::reporter(a.json, a.verbose);
    let result = run::run(&ws, &plan.pipeline, &opts, reporter.as_mut());
    drop(reporter);
    if let Ok(report) = &result
        && !a.dry_run
        && !report.nothing_to_do
    {
        export(&ws, &plan.pipeline, &report.id, report.interrupted, a.json);
    }
    match result {
        Err(EngineError::Busy(e @ LockError::Held { .. })) => ExitStatus::Busy.error(format!(
            "{e}; wait for it to finish, or pass --wait to wait"
        )),
        Ok(report) if report.interrupted => ExitStatus::Interrupted,
        Ok(report) if report.ok() => ExitStatus::Success,
        Ok(report) if report.gate_failed() => ExitStatus::CheckFailed,
        Ok(_) => ExitStatus::Failure,
        Err(e) => exit::engine_error(e),
    }
}

/// After a run that did work: send it (and any run a failed export left) to the tracking
/// server, when the pipeline or the environment names one. Never changes the exit status:
/// a failure is one warning line, and the run is tried again later.
fn export(ws: &Workspace, p: &Pipeline, run_id: &str, interrupted: bool, json: bool) {
    let Some(target) = tracking::target(p.tracking.as_ref(), &p.name) else {
        return;
    };
    if interrupted {
        // Ctrl-C means "stop now": no network; the next run or export sends it.
        tracking::remember(ws, run_id);
        return;
    }
    let store = match history::open(ws, &mut mlp_engine::lock::Patience::none()) {
        Ok(s) => s,
        Err(e) => {
            tracking::remember(ws, run_id);
            exit::warning(format!(
                "run {} not exported to MLflow yet ({e}); the next run or `mlp runs --export mlflow` sends it",
                history::short(run_id)
            ));
            return;
        }
    };
    let report = tracking::export(ws, &*store, &target, &[run_id.to_string()]);
    if json {
        outln!(
            "{}",
            serde_json::json!({"event": "tracking", "exported": report.exported, "pending": report.pending, "error": report.error, "elapsed_ms": report.elapsed_ms})
        );
    }
    for n in &report.notes {
        exit::warning(n);
    }
    if let Some(w) = report.warning(&target) {
        exit::warning(w);
    }
}
