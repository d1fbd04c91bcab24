//! `mlp gc`: remove cached outputs that no kept run refers to.

use std::collections::HashSet;

use mlp_engine::inspect;

use crate::cli::{Cli, GcArgs};
use crate::exit::{self, ExitStatus};
use crate::pipeline_file;
use crate::remote;

pub fn gc(cli: &Cli, args: &GcArgs) -> ExitStatus {
    if let Some(url) = &args.remote {
        return gc_remote(cli, url, args);
    }
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

/// `mlp gc --remote`: what no workspace's ref needs, older than the grace period.
fn gc_remote(cli: &Cli, url: &str, args: &GcArgs) -> ExitStatus {
    let plan = pipeline_file::load(cli, Vec::new(), false).ok();
    let ws = match pipeline_file::workspace(cli) {
        Ok(w) => w,
        Err(status) => return status,
    };
    if !(args.grace >= 0.0 && args.grace.is_finite()) {
        return ExitStatus::Usage.error("`--grace`: give a number of hours, 0 or more");
    }
    let flag = (!url.is_empty()).then_some(url);
    let rem = match remote::open(flag, plan.as_ref().map(|p| &p.pipeline), &ws.root, 8) {
        Ok(r) => r,
        Err(status) => return status,
    };
    let grace_ms = (args.grace * 3_600_000.0) as u64;
    match mlp_remote::gc(rem.as_ref(), grace_ms, args.force) {
        Ok(r) => {
            if args.json {
                outln!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else {
                note!(
                    "{} {} object{} ({}) from `{}`; kept {} that {} workspace ref{} need{}, and {} written within {} h{}",
                    if args.force {
                        "removed"
                    } else {
                        "would remove"
                    },
                    r.removed,
                    if r.removed == 1 { "" } else { "s" },
                    crate::human::bytes(r.bytes),
                    rem.url(),
                    r.kept,
                    r.workspaces,
                    if r.workspaces == 1 { "" } else { "s" },
                    if r.workspaces == 1 { "s" } else { "" },
                    r.young,
                    args.grace,
                    if args.force {
                        ""
                    } else {
                        " (a dry run: `--force` removes)"
                    },
                );
            }
            ExitStatus::Success
        }
        Err(e) => ExitStatus::Failure.error(e),
    }
}
