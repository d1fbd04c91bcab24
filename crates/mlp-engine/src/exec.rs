//! The stage process runner.
//!
//! Every stage command runs as `sh -c <command>` in its own process group, so
//! that a timeout, a cancellation or the clean-up after a normal exit can
//! signal the whole tree of processes the command started (as long as they
//! did not move to another group or session themselves).
//!
//! Waiting is done by blocking in `waitid`/`wait4` on the worker thread that
//! called [`run`]: there is no polling anywhere on the wait path. A job with a
//! timeout gets one timer thread that sleeps on a condition variable, so it
//! wakes as soon as the job ends.
//!
//! To never signal a recycled process-group id, the leader is first waited for
//! *without* being reaped (`waitid(WNOWAIT)`): while it is a zombie its pid,
//! and therefore the group id, cannot be reused. Leftover members of the group
//! are killed at that point, the job is marked done (no signal is sent to the
//! group afterwards) and only then is the leader reaped with `wait4`, which
//! also yields its resource usage.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, waitid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// How long a process group gets between SIGTERM and SIGKILL.
pub const KILL_GRACE: Duration = Duration::from_secs(3);

/// Longest chunk forwarded as one "line" in echo mode (output without
/// newlines, e.g. progress bars, must not grow a buffer without bound).
const MAX_ECHO_LINE: u64 = 64 * 1024;

/// One stage command to run.
#[derive(Debug, Clone)]
pub struct Job {
    /// Run as `sh -c <command>`.
    pub command: String,
    /// The working directory (the workspace root).
    pub cwd: PathBuf,
    /// Added to the inherited environment.
    pub env: Vec<(String, String)>,
    /// Receives stdout and stderr (created or truncated, parent directories
    /// created). It holds exactly the command's output; without `echo` it is written
    /// when the job has ended, and only if the command printed something.
    pub log: PathBuf,
    /// Kill the job (SIGTERM, then SIGKILL after [`KILL_GRACE`]) when it runs
    /// longer than this.
    pub timeout: Option<Duration>,
    /// When set, every output line is also streamed live to our stderr.
    pub echo: Option<Echo>,
    /// Append to the log instead of truncating it (a retry, a fallback: the earlier
    /// attempts' output stays).
    pub append_log: bool,
}

/// Live echo of a job's output to our stderr.
#[derive(Debug, Clone)]
pub struct Echo {
    /// Each line is written as `[{prefix}] {line}`.
    pub prefix: String,
}

/// How a job ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Exit {
    /// `sh` exited with this status.
    Code(i32),
    /// `sh` was killed by this signal (not sent by us).
    Signal(i32),
    /// The job ran past its timeout and was killed.
    TimedOut,
    /// The job was cancelled (or never started because everything was).
    Cancelled,
    /// A cluster scheduler ended the job (Slurm's TIMEOUT, CANCELLED from outside,
    /// OUT_OF_MEMORY, NODE_FAIL, PREEMPTED...): what happened, in words.
    Scheduler(String),
}

/// The outcome of [`run`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Finished {
    pub exit: Exit,
    pub started: SystemTime,
    pub ended: SystemTime,
    /// User + system CPU time of `sh` and of the descendants it waited for.
    pub cpu_ms: u64,
    /// Peak resident set size in KiB (of `sh` or of its largest waited-for
    /// descendant).
    pub max_rss_kb: u64,
    /// Worth reporting with the stage (e.g. the Slurm job and the node it ran on).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

impl Finished {
    /// True when the command exited with status 0.
    pub fn success(&self) -> bool {
        self.exit == Exit::Code(0)
    }

    pub(crate) fn not_run(exit: Exit) -> Self {
        let now = SystemTime::now();
        Finished {
            exit,
            started: now,
            ended: now,
            cpu_ms: 0,
            max_rss_kb: 0,
            notes: Vec::new(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The state of one running job, shared by its worker, its timer and any
/// canceller.
#[derive(Debug)]
struct JobState {
    pgid: Pid,
    inner: Mutex<JobInner>,
    done_cv: Condvar,
}

#[derive(Debug, Default)]
struct JobInner {
    /// The leader has exited: the group must not be signalled any more (by
    /// anybody but the worker, which does it before setting this).
    done: bool,
    /// Why we killed the job, if we did; the first reason wins.
    reason: Option<Exit>,
}

impl JobState {
    fn new(pgid: Pid) -> Self {
        JobState {
            pgid,
            inner: Mutex::new(JobInner::default()),
            done_cv: Condvar::new(),
        }
    }

    /// Signals the group unless the job is done. Must be called with the
    /// lock held, which is what makes the `done` check reliable.
    fn signal(&self, inner: &JobInner, sig: Signal) {
        if !inner.done {
            // ESRCH (group already empty) and friends are of no interest.
            let _ = killpg(self.pgid, sig);
        }
    }

    /// Records `reason` and sends SIGTERM (the first half of a kill).
    fn terminate(&self, reason: Exit) {
        let mut inner = lock(&self.inner);
        if inner.done {
            return;
        }
        inner.reason.get_or_insert(reason);
        self.signal(&inner, Signal::SIGTERM);
    }

    /// Records `reason` and sends SIGKILL at once.
    fn kill_now(&self, reason: Exit) {
        let mut inner = lock(&self.inner);
        if inner.done {
            return;
        }
        inner.reason.get_or_insert(reason);
        self.signal(&inner, Signal::SIGKILL);
    }

    /// Waits until the job is done or `deadline` passes; returns the guard
    /// and whether the job is done.
    fn wait_done_until<'a>(
        &'a self,
        mut inner: MutexGuard<'a, JobInner>,
        deadline: Instant,
    ) -> (MutexGuard<'a, JobInner>, bool) {
        while !inner.done {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            inner = self
                .done_cv
                .wait_timeout(inner, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        let done = inner.done;
        (inner, done)
    }

    /// SIGKILLs the group if the job is not done by `deadline` (the second
    /// half of a kill).
    fn kill_after(&self, deadline: Instant) {
        let (inner, done) = self.wait_done_until(lock(&self.inner), deadline);
        if !done {
            self.signal(&inner, Signal::SIGKILL);
        }
    }

    /// Called by the worker once the leader has exited (and is not reaped
    /// yet, so the group id is still reserved): kills whatever is left of the
    /// group and wakes the timer and any canceller.
    fn finish(&self, kill_leftovers: bool) {
        let mut inner = lock(&self.inner);
        if kill_leftovers {
            self.signal(&inner, Signal::SIGKILL);
        }
        inner.done = true;
        drop(inner);
        self.done_cv.notify_all();
    }

    /// The timer of a job with a timeout.
    fn watch_deadline(&self, deadline: Instant) {
        let (inner, done) = self.wait_done_until(lock(&self.inner), deadline);
        if done {
            return;
        }
        drop(inner);
        self.terminate(Exit::TimedOut);
        self.kill_after(Instant::now() + KILL_GRACE);
    }
}

#[derive(Debug, Default)]
struct TableInner {
    jobs: Mutex<HashMap<u64, Arc<JobState>>>,
    cancelled: AtomicBool,
}

/// Knows every running process group. Shared (cheaply cloned) by the
/// coordinator, the workers and the interrupt handler.
#[derive(Debug, Clone, Default)]
pub struct ProcessTable {
    inner: Arc<TableInner>,
}

impl ProcessTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels every running job (SIGTERM to each group, SIGKILL after
    /// [`KILL_GRACE`] to those still alive) and marks the table cancelled, so
    /// that jobs started afterwards return [`Exit::Cancelled`] without
    /// running. Blocks for at most the grace period.
    pub fn cancel_all(&self) {
        let states = self.mark_cancelled();
        for state in &states {
            state.terminate(Exit::Cancelled);
        }
        let deadline = Instant::now() + KILL_GRACE;
        for state in &states {
            state.kill_after(deadline);
        }
    }

    /// Like [`cancel_all`](Self::cancel_all) but SIGKILLs at once.
    fn kill_all(&self) {
        for state in self.mark_cancelled() {
            state.kill_now(Exit::Cancelled);
        }
    }

    fn mark_cancelled(&self) -> Vec<Arc<JobState>> {
        // Set before taking the lock: a worker registering after our snapshot
        // sees the flag under the same lock and kills its own job.
        self.inner.cancelled.store(true, Ordering::SeqCst);
        lock(&self.inner.jobs).values().cloned().collect()
    }

    /// Cancels one running job (SIGTERM, SIGKILL after [`KILL_GRACE`]); its
    /// [`run`] returns [`Exit::Cancelled`]. Unknown or finished ids are
    /// ignored. Does not mark the table cancelled. Blocks for at most the
    /// grace period.
    pub fn cancel(&self, id: u64) {
        let state = lock(&self.inner.jobs).get(&id).cloned();
        if let Some(state) = state {
            state.terminate(Exit::Cancelled);
            state.kill_after(Instant::now() + KILL_GRACE);
        }
    }

    /// True once [`cancel_all`](Self::cancel_all) has been called.
    pub fn is_cancelled(&self) -> bool {
        self.inner.cancelled.load(Ordering::SeqCst)
    }

    /// Number of jobs currently running.
    pub fn running(&self) -> usize {
        lock(&self.inner.jobs).len()
    }

    fn register(&self, id: u64, state: &Arc<JobState>) {
        let mut jobs = lock(&self.inner.jobs);
        if self.is_cancelled() {
            drop(jobs);
            state.kill_now(Exit::Cancelled);
        } else {
            jobs.insert(id, Arc::clone(state));
        }
    }

    fn unregister(&self, id: u64, state: &Arc<JobState>) {
        let mut jobs = lock(&self.inner.jobs);
        if jobs.get(&id).is_some_and(|s| Arc::ptr_eq(s, state)) {
            jobs.remove(&id);
        }
    }
}

/// Runs `job` to completion on the calling thread (this blocks).
///
/// Returns `Err` when the job could not be started (log file, missing `cwd`,
/// spawn failure), when waiting for it failed, or when writing the log failed. Once the process is spawned, it is always waited for (and
/// its group killed) before returning, error or not.
pub fn run(job: &Job, id: u64, table: &ProcessTable) -> io::Result<Finished> {
    if table.is_cancelled() {
        return Ok(Finished::not_run(Exit::Cancelled));
    }

    // The shell by its path: no $PATH search (eight failed execve calls) per stage.
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c")
        .arg(&job.command)
        .current_dir(&job.cwd)
        .envs(job.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .process_group(0);

    let mut readers = Vec::new();
    // Without echo, the output is held in a memory file and written to the log only if
    // there is any: most stages print nothing, and a file costs 0.15-0.5 ms of ext4.
    let mut held = None;
    match &job.echo {
        None => {
            let out = match memory_file() {
                Ok(f) => {
                    held = Some(f.try_clone()?);
                    f
                }
                Err(_) => open_log(&job.log, job.append_log)?,
            };
            cmd.stdout(out.try_clone()?).stderr(out);
        }
        Some(echo) => {
            let log = open_log(&job.log, job.append_log)?;
            let log = Arc::new(Mutex::new(log));
            let prefix: Arc<[u8]> = format!("[{}] ", echo.prefix).into_bytes().into();
            // If anything here fails, dropping `cmd` closes the write ends
            // already handed to it, so started readers end by themselves.
            let (out_r, out_w) = io::pipe()?;
            let (err_r, err_w) = io::pipe()?;
            readers.push(spawn_reader(out_r, Arc::clone(&log), Arc::clone(&prefix))?);
            readers.push(spawn_reader(err_r, log, prefix)?);
            cmd.stdout(out_w).stderr(err_w);
        }
    }

    let started = SystemTime::now();
    let started_at = Instant::now();
    let spawned = cmd.spawn();
    // Close our copies of the pipe write ends (and of the log file) now, so
    // the readers see EOF when the job's processes are gone.
    drop(cmd);
    let child = match spawned {
        Ok(child) => child,
        Err(e) => {
            let _ = join_readers(readers);
            return Err(e);
        }
    };
    // Pids fit in `pid_t`; `Child::id` merely widened it.
    let pid = Pid::from_raw(child.id() as libc::pid_t);
    // Nothing to close or wait for in `Child`: we reap the pid ourselves.
    drop(child);

    let state = Arc::new(JobState::new(pid));
    table.register(id, &state);

    let mut failure: Option<io::Error> = None;
    let timer = match job.timeout {
        None => None,
        Some(timeout) => {
            let deadline = started_at + timeout;
            let timer_state = Arc::clone(&state);
            match thread::Builder::new()
                .name(format!("mlp-timeout-{id}"))
                .spawn(move || timer_state.watch_deadline(deadline))
            {
                Ok(handle) => Some(handle),
                Err(e) => {
                    // Cannot enforce the timeout: do not run unbounded.
                    state.kill_now(Exit::TimedOut);
                    failure = Some(e);
                    None
                }
            }
        }
    };

    let waited = wait_exited(pid);
    // On error (ECHILD: somebody else reaped it) the group id may already be
    // recycled, so only signal it when the leader is known to be a zombie.
    state.finish(waited.is_ok());
    let reaped = waited.and_then(|()| reap(pid));
    table.unregister(id, &state);
    if let Some(timer) = timer {
        let _ = timer.join();
    }
    let echoed = join_readers(readers);
    let ended = SystemTime::now();

    let (status, usage) = reaped?;
    if let Some(e) = failure {
        return Err(e);
    }
    echoed?;
    let mut notes = Vec::new();
    // A log that cannot be written (a full disk, most often) loses the log, not what the
    // command did: the stage's outcome stands, with a note naming the log.
    if let Some(out) = held
        && let Err(e) = keep_log(out, &job.log, job.append_log)
    {
        notes.push(format!("cannot write its log {}: {e}", job.log.display()));
    }

    let reason = lock(&state.inner).reason.clone();
    let exit = reason.unwrap_or_else(|| exit_of(status));
    if !matches!(exit, Exit::Code(0) | Exit::Cancelled) {
        notes.extend(crate::disk::full_note(&job.cwd));
    }
    Ok(Finished {
        exit,
        started,
        ended,
        cpu_ms: cpu_ms(&usage),
        max_rss_kb: u64::try_from(usage.ru_maxrss).unwrap_or(0),
        notes,
    })
}

/// An anonymous file in memory (`memfd_create`), closed on exec.
#[allow(unsafe_code)]
fn memory_file() -> io::Result<File> {
    use std::os::fd::FromRawFd;
    // SAFETY: the name is a valid NUL-terminated string; the call has no other inputs.
    let fd = unsafe { libc::memfd_create(c"mlp-stage-output".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by memfd_create and is owned by nobody else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// What a job printed, from its memory file into its log; no log at all when it printed
/// nothing.
fn keep_log(mut out: File, log: &std::path::Path, append: bool) -> io::Result<()> {
    use std::io::Seek;
    if out.metadata()?.len() == 0 {
        return Ok(());
    }
    out.seek(io::SeekFrom::Start(0))?;
    let mut f = open_log(log, append)?;
    io::copy(&mut out, &mut f)?;
    Ok(())
}

fn open_log(path: &std::path::Path, append: bool) -> io::Result<File> {
    if let Some(parent) = path.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)?;
    }
    if append {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
    } else {
        File::create(path)
    }
}

fn exit_of(status: libc::c_int) -> Exit {
    if libc::WIFEXITED(status) {
        Exit::Code(libc::WEXITSTATUS(status))
    } else if libc::WIFSIGNALED(status) {
        Exit::Signal(libc::WTERMSIG(status))
    } else {
        // Stopped/continued are not reported without WUNTRACED/WCONTINUED.
        Exit::Code(-1)
    }
}

fn cpu_ms(usage: &libc::rusage) -> u64 {
    let ms = |tv: &libc::timeval| {
        let secs = u64::try_from(tv.tv_sec).unwrap_or(0);
        let micros = u64::try_from(tv.tv_usec).unwrap_or(0);
        secs * 1000 + micros / 1000
    };
    ms(&usage.ru_utime) + ms(&usage.ru_stime)
}

/// Blocks until `pid` has exited, leaving it a zombie (not reaped).
fn wait_exited(pid: Pid) -> io::Result<()> {
    loop {
        match waitid(Id::Pid(pid), WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Reaps the exited `pid`, returning its wait status and resource usage
/// (which includes the descendants it waited for).
#[allow(unsafe_code)]
fn reap(pid: Pid) -> io::Result<(libc::c_int, libc::rusage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: `rusage` is a plain C struct of integers, for which all-zero
    // bytes is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: both pointers refer to live, writable locals of the right
        // types for the duration of the call.
        let r = unsafe { libc::wait4(pid.as_raw(), &mut status, 0, &mut usage) };
        if r == pid.as_raw() {
            return Ok((status, usage));
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

type Reader = JoinHandle<io::Result<()>>;

fn spawn_reader(
    src: io::PipeReader,
    log: Arc<Mutex<File>>,
    prefix: Arc<[u8]>,
) -> io::Result<Reader> {
    thread::Builder::new()
        .name("mlp-echo".into())
        .spawn(move || pump(src, &log, &prefix))
}

/// Copies every line of `src` to the log and, prefixed, to our stderr. Keeps
/// draining the pipe after a log write error (so the job never blocks on a
/// full pipe) and returns that error at the end.
fn pump(src: io::PipeReader, log: &Mutex<File>, prefix: &[u8]) -> io::Result<()> {
    let mut reader = BufReader::new(src);
    let mut line = Vec::with_capacity(256);
    let mut echoed = Vec::with_capacity(256);
    let mut failure = None;
    loop {
        line.clear();
        match (&mut reader)
            .take(MAX_ECHO_LINE)
            .read_until(b'\n', &mut line)
        {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                failure.get_or_insert(e);
                break;
            }
        }
        if failure.is_none()
            && let Err(e) = lock(log).write_all(&line)
        {
            failure = Some(e);
        }
        echoed.clear();
        echoed.extend_from_slice(prefix);
        echoed.extend_from_slice(&line);
        if !line.ends_with(b"\n") {
            echoed.push(b'\n');
        }
        // Our stderr being closed or full is no reason to fail the job.
        let _ = io::stderr().lock().write_all(&echoed);
    }
    failure.map_or(Ok(()), Err)
}

fn join_readers(readers: Vec<Reader>) -> io::Result<()> {
    let mut result = Ok(());
    for reader in readers {
        let r = reader
            .join()
            .unwrap_or_else(|_| Err(io::Error::other("echo thread panicked")));
        if result.is_ok() {
            result = r;
        }
    }
    result
}

static INTERRUPTED: Mutex<Option<Arc<AtomicBool>>> = Mutex::new(None);

/// Installs a Ctrl-C / SIGTERM / SIGHUP handler that sets the returned flag
/// and cancels every job of `table` ([`ProcessTable::cancel_all`], run on a
/// separate thread so that a second interrupt is seen at once: it SIGKILLs
/// every group without waiting for the grace period).
///
/// Idempotent: a second call returns the flag of the first and keeps the
/// first call's table.
pub fn install_interrupt_handler(table: &ProcessTable) -> Result<Arc<AtomicBool>, ctrlc::Error> {
    let mut slot = lock(&INTERRUPTED);
    if let Some(flag) = slot.as_ref() {
        return Ok(Arc::clone(flag));
    }
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = Arc::clone(&flag);
    let table = table.clone();
    ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            table.kill_all();
            return;
        }
        let t = table.clone();
        if thread::Builder::new()
            .name("mlp-cancel".into())
            .spawn(move || t.cancel_all())
            .is_err()
        {
            table.cancel_all();
        }
    })?;
    *slot = Some(Arc::clone(&flag));
    Ok(flag)
}

#[cfg(test)]
mod tests;
