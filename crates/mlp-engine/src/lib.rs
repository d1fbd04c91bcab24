//! The incremental engine: content hashing, the store, the object cache, the scheduler.

pub mod cache;
pub mod control;
mod coordinator;
pub mod decide;
mod disk;
pub mod events;
pub mod exec;
pub mod executor;
mod git;
pub mod hash;
pub mod history;
pub mod identity;
pub mod inspect;
mod jobs;
pub mod judge;
pub mod lock;
pub mod metrics;
mod outputs;
pub mod published;
mod queue;
pub mod ray;
mod record;
pub mod remote;
pub mod run;
pub mod slurm;
pub mod snapshot;
mod state;
pub mod store;
mod sweep;
mod worker;
pub mod workspace;

#[cfg(test)]
mod testing;
