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

mod api;
mod disk;
mod error;
mod mem;
mod record;
#[cfg(test)]
mod tests;
mod torn;

pub use self::api::{BATCH, Store};
pub use self::disk::{SCHEMA_VERSION, SledStore};
pub use self::error::StoreError;
pub use self::mem::MemStore;
pub use self::record::{
    DURABLE_AFTER_MS, Digest, KeyJson, Outcome, OutputRecord, StageRecord, StatEntry,
    worth_flushing,
};
