//! The [`Store`] trait: what the engine asks of the state store.

use super::error::StoreError;
use super::record::{StageRecord, StatEntry};

/// Records per transaction in [`Store::put_records`].
pub const BATCH: usize = 1024;

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
    /// Writes many records as [`Store::put_record`] does each, in as few atomic steps as
    /// the store allows (sled: one transaction per [`BATCH`] records), in order (a later
    /// record of the same stage wins). Durable when it returns if any of them is worth it.
    fn put_records(&self, recs: &[StageRecord]) -> Result<(), StoreError> {
        recs.iter().try_for_each(|r| self.put_record(r))
    }
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
