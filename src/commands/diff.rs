//! `mlp diff [A] [B]`: params and metrics of two runs, with deltas.

use mlp_engine::history;

use crate::cli::{Cli, DiffArgs};
use crate::exit::{self, ExitStatus};
use crate::pipeline_file::history_store;

pub fn diff(cli: &Cli, args: &DiffArgs) -> ExitStatus {
    let store = match history_store(cli) {
        Ok(s) => s,
        Err(status) => return status,
    };
    let d = match history::diff(&store, args.a.as_deref(), args.b.as_deref(), args.all) {
        Ok(d) => d,
        Err(e) => return exit::engine_error(e),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&d).unwrap_or_default());
        return ExitStatus::Success;
    }
    if d.rows.is_empty() {
        outln!("runs {} and {} have the same params and metrics", d.a, d.b);
        return ExitStatus::Success;
    }
    let w = d.rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
    let show =
        |v: &Option<serde_json::Value>| v.as_ref().map_or("-".to_string(), |v| v.to_string());
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
    ExitStatus::Success
}
