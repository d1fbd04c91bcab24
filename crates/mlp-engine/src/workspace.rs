//! Where a workspace keeps its state: everything under `<root>/.mlp/`.
//!
//! ```text
//! .mlp/lock          held by whoever has the store open (`mlp run`, a run of `mlp watch`, ...)
//! .mlp/watch.lock    held by the one `mlp watch` of this workspace for its whole life
//! .mlp/runs/         published run records, for reading while the store is held (derived)
//! .mlp/state.bin     the no-op snapshot (derived; safe to delete)
//! .mlp/store/        the sled store: stage records, stat cache, run history
//! .mlp/cache/        the content-addressed object cache of outputs
//! .mlp/logs/RUN/     each stage's output, per run
//! .mlp/slurm/        Slurm job files (STAGE.job) and job results (JOBID.result)
//! .mlp/ray/          Ray job files (STAGE.job)
//! .mlp/running       present while a run runs; left by one that did not finish (sweep.rs)
//! ```

use std::path::{Path, PathBuf};

use crate::store::{SledStore, StoreError};

/// How long [`Workspace::open_store`] retries a store that is still being let go of.
pub const REOPEN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The store's meta key naming where a corrupt store was moved (empty once reported).
pub const RECOVERED_FROM: &str = "recovered_from";

#[derive(Clone, Debug)]
pub struct Workspace {
    pub root: PathBuf,
    pub dir: PathBuf,
}

impl Workspace {
    pub fn new(root: &Path) -> Self {
        let root = if root.as_os_str().is_empty() {
            PathBuf::from(".")
        } else {
            root.to_path_buf()
        };
        let dir = root.join(crate::hash::MLP_DIR);
        Workspace { root, dir }
    }

    pub fn snapshot_path(&self) -> PathBuf {
        self.dir.join("state.bin")
    }

    pub fn store_path(&self) -> PathBuf {
        self.dir.join("store")
    }

    pub fn cache_path(&self) -> PathBuf {
        self.dir.join("cache")
    }

    pub fn log_path(&self, run: &str, stage: &str) -> PathBuf {
        self.dir.join("logs").join(run).join(format!("{stage}.log"))
    }

    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        let ignore = self.dir.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(ignore, "*\n")?;
        }
        Ok(())
    }

    /// Opens the sled store (under the workspace lock).
    ///
    /// A store that sled finds corrupt when it reopens it (sled 0.34 can rarely leave one
    /// after a kill -9) is moved aside to `.mlp/store.corrupt-MS`, not deleted, and a new
    /// one is started: the outputs and the object cache are intact, so the next run reruns
    /// what it can no longer prove fresh. The new store names the old one under
    /// [`RECOVERED_FROM`], and `mlp run` warns once.
    ///
    /// Callers hold the workspace lock, so no other live command has the store open; a
    /// store found locked is one the previous holder just closed, whose sled threads are
    /// still letting go of it (this process's own previous run, in `mlp watch`, or a
    /// command that just ended): retried for up to [`REOPEN_WAIT`].
    pub fn open_store(&self) -> Result<SledStore, StoreError> {
        let start = std::time::Instant::now();
        loop {
            match self.open_store_once() {
                Err(StoreError::Locked { .. }) if start.elapsed() < REOPEN_WAIT => {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                r => return r,
            }
        }
    }

    fn open_store_once(&self) -> Result<SledStore, StoreError> {
        let path = self.store_path();
        match SledStore::open(&path) {
            Err(StoreError::Sled {
                source: sled::Error::Corruption { .. },
                ..
            }) => {
                let ms = now_ms();
                let aside = self.dir.join(format!("store.corrupt-{ms}"));
                // The new store's run ids start again: the old published records go too.
                crate::published::move_aside(self, &format!("corrupt-{ms}"));
                std::fs::rename(&path, &aside).map_err(|e| StoreError::Sled {
                    path: path.clone(),
                    source: sled::Error::Io(e),
                })?;
                let store = SledStore::open(&path)?;
                use crate::store::Store;
                store.put_meta(RECOVERED_FROM, &aside.display().to_string())?;
                Ok(store)
            }
            r => r,
        }
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

pub fn ms_of(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
