//! What a kill -9 can leave in a sled directory that sled 0.34 itself trips over.
//!
//! sled writes a snapshot to `snap.<LSN>.generating`, syncs it and renames it to
//! `snap.<LSN>`. When it opens a database it takes the last-sorting `snap.*` file without
//! skipping `.generating` ones (spacejam/sled#1527), and `snap.X.generating` sorts after
//! `snap.X`: a process killed while writing a snapshot leaves a torn file that makes every
//! later open fail with "Corruption". The file is never needed (the finished snapshot, or
//! the log, holds the same state), so it is deleted before sled opens the database.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io;
use std::path::Path;

/// Deletes `snap.*.generating` files in the sled directory `dir`, but only when no live
/// process has the database open (sled holds an exclusive `flock` on `dir/db` while it is
/// open; we take the same lock for the moment of the sweep). Returns how many were removed.
/// A missing directory or database file is nothing to do; a database held by someone else
/// is left alone (sled's own open then reports it as locked).
pub(super) fn remove_torn_snapshots(dir: &Path) -> io::Result<usize> {
    let db = dir.join("db");
    let file = match OpenOptions::new().read(true).write(true).open(&db) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(e) => return Err(e),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(0),
        Err(TryLockError::Error(e)) => return Err(e),
    }
    let removed = sweep(dir)?;
    unlock(&file);
    Ok(removed)
}

fn sweep(dir: &Path) -> io::Result<usize> {
    let mut removed = 0;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with("snap.") && name.ends_with(".generating") {
            match fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// Releases the sweep's lock before sled takes its own (closing the file would too).
fn unlock(file: &File) {
    let _ = file.unlock();
}
