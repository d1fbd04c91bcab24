//! The one decision: is a stage fresh, stale (and why), restorable from the run-cache, or
//! must it run? `mlp run`, `mlp run --dry-run`, `mlp status`, `mlp explain` and
//! `mlp watch` all ask here (as ninja's `RecomputeDirty` is the only place that decides
//! dirtiness).
//!
//! The order of the questions: upstream failures and skips, the `when`, (in a dry run)
//! an upstream that would run, the snapshot (nothing it watched was touched), then the
//! identity: hash the inputs, compare with the last success, judge again if the checks
//! changed, restore changed outputs, look in the run-cache, else run.
//!
//! `frozen` wins over everything but `--force`: once a frozen stage has succeeded, a new
//! identity, an expired `every` or an upstream that reruns do not make it stale; only
//! outputs that changed on disk are restored from its last success.

use std::collections::HashMap;
use std::path::Path;

use mlp_plan::{DepKind, InputKind, Pipeline, Stage, StageId};
use rayon::prelude::*;

use crate::cache::ObjectCache;
use crate::events::{FailureKind, Status, human_ms};
use crate::hash::{Digest, Hasher, StatCache, hex, parse_hex};
use crate::identity::{self, StageKey};
use crate::judge::{Baseline, Judge, When, checks_digest};
use crate::outputs::{self, Changed, OutputError};
use crate::remote::RemoteCache;
use crate::snapshot::{Entry, Snapshot, StageSnap, Watch};
use crate::state::StageState;
use crate::store::{Outcome, StageRecord, Store, StoreError};
use crate::workspace::now_ms;

/// What to do with a stage whose upstream is done.
#[derive(Debug)]
pub enum Decision {
    /// Up to date (`watch: None`: the snapshot proved it, carry its entry over).
    Fresh {
        watch: Option<Watch>,
    },
    /// Its outputs come back from the cache (or, unchanged, are judged again).
    Restore {
        record: StageRecord,
        watch: Watch,
        why: Why,
    },
    Run {
        key: StageKey,
        why: Why,
        watch: Watch,
    },
    Skip(Skip),
    Fail(DecideError),
}

/// Why a stage is stale. `mlp status` and `mlp run --dry-run` word it differently.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    Forced,
    Always,
    /// A failure handler runs whenever it is triggered.
    Handler,
    /// `every` has passed since its last success.
    Expired(u64),
    NeverRun,
    /// The first difference between the recorded key and the key now.
    Changed(String),
    /// The key is the same, but the outputs are not what it wrote (`None`: not known which).
    Outputs(Option<Changed>),
    /// An upstream stage would run (`--dry-run`, `mlp status`).
    Upstream(String),
    /// Its checks or gates changed, or failed last time: its outputs are judged again.
    Judge,
}

impl Why {
    /// As `mlp run --dry-run` says it.
    pub fn run_text(&self) -> String {
        match self {
            Why::Forced => "forced".into(),
            Why::Always => "`always`".into(),
            Why::Handler => "a failure handler runs whenever it is triggered".into(),
            Why::Expired(ms) => format!(
                "`every {}` has passed since its last success",
                human_ms(*ms)
            ),
            Why::NeverRun => "never run".into(),
            Why::Changed(d) => d.clone(),
            Why::Outputs(_) | Why::Judge => "outputs changed or missing".into(),
            Why::Upstream(s) => format!("upstream `{s}` would run"),
        }
    }

    /// As `mlp status` says it.
    pub fn status_text(&self) -> String {
        match self {
            Why::Always => "`always`: it runs every time".into(),
            Why::Expired(ms) => format!("`every {}` has expired", human_ms(*ms)),
            Why::Outputs(Some(c)) => c.to_string(),
            Why::Outputs(None) => "its identity changed".into(),
            Why::Upstream(s) => format!("upstream `{s}` is not up to date"),
            Why::Judge => "its checks or gates changed: its outputs are judged again".into(),
            other => other.run_text(),
        }
    }
}

/// What `--dry-run` says of a stage whose outputs would be restored or judged.
pub const WOULD_RESTORE: &str = "its outputs would come back from the cache (and be judged)";

/// Why a stage is skipped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Skip {
    /// Its `when` is false or cannot be decided (the text says which).
    When(String),
    /// An upstream stage was skipped, did not run, was interrupted or failed.
    Upstream { stage: String, how: &'static str },
    /// `mlp pull`: neither cache has the stage's identity (it would have to run).
    NotOnRemote,
}

impl std::fmt::Display for Skip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Skip::When(t) => f.write_str(t),
            Skip::Upstream { stage, how } => write!(f, "upstream `{stage}` {how}"),
            Skip::NotOnRemote => f.write_str("not in the remote run-cache; `mlp run` runs it"),
        }
    }
}

/// Why a stage cannot even be decided (it fails without running).
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("cannot read input `{path}`: {source}")]
    ReadInput {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot hash the inputs of `{stage}`: {source}")]
    HashInputs {
        stage: String,
        source: std::io::Error,
    },
    #[error("input `{0}` does not exist, and no stage declares it as an output")]
    MissingInput(String),
    #[error(
        "stage `{0}` is frozen, but its outputs changed and the cache no longer has them; remove `frozen` to rebuild them"
    )]
    FrozenGone(String),
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The remote run-cache could not answer (the text names the remote and the object).
    #[error("{0}")]
    Remote(String),
    #[error(transparent)]
    Output(#[from] OutputError),
}

impl DecideError {
    pub fn kind(&self) -> FailureKind {
        match self {
            DecideError::ReadInput { .. }
            | DecideError::HashInputs { .. }
            | DecideError::MissingInput(_) => FailureKind::MissingInput,
            DecideError::FrozenGone(_) | DecideError::Store(_) | DecideError::Remote(_) => {
                FailureKind::Cache
            }
            DecideError::Output(e) => e.kind(),
        }
    }
}

/// When a stage's `every` makes it stale again, after a success at `succeeded_ms` (`None`:
/// never; a `frozen` stage never reruns, whatever its `every` says).
pub fn every_due(s: &Stage, succeeded_ms: u64) -> Option<u64> {
    if s.frozen {
        return None;
    }
    s.every_ms.map(|every| succeeded_ms.saturating_add(every))
}

/// A failure handler: `when failed(x)`.
pub fn is_handler(p: &Pipeline, i: StageId) -> bool {
    p.stages[i].deps.iter().any(|d| d.kind == DepKind::Failed)
}

/// The shape of a stage's key (everything but input contents), for snapshot validity.
pub fn shape(stage: &Stage) -> Digest {
    let mut h = blake3::Hasher::new();
    let v = serde_json::json!({
        "format": identity::CACHE_FORMAT,
        "command": stage.command,
        "inputs": stage.inputs.iter().map(|i| (&i.path, i.kind == InputKind::Glob)).collect::<Vec<_>>(),
        "params": stage.params.iter().map(|(k, v)| (k, v.to_json())).collect::<Vec<_>>(),
        "env": stage.env,
        "outputs": stage.outputs.iter().map(|o| &o.path).collect::<Vec<_>>(),
        "every": stage.every_ms,
        "checks": checks_digest(stage),
        "always": stage.always,
    });
    h.update(v.to_string().as_bytes());
    *h.finalize().as_bytes()
}

/// The last snapshot, compared with the disk.
pub struct SnapView<'a> {
    pub snap: Option<&'a Snapshot>,
    fresh: HashMap<String, bool>,
    pub shapes: Vec<Digest>,
}

impl<'a> SnapView<'a> {
    pub fn new(p: &Pipeline, snap: Option<&'a Snapshot>, root: &Path) -> SnapView<'a> {
        SnapView {
            snap,
            fresh: snap
                .map(|s| s.check(root, now_ms()).fresh)
                .unwrap_or_default(),
            shapes: p.stages.par_iter().map(shape).collect(),
        }
    }

    /// The stage's entry in the last snapshot.
    pub fn stage(&self, name: &str) -> Option<&'a StageSnap> {
        self.snap.and_then(|s| s.stage(name))
    }

    /// Nothing the stage reads or writes was touched since the snapshot, its plan is the
    /// same, and (what the snapshot saw of an upstream output holds only if that stage did
    /// not just write it again) every selected upstream stage is fresh.
    pub fn proves_fresh(&self, p: &Pipeline, i: StageId, states: &[StageState]) -> bool {
        let s = &p.stages[i];
        !states[i].force
            && !s.always
            && !is_handler(p, i)
            && self.fresh.get(&s.name).copied().unwrap_or(false)
            && self
                .stage(&s.name)
                .is_some_and(|o| o.shape == self.shapes[i] && !o.skipped)
            && s.deps
                .iter()
                .all(|d| !states[d.stage].selected || states[d.stage].status == Some(Status::Fresh))
    }
}

/// Everything a decision reads.
pub struct Decider<'a> {
    pub root: &'a Path,
    pub p: &'a Pipeline,
    pub store: &'a dyn Store,
    pub stat_cache: &'a StatCache,
    /// Where restores come from; `None` (a dry run, `mlp status`): nothing is written.
    pub cache: Option<&'a ObjectCache>,
    pub snap: &'a SnapView<'a>,
    pub baseline: &'a Baseline,
    /// The run the restored records are written in.
    pub run_id: &'a str,
    /// `--dry-run` or `mlp status`: downstream of what would run would run too.
    pub dry_run: bool,
    /// `--pull`: asked on a local run-cache miss (never in a dry run).
    pub remote: Option<&'a dyn RemoteCache>,
    /// `mlp pull`: a stage that would run is skipped instead.
    pub pull_only: bool,
}

impl Decider<'_> {
    /// Decide a stage whose upstream stages have their status in `states`.
    pub fn decide(&self, i: StageId, states: &[StageState]) -> Decision {
        let s = &self.p.stages[i];
        // Upstream failures and skips.
        for d in &s.deps {
            let up = &states[d.stage];
            if !up.selected {
                continue;
            }
            let how = match &up.status {
                Some(st) if st.ok() => continue,
                Some(_) if d.kind == DepKind::Failed => continue,
                Some(Status::Skipped { .. }) => "was skipped",
                Some(Status::NotRun) | None => "did not run",
                Some(Status::Interrupted) => "was interrupted",
                Some(_) => "failed",
            };
            let stage = self.p.stages[d.stage].name.clone();
            return Decision::Skip(Skip::Upstream { stage, how });
        }
        // A handler (`when failed(x)`) with no failure to handle is skipped.
        let judge = Judge {
            p: self.p,
            states,
            store: self.store,
            baseline: self.baseline,
        };
        if let When::Skip(why) = judge.when(s) {
            return Decision::Skip(Skip::When(why));
        }
        // In a dry run, whatever is downstream of a stage that would run would run too
        // (but a frozen stage that has succeeded does not rerun).
        if self.dry_run
            && let Some(d) = s.deps.iter().find(|d| {
                matches!(states[d.stage].status, Some(Status::WouldRun { .. }))
                    && !self.restored_before(s, d.stage, states)
            })
            && !self.frozen_ok(s)
        {
            return Decision::Run {
                key: StageKey::empty(),
                why: Why::Upstream(self.p.stages[d.stage].name.clone()),
                watch: Watch::default(),
            };
        }
        if self.snap.proves_fresh(self.p, i, states) {
            return Decision::Fresh { watch: None };
        }
        self.evaluate(i, states).unwrap_or_else(Decision::Fail)
    }

    /// In a dry run: upstream stage `j` would only have its outputs restored, and every
    /// input `s` reads of it is one of those outputs, so `s` can be decided against the
    /// restored bytes (see [`Decider::key`]) instead of "upstream would run".
    fn restored_before(&self, s: &Stage, j: StageId, states: &[StageState]) -> bool {
        let Some(rec) = states[j].would_restore() else {
            return false;
        };
        s.inputs
            .iter()
            .filter(|inp| inp.producer == Some(j))
            .all(|inp| {
                inp.kind == InputKind::Path && rec.outputs.iter().any(|o| o.path == inp.path)
            })
    }

    fn frozen_ok(&self, s: &Stage) -> bool {
        s.frozen && self.store.last_success(&s.name).ok().flatten().is_some()
    }

    /// The stage's key now: its inputs hashed, and its `after` stages' identities (from
    /// this run when they ran in it, else from their last success).
    pub fn key(&self, i: StageId, states: &[StageState]) -> Result<StageKey, DecideError> {
        let s = &self.p.stages[i];
        let hasher = Hasher::new(self.root, self.stat_cache);
        let mut key = identity::key(s, &hasher).map_err(|source| DecideError::HashInputs {
            stage: s.name.clone(),
            source,
        })?;
        // A dry run: an input that an upstream stage's restore would bring back has the
        // bytes its record names, whatever is on disk now.
        for inp in &s.inputs {
            if let Some(rec) = inp.producer.and_then(|j| states[j].would_restore())
                && let Some(o) = rec.outputs.iter().find(|o| o.path == inp.path)
            {
                key.inputs.insert(
                    inp.path.clone(),
                    identity::content_text(&outputs::content_of(o)),
                );
            }
        }
        identity::add_after(&mut key, self.p, i, |j| match &states[j].record {
            Some(r) if r.outcome == Outcome::Succeeded => {
                Some((r.identity.clone(), r.run_id.clone()))
            }
            _ => self
                .store
                .last_success(&self.p.stages[j].name)
                .ok()
                .flatten()
                .map(|r| (r.identity, r.run_id)),
        });
        Ok(key)
    }

    /// Hash the inputs, compute the identity and compare with the store.
    fn evaluate(&self, i: StageId, states: &[StageState]) -> Result<Decision, DecideError> {
        let s = &self.p.stages[i];
        let force = states[i].force;
        let root = self.root;
        let hasher = Hasher::new(root, self.stat_cache);
        let mut entries = Vec::new();
        for inp in &s.inputs {
            let read = |source| DecideError::ReadInput {
                path: inp.path.clone(),
                source,
            };
            if inp.path.starts_with('/') || inp.path.starts_with("../") {
                entries.push(Entry::stat(Path::new("/"), &abs_of(root, &inp.path)).map_err(read)?);
                continue;
            }
            entries.extend(
                crate::snapshot::watch(root, &inp.path, inp.kind == InputKind::Glob)
                    .map_err(read)?,
            );
        }
        let key = self.key(i, states)?;
        let id = key.digest();
        let id_hex = hex(&id);
        let last = self.store.last_success(&s.name)?;
        let frozen_ok = s.frozen && last.is_some();
        // `every`: stale that long after the last success, whatever else holds.
        let expired = last
            .as_ref()
            .and_then(|l| every_due(s, l.ended_ms))
            .is_some_and(|due| now_ms() >= due);
        // An input that is not there and that no stage makes: a typo, or data not
        // fetched. Say so instead of hashing "missing" into the identity.
        for inp in &s.inputs {
            if inp.kind == InputKind::Path
                && inp.producer.is_none()
                && key.inputs.get(&inp.path).is_some_and(|c| c == "missing")
            {
                return Err(DecideError::MissingInput(inp.path.clone()));
            }
        }
        let handler = is_handler(self.p, i);
        let always = s.always || handler;
        // The latest verdict on this identity was a failed check or gate: judge again.
        let judged_failed = self.store.last(&s.name)?.is_some_and(|l| {
            l.identity == id_hex && matches!(l.outcome, Outcome::CheckFailed { .. })
        });
        let checks = checks_digest(s);
        let mut changed = None;
        if !force && !always && !expired {
            if let Some(last) = &last
                && (last.identity == id_hex || frozen_ok)
            {
                // Up to date if the outputs are still what it made.
                let mut out_entries = Vec::new();
                changed = outputs::first_changed(&hasher, s, last, &mut out_entries)?;
                if changed.is_none() {
                    entries.extend(out_entries);
                    if (judged_failed || last.checks != checks) && !s.checks.is_empty() {
                        // Its checks or gates changed (or failed last time): judge its
                        // outputs again without running it.
                        let mut record = self.restored_record(s, last);
                        record.key = key.to_json();
                        return Ok(Decision::Restore {
                            record,
                            watch: Watch {
                                entries: outputs::with_digests(entries, &key),
                                identity: id,
                            },
                            why: Why::Judge,
                        });
                    }
                    return Ok(Decision::Fresh {
                        watch: Some(Watch {
                            entries: outputs::with_digests(entries, &key),
                            identity: parse_hex(&last.identity).unwrap_or(id),
                        }),
                    });
                }
                if frozen_ok {
                    // A frozen stage never reruns: bring its outputs back.
                    if let Some(w) = outputs::restore(&hasher, self.cache, s, last, &mut entries)? {
                        return Ok(Decision::Restore {
                            record: self.restored_record(s, last),
                            watch: w,
                            why: Why::Outputs(changed),
                        });
                    }
                    return Err(DecideError::FrozenGone(s.name.clone()));
                }
            }
            // The run-cache: any earlier success with this identity, here, else on the
            // team remote (its objects come into the local cache, then the outputs are
            // restored from there as from a local entry).
            for on_remote in [false, true] {
                if !s.frozen
                    && let Some(rec) = self.run_cache_entry(&id_hex, on_remote)?
                    && let Some(mut w) =
                        outputs::restore(&hasher, self.cache, s, &rec, &mut entries)?
                {
                    w.identity = id;
                    let mut record = self.restored_record(s, &rec);
                    record.identity = id_hex;
                    record.key = key.to_json();
                    let why = why_changed(last.as_ref(), &key, changed);
                    return Ok(Decision::Restore {
                        record,
                        watch: w,
                        why,
                    });
                }
            }
        }
        if self.pull_only {
            return Ok(Decision::Skip(Skip::NotOnRemote));
        }
        let why = if force {
            Why::Forced
        } else if s.always {
            Why::Always
        } else if always {
            Why::Handler
        } else if expired {
            Why::Expired(s.every_ms.unwrap_or(0))
        } else {
            why_changed(last.as_ref(), &key, changed)
        };
        Ok(Decision::Run {
            watch: Watch {
                entries: outputs::with_digests(entries, &key),
                identity: id,
            },
            key,
            why,
        })
    }

    /// The run-cache's record of a success with identity `id_hex`: the local store's, or
    /// (`on_remote`) the team remote's, when the run has one.
    fn run_cache_entry(
        &self,
        id_hex: &str,
        on_remote: bool,
    ) -> Result<Option<StageRecord>, DecideError> {
        if !on_remote {
            return Ok(self.store.cached(id_hex)?);
        }
        match (self.remote, self.cache) {
            (Some(remote), Some(cache)) => remote.fetch(id_hex, cache).map_err(DecideError::Remote),
            _ => Ok(None),
        }
    }

    fn restored_record(&self, s: &Stage, from: &StageRecord) -> StageRecord {
        let t = now_ms();
        StageRecord {
            stage: s.name.clone(),
            run_id: self.run_id.to_string(),
            started_ms: t,
            ended_ms: t,
            attempts: 0,
            cpu_ms: 0,
            max_rss_kb: 0,
            checks: checks_digest(s),
            ..from.clone()
        }
    }
}

/// Why a stage with this key is not its last success.
fn why_changed(last: Option<&StageRecord>, key: &StageKey, changed: Option<Changed>) -> Why {
    let Some(l) = last else {
        return Why::NeverRun;
    };
    let old: Option<StageKey> = l.key.parse();
    match old.and_then(|o| identity::diff(&o, key).into_iter().next()) {
        Some(d) => Why::Changed(d),
        None => Why::Outputs(changed),
    }
}

fn abs_of(root: &Path, p: &str) -> String {
    if p.starts_with('/') {
        p.to_string()
    } else {
        std::fs::canonicalize(root.join(p)).map_or_else(
            |_| root.join(p).display().to_string(),
            |c| c.display().to_string(),
        )
    }
}

#[cfg(test)]
mod tests;
