//! `mlp gc --remote`: remove what no workspace's ref needs. A dry run unless `force`.
//!
//! Live: every run-cache entry some `refs/<workspace>` names, and every object, pack and
//! directory entry those need. Anything written within `grace` is kept whatever the refs
//! say: a push in flight writes its objects before its entries and its ref.

use std::collections::HashSet;

use mlp_engine::hash::parse_hex;
use mlp_engine::store::StageRecord;

use crate::layout::{self, DirEntry, Ref};
use crate::push::now_ms;
use crate::{Remote, RemoteError};

/// What `gc --remote` removed (or would remove).
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct GcReport {
    pub removed: u64,
    pub bytes: u64,
    pub kept: u64,
    /// Unreferenced, but written within the grace period.
    pub young: u64,
    pub workspaces: u64,
    pub dry_run: bool,
}

/// Collects the remote's garbage.
pub fn gc(remote: &dyn Remote, grace_ms: u64, force: bool) -> Result<GcReport, RemoteError> {
    remote.check(false)?;
    let mut live: HashSet<String> = HashSet::new();
    let refs = remote.list("refs/")?;
    for r in &refs {
        let Some(bytes) = remote.get(&r.key)? else {
            continue;
        };
        let Ok(rf) = serde_json::from_slice::<Ref>(&bytes) else {
            continue;
        };
        for ids in rf.stages.values() {
            for id in ids {
                live.insert(layout::runcache(id));
            }
        }
    }
    // What the live entries need.
    let entries: Vec<String> = live.iter().cloned().collect();
    for key in entries {
        let Some(bytes) = remote.get(&key)? else {
            continue;
        };
        let Ok(rec) = serde_json::from_slice::<StageRecord>(&bytes) else {
            continue;
        };
        for o in &rec.outputs {
            let Some(d) = parse_hex(&o.digest) else {
                continue;
            };
            if !o.is_dir {
                live.insert(layout::object(&d));
                continue;
            }
            let dk = layout::dir(&d);
            live.insert(dk.clone());
            let Some(bytes) = remote.get(&dk)? else {
                continue;
            };
            let Ok(entry) = serde_json::from_slice::<DirEntry>(&bytes) else {
                continue;
            };
            for p in &entry.packs {
                live.insert(layout::pack(p));
            }
            let packed: HashSet<_> = entry.index.iter().map(|s| s.digest).collect();
            for e in entry.entries.iter().filter(|e| !packed.contains(&e.digest)) {
                live.insert(layout::object(&e.digest));
            }
        }
    }
    let now = now_ms();
    let mut report = GcReport {
        workspaces: refs.len() as u64,
        dry_run: !force,
        ..GcReport::default()
    };
    // Entries first: an object is never removed while an entry still names it.
    for top in ["runcache/", "dirs/", "packs/", "objects/"] {
        for o in remote.list(top)? {
            if live.contains(&o.key) {
                report.kept += 1;
            } else if now.saturating_sub(o.modified_ms) < grace_ms {
                report.young += 1;
            } else {
                report.removed += 1;
                report.bytes += o.size;
                if force {
                    remote.delete(&o.key)?;
                }
            }
        }
    }
    Ok(report)
}
