//! `mlp lsp`: the language server (crate `mlp-lsp`) on stdin/stdout until the editor says
//! `exit`.

use crate::exit::{self, ExitStatus};

pub fn lsp() -> ExitStatus {
    match mlp_lsp::run_stdio() {
        Ok(()) => ExitStatus::Success,
        Err(e) => {
            exit::command_error("lsp", e);
            ExitStatus::Failure
        }
    }
}
