//! Errors from the `ObjectCache`.

use std::io;
use std::path::{Path, PathBuf};

/// Errors from the [`ObjectCache`].
#[derive(thiserror::Error, Debug)]
pub enum CacheError {
    /// The object is not in the cache.
    #[error(
        "object {digest} is not in the cache {}; re-run the stage to rebuild it",
        root.display()
    )]
    Missing {
        /// Hex digest of the missing object.
        digest: String,
        /// The cache directory.
        root: PathBuf,
    },
    /// The object's bytes did not match its digest; it has been deleted.
    #[error(
        "object {} in the cache was corrupt (its contents do not match digest {digest}) and has been deleted; re-run the stage to rebuild it",
        path.display()
    )]
    Corrupt {
        /// Hex digest the object should have had.
        digest: String,
        /// The (now deleted) object file.
        path: PathBuf,
    },
    /// The source changed between hashing and storing.
    #[error(
        "{} changed while it was being stored in the cache (its contents no longer match the digest recorded for it); make sure nothing else writes it and re-run the stage",
        path.display()
    )]
    Changed {
        /// The output being stored.
        path: PathBuf,
    },
    /// The source cannot be stored (e.g. a symlink to outside the workspace).
    #[error("{} cannot be stored in the cache: {reason}", path.display())]
    Uncacheable {
        /// The output being stored.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An I/O error on a path.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The error.
        #[source]
        source: io::Error,
    },
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}
