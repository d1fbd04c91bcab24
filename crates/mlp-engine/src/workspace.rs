//! Where a workspace keeps its state: everything under `<root>/.mlp/`.
//!
//! ```text
//! .mlp/lock          held by the one `mlp run` of this workspace
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

    ///
    /// A store that sled finds corrupt when it reopens it (sled 0.34 can rarely leave one
    /// after a kill -9) is moved aside to `.mlp/store.corrupt-MS`, not deleted, and a new
    /// one is started: the outputs and the object cache are intact, so the next run reruns
    /// what it can no longer prove fresh. The new store names the old one under
    /// [`RECOVERED_FROM`], and `mlp run` warns once.
    pub fn open_store(&self) -> Result<SledStore, StoreError> {
        let path = self.store_path();
        match SledStore::open(&path) {
            Err(StoreError::Sled {
                source: sled::Error::Corruption { .. },
                ..
            }) => {
                let aside = self.dir.join(format!("store.corrupt-{}", now_ms()));
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
