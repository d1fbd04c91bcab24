//! The [`StatCache`]: a file's stat fingerprint and digest by workspace-relative path.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use crate::store::StatEntry;

#[derive(Default)]
struct StatInner {
    map: HashMap<String, StatEntry>,
    dirty: HashSet<String>,
    removed: HashSet<String>,
}

/// The in-memory stat cache: workspace-relative path → [`StatEntry`], plus
/// what changed since it was loaded (to write back with
/// [`crate::store::Store::put_stats`] / `remove_stats`).
#[derive(Default)]
pub struct StatCache {
    inner: Mutex<StatInner>,
}

impl StatCache {
    /// A cache holding `entries` (e.g. from [`crate::store::Store::stat_entries`]); nothing dirty.
    pub fn new(entries: Vec<(String, StatEntry)>) -> Self {
        StatCache {
            inner: Mutex::new(StatInner {
                map: entries.into_iter().collect(),
                ..StatInner::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, StatInner> {
        // Every critical section is a single map operation: never half-done.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry for a path.
    pub fn get(&self, path: &str) -> Option<StatEntry> {
        self.lock().map.get(path).cloned()
    }

    /// Inserts or replaces an entry (marks it dirty if it changed).
    pub fn insert(&self, path: &str, entry: StatEntry) {
        let mut g = self.lock();
        if g.map.get(path) != Some(&entry) {
            g.map.insert(path.to_string(), entry);
            g.removed.remove(path);
            g.dirty.insert(path.to_string());
        }
    }

    /// Removes an entry (remembered in [`StatCache::removed`]).
    pub fn remove(&self, path: &str) {
        let mut g = self.lock();
        if g.map.remove(path).is_some() {
            g.dirty.remove(path);
            g.removed.insert(path.to_string());
        }
    }

    /// Entries inserted or changed since loading (or [`StatCache::mark_clean`]), sorted by path.
    pub fn dirty(&self) -> Vec<(String, StatEntry)> {
        let g = self.lock();
        let mut out: Vec<(String, StatEntry)> = g
            .dirty
            .iter()
            .filter_map(|k| g.map.get(k).map(|e| (k.clone(), e.clone())))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Paths removed since loading (or [`StatCache::mark_clean`]), sorted.
    pub fn removed(&self) -> Vec<String> {
        let mut out: Vec<String> = self.lock().removed.iter().cloned().collect();
        out.sort();
        out
    }

    /// Forgets what is dirty/removed (after writing it back).
    pub fn mark_clean(&self) {
        let mut g = self.lock();
        g.dirty.clear();
        g.removed.clear();
    }

    /// Removes entries whose file no longer exists under `root`.
    pub fn prune_missing(&self, root: &Path) {
        let keys: Vec<String> = self.lock().map.keys().cloned().collect();
        for k in keys {
            if fs::metadata(root.join(&k)).is_err() {
                self.remove(&k);
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
