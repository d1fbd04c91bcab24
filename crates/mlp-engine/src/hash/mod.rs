//! Content hashing of files, directories and globs, with a stat cache.
//!
//! * A file's digest is blake3 of its bytes. Files of 1 MiB or more are
//!   memory-mapped and hashed on the rayon pool
//!   ([`blake3::Hasher::update_mmap_rayon`], what `b3sum` does); smaller files
//!   are read into a buffer. (As with `b3sum`, truncating a file while it is
//!   being hashed through mmap can kill the process with SIGBUS.)
//! * A directory's digest is blake3 over a canonical manifest of the regular
//!   files below it (see [`manifest_digest`]): relative '/'-separated path,
//!   executable bit and file digest, sorted by path. Empty directories,
//!   sockets, FIFOs and devices do not count, and the workspace's `.mlp/`
//!   directory is never part of a digest. Paths are relative, so the same
//!   tree at two absolute locations has the same digest.
//! * Symlinks are followed if they resolve to somewhere inside the workspace
//!   (a link to an ancestor directory is an error: a cycle). A link that
//!   points outside the workspace, or dangles, is not followed: its digest is
//!   blake3 of the link's target text, so re-pointing it changes the digest
//!   but changes to the outside target do not.
//! * The [`StatCache`] maps a workspace-relative path to the file's
//!   (size, mtime, ctime, inode) and digest; a file whose stat is unchanged is
//!   not read again. To avoid "racily clean" entries (a file modified again
//!   within the timestamp granularity right after being hashed), a digest is
//!   only put in the cache if the file's mtime is more than 2 s older than the
//!   moment hashing finished; otherwise the digest is returned but not cached.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::io::{self, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

pub use crate::store::Digest;
use crate::store::StatEntry;

/// Files at least this large are hashed with mmap + rayon.
pub const MMAP_THRESHOLD: u64 = 1 << 20;

/// Files modified less than this long before hashing finished are not cached.
pub const RACY_WINDOW: Duration = Duration::from_secs(2);

/// Name of the workspace state directory, never part of a directory digest.
pub const MLP_DIR: &str = ".mlp";

const MANIFEST_TAG: &[u8] = b"mlp-dir-manifest-v1\n";

/// Lower-case hex of a digest.
pub fn hex(d: &Digest) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(64);
    for b in d {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
    s
}

/// Parses 64 hex digits (either case) into a digest.
pub fn parse_hex(s: &str) -> Option<Digest> {
    let bytes = s.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    fn nibble(c: u8) -> Option<u8> {
        match c {
            b'0'..=b'9' => Some(c - b'0'),
            b'a'..=b'f' => Some(c - b'a' + 10),
            b'A'..=b'F' => Some(c - b'A' + 10),
            _ => None,
        }
    }
    let mut d = [0u8; 32];
    for (i, out) in d.iter_mut().enumerate() {
        *out = (nibble(bytes[2 * i])? << 4) | nibble(bytes[2 * i + 1])?;
    }
    Some(d)
}

/// Serde helper: a [`Digest`] as a hex string.
pub(crate) mod hex_digest {
    use super::{Digest, hex, parse_hex};
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    pub fn serialize<S: Serializer>(d: &Digest, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex(d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Digest, D::Error> {
        let s = String::deserialize(d)?;
        parse_hex(&s).ok_or_else(|| D::Error::custom(format!("not a hex digest: {s:?}")))
    }
}

/// What is at a path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Content {
    /// Nothing.
    Missing,
    /// A file (or a symlink to outside the workspace, hashed by its target text).
    File {
        /// blake3 of the bytes.
        #[serde(with = "hex_digest")]
        digest: Digest,
        /// Size in bytes.
        size: u64,
    },
    /// A directory.
    Dir {
        /// Digest of its manifest ([`manifest_digest`]).
        #[serde(with = "hex_digest")]
        digest: Digest,
        /// Number of manifest entries (files below it).
        files: u64,
        /// Total size of those files.
        size: u64,
    },
}

impl Content {
    /// The digest, unless missing.
    pub fn digest(&self) -> Option<&Digest> {
        match self {
            Content::Missing => None,
            Content::File { digest, .. } | Content::Dir { digest, .. } => Some(digest),
        }
    }

    /// Size in bytes (0 when missing).
    pub fn size(&self) -> u64 {
        match self {
            Content::Missing => 0,
            Content::File { size, .. } | Content::Dir { size, .. } => *size,
        }
    }

    /// Whether this is a directory.
    pub fn is_dir(&self) -> bool {
        matches!(self, Content::Dir { .. })
    }
}

/// One file of a directory manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestEntry {
    /// Path relative to the directory, '/'-separated.
    pub path: String,
    /// Whether any executable bit is set.
    pub exec: bool,
    /// blake3 of the file's bytes (of the link target text for `link`).
    #[serde(with = "hex_digest")]
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// A symlink to outside the workspace, recorded by its target text.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub link: bool,
}

/// The digest of a directory: blake3 over a tagged, length-prefixed encoding
/// of its entries sorted by path (`kind` byte `f`/`x`/`l` for plain,
/// executable and link; path length as u64 LE; path; 32-byte digest).
/// Sizes are implied by the digests and not included.
pub fn manifest_digest(entries: &[ManifestEntry]) -> Digest {
    let mut sorted: Vec<&ManifestEntry> = entries.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut h = blake3::Hasher::new();
    h.update(MANIFEST_TAG);
    for e in sorted {
        let kind = if e.link {
            b'l'
        } else if e.exec {
            b'x'
        } else {
            b'f'
        };
        h.update(&[kind]);
        h.update(&(e.path.len() as u64).to_le_bytes());
        h.update(e.path.as_bytes());
        h.update(&e.digest);
    }
    *h.finalize().as_bytes()
}

/// The [`Content::Dir`] summarising a manifest.
pub fn dir_content(entries: &[ManifestEntry]) -> Content {
    Content::Dir {
        digest: manifest_digest(entries),
        files: entries.len() as u64,
        size: entries.iter().map(|e| e.size).sum(),
    }
}

/// blake3 of a file's bytes and its size, without any cache.
pub fn hash_file(path: &Path) -> io::Result<(Digest, u64)> {
    let mut file = fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len >= MMAP_THRESHOLD {
        let mut h = blake3::Hasher::new();
        h.update_mmap_rayon(path)?;
        Ok((*h.finalize().as_bytes(), h.count()))
    } else {
        let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0) + 1);
        file.read_to_end(&mut buf)?;
        Ok((*blake3::hash(&buf).as_bytes(), buf.len() as u64))
    }
}

// ---------------------------------------------------------------------------
// Stat cache
// ---------------------------------------------------------------------------

#[derive(Default)]
struct StatInner {
    map: HashMap<String, StatEntry>,
    dirty: HashSet<String>,
    removed: HashSet<String>,
}

/// The in-memory stat cache: workspace-relative path → [`StatEntry`], plus
/// what changed since it was loaded (to write back with
/// [`crate::store::Store::put_stats`] / `remove_stats`).
#[derive(Default)]
pub struct StatCache {
    inner: Mutex<StatInner>,
}

impl StatCache {
    /// A cache holding `entries` (e.g. from [`crate::store::Store::stat_entries`]); nothing dirty.
    pub fn new(entries: Vec<(String, StatEntry)>) -> Self {
        StatCache {
            inner: Mutex::new(StatInner {
                map: entries.into_iter().collect(),
                ..StatInner::default()
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, StatInner> {
        // Every critical section is a single map operation: never half-done.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The entry for a path.
    pub fn get(&self, path: &str) -> Option<StatEntry> {
        self.lock().map.get(path).cloned()
    }

    /// Inserts or replaces an entry (marks it dirty if it changed).
    pub fn insert(&self, path: &str, entry: StatEntry) {
        let mut g = self.lock();
        if g.map.get(path) != Some(&entry) {
            g.map.insert(path.to_string(), entry);
            g.removed.remove(path);
            g.dirty.insert(path.to_string());
        }
    }

    /// Removes an entry (remembered in [`StatCache::removed`]).
    pub fn remove(&self, path: &str) {
        let mut g = self.lock();
        if g.map.remove(path).is_some() {
            g.dirty.remove(path);
            g.removed.insert(path.to_string());
        }
    }

    /// Entries inserted or changed since loading (or [`StatCache::mark_clean`]), sorted by path.
    pub fn dirty(&self) -> Vec<(String, StatEntry)> {
        let g = self.lock();
        let mut out: Vec<(String, StatEntry)> = g
            .dirty
            .iter()
            .filter_map(|k| g.map.get(k).map(|e| (k.clone(), e.clone())))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// Paths removed since loading (or [`StatCache::mark_clean`]), sorted.
    pub fn removed(&self) -> Vec<String> {
        let mut out: Vec<String> = self.lock().removed.iter().cloned().collect();
        out.sort();
        out
    }

    /// Forgets what is dirty/removed (after writing it back).
    pub fn mark_clean(&self) {
        let mut g = self.lock();
        g.dirty.clear();
        g.removed.clear();
    }

    /// Removes entries whose file no longer exists under `root`.
    pub fn prune_missing(&self, root: &Path) {
        let keys: Vec<String> = self.lock().map.keys().cloned().collect();
        for k in keys {
            if fs::metadata(root.join(&k)).is_err() {
                self.remove(&k);
            }
        }
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether there are no entries.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn time_ns(secs: i64, nsec: i64) -> i128 {
    i128::from(secs) * 1_000_000_000 + i128::from(nsec)
}

fn now_ns() -> i128 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_nanos()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_nanos()).unwrap_or(i128::MAX),
    }
}

fn is_exec(meta: &fs::Metadata) -> bool {
    meta.permissions().mode() & 0o111 != 0
}

// ---------------------------------------------------------------------------
// Directory walking (shared with the object cache)
// ---------------------------------------------------------------------------

/// What a walk found.
pub(crate) enum NodeKind {
    /// A regular file (possibly reached through an in-workspace symlink).
    File { meta: fs::Metadata },
    /// A symlink to outside the workspace (or dangling), with its target text.
    Link { target: Vec<u8> },
}

/// One file found by [`walk`].
pub(crate) struct Node {
    /// Path relative to the walked directory, '/'-separated.
    pub rel: String,
    /// Absolute (or root-joined) path to read.
    pub abs: PathBuf,
    pub kind: NodeKind,
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

enum Resolved {
    Inside(PathBuf),
    Outside,
}

fn resolve_link(abs: &Path, boundary: &Path) -> Resolved {
    match fs::canonicalize(abs) {
        Ok(c) if c.starts_with(boundary) => Resolved::Inside(c),
        _ => Resolved::Outside,
    }
}

/// Lists the files below `dir` (see the module docs for the rules), sorted
/// by relative path. `boundary` is the canonical workspace root: symlinks are
/// followed only if they resolve inside it, and `<boundary>/.mlp` is skipped.
pub(crate) fn walk(dir: &Path, boundary: &Path) -> io::Result<Vec<Node>> {
    let canon = fs::canonicalize(dir)?;
    let exclude = boundary.join(MLP_DIR);
    let mut out = Vec::new();
    let mut ancestors = vec![canon.clone()];
    walk_into(
        dir,
        &canon,
        "",
        boundary,
        &exclude,
        &mut ancestors,
        &mut out,
    )?;
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn walk_into(
    dir: &Path,
    canon_dir: &Path,
    prefix: &str,
    boundary: &Path,
    exclude: &Path,
    ancestors: &mut Vec<PathBuf>,
    out: &mut Vec<Node>,
) -> io::Result<()> {
    let rd = fs::read_dir(dir).map_err(|e| with_path(e, dir))?;
    for entry in rd {
        let entry = entry.map_err(|e| with_path(e, dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "file name {:?} in {} is not valid UTF-8",
                    entry.file_name(),
                    dir.display()
                ),
            ));
        };
        let abs = dir.join(name);
        let rel = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let ft = entry.file_type().map_err(|e| with_path(e, &abs))?;
        if ft.is_symlink() {
            match resolve_link(&abs, boundary) {
                Resolved::Outside => {
                    let target = fs::read_link(&abs).map_err(|e| with_path(e, &abs))?;
                    out.push(Node {
                        rel,
                        abs,
                        kind: NodeKind::Link {
                            target: target.as_os_str().as_bytes().to_vec(),
                        },
                    });
                }
                Resolved::Inside(target) => {
                    if target.starts_with(exclude) {
                        continue;
                    }
                    let meta = fs::metadata(&abs).map_err(|e| with_path(e, &abs))?;
                    if meta.is_dir() {
                        if ancestors.iter().any(|a| a == &target) {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!(
                                    "symlink cycle: {} points to its own ancestor {}",
                                    abs.display(),
                                    target.display()
                                ),
                            ));
                        }
                        ancestors.push(target.clone());
                        walk_into(&abs, &target, &rel, boundary, exclude, ancestors, out)?;
                        ancestors.pop();
                    } else if meta.is_file() {
                        out.push(Node {
                            rel,
                            abs,
                            kind: NodeKind::File { meta },
                        });
                    }
                }
            }
        } else if ft.is_dir() {
            let canon = canon_dir.join(name);
            if canon == exclude {
                continue;
            }
            ancestors.push(canon.clone());
            walk_into(&abs, &canon, &rel, boundary, exclude, ancestors, out)?;
            ancestors.pop();
        } else if ft.is_file() {
            let meta = entry.metadata().map_err(|e| with_path(e, &abs))?;
            out.push(Node {
                rel,
                abs,
                kind: NodeKind::File { meta },
            });
        }
        // Sockets, FIFOs and devices are not content.
    }
    Ok(())
}

/// Adds the path to an I/O error's message.
pub(crate) fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Normalises a workspace-relative path: drops `.` and empty components;
/// rejects absolute paths and `..`. The root itself is `""`.
pub fn normalize_rel(rel: &str) -> io::Result<String> {
    if rel.starts_with('/') {
        return Err(invalid(format!(
            "{rel:?} is absolute; paths must be relative to the workspace"
        )));
    }
    let mut parts = Vec::new();
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                return Err(invalid(format!(
                    "{rel:?} contains '..'; paths must stay inside the workspace"
                )));
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}

// ---------------------------------------------------------------------------
// Hasher
// ---------------------------------------------------------------------------

/// Hashes paths of one workspace through a [`StatCache`].
pub struct Hasher<'a> {
    root: &'a Path,
    canon_root: PathBuf,
    cache: &'a StatCache,
    read: AtomicU64,
    cached: AtomicU64,
}

impl<'a> Hasher<'a> {
    /// A hasher for the workspace at `root`.
    pub fn new(root: &'a Path, cache: &'a StatCache) -> Self {
        let canon_root = fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
        Hasher {
            root,
            canon_root,
            cache,
            read: AtomicU64::new(0),
            cached: AtomicU64::new(0),
        }
    }

    /// The workspace root.
    pub fn root(&self) -> &Path {
        self.root
    }

    /// Number of files whose bytes were read.
    pub fn files_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }

    /// Number of files whose digest came from the stat cache.
    pub fn files_cached(&self) -> u64 {
        self.cached.load(Ordering::Relaxed)
    }

    /// The content at a workspace-relative path: a file, a directory
    /// (recursively, files hashed in parallel) or [`Content::Missing`].
    pub fn path(&self, rel: &str) -> io::Result<Content> {
        let rel = normalize_rel(rel)?;
        let abs = self.root.join(&rel);
        let lmeta = match fs::symlink_metadata(&abs) {
            Ok(m) => m,
            Err(e) if is_missing(&e) => {
                self.cache.remove(&rel);
                return Ok(Content::Missing);
            }
            Err(e) => return Err(with_path(e, &abs)),
        };
        let meta = if lmeta.file_type().is_symlink() {
            match resolve_link(&abs, &self.canon_root) {
                Resolved::Outside => {
                    let target = fs::read_link(&abs).map_err(|e| with_path(e, &abs))?;
                    let bytes = target.as_os_str().as_bytes();
                    return Ok(Content::File {
                        digest: *blake3::hash(bytes).as_bytes(),
                        size: bytes.len() as u64,
                    });
                }
                Resolved::Inside(_) => fs::metadata(&abs).map_err(|e| with_path(e, &abs))?,
            }
        } else {
            lmeta
        };
        if meta.is_dir() {
            let entries = self.dir_entries(&rel, &abs)?;
            Ok(dir_content(&entries))
        } else if meta.is_file() {
            let (digest, size) = self.file(&rel, &abs, &meta)?;
            Ok(Content::File { digest, size })
        } else {
            Err(invalid(format!(
                "{} is not a regular file or a directory",
                abs.display()
            )))
        }
    }

    /// The manifest of a workspace-relative directory (`None` if it is
    /// missing or not a directory).
    pub fn manifest(&self, rel: &str) -> io::Result<Option<Vec<ManifestEntry>>> {
        let rel = normalize_rel(rel)?;
        let abs = self.root.join(&rel);
        match fs::metadata(&abs) {
            Ok(m) if m.is_dir() => Ok(Some(self.dir_entries(&rel, &abs)?)),
            Ok(_) => Ok(None),
            Err(e) if is_missing(&e) => Ok(None),
            Err(e) => Err(with_path(e, &abs)),
        }
    }

    fn dir_entries(&self, rel: &str, abs: &Path) -> io::Result<Vec<ManifestEntry>> {
        let nodes = walk(abs, &self.canon_root)?;
        nodes
            .par_iter()
            .map(|n| match &n.kind {
                NodeKind::Link { target } => Ok(ManifestEntry {
                    path: n.rel.clone(),
                    exec: false,
                    digest: *blake3::hash(target).as_bytes(),
                    size: target.len() as u64,
                    link: true,
                }),
                NodeKind::File { meta } => {
                    let key = if rel.is_empty() {
                        n.rel.clone()
                    } else {
                        format!("{rel}/{}", n.rel)
                    };
                    let (digest, size) = self.file(&key, &n.abs, meta)?;
                    Ok(ManifestEntry {
                        path: n.rel.clone(),
                        exec: is_exec(meta),
                        digest,
                        size,
                        link: false,
                    })
                }
            })
            .collect()
    }

    /// Hashes one regular file through the stat cache.
    fn file(&self, key: &str, abs: &Path, meta: &fs::Metadata) -> io::Result<(Digest, u64)> {
        let mtime_ns = time_ns(meta.mtime(), meta.mtime_nsec());
        let ctime_ns = time_ns(meta.ctime(), meta.ctime_nsec());
        if let Some(e) = self.cache.get(key)
            && e.size == meta.len()
            && e.mtime_ns == mtime_ns
            && e.ctime_ns == ctime_ns
            && e.ino == meta.ino()
        {
            self.cached.fetch_add(1, Ordering::Relaxed);
            return Ok((e.digest, e.size));
        }
        let (digest, size) = hash_file(abs).map_err(|e| with_path(e, abs))?;
        self.read.fetch_add(1, Ordering::Relaxed);
        let racy = mtime_ns > now_ns() - RACY_WINDOW.as_nanos() as i128;
        if racy || size != meta.len() {
            // Too fresh to trust later (or changed while we read it).
            self.cache.remove(key);
        } else {
            self.cache.insert(
                key,
                StatEntry {
                    size,
                    mtime_ns,
                    ctime_ns,
                    ino: meta.ino(),
                    digest,
                },
            );
        }
        Ok((digest, size))
    }

    /// Every path matching a glob pattern relative to the root (`data/*.csv`,
    /// `src/**/*.py`), with its content, sorted by path. As in the shell, `*`
    /// does not match a leading `.`; `.mlp/` never matches.
    pub fn glob(&self, pattern: &str) -> io::Result<Vec<(String, Content)>> {
        if pattern.starts_with('/') || pattern.split('/').any(|p| p == "..") {
            return Err(invalid(format!(
                "glob {pattern:?} must be relative to the workspace and must not contain '..'"
            )));
        }
        let root_str = self.root.to_str().ok_or_else(|| {
            invalid(format!(
                "workspace path {} is not valid UTF-8",
                self.root.display()
            ))
        })?;
        let full = format!(
            "{}/{}",
            glob::Pattern::escape(root_str.trim_end_matches('/')),
            pattern
        );
        let opts = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        let paths = glob::glob_with(&full, opts)
            .map_err(|e| invalid(format!("bad glob {pattern:?}: {e}")))?;
        let mut rels = Vec::new();
        for p in paths {
            let p = p.map_err(|e| {
                let path = e.path().to_path_buf();
                with_path(e.into_error(), &path)
            })?;
            // The glob crate drops a leading `./`: a root of `.` prefixes nothing.
            let rel = match p.strip_prefix(self.root) {
                Ok(rel) => rel,
                Err(_) if self.root == Path::new(".") => p.as_path(),
                Err(_) => continue,
            };
            let mut parts = Vec::new();
            for c in rel.components() {
                match c {
                    Component::Normal(s) => parts.push(s.to_str().ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("path {} is not valid UTF-8", p.display()),
                        )
                    })?),
                    Component::CurDir => {}
                    _ => {
                        return Err(invalid(format!(
                            "glob {pattern:?} matched {} outside the workspace",
                            p.display()
                        )));
                    }
                }
            }
            if parts.first() == Some(&MLP_DIR) {
                continue;
            }
            rels.push(parts.join("/"));
        }
        rels.sort();
        rels.dedup();
        rels.into_par_iter()
            .map(|r| {
                let c = self.path(&r)?;
                Ok((r, c))
            })
            .collect()
    }
}

fn is_missing(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{File, FileTimes};
    use std::os::unix::fs::symlink;

    /// Sets a file's mtime to long ago so the stat cache will keep it.
    fn age(path: &Path) {
        let old = SystemTime::now() - Duration::from_secs(3600);
        let f = File::options().write(true).open(path).unwrap();
        f.set_times(FileTimes::new().set_modified(old)).unwrap();
    }

    fn write(root: &Path, rel: &str, data: &[u8]) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, data).unwrap();
    }

    fn digest_of(c: &Content) -> Digest {
        *c.digest().unwrap()
    }

    #[test]
    fn hex_round_trip() {
        let d: Digest = std::array::from_fn(|i| (i * 37) as u8);
        let h = hex(&d);
        assert_eq!(h.len(), 64);
        assert_eq!(parse_hex(&h), Some(d));
        assert_eq!(parse_hex(&h.to_uppercase()), Some(d));
        assert_eq!(parse_hex("abc"), None);
        assert_eq!(parse_hex(&"zz".repeat(32)), None);
        assert_eq!(parse_hex(&"é".repeat(32)), None);
    }

    #[test]
    fn file_digest_is_blake3_and_changes_with_content() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.txt", b"hello");
        let cache = StatCache::default();
        let h = Hasher::new(dir.path(), &cache);
        let c1 = h.path("a.txt").unwrap();
        assert_eq!(
            c1,
            Content::File {
                digest: *blake3::hash(b"hello").as_bytes(),
                size: 5
            }
        );
        write(dir.path(), "a.txt", b"hellp");
        let c2 = h.path("./a.txt").unwrap();
        assert_ne!(c1, c2);
        assert_eq!(h.path("nope.txt").unwrap(), Content::Missing);
        assert_eq!(h.path("a.txt/below").unwrap(), Content::Missing);
        assert!(h.path("../x").is_err());
        assert!(h.path("/etc/passwd").is_err());
    }

    #[test]
    fn large_file_uses_mmap_path_and_matches() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..(3 << 20)).map(|i: u32| (i % 251) as u8).collect();
        write(dir.path(), "big.bin", &data);
        let (d, n) = hash_file(&dir.path().join("big.bin")).unwrap();
        assert_eq!(n, data.len() as u64);
        assert_eq!(d, *blake3::hash(&data).as_bytes());
    }

    #[test]
    fn stat_unchanged_file_is_served_from_cache() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a.txt", b"one");
        age(&dir.path().join("a.txt"));
        let cache = StatCache::default();
        let h = Hasher::new(dir.path(), &cache);
        let c1 = h.path("a.txt").unwrap();
        assert_eq!((h.files_read(), h.files_cached()), (1, 0));
        assert_eq!(cache.len(), 1);
        assert_eq!(cache.dirty().len(), 1);
        let c2 = h.path("a.txt").unwrap();
        assert_eq!(c1, c2);
        assert_eq!((h.files_read(), h.files_cached()), (1, 1));

        // A cache loaded from the dirty entries (as after a restart) works too.
        let cache2 = StatCache::new(cache.dirty());
        assert!(cache2.dirty().is_empty());
        let h2 = Hasher::new(dir.path(), &cache2);
        assert_eq!(h2.path("a.txt").unwrap(), c1);
        assert_eq!((h2.files_read(), h2.files_cached()), (0, 1));

        // Rewriting the file (same size, old mtime forced back) still
        // changes ctime, so the entry is not trusted.
        write(dir.path(), "a.txt", b"two");
        age(&dir.path().join("a.txt"));
        let c3 = h.path("a.txt").unwrap();
        assert_ne!(c1, c3);
        assert_eq!(h.files_read(), 2);

        // A deleted file drops its entry.
        cache.mark_clean();
        fs::remove_file(dir.path().join("a.txt")).unwrap();
        assert_eq!(h.path("a.txt").unwrap(), Content::Missing);
        assert_eq!(cache.removed(), vec!["a.txt".to_string()]);
        assert!(cache.is_empty());
    }

    #[test]
    fn racily_clean_files_are_not_cached() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "fresh.txt", b"new");
        let cache = StatCache::default();
        let h = Hasher::new(dir.path(), &cache);
        h.path("fresh.txt").unwrap();
        h.path("fresh.txt").unwrap();
        assert_eq!(h.files_read(), 2);
        assert!(cache.is_empty());
        assert!(cache.dirty().is_empty());
    }

    fn tree(root: &Path) {
        write(root, "d/a.txt", b"a");
        write(root, "d/sub/b.txt", b"bb");
        write(root, "d/sub/deeper/c.txt", b"ccc");
        fs::create_dir_all(root.join("d/empty")).unwrap();
    }

    fn dir_digest(root: &Path, rel: &str) -> Digest {
        let cache = StatCache::default();
        digest_of(&Hasher::new(root, &cache).path(rel).unwrap())
    }

    #[test]
    fn dir_digest_tracks_changes() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        tree(root);
        let cache = StatCache::default();
        let h = Hasher::new(root, &cache);
        let c = h.path("d").unwrap();
        assert!(
            matches!(
                c,
                Content::Dir {
                    files: 3,
                    size: 6,
                    ..
                }
            ),
            "{c:?}"
        );
        let base = digest_of(&c);

        // Empty directories do not count.
        fs::create_dir_all(root.join("d/empty2/x")).unwrap();
        assert_eq!(dir_digest(root, "d"), base);

        // Add.
        write(root, "d/new.txt", b"n");
        let added = dir_digest(root, "d");
        assert_ne!(added, base);
        // Remove.
        fs::remove_file(root.join("d/new.txt")).unwrap();
        assert_eq!(dir_digest(root, "d"), base);
        // Rename.
        fs::rename(root.join("d/a.txt"), root.join("d/a2.txt")).unwrap();
        let renamed = dir_digest(root, "d");
        assert_ne!(renamed, base);
        fs::rename(root.join("d/a2.txt"), root.join("d/a.txt")).unwrap();
        assert_eq!(dir_digest(root, "d"), base);
        // Content.
        write(root, "d/sub/b.txt", b"bB");
        let changed = dir_digest(root, "d");
        assert_ne!(changed, base);
        write(root, "d/sub/b.txt", b"bb");
        assert_eq!(dir_digest(root, "d"), base);
        // chmod +x.
        let p = root.join("d/sub/deeper/c.txt");
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        let exec = dir_digest(root, "d");
        assert_ne!(exec, base);
        fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(dir_digest(root, "d"), base);

        // The manifest agrees with the digest.
        let m = h.manifest("d").unwrap().unwrap();
        let paths: Vec<&str> = m.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["a.txt", "sub/b.txt", "sub/deeper/c.txt"]);
        assert_eq!(manifest_digest(&m), base);
        assert_eq!(h.manifest("d/a.txt").unwrap(), None);
        assert_eq!(h.manifest("nope").unwrap(), None);
    }

    #[test]
    fn same_tree_at_two_paths_has_same_digest() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        tree(a.path());
        tree(b.path().join("nested").as_path());
        assert_eq!(
            dir_digest(a.path(), "d"),
            dir_digest(&b.path().join("nested"), "d")
        );
        // Whole-workspace digests too (the .mlp dir never counts).
        write(a.path(), ".mlp/state/junk", b"x");
        assert_eq!(
            dir_digest(a.path(), ""),
            dir_digest(&b.path().join("nested"), ".")
        );
    }

    #[test]
    fn symlinks_inside_followed_outside_hashed_by_target() {
        let ws = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let root = ws.path();
        write(root, "data/real.txt", b"real");
        write(outside.path(), "ext.txt", b"external");
        fs::create_dir_all(root.join("d")).unwrap();
        symlink(root.join("data/real.txt"), root.join("d/in.txt")).unwrap();
        symlink(outside.path().join("ext.txt"), root.join("d/out.txt")).unwrap();
        symlink("../data", root.join("d/datalink")).unwrap();
        let cache = StatCache::default();
        let h = Hasher::new(root, &cache);
        let m = h.manifest("d").unwrap().unwrap();
        let paths: Vec<(&str, bool)> = m.iter().map(|e| (e.path.as_str(), e.link)).collect();
        assert_eq!(
            paths,
            [
                ("datalink/real.txt", false),
                ("in.txt", false),
                ("out.txt", true)
            ]
        );
        assert_eq!(m[1].digest, *blake3::hash(b"real").as_bytes());
        let target = outside.path().join("ext.txt");
        assert_eq!(
            m[2].digest,
            *blake3::hash(target.as_os_str().as_bytes()).as_bytes()
        );
        // Changing the outside target's bytes does not change the digest.
        let before = dir_digest(root, "d");
        write(outside.path(), "ext.txt", b"changed");
        assert_eq!(dir_digest(root, "d"), before);
        // A top-level link to outside is a File of its target text.
        assert_eq!(
            h.path("d/out.txt").unwrap(),
            Content::File {
                digest: m[2].digest,
                size: target.as_os_str().len() as u64
            }
        );
        // A cycle is an error, not a hang.
        symlink("..", root.join("d/loop")).unwrap();
        assert!(h.path("d").is_err());
    }

    #[test]
    fn glob_matches_sorted_relative() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "data/b.csv", b"b");
        write(root, "data/a.csv", b"a");
        write(root, "data/c.txt", b"c");
        write(root, "data/.hidden.csv", b"h");
        write(root, "src/x.py", b"x");
        write(root, "src/pkg/y.py", b"y");
        write(root, "src/pkg/deep/z.py", b"z");
        write(root, ".mlp/cache/q.py", b"q");
        let cache = StatCache::default();
        let h = Hasher::new(root, &cache);
        let got = h.glob("data/*.csv").unwrap();
        let names: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["data/a.csv", "data/b.csv"]);
        assert_eq!(got[0].1, h.path("data/a.csv").unwrap());
        let got = h.glob("src/**/*.py").unwrap();
        let names: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
        assert_eq!(names, ["src/pkg/deep/z.py", "src/pkg/y.py", "src/x.py"]);
        let got = h.glob("**/*.py").unwrap();
        assert!(got.iter().all(|(p, _)| !p.starts_with(".mlp")), "{got:?}");
        assert!(h.glob("nothing/*").unwrap().is_empty());
        assert!(h.glob("../*").is_err());
        assert!(h.glob("data/[").is_err());
        // Directories match too.
        let got = h.glob("s*").unwrap();
        assert_eq!(got.len(), 1);
        assert!(got[0].1.is_dir());
    }

    #[test]
    fn stat_cache_bookkeeping() {
        let e = |n: u8| StatEntry {
            size: 1,
            mtime_ns: 2,
            ctime_ns: 3,
            ino: 4,
            digest: [n; 32],
        };
        let c = StatCache::new(vec![("a".into(), e(1)), ("b".into(), e(2))]);
        assert_eq!(c.len(), 2);
        c.insert("a", e(1)); // unchanged: not dirty
        assert!(c.dirty().is_empty());
        c.insert("c", e(3));
        c.remove("b");
        c.remove("zz");
        assert_eq!(c.dirty(), vec![("c".to_string(), e(3))]);
        assert_eq!(c.removed(), vec!["b".to_string()]);
        c.mark_clean();
        assert!(c.dirty().is_empty() && c.removed().is_empty());
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "a", b"x");
        c.prune_missing(dir.path());
        assert_eq!(c.len(), 1);
        assert_eq!(c.removed(), vec!["c".to_string()]);
    }

    #[test]
    fn content_serde() {
        let c = Content::File {
            digest: [1; 32],
            size: 3,
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["digest"], serde_json::json!(hex(&[1; 32])));
        assert_eq!(serde_json::from_value::<Content>(v).unwrap(), c);
    }
}
