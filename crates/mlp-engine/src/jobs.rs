//! What the executors that submit a stage as a cluster job (Slurm, Ray) share: the job
//! file written atomically, shell quoting, the command's digest, and the flags by which
//! `mlp watch` asks the worker waiting on a job to stop it.

use std::collections::HashMap;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Instant;

use crate::exec::{Exit, Job, ProcessTable};

/// A lock that a panicking holder does not poison for the others.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// blake3 of a command: a job file names the command it ran without holding it.
pub(crate) fn digest(command: &str) -> String {
    blake3::hash(command.as_bytes()).to_hex().to_string()
}

/// `'text'` for `sh`.
pub(crate) fn sh_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Write `bytes` to `path` through a temp file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Worker jobs waiting on a cluster job, by the worker's job id: set when the stage is to
/// be stopped.
fn waiting() -> &'static Mutex<HashMap<u64, bool>> {
    static WAITING: OnceLock<Mutex<HashMap<u64, bool>>> = OnceLock::new();
    WAITING.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Run `f` while worker job `id` waits on a cluster job, so that [`cancel`] reaches it.
pub(crate) fn while_waiting<T>(id: u64, f: impl FnOnce() -> T) -> T {
    lock(waiting()).insert(id, false);
    let r = f();
    lock(waiting()).remove(&id);
    r
}

/// Stop the cluster job of worker job `id`, if one is being waited for (`mlp watch` stops
/// one stage this way); the waiting worker cancels it on its next poll.
pub fn cancel(id: u64) {
    if let Some(flag) = lock(waiting()).get_mut(&id) {
        *flag = true;
    }
}

pub(crate) fn cancel_requested(id: u64) -> bool {
    lock(waiting()).get(&id).copied().unwrap_or(false)
}

/// Why the worker waiting on worker job `id` must stop its cluster job now: the run was
/// cancelled (Ctrl-C), `mlp watch` stopped the stage, or the stage's `timeout` has passed
/// since the job started running; `None` to keep waiting.
pub(crate) fn stop_reason(
    table: &ProcessTable,
    id: u64,
    job: &Job,
    running_since: Option<Instant>,
) -> Option<Exit> {
    if table.is_cancelled() || cancel_requested(id) {
        Some(Exit::Cancelled)
    } else if let (Some(limit), Some(since)) = (job.timeout, running_since)
        && since.elapsed() >= limit
    {
        Some(Exit::TimedOut)
    } else {
        None
    }
}
