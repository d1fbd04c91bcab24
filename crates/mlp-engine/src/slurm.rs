//! Stages as Slurm batch jobs.
//!
//! The coordinator decides, hashes and caches exactly as for local stages; only the command
//! runs elsewhere. A worker thread that gets a Slurm stage:
//!
//! 1. submits it with `sbatch --parsable` (job name `mlp-RUN-STAGE`, output to the stage's
//!    log, the workspace root as working directory, the stage's environment exported, its
//!    `resources` as `--cpus-per-task`, `--mem`, `--gres=gpu:N`, and `time` or `timeout` as
//!    `--time`), and writes the job id to `.mlp/slurm/STAGE.job` (temp file + rename);
//! 2. waits on the one poller thread of the process, which asks `squeue` about every job in
//!    flight in one call per poll;
//! 3. when the job has ended, reads the exit status the job script wrote to
//!    `.mlp/slurm/JOBID.result` (temp file + rename, waiting a few seconds for a filesystem
//!    that caches attributes), or, without one, the final state from `sacct` (when the
//!    cluster keeps accounting) or `scontrol show job`.
//!
//! A `mlp run` that was killed leaves its `.job` files behind: the next run of the same stage
//! with the same identity and command attaches to that job when it is still queued or
//! running (or finished well) instead of submitting it again. Ctrl-C cancels the jobs
//! (`scancel`). The job script needs the workspace, `.mlp/` included, at the same path on
//! every node (a shared filesystem).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime};

use mlp_plan::{ExecutorKind, Resources, SlurmSettings, Stage};
use serde::{Deserialize, Serialize};

use crate::exec::{Exit, Finished, Job, ProcessTable};
use crate::executor::Executor;
use crate::jobs::{self, digest, sh_quote, stop_reason, write_atomic};
use crate::workspace::now_ms;

mod poll;
use poll::{Seen, poller, terminal};

/// How long to look for a job's result file after Slurm says it ended (a shared filesystem
/// may show a new file to other hosts only after its attribute cache expires).
const RESULT_WAIT: Duration = Duration::from_secs(5);

/// How long to wait for a job to end after `scancel`.
const CANCEL_WAIT: Duration = Duration::from_secs(30);

/// The executor a stage runs on: its own `executor` item, else `--executor`, else the
/// pipeline's.
pub fn kind_of(stage: &Stage, cli: Option<ExecutorKind>) -> ExecutorKind {
    if stage.executor.own {
        stage.executor.kind
    } else {
        cli.unwrap_or(stage.executor.kind)
    }
}

/// One stage to run on Slurm.
#[derive(Debug)]
pub struct Submission {
    pub stage: String,
    pub run_id: String,
    /// The stage's identity (hex): a job submitted for another one is not attached to.
    pub identity: String,
    pub settings: SlurmSettings,
    pub resources: Resources,
    /// `.mlp/slurm`: job files and result files.
    pub dir: PathBuf,
    /// Whether the first attempt looked for a job to attach to already.
    attach_checked: AtomicBool,
}

impl Executor for Submission {
    /// One attempt: submit (or attach to the job an earlier run left), wait, report.
    fn run(&self, job: &Job, id: u64, table: &ProcessTable) -> io::Result<Finished> {
        if table.is_cancelled() {
            return Ok(Finished::not_run(Exit::Cancelled));
        }
        jobs::while_waiting(id, || self.attempt(job, id, table))
    }

    /// A job an earlier run submitted for this identity and command may still be writing
    /// the outputs.
    fn keeps_outputs(&self, command: &str) -> bool {
        self.read_job_file()
            .is_some_and(|f| f.identity == self.identity && f.command == digest(command))
    }
}

/// `.mlp/slurm/STAGE.job`: the job that runs (or ran) a stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobFile {
    job: String,
    stage: String,
    identity: String,
    /// blake3 of the command.
    command: String,
    run: String,
    log: PathBuf,
    submitted_ms: u64,
}

/// Time between two `squeue` calls (`MLP_SLURM_POLL_MS`, default 500 ms).
fn poll_interval() -> Duration {
    let ms = std::env::var("MLP_SLURM_POLL_MS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(500)
        .clamp(20, 60_000);
    Duration::from_millis(ms)
}

/// How a wait ended.
struct Ended {
    /// Slurm's final state, as `squeue` saw it (`None`: the job is gone from `squeue`).
    state: Option<String>,
    node: Option<String>,
    /// When the job was first seen running.
    started: Option<SystemTime>,
    /// We cancelled it: why.
    ours: Option<Exit>,
}

impl Submission {
    pub fn new(stage: &Stage, run_id: &str, identity: String, dir: PathBuf) -> Submission {
        Submission {
            stage: stage.name.clone(),
            run_id: run_id.to_string(),
            identity,
            settings: SlurmSettings::clone(&stage.executor.slurm),
            resources: stage.resources,
            dir,
            attach_checked: AtomicBool::new(false),
        }
    }

    fn job_file(&self) -> PathBuf {
        self.dir.join(format!("{}.job", self.stage))
    }

    fn result_file(&self, job: &str) -> PathBuf {
        self.dir.join(format!("{job}.result"))
    }

    fn read_job_file(&self) -> Option<JobFile> {
        let text = std::fs::read(self.job_file()).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Remove the job file if it still names `job`.
    fn forget(&self, job: &str) {
        if self.read_job_file().is_some_and(|f| f.job == job) {
            let _ = std::fs::remove_file(self.job_file());
        }
        let _ = std::fs::remove_file(self.result_file(job));
    }

    fn attempt(&self, job: &Job, id: u64, table: &ProcessTable) -> io::Result<Finished> {
        std::fs::create_dir_all(&self.dir)?;
        let command = digest(&job.command);
        let mut attached = None;
        if !self.attach_checked.swap(true, Ordering::SeqCst)
            && let Some(f) = self.read_job_file()
        {
            if f.identity == self.identity && f.command == command && self.reusable(&f.job) {
                attached = Some(f);
            } else {
                // A job for other inputs (or one that failed while nobody waited): it must
                // not go on writing this stage's outputs.
                if job_state(&f.job).is_some_and(|s| !terminal(&s)) {
                    scancel(&f.job);
                }
                self.forget(&f.job);
            }
        }
        let submitted = SystemTime::now();
        let (jobid, old_log) = match &attached {
            Some(f) => (f.job.clone(), Some(f.log.clone())),
            None => (self.submit(job, &command)?, None),
        };
        let ended = self.wait(&jobid, job, id, table);
        let mut finished = self.finish(&jobid, job, &ended);
        finished.started = ended.started.unwrap_or(submitted);
        let mut note = format!("slurm job {jobid}");
        if let Some(n) = &ended.node {
            note.push_str(&format!(" on {n}"));
        }
        if let Some(f) = &attached {
            note.push_str(&format!(
                " (submitted by run {}, attached to)",
                f.run.trim_start_matches('0')
            ));
            // The job wrote the log of the run that submitted it.
            if let Some(old) = old_log
                && let Ok(new) = std::path::absolute(&job.log)
                && old != new
            {
                if let Some(parent) = new.parent() {
                    let _ = std::fs::create_dir_all(parent);
                }
                let _ = std::fs::copy(&old, &new);
            }
        }
        finished.notes.push(note);
        self.forget(&jobid);
        Ok(finished)
    }

    /// Whether the job an earlier run left can be attached to: still queued or running, or
    /// finished with the command's success.
    fn reusable(&self, job: &str) -> bool {
        if let Some(rc) = read_result(&self.result_file(job)).map(|(rc, _)| rc) {
            return rc == 0;
        }
        job_state(job).is_some_and(|s| !terminal(&s))
    }

    fn submit(&self, job: &Job, command: &str) -> io::Result<String> {
        let root = std::path::absolute(&job.cwd)?;
        let log = std::path::absolute(&job.log)?;
        let dir = std::path::absolute(&self.dir)?;
        if let Some(parent) = log.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let run = self.run_id.trim_start_matches('0');
        let mut cmd = Command::new("sbatch");
        cmd.arg("--parsable")
            .arg(format!("--job-name=mlp-{run}-{}", self.stage))
            // Without `--error`, stderr goes to the same file.
            .arg(format!("--output={}", log.display()))
            .arg(if job.append_log {
                "--open-mode=append"
            } else {
                "--open-mode=truncate"
            })
            .arg(format!("--chdir={}", root.display()))
            .arg("--export=ALL")
            .arg(format!("--cpus-per-task={}", self.resources.cpu.max(1)));
        if self.resources.mem_bytes > 0 {
            cmd.arg(format!(
                "--mem={}M",
                self.resources.mem_bytes.div_ceil(1 << 20)
            ));
        }
        if self.resources.gpu > 0 {
            cmd.arg(format!("--gres=gpu:{}", self.resources.gpu));
        }
        let limit = self.settings.time_ms.or_else(|| {
            job.timeout
                .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX))
        });
        if let Some(ms) = limit {
            cmd.arg(format!("--time={}", ms.div_ceil(60_000).max(1)));
        }
        for (flag, v) in [
            ("--partition", &self.settings.partition),
            ("--account", &self.settings.account),
            ("--qos", &self.settings.qos),
        ] {
            if let Some(v) = v {
                cmd.arg(format!("{flag}={v}"));
            }
        }
        cmd.args(self.settings.args.iter().flatten());
        cmd.envs(job.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot start sbatch ({e}): is Slurm installed here?"),
            )
        })?;
        let script = self.script(&job.command, &root, &dir);
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(script.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            return Err(io::Error::other(format!(
                "sbatch refused the job: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let jobid = stdout
            .trim()
            .split(';')
            .next()
            .filter(|j| !j.is_empty() && j.chars().all(|c| c.is_ascii_digit() || c == '_'))
            .ok_or_else(|| io::Error::other(format!("sbatch printed no job id: {stdout:?}")))?
            .to_string();
        let file = JobFile {
            job: jobid.clone(),
            stage: self.stage.clone(),
            identity: self.identity.clone(),
            command: command.to_string(),
            run: self.run_id.clone(),
            log,
            submitted_ms: now_ms(),
        };
        let bytes = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
        if let Err(e) = write_atomic(&self.job_file(), &bytes) {
            // Unrecorded, a restarted run could not find it: do not let it run.
            scancel(&jobid);
            return Err(io::Error::new(
                e.kind(),
                format!("cannot record slurm job {jobid}: {e}"),
            ));
        }
        Ok(jobid)
    }

    /// The batch script: the command with `sh -c` in the workspace root, then its exit
    /// status to the result file (temp file + rename).
    fn script(&self, command: &str, root: &Path, dir: &Path) -> String {
        let root_q = sh_quote(&root.display().to_string());
        let dir_q = sh_quote(&dir.display().to_string());
        format!(
            "#!/bin/sh\n\
             # mlp: stage {stage} of run {run}, identity {identity}\n\
             cd {root_q} || {{ echo \"mlp: cannot enter the workspace {root} on ${{SLURMD_NODENAME:-$(hostname)}}: it must be on a filesystem every node shares, at the same path\" >&2; exit 97; }}\n\
             sh -c {cmd}\n\
             rc=$?\n\
             tmp={dir_q}/.$SLURM_JOB_ID.result.$$\n\
             printf '%s %s\\n' \"$rc\" \"${{SLURMD_NODENAME:-$(hostname)}}\" > \"$tmp\" && mv -f \"$tmp\" {dir_q}/$SLURM_JOB_ID.result\n\
             exit $rc\n",
            stage = self.stage,
            run = self.run_id,
            identity = self.identity,
            root = root.display(),
            cmd = sh_quote(command),
        )
    }

    /// Wait for the job to end; cancel it on Ctrl-C, on `cancel`, or when it runs past the
    /// stage's `timeout`.
    fn wait(&self, jobid: &str, job: &Job, id: u64, table: &ProcessTable) -> Ended {
        let p = poller();
        p.watch(jobid, poll_interval());
        let mut ended = Ended {
            state: None,
            node: None,
            started: None,
            ours: None,
        };
        let mut running_since: Option<Instant> = None;
        let mut cancelled_at: Option<Instant> = None;
        loop {
            match p.wait(jobid, Duration::from_millis(200)) {
                Seen::Unknown => {}
                Seen::Active { state, node } => {
                    if !node.is_empty() {
                        ended.node = Some(node);
                    }
                    if state == "RUNNING" && running_since.is_none() {
                        running_since = Some(Instant::now());
                        ended.started = Some(SystemTime::now());
                    }
                }
                Seen::Ended { state, node } => {
                    if !node.is_empty() {
                        ended.node = Some(node);
                    }
                    ended.state = Some(state);
                    break;
                }
                Seen::Gone => break,
            }
            match cancelled_at {
                None => {
                    if let Some(why) = stop_reason(table, id, job, running_since) {
                        scancel(jobid);
                        ended.ours = Some(why);
                        cancelled_at = Some(Instant::now());
                    }
                }
                Some(t) if t.elapsed() > CANCEL_WAIT => break,
                Some(_) => {}
            }
        }
        p.unwatch(jobid);
        ended
    }

    /// What the ended job means for the stage.
    fn finish(&self, jobid: &str, job: &Job, ended: &Ended) -> Finished {
        let mut f = Finished::not_run(Exit::Cancelled);
        f.ended = SystemTime::now();
        if let Some(ours) = &ended.ours {
            f.exit = ours.clone();
            return f;
        }
        let file = self.result_file(jobid);
        // The job ended by itself (or is gone): the command's status is in the result file.
        // Killed by Slurm (TIMEOUT, CANCELLED...), the job script may still have written
        // the status its command got from the signal: Slurm's reason says more.
        let normal = ended
            .state
            .as_deref()
            .is_none_or(|s| s == "COMPLETED" || s == "FAILED");
        let deadline = Instant::now() + if normal { RESULT_WAIT } else { Duration::ZERO };
        let result = loop {
            if let Some(r) = read_result(&file) {
                break Some(r);
            }
            if Instant::now() >= deadline {
                break None;
            }
            std::thread::sleep(Duration::from_millis(100));
        };
        if let Some((rc, _)) = result
            && (normal || rc == 0)
        {
            f.exit = Exit::Code(rc);
            return f;
        }
        let fin = final_state(jobid);
        let state = fin
            .as_ref()
            .map(|s| s.state.clone())
            .or_else(|| ended.state.clone());
        let on = ended
            .node
            .as_ref()
            .or(fin.as_ref().and_then(|s| s.node.as_ref()))
            .map(|n| format!(" on {n}"))
            .unwrap_or_default();
        let word = state
            .as_deref()
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or("")
            .to_string();
        let msg = match word.as_str() {
            "TIMEOUT" => {
                let limit = self.settings.time_ms.or_else(|| {
                    job.timeout
                        .map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX))
                });
                let limit = limit
                    .map(|ms| format!(" (--time={})", ms.div_ceil(60_000).max(1)))
                    .unwrap_or_default();
                format!("slurm job {jobid}{on} reached its time limit: TIMEOUT{limit}")
            }
            "CANCELLED" => {
                let by = state
                    .as_deref()
                    .and_then(|s| s.strip_prefix("CANCELLED by "))
                    .map(|uid| format!(" by uid {uid}"))
                    .unwrap_or_default();
                format!("slurm job {jobid}{on} was CANCELLED{by}")
            }
            "OUT_OF_MEMORY" => format!("slurm job {jobid}{on} ran out of memory: OUT_OF_MEMORY"),
            "NODE_FAIL" => format!("slurm job {jobid}{on} lost its node: NODE_FAIL"),
            "PREEMPTED" => format!("slurm job {jobid}{on} was PREEMPTED"),
            "FAILED" | "COMPLETED" => {
                let code = fin
                    .as_ref()
                    .and_then(|s| s.exit.clone())
                    .map(|c| format!(" with exit code {c}"))
                    .unwrap_or_default();
                format!(
                    "slurm job {jobid}{on} ended {word}{code} but left no result in {}: the workspace and `.mlp/` must be on a filesystem every node shares, at the same path (see the log)",
                    self.dir.display()
                )
            }
            "" => format!(
                "slurm job {jobid}{on} is gone from squeue and left no result in {}",
                self.dir.display()
            ),
            other => format!("slurm job {jobid}{on} ended {other}"),
        };
        f.exit = Exit::Scheduler(msg);
        f
    }
}

/// `.mlp/slurm/JOBID.result`: `STATUS NODE`.
fn read_result(path: &Path) -> Option<(i32, String)> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut w = text.split_whitespace();
    let rc = w.next()?.parse().ok()?;
    Some((rc, w.next().unwrap_or("").to_string()))
}

fn scancel(job: &str) {
    let _ = Command::new("scancel")
        .arg(job)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// One job's state now (`None`: Slurm does not know it any more, or cannot be asked).
fn job_state(job: &str) -> Option<String> {
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-j", job, "-o", "%T"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

/// Whether the cluster keeps accounting (then `sacct` knows finished jobs for good).
fn accounting() -> bool {
    static ACCOUNTING: OnceLock<bool> = OnceLock::new();
    *ACCOUNTING.get_or_init(|| {
        Command::new("scontrol")
            .args(["show", "config"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()
            .is_some_and(|o| {
                String::from_utf8_lossy(&o.stdout).lines().any(|l| {
                    l.starts_with("AccountingStorageType") && !l.contains("accounting_storage/none")
                })
            })
    })
}

struct FinalState {
    state: String,
    exit: Option<String>,
    node: Option<String>,
}

/// A finished job's state: from `sacct` when there is accounting (it may lag the end by a
/// second or two), else (or when `sacct` does not know it yet) from `scontrol show job`.
fn final_state(job: &str) -> Option<FinalState> {
    if accounting() {
        let until = Instant::now() + Duration::from_secs(3);
        loop {
            if let Some(s) = sacct(job)
                && terminal(&s.state)
            {
                return Some(s);
            }
            if Instant::now() >= until {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    scontrol(job)
}

fn sacct(job: &str) -> Option<FinalState> {
    let out = Command::new("sacct")
        .args(["-n", "-X", "-P", "-j", job, "-o", "State,ExitCode,NodeList"])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?;
    let mut f = line.split('|');
    let state = f.next()?.trim().to_string();
    let exit = f.next().map(|s| s.trim().to_string());
    let node = f
        .next()
        .map(|s| s.trim().to_string())
        .filter(|n| !n.is_empty() && n != "None assigned");
    (!state.is_empty()).then_some(FinalState { state, exit, node })
}

fn scontrol(job: &str) -> Option<FinalState> {
    let out = Command::new("scontrol")
        .args(["show", "job", "-o", job])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |k: &str| {
        text.split_whitespace()
            .find_map(|w| w.strip_prefix(k).and_then(|r| r.strip_prefix('=')))
            .map(str::to_string)
    };
    Some(FinalState {
        state: field("JobState")?,
        exit: field("ExitCode"),
        node: field("NodeList").filter(|n| n != "(null)"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_for_sh() {
        assert_eq!(sh_quote("a b"), "'a b'");
        assert_eq!(sh_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn terminal_states() {
        assert!(terminal("COMPLETED"));
        assert!(terminal("CANCELLED by 0"));
        assert!(terminal("TIMEOUT"));
        assert!(!terminal("RUNNING"));
        assert!(!terminal("COMPLETING"));
        assert!(!terminal("PENDING"));
    }

    #[test]
    fn the_script_runs_the_command_and_writes_its_status() {
        let dir = tempfile::tempdir().unwrap();
        let s = Submission {
            stage: "s".into(),
            run_id: "00000001".into(),
            identity: "i".into(),
            settings: SlurmSettings::default(),
            resources: Resources::default(),
            dir: dir.path().join("slurm"),
            attach_checked: AtomicBool::new(false),
        };
        std::fs::create_dir_all(&s.dir).unwrap();
        let script = s.script("echo \"it's\" > out; exit 3", dir.path(), &s.dir);
        let st = Command::new("sh")
            .arg("-c")
            .arg(&script)
            .env("SLURM_JOB_ID", "42")
            .env("SLURMD_NODENAME", "n7")
            .current_dir("/")
            .status()
            .unwrap();
        assert_eq!(st.code(), Some(3));
        assert_eq!(
            std::fs::read_to_string(dir.path().join("out")).unwrap(),
            "it's\n"
        );
        assert_eq!(
            read_result(&s.dir.join("42.result")),
            Some((3, "n7".to_string()))
        );
    }
}
