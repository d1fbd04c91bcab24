//! [`SledStore`]: the on-disk store, a sled database in one directory.

use std::path::{Path, PathBuf};

use serde::Serialize;
use sled::Transactional;

use super::api::{BATCH, Store};
use super::error::StoreError;
use super::record::{Outcome, StageRecord, StatEntry, cacheable, worth_flushing};

/// The schema version written to (and expected in) the `meta` tree. Version 2 keeps each
/// run record in a tree of its own (see [`RUN_TREE`]); a version 1 store is read as it is
/// (its records in `runs` stay readable) and marked 2 on open, so that a binary that
/// knows only version 1 refuses it instead of misreading the new records.
pub const SCHEMA_VERSION: u32 = 2;

/// The schema version 2 upgrades in place.
const SCHEMA_V1: &[u8] = b"1";

/// Where a run record is kept: the tree `run:ID`, under [`RUN_BODY`]; `runs` maps the id
/// to an empty value. sled keeps up to 16 keys in a leaf and reads a leaf whole, so with
/// the records themselves in `runs` every run read the last (up to) 16 records back to
/// find the next id and to insert its own: at 100,000 stages a record is ~27 MB, and the
/// memory of a run grew with the history (0.7 to 1.9 GB over 10 runs).
const RUN_TREE: &str = "run:";
const RUN_BODY: &[u8] = b"record";

pub(super) const SCHEMA_KEY: &[u8] = b"schema_version";

/// How long [`SledStore::open`] waits for a lock sled is still letting go of.
const RELOCK_WAIT: std::time::Duration = std::time::Duration::from_millis(500);

/// The on-disk [`Store`], a sled database in one directory.
///
/// `put_record` writes `last`, `last_ok` and `cache` in one sled transaction
/// over the three trees (all or nothing), then flushes if the stage was
/// costly ([`worth_flushing`]); `put_records` does the same for up to
/// [`BATCH`] records per transaction (a transaction seals and writes a log
/// buffer and wakes sled's I/O threads: one per record was a third of the
/// coordinator's CPU in a wide run). `put_run` and
/// `remove_cached` flush too; `put_stats`/`remove_stats` do not (the stat
/// cache is only an optimisation — call [`Store::flush`] when done).
pub struct SledStore {
    path: PathBuf,
    db: sled::Db,
    cache: sled::Tree,
    pub(super) last: sled::Tree,
    last_ok: sled::Tree,
    pub(super) stat: sled::Tree,
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
    ///
    /// A torn snapshot left by a kill -9 (`snap.*.generating`, which sled 0.34 would read
    /// as corrupt) is deleted first; see `torn.rs`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        super::torn::remove_torn_snapshots(dir).map_err(|e| StoreError::Sled {
            path: dir.to_path_buf(),
            source: sled::Error::Io(e),
        })?;
        let path = dir.to_path_buf();
        let config = sled::Config::new()
            .path(dir)
            // Records are small and read once per run: a small page cache bounds memory
            // in long-lived processes (`mlp watch`).
            .cache_capacity(16 * 1024 * 1024);
        // sled lets go of its file lock a moment after the last handle is dropped (an I/O
        // thread of its own may still hold the log): a reopen in the same process right
        // after a close can find it still locked. Wait that moment out.
        let deadline = std::time::Instant::now() + RELOCK_WAIT;
        let db = loop {
            match config.open() {
                Ok(db) => break db,
                Err(e) if is_lock_error(&e) && std::time::Instant::now() < deadline => {
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                Err(e) if is_lock_error(&e) => return Err(StoreError::Locked { path }),
                Err(source) => return Err(StoreError::Sled { path, source }),
            }
        };
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
            Some(v) if v.as_ref() == SCHEMA_V1 => {
                meta.insert(SCHEMA_KEY, expected.as_bytes())
                    .map_err(sled_err)?;
                db.flush().map_err(sled_err)?;
            }
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

    /// A transaction's outcome as the store's: we never abort one ourselves, so only a
    /// storage error is an error.
    fn committed(
        &self,
        res: sled::transaction::TransactionResult<(), ()>,
    ) -> Result<(), StoreError> {
        match res {
            Err(sled::transaction::TransactionError::Storage(e)) => Err(self.sled_err(e)),
            Ok(()) | Err(sled::transaction::TransactionError::Abort(())) => Ok(()),
        }
    }

    /// The run record `runs` has `value` for: an empty value points to the run's own tree
    /// (schema 2); anything else is the record itself (schema 1).
    fn run_body(&self, id: &str, value: &[u8]) -> Result<serde_json::Value, StoreError> {
        let what = format!("run {id:?}");
        if !value.is_empty() {
            return self.decode_json(&what, value);
        }
        let tree = self
            .db
            .open_tree(format!("{RUN_TREE}{id}"))
            .map_err(|e| self.sled_err(e))?;
        match tree.get(RUN_BODY).map_err(|e| self.sled_err(e))? {
            Some(body) => self.decode_json(&what, &body),
            None => Err(StoreError::Corrupt {
                path: self.path.clone(),
                what,
                detail: "the run is listed, but its record is missing".into(),
            }),
        }
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
        self.put_records(std::slice::from_ref(rec))
    }

    fn put_records(&self, recs: &[StageRecord]) -> Result<(), StoreError> {
        for chunk in recs.chunks(BATCH) {
            let encoded = chunk
                .iter()
                .map(|r| Ok((r, encode_json("stage record", r)?)))
                .collect::<Result<Vec<_>, StoreError>>()?;
            let res: sled::transaction::TransactionResult<(), ()> =
                (&self.last, &self.last_ok, &self.cache).transaction(|(last, last_ok, cache)| {
                    for (rec, bytes) in &encoded {
                        let ok = rec.outcome == Outcome::Succeeded && !rec.fallback_used;
                        let keep = cacheable(&rec.outcome) && !rec.fallback_used;
                        last.insert(rec.stage.as_bytes(), bytes.as_slice())?;
                        if ok {
                            last_ok.insert(rec.stage.as_bytes(), bytes.as_slice())?;
                        }
                        if keep {
                            cache.insert(rec.identity.as_bytes(), bytes.as_slice())?;
                        }
                    }
                    Ok(())
                });
            self.committed(res)?;
        }
        if recs.iter().any(worth_flushing) {
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
        self.put_run_json(id, &bytes)
    }

    /// The record goes into the run's own tree and the id into `runs`, in one
    /// transaction: all or nothing. (A kill before it commits can leave the tree empty;
    /// the next run takes the same id and fills it.)
    fn put_run_json(&self, id: &str, json: &[u8]) -> Result<(), StoreError> {
        let body = self
            .db
            .open_tree(format!("{RUN_TREE}{id}"))
            .map_err(|e| self.sled_err(e))?;
        let res: sled::transaction::TransactionResult<(), ()> =
            (&self.runs, &body).transaction(|(runs, body)| {
                body.insert(RUN_BODY, json)?;
                runs.insert(id.as_bytes(), &[] as &[u8])?;
                Ok(())
            });
        self.committed(res)?;
        self.flush_db()
    }

    fn run(&self, id: &str) -> Result<Option<serde_json::Value>, StoreError> {
        match self.runs.get(id.as_bytes()).map_err(|e| self.sled_err(e))? {
            Some(v) => Ok(Some(self.run_body(id, &v)?)),
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
            let val = self.run_body(&id, &v)?;
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
