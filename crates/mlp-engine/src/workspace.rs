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
//! ```

use std::path::{Path, PathBuf};

use crate::store::{SledStore, StoreError};

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

    pub fn open_store(&self) -> Result<SledStore, StoreError> {
        SledStore::open(&self.store_path())
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
