//! Errors from a `Store`.

use std::path::{Path, PathBuf};

/// Errors from a [`Store`].
#[derive(thiserror::Error, Debug)]
pub enum StoreError {
    /// Another process has the database open.
    #[error(
        "the state store {} is in use by another process (is another mlp command running in this workspace?); wait for it to finish",
        path.display()
    )]
    Locked {
        /// The store directory.
        path: PathBuf,
    },
    /// The store was written by a different (unknown) schema version.
    #[error(
        "the state store {} has schema version {found}, but this mlp understands version {expected}; upgrade mlp, or delete {} to start afresh (this forgets the run cache and history)",
        path.display(),
        path.display()
    )]
    Schema {
        /// The store directory.
        path: PathBuf,
        /// The version found on disk.
        found: String,
        /// The version this build expects.
        expected: u32,
    },
    /// A value in the store could not be decoded.
    #[error(
        "corrupt {what} in the state store {}: {detail}; delete {} to start afresh (this forgets the run cache and history)",
        path.display(),
        path.display()
    )]
    Corrupt {
        /// The store directory.
        path: PathBuf,
        /// What was being decoded.
        what: String,
        /// The decoder's message.
        detail: String,
    },
    /// A value could not be encoded (should not happen).
    #[error("could not encode {what} for the state store: {detail}")]
    Encode {
        /// What was being encoded.
        what: String,
        /// The encoder's message.
        detail: String,
    },
    /// Any other error from sled (I/O, corruption, ...).
    #[error("{}", sled_message(path, source))]
    Sled {
        /// The store directory.
        path: PathBuf,
        /// The sled error.
        #[source]
        source: sled::Error,
    },
}

/// A full disk is not a reason to delete the store: say so, and only then suggest it.
fn sled_message(path: &Path, source: &sled::Error) -> String {
    let full = matches!(source, sled::Error::Io(e) if e.kind() == std::io::ErrorKind::StorageFull);
    if full {
        format!(
            "the state store {} cannot be written: {source}; free some space on its disk and run again",
            path.display()
        )
    } else {
        format!(
            "the state store {} failed: {source}; check the disk (space, permissions), or delete {} to start afresh",
            path.display(),
            path.display()
        )
    }
}
