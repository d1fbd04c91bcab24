//! [`StageState`]: everything a run knows about one stage, in one place.

use crate::events::Status;
use crate::identity::StageKey;
use crate::snapshot::Watch;
use crate::store::StageRecord;

/// One stage in one run (or one `mlp status` pass).
#[derive(Clone, Debug, Default)]
pub struct StageState {
    /// Part of this run (a target, or what one needs).
    pub selected: bool,
    /// `--force`.
    pub force: bool,
    /// How it ended; `None` while it is undecided, queued or running.
    pub status: Option<Status>,
    /// What it is up to date with, for the next snapshot.
    pub watch: Option<Watch>,
    /// Fresh by the last snapshot: the next snapshot carries over what it watched there
    /// (read from the old snapshot then, not copied into `watch`: at 100,000 stages the
    /// copies were 45 MB).
    pub carried: bool,
    /// When its work started and ended (ms since the epoch; 0: not yet).
    pub started_ms: u64,
    pub ended_ms: u64,
    /// The key it runs with (between the decision and its record). Boxed, as `record`:
    /// most of 100,000 stages have neither, and inline they were half a kilobyte each.
    pub key: Option<Box<StageKey>>,
    /// The record it got in this run (ran, restored, failed).
    pub record: Option<Box<StageRecord>>,
    /// Why it ended as it did, beyond its status (e.g. a gate with no baseline).
    pub notes: Vec<String>,
}

impl StageState {
    /// A state for each stage: `selected` and `force` from the run's options.
    pub fn all(selected: &[bool], force: impl Fn(usize) -> bool) -> Vec<StageState> {
        selected
            .iter()
            .enumerate()
            .map(|(i, &selected)| StageState {
                selected,
                force: force(i),
                ..StageState::default()
            })
            .collect()
    }

    /// In a dry run (or `mlp status`): the record of a stage whose outputs would come back
    /// from the cache. It says with which bytes, so what is below can be decided as the
    /// run would decide it after the restore (early cutoff included).
    pub fn would_restore(&self) -> Option<&StageRecord> {
        match (&self.status, &self.record) {
            (Some(Status::WouldRun { .. }), Some(r)) => Some(&**r),
            _ => None,
        }
    }
}
