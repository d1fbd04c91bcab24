//! `mlp show RUN`: one run's params, overrides, git state, and every stage with its metrics.

use mlp_engine::history;
use mlp_engine::run::human_ms;

use crate::cli::{Cli, ShowArgs};
use crate::exit::{self, ExitStatus};
use crate::pipeline_file::history_store;
use mlp_report::table::when;

pub fn show(cli: &Cli, args: &ShowArgs) -> ExitStatus {
    let store = match history_store(cli) {
        Ok(s) => s,
        Err(status) => return status,
    };
    let run =
        match history::resolve(&*store, &args.run).and_then(|id| history::record(&*store, &id)) {
            Ok(r) => r,
            Err(e) => return exit::engine_error(e),
        };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&run).unwrap_or_default());
        return ExitStatus::Success;
    }
    let id = history::short(run["id"].as_str().unwrap_or(""));
    let started = run["started_ms"].as_u64().unwrap_or(0);
    let took = run["ended_ms"]
        .as_u64()
        .unwrap_or(0)
        .saturating_sub(started);
    outln!(
        "run {id}  {}  took {}  {}{}",
        when(started),
        human_ms(took),
        if run["ok"] == true { "ok" } else { "FAILED" },
        if run["promoted"] == true {
            "  (promoted)"
        } else {
            ""
        }
    );
    if let Some(g) = run["git"].as_object() {
        outln!(
            "git    {}{}",
            g["commit"].as_str().unwrap_or(""),
            if g["dirty"] == true { " (dirty)" } else { "" }
        );
    }
    if let Some(o) = run["overrides"].as_array().filter(|o| !o.is_empty()) {
        let sets: Vec<String> = o
            .iter()
            .map(|p| {
                format!(
                    "{}={}",
                    p[0].as_str().unwrap_or(""),
                    p[1].as_str().unwrap_or("")
                )
            })
            .collect();
        outln!("set    {}", sets.join(" "));
    }
    let flat = history::flatten_run(&serde_json::json!({"params": run["params"]}));
    for (k, v) in &flat {
        outln!("param  {} = {v}", k.trim_start_matches("params."));
    }
    if let Some(stages) = run["stages"].as_object() {
        // Pipeline order when the record has it.
        let order: Vec<&str> = match run["order"].as_array() {
            Some(o) => o.iter().filter_map(|v| v.as_str()).collect(),
            None => stages.keys().map(String::as_str).collect(),
        };
        for (name, s) in order
            .into_iter()
            .filter_map(|n| stages.get(n).map(|s| (n, s)))
        {
            let status = s["status"].as_str().unwrap_or("?");
            if status == "not_selected" {
                continue;
            }
            let mut line = format!("stage  {name:20} {status}");
            if let Some(d) = s["duration_ms"].as_u64() {
                line.push_str(&format!("  {}", human_ms(d)));
            }
            if let Some(c) = s["cpu_ms"].as_u64().filter(|c| *c > 0) {
                line.push_str(&format!("  cpu {}", human_ms(c)));
            }
            if let Some(m) = s["max_rss_kb"].as_u64().filter(|m| *m > 0) {
                line.push_str(&format!("  peak {} MiB", m / 1024));
            }
            if let Some(a) = s["attempts"].as_u64().filter(|a| *a > 1) {
                line.push_str(&format!("  {a} attempts"));
            }
            if s["fallback_used"] == true {
                line.push_str("  (fallback used)");
            }
            if let Some(r) = s["reason"].as_str() {
                line.push_str(&format!("  — {r}"));
            }
            outln!("{line}");
            if let Some(m) = s["metrics"].as_object() {
                let mut flat = std::collections::BTreeMap::new();
                for (k, v) in m {
                    flat.extend(history::flatten_run(&serde_json::json!({"params": {k: v}})));
                }
                for (k, v) in flat {
                    outln!("         {} = {v}", k.trim_start_matches("params."));
                }
            }
            if let Some(notes) = s["notes"].as_array() {
                for n in notes {
                    outln!("         note: {}", n.as_str().unwrap_or(""));
                }
            }
        }
    }
    ExitStatus::Success
}
