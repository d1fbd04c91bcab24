//! What the engine asks of a team remote (`mlp run --pull`, `mlp pull`): only "is there
//! a successful record for this identity, and bring its objects into my cache". The
//! remote itself (directory or S3, the network) lives in the `mlp-remote` crate, which
//! the binary hands in; the engine never loads it, and asks only after a stale stage
//! missed the local run-cache, so a run with nothing stale never touches the network.

use crate::cache::ObjectCache;
use crate::store::StageRecord;

/// A remote run-cache.
pub trait RemoteCache: std::fmt::Debug + Send + Sync {
    /// The remote's successful record for `identity` (hex), with every object its outputs
    /// need already verified into `cache`; `Ok(None)`: the remote has no such entry.
    /// An error is one line naming the remote and the object.
    fn fetch(&self, identity: &str, cache: &ObjectCache) -> Result<Option<StageRecord>, String>;
}
