//! The one `squeue` poller of the process: every job in flight is asked about in one call
//! per poll, and the workers waiting on a job wake after each poll.

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::process::Stdio;
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::Duration;

/// Slurm states after which a job never runs again.
const TERMINAL: &[&str] = &[
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "OUT_OF_MEMORY",
    "NODE_FAIL",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "REVOKED",
];

pub(crate) fn terminal(state: &str) -> bool {
    // `sacct` says `CANCELLED by 0`.
    let word = state.split_whitespace().next().unwrap_or("");
    TERMINAL.contains(&word)
}

use crate::jobs::lock;

/// What the poller last saw of a job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// Not polled yet.
    Unknown,
    Active {
        state: String,
        node: String,
    },
    Ended {
        state: String,
        node: String,
    },
    /// Missing from two polls in a row: Slurm forgot it.
    Gone,
}

pub(crate) struct Poller {
    state: Mutex<PollState>,
    cv: Condvar,
}

#[derive(Default)]
struct PollState {
    jobs: HashMap<String, (Seen, u32)>,
    started: bool,
}

pub(crate) fn poller() -> &'static Poller {
    static POLLER: OnceLock<Poller> = OnceLock::new();
    POLLER.get_or_init(|| Poller {
        state: Mutex::new(PollState::default()),
        cv: Condvar::new(),
    })
}

impl Poller {
    /// Poll `job` (every `interval`, from the first watch on) until it is unwatched.
    pub(crate) fn watch(&'static self, job: &str, interval: Duration) {
        let mut st = lock(&self.state);
        st.jobs.insert(job.to_string(), (Seen::Unknown, 0));
        if !st.started {
            let spawned = std::thread::Builder::new()
                .name("mlp-slurm-poll".into())
                .spawn(move || self.run(interval));
            st.started = spawned.is_ok();
        }
        drop(st);
        self.cv.notify_all();
    }

    pub(crate) fn unwatch(&self, job: &str) {
        lock(&self.state).jobs.remove(job);
    }

    /// What is known of `job` after the next poll (or `timeout`).
    pub(crate) fn wait(&self, job: &str, timeout: Duration) -> Seen {
        let st = lock(&self.state);
        let (st, _) = self
            .cv
            .wait_timeout(st, timeout)
            .unwrap_or_else(PoisonError::into_inner);
        st.jobs.get(job).map_or(Seen::Gone, |(s, _)| s.clone())
    }

    fn run(&self, interval: Duration) {
        loop {
            let ids: Vec<String> = {
                let mut st = lock(&self.state);
                while st.jobs.is_empty() {
                    st = self.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
                st.jobs.keys().cloned().collect()
            };
            let seen = squeue(&ids);
            let asked: HashSet<&str> = ids.iter().map(String::as_str).collect();
            {
                let mut st = lock(&self.state);
                if let Some(seen) = seen {
                    for (id, entry) in st.jobs.iter_mut() {
                        match seen.get(id) {
                            Some((state, node)) => {
                                entry.1 = 0;
                                entry.0 = if terminal(state) {
                                    Seen::Ended {
                                        state: state.clone(),
                                        node: node.clone(),
                                    }
                                } else {
                                    Seen::Active {
                                        state: state.clone(),
                                        node: node.clone(),
                                    }
                                };
                            }
                            // Polled before this job was submitted, or forgotten.
                            None if asked.contains(id.as_str()) => {
                                entry.1 += 1;
                                if entry.1 >= 2 {
                                    entry.0 = Seen::Gone;
                                }
                            }
                            None => {}
                        }
                    }
                }
            }
            self.cv.notify_all();
            std::thread::sleep(interval);
        }
    }
}

/// One `squeue` call for every job in flight: `id → (state, nodes)`. `None` when Slurm
/// cannot be asked (the jobs keep their last state).
fn squeue(ids: &[String]) -> Option<HashMap<String, (String, String)>> {
    let out = Command::new("squeue")
        .args(["-h", "-t", "all", "-o", "%i|%T|%N", "-j", &ids.join(",")])
        .stdin(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        // Every job of the list is unknown to Slurm.
        let err = String::from_utf8_lossy(&out.stderr);
        return err.contains("Invalid job id").then(HashMap::new);
    }
    let want: HashSet<&str> = ids.iter().map(String::as_str).collect();
    let mut seen = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let mut f = line.split('|');
        let (Some(id), Some(state)) = (f.next(), f.next()) else {
            continue;
        };
        let id = id.trim();
        if want.contains(id) {
            let node = f.next().unwrap_or("").trim().to_string();
            seen.insert(id.to_string(), (state.trim().to_string(), node));
        }
    }
    Some(seen)
}
