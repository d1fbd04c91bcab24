//! `mlp checkout RUN`: restore a run's outputs byte for byte from the cache.

use mlp_engine::history;

use crate::cli::{CheckoutArgs, Cli};
use crate::exit::{self, ExitStatus};
use crate::pipeline_file;

pub fn checkout(cli: &Cli, args: &CheckoutArgs) -> ExitStatus {
    let ws = match pipeline_file::workspace(cli) {
        Ok(w) => w,
        Err(status) => return status,
    };
    match history::checkout(&ws, &args.run) {
        Ok(r) => {
            for p in &r.restored {
                note!("  restored {p}");
            }
            note!(
                "checked out run {}: {} output{} restored, {} already as recorded",
                r.run,
                r.restored.len(),
                if r.restored.len() == 1 { "" } else { "s" },
                r.unchanged.len()
            );
            ExitStatus::Success
        }
        Err(e) => exit::engine_error(e),
    }
}
