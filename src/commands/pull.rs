//! `mlp pull`: bring the stages' outputs for their current identities from the team
//! remote into the workspace, verified by hash, so that the next `mlp run` has nothing
//! to do. It is a run that only restores: fresh stages stay, a stage the local
//! run-cache has is restored from it, else from the remote's; one neither has is
//! skipped (with its downstream), never run.

use std::sync::Arc;

use mlp_engine::run::{self, EngineError, RunOptions, Status};
use mlp_remote::Puller;

use crate::cli::{Cli, PullArgs};
use crate::exit::{self, ExitStatus};
use crate::pipeline_file::{load, workspace_of};
use crate::progress;
use crate::remote;

pub fn pull(cli: &Cli, a: &PullArgs) -> ExitStatus {
    match pull_inner(cli, a) {
        Ok(s) | Err(s) => s,
    }
}

fn pull_inner(cli: &Cli, a: &PullArgs) -> Result<ExitStatus, ExitStatus> {
    let plan = load(cli, Vec::new(), false)?;
    let p = &plan.pipeline;
    remote::check_stages(p, &a.stages)?;
    let jobs = remote::jobs(a.jobs)?;
    let file = crate::pipeline_file::find_or_fail(cli)?;
    let (ws, name) = workspace_of(&file);
    let rem = remote::open(a.remote.as_deref(), Some(p), &ws.root, jobs)?;
    rem.check(false).map_err(|e| ExitStatus::Failure.error(e))?;
    let opts = RunOptions {
        targets: a.stages.clone(),
        jobs,
        pipeline_file: name,
        remote: Some(Arc::new(Puller::new(rem, jobs))),
        pull_only: true,
        ..RunOptions::default()
    };
    let mut reporter = progress::reporter(a.json, false);
    let result = run::run(&ws, p, &opts, reporter.as_mut());
    drop(reporter);
    let report = match result {
        Err(EngineError::Busy(e)) => {
            return Err(ExitStatus::Busy.error(format!("{e}; wait for it to finish")));
        }
        Err(e) => return Err(exit::engine_error(e)),
        Ok(r) => r,
    };
    if report.interrupted {
        return Ok(ExitStatus::Interrupted);
    }
    let absent: Vec<&str> = report
        .statuses
        .iter()
        .filter(|(_, s)| matches!(s, Status::Skipped { .. }))
        .map(|(n, _)| n.as_str())
        .collect();
    if !absent.is_empty() && !a.json {
        note!(
            "not on the remote (or below one that is not): {}; `mlp run` runs {}",
            absent.join(", "),
            if absent.len() == 1 { "it" } else { "them" }
        );
    }
    Ok(if report.ok() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    })
}
