//! The incremental engine: content hashing, the store, the object cache, the scheduler.

pub mod cache;
pub mod control;
pub mod coordinator;
pub mod decide;
pub mod events;
pub mod exec;
pub mod executor;
pub mod hash;
pub mod history;
pub mod identity;
pub mod inspect;
pub mod judge;
pub mod lock;
pub mod metrics;
pub mod outputs;
pub mod queue;
pub mod record;
pub mod run;
pub mod slurm;
pub mod snapshot;
pub mod state;
pub mod store;
pub mod worker;
pub mod workspace;
