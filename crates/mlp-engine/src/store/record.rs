//! What the store holds: stage records, their outputs and outcomes, stat entries.

use serde::{Deserialize, Serialize};

/// A blake3 digest.
pub type Digest = [u8; 32];

/// A record's identity key, as JSON text: kept as it was written and parsed only when
/// asked (`mlp explain`, a stale stage's reason). Reading a record used to build a JSON
/// tree of it, which was most of the cost of reading records (the run record of a large
/// pipeline reads one per stage).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(transparent)]
pub struct KeyJson(Box<serde_json::value::RawValue>);

impl KeyJson {
    /// `null`: no key (a stage that failed before it could run).
    pub fn null() -> KeyJson {
        KeyJson::of(&serde_json::Value::Null)
    }

    pub fn of<T: Serialize>(v: &T) -> KeyJson {
        match serde_json::value::to_raw_value(v) {
            Ok(raw) => KeyJson(raw),
            // Keys are maps of strings: they always serialize.
            Err(_) => KeyJson(
                serde_json::value::RawValue::from_string("null".into())
                    .unwrap_or_else(|_| unreachable!("`null` is JSON")),
            ),
        }
    }

    /// The key read as `T` (`None`: written by another version of mlp, or no key).
    pub fn parse<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_str(self.0.get()).ok()
    }

    /// The JSON text.
    pub fn text(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for KeyJson {
    fn eq(&self, other: &KeyJson) -> bool {
        self.0.get() == other.0.get()
    }
}

/// One output of a stage as it was recorded after the stage ran.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct OutputRecord {
    /// Workspace-relative, '/'-separated path.
    pub path: String,
    /// Hex blake3 digest of the file, or of the directory manifest.
    pub digest: String,
    /// Size in bytes (total size of the files for a directory).
    pub size: u64,
    /// Whether the output is a directory.
    pub is_dir: bool,
}

/// How a stage run ended.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    /// The command exited 0 and its outputs were recorded.
    Succeeded,
    /// The command exited non-zero or was killed by a signal.
    Failed {
        /// Exit code, if it exited.
        code: Option<i32>,
        /// Signal number, if it was killed by one.
        signal: Option<i32>,
    },
    /// The command exceeded its time limit.
    TimedOut,
    /// The run was interrupted (Ctrl-C / SIGTERM).
    Interrupted,
    /// The command succeeded but a post-run check (e.g. a missing output) failed.
    CheckFailed {
        /// What went wrong.
        message: String,
    },
}

/// Everything recorded about one run of one stage.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct StageRecord {
    /// Stage name.
    pub stage: String,
    /// Hex digest of the stage's identity key.
    pub identity: String,
    /// The canonical identity key itself (so `mlp explain` can diff its parts).
    pub key: KeyJson,
    /// The recorded outputs.
    pub outputs: Vec<OutputRecord>,
    /// How the run ended.
    pub outcome: Outcome,
    /// Id of the `mlp run` this stage ran in.
    pub run_id: String,
    /// Start time, unix epoch milliseconds.
    pub started_ms: u64,
    /// End time, unix epoch milliseconds.
    pub ended_ms: u64,
    /// Number of attempts (retries + 1).
    pub attempts: u32,
    /// User + system CPU time of the command, milliseconds.
    pub cpu_ms: u64,
    /// Peak resident set size of the command, KiB.
    pub max_rss_kb: u64,
    /// Metrics reported by the stage (`Null` when none).
    /// Metrics files read after success: `{name: parsed content}`.
    #[serde(default)]
    pub metrics: serde_json::Value,
    /// The `fallback` command produced the outputs: a degraded result, not recorded as
    /// the stage's success (the next run tries the command again).
    #[serde(default)]
    pub fallback_used: bool,
    /// Digest of the checks and gates the record was judged under (empty: none).
    #[serde(default)]
    pub checks: String,
    /// Why it failed, as the run said it (empty on success).
    #[serde(default)]
    pub reason: String,
}

/// One stat-cache entry: a file's stat fingerprint and its content digest.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct StatEntry {
    /// File size in bytes.
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i128,
    /// Status-change time, nanoseconds since the epoch.
    pub ctime_ns: i128,
    /// Inode number.
    pub ino: u64,
    /// blake3 of the file's bytes.
    pub digest: Digest,
}

/// A record of a command that ran at least this long (milliseconds) is flushed to
/// disk before [`Store::put_record`] returns.
pub const DURABLE_AFTER_MS: u64 = 1000;

/// Whether [`Store::put_record`] makes a record durable at once. A flush waits for
/// the disk (0.2–0.5 ms per record on the benchmark machine, `bench/RESULTS.md`), on
/// the coordinator's critical path: in a chain of one-line stages that was a tenth
/// of each stage's time. So only the record of a command that ran for a second or
/// more (redoing it would cost more than the flush) is flushed at once. The others
/// reach the disk with the next flush: the run's own at its end, or sled's
/// background flush every 500 ms. A crash can then lose the records of cheap
/// stages that finished in the last half second; they run again (or are
/// restored) next time, which is what a missing record means. Restores
/// (`attempts == 0`) and failures are never worth a flush.
pub fn worth_flushing(rec: &StageRecord) -> bool {
    rec.attempts > 0
        && cacheable(&rec.outcome)
        && rec.ended_ms.saturating_sub(rec.started_ms) >= DURABLE_AFTER_MS
}

/// A record's outputs are worth keeping in the run-cache: the command succeeded (a failed
/// check or gate judges the outputs, it does not make them wrong).
pub(super) fn cacheable(o: &Outcome) -> bool {
    matches!(o, Outcome::Succeeded | Outcome::CheckFailed { .. })
}
