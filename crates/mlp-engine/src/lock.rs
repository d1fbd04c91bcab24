//! One `mlp run` per workspace: an exclusive lock on `.mlp/lock`.
//!
//! The lock is an OS file lock (`flock(2)` via [`std::fs::File::try_lock`]),
//! held by the open file description: it is released when the
//! [`WorkspaceLock`] is dropped, and by the kernel when the process dies for
//! any reason (even `kill -9`), so a crash never leaves a stale lock. Two
//! opens of the file in one process conflict like two processes do.
//!
//! After acquiring, the holder writes a short JSON description of itself
//! (pid, host, what, start time) into the file, so that a process that finds
//! the lock taken can say who holds it. The description is cleared (while
//! still holding the lock) on drop.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Name of the lock file inside the `.mlp` directory.
pub const LOCK_FILE: &str = "lock";

/// Name of the file `mlp watch` locks for its whole life (one watcher per workspace); the
/// workspace lock it takes only while a run is in progress.
pub const WATCH_LOCK_FILE: &str = "watch.lock";

/// How long a read-only command that needs the store (`status`, `explain`,
/// `run --dry-run`) waits for the workspace by default.
pub const READ_WAIT: Duration = Duration::from_secs(30);

/// How long [`acquire_patiently`] waits, and what it says while it does.
pub struct Patience<'a> {
    /// Give up after this long (`None`: wait as long as it takes).
    pub limit: Option<Duration>,
    /// Give up when this is set (Ctrl-C).
    pub cancel: Option<&'a AtomicBool>,
    /// Told the holder's description once, when the lock is first found taken.
    pub waiting: Option<&'a mut dyn FnMut(&str)>,
}

impl Patience<'_> {
    /// Do not wait: fail at once when the lock is taken.
    pub fn none() -> Patience<'static> {
        Patience {
            limit: Some(Duration::ZERO),
            cancel: None,
            waiting: None,
        }
    }
}

/// Errors from [`acquire`].
#[derive(thiserror::Error, Debug)]
pub enum LockError {
    /// Someone else holds the lock.
    #[error("another {holder} holds {}", path.display())]
    Held {
        /// Who holds it, e.g. `mlp run (pid 1234 on host, started 13:05:11 UTC)`.
        holder: String,
        /// The lock file.
        path: PathBuf,
    },
    /// The lock file could not be created, opened or locked.
    #[error("workspace lock: {0}")]
    Io(#[from] io::Error),
}

/// What the holder writes into the lock file.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
struct Holder {
    pid: u32,
    host: String,
    what: String,
    started_ms: u64,
}

impl Holder {
    fn describe(&self, now_ms: u64) -> String {
        let secs = self.started_ms / 1000;
        let (h, m, s) = ((secs / 3600) % 24, (secs / 60) % 60, secs % 60);
        let ago = now_ms.saturating_sub(self.started_ms) / 1000;
        let ago = if ago < 120 {
            format!("{ago} s ago")
        } else if ago < 2 * 3600 {
            format!("{} min ago", ago / 60)
        } else {
            format!("{} h ago", ago / 3600)
        };
        format!(
            "{} (pid {} on {}, started {h:02}:{m:02}:{s:02} UTC, {ago})",
            self.what, self.pid, self.host
        )
    }
}

/// A held workspace lock; released on drop (or when the process dies).
#[derive(Debug)]
pub struct WorkspaceLock {
    file: File,
    path: PathBuf,
}

impl WorkspaceLock {
    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for WorkspaceLock {
    fn drop(&mut self) {
        // Clear the description while we still hold the lock, then release.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Reads the holder's description (retrying briefly: the holder writes it
/// just after locking).
fn read_holder(file: &mut File) -> String {
    for attempt in 0..5 {
        let mut s = String::new();
        let read = file
            .seek(SeekFrom::Start(0))
            .and_then(|_| file.read_to_string(&mut s));
        if read.is_ok()
            && let Ok(h) = serde_json::from_str::<Holder>(s.trim())
        {
            return h.describe(now_ms());
        }
        if attempt < 4 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    "process".to_string()
}

/// Takes the workspace lock `<mlp_dir>/lock` (creating `mlp_dir` if needed).
///
/// `what` describes the holder (e.g. `"mlp run"`). With `wait`, blocks until
/// the lock is free; otherwise fails at once with [`LockError::Held`].
pub fn acquire(mlp_dir: &Path, what: &str, wait: bool) -> Result<WorkspaceLock, LockError> {
    acquire_file(mlp_dir, LOCK_FILE, what, wait)
}

/// Takes the workspace lock, waiting as `patience` says: polls, tells `waiting` who
/// holds it once, and fails with [`LockError::Held`] (naming the latest holder) when
/// the time is up or `cancel` is set.
pub fn acquire_patiently(
    mlp_dir: &Path,
    what: &str,
    patience: &mut Patience<'_>,
) -> Result<WorkspaceLock, LockError> {
    let start = Instant::now();
    let mut told = false;
    loop {
        match acquire(mlp_dir, what, false) {
            Err(LockError::Held { holder, path }) => {
                let cancelled = patience.cancel.is_some_and(|c| c.load(Ordering::SeqCst));
                if cancelled || patience.limit.is_some_and(|l| start.elapsed() >= l) {
                    return Err(LockError::Held { holder, path });
                }
                if !told {
                    told = true;
                    if let Some(w) = patience.waiting.as_mut() {
                        w(&holder);
                    }
                }
                std::thread::sleep(Duration::from_millis(25));
            }
            other => return other,
        }
    }
}

/// Takes the lock file `<mlp_dir>/<name>` ([`LOCK_FILE`] or [`WATCH_LOCK_FILE`]).
pub fn acquire_file(
    mlp_dir: &Path,
    name: &str,
    what: &str,
    wait: bool,
) -> Result<WorkspaceLock, LockError> {
    std::fs::create_dir_all(mlp_dir).map_err(|e| with_path(e, mlp_dir))?;
    let path = mlp_dir.join(name);
    let mut file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| with_path(e, &path))?;
    if wait {
        file.lock().map_err(|e| with_path(e, &path))?;
    } else {
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = read_holder(&mut file);
                return Err(LockError::Held { holder, path });
            }
            Err(TryLockError::Error(e)) => return Err(with_path(e, &path).into()),
        }
    }
    let lock = WorkspaceLock { file, path };
    let holder = Holder {
        pid: std::process::id(),
        host: nix::unistd::gethostname()
            .ok()
            .and_then(|h| h.into_string().ok())
            .unwrap_or_else(|| "unknown host".into()),
        what: what.to_string(),
        started_ms: now_ms(),
    };
    let json = serde_json::to_string(&holder).map_err(io::Error::other)?;
    let mut f = &lock.file;
    f.set_len(0)
        .and_then(|_| f.seek(SeekFrom::Start(0)))
        .and_then(|_| f.write_all(json.as_bytes()))
        .map_err(|e| with_path(e, &lock.path))?;
    Ok(lock)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::sync::mpsc;

    #[test]
    fn second_acquire_is_held_then_free_after_drop() {
        let dir = tempfile::tempdir().unwrap();
        let mlp = dir.path().join(".mlp");
        let lock = acquire(&mlp, "mlp run", false).unwrap();
        assert_eq!(lock.path(), mlp.join("lock"));
        match acquire(&mlp, "mlp run", false) {
            Err(e @ LockError::Held { .. }) => {
                let msg = e.to_string();
                let pid = format!("pid {}", std::process::id());
                assert!(msg.contains(&pid), "{msg}");
                assert!(msg.starts_with("another mlp run (pid"), "{msg}");
                assert!(
                    msg.contains(&mlp.join("lock").display().to_string()),
                    "{msg}"
                );
                // Only `mlp run` has --wait: the hint is the caller's to give.
                assert!(!msg.contains("--wait"), "{msg}");
            }
            other => panic!("expected Held, got {other:?}"),
        }
        drop(lock);
        let again = acquire(&mlp, "mlp gc", false).unwrap();
        let text = std::fs::read_to_string(mlp.join("lock")).unwrap();
        assert!(text.contains("mlp gc"), "{text}");
        drop(again);
        assert_eq!(std::fs::read_to_string(mlp.join("lock")).unwrap(), "");
    }

    #[test]
    fn wait_blocks_until_released() {
        let dir = tempfile::tempdir().unwrap();
        let mlp = dir.path().join(".mlp");
        let lock = acquire(&mlp, "mlp run", false).unwrap();
        let (tx, rx) = mpsc::channel();
        let mlp2 = mlp.clone();
        let t = std::thread::spawn(move || {
            let l = acquire(&mlp2, "mlp run", true);
            tx.send(()).unwrap();
            l.map(|_| ())
        });
        assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
        drop(lock);
        rx.recv_timeout(Duration::from_secs(10)).unwrap();
        t.join().unwrap().unwrap();
    }

    #[test]
    fn lock_of_killed_process_is_released() {
        // Another process holds the lock (a shell that opens the file,
        // locks it with flock(1) and execs `sleep`, keeping the open file
        // description); SIGKILL frees it.
        if Command::new("flock").arg("--version").output().is_err() {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let mlp = dir.path().join(".mlp");
        std::fs::create_dir_all(&mlp).unwrap();
        let mut child = Command::new("sh")
            .arg("-c")
            .arg("exec 9>>\"$1\" && flock -x 9 && exec sleep 60")
            .arg("sh")
            .arg(mlp.join("lock"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut held = false;
        for _ in 0..200 {
            match acquire(&mlp, "mlp run", false) {
                Err(LockError::Held { holder, .. }) => {
                    assert_eq!(holder, "process");
                    held = true;
                    break;
                }
                Ok(l) => drop(l),
                Err(e) => panic!("{e}"),
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(held, "flock(1) never took the lock");
        child.kill().unwrap();
        child.wait().unwrap();
        let mut ok = false;
        for _ in 0..200 {
            if acquire(&mlp, "mlp run", false).is_ok() {
                ok = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(ok, "lock not released after SIGKILL");
    }

    #[test]
    fn patience_waits_tells_who_and_gives_up() {
        let dir = tempfile::tempdir().unwrap();
        let mlp = dir.path().join(".mlp");
        let lock = acquire(&mlp, "mlp watch", false).unwrap();
        let mut seen = Vec::new();
        let mut note = |h: &str| seen.push(h.to_string());
        let mut p = Patience {
            limit: Some(Duration::from_millis(100)),
            cancel: None,
            waiting: Some(&mut note),
        };
        let e = acquire_patiently(&mlp, "mlp status", &mut p).unwrap_err();
        assert!(e.to_string().contains("mlp watch (pid"), "{e}");
        assert_eq!(seen.len(), 1, "{seen:?}");
        assert!(seen[0].starts_with("mlp watch (pid"), "{seen:?}");
        // Released in time: taken.
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            drop(lock);
        });
        let mut p = Patience {
            limit: Some(Duration::from_secs(20)),
            cancel: None,
            waiting: None,
        };
        acquire_patiently(&mlp, "mlp status", &mut p).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn describe_formats_time() {
        let h = Holder {
            pid: 1234,
            host: "box".into(),
            what: "mlp run".into(),
            started_ms: (13 * 3600 + 5 * 60 + 11) * 1000,
        };
        assert_eq!(
            h.describe(h.started_ms + 5_000),
            "mlp run (pid 1234 on box, started 13:05:11 UTC, 5 s ago)"
        );
    }
}
