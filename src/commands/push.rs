//! `mlp push`: upload the stages' current successes (and with `--kept` the kept runs'
//! records) to the team remote: objects first, then run-cache entries, then this
//! workspace's ref (what `gc --remote` must keep for it).

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};
use mlp_engine::cache::ObjectCache;
use mlp_engine::run::EngineError;
use mlp_engine::store::{StageRecord, Store};
use mlp_remote::Pusher;

use crate::cli::{Cli, PushArgs};
use crate::exit::{self, ExitStatus};
use crate::pipeline_file::{load, workspace};
use crate::remote;

pub fn push(cli: &Cli, a: &PushArgs) -> ExitStatus {
    match push_inner(cli, a) {
        Ok(s) | Err(s) => s,
    }
}

fn push_inner(cli: &Cli, a: &PushArgs) -> Result<ExitStatus, ExitStatus> {
    let plan = load(cli, Vec::new(), false)?;
    let p = &plan.pipeline;
    remote::check_stages(p, &a.stages)?;
    let jobs = remote::jobs(a.jobs)?;
    let ws = workspace(cli)?;
    if !ws.store_path().exists() {
        return Err(ExitStatus::Failure.error("nothing to push: this workspace has never run"));
    }
    // The stage records need the store itself (the published run records do not hold
    // them): read them under the workspace lock, waiting for a run as readers do, and let
    // both go before the uploads.
    let (store, lock) = open_store(&ws).map_err(exit::engine_error)?;
    let names: Vec<&str> = if a.stages.is_empty() {
        p.stages.iter().map(|s| s.name.as_str()).collect()
    } else {
        a.stages.iter().map(String::as_str).collect()
    };
    let err = |e: mlp_engine::store::StoreError| ExitStatus::Failure.error(e);
    let mut records: Vec<StageRecord> = Vec::new();
    for n in &names {
        if let Some(r) = store.last_success(n).map_err(err)? {
            records.push(r);
        }
    }
    if a.kept {
        let wanted: HashSet<&str> = names.iter().copied().collect();
        for id in mlp_engine::inspect::kept_identities(&store, 10).map_err(err)? {
            if let Some(r) = store.cached(&id).map_err(err)?
                && wanted.contains(r.stage.as_str())
            {
                records.push(r);
            }
        }
    }
    let mut refs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in &records {
        let ids = refs.entry(r.stage.clone()).or_default();
        if !ids.contains(&r.identity) {
            ids.push(r.identity.clone());
        }
    }
    let rem = remote::open(a.remote.as_deref(), Some(p), &ws.root, jobs)?;
    let cache = ObjectCache::open(&ws.cache_path()).map_err(|e| ExitStatus::Failure.error(e))?;
    drop(store);
    drop(lock);
    let bar = (!a.json && !crate::quiet() && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template("pushing {bar:30} {pos}/{len} objects {elapsed}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        b
    });
    let progress = |done: u64, total: u64| {
        if let Some(b) = &bar {
            b.set_length(total);
            b.set_position(done);
        }
    };
    let pusher = Pusher {
        remote: rem,
        cache: &cache,
        jobs,
        progress: &progress,
    };
    let result = pusher.push(&records);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let report = result.map_err(|e| ExitStatus::Failure.error(e))?;
    let ws_id = mlp_remote::workspace_id(&ws.dir).map_err(|e| ExitStatus::Failure.error(e))?;
    pusher
        .write_ref(&ws_id, &refs)
        .map_err(|e| ExitStatus::Failure.error(e))?;
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        note!(
            "pushed {} object{} ({}), {} run-cache entr{}; skipped {} already there; {:.1} s",
            report.objects_sent,
            if report.objects_sent == 1 { "" } else { "s" },
            crate::human::bytes(report.bytes_sent),
            report.entries_sent,
            if report.entries_sent == 1 { "y" } else { "ies" },
            report.skipped,
            report.seconds
        );
    }
    Ok(ExitStatus::Success)
}

/// The identities the kept runs (the last 10 and the baseline) recorded.
/// The store with the lock that lets us read it (dropped in that order).
fn open_store(
    ws: &mlp_engine::workspace::Workspace,
) -> Result<
    (
        mlp_engine::store::SledStore,
        mlp_engine::lock::WorkspaceLock,
    ),
    EngineError,
> {
    use mlp_engine::lock::{self, LockError};
    let lock = crate::pipeline_file::patiently(|p| lock::acquire_patiently(&ws.dir, "mlp push", p))
        .map_err(|e| match e {
            LockError::Held { holder, .. } => EngineError::in_use(&holder),
            e => e.into(),
        })?;
    Ok((ws.open_store()?, lock))
}
