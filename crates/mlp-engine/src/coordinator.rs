//! The coordinator: the calling thread of `mlp run`, the only writer of the store. It
//! decides every stage whose upstream is done (in parallel on rayon: deciding hashes),
//! queues what must run, hands it to the `-j` workers while the tokens last, and records
//! what they send back. One [`StageState`] per stage holds all it knows.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mlp_plan::{ExecutorKind, StageId};
use rayon::prelude::*;

use crate::cache::ObjectCache;
use crate::control::RunControl;
use crate::decide::{self, Decider, Decision, WOULD_RESTORE};
use crate::events::{EngineError, Event, Reporter, Status};
use crate::exec::{self, Job};
use crate::executor::Executor;
use crate::hash::{StatCache, hex};
use crate::judge::{Baseline, Judge, Judgement};
use crate::queue::{Handout, Queue, needs};
use crate::ray;
use crate::record::{self, Facts};
use crate::slurm;
use crate::state::StageState;
use crate::store::{BATCH, Outcome, StageRecord, Store, worth_flushing};
use crate::worker::{self, CacheJob, Done, Report, Task};
use crate::workspace::{ms_of, now_ms};

pub struct Coordinator<'a> {
    pub f: &'a Facts<'a>,
    pub decider: &'a Decider<'a>,
    pub states: Vec<StageState>,
    pub queue: Queue,
    pub reporter: &'a mut dyn Reporter,
    pub baseline: &'a Baseline,
    /// Where local stages run (one for all of them).
    pub local: Arc<dyn Executor>,
    /// A failure without `--keep-going`, or Ctrl-C: nothing new starts (but handlers).
    pub stopping: bool,
    /// Ctrl-C: not even failure handlers start.
    pub interrupted: bool,
    /// A `promote` stage succeeded in this run.
    pub promote: bool,
    /// Records of finished stages not yet written (see `write_pending`).
    pub pending: Vec<StageRecord>,
    /// Stages whose outputs the cacher is still copying (their records wait for it).
    pub caching: usize,
}

/// How long finished stages' records may wait to be written together: at most this, or
/// [`BATCH`] of them (a costly stage's record is written at once).
const BATCH_WINDOW: Duration = Duration::from_millis(50);

impl Coordinator<'_> {
    /// Run the selected stages with `jobs` worker threads.
    pub fn schedule(
        &mut self,
        jobs: usize,
        control: &Arc<RunControl>,
        stat_cache: &StatCache,
        cache: &ObjectCache,
    ) -> Result<(), EngineError> {
        let (task_tx, task_rx) = mpsc::channel::<Task>();
        let task_rx = Mutex::new(task_rx);
        let (done_tx, done_rx) = mpsc::channel::<Report>();
        let (cache_tx, cache_rx) = mpsc::channel::<CacheJob>();
        let shared = worker::Shared {
            control,
            root: &self.f.ws.root,
            stat_cache,
            cache,
        };
        std::thread::scope(|scope| -> Result<(), EngineError> {
            for w in 0..jobs {
                let rx = &task_rx;
                let tx = done_tx.clone();
                let caches = cache_tx.clone();
                let shared = &shared;
                std::thread::Builder::new()
                    .name(format!("mlp-worker-{w}"))
                    .spawn_scoped(scope, move || worker::work(rx, &tx, &caches, shared))
                    .map_err(EngineError::Io)?;
            }
            // It ends when the last worker does (their senders are its only ones).
            drop(cache_tx);
            let (tx, shared) = (done_tx.clone(), &shared);
            std::thread::Builder::new()
                .name("mlp-cacher".into())
                .spawn_scoped(scope, move || worker::cacher(&cache_rx, &tx, shared))
                .map_err(EngineError::Io)?;
            drop(done_tx);
            let result = self.drive(&task_tx, &done_rx, &control.interrupted);
            drop(task_tx);
            let written = self.write_pending();
            result.and(written)
        })?;
        // Everything selected that never got a status did not run.
        for st in &mut self.states {
            if st.selected && st.status.is_none() {
                st.status = Some(Status::NotRun);
            }
        }
        Ok(())
    }

    fn drive(
        &mut self,
        tasks: &Sender<Task>,
        done: &Receiver<Report>,
        interrupted: &AtomicBool,
    ) -> Result<(), EngineError> {
        let mut next_id: u64 = 0;
        let mut written = Instant::now();
        loop {
            if interrupted.load(Ordering::SeqCst) {
                self.stopping = true;
                self.interrupted = true;
            }
            // 1. Decide every stage whose upstream is done (in parallel: it hashes).
            if self.queue.has_evaluable() {
                let batch = self.queue.take_evaluable();
                let (decider, states) = (self.decider, &self.states);
                // One stage (a chain): on this thread, without waking rayon's.
                let decisions: Vec<(StageId, Decision)> = if batch.len() == 1 {
                    batch
                        .iter()
                        .map(|&i| (i, decider.decide(i, states)))
                        .collect()
                } else {
                    batch
                        .par_iter()
                        .map(|&i| (i, decider.decide(i, states)))
                        .collect()
                };
                for (i, d) in decisions {
                    if let Some(st) = self.apply(i, d)? {
                        self.finish(i, st);
                    }
                }
                continue;
            }
            // 2. Hand out work while tokens last.
            let (p, executor) = (self.f.p, self.f.opts.executor);
            let total = self.queue.total();
            loop {
                let (stopping, interrupted) = (self.stopping, self.interrupted);
                let h = self.queue.next(
                    |i| needs(&p.stages[i], total, executor),
                    |i| stopping && (interrupted || !decide::is_handler(p, i)),
                );
                match h {
                    Some(Handout::Drop(i)) => self.finish(i, Status::NotRun),
                    Some(Handout::Start(i)) => {
                        let task = self.task(i, next_id);
                        next_id += 1;
                        let t = now_ms();
                        self.states[i].started_ms = t;
                        self.reporter.event(&Event::StageStarted {
                            stage: p.stages[i].name.clone(),
                            at_ms: t,
                        });
                        if tasks.send(task).is_err() {
                            self.queue.end_round();
                            break;
                        }
                    }
                    None => break,
                }
            }
            if self.queue.has_evaluable() {
                continue;
            }
            if self.queue.running() == 0 && self.caching == 0 {
                if self.queue.ready_is_empty() || self.stopping {
                    return Ok(());
                }
                continue;
            }
            // 3. Wait for a worker or the cacher. The records of what finished are
            //    written after the stages they unblocked were handed out, in batches:
            //    one store transaction for all that finished within BATCH_WINDOW.
            let due = written + BATCH_WINDOW;
            let urgent = self.pending.len() >= BATCH || self.pending.iter().any(worth_flushing);
            if urgent || (!self.pending.is_empty() && Instant::now() >= due) {
                self.write_pending()?;
                written = Instant::now();
            }
            let report = if self.pending.is_empty() {
                done.recv().ok()
            } else {
                match done.recv_timeout(due.saturating_duration_since(Instant::now())) {
                    Ok(r) => Some(r),
                    Err(mpsc::RecvTimeoutError::Timeout) => continue,
                    Err(mpsc::RecvTimeoutError::Disconnected) => None,
                }
            };
            match report {
                None => return Ok(()),
                Some(Report::Done(d)) => {
                    let i = d.stage;
                    self.queue.release(i);
                    let st = self.completed(*d);
                    self.finish(i, st);
                }
                Some(Report::Cached { stage, result }) => self.cached(stage, result),
            }
        }
    }

    fn judge(&self, i: StageId, own: &serde_json::Value) -> Result<Vec<String>, Judgement> {
        Judge {
            p: self.f.p,
            states: &self.states,
            store: self.f.store,
            baseline: self.baseline,
        }
        .checks(i, own)
    }

    /// Act on a decision: the stage's status when it is final, `None` when it is queued.
    fn apply(&mut self, i: StageId, d: Decision) -> Result<Option<Status>, EngineError> {
        let dry = self.f.opts.dry_run;
        let s = &self.f.p.stages[i];
        Ok(match d {
            Decision::Fresh { watch } => {
                match watch {
                    Some(w) => self.states[i].watch = Some(w),
                    None => self.states[i].carried = true,
                }
                Some(Status::Fresh)
            }
            Decision::Restore { record, .. } if dry => {
                // Kept so that the stages below are decided against the restored bytes.
                self.states[i].record = Some(Box::new(record));
                Some(Status::WouldRun {
                    reason: WOULD_RESTORE.to_string(),
                })
            }
            Decision::Restore {
                mut record, watch, ..
            } => {
                let t = now_ms();
                self.states[i].started_ms = t;
                self.states[i].ended_ms = t;
                let st = match self.judge(i, &record.metrics) {
                    Ok(notes) => {
                        record.outcome = Outcome::Succeeded;
                        record.reason.clear();
                        self.states[i].notes = notes;
                        self.states[i].watch = Some(watch);
                        self.promote |= s.promote;
                        Status::Restored
                    }
                    Err(j) => {
                        record.outcome = Outcome::CheckFailed {
                            message: j.message.clone(),
                        };
                        record.reason = j.message.clone();
                        let st = j.status();
                        // `finish` reports only what did not fail.
                        self.reporter.event(&Event::StageFinished {
                            stage: s.name.clone(),
                            status: st.clone(),
                            started_ms: t,
                            ended_ms: t,
                            log: None,
                            notes: vec!["outputs restored from the cache, then judged".to_string()],
                        });
                        st
                    }
                };
                self.pending.push(record.clone());
                self.states[i].record = Some(Box::new(record));
                Some(st)
            }
            Decision::Skip(why) => Some(Status::Skipped {
                reason: why.to_string(),
            }),
            Decision::Fail(e) => {
                let reason = e.to_string();
                if !dry {
                    let rec =
                        record::failed_before_running(&s.name, &self.f.run_id, reason.clone());
                    self.pending.push(rec);
                }
                Some(Status::failed(e.kind(), reason))
            }
            Decision::Run { key, why, watch } => {
                if dry {
                    Some(Status::WouldRun {
                        reason: why.run_text(),
                    })
                } else if self.stopping && (self.interrupted || !decide::is_handler(self.f.p, i)) {
                    Some(Status::NotRun)
                } else {
                    self.states[i].key = Some(Box::new(key));
                    self.states[i].watch = Some(watch);
                    self.queue.push_ready(i);
                    None
                }
            }
        })
    }

    fn task(&self, i: StageId, id: u64) -> Task {
        let s = &self.f.p.stages[i];
        let (ws, opts, run_id) = (self.f.ws, self.f.opts, &self.f.run_id);
        let _ = id;
        Task {
            stage: i,
            name: s.name.clone(),
            job: Job {
                command: s.command.clone(),
                cwd: ws.root.clone(),
                env: s
                    .env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .chain(param_env(s))
                    .collect(),
                log: ws.log_path(run_id, &s.name),
                timeout: s.timeout_ms.map(Duration::from_millis),
                echo: opts.verbose.then(|| exec::Echo {
                    prefix: s.name.clone(),
                }),
                append_log: false,
            },
            retry: s.retry,
            fallback: s.fallback.clone(),
            cache: s.cache,
            executor: match slurm::kind_of(s, opts.executor) {
                ExecutorKind::Local => Arc::clone(&self.local),
                ExecutorKind::Slurm => Arc::new(slurm::Submission::new(
                    s,
                    run_id,
                    self.states[i]
                        .watch
                        .as_ref()
                        .map(|w| hex(&w.identity))
                        .unwrap_or_default(),
                    ws.dir.join("slurm"),
                )),
                ExecutorKind::Ray => Arc::new(ray::Submission::new(
                    s,
                    run_id,
                    self.states[i]
                        .watch
                        .as_ref()
                        .map(|w| hex(&w.identity))
                        .unwrap_or_default(),
                    ws.dir.join("ray"),
                )),
            },
            outputs: s.outputs.iter().map(|o| o.path.clone()).collect(),
            metrics: s
                .outputs
                .iter()
                .filter(|o| o.metrics)
                .map(|o| {
                    (
                        o.name.clone().unwrap_or_else(|| o.path.clone()),
                        o.path.clone(),
                    )
                })
                .collect(),
        }
    }

    /// A worker finished a stage: record it.
    fn completed(&mut self, mut done: Done) -> Status {
        let i = done.stage;
        let s = &self.f.p.stages[i];
        let ended = now_ms();
        self.states[i].ended_ms = ended;
        let key = self.states[i]
            .key
            .take()
            .map_or_else(crate::identity::StageKey::empty, |k| *k);
        let record::Ended {
            mut outcome,
            mut status,
            outputs,
            metrics,
        } = record::ended(s, &mut done);
        let (cpu_ms, rss) = done
            .finished
            .as_ref()
            .map_or((0, 0), |f| (f.cpu_ms, f.max_rss_kb));
        // From the first attempt: retries and the fallback are part of the stage's time.
        let started_ms = if self.states[i].started_ms > 0 {
            self.states[i].started_ms
        } else {
            done.finished.as_ref().map_or(ended, |f| ms_of(f.started))
        };
        if outcome == Outcome::Succeeded {
            match self.judge(i, &metrics) {
                Ok(notes) => {
                    self.states[i].notes = notes;
                    self.promote |= s.promote;
                }
                Err(j) => {
                    outcome = Outcome::CheckFailed {
                        message: j.message.clone(),
                    };
                    status = j.status();
                }
            }
        }
        let st = &mut self.states[i];
        if done.used_fallback && status.ok() {
            st.notes
                .push("the fallback command produced the outputs".to_string());
        }
        if let Ok(f) = &done.finished {
            st.notes.extend(f.notes.iter().cloned());
        }
        let mut watch = st.watch.take().unwrap_or_default();
        let record = StageRecord {
            stage: s.name.clone(),
            identity: hex(&watch.identity),
            key: key.to_json(),
            outputs: outputs.iter().map(|(r, _)| r.clone()).collect(),
            outcome,
            run_id: self.f.run_id.clone(),
            started_ms,
            ended_ms: ended,
            attempts: done.attempts,
            cpu_ms,
            max_rss_kb: rss,
            metrics,
            fallback_used: done.used_fallback,
            checks: crate::judge::checks_digest(s),
            reason: match &status {
                Status::Failed { reason, .. } => reason.clone(),
                _ => String::new(),
            },
        };
        if done.caching {
            self.caching += 1;
        } else {
            self.pending.push(record.clone());
        }
        st.record = Some(Box::new(record));
        // A fallback's outputs serve this run only: no snapshot entry, so the next run
        // tries the command again.
        if status.ok() && !done.used_fallback {
            for (_, e) in outputs {
                watch.entries.extend(e);
            }
            st.watch = Some(watch);
        }
        self.reporter.event(&Event::StageFinished {
            stage: s.name.clone(),
            status: status.clone(),
            started_ms,
            ended_ms: ended,
            log: done.log.as_ref().map(|l| l.display().to_string()),
            notes: st.notes.clone(),
        });
        status
    }

    /// The cacher copied a stage's outputs into the object cache: its record can be
    /// written. If it could not, the stage is not recorded (nor in the next snapshot), so
    /// the next run runs it again.
    fn cached(&mut self, i: StageId, result: Result<(), crate::outputs::OutputError>) {
        self.caching -= 1;
        let st = &mut self.states[i];
        match result {
            Ok(()) => {
                if let Some(r) = &st.record {
                    self.pending.push(StageRecord::clone(r));
                }
            }
            Err(e) => {
                st.watch = None;
                let stage = &self.f.p.stages[i].name;
                self.reporter.event(&Event::Warning {
                    message: format!(
                        "stage `{stage}` ran, but {e}: it is not recorded and runs again next time"
                    ),
                });
            }
        }
    }

    /// Write the records of stages that finished since the last call, in batches.
    fn write_pending(&mut self) -> Result<(), EngineError> {
        let pending = std::mem::take(&mut self.pending);
        self.f.store.put_records(&pending)?;
        Ok(())
    }

    /// A stage has its final status: report it (unless that was done where it ended) and
    /// unblock what waits for it.
    fn finish(&mut self, i: StageId, st: Status) {
        let state = &mut self.states[i];
        if state.status.is_some() {
            return;
        }
        // What a worker finished (or a restore judged) was reported where it ended.
        let reported = matches!(st, Status::Ran { .. } | Status::Interrupted)
            || (matches!(st, Status::Failed { .. }) && state.record.is_some());
        if !reported {
            // Finished without a worker: report it too.
            self.reporter.event(&Event::StageFinished {
                stage: self.f.p.stages[i].name.clone(),
                status: st.clone(),
                started_ms: state.started_ms,
                ended_ms: state.ended_ms,
                log: None,
                notes: state.notes.clone(),
            });
        }
        if matches!(st, Status::Failed { .. } | Status::Interrupted) && !self.f.opts.keep_going {
            self.stopping = true;
        }
        state.status = Some(st);
        self.queue.finished(i);
    }
}

/// Params reach the command as environment variables: `MLP_PARAM_TRAIN__LR=0.1` for
/// `train.lr` (dots become `__`, upper case), and all of them as one JSON object in
/// `MLP_PARAMS`.
fn param_env(s: &mlp_plan::Stage) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = s
        .params
        .iter()
        .map(|(k, v)| {
            (
                format!(
                    "MLP_PARAM_{}",
                    k.replace('.', "__").replace('-', "_").to_uppercase()
                ),
                v.to_string(),
            )
        })
        .collect();
    let obj: serde_json::Map<String, serde_json::Value> = s
        .params
        .iter()
        .map(|(k, v)| (k.clone(), v.to_json()))
        .collect();
    out.push((
        "MLP_PARAMS".to_string(),
        serde_json::Value::Object(obj).to_string(),
    ));
    out.push(("MLP_STAGE".to_string(), s.name.clone()));
    out
}
