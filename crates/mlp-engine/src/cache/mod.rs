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
//! Copy strategy ([`copy`]): objects are made and restored by reflink where the
//! filesystem shares extents (XFS, btrfs), else by a kernel-side copy
//! (`copy_file_range`): bytes never pass through the process's memory. In link mode
//! ([`CacheMode::Link`]) an output becomes a second name of its object (read-only) and a
//! restore hard-links the object back; an executable file, a file with other names and
//! a file on another filesystem are copied instead.
//!
//! Verification: [`ObjectCache::put`] hashes the object it made before naming it, so an
//! object's name matches the bytes that went in (an output modified while being stored
//! gives [`CacheError::Changed`]), and gives it the verified mark ([`mark`]: read-only,
//! mtime 1 s). [`ObjectCache::restore`] serves a marked object of the right size
//! without reading it; an unmarked one (written to since, or from an older mlp) is
//! hashed first; a mismatch (tampering, disk corruption, a torn write after a crash —
//! objects are not fsynced) gives [`CacheError::Corrupt`] and deletes the bad object so
//! that the stage is rebuilt. [`ObjectCache::verify`] re-hashes every object.
//!
//! Replaced outputs are moved to `trash/` and deleted in the background ([`trash`]).
//!
//! Restored files are mode 0o644, or 0o755 if the manifest recorded an
//! executable bit (a single-file output has no recorded mode: 0o644).
//! Directory entries that are symlinks to outside the workspace are stored as
//! a blob of their target text and restored as symlinks.

mod copy;
mod error;
mod import;
mod mark;
mod temp;
#[cfg(test)]
mod tests;
mod trash;
mod verify;

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use rayon::prelude::*;

pub use self::copy::Placed;
use self::copy::clone_or_copy;
pub use self::error::CacheError;
use self::error::io_err;
use self::mark::{is_marked, set_mark};
use self::temp::{TempGuard, remove_any, remove_if_exists, unique};
pub use self::verify::VerifyReport;
use crate::hash::{
    Content, Digest, ManifestEntry, NodeKind, Stamp, Stamps, hash_file, hex, manifest_digest,
    normalize_rel, parse_hex, walk,
};
pub use mlp_plan::model::CacheMode;

/// Swaps the names `a` and `b` (both must exist), atomically.
fn exchange(a: &Path, b: &Path) -> nix::Result<()> {
    use nix::fcntl::{AT_FDCWD, RenameFlags, renameat2};
    renameat2(AT_FDCWD, a, AT_FDCWD, b, RenameFlags::RENAME_EXCHANGE)
}

/// The content-addressed object cache.
#[derive(Debug, Clone)]
pub struct ObjectCache {
    root: PathBuf,
    workspace: Option<PathBuf>,
    mode: CacheMode,
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
        trash::empty(dir);
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
            mode: CacheMode::Copy,
        })
    }

    /// Sets the workspace root. Symlinks inside a stored directory are
    /// followed only if they resolve inside it; without a workspace, only
    /// those resolving inside the directory itself are.
    pub fn with_workspace(mut self, root: &Path) -> Self {
        self.workspace = Some(root.to_path_buf());
        self
    }

    /// The same cache, storing and restoring in `mode` (a stage's `cache` item).
    pub fn with_mode(&self, mode: CacheMode) -> Self {
        let mut c = self.clone();
        c.mode = mode;
        c
    }

    /// The mode it stores and restores in.
    pub fn mode(&self) -> CacheMode {
        self.mode
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

    /// Gives the verified `tmp` the mark (read-only, mtime 1 s) and renames it to `dst`.
    fn install(&self, tmp: &mut TempGuard, dst: &Path) -> Result<(), CacheError> {
        set_mark(tmp.path()).map_err(io_err(tmp.path()))?;
        if let Some(parent) = dst.parent() {
            fs::create_dir_all(parent).map_err(io_err(parent))?;
        }
        fs::rename(tmp.path(), dst).map_err(io_err(dst))?;
        tmp.disarm();
        Ok(())
    }

    /// Whether blob `digest` is stored and good: a marked object of the right size is
    /// taken as it is, another is hashed (a bad one is deleted: `false`).
    fn have_blob(&self, digest: &Digest, size: Option<u64>) -> Result<bool, CacheError> {
        let blob = self.blob_path(digest);
        match fs::symlink_metadata(&blob) {
            Ok(m) if is_marked(&m, size) => Ok(true),
            Ok(_) => match self.verify_blob(digest) {
                Ok(()) => Ok(true),
                Err(CacheError::Corrupt { .. }) => Ok(false),
                Err(e) => Err(e),
            },
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(e) => Err(io_err(&blob)(e)),
        }
    }

    /// Hashes blob `digest`: a match gets the mark, a mismatch is deleted
    /// ([`CacheError::Corrupt`]).
    fn verify_blob(&self, digest: &Digest) -> Result<(), CacheError> {
        let blob = self.blob_path(digest);
        match hash_file(&blob) {
            Ok((got, _)) if &got == digest => {
                // A cache on a read-only mount cannot be marked; it is still good.
                let _ = set_mark(&blob);
                Ok(())
            }
            Ok(_) => {
                remove_if_exists(&blob).map_err(io_err(&blob))?;
                Err(CacheError::Corrupt {
                    digest: hex(digest),
                    path: blob,
                })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(CacheError::Missing {
                digest: hex(digest),
                root: self.root.clone(),
            }),
            Err(e) => Err(io_err(&blob)(e)),
        }
    }

    /// Stores the file at `src` as blob `digest` unless present. What it made is hashed
    /// unless `known`, the stamp `digest` was vouched for ([`crate::hash::Stamp`]), shows
    /// that `src` was that same file version from before the copy to after it.
    fn put_blob(
        &self,
        src: &Path,
        digest: &Digest,
        size: u64,
        known: Option<Stamp>,
    ) -> Result<(), CacheError> {
        let dst = self.blob_path(digest);
        if self.have_blob(digest, Some(size))? {
            return Ok(());
        }
        let changed = || CacheError::Changed {
            path: src.to_path_buf(),
        };
        let mut tmp = TempGuard::new(self.tmp_path());
        let meta = fs::symlink_metadata(src).map_err(io_err(src))?;
        let linked = self.mode == CacheMode::Link
            && copy::linkable(&meta)
            && fs::hard_link(src, tmp.path()).is_ok();
        let vouched = if linked {
            // The object is `src`'s inode: the new link moved its ctime, nothing else.
            let now = fs::symlink_metadata(tmp.path()).map_err(io_err(tmp.path()))?;
            known.is_some_and(|k| k == Stamp::of(&meta) && k.same_but_ctime(&Stamp::of(&now)))
        } else {
            let (_, whole) = clone_or_copy(src, tmp.path()).map_err(io_err(src))?;
            let stamp = whole.ok_or_else(changed)?;
            known == Some(stamp)
        };
        if !vouched {
            let (got, _) = hash_file(tmp.path()).map_err(io_err(tmp.path()))?;
            if &got != digest {
                return Err(changed());
            }
        }
        self.install(&mut tmp, &dst)
    }

    /// [`ObjectCache::put_blob`] for a file output: a `src` that is a symlink to outside
    /// the workspace (hashed by its target text) is [`CacheError::Uncacheable`].
    fn put_file(
        &self,
        src: &Path,
        digest: &Digest,
        size: u64,
        known: Option<Stamp>,
    ) -> Result<(), CacheError> {
        match self.put_blob(src, digest, size, known) {
            Err(CacheError::Changed { path }) => {
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
        }
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
    /// already known. Does nothing if it is already present (or missing). A file whose
    /// digest `known` vouches for ([`Stamps`]) is not read again.
    pub fn put(&self, src: &Path, content: &Content, known: &Stamps) -> Result<(), CacheError> {
        match content {
            Content::Missing => Ok(()),
            Content::File { digest, size } => {
                let stamp = fs::metadata(src)
                    .ok()
                    .and_then(|m| known.get(&m))
                    .filter(|(_, d)| d == digest)
                    .map(|(s, _)| s);
                self.put_file(src, digest, *size, stamp)
            }
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
                            let (d, size, stamp) = match known.get(meta) {
                                Some((stamp, d)) => (d, stamp.size, Some(stamp)),
                                None => {
                                    let (d, size) = hash_file(&n.abs).map_err(io_err(&n.abs))?;
                                    (d, size, None)
                                }
                            };
                            self.put_blob(&n.abs, &d, size, stamp)?;
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

    /// Puts blob `digest` at `dst` (which must not exist): a hard link in link mode
    /// (unless `exec`), else a reflink or kernel copy with mode 0o644/0o755. The blob is
    /// checked first ([`ObjectCache::have_blob`]); a copy made while the blob changed is
    /// hashed.
    fn place_blob(
        &self,
        digest: &Digest,
        size: Option<u64>,
        exec: bool,
        dst: &Path,
    ) -> Result<Placed, CacheError> {
        let blob = self.blob_path(digest);
        let missing = || CacheError::Missing {
            digest: hex(digest),
            root: self.root.clone(),
        };
        match fs::symlink_metadata(&blob) {
            Ok(m) if is_marked(&m, size) => {}
            Ok(_) => self.verify_blob(digest)?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(missing()),
            Err(e) => return Err(io_err(&blob)(e)),
        }
        if self.mode == CacheMode::Link && !exec && fs::hard_link(&blob, dst).is_ok() {
            return Ok(Placed::Link);
        }
        let (placed, whole) = match clone_or_copy(&blob, dst) {
            Ok(r) => r,
            Err(e) if e.kind() == io::ErrorKind::NotFound && !blob.exists() => {
                return Err(missing());
            }
            Err(e) => return Err(io_err(&blob)(e)),
        };
        if whole.is_none() {
            let (got, _) = hash_file(dst).map_err(io_err(dst))?;
            if &got != digest {
                let _ = fs::remove_file(dst);
                return Err(match self.verify_blob(digest) {
                    Err(e) => e,
                    // The blob is good now: it changed back during the copy.
                    Ok(()) => CacheError::Changed { path: blob.clone() },
                });
            }
        }
        let mode = if exec { 0o755 } else { 0o644 };
        fs::set_permissions(dst, fs::Permissions::from_mode(mode)).map_err(io_err(dst))?;
        Ok(placed)
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
            Content::File { digest, size } => {
                if !self.blob_path(digest).is_file() {
                    return Err(CacheError::Missing {
                        digest: hex(digest),
                        root: self.root.clone(),
                    });
                }
                fs::create_dir_all(&parent).map_err(io_err(&parent))?;
                let mut tmp = TempGuard::new(parent.join(format!(".{name}.mlp-tmp-{}", unique())));
                // A record's size is 0 when unknown (old records): do not check it then.
                let size = Some(*size).filter(|s| *s > 0);
                self.place_blob(digest, size, false, tmp.path())?;
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
                            self.place_blob(&e.digest, Some(e.size), e.exec, &out)
                                .map(|_| ())
                        }
                    })?;
                self.replace(&parent, &name, &mut tmp, dst)
            }
        }
    }

    /// Moves the prepared `tmp` to `dst`, replacing whatever is there. The old
    /// output's blocks are freed in the background ([`trash`]), not while the caller
    /// waits.
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
                trash::discard(&self.root, &old).map_err(io_err(&old))
            }
            Some(m) => {
                // The two names are exchanged (atomically, as a rename over it would
                // be) and the old file then leaves for the trash by its new name:
                // ext4 flushes a file renamed over another (`auto_da_alloc`), 0.5 s
                // for a gigabyte just restored, and not one of an exchange.
                if exchange(tmp.path(), dst).is_ok() {
                    let old = tmp.path().to_path_buf();
                    tmp.disarm();
                    return trash::discard(&self.root, &old).map_err(io_err(&old));
                }
                // A filesystem without RENAME_EXCHANGE. A second name in the trash
                // keeps rename from freeing the old file's blocks on the spot.
                if m.is_file() && m.nlink() == 1 {
                    trash::keep_aside(&self.root, dst);
                }
                fs::rename(tmp.path(), dst).map_err(io_err(dst))?;
                tmp.disarm();
                Ok(())
            }
            None => {
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

    /// Removes `p` (a declared output, before its command runs) by moving it to the
    /// trash, so that a gigabyte output's blocks are freed in the background.
    pub fn discard(&self, p: &Path) -> io::Result<()> {
        trash::discard(&self.root, p)
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
