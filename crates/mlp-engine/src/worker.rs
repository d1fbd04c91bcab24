//! The worker threads: take a [`Task`], run it on its [`Executor`] (with retries and the
//! fallback), hash its outputs, send back what happened ([`Done`]) and hand the outputs
//! to the cacher thread, which copies them into the object cache and reports that
//! ([`Report::Cached`]). So the coordinator hands out what a stage unblocked before its
//! outputs are copied, and writes the stage's record only after they are.
//!
//! Child processes block a thread, so the `-j` workers are a dedicated pool, never rayon's
//! (which hashing uses).

use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mlp_plan::StageId;

use crate::cache::ObjectCache;
use crate::control::RunControl;
use crate::exec::{Exit, Finished, Job};
use crate::executor::Executor;
use crate::hash::{Content, Stamps, StatCache};
use crate::outputs::{self, OutputError};
use crate::snapshot::Entry;
use crate::store::OutputRecord;

/// One stage for a worker.
pub struct Task {
    pub stage: StageId,
    pub name: String,
    pub job: Job,
    pub retry: u32,
    pub fallback: Option<String>,
    /// Where the command runs.
    pub executor: Arc<dyn Executor>,
    pub outputs: Vec<String>,
    /// `(name, path)` of each metrics file.
    pub metrics: Vec<(String, String)>,
    /// How its outputs go into the cache (`cache copy|link`).
    pub cache: mlp_plan::model::CacheMode,
}

/// What a worker sends back.
pub struct Done {
    pub stage: StageId,
    /// `Err`: the command could not be run at all.
    pub finished: io::Result<Finished>,
    pub attempts: u32,
    pub used_fallback: bool,
    pub outputs: Result<Vec<(OutputRecord, Vec<Entry>)>, OutputError>,
    /// Each metrics file parsed (`name → content`), when the outputs are all there.
    pub metrics: Result<serde_json::Value, OutputError>,
    /// The stage's log, when its command printed something.
    pub log: Option<PathBuf>,
    /// Its outputs are being copied into the object cache: a [`Report::Cached`] follows.
    pub caching: bool,
    /// What to copy into the object cache (taken by the worker before it reports).
    to_cache: Vec<(String, Content)>,
    /// The digests of `to_cache` that their files' stamps vouch for.
    known: Stamps,
}

/// What the coordinator hears from the workers and the cacher.
pub enum Report {
    Done(Box<Done>),
    /// The outputs of a stage that reported [`Done::caching`] are in the object cache
    /// (`Ok`), or could not be put there.
    Cached {
        stage: StageId,
        result: Result<(), OutputError>,
    },
}

/// Outputs to copy into the object cache.
pub struct CacheJob {
    stage: StageId,
    /// `cache copy|link` of the stage.
    mode: mlp_plan::model::CacheMode,
    outputs: Vec<(String, Content)>,
    known: Stamps,
}

/// What every worker shares.
pub struct Shared<'a> {
    pub control: &'a RunControl,
    pub root: &'a Path,
    pub stat_cache: &'a StatCache,
    pub cache: &'a ObjectCache,
}

/// A worker thread: take a task, run it, send the result, hand its outputs to the
/// cacher; until the task channel closes.
pub fn work(
    rx: &Mutex<mpsc::Receiver<Task>>,
    tx: &mpsc::Sender<Report>,
    caches: &mpsc::Sender<CacheJob>,
    w: &Shared<'_>,
) {
    let mut id: u64 = 0;
    loop {
        let task = {
            let Ok(guard) = rx.lock() else { return };
            match guard.recv() {
                Ok(t) => t,
                Err(_) => return,
            }
        };
        id += 1;
        let job_id = (task.stage as u64) << 20 | (id & 0xfffff);
        let mut done = w.one(&task, job_id);
        let outputs = std::mem::take(&mut done.to_cache);
        let known = std::mem::take(&mut done.known);
        done.caching = !outputs.is_empty();
        if tx.send(Report::Done(Box::new(done))).is_err() {
            return;
        }
        if !outputs.is_empty() {
            let job = CacheJob {
                stage: task.stage,
                mode: task.cache,
                outputs,
                known,
            };
            if caches.send(job).is_err() {
                return;
            }
        }
    }
}

/// The cacher thread: copy outputs into the object cache, one stage after the other,
/// until every worker is gone.
pub fn cacher(rx: &mpsc::Receiver<CacheJob>, tx: &mpsc::Sender<Report>, w: &Shared<'_>) {
    for job in rx {
        let result = outputs::cache(
            w.root,
            &w.cache.with_mode(job.mode),
            &job.outputs,
            &job.known,
        );
        if tx
            .send(Report::Cached {
                stage: job.stage,
                result,
            })
            .is_err()
        {
            return;
        }
    }
}

impl Shared<'_> {
    fn one(&self, task: &Task, job_id: u64) -> Done {
        let table = &self.control.table;
        self.control.started(&task.name, job_id);
        let mut attempts = 0;
        let mut used_fallback = false;
        let cleared = if task.executor.keeps_outputs(&task.job.command) {
            Ok(()) // a job of an earlier run is writing them: attach to it
        } else {
            outputs::clear(self.root, self.cache, &task.outputs)
        };
        let mut finished = match cleared {
            Err(e) => Err(io::Error::other(e)),
            Ok(()) => loop {
                attempts += 1;
                let mut job = task.job.clone();
                if attempts > 1 {
                    // Keep what the earlier attempts printed.
                    note_in_log(
                        &job.log,
                        &format!("attempt {attempts} of {}", task.retry + 1),
                    );
                    job.append_log = true;
                }
                let r = task.executor.run(&job, job_id, table);
                let retry = matches!(&r, Ok(f) if !f.success() && !matches!(f.exit, Exit::Cancelled))
                    && attempts <= task.retry;
                if !retry {
                    break r;
                }
                // Exponential backoff: 0.5 s, 1 s, 2 s ... capped at 30 s.
                let wait = Duration::from_millis((500u64 << (attempts - 1).min(6)).min(30_000));
                std::thread::sleep(wait);
                if table.is_cancelled() {
                    break r;
                }
            },
        };
        if let (Ok(f), Some(fb)) = (&finished, &task.fallback)
            && !f.success()
            && !matches!(f.exit, Exit::Cancelled)
        {
            let mut job = task.job.clone();
            job.command = fb.clone();
            job.append_log = true;
            note_in_log(&job.log, "the command failed: running the fallback");
            finished = task.executor.run(&job, job_id, table);
            used_fallback = true;
        }
        let known = Stamps::default();
        let hashed = match &finished {
            Ok(f) if f.success() => {
                outputs::hash(self.root, self.stat_cache, &task.outputs, &known)
            }
            _ => Ok(Vec::new()),
        };
        self.control.ended(&task.name);
        let metrics = match (&finished, &hashed) {
            (Ok(f), Ok(_)) if f.success() => outputs::read_metrics(self.root, &task.metrics),
            _ => Ok(serde_json::Value::Null),
        };
        let mut to_cache = Vec::new();
        let outputs = hashed.map(|hs| {
            hs.into_iter()
                .map(|h| {
                    if metrics.is_ok() {
                        to_cache.push((h.record.path.clone(), h.content));
                    }
                    (h.record, h.entries)
                })
                .collect()
        });
        let log = task.job.log.exists().then(|| task.job.log.clone());
        Done {
            stage: task.stage,
            finished,
            attempts,
            used_fallback,
            outputs,
            metrics,
            log,
            caching: false,
            to_cache,
            known,
        }
    }
}

/// A line of mlp's own in a stage's log, between attempts.
fn note_in_log(log: &Path, what: &str) {
    use std::io::Write;
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
    {
        let _ = writeln!(f, "── mlp: {what} ──");
    }
}
