//! Waiting for a Ray job (stopping it on Ctrl-C, `mlp watch`'s stop, `timeout`, a
//! `pending_timeout`, or resources no node has), then what its end means for the stage.

use std::collections::BTreeMap;
use std::io::Write;
use std::time::{Duration, Instant, SystemTime};

use super::client::{Client, JobInfo, Node};
use super::poll::{Seen, poller};
use super::{NO_WORKSPACE, Submission, lost_after, poll_interval};
use crate::jobs::stop_reason;

/// `CPU=1, node2=1`.
fn show_asked(want: &BTreeMap<String, f64>) -> String {
    want.iter()
        .map(|(k, v)| format!("{k}={}", show_amount(k, *v)))
        .collect::<Vec<_>>()
        .join(", ")
}
use crate::exec::{Exit, Finished, Job, ProcessTable};

/// How long to wait for a job to end after `stop`.
const STOP_WAIT: Duration = Duration::from_secs(30);

/// How often the log of a running job is fetched into the stage's log.
const LOG_EVERY: Duration = Duration::from_secs(2);

/// How long a job may be PENDING before the cluster's nodes are checked for what it asks.
const FEASIBLE_AFTER: Duration = Duration::from_secs(2);

/// How a wait ended.
pub(super) struct Ended {
    /// What Ray said last (`None`: never seen, or gone).
    pub info: Option<JobInfo>,
    /// The node the entrypoint runs on: its id (short) and address.
    pub node: Option<String>,
    /// When the job was first seen running.
    pub started: Option<SystemTime>,
    /// We stopped it: why.
    pub ours: Option<Exit>,
    /// It cannot end well, in words (the cluster lost, resources no node has...).
    pub why: Option<String>,
    /// Where this attempt's output starts in the stage's log (after the earlier attempts'
    /// output, for a retry or a fallback).
    pub log_base: u64,
}

impl Submission {
    /// Wait for the job to end.
    pub(super) fn wait(
        &self,
        api: &Client<'_>,
        sid: &str,
        job: &Job,
        id: u64,
        table: &ProcessTable,
    ) -> Ended {
        let p = poller();
        p.watch(api.base, sid, poll_interval());
        let mut ended = Ended {
            info: None,
            node: None,
            started: None,
            ours: None,
            why: None,
            log_base: if job.append_log {
                std::fs::metadata(&job.log).map_or(0, |m| m.len())
            } else {
                0
            },
        };
        let mut log_fetched = Instant::now();
        let mut running_since: Option<Instant> = None;
        let pending_since = Instant::now();
        let mut feasible_checked = false;
        let mut stopped_at: Option<Instant> = None;
        let asked = show_asked(&self.asked());
        loop {
            match p.wait(api.base, sid, Duration::from_millis(200)) {
                Seen::Unknown => {}
                Seen::Known(info) => {
                    if ended.node.is_none()
                        && let Some(n) = info.driver_node_id.as_deref().filter(|n| !n.is_empty())
                    {
                        ended.node = Some(n.chars().take(12).collect());
                    }
                    if info.status == "RUNNING" && running_since.is_none() {
                        running_since = Some(Instant::now());
                        ended.started = Some(SystemTime::now());
                    }
                    // The log so far, so `tail -f` on the stage's log follows the job.
                    if info.status == "RUNNING" && log_fetched.elapsed() >= LOG_EVERY {
                        log_fetched = Instant::now();
                        if let Ok(text) = api.logs(sid) {
                            let _ = write_log(job, ended.log_base, &own_lines(&text));
                        }
                    }
                    self.note_status(sid, &info.status, pending_since, &asked);
                    let done = info.terminal();
                    let pending = info.status == "PENDING";
                    ended.info = Some(info);
                    if done {
                        break;
                    }
                    if pending && stopped_at.is_none() {
                        if !feasible_checked
                            && self.settings.pending_timeout_ms.is_none()
                            && pending_since.elapsed() >= FEASIBLE_AFTER
                        {
                            feasible_checked = true;
                            if let Some(why) = self.infeasible(api) {
                                ended.why = Some(format!("ray job {sid} {why}"));
                                let _ = api.stop(sid);
                                stopped_at = Some(Instant::now());
                            }
                        }
                        if let Some(ms) = self.settings.pending_timeout_ms
                            && pending_since.elapsed() >= Duration::from_millis(ms)
                        {
                            ended.why = Some(format!(
                                "ray job {sid} was still PENDING after `pending_timeout` ({}): the cluster at {} did not give it {}",
                                human_ms(ms),
                                api.base,
                                self.asked()
                                    .iter()
                                    .map(|(k, v)| format!("{k}={v}"))
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            ));
                            let _ = api.stop(sid);
                            stopped_at = Some(Instant::now());
                        }
                    }
                }
                Seen::Gone => {
                    ended.why = Some(format!(
                        "ray job {sid} is gone from the cluster at {} (was it restarted?)",
                        api.base
                    ));
                    break;
                }
                Seen::Unreachable { since, error } => {
                    if since.elapsed() >= lost_after() {
                        ended.why = Some(format!(
                            "lost the Ray cluster at {} while waiting for job {sid}: {error} for {}s",
                            api.base,
                            since.elapsed().as_secs()
                        ));
                        break;
                    }
                }
            }
            match stopped_at {
                None => {
                    if let Some(why) = stop_reason(table, id, job, running_since) {
                        let _ = api.stop(sid);
                        ended.ours = Some(why);
                        stopped_at = Some(Instant::now());
                    }
                }
                // A PENDING job has nothing running: Ray may keep it PENDING after the stop
                // (its supervisor has no node either), so do not wait for it to end.
                Some(_) if ended.info.as_ref().is_none_or(|i| i.status == "PENDING") => break,
                Some(t) if t.elapsed() > STOP_WAIT => break,
                Some(_) => {}
            }
        }
        p.unwatch(api.base, sid);
        ended
    }

    /// What the job asks of a node: CPU, GPU, memory and the custom resources.
    fn asked(&self) -> BTreeMap<String, f64> {
        let mut want = BTreeMap::new();
        want.insert("CPU".to_string(), f64::from(self.resources.cpu.max(1)));
        if self.resources.gpu > 0 {
            want.insert("GPU".into(), f64::from(self.resources.gpu));
        }
        if self.resources.mem_bytes > 0 {
            want.insert("memory".into(), self.resources.mem_bytes as f64);
        }
        for (k, v) in self.settings.resources.iter().flatten() {
            want.insert(k.clone(), *v);
        }
        want
    }

    /// Why no node of the cluster can ever run the job, if none can (`None` as well when
    /// the nodes cannot be listed: the job keeps waiting).
    fn infeasible(&self, api: &Client<'_>) -> Option<String> {
        let nodes = api.nodes().ok()?;
        let want = self.asked();
        let fits = |n: &Node| {
            want.iter()
                .all(|(k, v)| n.resources_total.get(k).is_some_and(|have| have >= v))
        };
        let alive: Vec<&Node> = nodes.iter().filter(|n| n.state == "ALIVE").collect();
        if alive.iter().any(|n| fits(n)) {
            return None;
        }
        let asked = show_asked(&want);
        let have = alive
            .iter()
            .map(|n| {
                let r = n
                    .resources_total
                    .iter()
                    .filter(|(k, _)| !k.starts_with("node:") && k.as_str() != "object_store_memory")
                    .map(|(k, v)| format!("{k}={}", show_amount(k, *v)))
                    .collect::<Vec<_>>()
                    .join(", ");
                format!(
                    "{} ({}): {r}",
                    &n.node_id[..n.node_id.len().min(12)],
                    n.node_ip
                )
            })
            .collect::<Vec<_>>()
            .join("; ");
        Some(format!(
            "asks for {asked}, which no node of the cluster at {} has (Ray would keep it PENDING forever); nodes: {have}. Lower the stage's `resources` or the executor's custom `resources`, or set `pending_timeout` when an autoscaler adds nodes",
            api.base
        ))
    }

    /// What the ended job means for the stage; its output goes to the stage's log.
    pub(super) fn finish(&self, api: &Client<'_>, sid: &str, job: &Job, ended: &Ended) -> Finished {
        let mut f = Finished::not_run(Exit::Cancelled);
        f.ended = SystemTime::now();
        let logs = match api.logs(sid) {
            Ok(text) => own_lines(&text),
            Err(_) => String::new(),
        };
        let _ = write_log(job, ended.log_base, &logs);
        if let Some(ours) = &ended.ours {
            f.exit = ours.clone();
            return f;
        }
        if let Some(why) = &ended.why {
            f.exit = Exit::Scheduler(why.clone());
            return f;
        }
        let Some(info) = &ended.info else {
            f.exit = Exit::Scheduler(format!("ray job {sid} was never seen by the poller"));
            return f;
        };
        let on = ended
            .node
            .as_ref()
            .map(|n| format!(" on node {n}"))
            .unwrap_or_default();
        f.exit = match (info.status.as_str(), info.driver_exit_code) {
            ("SUCCEEDED", _) => Exit::Code(0),
            ("FAILED", Some(NO_WORKSPACE)) if logs.contains("mlp: cannot enter the workspace") => {
                Exit::Scheduler(format!(
                    "ray job {sid}{on} cannot see the workspace {}: it must be on a filesystem every node of the Ray cluster shares, at the same path",
                    job.cwd.display()
                ))
            }
            // Python's way of saying the entrypoint's `sh` was killed by a signal.
            ("FAILED", Some(rc)) if rc < 0 => Exit::Signal(-rc),
            ("FAILED", Some(rc)) if rc != 0 => Exit::Code(rc),
            ("STOPPED", _) => Exit::Scheduler(format!(
                "ray job {sid}{on} was STOPPED from outside mlp (`ray job stop`, the dashboard)"
            )),
            (status, _) => {
                let kind = info
                    .error_type
                    .as_deref()
                    .map(|t| format!(" ({t})"))
                    .unwrap_or_default();
                let msg = info
                    .message
                    .as_deref()
                    .and_then(|m| m.lines().next())
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default();
                Exit::Scheduler(format!("ray job {sid}{on} {status}{kind}{msg}"))
            }
        };
        f
    }
}

/// The job's output so far to the stage's log, after the first `base` bytes (the earlier
/// attempts' output, for a retry or a fallback).
fn write_log(job: &Job, base: u64, text: &str) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    if let Some(parent) = job.log.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&job.log)?;
    f.set_len(base)?;
    f.seek(SeekFrom::Start(base))?;
    f.write_all(text.as_bytes())
}

/// `90s`, `10m`, `1h30m`.
fn human_ms(ms: u64) -> String {
    let s = ms.div_ceil(1000);
    match (s / 3600, (s % 3600) / 60, s % 60) {
        (0, 0, s) => format!("{s}s"),
        (0, m, 0) => format!("{m}m"),
        (0, m, s) => format!("{m}m{s}s"),
        (h, 0, 0) => format!("{h}h"),
        (h, m, _) => format!("{h}h{m}m"),
    }
}

/// A resource amount as a person reads it (memory in MiB).
fn show_amount(k: &str, v: f64) -> String {
    if k == "memory" {
        format!("{}MiB", (v / f64::from(1 << 20)).round())
    } else if v.fract() == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// The job's log without the lines Ray adds: its `job_manager` messages and the
/// `Running entrypoint for job ...` line.
pub(super) fn own_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if line.starts_with("Running entrypoint for job mlp-") || ray_line(line) {
            continue;
        }
        out.push_str(line);
    }
    out
}

/// `2026-12-02 14:46:48,403\tINFO job_manager.py:581 -- ...`.
fn ray_line(line: &str) -> bool {
    let b = line.as_bytes();
    if b.len() < 25 {
        return false;
    }
    let stamp = b[..23].iter().enumerate().all(|(i, c)| match i {
        4 | 7 => *c == b'-',
        10 => *c == b' ',
        13 | 16 => *c == b':',
        19 => *c == b',',
        _ => c.is_ascii_digit(),
    });
    stamp
        && b[23] == b'\t'
        && line[24..].split_once(" -- ").is_some_and(|(head, _)| {
            head.split_once(' ').is_some_and(|(level, at)| {
                level.chars().all(|c| c.is_ascii_uppercase()) && at.contains(".py:")
            })
        })
}
