//! Pulling: a run-cache entry, then the objects its outputs need, each verified against
//! its name before the local cache names it. What is already in the local cache is not
//! fetched. A directory's packs are fetched whole (one request each) and cut into its
//! files; each file is checked by its blake3.
//!
//! [`Puller`] is the engine's [`RemoteCache`]: `mlp run --pull` and `mlp pull` ask it for
//! a stale stage's identity after the local run-cache missed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use mlp_engine::cache::{CacheError, ObjectCache};
use mlp_engine::hash::{Digest, manifest_digest, parse_hex};
use mlp_engine::remote::RemoteCache;
use mlp_engine::store::{Outcome, StageRecord};

use crate::layout::{self, DirEntry};
use crate::{Remote, RemoteError};

/// Fetches from one remote into a local cache.
#[derive(Debug)]
pub struct Puller {
    remote: OnceLock<Arc<dyn Remote>>,
    /// `mlp run --pull`: the URL and the workspace root, opened at the first fetch, so a
    /// run with nothing stale never even reads the credentials.
    lazy: Option<(String, PathBuf)>,
    jobs: usize,
}

impl Puller {
    /// A puller from a remote already open (`mlp pull`).
    pub fn new(remote: Arc<dyn Remote>, jobs: usize) -> Self {
        let cell = OnceLock::new();
        let _ = cell.set(remote);
        Puller {
            remote: cell,
            lazy: None,
            jobs,
        }
    }

    /// A puller that opens `url` (relative to `base`) when first asked.
    pub fn lazy(url: &str, base: &Path, jobs: usize) -> Self {
        Puller {
            remote: OnceLock::new(),
            lazy: Some((url.to_string(), base.to_path_buf())),
            jobs,
        }
    }

    fn remote(&self) -> Result<&Arc<dyn Remote>, RemoteError> {
        if let Some(r) = self.remote.get() {
            return Ok(r);
        }
        let Some((url, base)) = &self.lazy else {
            return Err(RemoteError::new("?", "?", "no remote"));
        };
        let r = crate::open(url, base, self.jobs)?;
        r.check(false)?;
        Ok(self.remote.get_or_init(|| r))
    }

    fn url(&self) -> &str {
        match (self.remote.get(), &self.lazy) {
            (Some(r), _) => r.url(),
            (None, Some((u, _))) => u,
            (None, None) => "?",
        }
    }

    fn corrupt(&self, key: &str) -> RemoteError {
        RemoteError::new(
            self.url(),
            key,
            "corrupt on the remote (its bytes do not match its name); nothing was taken from it. Remove it from the remote and push again from a workspace that has it",
        )
    }

    fn cache_err(&self, key: &str, e: CacheError) -> RemoteError {
        match e {
            CacheError::Corrupt { .. } => self.corrupt(key),
            CacheError::Io { source, .. } if source.kind() == std::io::ErrorKind::StorageFull => {
                RemoteError::new(self.url(), key, "the local disk is full; nothing was kept")
            }
            other => RemoteError::new(self.url(), key, other.to_string()),
        }
    }

    fn incomplete(&self, key: &str) -> RemoteError {
        RemoteError::new(
            self.url(),
            key,
            "missing on the remote, though a run-cache entry needs it; push again from a workspace that has it",
        )
    }

    /// The remote's successful record for `identity`, its objects in `cache`.
    pub fn fetch_record(
        &self,
        identity: &str,
        cache: &ObjectCache,
    ) -> Result<Option<StageRecord>, RemoteError> {
        let key = layout::runcache(identity);
        let Some(bytes) = self.remote()?.get(&key)? else {
            return Ok(None);
        };
        let rec: StageRecord = serde_json::from_slice(&bytes).map_err(|_| self.corrupt(&key))?;
        if rec.identity != identity {
            return Err(self.corrupt(&key));
        }
        if !matches!(
            rec.outcome,
            Outcome::Succeeded | Outcome::CheckFailed { .. }
        ) {
            return Ok(None);
        }
        for o in &rec.outputs {
            if o.digest == "missing" {
                continue;
            }
            let Some(d) = parse_hex(&o.digest) else {
                return Err(self.corrupt(&key));
            };
            if o.is_dir {
                self.dir(&d, cache)?;
            } else {
                self.blob(&d, cache)?;
            }
        }
        Ok(Some(rec))
    }

    fn blob(&self, d: &Digest, cache: &ObjectCache) -> Result<(), RemoteError> {
        if cache.has_blob(d) {
            return Ok(());
        }
        let key = layout::object(d);
        let tmp = cache.temp_path();
        if !self.remote()?.get_to_file(&key, &tmp)? {
            return Err(self.incomplete(&key));
        }
        cache
            .import_file(&tmp, d, &key)
            .map_err(|e| self.cache_err(&key, e))
    }

    fn dir(&self, d: &Digest, cache: &ObjectCache) -> Result<(), RemoteError> {
        if cache
            .manifest(d)
            .ok()
            .flatten()
            .is_some_and(|es| es.iter().all(|e| cache.has_blob(&e.digest)))
        {
            return Ok(());
        }
        let key = layout::dir(d);
        let bytes = self
            .remote()?
            .get(&key)?
            .ok_or_else(|| self.incomplete(&key))?;
        let entry: DirEntry = serde_json::from_slice(&bytes).map_err(|_| self.corrupt(&key))?;
        if &manifest_digest(&entry.entries) != d {
            return Err(self.corrupt(&key));
        }
        // The packs that hold a file we lack, and the big files we lack.
        let mut want_packs: Vec<usize> = entry
            .index
            .iter()
            .filter(|s| !cache.has_blob(&s.digest))
            .map(|s| s.pack)
            .collect();
        want_packs.sort_unstable();
        want_packs.dedup();
        let packed: std::collections::HashSet<Digest> =
            entry.index.iter().map(|s| s.digest).collect();
        let mut big: Vec<Digest> = entry
            .entries
            .iter()
            .map(|e| e.digest)
            .filter(|x| !packed.contains(x) && !cache.has_blob(x))
            .collect();
        big.sort_unstable();
        big.dedup();
        let work: Vec<Work> = want_packs
            .into_iter()
            .map(Work::Pack)
            .chain(big.into_iter().map(Work::Blob))
            .collect();
        parallel(self.jobs, &work, |w| match w {
            Work::Blob(b) => self.blob(b, cache),
            Work::Pack(i) => {
                let name = entry.packs.get(*i).ok_or_else(|| self.corrupt(&key))?;
                let pk = layout::pack(name);
                let bytes = self
                    .remote()?
                    .get(&pk)?
                    .ok_or_else(|| self.incomplete(&pk))?;
                if blake3::hash(&bytes).as_bytes() != name {
                    return Err(self.corrupt(&pk));
                }
                for s in entry.index.iter().filter(|s| s.pack == *i) {
                    let (a, b) = (
                        usize::try_from(s.offset).unwrap_or(usize::MAX),
                        usize::try_from(s.offset + s.len).unwrap_or(usize::MAX),
                    );
                    let slice = bytes.get(a..b).ok_or_else(|| self.corrupt(&key))?;
                    cache
                        .import_bytes(slice, &s.digest, &pk)
                        .map_err(|e| self.cache_err(&pk, e))?;
                }
                Ok(())
            }
        })?;
        cache
            .import_manifest(d, &entry.entries, &key)
            .map_err(|e| self.cache_err(&key, e))
    }
}

enum Work {
    Pack(usize),
    Blob(Digest),
}

/// Runs `f` over `items` on up to `jobs` threads; the first error wins.
fn parallel<T: Sync>(
    jobs: usize,
    items: &[T],
    f: impl Fn(&T) -> Result<(), RemoteError> + Sync,
) -> Result<(), RemoteError> {
    if items.len() <= 1 {
        return items.iter().try_for_each(f);
    }
    let next = std::sync::atomic::AtomicUsize::new(0);
    let failed: std::sync::Mutex<Option<RemoteError>> = std::sync::Mutex::new(None);
    std::thread::scope(|sc| {
        for _ in 0..jobs.clamp(1, items.len()) {
            sc.spawn(|| {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    let stop = failed.lock().map_or(true, |g| g.is_some());
                    if i >= items.len() || stop {
                        return;
                    }
                    if let Err(e) = f(&items[i])
                        && let Ok(mut g) = failed.lock()
                    {
                        g.get_or_insert(e);
                    }
                }
            });
        }
    });
    match failed.into_inner() {
        Ok(Some(e)) => Err(e),
        _ => Ok(()),
    }
}

impl RemoteCache for Puller {
    fn fetch(&self, identity: &str, cache: &ObjectCache) -> Result<Option<StageRecord>, String> {
        self.fetch_record(identity, cache)
            .map_err(|e| e.to_string())
    }
}
