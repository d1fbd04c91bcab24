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

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use crate::hash::{
    Content, Digest, ManifestEntry, NodeKind, hash_file, hex, manifest_digest, normalize_rel,
    parse_hex, walk,
};

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

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CacheError + '_ {
    move |source| CacheError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A unique name for a temporary file (pid, time, counter).
fn unique() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{}.{t}.{n}", std::process::id())
}

/// Deletes a temporary file or directory on drop unless disarmed.
struct TempGuard {
    path: Option<PathBuf>,
}

impl TempGuard {
    fn new(path: PathBuf) -> Self {
        TempGuard { path: Some(path) }
    }

    fn path(&self) -> &Path {
        self.path.as_deref().unwrap_or(Path::new(""))
    }

    fn disarm(&mut self) {
        self.path = None;
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        if let Some(p) = self.path.take() {
            let _ = remove_any(&p);
        }
    }
}

/// Removes a file, symlink or directory tree; a missing path is fine.
fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn remove_if_exists(p: &Path) -> io::Result<()> {
    match fs::remove_file(p) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{Hasher, StatCache};

    struct Ws {
        _dir: tempfile::TempDir,
        root: PathBuf,
        cache: ObjectCache,
    }

    fn ws() -> Ws {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let cache = ObjectCache::open(&root.join(".mlp/cache")).unwrap();
        assert_eq!(cache.workspace.as_deref(), Some(root.as_path()));
        Ws {
            _dir: dir,
            root,
            cache,
        }
    }

    fn write(root: &Path, rel: &str, data: &[u8]) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
    }

    fn content(root: &Path, rel: &str) -> Content {
        let sc = StatCache::default();
        Hasher::new(root, &sc).path(rel).unwrap()
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn file_round_trip() {
        let w = ws();
        let data: Vec<u8> = (0..(2 << 20)).map(|i: u32| (i % 253) as u8).collect();
        write(&w.root, "out/model.bin", &data);
        let c = content(&w.root, "out/model.bin");
        assert!(!w.cache.contains(&c));
        w.cache.put(&w.root.join("out/model.bin"), &c).unwrap();
        assert!(w.cache.contains(&c));
        let blob = w.cache.blob_path(c.digest().unwrap());
        assert_eq!(mode(&blob), 0o444);
        // Putting again is a no-op.
        w.cache.put(&w.root.join("out/model.bin"), &c).unwrap();

        fs::remove_dir_all(w.root.join("out")).unwrap();
        w.cache.restore(&c, &w.root.join("out/model.bin")).unwrap();
        assert_eq!(fs::read(w.root.join("out/model.bin")).unwrap(), data);
        assert_eq!(mode(&w.root.join("out/model.bin")), 0o644);
        // Restoring over an existing (different) file replaces it.
        write(&w.root, "out/model.bin", b"junk");
        w.cache.restore(&c, &w.root.join("out/model.bin")).unwrap();
        assert_eq!(fs::read(w.root.join("out/model.bin")).unwrap(), data);
        // No temp files are left behind.
        let names: Vec<_> = fs::read_dir(w.root.join("out")).unwrap().collect();
        assert_eq!(names.len(), 1);
        assert_eq!(fs::read_dir(w.cache.root().join("tmp")).unwrap().count(), 0);

        let objs = w.cache.objects().unwrap();
        assert_eq!(objs, vec![(*c.digest().unwrap(), data.len() as u64)]);
        w.cache.remove(c.digest().unwrap()).unwrap();
        assert!(!w.cache.contains(&c));
        assert!(w.cache.objects().unwrap().is_empty());
        assert!(matches!(
            w.cache.restore(&c, &w.root.join("out/model.bin")),
            Err(CacheError::Missing { .. })
        ));
    }

    #[test]
    fn tampered_object_is_corrupt_and_deleted() {
        let w = ws();
        write(&w.root, "a.txt", b"precious");
        let c = content(&w.root, "a.txt");
        w.cache.put(&w.root.join("a.txt"), &c).unwrap();
        let blob = w.cache.blob_path(c.digest().unwrap());
        fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(&blob, b"tampered").unwrap();
        let dst = w.root.join("restored.txt");
        match w.cache.restore(&c, &dst) {
            Err(e @ CacheError::Corrupt { .. }) => {
                assert!(e.to_string().contains("re-run"), "{e}");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
        assert!(!blob.exists());
        assert!(!dst.exists());
        assert!(!w.cache.contains(&c));
        assert_eq!(fs::read_dir(&w.root).unwrap().count(), 2); // a.txt, .mlp
    }

    #[test]
    fn changed_source_is_not_stored() {
        let w = ws();
        write(&w.root, "a.txt", b"v1");
        let c = content(&w.root, "a.txt");
        write(&w.root, "a.txt", b"v2");
        assert!(matches!(
            w.cache.put(&w.root.join("a.txt"), &c),
            Err(CacheError::Changed { .. })
        ));
        assert!(!w.cache.contains(&c));
        assert_eq!(fs::read_dir(w.cache.root().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn dir_round_trip_with_exec_bit() {
        let w = ws();
        write(&w.root, "out/a.txt", b"a");
        write(&w.root, "out/bin/run.sh", b"#!/bin/sh\necho hi\n");
        write(&w.root, "out/sub/deep/c.txt", b"c");
        write(&w.root, "out/dup.txt", b"a"); // same blob as a.txt
        fs::set_permissions(
            w.root.join("out/bin/run.sh"),
            fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        std::os::unix::fs::symlink("/nonexistent/outside", w.root.join("out/ext")).unwrap();
        let c = content(&w.root, "out");
        w.cache.put(&w.root.join("out"), &c).unwrap();
        assert!(w.cache.contains(&c));
        let m = w.cache.manifest(c.digest().unwrap()).unwrap().unwrap();
        assert_eq!(m.len(), 5);

        // Restore to a fresh place and over an existing, different tree.
        for dst in ["copy", "out"] {
            if dst == "out" {
                write(&w.root, "out/stale.txt", b"old");
                fs::remove_file(w.root.join("out/a.txt")).unwrap();
            }
            w.cache.restore(&c, &w.root.join(dst)).unwrap();
            assert_eq!(content(&w.root, dst), c);
            assert_eq!(mode(&w.root.join(dst).join("bin/run.sh")), 0o755);
            assert_eq!(mode(&w.root.join(dst).join("a.txt")), 0o644);
            assert!(!w.root.join(dst).join("stale.txt").exists());
            assert_eq!(
                fs::read_link(w.root.join(dst).join("ext")).unwrap(),
                Path::new("/nonexistent/outside")
            );
        }
        let leftovers: Vec<String> = fs::read_dir(&w.root)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains("mlp-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        // Objects: 4 distinct blobs (a, run.sh, c, link text) + 1 manifest.
        assert_eq!(w.cache.objects().unwrap().len(), 5);

        // A missing blob makes the directory missing, and restore fails
        // without touching the destination.
        let blob = w
            .cache
            .blob_path(&m.iter().find(|e| e.path == "a.txt").unwrap().digest);
        fs::remove_file(&blob).unwrap();
        assert!(!w.cache.contains(&c));
        assert!(matches!(
            w.cache.restore(&c, &w.root.join("out")),
            Err(CacheError::Missing { .. })
        ));
        assert_eq!(content(&w.root, "out"), c);
        // put() heals it.
        w.cache.put(&w.root.join("out"), &c).unwrap();
        assert!(w.cache.contains(&c));

        // An empty directory round-trips too.
        fs::create_dir_all(w.root.join("empty")).unwrap();
        let e = content(&w.root, "empty");
        w.cache.put(&w.root.join("empty"), &e).unwrap();
        w.cache.restore(&e, &w.root.join("empty2")).unwrap();
        assert!(w.root.join("empty2").is_dir());
    }

    #[test]
    fn corrupt_manifest_is_deleted() {
        let w = ws();
        write(&w.root, "out/a.txt", b"a");
        let c = content(&w.root, "out");
        w.cache.put(&w.root.join("out"), &c).unwrap();
        let mpath = w.cache.manifest_path(c.digest().unwrap());
        fs::set_permissions(&mpath, fs::Permissions::from_mode(0o644)).unwrap();
        fs::write(
            &mpath,
            br#"[{"path":"../evil","exec":false,"digest":"00","size":1}]"#,
        )
        .unwrap();
        assert!(matches!(
            w.cache.restore(&c, &w.root.join("copy")),
            Err(CacheError::Corrupt { .. })
        ));
        assert!(!mpath.exists());
        assert!(!w.root.join("copy").exists());
    }

    #[test]
    fn editing_restored_file_leaves_object_intact() {
        let w = ws();
        write(&w.root, "m.bin", b"weights");
        let c = content(&w.root, "m.bin");
        w.cache.put(&w.root.join("m.bin"), &c).unwrap();
        fs::remove_file(w.root.join("m.bin")).unwrap();
        w.cache.restore(&c, &w.root.join("m.bin")).unwrap();
        // Edit in place (same inode), as an editor or `>>` would.
        let mut f = fs::OpenOptions::new()
            .append(true)
            .open(w.root.join("m.bin"))
            .unwrap();
        io::Write::write_all(&mut f, b" edited").unwrap();
        drop(f);
        let blob = w.cache.blob_path(c.digest().unwrap());
        assert_eq!(fs::read(&blob).unwrap(), b"weights");
        w.cache.restore(&c, &w.root.join("m.bin")).unwrap();
        assert_eq!(fs::read(w.root.join("m.bin")).unwrap(), b"weights");
    }

    #[test]
    fn missing_content_restores_to_nothing() {
        let w = ws();
        write(&w.root, "gone/x", b"x");
        assert!(w.cache.contains(&Content::Missing));
        w.cache
            .put(&w.root.join("nope"), &Content::Missing)
            .unwrap();
        w.cache
            .restore(&Content::Missing, &w.root.join("gone"))
            .unwrap();
        assert!(!w.root.join("gone").exists());
    }

    #[test]
    fn symlink_to_outside_is_uncacheable_as_a_file() {
        let w = ws();
        let other = tempfile::tempdir().unwrap();
        write(other.path(), "t.txt", b"target");
        std::os::unix::fs::symlink(other.path().join("t.txt"), w.root.join("l")).unwrap();
        let c = content(&w.root, "l");
        assert!(matches!(
            w.cache.put(&w.root.join("l"), &c),
            Err(CacheError::Uncacheable { .. })
        ));
    }

    #[test]
    fn clean_tmp_removes_old_files() {
        let w = ws();
        write(w.cache.root(), "tmp/stale", b"x");
        w.cache.clean_tmp(Duration::from_secs(3600)).unwrap();
        assert!(w.cache.root().join("tmp/stale").exists());
        w.cache.clean_tmp(Duration::ZERO).unwrap();
        assert!(!w.cache.root().join("tmp/stale").exists());
    }
}
