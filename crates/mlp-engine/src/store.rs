//! The state store: run-cache records, the latest record of each stage, the
//! stat cache and the run history, behind the small [`Store`] trait.
//!
//! [`SledStore`] is the on-disk implementation (a sled database, normally
//! `<workspace>/.mlp/state`); [`MemStore`] is an in-memory one for tests.
//!
//! Sled trees used by [`SledStore`]:
//!
//! | tree      | key                  | value                          |
//! |-----------|----------------------|--------------------------------|
//! | `cache`   | identity (hex)       | [`StageRecord`] (JSON)         |
//! | `last`    | stage name           | [`StageRecord`] (JSON)         |
//! | `last_ok` | stage name           | [`StageRecord`] (JSON)         |
//! | `stat`    | workspace-rel. path  | [`StatEntry`] (postcard)       |
//! | `runs`    | run id               | run summary (JSON)             |
//! | `meta`    | `schema_version`     | decimal schema version         |
//!
//! Only one process can hold a sled database open at a time (sled takes an
//! exclusive `flock` on its `db` file); a second [`SledStore::open`] of the
//! same directory, even from the same process while the first handle is
//! alive, fails with [`StoreError::Locked`].

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use serde::{Deserialize, Serialize};
use sled::Transactional;

/// A blake3 digest.
pub type Digest = [u8; 32];

/// The schema version written to (and expected in) the `meta` tree.
pub const SCHEMA_VERSION: u32 = 1;

const SCHEMA_KEY: &[u8] = b"schema_version";

/// One output of a stage as it was recorded after the stage ran.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OutputRecord {
    /// Workspace-relative, '/'-separated path.
    pub path: String,
    /// Hex blake3 digest of the file, or of the directory manifest.
    pub digest: String,
    /// Size in bytes (total size of the files for a directory).
    pub size: u64,
    /// Whether the output is a directory.
    pub is_dir: bool,
}

/// How a stage run ended.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// The command exited 0 and its outputs were recorded.
    Succeeded,
    /// The command exited non-zero or was killed by a signal.
    Failed {
        /// Exit code, if it exited.
        code: Option<i32>,
        /// Signal number, if it was killed by one.
        signal: Option<i32>,
    },
    /// The command exceeded its time limit.
    TimedOut,
    /// The run was interrupted (Ctrl-C / SIGTERM).
    Interrupted,
    /// The command succeeded but a post-run check (e.g. a missing output) failed.
    CheckFailed {
        /// What went wrong.
        message: String,
    },
}

/// Everything recorded about one run of one stage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StageRecord {
    /// Stage name.
    pub stage: String,
    /// Hex digest of the stage's identity key.
    pub identity: String,
    /// The canonical identity key itself (so `mlp explain` can diff its parts).
    pub key: serde_json::Value,
    /// The recorded outputs.
    pub outputs: Vec<OutputRecord>,
    /// How the run ended.
    pub outcome: Outcome,
    /// Id of the `mlp run` this stage ran in.
    pub run_id: String,
    /// Start time, unix epoch milliseconds.
    pub started_ms: u64,
    /// End time, unix epoch milliseconds.
    pub ended_ms: u64,
    /// Number of attempts (retries + 1).
    pub attempts: u32,
    /// User + system CPU time of the command, milliseconds.
    pub cpu_ms: u64,
    /// Peak resident set size of the command, KiB.
    pub max_rss_kb: u64,
    /// Metrics reported by the stage (`Null` when none).
    /// Metrics files read after success: `{name: parsed content}`.
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// The `fallback` command produced the outputs: a degraded result, not recorded as
    /// the stage's success (the next run tries the command again).
    #[serde(default)]
    pub fallback_used: bool,
    /// Digest of the checks and gates the record was judged under (empty: none).
    #[serde(default)]
    pub checks: String,
    /// Why it failed, as the run said it (empty on success).
    #[serde(default)]
    pub reason: String,
}

/// One stat-cache entry: a file's stat fingerprint and its content digest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StatEntry {
    /// File size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Status-change time, nanoseconds since the epoch.
    pub ctime_ns: i128,
    /// Inode number.
    pub ino: u64,
    /// blake3 of the file's bytes.
    pub digest: Digest,
}

/// Errors from a [`Store`].
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// Another process has the database open.
    #[error(
        "the state store {} is in use by another process (is another mlp command running in this workspace?); wait for it to finish",
        path.display()
    )]
    Locked {
        /// The store directory.
        path: PathBuf,
    },
    /// The store was written by a different (unknown) schema version.
    #[error(
        "the state store {} has schema version {found}, but this mlp understands version {expected}; upgrade mlp, or delete {} to start afresh (this forgets the run cache and history)",
        path.display(),
        path.display()
    )]
    Schema {
        /// The store directory.
        path: PathBuf,
        /// The version found on disk.
        found: String,
        /// The version this build expects.
        expected: u32,
    },
    /// A value in the store could not be decoded.
    #[error(
        "corrupt {what} in the state store {}: {detail}; delete {} to start afresh (this forgets the run cache and history)",
        path.display(),
        path.display()
    )]
    Corrupt {
        /// The store directory.
        path: PathBuf,
        /// What was being decoded.
        what: String,
        /// The decoder's message.
        detail: String,
    },
    /// A value could not be encoded (should not happen).
    #[error("could not encode {what} for the state store: {detail}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// The encoder's message.
        detail: String,
    },
    /// Any other error from sled (I/O, corruption, ...).
    #[error(
        "the state store {} failed: {source}; check the disk (space, permissions), or delete {} to start afresh",
        path.display(),
        path.display()
    )]
    Sled {
        /// The store directory.
        path: PathBuf,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
}

/// The state store used by the engine.
pub trait Store: Send + Sync {
    /// Run-cache lookup: the latest *successful* record for an identity.
    fn cached(&self, identity: &str) -> Result<Option<StageRecord>, StoreError>;
    /// Latest record of a stage by name, whatever its outcome (for status/explain).
    fn last(&self, stage: &str) -> Result<Option<StageRecord>, StoreError>;
    /// Latest successful record of a stage by name.
    fn last_success(&self, stage: &str) -> Result<Option<StageRecord>, StoreError>;
    /// Writes a record: always updates `last`; on [`Outcome::Succeeded`] also
    /// updates the run-cache entry for its identity and `last_success`.
    /// Atomic when it returns. Durable when it returns if the stage's command ran
    /// for [`DURABLE_AFTER_MS`] or more (see [`worth_flushing`]); otherwise with
    /// the next [`Store::flush`].
    fn put_record(&self, rec: &StageRecord) -> Result<(), StoreError>;
    /// The whole stat cache.
    fn stat_entries(&self) -> Result<Vec<(String, StatEntry)>, StoreError>;
    /// Inserts or replaces stat-cache entries in one batch.
    fn put_stats(&self, entries: &[(String, StatEntry)]) -> Result<(), StoreError>;
    /// Removes stat-cache entries in one batch.
    fn remove_stats(&self, paths: &[String]) -> Result<(), StoreError>;
    /// Records a run in the history (ids must sort by time; the caller makes them so).
    fn put_run(&self, id: &str, run: &serde_json::Value) -> Result<(), StoreError>;
    /// One run of the history.
    fn run(&self, id: &str) -> Result<Option<serde_json::Value>, StoreError>;
    /// The whole run history, oldest first.
    fn runs(&self) -> Result<Vec<(String, serde_json::Value)>, StoreError>;
    /// The id of the latest run, without reading the history.
    fn last_run_id(&self) -> Result<Option<String>, StoreError>;
    /// Every run-cache record (for gc).
    fn all_cached(&self) -> Result<Vec<StageRecord>, StoreError>;
    /// Removes a run-cache entry.
    fn remove_cached(&self, identity: &str) -> Result<(), StoreError>;
    /// Makes everything written so far durable.
    fn flush(&self) -> Result<(), StoreError>;
    /// A small named value (e.g. `baseline`: the promoted run's id).
    fn meta(&self, key: &str) -> Result<Option<String>, StoreError>;
    /// Sets a named value, durably.
    fn put_meta(&self, key: &str, value: &str) -> Result<(), StoreError>;
}

/// A record of a command that ran at least this long (milliseconds) is flushed to
/// disk before [`Store::put_record`] returns.
pub const DURABLE_AFTER_MS: u64 = 1000;

/// Whether [`Store::put_record`] makes a record durable at once. A flush waits for
/// the disk (0.2–0.5 ms per record on the benchmark machine, `bench/RESULTS.md`), on
/// the coordinator's critical path: in a chain of one-line stages that was a tenth
/// of each stage's time. So only the record of a command that ran for a second or
/// more (redoing it would cost more than the flush) is flushed at once. The others
/// reach the disk with the next flush: the run's own at its end, or sled's
/// background flush every 500 ms. A crash can then lose the records of cheap
/// stages that finished in the last half second; they run again (or are
/// restored) next time, which is what a missing record means. Restores
/// (`attempts == 0`) and failures are never worth a flush.
pub fn worth_flushing(rec: &StageRecord) -> bool {
    rec.attempts > 0
        && cacheable(&rec.outcome)
        && rec.ended_ms.saturating_sub(rec.started_ms) >= DURABLE_AFTER_MS
}

/// A record's outputs are worth keeping in the run-cache: the command succeeded (a failed
/// check or gate judges the outputs, it does not make them wrong).
fn cacheable(o: &Outcome) -> bool {
    matches!(o, Outcome::Succeeded | Outcome::CheckFailed { .. })
}

// ---------------------------------------------------------------------------
// SledStore
// ---------------------------------------------------------------------------

/// The on-disk [`Store`], a sled database in one directory.
///
/// `put_record` writes `last`, `last_ok` and `cache` in one sled transaction
/// over the three trees (all or nothing), then flushes if the stage was
/// costly ([`worth_flushing`]). `put_run` and
/// `remove_cached` flush too; `put_stats`/`remove_stats` do not (the stat
/// cache is only an optimisation — call [`Store::flush`] when done).
pub struct SledStore {
    path: PathBuf,
    db: sled::Db,
    cache: sled::Tree,
    last: sled::Tree,
    last_ok: sled::Tree,
    stat: sled::Tree,
    runs: sled::Tree,
    meta: sled::Tree,
}

impl std::fmt::Debug for SledStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SledStore")
            .field("path", &self.path)
            .finish()
    }
}

/// Whether a sled error means another process holds the database's lock.
fn is_lock_error(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock
                || io.to_string().contains("could not acquire lock")
        }
        _ => false,
    }
}

impl SledStore {
    /// Opens (creating if needed) the store in `dir`.
    ///
    /// Fails with [`StoreError::Locked`] if another process (or another live
    /// handle in this process) has it open, and with [`StoreError::Schema`]
    /// if it was written by an unknown schema version.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.to_path_buf();
        let db = sled::Config::new()
            .path(dir)
            // Records are small and read once per run: a small page cache bounds memory
            // in long-lived processes (`mlp watch`).
            .cache_capacity(16 * 1024 * 1024)
            .open()
            .map_err(|e| {
                if is_lock_error(&e) {
                    StoreError::Locked { path: path.clone() }
                } else {
                    StoreError::Sled {
                        path: path.clone(),
                        source: e,
                    }
                }
            })?;
        let sled_err = |source| StoreError::Sled {
            path: path.clone(),
            source,
        };
        let tree = |name: &str| db.open_tree(name).map_err(sled_err);
        let meta = tree("meta")?;
        let store = SledStore {
            cache: tree("cache")?,
            last: tree("last")?,
            last_ok: tree("last_ok")?,
            stat: tree("stat")?,
            runs: tree("runs")?,
            meta: meta.clone(),
            db: db.clone(),
            path: path.clone(),
        };
        let expected = SCHEMA_VERSION.to_string();
        match meta.get(SCHEMA_KEY).map_err(sled_err)? {
            Some(v) if v.as_ref() == expected.as_bytes() => {}
            Some(v) => {
                return Err(StoreError::Schema {
                    path,
                    found: String::from_utf8_lossy(&v).into_owned(),
                    expected: SCHEMA_VERSION,
                });
            }
            None => {
                let has_data = [
                    &store.cache,
                    &store.last,
                    &store.last_ok,
                    &store.stat,
                    &store.runs,
                ]
                .iter()
                .any(|t| !t.is_empty());
                if has_data {
                    return Err(StoreError::Schema {
                        path,
                        found: "none (data without a version)".into(),
                        expected: SCHEMA_VERSION,
                    });
                }
                meta.insert(SCHEMA_KEY, expected.as_bytes())
                    .map_err(sled_err)?;
                db.flush().map_err(sled_err)?;
            }
        }
        Ok(store)
    }

    /// The store directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn sled_err(&self, source: sled::Error) -> StoreError {
        StoreError::Sled {
            path: self.path.clone(),
            source,
        }
    }

    fn decode_json<T: serde::de::DeserializeOwned>(
        &self,
        what: &str,
        bytes: &[u8],
    ) -> Result<T, StoreError> {
        serde_json::from_slice(bytes).map_err(|e| StoreError::Corrupt {
            path: self.path.clone(),
            what: what.to_string(),
            detail: e.to_string(),
        })
    }

    fn get_record(&self, tree: &sled::Tree, key: &str) -> Result<Option<StageRecord>, StoreError> {
        match tree.get(key.as_bytes()).map_err(|e| self.sled_err(e))? {
            Some(v) => Ok(Some(self.decode_json(&format!("record for {key:?}"), &v)?)),
            None => Ok(None),
        }
    }

    fn flush_db(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| self.sled_err(e))?;
        Ok(())
    }
}

fn encode_json<T: Serialize>(what: &str, v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Encode {
        what: what.to_string(),
        detail: e.to_string(),
    })
}

impl Store for SledStore {
    fn cached(&self, identity: &str) -> Result<Option<StageRecord>, StoreError> {
        self.get_record(&self.cache, identity)
    }

    fn last(&self, stage: &str) -> Result<Option<StageRecord>, StoreError> {
        self.get_record(&self.last, stage)
    }

    fn last_success(&self, stage: &str) -> Result<Option<StageRecord>, StoreError> {
        self.get_record(&self.last_ok, stage)
    }

    fn put_record(&self, rec: &StageRecord) -> Result<(), StoreError> {
        let bytes = encode_json("stage record", rec)?;
        let ok = rec.outcome == Outcome::Succeeded && !rec.fallback_used;
        let keep = cacheable(&rec.outcome) && !rec.fallback_used;
        let res: sled::transaction::TransactionResult<(), ()> =
            (&self.last, &self.last_ok, &self.cache).transaction(|(last, last_ok, cache)| {
                last.insert(rec.stage.as_bytes(), bytes.as_slice())?;
                if ok {
                    last_ok.insert(rec.stage.as_bytes(), bytes.as_slice())?;
                }
                if keep {
                    cache.insert(rec.identity.as_bytes(), bytes.as_slice())?;
                }
                Ok(())
            });
        match res {
            Ok(()) => {}
            Err(sled::transaction::TransactionError::Storage(e)) => return Err(self.sled_err(e)),
            // We never abort the transaction ourselves.
            Err(sled::transaction::TransactionError::Abort(())) => {}
        }
        if worth_flushing(rec) {
            self.flush_db()?;
        }
        Ok(())
    }

    fn stat_entries(&self) -> Result<Vec<(String, StatEntry)>, StoreError> {
        let mut out = Vec::with_capacity(self.stat.len());
        for kv in self.stat.iter() {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            let key = String::from_utf8(k.to_vec()).map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                what: "stat-cache key".into(),
                detail: e.to_string(),
            })?;
            let entry: StatEntry = postcard::from_bytes(&v).map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                what: format!("stat-cache entry for {key:?}"),
                detail: e.to_string(),
            })?;
            out.push((key, entry));
        }
        Ok(out)
    }

    fn put_stats(&self, entries: &[(String, StatEntry)]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for (k, e) in entries {
            let bytes = postcard::to_stdvec(e).map_err(|err| StoreError::Encode {
                what: format!("stat-cache entry for {k:?}"),
                detail: err.to_string(),
            })?;
            batch.insert(k.as_bytes(), bytes);
        }
        self.stat.apply_batch(batch).map_err(|e| self.sled_err(e))
    }

    fn remove_stats(&self, paths: &[String]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for p in paths {
            batch.remove(p.as_bytes());
        }
        self.stat.apply_batch(batch).map_err(|e| self.sled_err(e))
    }

    fn put_run(&self, id: &str, run: &serde_json::Value) -> Result<(), StoreError> {
        let bytes = encode_json("run summary", run)?;
        self.runs
            .insert(id.as_bytes(), bytes)
            .map_err(|e| self.sled_err(e))?;
        self.flush_db()
    }

    fn run(&self, id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        match self.runs.get(id.as_bytes()).map_err(|e| self.sled_err(e))? {
            Some(v) => Ok(Some(self.decode_json(&format!("run {id:?}"), &v)?)),
            None => Ok(None),
        }
    }

    fn last_run_id(&self) -> Result<Option<String>, StoreError> {
        let last = self.runs.last().map_err(|e| self.sled_err(e))?;
        Ok(last.map(|(k, _)| String::from_utf8_lossy(&k).into_owned()))
    }

    fn runs(&self) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        let mut out = Vec::new();
        for kv in self.runs.iter() {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            let id = String::from_utf8_lossy(&k).into_owned();
            let val = self.decode_json(&format!("run {id:?}"), &v)?;
            out.push((id, val));
        }
        Ok(out)
    }

    fn all_cached(&self) -> Result<Vec<StageRecord>, StoreError> {
        let mut out = Vec::new();
        for kv in self.cache.iter() {
            let (k, v) = kv.map_err(|e| self.sled_err(e))?;
            let what = format!("run-cache record {:?}", String::from_utf8_lossy(&k));
            out.push(self.decode_json(&what, &v)?);
        }
        Ok(out)
    }

    fn remove_cached(&self, identity: &str) -> Result<(), StoreError> {
        self.cache
            .remove(identity.as_bytes())
            .map_err(|e| self.sled_err(e))?;
        self.flush_db()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.flush_db()
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        let v = self
            .meta
            .get(key.as_bytes())
            .map_err(|e| self.sled_err(e))?;
        Ok(v.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    fn put_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.meta
            .insert(key.as_bytes(), value.as_bytes())
            .map_err(|e| self.sled_err(e))?;
        self.flush_db()
    }
}

// ---------------------------------------------------------------------------
// MemStore
// ---------------------------------------------------------------------------

#[derive(Default)]
struct MemInner {
    cache: BTreeMap<String, StageRecord>,
    last: BTreeMap<String, StageRecord>,
    last_ok: BTreeMap<String, StageRecord>,
    stat: BTreeMap<String, StatEntry>,
    runs: BTreeMap<String, serde_json::Value>,
    meta: BTreeMap<String, String>,
}

/// An in-memory [`Store`] (for tests and dry runs). One mutex guards all
/// maps, so every operation is atomic.
#[derive(Default)]
pub struct MemStore {
    inner: Mutex<MemInner>,
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, MemInner> {
        // A panic in another thread cannot leave the maps half-updated
        // (each operation is a few inserts), so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Store for MemStore {
    fn cached(&self, identity: &str) -> Result<Option<StageRecord>, StoreError> {
        Ok(self.lock().cache.get(identity).cloned())
    }

    fn last(&self, stage: &str) -> Result<Option<StageRecord>, StoreError> {
        Ok(self.lock().last.get(stage).cloned())
    }

    fn last_success(&self, stage: &str) -> Result<Option<StageRecord>, StoreError> {
        Ok(self.lock().last_ok.get(stage).cloned())
    }

    fn put_record(&self, rec: &StageRecord) -> Result<(), StoreError> {
        let mut g = self.lock();
        g.last.insert(rec.stage.clone(), rec.clone());
        if rec.outcome == Outcome::Succeeded && !rec.fallback_used {
            g.last_ok.insert(rec.stage.clone(), rec.clone());
        }
        if cacheable(&rec.outcome) && !rec.fallback_used {
            g.cache.insert(rec.identity.clone(), rec.clone());
        }
        Ok(())
    }

    fn stat_entries(&self) -> Result<Vec<(String, StatEntry)>, StoreError> {
        Ok(self
            .lock()
            .stat
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn put_stats(&self, entries: &[(String, StatEntry)]) -> Result<(), StoreError> {
        let mut g = self.lock();
        for (k, v) in entries {
            g.stat.insert(k.clone(), v.clone());
        }
        Ok(())
    }

    fn remove_stats(&self, paths: &[String]) -> Result<(), StoreError> {
        let mut g = self.lock();
        for p in paths {
            g.stat.remove(p);
        }
        Ok(())
    }

    fn put_run(&self, id: &str, run: &serde_json::Value) -> Result<(), StoreError> {
        self.lock().runs.insert(id.to_string(), run.clone());
        Ok(())
    }

    fn run(&self, id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        Ok(self.lock().runs.get(id).cloned())
    }

    fn last_run_id(&self) -> Result<Option<String>, StoreError> {
        Ok(self.lock().runs.keys().next_back().cloned())
    }

    fn runs(&self) -> Result<Vec<(String, serde_json::Value)>, StoreError> {
        Ok(self
            .lock()
            .runs
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn all_cached(&self) -> Result<Vec<StageRecord>, StoreError> {
        Ok(self.lock().cache.values().cloned().collect())
    }

    fn remove_cached(&self, identity: &str) -> Result<(), StoreError> {
        self.lock().cache.remove(identity);
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn meta(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(self.lock().meta.get(key).cloned())
    }

    fn put_meta(&self, key: &str, value: &str) -> Result<(), StoreError> {
        self.lock().meta.insert(key.to_string(), value.to_string());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec(stage: &str, identity: &str, outcome: Outcome, run: &str) -> StageRecord {
        StageRecord {
            stage: stage.into(),
            identity: identity.into(),
            key: json!({"cmd": format!("run {stage}"), "deps": {"a.txt": identity}}),
            outputs: vec![OutputRecord {
                path: format!("out/{stage}.bin"),
                digest: "ab".repeat(32),
                size: 42,
                is_dir: false,
            }],
            outcome,
            run_id: run.into(),
            started_ms: 1_700_000_000_000,
            ended_ms: 1_700_000_001_000,
            attempts: 1,
            cpu_ms: 900,
            max_rss_kb: 1024,
            metrics: serde_json::Value::Null,
            fallback_used: false,
            checks: String::new(),
            reason: String::new(),
        }
    }

    fn stat(n: u8) -> StatEntry {
        StatEntry {
            size: u64::from(n) * 10,
            mtime_ns: 1_700_000_000_123_456_789 + i128::from(n),
            ctime_ns: -5,
            ino: u64::from(n) + 1000,
            digest: [n; 32],
        }
    }

    /// The behaviour every [`Store`] must have.
    fn contract(store: &dyn Store) {
        // Empty store.
        assert_eq!(store.cached("id1").unwrap(), None);
        assert_eq!(store.last("train").unwrap(), None);
        assert_eq!(store.last_success("train").unwrap(), None);
        assert!(store.all_cached().unwrap().is_empty());
        assert!(store.stat_entries().unwrap().is_empty());
        assert!(store.runs().unwrap().is_empty());

        // A success fills last, last_success and the run cache.
        let ok1 = rec("train", "id1", Outcome::Succeeded, "r1");
        store.put_record(&ok1).unwrap();
        assert_eq!(store.cached("id1").unwrap(), Some(ok1.clone()));
        assert_eq!(store.last("train").unwrap(), Some(ok1.clone()));
        assert_eq!(store.last_success("train").unwrap(), Some(ok1.clone()));

        // A failure only updates last.
        let failed = rec(
            "train",
            "id2",
            Outcome::Failed {
                code: Some(2),
                signal: None,
            },
            "r2",
        );
        store.put_record(&failed).unwrap();
        assert_eq!(store.last("train").unwrap(), Some(failed.clone()));
        assert_eq!(store.last_success("train").unwrap(), Some(ok1.clone()));
        assert_eq!(store.cached("id2").unwrap(), None);
        for outcome in [Outcome::TimedOut, Outcome::Interrupted] {
            let r = rec("train", "id3", outcome, "r3");
            store.put_record(&r).unwrap();
            assert_eq!(store.last("train").unwrap(), Some(r));
            assert_eq!(store.cached("id3").unwrap(), None);
        }
        // A failed check or gate judged good outputs: they stay in the run-cache (to be
        // judged again), but it is not a success.
        let judged = rec(
            "train",
            "id3b",
            Outcome::CheckFailed {
                message: "gate failed".into(),
            },
            "r3",
        );
        store.put_record(&judged).unwrap();
        assert_eq!(store.last("train").unwrap(), Some(judged.clone()));
        assert_eq!(store.cached("id3b").unwrap(), Some(judged.clone()));
        assert_eq!(store.last_success("train").unwrap(), Some(ok1.clone()));
        // Outputs a fallback made are not the stage's success.
        let mut fb = rec("train", "id3c", Outcome::Succeeded, "r3");
        fb.fallback_used = true;
        store.put_record(&fb).unwrap();
        assert_eq!(store.last("train").unwrap(), Some(fb.clone()));
        assert_eq!(store.cached("id3c").unwrap(), None);
        assert_eq!(store.last_success("train").unwrap(), Some(ok1.clone()));

        // A later success of another identity replaces last_success; both
        // identities stay in the run cache.
        let mut ok2 = rec("train", "id4", Outcome::Succeeded, "r4");
        ok2.metrics = json!({"acc": 0.9});
        store.put_record(&ok2).unwrap();
        assert_eq!(store.last_success("train").unwrap(), Some(ok2.clone()));
        assert_eq!(store.cached("id1").unwrap(), Some(ok1.clone()));
        assert_eq!(store.cached("id4").unwrap(), Some(ok2.clone()));
        // Records of other stages are independent.
        let prep = rec("prep", "id5", Outcome::Succeeded, "r4");
        store.put_record(&prep).unwrap();
        assert_eq!(store.last("train").unwrap(), Some(ok2.clone()));
        assert_eq!(store.last("prep").unwrap(), Some(prep.clone()));
        let mut all: Vec<String> = store
            .all_cached()
            .unwrap()
            .into_iter()
            .map(|r| r.identity)
            .collect();
        all.sort();
        assert_eq!(all, ["id1", "id3b", "id4", "id5"]);

        // Removing a run-cache entry leaves last/last_success alone.
        store.remove_cached("id4").unwrap();
        store.remove_cached("does-not-exist").unwrap();
        assert_eq!(store.cached("id4").unwrap(), None);
        assert_eq!(store.last_success("train").unwrap(), Some(ok2));
        assert_eq!(store.all_cached().unwrap().len(), 3);

        // Stats: batch put, overwrite, remove.
        store
            .put_stats(&[
                ("b/x.csv".into(), stat(2)),
                ("a.txt".into(), stat(1)),
                ("c".into(), stat(3)),
            ])
            .unwrap();
        store.put_stats(&[("c".into(), stat(4))]).unwrap();
        let mut got = store.stat_entries().unwrap();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            got,
            vec![
                ("a.txt".to_string(), stat(1)),
                ("b/x.csv".to_string(), stat(2)),
                ("c".to_string(), stat(4)),
            ]
        );
        store
            .remove_stats(&["a.txt".into(), "nope".into()])
            .unwrap();
        let mut got = store.stat_entries().unwrap();
        got.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].0, "b/x.csv");

        // Runs come back oldest first (ids sort by time).
        store
            .put_run("20240102T000000-0002", &json!({"n": 2}))
            .unwrap();
        store
            .put_run("20240101T000000-0001", &json!({"n": 1}))
            .unwrap();
        store
            .put_run("20240103T000000-0003", &json!({"n": 3}))
            .unwrap();
        let runs = store.runs().unwrap();
        let ids: Vec<&str> = runs.iter().map(|(id, _)| id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "20240101T000000-0001",
                "20240102T000000-0002",
                "20240103T000000-0003"
            ]
        );
        assert_eq!(
            store.run("20240102T000000-0002").unwrap(),
            Some(json!({"n": 2}))
        );
        assert_eq!(store.run("nope").unwrap(), None);
        store.flush().unwrap();
    }

    #[test]
    fn mem_store_contract() {
        contract(&MemStore::new());
    }

    #[test]
    fn sled_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = SledStore::open(&dir.path().join("state")).unwrap();
        contract(&store);
    }

    #[test]
    fn sled_store_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let r = rec("train", "id1", Outcome::Succeeded, "r1");
        {
            let store = SledStore::open(&path).unwrap();
            store.put_record(&r).unwrap();
            store.put_stats(&[("a".into(), stat(7))]).unwrap();
            store.put_run("r1", &json!({"ok": true})).unwrap();
            store.flush().unwrap();
        }
        let store = SledStore::open(&path).unwrap();
        assert_eq!(store.cached("id1").unwrap(), Some(r.clone()));
        assert_eq!(store.last("train").unwrap(), Some(r.clone()));
        assert_eq!(store.last_success("train").unwrap(), Some(r));
        assert_eq!(store.stat_entries().unwrap(), vec![("a".into(), stat(7))]);
        assert_eq!(store.run("r1").unwrap(), Some(json!({"ok": true})));
    }

    #[test]
    fn only_costly_successes_are_flushed_at_once() {
        // `rec` ran for 1 s: its record is worth a flush.
        let costly = rec("train", "id1", Outcome::Succeeded, "r1");
        assert!(worth_flushing(&costly));
        let cheap = StageRecord {
            ended_ms: costly.started_ms + DURABLE_AFTER_MS - 1,
            ..costly.clone()
        };
        assert!(!worth_flushing(&cheap));
        let restored = StageRecord {
            attempts: 0,
            ..costly.clone()
        };
        assert!(!worth_flushing(&restored));
        let failed = rec(
            "train",
            "id1",
            Outcome::Failed {
                code: Some(1),
                signal: None,
            },
            "r1",
        );
        assert!(!worth_flushing(&failed));
        // A clock that went backwards is not a long stage.
        let backwards = StageRecord {
            ended_ms: costly.started_ms - 5,
            ..costly
        };
        assert!(!worth_flushing(&backwards));
    }

    #[test]
    fn unflushed_records_survive_a_clean_close() {
        // Cheap records are not flushed by `put_record`; closing the store (as every
        // mlp process does when it ends) writes them out.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let mut recs = Vec::new();
        {
            let store = SledStore::open(&path).unwrap();
            for i in 0..50 {
                let mut r = rec(
                    &format!("s{i}"),
                    &format!("id{i}"),
                    Outcome::Succeeded,
                    "r1",
                );
                r.ended_ms = r.started_ms + 3;
                assert!(!worth_flushing(&r));
                store.put_record(&r).unwrap();
                recs.push(r);
            }
        }
        let store = SledStore::open(&path).unwrap();
        for r in &recs {
            assert_eq!(store.last_success(&r.stage).unwrap().as_ref(), Some(r));
            assert_eq!(store.cached(&r.identity).unwrap().as_ref(), Some(r));
        }
    }

    #[test]
    fn second_open_in_same_process_is_locked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        let first = SledStore::open(&path).unwrap();
        match SledStore::open(&path) {
            Err(StoreError::Locked { path: p }) => {
                assert_eq!(p, path);
                let msg = StoreError::Locked { path: p }.to_string();
                assert!(msg.contains(&path.display().to_string()), "{msg}");
            }
            Err(e) => panic!("expected Locked, got {e}"),
            Ok(_) => panic!("expected Locked, got a second handle"),
        }
        drop(first);
        // Once the first handle is gone the store opens again.
        SledStore::open(&path).unwrap();
    }

    #[test]
    fn unknown_schema_version_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        {
            let db = sled::open(&path).unwrap();
            db.open_tree("meta")
                .unwrap()
                .insert(SCHEMA_KEY, b"99".as_slice())
                .unwrap();
            db.flush().unwrap();
        }
        match SledStore::open(&path) {
            Err(e @ StoreError::Schema { .. }) => {
                let msg = e.to_string();
                assert!(msg.contains(&path.display().to_string()), "{msg}");
                assert!(msg.contains("99") && msg.contains("delete"), "{msg}");
            }
            Err(e) => panic!("expected Schema, got {e}"),
            Ok(_) => panic!("expected Schema error"),
        }
    }

    #[test]
    fn corrupt_value_is_an_error_not_a_panic() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state");
        {
            let store = SledStore::open(&path).unwrap();
            store.last.insert("train", b"{not json".as_slice()).unwrap();
            store.stat.insert("a", b"\xff".as_slice()).unwrap();
            store.flush().unwrap();
        }
        let store = SledStore::open(&path).unwrap();
        assert!(matches!(
            store.last("train"),
            Err(StoreError::Corrupt { .. })
        ));
        assert!(matches!(
            store.stat_entries(),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn outcome_json_shape() {
        let v = serde_json::to_value(Outcome::Failed {
            code: Some(1),
            signal: None,
        })
        .unwrap();
        assert_eq!(v, json!({"kind": "failed", "code": 1, "signal": null}));
        let v = serde_json::to_value(Outcome::CheckFailed {
            message: "m".into(),
        })
        .unwrap();
        assert_eq!(v, json!({"kind": "check_failed", "message": "m"}));
        // `metrics` may be absent in older records.
        let mut r = serde_json::to_value(rec("s", "i", Outcome::Succeeded, "r")).unwrap();
        r.as_object_mut().unwrap().remove("metrics");
        let back: StageRecord = serde_json::from_value(r).unwrap();
        assert_eq!(back.metrics, serde_json::Value::Null);
    }
}
