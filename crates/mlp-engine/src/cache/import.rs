//! Objects that come from elsewhere (a team remote, `mlp pull`): each is verified against
//! its name before it is named, exactly as a local `put` is.

use std::fs;
use std::path::{Path, PathBuf};

use super::error::io_err;
use super::temp::TempGuard;
use super::{CacheError, ObjectCache};
use crate::hash::{Digest, ManifestEntry, hash_file, hex, manifest_digest};

impl ObjectCache {
    /// A fresh path under the cache's `tmp/` to download into (same filesystem as the
    /// objects, so [`ObjectCache::import_file`] is a rename).
    pub fn temp_path(&self) -> PathBuf {
        self.tmp_path()
    }

    /// Whether blob `d` is stored.
    pub fn has_blob(&self, d: &Digest) -> bool {
        self.blob_path(d).is_file()
    }

    /// Stores `bytes` as blob `digest` if they hash to it; else [`CacheError::Corrupt`]
    /// naming `from` (where the bytes came from) and nothing is written.
    pub fn import_bytes(
        &self,
        bytes: &[u8],
        digest: &Digest,
        from: &str,
    ) -> Result<(), CacheError> {
        if blake3::hash(bytes).as_bytes() != digest {
            return Err(CacheError::Corrupt {
                digest: hex(digest),
                path: PathBuf::from(from),
            });
        }
        self.put_bytes(bytes, digest)
    }

    /// Names the downloaded file `tmp` (from [`ObjectCache::temp_path`]) blob `digest` if
    /// its bytes hash to it; else deletes it and gives [`CacheError::Corrupt`].
    pub fn import_file(&self, tmp: &Path, digest: &Digest, from: &str) -> Result<(), CacheError> {
        let mut guard = TempGuard::new(tmp.to_path_buf());
        let (got, _) = hash_file(tmp).map_err(io_err(tmp))?;
        if &got != digest {
            return Err(CacheError::Corrupt {
                digest: hex(digest),
                path: PathBuf::from(from),
            });
        }
        let dst = self.blob_path(digest);
        if dst.is_file() {
            return Ok(());
        }
        self.install(&mut guard, &dst)
    }

    /// Stores a directory manifest if it has digest `digest` and every blob it names is
    /// stored (a manifest is written after its blobs).
    pub fn import_manifest(
        &self,
        digest: &Digest,
        entries: &[ManifestEntry],
        from: &str,
    ) -> Result<(), CacheError> {
        if &manifest_digest(entries) != digest {
            return Err(CacheError::Corrupt {
                digest: hex(digest),
                path: PathBuf::from(from),
            });
        }
        if let Some(e) = entries.iter().find(|e| !self.has_blob(&e.digest)) {
            return Err(CacheError::Missing {
                digest: hex(&e.digest),
                root: self.root.clone(),
            });
        }
        let json = serde_json::to_vec_pretty(entries).map_err(|e| CacheError::Io {
            path: PathBuf::from(from),
            source: std::io::Error::other(e),
        })?;
        let mut tmp = TempGuard::new(self.tmp_path());
        fs::write(tmp.path(), json).map_err(io_err(tmp.path()))?;
        self.install(&mut tmp, &self.manifest_path(digest))
    }
}
