//! `mlp runs`: the run history, one line a run, with the metrics checks and gates use (or
//! those `--metrics` names), their change against the baseline, and cost totals.

use mlp_engine::history;
use mlp_report::table::{self, Columns};

use crate::cli::{Cli, RunsArgs};
use crate::exit::{self, ExitStatus};
use crate::history_view;
use crate::human::plural;
use crate::pipeline_file::history_store;

/// How many metric columns `mlp runs` shows when `--metrics` does not say.
const TERMINAL_METRICS: usize = 6;

pub fn runs(cli: &Cli, args: &RunsArgs) -> ExitStatus {
    let store = match history_store(cli) {
        Ok(s) => s,
        Err(status) => return status,
    };
    let list = match history::runs(&store, args.limit) {
        Ok(l) => l,
        Err(e) => return exit::engine_error(e),
    };
    let mut report = match history_view::load(cli, &store, args.limit, &args.metrics, false) {
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
    eprint!("{}", mlp_report::notes(&report));
    if more > 0 {
        eprintln!(
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
        eprintln!("mlp: warning: no run shown has a metric `{w}`");
    }
    ExitStatus::Success
}
