//! `mlp status`: every stage, fresh or stale (with the first reason), never run, or failed.

use mlp_engine::inspect::{self, State};

use crate::cli::{Cli, StatusArgs};
use crate::exit::{self, ExitStatus};
use crate::human::plural;
use crate::pipeline_file::{self, load, workspace_of};

pub fn status(cli: &Cli, args: &StatusArgs) -> ExitStatus {
    let plan = match load(cli, Vec::new(), args.json) {
        Ok(p) => p,
        Err(status) => return status,
    };
    let file = pipeline_file::find(cli).unwrap_or_default();
    let (ws, name) = workspace_of(&file);
    let states = match pipeline_file::patiently(|w| inspect::status(&ws, &plan.pipeline, &name, w))
    {
        Ok(s) => s,
        Err(e) => return exit::engine_error(e),
    };
    if args.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&states).unwrap_or_default()
        );
        return ExitStatus::Success;
    }
    let width = states.iter().map(|s| s.stage.len()).max().unwrap_or(0);
    // Jobs on a cluster that a run waits for (or that a killed run left to attach to).
    let ray = mlp_engine::ray::in_flight(&ws.dir.join("ray"));
    for s in &states {
        let mut detail = match &s.state {
            State::Stale { reason } | State::Failed { reason } => format!(": {reason}"),
            _ => String::new(),
        };
        if let Some(job) = ray.get(&s.stage) {
            detail.push_str(&format!(" [{job}]"));
        }
        outln!("{:width$}  {}{detail}", s.stage, s.state.label());
    }
    let fresh = states.iter().filter(|s| s.state == State::Fresh).count();
    note!("{fresh} of {} fresh", plural(states.len(), "stage"));
    ExitStatus::Success
}
