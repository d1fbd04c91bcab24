//! `mlp promote RUN`: make a run the baseline that gates compare against.

use mlp_engine::history;

use crate::cli::{Cli, PromoteArgs};
use crate::exit::{self, ExitStatus};
use crate::pipeline_file;

pub fn promote(cli: &Cli, args: &PromoteArgs) -> ExitStatus {
    let ws = match pipeline_file::workspace(cli) {
        Ok(w) => w,
        Err(status) => return status,
    };
    match history::promote(&ws, &args.run) {
        Ok(id) => {
            note!("run {id} is now the baseline");
            ExitStatus::Success
        }
        Err(e) => exit::engine_error(e),
    }
}
