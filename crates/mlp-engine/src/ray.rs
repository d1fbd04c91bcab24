//! Stages as Ray jobs, through the Jobs REST API of the cluster's dashboard.
//!
//! The coordinator decides, hashes and caches exactly as for local stages; only the command
//! runs elsewhere. A worker thread that gets a Ray stage:
//!
//! 1. writes `.mlp/ray/STAGE.job` (temp file + rename) naming the submission id it is about
//!    to use, `mlp-WS-RUN-STAGE-ATTEMPT` (WS: a digest of the workspace's path and of its
//!    `.mlp/`, so two workspaces never share an id), then submits the job with `POST /api/jobs/`: the
//!    entrypoint enters the workspace root and runs the command with `sh -c`, the stage's
//!    environment and `env_vars` as the runtime environment's `env_vars`, its `resources`
//!    as `entrypoint_num_cpus`/`entrypoint_memory`/`entrypoint_num_gpus`, the executor's
//!    custom `resources` as `entrypoint_resources`;
//! 2. waits on the one poller thread of the process, which lists the jobs of each cluster in
//!    flight with one `GET /api/jobs/` per poll;
//! 3. while the job runs, every 2 s, and when it has ended, writes its output
//!    (`GET /api/jobs/ID/logs`, without Ray's own lines) to the stage's log; at the end maps
//!    Ray's status and the entrypoint's exit code to the stage's.
//!
//! A `mlp run` that was killed leaves its `.job` files behind: the next run of the same stage
//! with the same identity and command attaches to that job when it is still pending or
//! running (or succeeded) instead of submitting it again. Ctrl-C, `mlp watch`'s stop and the
//! stage's `timeout` stop the job (`POST /api/jobs/ID/stop`). A job that stays PENDING is
//! checked against the cluster's nodes: when none has what it asks for, it is stopped with a
//! one-line error instead of waiting forever. The entrypoint needs the workspace, `.mlp/`
//! included, at the same path on every node (a shared filesystem).

use std::collections::BTreeMap;
use std::io::{self};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use mlp_plan::{RaySettings, Resources, Stage};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::exec::{Exit, Finished, Job, ProcessTable};
use crate::executor::Executor;
use crate::jobs::{self, digest, lock, sh_quote, write_atomic};
use crate::workspace::now_ms;

mod client;
mod finish;
mod poll;

use client::{ApiError, Client};

/// The entrypoint's exit status when the workspace is not there on the node.
const NO_WORKSPACE: i32 = 97;

/// One stage to run on Ray.
#[derive(Debug)]
pub struct Submission {
    pub stage: String,
    pub run_id: String,
    /// The stage's identity (hex): a job submitted for another one is not attached to.
    pub identity: String,
    pub settings: RaySettings,
    pub resources: Resources,
    /// `.mlp/ray`: job files.
    pub dir: PathBuf,
    /// Whether the first attempt looked for a job to attach to already.
    attach_checked: AtomicBool,
    /// Attempts submitted so far (a retry is a new job).
    attempts: AtomicU32,
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

/// `.mlp/ray/STAGE.job`: the job that runs (or ran) a stage.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct JobFile {
    submission_id: String,
    /// The dashboard's base URL.
    address: String,
    stage: String,
    identity: String,
    /// blake3 of the command.
    command: String,
    run: String,
    log: PathBuf,
    submitted_ms: u64,
    /// Ray's status when the waiting run last saw it change, and when (for `mlp status`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(default)]
    status_ms: u64,
}

/// Stages whose Ray job is PENDING now: when it was submitted, and what it asks for.
fn pending_map() -> &'static Mutex<BTreeMap<String, (Instant, String)>> {
    static PENDING: OnceLock<Mutex<BTreeMap<String, (Instant, String)>>> = OnceLock::new();
    PENDING.get_or_init(|| Mutex::new(BTreeMap::new()))
}

/// The stages of this process whose Ray job waits for resources (PENDING for a second or
/// more), as `STAGE PENDING 12s (CPU=1, node2=1)`: the progress line shows them.
pub fn pending() -> Vec<String> {
    lock(pending_map())
        .iter()
        .filter(|(_, (since, _))| since.elapsed() >= Duration::from_secs(1))
        .map(|(stage, (since, asked))| {
            format!("{stage} PENDING {}s ({asked})", since.elapsed().as_secs())
        })
        .collect()
}

/// The Ray jobs the workspace's `.mlp/` (`dir` = `.mlp/ray`) records as in flight, by
/// stage: a run waits for them, or a killed run left them (the next run attaches). For
/// `mlp status`.
pub fn in_flight(dir: &Path) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in entries.flatten() {
        if e.path().extension().is_none_or(|x| x != "job") {
            continue;
        }
        let Some(f) = std::fs::read(e.path())
            .ok()
            .and_then(|b| serde_json::from_slice::<JobFile>(&b).ok())
        else {
            continue;
        };
        let state = match &f.status {
            Some(st) => format!(
                "{st} for {}s when last seen",
                now_ms().saturating_sub(f.status_ms) / 1000
            ),
            None => "submitted".to_string(),
        };
        out.insert(
            f.stage.clone(),
            format!(
                "ray job {} at {} (run {}): {state}",
                f.submission_id,
                f.address,
                f.run.trim_start_matches('0')
            ),
        );
    }
    out
}

/// A number of milliseconds from the environment.
fn env_ms(var: &str, default: u64, min: u64, max: u64) -> Duration {
    let ms = std::env::var(var)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(default)
        .clamp(min, max);
    Duration::from_millis(ms)
}

/// Time between two `GET /api/jobs/` (`MLP_RAY_POLL_MS`, default 250 ms).
fn poll_interval() -> Duration {
    env_ms("MLP_RAY_POLL_MS", 250, 20, 60_000)
}

/// How long the cluster may not answer before the stages waiting on it fail
/// (`MLP_RAY_LOST_MS`, default 30 s).
fn lost_after() -> Duration {
    env_ms("MLP_RAY_LOST_MS", 30_000, 500, 3_600_000)
}

/// The dashboard address a stage uses: its `address`, else `RAY_ADDRESS`.
fn base_url(settings: &RaySettings) -> io::Result<String> {
    let (text, from) = match &settings.address {
        Some(a) => (a.clone(), "`address`"),
        None => match std::env::var("RAY_ADDRESS") {
            Ok(a) if !a.trim().is_empty() => (a, "RAY_ADDRESS"),
            _ => {
                return Err(io::Error::other(
                    "no Ray cluster to submit to: set `address = \"http://HEAD:8265\"` in `executor ray { ... }` or RAY_ADDRESS",
                ));
            }
        },
    };
    RaySettings::dashboard_url(&text)
        .map_err(|e| io::Error::other(format!("{from} {text:?} is no Ray dashboard address: {e}")))
}

/// The words for a cluster that does not answer.
fn unreachable(base: &str, e: &ApiError) -> io::Error {
    io::Error::other(format!(
        "cannot reach the Ray cluster at {base}: {e}; is it up (`ray status` on the head) and is {base} its dashboard?"
    ))
}

impl Submission {
    pub fn new(stage: &Stage, run_id: &str, identity: String, dir: PathBuf) -> Submission {
        Submission {
            stage: stage.name.clone(),
            run_id: run_id.to_string(),
            identity,
            settings: RaySettings::clone(&stage.executor.ray),
            resources: stage.resources,
            dir,
            attach_checked: AtomicBool::new(false),
            attempts: AtomicU32::new(0),
        }
    }

    fn job_file(&self) -> PathBuf {
        self.dir.join(format!("{}.job", self.stage))
    }

    fn read_job_file(&self) -> Option<JobFile> {
        let text = std::fs::read(self.job_file()).ok()?;
        serde_json::from_slice(&text).ok()
    }

    /// Record Ray's status in the job file (for `mlp status`), and in the progress line's
    /// list of pending stages.
    fn note_status(&self, id: &str, status: &str, since: Instant, asked: &str) {
        if status == "PENDING" {
            lock(pending_map())
                .entry(self.stage.clone())
                .or_insert_with(|| (since, asked.to_string()));
        } else {
            lock(pending_map()).remove(&self.stage);
        }
        if let Some(mut f) = self.read_job_file().filter(|f| f.submission_id == id)
            && f.status.as_deref() != Some(status)
        {
            f.status = Some(status.to_string());
            f.status_ms = now_ms();
            if let Ok(bytes) = serde_json::to_vec_pretty(&f) {
                let _ = write_atomic(&self.job_file(), &bytes);
            }
        }
    }

    /// Remove the job file if it still names `id`.
    fn forget(&self, id: &str) {
        lock(pending_map()).remove(&self.stage);
        if self.read_job_file().is_some_and(|f| f.submission_id == id) {
            let _ = std::fs::remove_file(self.job_file());
        }
    }

    fn attempt(&self, job: &Job, id: u64, table: &ProcessTable) -> io::Result<Finished> {
        let base = base_url(&self.settings)?;
        std::fs::create_dir_all(&self.dir)?;
        let command = digest(&job.command);
        let mut attached = None;
        if !self.attach_checked.swap(true, Ordering::SeqCst)
            && let Some(f) = self.read_job_file()
        {
            let api = Client { base: &f.address };
            // This stage's cluster does not answer now: keep the record (its job may still
            // run). Another cluster's (the address changed) is let go.
            let known = match api.job(&f.submission_id) {
                Ok(k) => k,
                Err(e) if f.address == base => {
                    self.attach_checked.store(false, Ordering::SeqCst);
                    return Err(unreachable(&f.address, &e));
                }
                Err(_) => None,
            };
            let usable = known
                .as_ref()
                .is_some_and(|j| !matches!(j.status.as_str(), "FAILED" | "STOPPED"));
            if usable && f.identity == self.identity && f.command == command && f.address == base {
                attached = Some(f);
            } else {
                // A job for other inputs (or one that failed while nobody waited): it must
                // not go on writing this stage's outputs.
                if let Some(j) = &known
                    && !j.terminal()
                {
                    let _ = api.stop(&f.submission_id);
                }
                self.forget(&f.submission_id);
            }
        }
        let submitted = SystemTime::now();
        // An attached job's log is fetched from Ray into this run's log like any other.
        let sid = match &attached {
            Some(f) => f.submission_id.clone(),
            None => self.submit(&base, job, &command)?,
        };
        let api = Client { base: &base };
        let ended = self.wait(&api, &sid, job, id, table);
        let mut finished = self.finish(&api, &sid, job, &ended);
        finished.started = ended.started.unwrap_or(submitted);
        let mut note = format!("ray job {sid}");
        if let Some(n) = &ended.node {
            note.push_str(&format!(" on node {n}"));
        }
        if let Some(f) = &attached {
            note.push_str(&format!(
                " (submitted by run {}, attached to)",
                f.run.trim_start_matches('0')
            ));
        }
        finished.notes.push(note);
        self.forget(&sid);
        Ok(finished)
    }

    /// The submission id of this attempt: from the workspace, the run, the stage and the
    /// attempt, so a restarted run finds it in the job file before Ray has answered.
    fn submission_id(&self, root: &Path) -> String {
        // The workspace's path, and its `.mlp/` (inode, birth time: both fixed for the
        // directory's life): a workspace whose `.mlp/` was removed starts its runs at 1
        // again, under other ids.
        let mut h = blake3::Hasher::new();
        h.update(root.as_os_str().as_encoded_bytes());
        if let Some(m) = self.dir.parent().and_then(|d| std::fs::metadata(d).ok()) {
            use std::os::unix::fs::MetadataExt;
            h.update(&m.ino().to_le_bytes());
            if let Ok(born) = m.created()
                && let Ok(t) = born.duration_since(std::time::UNIX_EPOCH)
            {
                h.update(&t.as_nanos().to_le_bytes());
            }
        }
        let ws = h.finalize().to_hex();
        let stage: String = self
            .stage
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        let n = self.attempts.fetch_add(1, Ordering::SeqCst) + 1;
        format!(
            "mlp-{}-{}-{stage}-{n}",
            &ws[..8],
            self.run_id.trim_start_matches('0')
        )
    }

    /// The body of `POST /api/jobs/`.
    fn body(&self, sid: &str, job: &Job, root: &Path) -> io::Result<Value> {
        let mut env = Map::new();
        for (k, v) in job
            .env
            .iter()
            .chain(self.settings.env_vars.iter().flatten())
        {
            env.insert(k.clone(), Value::String(v.clone()));
        }
        // The command goes through the environment, so the entrypoint is one line whatever
        // the command (Ray echoes it into the log, which mlp then leaves out).
        env.insert("MLP_COMMAND".into(), Value::String(job.command.clone()));
        let mut runtime_env = match &self.settings.runtime_env {
            Some(text) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => m,
                _ => return Err(io::Error::other("`runtime_env` is not a JSON object")),
            },
            None => Map::new(),
        };
        if let Some(Value::Object(more)) = runtime_env.get("env_vars") {
            for (k, v) in more {
                env.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        runtime_env.insert("env_vars".into(), Value::Object(env));
        if let Some(pip) = &self.settings.pip {
            runtime_env.insert("pip".into(), json!(pip));
        }
        let root_s = root.display().to_string();
        let entrypoint = format!(
            "cd {root} 2>/dev/null || {{ echo \"mlp: cannot enter the workspace \"{root}\" on $(hostname): it must be on a filesystem every node of the Ray cluster shares, at the same path\" >&2; exit {NO_WORKSPACE}; }}; exec sh -c \"$MLP_COMMAND\"",
            root = sh_quote(&root_s),
        );
        let mut metadata = Map::new();
        for (k, v) in [
            ("mlp_stage", self.stage.as_str()),
            ("mlp_run", self.run_id.trim_start_matches('0')),
            ("mlp_workspace", root_s.as_str()),
            ("mlp_identity", self.identity.as_str()),
        ] {
            metadata.insert(k.into(), Value::String(v.into()));
        }
        for (k, v) in self.settings.metadata.iter().flatten() {
            metadata.insert(k.clone(), Value::String(v.clone()));
        }
        let mut body = json!({
            "entrypoint": entrypoint,
            "submission_id": sid,
            "runtime_env": runtime_env,
            "metadata": metadata,
            "entrypoint_num_cpus": self.resources.cpu.max(1),
        });
        if self.resources.gpu > 0 {
            body["entrypoint_num_gpus"] = json!(self.resources.gpu);
        }
        if self.resources.mem_bytes > 0 {
            body["entrypoint_memory"] = json!(self.resources.mem_bytes);
        }
        if let Some(r) = &self.settings.resources {
            let m: Map<String, Value> = r.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
            body["entrypoint_resources"] = Value::Object(m);
        }
        Ok(body)
    }

    /// Record, then submit: the submission id Ray took.
    fn submit(&self, base: &str, job: &Job, command: &str) -> io::Result<String> {
        let root = std::path::absolute(&job.cwd)?;
        let log = std::path::absolute(&job.log)?;
        let api = Client { base };
        let mut sid = self.submission_id(&root);
        for again in [false, true] {
            let file = JobFile {
                submission_id: sid.clone(),
                address: base.to_string(),
                stage: self.stage.clone(),
                identity: self.identity.clone(),
                command: command.to_string(),
                run: self.run_id.clone(),
                log: log.clone(),
                submitted_ms: now_ms(),
                status: None,
                status_ms: 0,
            };
            // Recorded first: a run killed while Ray answers still finds the job.
            let bytes = serde_json::to_vec_pretty(&file).map_err(io::Error::other)?;
            write_atomic(&self.job_file(), &bytes).map_err(|e| {
                io::Error::new(
                    e.kind(),
                    format!("cannot record ray job {sid} in {}: {e}", self.dir.display()),
                )
            })?;
            match api.submit(&self.body(&sid, job, &root)?) {
                Ok(taken) => return Ok(taken),
                Err(ApiError::Status(_, text)) if !again && text.contains("already exists") => {
                    // A workspace at this path made before (its `.mlp/` removed since)
                    // used this id: take another.
                    sid = format!("{sid}-{}", now_ms());
                }
                Err(e) => {
                    self.forget(&sid);
                    return Err(match e {
                        ApiError::Status(code, text) => io::Error::other(format!(
                            "the Ray cluster at {base} refused the job (HTTP {code}): {}",
                            client::last_line(&text)
                        )),
                        e => unreachable(base, &e),
                    });
                }
            }
        }
        unreachable!("the second try returns")
    }
}

#[cfg(test)]
mod tests;
