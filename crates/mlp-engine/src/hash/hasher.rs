//! The [`Hasher`]: hashes the paths of one workspace through a [`StatCache`].

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rayon::prelude::*;

use super::content::{Content, ManifestEntry, dir_content, hash_file};
use super::stamp::{Stamp, Stamps, hash_file_stamped};
use super::stat::StatCache;
use super::walk::{
    MLP_DIR, NodeKind, Resolved, invalid, normalize_rel, resolve_link, walk, with_path,
};
use crate::store::{Digest, StatEntry};

/// Files modified less than this long before hashing started are not cached.
pub const RACY_WINDOW: Duration = Duration::from_secs(2);

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

/// Hashes paths of one workspace through a [`StatCache`].
pub struct Hasher<'a> {
    root: &'a Path,
    canon_root: PathBuf,
    cache: &'a StatCache,
    stamps: Option<&'a Stamps>,
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
            stamps: None,
            read: AtomicU64::new(0),
            cached: AtomicU64::new(0),
        }
    }

    /// Also note in `stamps` every digest a file's stamp vouches for (a stage's outputs,
    /// which the object cache then need not read again).
    pub fn vouching(mut self, stamps: &'a Stamps) -> Self {
        self.stamps = Some(stamps);
        self
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
            if let Some(stamps) = self.stamps {
                stamps.insert(Stamp::of(meta), e.digest);
            }
            return Ok((e.digest, e.size));
        }
        // Racy is judged against the start: a write during a long hash, in the clock
        // tick of `meta`'s mtime, would not show in the stat.
        let started = now_ns();
        let (digest, size) = match self.stamps {
            Some(stamps) => {
                let (digest, size, stamp) =
                    hash_file_stamped(abs).map_err(|e| with_path(e, abs))?;
                if let Some(stamp) = stamp {
                    stamps.insert(stamp, digest);
                }
                (digest, size)
            }
            None => hash_file(abs).map_err(|e| with_path(e, abs))?,
        };
        self.read.fetch_add(1, Ordering::Relaxed);
        let racy = mtime_ns > started - RACY_WINDOW.as_nanos() as i128;
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
