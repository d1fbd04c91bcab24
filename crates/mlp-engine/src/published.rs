//! Published run records: the run history as plain files, so that `mlp runs`, `show`,
//! `diff` and `report` answer while a run (or `mlp watch`'s run) holds the store.
//!
//! sled lets one process open a database. The store stays the truth; after a run writes
//! its record (and flushes), it also writes `.mlp/runs/<ID>.json` and the baseline
//! pointer `.mlp/runs/baseline`, each to a temp file renamed into place, so a reader sees
//! a whole record or none. The mirror is *derived*, like `state.bin`:
//!
//! ```text
//! .mlp/runs/00000007.json   one run record, as the store has it
//! .mlp/runs/baseline        the promoted run's id (absent: no baseline)
//! .mlp/runs/complete        present only while the mirror has every run of the store
//! ```
//!
//! A writer removes `complete` before it writes the store and puts it back after the
//! mirror has caught up; a writer that finds it missing (first run, a kill in between, a
//! failed write) copies the whole history again. Readers use the mirror only when
//! `complete` is there, and otherwise the store (under the workspace lock), so a record
//! the store has is never hidden.

use std::borrow::Cow;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::judge::BASELINE;
use crate::store::{StageRecord, StatEntry, Store, StoreError};
use crate::workspace::Workspace;

const COMPLETE: &str = "complete";
const BASELINE_FILE: &str = "baseline";

/// The mirror's directory.
pub fn dir(ws: &Workspace) -> PathBuf {
    ws.dir.join("runs")
}

/// The mirror has every run of the store: readers may use it.
pub fn is_complete(ws: &Workspace) -> bool {
    dir(ws).join(COMPLETE).is_file()
}

/// Before writing the store: the mirror is about to be behind. Returns whether it was
/// complete (then [`catch_up`] writes only what changed). A store with no run yet is a
/// new one (deleted, or started afresh after a crash): its run ids start again at 1, so
/// an old mirror is moved aside, not mixed with the new history.
pub fn begin(ws: &Workspace, store: &dyn Store) -> bool {
    if matches!(store.last_run_id(), Ok(None)) && dir(ws).exists() {
        move_aside(ws, &format!("old-{}", crate::workspace::now_ms()));
        return false;
    }
    // Removed: it was complete. Not there, or not removable: copy everything after.
    std::fs::remove_file(dir(ws).join(COMPLETE)).is_ok()
}

/// After the store has the run `id` with its record `rec` (and the baseline): bring the
/// mirror up to date — only that run and the baseline when it `was_complete`, else every
/// run — and mark it complete. On error the mirror stays marked incomplete (readers use
/// the store).
pub fn catch_up<R: RunJson + ?Sized>(
    ws: &Workspace,
    store: &dyn Store,
    run: Option<(&str, &R)>,
    was_complete: bool,
) -> Result<(), String> {
    let d = dir(ws);
    std::fs::create_dir_all(&d).map_err(|e| format!("{}: {e}", d.display()))?;
    if let Some((id, rec)) = run {
        write_atomic(&d.join(format!("{id}.json")), &rec.json()?)?;
    }
    if !was_complete {
        // Every other run, one at a time (a run of 100,000 stages is a big record): run
        // ids are a counter, so they are 1 up to the last one.
        let last = store.last_run_id().map_err(|e| e.to_string())?;
        let last = last.and_then(|l| l.parse::<u64>().ok()).unwrap_or(0);
        for n in 1..=last {
            let id = format!("{n:08}");
            if run.is_some_and(|(r, _)| r == id) {
                continue;
            }
            if let Some(rec) = store.run(&id).map_err(|e| e.to_string())? {
                write_atomic(&d.join(format!("{id}.json")), &rec.json()?)?;
            }
        }
    }
    let baseline = store.meta(BASELINE).map_err(|e| e.to_string())?;
    write_baseline(&d, baseline.as_deref())?;
    write_atomic(&d.join(COMPLETE), b"")
}

/// The baseline changed (`mlp promote`): the mirror follows, or is marked incomplete.
pub fn set_baseline(ws: &Workspace, id: &str) -> Result<(), String> {
    if !is_complete(ws) {
        return Ok(());
    }
    write_baseline(&dir(ws), Some(id)).inspect_err(|_| {
        let _ = std::fs::remove_file(dir(ws).join(COMPLETE));
    })
}

/// A new store was started (the old one was unreadable): its run ids start again, so
/// the old mirror is moved aside with it.
pub fn move_aside(ws: &Workspace, suffix: &str) {
    let d = dir(ws);
    if d.exists() {
        let _ = std::fs::rename(&d, ws.dir.join(format!("runs.{suffix}")));
    }
}

/// A run record as the JSON text to publish: a JSON tree, or the text itself (a run
/// record may be written as text without building the tree).
pub trait RunJson {
    fn json(&self) -> Result<Cow<'_, [u8]>, String>;
}

impl RunJson for Value {
    fn json(&self) -> Result<Cow<'_, [u8]>, String> {
        serde_json::to_vec(self)
            .map(Cow::Owned)
            .map_err(|e| e.to_string())
    }
}

impl RunJson for [u8] {
    fn json(&self) -> Result<Cow<'_, [u8]>, String> {
        Ok(Cow::Borrowed(self))
    }
}

impl RunJson for Vec<u8> {
    fn json(&self) -> Result<Cow<'_, [u8]>, String> {
        Ok(Cow::Borrowed(self))
    }
}

fn write_baseline(d: &Path, id: Option<&str>) -> Result<(), String> {
    let path = d.join(BASELINE_FILE);
    match id {
        Some(id) => write_atomic(&path, id.as_bytes()),
        None => match std::fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => {
                Err(format!("{}: {e}", path.display()))
            }
            _ => Ok(()),
        },
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let r = std::fs::File::create(&tmp)
        .and_then(|mut f| f.write_all(bytes))
        .and_then(|()| std::fs::rename(&tmp, path));
    r.map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        format!("{}: {e}", path.display())
    })
}

/// The mirror, read as a [`Store`] that has the run history only: stage records, the
/// run-cache and the stat cache are empty, and every write fails with
/// [`StoreError::Locked`] (the store is held by the run being mirrored).
#[derive(Debug)]
pub struct Published {
    dir: PathBuf,
    store: PathBuf,
}

impl Published {
    pub fn new(ws: &Workspace) -> Published {
        Published {
            dir: dir(ws),
            store: ws.store_path(),
        }
    }

    fn ids(&self) -> Result<Vec<String>, StoreError> {
        let rd = std::fs::read_dir(&self.dir).map_err(|e| self.err(&self.dir, e))?;
        let mut ids: Vec<String> = rd
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let id = name.strip_suffix(".json")?;
                (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then(|| id.to_string())
            })
            .collect();
        ids.sort();
        Ok(ids)
    }

    fn err(&self, path: &Path, e: io::Error) -> StoreError {
        StoreError::Corrupt {
            path: path.to_path_buf(),
            what: "published run record".into(),
            detail: e.to_string(),
        }
    }

    fn locked(&self) -> StoreError {
        StoreError::Locked {
            path: self.store.clone(),
        }
    }
}

impl Store for Published {
    fn cached(&self, _: &str) -> Result<Option<StageRecord>, StoreError> {
        Ok(None)
    }
    fn last(&self, _: &str) -> Result<Option<StageRecord>, StoreError> {
        Ok(None)
    }
    fn last_success(&self, _: &str) -> Result<Option<StageRecord>, StoreError> {
        Ok(None)
    }
    fn put_record(&self, _: &StageRecord) -> Result<(), StoreError> {
        Err(self.locked())
    }
    fn stat_entries(&self) -> Result<Vec<(String, StatEntry)>, StoreError> {
        Ok(Vec::new())
    }
    fn put_stats(&self, _: &[(String, StatEntry)]) -> Result<(), StoreError> {
        Err(self.locked())
    }
    fn remove_stats(&self, _: &[String]) -> Result<(), StoreError> {
        Err(self.locked())
    }
    fn put_run(&self, _: &str, _: &Value) -> Result<(), StoreError> {
        Err(self.locked())
    }
    fn run(&self, id: &str) -> Result<Option<Value>, StoreError> {
        let path = self.dir.join(format!("{id}.json"));
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| self.err(&path, io::Error::other(e))),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(&path, e)),
        }
    }
    fn runs(&self) -> Result<Vec<(String, Value)>, StoreError> {
        let mut out = Vec::new();
        for id in self.ids()? {
            // Listed, then read: a file is only ever added or replaced whole.
            if let Some(r) = self.run(&id)? {
                out.push((id, r));
            }
        }
        Ok(out)
    }
    fn last_run_id(&self) -> Result<Option<String>, StoreError> {
        Ok(self.ids()?.pop())
    }
    fn all_cached(&self) -> Result<Vec<StageRecord>, StoreError> {
        Ok(Vec::new())
    }
    fn remove_cached(&self, _: &str) -> Result<(), StoreError> {
        Err(self.locked())
    }
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }
    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        if key != BASELINE {
            return Ok(None);
        }
        match std::fs::read_to_string(self.dir.join(BASELINE_FILE)) {
            Ok(s) => Ok(Some(s.trim().to_string()).filter(|s| !s.is_empty())),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(self.err(&self.dir.join(BASELINE_FILE), e)),
        }
    }
    fn put_meta(&self, _: &str, _: &str) -> Result<(), StoreError> {
        Err(self.locked())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemStore;

    #[test]
    fn the_mirror_follows_the_store_and_is_trusted_only_when_complete() {
        let dir = tempfile::tempdir().unwrap();
        let ws = Workspace::new(dir.path());
        ws.create().unwrap();
        let store = MemStore::default();
        store
            .put_run("00000001", &serde_json::json!({"id": "00000001"}))
            .unwrap();
        store
            .put_run("00000002", &serde_json::json!({"id": "00000002"}))
            .unwrap();
        store.put_meta(BASELINE, "00000001").unwrap();
        // Never published: a full copy.
        assert!(!begin(&ws, &store));
        assert!(!is_complete(&ws));
        catch_up::<Value>(&ws, &store, None, false).unwrap();
        assert!(is_complete(&ws));
        let p = Published::new(&ws);
        assert_eq!(p.runs().unwrap().len(), 2);
        assert_eq!(p.meta(BASELINE).unwrap().as_deref(), Some("00000001"));
        assert_eq!(p.last_run_id().unwrap().as_deref(), Some("00000002"));
        // A run in progress: incomplete until it caught up; then only it is written.
        assert!(begin(&ws, &store));
        assert!(!is_complete(&ws));
        let rec = serde_json::json!({"id": "00000003"});
        store.put_run("00000003", &rec).unwrap();
        // Given as its JSON text, the record is written as it is.
        let text = serde_json::to_vec(&rec).unwrap();
        catch_up(&ws, &store, Some(("00000003", &text)), true).unwrap();
        assert_eq!(p.run("00000003").unwrap(), Some(rec));
        assert!(is_complete(&ws));
        assert_eq!(p.runs().unwrap().len(), 3);
        assert!(p.put_run("00000004", &Value::Null).is_err());
        set_baseline(&ws, "00000003").unwrap();
        assert_eq!(p.meta(BASELINE).unwrap().as_deref(), Some("00000003"));
        // The store was deleted: a new history does not mix with the old copy.
        let fresh = MemStore::default();
        assert!(!begin(&ws, &fresh));
        fresh
            .put_run("00000001", &serde_json::json!({"new": true}))
            .unwrap();
        catch_up::<Value>(&ws, &fresh, None, false).unwrap();
        assert_eq!(p.runs().unwrap().len(), 1);
        assert_eq!(p.meta(BASELINE).unwrap(), None);
    }
}
