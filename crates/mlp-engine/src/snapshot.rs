//! The no-op path. `.mlp/state.bin` is a compact snapshot written at the end of every
//! run: the stat of every file the pipeline was planned from, of every input and output
//! of every up-to-date stage, and per stage what it was up to date with. When nothing was
//! touched since, `mlp run` reads this one file, stats what it lists and stops: no
//! parsing, no store. It is derived state: when it is missing, stale or unreadable, the
//! engine takes the full path (parse, hash, consult the store) and writes it anew.
//!
//! Stat equality stands for content equality (as in make, ninja and git), with git's
//! guard against "racily clean" files: an entry whose mtime is within `RACY_NS` of the
//! moment the snapshot was written may have been modified again within the same
//! timestamp tick, so its content is re-hashed and compared instead.

use std::collections::HashMap;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::hash::Digest;

/// Bump when the layout changes (an old snapshot is then ignored, never misread).
const VERSION: u32 = 2;
const MAGIC: &[u8; 8] = b"mlpsnap\0";

/// A file's timestamps advance at least this often on the filesystems mlp supports
/// (ext4, xfs, btrfs, tmpfs, NFSv4 on Linux: nanosecond fields, kernel ticks ≤ 10 ms).
pub const RACY_NS: i128 = 50_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    Missing,
    File,
    Dir,
}

/// What a path looked like when the snapshot was taken.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub path: String,
    pub kind: Kind,
    pub size: u64,
    pub mtime_ns: i128,
    pub ctime_ns: i128,
    pub ino: u64,
    /// Files: the content digest, to verify a racily clean entry.
    pub digest: Option<Digest>,
}

impl Entry {
    /// Stat a path now (following symlinks).
    pub fn stat(root: &Path, path: &str) -> io::Result<Entry> {
        let full = root.join(path);
        match std::fs::metadata(&full) {
            Ok(m) => Ok(Entry {
                path: path.to_string(),
                kind: if m.is_dir() { Kind::Dir } else { Kind::File },
                size: if m.is_dir() { 0 } else { m.len() },
                mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
                ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
                ino: m.ino(),
                digest: None,
            }),
            Err(e) if e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(20) => {
                Ok(Entry {
                    path: path.to_string(),
                    kind: Kind::Missing,
                    size: 0,
                    mtime_ns: 0,
                    ctime_ns: 0,
                    ino: 0,
                    digest: None,
                })
            }
            Err(e) => Err(e),
        }
    }

    fn same_stat(&self, now: &Entry) -> bool {
        self.kind == now.kind
            && self.size == now.size
            && self.mtime_ns == now.mtime_ns
            && self.ctime_ns == now.ctime_ns
            && self.ino == now.ino
    }
}

/// What one stage was up to date with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StageSnap {
    pub name: String,
    /// Digest of everything in its key but input contents (command, input paths, params,
    /// env, outputs): when the plan changes this, the entry no longer applies.
    pub shape: Digest,
    pub identity: Digest,
    /// Indexes into `Snapshot::entries`: its inputs (expanded) and its outputs.
    pub watch: Vec<u32>,
    pub always: bool,
    /// Skipped by a `when` in that run (it watches nothing: it stays skipped while every
    /// other stage stays fresh).
    pub skipped: bool,
    /// For `every`: when it last succeeded, and how long that stays fresh.
    pub succeeded_ms: u64,
    pub every_ms: Option<u64>,
    /// How long it last took to run (for critical-path scheduling).
    pub duration_ms: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// When it was written (ns since the epoch).
    pub written_ns: i128,
    /// The pipeline file (workspace-relative) it describes.
    pub pipeline_file: String,
    /// How many stages the pipeline has (the no-op needs every one of them fresh).
    pub total_stages: usize,
    /// Indexes of the pipeline's source files in `entries`.
    pub sources: Vec<u32>,
    /// The `--set` overrides the plan was made with.
    pub overrides: Vec<(String, String)>,
    pub entries: Vec<Entry>,
    /// Up-to-date stages, by name.
    pub stages: Vec<StageSnap>,
}

/// The verdict of comparing a snapshot with the disk.
pub struct Check {
    /// The pipeline's sources are as they were.
    pub sources_ok: bool,
    /// For each snapshot stage: its watched paths are as they were and its `every`
    /// has not expired.
    pub fresh: HashMap<String, bool>,
}

impl Check {
    pub fn all_fresh(&self) -> bool {
        self.sources_ok && self.fresh.values().all(|f| *f)
    }
}

impl Snapshot {
    pub fn read(path: &Path) -> Option<Snapshot> {
        let bytes = std::fs::read(path).ok()?;
        let body = bytes.strip_prefix(MAGIC.as_slice())?;
        let (version, rest) = body.split_first_chunk::<4>()?;
        if u32::from_le_bytes(*version) != VERSION {
            return None;
        }
        let mut snap: Snapshot = postcard::from_bytes(rest).ok()?;
        if !snap.stages.is_sorted_by(|a, b| a.name <= b.name) {
            snap.stages.sort_by(|a, b| a.name.cmp(&b.name));
        }
        Some(snap)
    }

    /// Write atomically: a temp file renamed over the old one.
    pub fn write(&self, path: &Path) -> io::Result<()> {
        let mut bytes = Vec::with_capacity(64 + self.entries.len() * 64);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&VERSION.to_le_bytes());
        let body = postcard::to_allocvec(self).map_err(io::Error::other)?;
        bytes.extend_from_slice(&body);
        let tmp = path.with_extension(format!("tmp{}", std::process::id()));
        std::fs::write(&tmp, &bytes)?;
        std::fs::rename(&tmp, path)
    }

    /// Stat every entry (in parallel) and decide which stages are still fresh.
    pub fn check(&self, root: &Path, now_ms: u64) -> Check {
        let ok: Vec<bool> = self
            .entries
            .par_iter()
            .map(|e| self.entry_ok(root, e))
            .collect();
        let sources_ok = self.sources.iter().all(|&i| ok[i as usize]);
        let fresh = self
            .stages
            .iter()
            .map(|s| {
                let expired = s
                    .every_ms
                    .is_some_and(|every| now_ms >= s.succeeded_ms.saturating_add(every));
                let f = !s.always && !expired && s.watch.iter().all(|&i| ok[i as usize]);
                (s.name.clone(), f)
            })
            .collect();
        Check { sources_ok, fresh }
    }

    fn entry_ok(&self, root: &Path, e: &Entry) -> bool {
        let Ok(now) = Entry::stat(root, &e.path) else {
            return false;
        };
        if !e.same_stat(&now) {
            return false;
        }
        if e.kind == Kind::Missing || e.mtime_ns < self.written_ns - RACY_NS {
            return true;
        }
        // Racily clean: the bytes decide.
        match (e.kind, e.digest) {
            (Kind::File, Some(d)) => {
                crate::hash::hash_file(&root.join(&e.path)).is_ok_and(|(now, _)| now == d)
            }
            _ => false,
        }
    }

    /// The stage's entry, when it still applies to a stage of this shape.
    pub fn stage(&self, name: &str) -> Option<&StageSnap> {
        self.stages
            .binary_search_by(|s| s.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.stages[i])
    }
}

/// What a stage was up to date with, for the next snapshot: the paths it read and wrote
/// as they were, and its identity.
#[derive(Default, Clone, Debug)]
pub struct Watch {
    pub entries: Vec<Entry>,
    pub identity: Digest,
}

/// Collects entries (each path once) while a snapshot is being built.
#[derive(Default)]
pub struct Builder {
    index: HashMap<String, u32>,
    pub entries: Vec<Entry>,
}

impl Builder {
    pub fn add(&mut self, e: Entry) -> u32 {
        if let Some(&i) = self.index.get(&e.path) {
            return i;
        }
        let i = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
        self.index.insert(e.path.clone(), i);
        self.entries.push(e);
        i
    }

    /// [`Builder::add`], copying the entry only when the path is new.
    pub fn add_ref(&mut self, e: &Entry) -> u32 {
        match self.index.get(&e.path) {
            Some(&i) => i,
            None => self.add(e.clone()),
        }
    }

    /// Carry over the entries a still-fresh stage of an older snapshot watched.
    pub fn carry(&mut self, old: &Snapshot, watch: &[u32]) -> Vec<u32> {
        watch
            .iter()
            .filter_map(|&i| old.entries.get(i as usize))
            .map(|e| self.add_ref(e))
            .collect()
    }
}

/// Stat what a stage reads or writes at `path`, before it is hashed: a file; a directory
/// and everything below it (directories too, so that an added or removed file shows); or
/// for a glob, the directories it searches and the files it matches. Stat-then-hash is
/// what makes the snapshot safe: a change after the stat shows as a changed stat later.
pub fn watch(root: &Path, path: &str, glob: bool) -> io::Result<Vec<Entry>> {
    if !glob {
        let e = Entry::stat(root, path)?;
        let is_dir = e.kind == Kind::Dir;
        let mut out = vec![e];
        if is_dir {
            walk(root, path, &mut out, &|_| true)?;
        }
        return Ok(out);
    }
    // The literal directory prefix of the pattern.
    let mut base: Vec<&str> = Vec::new();
    for part in path.split('/') {
        if part.contains(['*', '?', '[']) {
            break;
        }
        base.push(part);
    }
    let base = base.join("/");
    let e = Entry::stat(root, &base)?;
    let is_dir = e.kind == Kind::Dir;
    let mut out = vec![e];
    if is_dir {
        walk(root, &base, &mut out, &|p| mlp_plan::glob_match(path, p))?;
    }
    Ok(out)
}

fn walk(
    root: &Path,
    dir: &str,
    out: &mut Vec<Entry>,
    keep_file: &dyn Fn(&str) -> bool,
) -> io::Result<()> {
    let full = if dir.is_empty() {
        root.to_path_buf()
    } else {
        root.join(dir)
    };
    let mut names: Vec<String> = std::fs::read_dir(&full)?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    for n in names {
        if dir.is_empty() && n == crate::hash::MLP_DIR {
            continue;
        }
        let p = if dir.is_empty() {
            n
        } else {
            format!("{dir}/{n}")
        };
        let e = Entry::stat(root, &p)?;
        match e.kind {
            Kind::Dir => {
                out.push(e);
                walk(root, &p, out, keep_file)?;
            }
            Kind::File if keep_file(&p) => out.push(e),
            _ => {}
        }
    }
    Ok(())
}
