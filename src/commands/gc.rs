//! `mlp gc`: remove cached outputs that no kept run refers to.

use std::collections::HashSet;

use mlp_engine::inspect;

use crate::cli::{Cli, GcArgs};
use crate::exit::{self, ExitStatus};
use crate::pipeline_file;

pub fn gc(cli: &Cli, args: &GcArgs) -> ExitStatus {
    let ws = match pipeline_file::workspace(cli) {
        Ok(w) => w,
        Err(status) => return status,
    };
    if !ws.store_path().exists() {
        note!("nothing to collect: this workspace has never run");
        return ExitStatus::Success;
    }
    match inspect::gc(&ws, args.keep, &HashSet::new(), args.dry_run) {
        Ok(r) => {
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else {
                note!(
                    "{}{} object{} ({} MiB), {} run-cache record{}; {} object{} kept",
                    if args.dry_run {
                        "would remove "
                    } else {
                        "removed "
                    },
                    r.objects_removed,
                    if r.objects_removed == 1 { "" } else { "s" },
                    r.bytes_freed / (1024 * 1024),
                    r.records_dropped,
                    if r.records_dropped == 1 { "" } else { "s" },
                    r.objects_kept,
                    if r.objects_kept == 1 { "" } else { "s" },
                );
            }
            ExitStatus::Success
        }
        Err(e) => exit::engine_error(e),
    }
}
