//! `mlp diff [RUN...]`, `mlp diff --last N`: params and metrics of runs side by side, with
//! deltas against the first.

use mlp_engine::history::{self, DiffRuns};
use mlp_report::table::signed;

use crate::cli::{Cli, DiffArgs};
use crate::exit::{self, ExitStatus};
use crate::pipeline_file::history_store;

pub fn diff(cli: &Cli, args: &DiffArgs) -> ExitStatus {
    let store = match history_store(cli) {
        Ok(s) => s,
        Err(status) => return status,
    };
    let which = match args.last {
        Some(n) => DiffRuns::Last(n),
        None => DiffRuns::Named(&args.runs),
    };
    let d = match history::diff(&*store, which, args.all) {
        Ok(d) => d,
        Err(e) => return exit::engine_error(e),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&d).unwrap_or_default());
        return ExitStatus::Success;
    }
    if d.rows.is_empty() {
        if d.runs.len() == 2 {
            outln!("runs {} and {} have the same params and metrics", d.a, d.b);
        } else {
            outln!(
                "runs {} have the same params and metrics",
                d.runs.join(", ")
            );
        }
        return ExitStatus::Success;
    }
    let w = d.rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
    let show =
        |v: &Option<serde_json::Value>| v.as_ref().map_or("-".to_string(), |v| v.to_string());
    if d.runs.len() == 2 {
        outln!(
            "{:w$}  {:>12}  {:>12}  {:>10}",
            "",
            format!("run {}", d.a),
            format!("run {}", d.b),
            "delta"
        );
        for r in &d.rows {
            let delta = r.delta.map_or(String::new(), |x| format!("{x:+.4}"));
            outln!(
                "{:w$}  {:>12}  {:>12}  {:>10}",
                r.key,
                show(&r.a),
                show(&r.b),
                delta
            );
        }
        return ExitStatus::Success;
    }
    // Many runs: a column per run, each number after the first with its change.
    let cells: Vec<Vec<String>> = d
        .rows
        .iter()
        .map(|r| {
            r.values
                .iter()
                .zip(&r.deltas)
                .enumerate()
                .map(|(i, (v, delta))| match delta {
                    Some(x) if i > 0 && *x != 0.0 => format!("{} ({})", show(v), signed(*x)),
                    _ => show(v),
                })
                .collect()
        })
        .collect();
    let mut cw: Vec<usize> = d.runs.iter().map(|r| r.len() + 4).collect();
    for row in &cells {
        for (i, c) in row.iter().enumerate() {
            cw[i] = cw[i].max(c.chars().count());
        }
    }
    let mut head = format!("{:w$}", "");
    for (i, r) in d.runs.iter().enumerate() {
        head.push_str(&format!("  {:>1$}", format!("run {r}"), cw[i]));
    }
    outln!("{}", head.trim_end());
    for (r, row) in d.rows.iter().zip(&cells) {
        let mut line = format!("{:w$}", r.key);
        for (i, c) in row.iter().enumerate() {
            line.push_str(&format!("  {:>1$}", c, cw[i]));
        }
        outln!("{line}");
    }
    outln!("(±x): the change against run {}", d.a);
    ExitStatus::Success
}
