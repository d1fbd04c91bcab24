//! The incremental engine: content hashing, the store, the object cache, the scheduler.

pub mod cache;
pub mod exec;
pub mod hash;
pub mod history;
pub mod identity;
pub mod inspect;
pub mod lock;
pub mod metrics;
pub mod run;
pub mod slurm;
pub mod snapshot;
pub mod store;
pub mod workspace;
