//! The content-addressed object cache under `<workspace>/.mlp/cache`.
//!
//! Layout:
//!
//! * `objects/ab/<62 hex>` — a file blob, named by the blake3 of its bytes;
//! * `objects/ab/<62 hex>.dir` — a directory manifest (JSON list of
//!   [`ManifestEntry`]: path, exec, digest, size), named by the directory
//!   digest ([`crate::hash::manifest_digest`]); its files are ordinary blobs;
//! * `tmp/` — objects being written. Every object is written to
//!   `tmp/<unique>`, checked, made read-only (0o444) and then `rename`d into
//!   place, so a half-written object never has a real name. A directory's
//!   manifest is written after all its blobs.
//!
//! Copy strategy: the cache and the workspace never share inodes (no
//! hardlinks), so editing a restored file in place can never corrupt the
//! cache. Files are copied with [`std::fs::copy`] (`copy_file_range` on
//! Linux, which the kernel may turn into a reflink on filesystems that
//! support it; on ext4 it is an in-kernel copy). No `FICLONE` ioctl is used
//! (that needs unsafe code or another dependency for little gain on ext4).
//!
//! Verification: [`ObjectCache::put`] hashes the *copy* it made before naming
//! it, so an object's name always matches the bytes that went in (an output
//! modified while being stored gives [`CacheError::Changed`]).
//! [`ObjectCache::restore`] copies to a temporary file next to the
//! destination, hashes that copy and only then renames it over the
//! destination; a mismatch (disk corruption, tampering, a torn write after a
//! crash — objects are not fsynced) gives [`CacheError::Corrupt`] and deletes
//! the bad object so that the stage is rebuilt.
//!
//! Restored files are mode 0o644, or 0o755 if the manifest recorded an
//! executable bit (a single-file output has no recorded mode: 0o644).
//! Directory entries that are symlinks to outside the workspace are stored as
//! a blob of their target text and restored as symlinks.

mod error;
mod temp;
#[cfg(test)]
mod tests;

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rayon::prelude::*;

pub use self::error::CacheError;
use self::error::io_err;
use self::temp::{TempGuard, remove_any, remove_if_exists, unique};
use crate::hash::{
    Content, Digest, ManifestEntry, NodeKind, hash_file, hex, manifest_digest, normalize_rel,
    parse_hex, walk,
};

/// The content-addressed object cache.
#[derive(Debug, Clone)]
pub struct ObjectCache {
    root: PathBuf,
    workspace: Option<PathBuf>,
}

impl ObjectCache {
    /// Opens (creating if needed) the cache in `dir`. If `dir` is
    /// `<ws>/.mlp/cache`, `<ws>` is taken as the workspace (used to decide
    /// which symlinks inside stored directories are followed, as the hasher
    /// does); see [`ObjectCache::with_workspace`].
    pub fn open(dir: &Path) -> io::Result<Self> {
        for sub in ["objects", "tmp"] {
            let p = dir.join(sub);
            fs::create_dir_all(&p).map_err(|e| crate::hash::with_path(e, &p))?;
        }
        let workspace = if dir.file_name().is_some_and(|n| n == "cache")
            && dir
                .parent()
                .and_then(Path::file_name)
                .is_some_and(|n| n == crate::hash::MLP_DIR)
        {
            dir.parent().and_then(Path::parent).map(Path::to_path_buf)
        } else {
            None
        };
        Ok(ObjectCache {
            root: dir.to_path_buf(),
            workspace,
        })
    }

    /// Sets the workspace root. Symlinks inside a stored directory are
    /// followed only if they resolve inside it; without a workspace, only
    /// those resolving inside the directory itself are.
    pub fn with_workspace(mut self, root: &Path) -> Self {
        self.workspace = Some(root.to_path_buf());
        self
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn shard(&self, d: &Digest) -> (PathBuf, String) {
        let h = hex(d);
        let (a, b) = h.split_at(2);
        (self.root.join("objects").join(a), b.to_string())
    }

    /// Path of a file blob.
    pub fn blob_path(&self, d: &Digest) -> PathBuf {
        let (dir, name) = self.shard(d);
        dir.join(name)
    }

    /// Path of a directory manifest.
    pub fn manifest_path(&self, d: &Digest) -> PathBuf {
        let (dir, name) = self.shard(d);
        dir.join(format!("{name}.dir"))
    }

    fn tmp_path(&self) -> PathBuf {
        self.root.join("tmp").join(unique())
    }

    /// Makes `tmp` read-only and renames it to `dst`.
    fn install(&self, tmp: &mut TempGuard, dst: &Path) -> Result<(), CacheError> {
        fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o444))
            .map_err(io_err(tmp.path()))?;
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        fs::rename(tmp.path(), dst).map_err(io_err(dst))?;
        tmp.disarm();
        Ok(())
    }

    /// Stores the file at `src` as blob `digest` unless present, verifying the copy.
    fn put_blob(&self, src: &Path, digest: &Digest) -> Result<(), CacheError> {
        let dst = self.blob_path(digest);
        if dst.is_file() {
            return Ok(());
        }
        let mut tmp = TempGuard::new(self.tmp_path());
        fs::copy(src, tmp.path()).map_err(io_err(src))?;
        let (got, _) = hash_file(tmp.path()).map_err(io_err(tmp.path()))?;
        if &got != digest {
            return Err(CacheError::Changed {
                path: src.to_path_buf(),
            });
        }
        self.install(&mut tmp, &dst)
    }

    /// Stores `bytes` as blob `digest` unless present.
    fn put_bytes(&self, bytes: &[u8], digest: &Digest) -> Result<(), CacheError> {
        let dst = self.blob_path(digest);
        if dst.is_file() {
            return Ok(());
        }
        let mut tmp = TempGuard::new(self.tmp_path());
        fs::write(tmp.path(), bytes).map_err(io_err(tmp.path()))?;
        self.install(&mut tmp, &dst)
    }

    /// Stores the output at `src` (a file or directory) whose [`Content`] is
    /// already known. Does nothing if it is already present (or missing).
    pub fn put(&self, src: &Path, content: &Content) -> Result<(), CacheError> {
        match content {
            Content::Missing => Ok(()),
            Content::File { digest, .. } => match self.put_blob(src, digest) {
                Err(CacheError::Changed { path }) => {
                    // The hasher records a symlink to outside the workspace by
                    // its target text; that cannot be restored as a file.
                    if let Ok(target) = fs::read_link(src)
                        && blake3::hash(target.as_os_str().as_bytes()).as_bytes() == digest
                    {
                        return Err(CacheError::Uncacheable {
                            path,
                            reason: format!(
                                "it is a symlink to {} (outside the workspace)",
                                target.display()
                            ),
                        });
                    }
                    Err(CacheError::Changed { path })
                }
                r => r,
            },
            Content::Dir { digest, .. } => {
                if self.contains(content) {
                    return Ok(());
                }
                let meta = fs::metadata(src).map_err(io_err(src))?;
                if !meta.is_dir() {
                    return Err(CacheError::Changed {
                        path: src.to_path_buf(),
                    });
                }
                let boundary = self.workspace.as_deref().unwrap_or(src);
                let boundary = fs::canonicalize(boundary).map_err(io_err(boundary))?;
                let nodes = walk(src, &boundary).map_err(io_err(src))?;
                let mut entries: Vec<ManifestEntry> = nodes
                    .par_iter()
                    .map(|n| match &n.kind {
                        NodeKind::File { meta } => {
                            let (d, size) = hash_file(&n.abs).map_err(io_err(&n.abs))?;
                            self.put_blob(&n.abs, &d)?;
                            Ok(ManifestEntry {
                                path: n.rel.clone(),
                                exec: meta.permissions().mode() & 0o111 != 0,
                                digest: d,
                                size,
                                link: false,
                            })
                        }
                        NodeKind::Link { target } => {
                            let d = *blake3::hash(target).as_bytes();
                            self.put_bytes(target, &d)?;
                            Ok(ManifestEntry {
                                path: n.rel.clone(),
                                exec: false,
                                digest: d,
                                size: target.len() as u64,
                                link: true,
                            })
                        }
                    })
                    .collect::<Result<_, CacheError>>()?;
                entries.sort_by(|a, b| a.path.cmp(&b.path));
                if &manifest_digest(&entries) != digest {
                    return Err(CacheError::Changed {
                        path: src.to_path_buf(),
                    });
                }
                let json = serde_json::to_vec_pretty(&entries).map_err(|e| CacheError::Io {
                    path: src.to_path_buf(),
                    source: io::Error::other(e),
                })?;
                let mut tmp = TempGuard::new(self.tmp_path());
                fs::write(tmp.path(), json).map_err(io_err(tmp.path()))?;
                self.install(&mut tmp, &self.manifest_path(digest))
            }
        }
    }

    /// The manifest of a stored directory (`None` if not stored). A manifest
    /// that does not parse or does not match its digest is deleted and
    /// reported as [`CacheError::Corrupt`].
    pub fn manifest(&self, d: &Digest) -> Result<Option<Vec<ManifestEntry>>, CacheError> {
        let path = self.manifest_path(d);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let ok = serde_json::from_slice::<Vec<ManifestEntry>>(&bytes)
            .ok()
            .filter(|entries| &manifest_digest(entries) == d);
        match ok {
            Some(entries) => Ok(Some(entries)),
            None => {
                remove_if_exists(&path).map_err(io_err(&path))?;
                Err(CacheError::Corrupt {
                    digest: hex(d),
                    path,
                })
            }
        }
    }

    /// Whether everything needed to restore `content` is stored
    /// (`Missing` needs nothing: true).
    pub fn contains(&self, content: &Content) -> bool {
        match content {
            Content::Missing => true,
            Content::File { digest, .. } => self.blob_path(digest).is_file(),
            Content::Dir { digest, .. } => match self.manifest(digest) {
                Ok(Some(entries)) => entries.iter().all(|e| self.blob_path(&e.digest).is_file()),
                _ => false,
            },
        }
    }

    /// Copies blob `digest` to `dst` (which must not exist), verifying the
    /// copy; a corrupt blob is deleted.
    fn copy_blob_verified(&self, digest: &Digest, dst: &Path) -> Result<(), CacheError> {
        let blob = self.blob_path(digest);
        if let Err(e) = fs::copy(&blob, dst) {
            return Err(if blob.is_file() {
                CacheError::Io {
                    path: blob,
                    source: e,
                }
            } else {
                CacheError::Missing {
                    digest: hex(digest),
                    root: self.root.clone(),
                }
            });
        }
        let (got, _) = hash_file(dst).map_err(io_err(dst))?;
        if &got != digest {
            let _ = fs::remove_file(dst);
            remove_if_exists(&blob).map_err(io_err(&blob))?;
            return Err(CacheError::Corrupt {
                digest: hex(digest),
                path: blob,
            });
        }
        Ok(())
    }

    /// Reads a small blob (a symlink target), verifying it.
    fn read_blob_verified(&self, digest: &Digest) -> Result<Vec<u8>, CacheError> {
        let blob = self.blob_path(digest);
        let bytes = match fs::read(&blob) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(CacheError::Missing {
                    digest: hex(digest),
                    root: self.root.clone(),
                });
            }
            Err(e) => return Err(io_err(&blob)(e)),
        };
        if blake3::hash(&bytes).as_bytes() != digest {
            remove_if_exists(&blob).map_err(io_err(&blob))?;
            return Err(CacheError::Corrupt {
                digest: hex(digest),
                path: blob,
            });
        }
        Ok(bytes)
    }

    /// Restores an output to `dst`, replacing what is there (for `Missing`:
    /// deleting it). Digests are verified on the copies; a missing object is
    /// [`CacheError::Missing`], a bad one [`CacheError::Corrupt`] (and is
    /// deleted). `dst` is left untouched on error.
    pub fn restore(&self, content: &Content, dst: &Path) -> Result<(), CacheError> {
        let parent = match dst.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = dst
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| CacheError::Io {
                path: dst.to_path_buf(),
                source: io::Error::new(io::ErrorKind::InvalidInput, "not a file name"),
            })?;
        match content {
            Content::Missing => remove_any(dst).map_err(io_err(dst)),
            Content::File { digest, .. } => {
                if !self.blob_path(digest).is_file() {
                    return Err(CacheError::Missing {
                        digest: hex(digest),
                        root: self.root.clone(),
                    });
                }
                fs::create_dir_all(&parent).map_err(io_err(&parent))?;
                let mut tmp = TempGuard::new(parent.join(format!(".{name}.mlp-tmp-{}", unique())));
                self.copy_blob_verified(digest, tmp.path())?;
                fs::set_permissions(tmp.path(), fs::Permissions::from_mode(0o644))
                    .map_err(io_err(tmp.path()))?;
                self.replace(&parent, &name, &mut tmp, dst)
            }
            Content::Dir { digest, .. } => {
                let Some(entries) = self.manifest(digest)? else {
                    return Err(CacheError::Missing {
                        digest: hex(digest),
                        root: self.root.clone(),
                    });
                };
                fs::create_dir_all(&parent).map_err(io_err(&parent))?;
                let mut tmp = TempGuard::new(parent.join(format!(".{name}.mlp-tmp-{}", unique())));
                let base = tmp.path().to_path_buf();
                fs::create_dir(&base).map_err(io_err(&base))?;
                let mut rels = Vec::with_capacity(entries.len());
                for e in &entries {
                    let rel = normalize_rel(&e.path).ok().filter(|r| !r.is_empty());
                    let Some(rel) = rel else {
                        let path = self.manifest_path(digest);
                        remove_if_exists(&path).map_err(io_err(&path))?;
                        return Err(CacheError::Corrupt {
                            digest: hex(digest),
                            path,
                        });
                    };
                    rels.push(rel);
                }
                entries
                    .par_iter()
                    .zip(rels.par_iter())
                    .try_for_each(|(e, rel)| {
                        let out = base.join(rel);
                        if let Some(p) = out.parent() {
                            fs::create_dir_all(p).map_err(io_err(p))?;
                        }
                        if e.link {
                            let target = self.read_blob_verified(&e.digest)?;
                            let target = Path::new(std::ffi::OsStr::from_bytes(&target));
                            symlink(target, &out).map_err(io_err(&out))
                        } else {
                            self.copy_blob_verified(&e.digest, &out)?;
                            let mode = if e.exec { 0o755 } else { 0o644 };
                            fs::set_permissions(&out, fs::Permissions::from_mode(mode))
                                .map_err(io_err(&out))
                        }
                    })?;
                self.replace(&parent, &name, &mut tmp, dst)
            }
        }
    }

    /// Moves the prepared `tmp` to `dst`, replacing whatever is there.
    fn replace(
        &self,
        parent: &Path,
        name: &str,
        tmp: &mut TempGuard,
        dst: &Path,
    ) -> Result<(), CacheError> {
        let existing = fs::symlink_metadata(dst).ok();
        let tmp_is_dir = fs::symlink_metadata(tmp.path()).is_ok_and(|m| m.is_dir());
        match existing {
            // rename(2) atomically replaces a file or symlink by a file, and
            // an empty directory by a directory; anything else is moved
            // aside first.
            Some(m) if m.is_dir() || tmp_is_dir => {
                let old = parent.join(format!(".{name}.mlp-old-{}", unique()));
                fs::rename(dst, &old).map_err(io_err(dst))?;
                if let Err(e) = fs::rename(tmp.path(), dst) {
                    let _ = fs::rename(&old, dst);
                    return Err(io_err(dst)(e));
                }
                tmp.disarm();
                remove_any(&old).map_err(io_err(&old))
            }
            _ => {
                fs::rename(tmp.path(), dst).map_err(io_err(dst))?;
                tmp.disarm();
                Ok(())
            }
        }
    }

    /// Every stored object (blobs and manifests) with its size, for gc.
    pub fn objects(&self) -> io::Result<Vec<(Digest, u64)>> {
        let objects = self.root.join("objects");
        let mut out = Vec::new();
        let shards = match fs::read_dir(&objects) {
            Ok(rd) => rd,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(crate::hash::with_path(e, &objects)),
        };
        for shard in shards {
            let shard = shard?;
            let Some(prefix) = shard.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if prefix.len() != 2 || !shard.file_type()?.is_dir() {
                continue;
            }
            for obj in fs::read_dir(shard.path())? {
                let obj = obj?;
                let Some(name) = obj.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                let stem = name.strip_suffix(".dir").unwrap_or(&name);
                if let Some(d) = parse_hex(&format!("{prefix}{stem}")) {
                    out.push((d, obj.metadata()?.len()));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Removes the blob and/or manifest named `d` (absent is fine).
    pub fn remove(&self, d: &Digest) -> io::Result<()> {
        remove_if_exists(&self.blob_path(d))?;
        remove_if_exists(&self.manifest_path(d))
    }

    /// Removes temporary files older than `age` left by interrupted writes.
    pub fn clean_tmp(&self, age: Duration) -> io::Result<()> {
        let tmp = self.root.join("tmp");
        let now = SystemTime::now();
        for e in fs::read_dir(&tmp)? {
            let e = e?;
            let old = e
                .metadata()?
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|d| d >= age);
            if old {
                remove_any(&e.path())?;
            }
        }
        Ok(())
    }
}
