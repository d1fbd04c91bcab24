//! The incremental engine: content hashing, the store, the object cache, the scheduler.

pub mod cache;
pub mod exec;
pub mod hash;
pub mod lock;
pub mod store;
