//! Replaced and cleared outputs go to `.mlp/cache/trash/` and are deleted in the
//! background (a detached `rm -rf`): unlinking a gigabyte file frees its blocks synchronously (0.6–1 s
//! on ext4), which a restore or a run should not wait for. What a finished process
//! leaves there is deleted by the next one that opens the cache.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc::{Sender, channel};

use super::temp::{remove_any, unique};

/// Files smaller than this are deleted in place rather than through the trash.
const SMALL: u64 = 1 << 20;

/// The trash directory of the cache at `cache_root`.
pub(super) fn dir(cache_root: &Path) -> PathBuf {
    cache_root.join("trash")
}

fn remover() -> Option<Sender<PathBuf>> {
    static TX: Mutex<Option<Sender<PathBuf>>> = Mutex::new(None);
    let mut tx = TX.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if tx.is_none() {
        let (send, recv) = channel::<PathBuf>();
        let spawned = std::thread::Builder::new()
            .name("mlp-trash".into())
            .spawn(move || {
                for p in recv {
                    let _ = remove_any(&p);
                }
            });
        if spawned.is_ok() {
            *tx = Some(send);
        }
    }
    tx.clone()
}

/// Deletes `p` in the background: by a detached `rm -rf` (a process exit waits for an
/// unlink in progress in any of its threads, so a thread would not spare the caller the
/// time), else by the background thread, else at once.
pub(super) fn remove_later(p: PathBuf) {
    // By path: a PATH search costs an exec attempt per directory.
    let rm = if Path::new("/bin/rm").exists() {
        "/bin/rm"
    } else {
        "rm"
    };
    let rm = std::process::Command::new(rm)
        .arg("-rf")
        .arg("--")
        .arg(&p)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if let Ok(mut child) = rm {
        // Reap it without waiting here (a long-lived `mlp watch` would collect zombies).
        let reaped = std::thread::Builder::new()
            .name("mlp-trash-reap".into())
            .spawn(move || {
                let _ = child.wait();
            });
        if reaped.is_ok() {
            return;
        }
    }
    match remover() {
        Some(tx) => {
            if let Err(e) = tx.send(p) {
                let _ = remove_any(&e.0);
            }
        }
        None => {
            let _ = remove_any(&p);
        }
    }
}

/// Moves `p` (a file, symlink or directory; absent is fine) into the trash under
/// `cache_root` and deletes it in the background. Where it cannot be moved (another
/// filesystem), it is deleted in place.
pub(super) fn discard(cache_root: &Path, p: &Path) -> io::Result<()> {
    let Ok(meta) = fs::symlink_metadata(p) else {
        return Ok(());
    };
    if !meta.is_dir() && (meta.nlink() > 1 || meta.len() < SMALL) {
        // Unlinking frees no blocks (another name keeps them: link mode's old output
        // is an object's) or few: at once, without a process for it.
        return remove_any(p);
    }
    let trash = dir(cache_root);
    let aside = trash.join(unique());
    let moved = fs::create_dir_all(&trash).and_then(|()| fs::rename(p, &aside));
    match moved {
        Ok(()) => {
            remove_later(aside);
            Ok(())
        }
        Err(_) => remove_any(p),
    }
}

/// Keeps a second name for the file at `p` in the trash, so that replacing `p` by
/// `rename` does not free its blocks on the spot; the trash name is deleted in the
/// background. Returns whether that worked (a directory, another filesystem: no).
pub(super) fn keep_aside(cache_root: &Path, p: &Path) -> bool {
    let trash = dir(cache_root);
    let aside = trash.join(unique());
    if fs::create_dir_all(&trash)
        .and_then(|()| fs::hard_link(p, &aside))
        .is_ok()
    {
        remove_later(aside);
        true
    } else {
        false
    }
}

/// Deletes, in the background, whatever an earlier process left in the trash.
pub(super) fn empty(cache_root: &Path) {
    let Ok(rd) = fs::read_dir(dir(cache_root)) else {
        return;
    };
    for e in rd.flatten() {
        remove_later(e.path());
    }
}
