//! `mlp push`: the cached outputs of some records, then their run-cache entries.
//!
//! Order makes an interrupted push harmless: objects first (each written whole), a
//! directory's entry after its packs and objects, a run-cache entry after everything
//! its outputs need. A pull trusts only what a run-cache entry names, so whatever a
//! killed push left is either complete or unreachable (and `gc --remote` takes it).
//!
//! Existence is asked per candidate, few per stage: a run-cache entry already there
//! means the stage is skipped whole; a directory entry there means all its files are.
//! A directory's files under [`crate::PACK_BELOW`] travel in packs (one request per
//! 32 MiB, not one per file); bigger files are objects of their own.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use mlp_engine::cache::ObjectCache;
use mlp_engine::hash::{Digest, ManifestEntry, parse_hex};
use mlp_engine::store::StageRecord;

use crate::layout::{self, DirEntry, Ref, Slice};
use crate::{PACK_BELOW, Remote, RemoteError};

/// A pack is closed when it reaches this size.
const PACK_MAX: u64 = 32 * 1024 * 1024;

/// What a push did.
#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct PushReport {
    /// Objects (files, packs, directory and run-cache entries) uploaded.
    pub objects_sent: u64,
    pub bytes_sent: u64,
    /// Stages whose entry the remote already had, and objects it already had.
    pub skipped: u64,
    /// Run-cache entries written.
    pub entries_sent: u64,
    pub seconds: f64,
}

/// Pushes records' outputs from a local cache.
pub struct Pusher<'a> {
    pub remote: Arc<dyn Remote>,
    pub cache: &'a ObjectCache,
    pub jobs: usize,
    /// Called with (done, total) as objects go.
    pub progress: &'a (dyn Fn(u64, u64) + Sync),
}

#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Task {
    Blob(Digest),
    Dir(Digest),
}

struct Counters {
    sent: AtomicU64,
    bytes: AtomicU64,
    skipped: AtomicU64,
    done: AtomicU64,
}

impl Pusher<'_> {
    fn url(&self) -> &str {
        self.remote.url()
    }

    /// Runs `f` over `items` on `jobs` threads; the first error stops the rest.
    fn parallel<T: Sync, R: Send>(
        &self,
        items: &[T],
        f: impl Fn(&T) -> Result<R, RemoteError> + Sync,
    ) -> Result<Vec<R>, RemoteError> {
        let next = AtomicU64::new(0);
        let results: std::sync::Mutex<Vec<(usize, R)>> = std::sync::Mutex::new(Vec::new());
        let failed: std::sync::Mutex<Option<RemoteError>> = std::sync::Mutex::new(None);
        let threads = self.jobs.clamp(1, items.len().max(1));
        std::thread::scope(|sc| {
            for _ in 0..threads {
                sc.spawn(|| {
                    loop {
                        let i = usize::try_from(next.fetch_add(1, Ordering::Relaxed))
                            .unwrap_or(usize::MAX);
                        if i >= items.len() || lock(&failed).is_some() {
                            return;
                        }
                        match f(&items[i]) {
                            Ok(r) => lock(&results).push((i, r)),
                            Err(e) => {
                                lock(&failed).get_or_insert(e);
                                return;
                            }
                        }
                    }
                });
            }
        });
        if let Some(e) = failed.into_inner().unwrap_or_else(|p| p.into_inner()) {
            return Err(e);
        }
        let mut r = results.into_inner().unwrap_or_else(|p| p.into_inner());
        r.sort_by_key(|(i, _)| *i);
        Ok(r.into_iter().map(|(_, r)| r).collect())
    }

    fn local_missing(&self, what: &str) -> RemoteError {
        RemoteError::new(
            self.url(),
            what,
            "not in the local cache (collected by `mlp gc`?); run the stage again, then push",
        )
    }

    /// Uploads the outputs of `records` and then their run-cache entries.
    pub fn push(&self, records: &[StageRecord]) -> Result<PushReport, RemoteError> {
        let started = Instant::now();
        self.remote.check(true)?;
        let mut seen = HashSet::new();
        let records: Vec<&StageRecord> = records
            .iter()
            .filter(|r| seen.insert(r.identity.clone()))
            .collect();
        let there = self.parallel(&records, |r| {
            self.remote.exists(&layout::runcache(&r.identity))
        })?;
        let todo: Vec<&StageRecord> = records
            .iter()
            .zip(&there)
            .filter(|(_, t)| !**t)
            .map(|(r, _)| *r)
            .collect();
        let c = Counters {
            sent: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            skipped: AtomicU64::new((records.len() - todo.len()) as u64),
            done: AtomicU64::new(0),
        };
        let mut tasks: Vec<Task> = todo
            .iter()
            .flat_map(|r| r.outputs.iter())
            .filter_map(|o| {
                let d = parse_hex(&o.digest)?;
                Some(if o.is_dir {
                    Task::Dir(d)
                } else {
                    Task::Blob(d)
                })
            })
            .collect();
        tasks.sort();
        tasks.dedup();
        let total = tasks.len() as u64 + todo.len() as u64;
        (self.progress)(0, total);
        self.parallel(&tasks, |t| {
            match t {
                Task::Blob(d) => self.blob(d, &c)?,
                Task::Dir(d) => self.dir(d, &c)?,
            }
            let n = c.done.fetch_add(1, Ordering::Relaxed) + 1;
            (self.progress)(n, total);
            Ok(())
        })?;
        self.parallel(&todo, |r| {
            let json = serde_json::to_vec_pretty(r)
                .map_err(|e| RemoteError::new(self.url(), "runcache", e.to_string()))?;
            self.remote.put(&layout::runcache(&r.identity), &json)?;
            c.sent.fetch_add(1, Ordering::Relaxed);
            c.bytes.fetch_add(json.len() as u64, Ordering::Relaxed);
            let n = c.done.fetch_add(1, Ordering::Relaxed) + 1;
            (self.progress)(n, total);
            Ok(())
        })?;
        Ok(PushReport {
            objects_sent: c.sent.into_inner(),
            bytes_sent: c.bytes.into_inner(),
            skipped: c.skipped.into_inner(),
            entries_sent: todo.len() as u64,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    fn blob(&self, d: &Digest, c: &Counters) -> Result<(), RemoteError> {
        let key = layout::object(d);
        if self.remote.exists(&key)? {
            c.skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let src = self.cache.blob_path(d);
        let size = std::fs::metadata(&src)
            .map_err(|_| self.local_missing(&key))?
            .len();
        self.remote.put_file(&key, &src)?;
        c.sent.fetch_add(1, Ordering::Relaxed);
        c.bytes.fetch_add(size, Ordering::Relaxed);
        Ok(())
    }

    fn dir(&self, d: &Digest, c: &Counters) -> Result<(), RemoteError> {
        let key = layout::dir(d);
        if self.remote.exists(&key)? {
            c.skipped.fetch_add(1, Ordering::Relaxed);
            return Ok(());
        }
        let entries = self
            .cache
            .manifest(d)
            .ok()
            .flatten()
            .ok_or_else(|| self.local_missing(&key))?;
        let (small, big): (Vec<&ManifestEntry>, Vec<&ManifestEntry>) =
            entries.iter().partition(|e| e.size < PACK_BELOW);
        // Packs: the distinct small files, in manifest order, cut at PACK_MAX.
        let mut packs: Vec<Vec<u8>> = Vec::new();
        let mut index: Vec<Slice> = Vec::new();
        let mut in_pack = HashSet::new();
        for e in small {
            if !in_pack.insert(e.digest) {
                continue;
            }
            let path = self.cache.blob_path(&e.digest);
            let bytes =
                std::fs::read(&path).map_err(|_| self.local_missing(&layout::object(&e.digest)))?;
            if packs
                .last()
                .is_none_or(|p| p.len() as u64 + bytes.len() as u64 > PACK_MAX)
            {
                packs.push(Vec::new());
            }
            let pack = packs.len() - 1;
            let buf = &mut packs[pack];
            index.push(Slice {
                digest: e.digest,
                pack,
                offset: buf.len() as u64,
                len: bytes.len() as u64,
            });
            buf.extend_from_slice(&bytes);
        }
        let names: Vec<Digest> = packs.iter().map(|p| *blake3::hash(p).as_bytes()).collect();
        let mut big_digests: Vec<Digest> = big.iter().map(|e| e.digest).collect();
        big_digests.sort();
        big_digests.dedup();
        let pack_jobs: Vec<(usize, &Digest)> = names.iter().enumerate().collect();
        self.parallel(&pack_jobs, |(i, name)| {
            let pk = layout::pack(name);
            if self.remote.exists(&pk)? {
                c.skipped.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            self.remote.put(&pk, &packs[*i])?;
            c.sent.fetch_add(1, Ordering::Relaxed);
            c.bytes.fetch_add(packs[*i].len() as u64, Ordering::Relaxed);
            Ok(())
        })?;
        self.parallel(&big_digests, |b| self.blob(b, c))?;
        let entry = DirEntry {
            entries,
            packs: names,
            index,
        };
        let json = serde_json::to_vec(&entry)
            .map_err(|e| RemoteError::new(self.url(), &key, e.to_string()))?;
        self.remote.put(&key, &json)?;
        c.sent.fetch_add(1, Ordering::Relaxed);
        c.bytes.fetch_add(json.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    /// Records in `refs/<workspace>` which identities this workspace needs, per stage
    /// (replacing what it said before for the same stages).
    pub fn write_ref(
        &self,
        workspace: &str,
        stages: &BTreeMap<String, Vec<String>>,
    ) -> Result<(), RemoteError> {
        let key = layout::reference(workspace);
        let mut r: Ref = self
            .remote
            .get(&key)?
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        for (s, ids) in stages {
            r.stages.insert(s.clone(), ids.clone());
        }
        r.updated_ms = now_ms();
        let json = serde_json::to_vec_pretty(&r)
            .map_err(|e| RemoteError::new(self.url(), &key, e.to_string()))?;
        self.remote.put(&key, &json)
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// This workspace's name on remotes (`refs/<id>`): random, kept in `.mlp/remote-id`.
pub fn workspace_id(mlp_dir: &Path) -> std::io::Result<String> {
    let path: PathBuf = mlp_dir.join("remote-id");
    if let Ok(s) = std::fs::read_to_string(&path)
        && s.trim().len() == 16
    {
        return Ok(s.trim().to_string());
    }
    let seed = format!(
        "{}-{}-{}",
        mlp_dir.display(),
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let id = blake3::hash(seed.as_bytes()).to_hex()[..16].to_string();
    let tmp = mlp_dir.join(format!("remote-id.tmp-{}", std::process::id()));
    std::fs::create_dir_all(mlp_dir)?;
    std::fs::write(&tmp, &id)?;
    std::fs::rename(&tmp, &path)?;
    Ok(id)
}
