//! The team cache: stage outputs and run-cache entries pushed to and pulled from a remote
//! that several workspaces share — a directory (local disk, NFS, a cluster's shared
//! filesystem) or S3 (any S3-compatible endpoint).
//!
//! Only the binary depends on this crate, and only the commands that use a remote
//! (`mlp push`, `mlp pull`, `mlp run --pull`, `mlp gc --remote`) open one, so the no-op
//! path and a plain `mlp run` never load the network. S3 requests are signed by
//! `rusty-s3` (sans-IO) and sent by blocking `ureq` on plain threads: no async runtime and
//! no C crypto build (see `book/src/remote.md`).
//!
//! Layout of a remote (every name is content-addressed, written whole or not at all):
//!
//! ```text
//! objects/ab/<hash>    a file, named by the blake3 of its bytes
//! packs/ab/<hash>      the small files of one output directory, concatenated
//! dirs/ab/<hash>       a directory: its manifest, and where each file is (pack or object)
//! runcache/<identity>  a stage's successful record, written after all its objects
//! refs/<workspace>     what that workspace's current and kept records need (for gc)
//! ```

mod dir;
mod error;
mod gc;
mod layout;
mod pull;
mod push;
mod s3;
mod store;
mod url;

pub use self::error::RemoteError;
pub use self::gc::{GcReport, gc};
pub use self::pull::Puller;
pub use self::push::{PushReport, Pusher, workspace_id};
pub use self::store::{Listed, Remote};
pub use self::url::{RemoteUrl, open, parse};

/// Files under this size go into their directory's pack instead of one object each.
pub const PACK_BELOW: u64 = 64 * 1024;
