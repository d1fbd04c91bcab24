//! The [`Remote`] trait: the handful of operations push, pull and gc need, which a
//! directory and an S3 bucket both do well.

use std::path::Path;

use crate::RemoteError;

/// One object found by [`Remote::list`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// Its key, relative to the remote's root.
    pub key: String,
    pub size: u64,
    /// When it was last written, unix epoch milliseconds (0: not known).
    pub modified_ms: u64,
}

/// A remote store of immutable, whole objects. Keys are '/'-separated and relative to the
/// remote's root (the directory, or the bucket and prefix). A `put` is atomic: a reader
/// sees the whole object or none (temp + rename on a directory; one PUT or a completed
/// multipart upload on S3).
pub trait Remote: std::fmt::Debug + Send + Sync {
    /// The URL as the user gave it (for messages; never holds a credential).
    fn url(&self) -> &str;
    /// Checks that the remote is there and answers (the bucket exists, the credentials
    /// are accepted, the directory exists); `create`: make a missing directory.
    fn check(&self, create: bool) -> Result<(), RemoteError>;
    /// Whether `key` exists.
    fn exists(&self, key: &str) -> Result<bool, RemoteError>;
    /// A small object's bytes (`None`: not there).
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, RemoteError>;
    /// Streams `key` into the new file `dst` (`false`: not there; `dst` not created).
    fn get_to_file(&self, key: &str, dst: &Path) -> Result<bool, RemoteError>;
    /// Writes `key` from bytes.
    fn put(&self, key: &str, bytes: &[u8]) -> Result<(), RemoteError>;
    /// Writes `key` from the file `src`.
    fn put_file(&self, key: &str, src: &Path) -> Result<(), RemoteError>;
    /// Every object whose key starts with `prefix`.
    fn list(&self, prefix: &str) -> Result<Vec<Listed>, RemoteError>;
    /// Removes `key` (absent is fine).
    fn delete(&self, key: &str) -> Result<(), RemoteError>;
}
