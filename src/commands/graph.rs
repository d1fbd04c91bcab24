//! `mlp graph`: print the DAG.

use crate::cli::{Cli, GraphArgs, GraphFormat};
use crate::exit::ExitStatus;
use crate::pipeline_file::load;

pub fn graph(cli: &Cli, args: &GraphArgs) -> ExitStatus {
    let plan = match load(cli, Vec::new(), false) {
        Ok(p) => p,
        Err(status) => return status,
    };
    let p = &plan.pipeline;
    let out = match args.format {
        GraphFormat::Ascii => mlp_plan::graph::ascii(p),
        GraphFormat::Dot => mlp_plan::graph::dot(p),
        GraphFormat::Mermaid => mlp_plan::graph::mermaid(p),
        GraphFormat::Names => p.stages.iter().map(|s| format!("{}\n", s.name)).collect(),
        GraphFormat::Json => format!(
            "{}\n",
            serde_json::to_string_pretty(&mlp_plan::graph::json(p)).unwrap_or_default()
        ),
    };
    out!("{out}");
    ExitStatus::Success
}
