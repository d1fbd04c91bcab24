//! `mlp check`: parse and validate the pipeline, report every error at once; warnings
//! (an input that does not exist) are shown, and the check still passes.

use crate::cli::{CheckArgs, Cli};
use crate::exit::ExitStatus;
use crate::pipeline_file::{load, parse_sets};

pub fn check(cli: &Cli, args: &CheckArgs) -> ExitStatus {
    let sets = match parse_sets(&args.set) {
        Ok(s) => s,
        Err(m) => return ExitStatus::Usage.error(m),
    };
    match load(cli, sets, args.json) {
        Ok(plan) => {
            let p = &plan.pipeline;
            if args.json {
                let warnings = plan.warning_report().json_items();
                outln!(
                    "{}",
                    serde_json::json!({"errors": [], "warnings": warnings, "pipeline": p.name, "stages": p.stages.len()})
                );
            } else {
                crate::diagnostics::warn(&plan);
                note!(
                    "ok: pipeline `{}`, {} stage{}",
                    p.name,
                    p.stages.len(),
                    if p.stages.len() == 1 { "" } else { "s" }
                );
            }
            // The process ends here: freeing a big plan piece by piece is wasted time.
            std::mem::forget(plan);
            ExitStatus::Success
        }
        Err(status) => status,
    }
}
