//! `mlp cache verify`: re-hash every cached output, remove those that do not match.

use mlp_engine::inspect;

use crate::cli::{CacheVerifyArgs, Cli};
use crate::exit::{self, ExitStatus};
use crate::pipeline_file;

pub fn verify(cli: &Cli, args: &CacheVerifyArgs) -> ExitStatus {
    let ws = match pipeline_file::workspace(cli) {
        Ok(w) => w,
        Err(status) => return status,
    };
    if !ws.cache_path().exists() {
        note!("nothing to verify: this workspace has no cache yet");
        return ExitStatus::Success;
    }
    let r = match inspect::verify_cache(&ws, args.dry_run) {
        Ok(r) => r,
        Err(e) => return exit::engine_error(e),
    };
    if args.json {
        outln!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
    } else {
        for b in &r.removed {
            note!(
                "  {} {} ({} does not match its name)",
                if args.dry_run { "bad" } else { "removed" },
                b.path,
                if b.reason == "manifest" {
                    "the directory manifest"
                } else {
                    "its content"
                }
            );
        }
        note!(
            "verified {} object{} ({} MiB): {} bad{}",
            r.checked,
            if r.checked == 1 { "" } else { "s" },
            r.bytes / (1024 * 1024),
            r.removed.len(),
            if r.removed.is_empty() || args.dry_run {
                ""
            } else {
                ", removed (the stages that made them run again when next needed)"
            }
        );
    }
    if r.removed.is_empty() {
        ExitStatus::Success
    } else {
        ExitStatus::Failure
    }
}
