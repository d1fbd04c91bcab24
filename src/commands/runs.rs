//! `mlp runs`: the run history, one line a run.

use mlp_engine::history;
use mlp_engine::run::human_ms;

use crate::cli::{Cli, RunsArgs};
use crate::exit::{self, ExitStatus};
use crate::human::when;
use crate::pipeline_file::history_store;

pub fn runs(cli: &Cli, args: &RunsArgs) -> ExitStatus {
    let store = match history_store(cli) {
        Ok(s) => s,
        Err(status) => return status,
    };
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
        note!("* the baseline");
    }
    ExitStatus::Success
}
