//! [`MemStore`]: an in-memory store for tests and dry runs.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

use super::api::Store;
use super::error::StoreError;
use super::record::{Outcome, StageRecord, StatEntry, cacheable};

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
