//! The one Ray poller of the process: every job in flight on a cluster is asked about in one
//! `GET /api/jobs/` per poll, and the workers waiting on a job wake after each poll.
//!
//! The list holds every job the cluster ever ran (with their messages), so on a cluster
//! with a long history and few jobs of ours in flight, one `GET /api/jobs/ID` per job costs
//! the dashboard less: the poller asks that way when the jobs in flight are fewer than a
//! sixteenth of the last list.

use std::collections::{HashMap, HashSet};
use std::sync::{Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use super::client::{Client, JobInfo};

use crate::jobs::lock;

/// What the poller last saw of a job.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Seen {
    /// Not polled yet.
    Unknown,
    Known(JobInfo),
    /// Missing from two lists in a row: the cluster does not know it (any more).
    Gone,
    /// The cluster has not answered since `since`: the last error.
    Unreachable {
        since: Instant,
        error: String,
    },
}

/// A job: the dashboard's base URL and the submission id.
type Key = (String, String);

pub(crate) struct Poller {
    state: Mutex<PollState>,
    cv: Condvar,
}

#[derive(Default)]
struct PollState {
    /// What was seen, and how many lists in a row missed the job.
    jobs: HashMap<Key, (Seen, u32)>,
    started: bool,
}

/// Jobs in flight × this below the length of the last list: ask for each job instead.
const LIST_RATIO: usize = 16;

/// Ask the cluster at `base` about `ids`: by one list, or one by one (see the module's
/// comment); `last` is the length of the last list, updated.
fn ask(
    base: &str,
    ids: &[&str],
    last: &mut Option<usize>,
) -> Result<HashMap<String, JobInfo>, String> {
    let api = Client { base };
    if last.is_some_and(|n| ids.len() * LIST_RATIO < n) {
        let mut seen = HashMap::new();
        for id in ids {
            if let Some(info) = api.job(id).map_err(|e| e.to_string())? {
                seen.insert((*id).to_string(), info);
            }
        }
        return Ok(seen);
    }
    let jobs = api.jobs().map_err(|e| e.to_string())?;
    *last = Some(jobs.len());
    Ok(jobs
        .into_iter()
        .filter_map(|j| Some((j.submission_id.clone()?, j)))
        .collect())
}

pub(crate) fn poller() -> &'static Poller {
    static POLLER: OnceLock<Poller> = OnceLock::new();
    POLLER.get_or_init(|| Poller {
        state: Mutex::new(PollState::default()),
        cv: Condvar::new(),
    })
}

impl Poller {
    /// Poll the job `id` of the cluster at `base` (every `interval`, from the first watch
    /// on) until it is unwatched.
    pub(crate) fn watch(&'static self, base: &str, id: &str, interval: Duration) {
        let mut st = lock(&self.state);
        st.jobs
            .insert((base.to_string(), id.to_string()), (Seen::Unknown, 0));
        if !st.started {
            let spawned = std::thread::Builder::new()
                .name("mlp-ray-poll".into())
                .spawn(move || self.run(interval));
            st.started = spawned.is_ok();
        }
        drop(st);
        self.cv.notify_all();
    }

    pub(crate) fn unwatch(&self, base: &str, id: &str) {
        lock(&self.state)
            .jobs
            .remove(&(base.to_string(), id.to_string()));
    }

    /// What is known of the job after the next poll (or `timeout`).
    pub(crate) fn wait(&self, base: &str, id: &str, timeout: Duration) -> Seen {
        let st = lock(&self.state);
        let (st, _) = self
            .cv
            .wait_timeout(st, timeout)
            .unwrap_or_else(PoisonError::into_inner);
        st.jobs
            .get(&(base.to_string(), id.to_string()))
            .map_or(Seen::Gone, |(s, _)| s.clone())
    }

    fn run(&self, interval: Duration) {
        // The length of each cluster's last list.
        let mut lengths: HashMap<String, Option<usize>> = HashMap::new();
        loop {
            let asked: Vec<Key> = {
                let mut st = lock(&self.state);
                while st.jobs.is_empty() {
                    st = self.cv.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
                st.jobs.keys().cloned().collect()
            };
            let mut by_base: HashMap<&str, Vec<&str>> = HashMap::new();
            for (b, id) in &asked {
                by_base.entry(b.as_str()).or_default().push(id.as_str());
            }
            let lists: HashMap<&str, Result<HashMap<String, JobInfo>, String>> = by_base
                .into_iter()
                .map(|(base, ids)| {
                    let last = lengths.entry(base.to_string()).or_default();
                    (base, ask(base, &ids, last))
                })
                .collect();
            let asked: HashSet<&Key> = asked.iter().collect();
            {
                let mut st = lock(&self.state);
                for (key, entry) in st.jobs.iter_mut() {
                    if !asked.contains(key) {
                        // Watched after the list was asked for.
                        continue;
                    }
                    match lists.get(key.0.as_str()) {
                        Some(Ok(list)) => match list.get(&key.1) {
                            Some(info) => *entry = (Seen::Known(info.clone()), 0),
                            None => {
                                entry.1 += 1;
                                if entry.1 >= 2 {
                                    entry.0 = Seen::Gone;
                                }
                            }
                        },
                        Some(Err(error)) => {
                            let since = match &entry.0 {
                                Seen::Unreachable { since, .. } => *since,
                                _ => Instant::now(),
                            };
                            entry.0 = Seen::Unreachable {
                                since,
                                error: error.clone(),
                            };
                        }
                        None => {}
                    }
                }
            }
            self.cv.notify_all();
            std::thread::sleep(interval);
        }
    }
}
