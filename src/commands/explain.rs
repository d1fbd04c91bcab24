//! `mlp explain STAGE`: what a stage's identity is made of, and what changed since its last
//! success.

use mlp_engine::inspect;

use crate::cli::{Cli, ExplainArgs};
use crate::exit::{self, ExitStatus};
use crate::pipeline_file::{self, load, workspace_of};

pub fn explain(cli: &Cli, args: &ExplainArgs) -> ExitStatus {
    let plan = match load(cli, Vec::new(), args.json) {
        Ok(p) => p,
        Err(status) => return status,
    };
    let file = pipeline_file::find(cli).unwrap_or_default();
    let (ws, _) = workspace_of(&file);
    let e =
        match pipeline_file::patiently(|w| inspect::explain(&ws, &plan.pipeline, &args.stage, w)) {
            Ok(e) => e,
            Err(e) => return exit::engine_error(e),
        };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&e).unwrap_or_default());
        return ExitStatus::Success;
    }
    let k = &e.key;
    outln!("stage {}", e.stage);
    outln!("  identity  {}", e.identity);
    outln!("  format    {}", k.format);
    outln!("  command   {}", k.command);
    for (p, d) in &k.inputs {
        outln!("  input     {p}  {}", short(d));
    }
    for (p, v) in &k.params {
        outln!("  param     {p} = {v}");
    }
    for (p, v) in &k.env {
        outln!("  env       {p} = {v:?}");
    }
    for o in &k.outputs {
        outln!("  output    {o}");
    }
    for (stage, id) in &k.after {
        outln!("  after     {stage}  {}", short(id));
    }
    match &e.last_success {
        None => outln!("never succeeded: it runs on the next `mlp run`"),
        Some(l) => {
            outln!(
                "last success: run {} (identity {})",
                l.run.trim_start_matches('0'),
                &l.identity[..16.min(l.identity.len())]
            );
            if e.changes.is_empty() {
                outln!("nothing changed since: up to date");
            } else {
                outln!("changed since:");
                for c in &e.changes {
                    outln!("  - {c}");
                }
            }
        }
    }
    ExitStatus::Success
}

/// A digest shortened to 16 hex digits, keeping its `kind:` prefix.
fn short(d: &str) -> String {
    match d.rsplit_once(':') {
        Some((kind, h)) => format!("{kind}:{}", &h[..16.min(h.len())]),
        None => d[..16.min(d.len())].to_string(),
    }
}
