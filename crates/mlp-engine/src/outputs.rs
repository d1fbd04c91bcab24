//! A stage's outputs on disk: cleared before its command runs, hashed and cached after it
//! succeeded, compared with a record, restored from the object cache.

use std::io;
use std::path::Path;

use mlp_plan::Stage;

use crate::cache::ObjectCache;
use crate::events::FailureKind;
use crate::hash::{Content, Hasher, Stamps, StatCache, hex, parse_hex};
use crate::identity::StageKey;
use crate::snapshot::{self, Entry, Watch};
use crate::store::{OutputRecord, StageRecord};

/// Why a stage's outputs could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("cannot remove the old output `{path}` before running: {source}")]
    Clear { path: String, source: io::Error },
    #[error("cannot read output `{path}`: {source}")]
    Read { path: String, source: io::Error },
    #[error("cannot hash output `{path}`: {source}")]
    Hash { path: String, source: io::Error },
    #[error("the command succeeded but did not write its declared output `{0}`")]
    NotWritten(String),
    #[error("cannot cache output `{path}`: {source}")]
    Cache {
        path: String,
        source: crate::cache::CacheError,
    },
    /// A metrics file that cannot be read or parsed (the message says which).
    #[error(transparent)]
    Metrics(#[from] crate::metrics::MetricsError),
}

impl OutputError {
    pub fn kind(&self) -> FailureKind {
        match self {
            OutputError::Cache { .. } => FailureKind::Cache,
            _ => FailureKind::Command,
        }
    }
}

pub fn content_of(o: &OutputRecord) -> Content {
    let digest = parse_hex(&o.digest).unwrap_or([0; 32]);
    if o.digest == "missing" {
        Content::Missing
    } else if o.is_dir {
        Content::Dir {
            digest,
            files: 0,
            size: o.size,
        }
    } else {
        Content::File {
            digest,
            size: o.size,
        }
    }
}

fn record_of(path: &str, c: &Content) -> OutputRecord {
    OutputRecord {
        path: path.to_string(),
        digest: c.digest().map_or_else(|| "missing".to_string(), hex),
        size: c.size(),
        is_dir: c.is_dir(),
    }
}

/// Stat what a stage writes at `path` (before it is hashed).
pub fn watch(root: &Path, path: &str) -> Result<Vec<Entry>, OutputError> {
    snapshot::watch(root, path, false).map_err(|source| OutputError::Read {
        path: path.to_string(),
        source,
    })
}

/// Put the content digests the key saw on the watched files, so that a racily clean
/// entry can be verified by its bytes.
pub fn with_digests(mut entries: Vec<Entry>, key: &StageKey) -> Vec<Entry> {
    for e in &mut entries {
        if e.kind == snapshot::Kind::File
            && let Some(d) = key.inputs.get(&e.path)
        {
            e.digest = parse_hex(d);
        }
    }
    entries
}

/// A file output's digest on its snapshot entry (it was just written: racily clean).
pub fn set_digest(entries: &mut [Entry], path: &str, c: &Content) {
    if let (Some(e), Content::File { digest, .. }) = (entries.first_mut(), c)
        && e.path == path
        && e.kind == snapshot::Kind::File
    {
        e.digest = Some(*digest);
    }
}

/// The first declared output that is no longer what `last` recorded (`None`: all intact),
/// with the entries of those it looked at.
pub fn first_changed(
    hasher: &Hasher<'_>,
    s: &Stage,
    last: &StageRecord,
    entries: &mut Vec<Entry>,
) -> Result<Option<Changed>, OutputError> {
    let root = hasher.root().to_path_buf();
    for o in &s.outputs {
        let Some(rec) = last.outputs.iter().find(|r| r.path == o.path) else {
            return Ok(Some(Changed::Missing(o.path.clone())));
        };
        entries.extend(watch(&root, &o.path)?);
        let now = hasher.path(&o.path).map_err(|source| OutputError::Hash {
            path: o.path.clone(),
            source,
        })?;
        if now.digest().map(hex) != parse_hex(&rec.digest).map(|d| hex(&d)) {
            return Ok(Some(if now == Content::Missing {
                Changed::Missing(o.path.clone())
            } else {
                Changed::Edited(o.path.clone())
            }));
        }
    }
    Ok(None)
}

/// An output that is not what the stage's last success wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Changed {
    Missing(String),
    Edited(String),
}

impl std::fmt::Display for Changed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Changed::Missing(p) => write!(f, "output `{p}` is missing"),
            Changed::Edited(p) => write!(f, "output `{p}` was changed by hand"),
        }
    }
}

/// Files this big are restored over without being hashed first.
const BIG: u64 = 64 << 20;

/// Bring a record's outputs back from the object cache (`cache: None`, a dry run: only
/// look). `None` when an object is missing or corrupt (the stage then runs).
pub fn restore(
    hasher: &Hasher<'_>,
    cache: Option<&ObjectCache>,
    s: &Stage,
    rec: &StageRecord,
    entries: &mut Vec<Entry>,
) -> Result<Option<Watch>, OutputError> {
    let root = hasher.root().to_path_buf();
    let mut out_entries = Vec::new();
    for o in &s.outputs {
        let Some(r) = rec.outputs.iter().find(|r| r.path == o.path) else {
            return Ok(None);
        };
        let want = content_of(r);
        let dst = root.join(&o.path);
        // A big file in the way is replaced without hashing it first: reading it costs as
        // much as a copy and far more than a reflink or a link (the stat cache cannot
        // answer for a file written moments ago).
        let big = matches!(want, Content::File { .. })
            && std::fs::symlink_metadata(&dst).is_ok_and(|m| m.is_file() && m.len() >= BIG);
        let have = if big { None } else { hasher.path(&o.path).ok() };
        if have.as_ref().and_then(Content::digest) != want.digest() {
            let Some(cache) = cache else { continue };
            if cache.with_mode(s.cache).restore(&want, &dst).is_err() {
                return Ok(None);
            }
        }
        let mut es = watch(&root, &o.path)?;
        set_digest(&mut es, &o.path, &want);
        out_entries.extend(es);
    }
    let mut all = std::mem::take(entries);
    all.extend(out_entries);
    Ok(Some(Watch {
        entries: all,
        identity: parse_hex(&rec.identity).unwrap_or([0; 32]),
    }))
}

/// Remove a stage's declared outputs before its command runs, so that an output the
/// command no longer writes cannot pass for a new one (the old bytes are in the cache),
/// and a command never writes into a link-mode output (a hard link to an object). They
/// go to the cache's trash, deleted in the background.
pub fn clear(root: &Path, cache: &ObjectCache, outputs: &[String]) -> Result<(), OutputError> {
    for o in outputs {
        cache
            .discard(&root.join(o))
            .map_err(|source| OutputError::Clear {
                path: o.clone(),
                source,
            })?;
    }
    Ok(())
}

/// Every metrics file of a stage, parsed: `{name: content}`.
pub fn read_metrics(
    root: &Path,
    files: &[(String, String)],
) -> Result<serde_json::Value, OutputError> {
    let mut m = serde_json::Map::new();
    for (name, path) in files {
        m.insert(name.clone(), crate::metrics::read(root, path)?);
    }
    Ok(serde_json::Value::Object(m))
}

/// An output hashed after its stage succeeded: what its record says, what the snapshot
/// watches, and the content to cache.
pub struct Hashed {
    pub record: OutputRecord,
    pub entries: Vec<Entry>,
    pub content: Content,
}

/// After success: every declared output must exist; stat and hash each. The worker
/// reports this at once; the copies into the object cache ([`cache`]) come after, told
/// by `stamps` which digests they need not check by reading the files again.
pub fn hash(
    root: &Path,
    stat_cache: &StatCache,
    outputs: &[String],
    stamps: &Stamps,
) -> Result<Vec<Hashed>, OutputError> {
    let hasher = Hasher::new(root, stat_cache).vouching(stamps);
    let mut out = Vec::new();
    for o in outputs {
        let mut entries = watch(root, o)?;
        let content = hasher.path(o).map_err(|source| OutputError::Hash {
            path: o.clone(),
            source,
        })?;
        set_digest(&mut entries, o, &content);
        if content == Content::Missing {
            return Err(OutputError::NotWritten(o.clone()));
        }
        out.push(Hashed {
            record: record_of(o, &content),
            entries,
            content,
        });
    }
    Ok(out)
}

/// Copy hashed outputs into the object cache (a stage's record is written only after
/// this succeeded).
pub fn cache(
    root: &Path,
    cache: &ObjectCache,
    outputs: &[(String, Content)],
    known: &Stamps,
) -> Result<(), OutputError> {
    for (o, content) in outputs {
        cache
            .put(&root.join(o), content, known)
            .map_err(|source| OutputError::Cache {
                path: o.clone(),
                source,
            })?;
    }
    Ok(())
}
