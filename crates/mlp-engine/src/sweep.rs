//! After a crash: what an interrupted run left beside the outputs is swept by the next one.
//!
//! A restore from the object cache writes the new content beside the output
//! (`.NAME.mlp-tmp-*`) and, for a directory, moves the old one aside (`.NAME.mlp-old-*`)
//! before renaming; a kill -9 between those steps leaves the stray behind. [`stray_of`]
//! recognises exactly those names (`tests/it/crash.rs` kills restores and checks that none
//! is left). Objects being written to `.mlp/cache/tmp/` are left the same way.
//!
//! A run writes `.mlp/running` when it starts (holding the workspace lock) and removes it
//! when it ends without an error. Finding it at the start means the last run did not
//! finish: the strays of every declared output and the cache's `tmp/` are removed then,
//! and only then (a sweep reads one directory per output parent: not for every run).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use mlp_plan::Pipeline;

use crate::hash::with_path;
use crate::workspace::Workspace;

/// The tags of what a restore writes beside an output `NAME` (`cache/mod.rs`): the new
/// content at `.NAME.mlp-tmp-UNIQUE`, the old directory moved aside at `.NAME.mlp-old-UNIQUE`.
const TAGS: [&str; 2] = [".mlp-tmp-", ".mlp-old-"];

/// The output name a file called `candidate` is a leftover of, if it is one.
fn stray_of(candidate: &str) -> Option<&str> {
    let rest = candidate.strip_prefix('.')?;
    TAGS.iter()
        .filter_map(|t| rest.rfind(t))
        .max()
        .map(|at| &rest[..at])
        .filter(|name| !name.is_empty())
}

/// Removes a file, symlink or directory tree.
fn remove_any(p: &Path) -> io::Result<()> {
    match fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(p),
        Ok(_) => fs::remove_file(p),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// The marker of a run in progress, inside `.mlp/`.
pub const RUNNING: &str = "running";

/// A run that has started and not yet finished cleanly; [`Unfinished::finish`] removes
/// the marker. Dropping it without `finish` (an error, a panic, a kill) leaves it.
#[derive(Debug)]
pub(crate) struct Unfinished {
    marker: PathBuf,
}

impl Unfinished {
    /// Marks a run as started, first sweeping what the last one left if it did not
    /// finish. Call with the workspace lock held. Returns the marker and how many strays
    /// were removed.
    pub(crate) fn begin(ws: &Workspace, p: &Pipeline) -> io::Result<(Unfinished, usize)> {
        let marker = ws.dir.join(RUNNING);
        let swept = if marker.exists() { sweep(ws, p)? } else { 0 };
        // Empty: creating it needs no data block, so it works on a full disk too.
        fs::File::create(&marker).map_err(|e| with_path(e, &marker))?;
        Ok((Unfinished { marker }, swept))
    }

    /// The run ended without an error: the next one need not sweep.
    pub(crate) fn finish(self) -> io::Result<()> {
        match fs::remove_file(&self.marker) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(with_path(e, &self.marker)),
            _ => Ok(()),
        }
    }
}

/// Removes the strays of every declared output of `p` and everything in the object
/// cache's `tmp/`. Returns how many were removed.
pub(crate) fn sweep(ws: &Workspace, p: &Pipeline) -> io::Result<usize> {
    let mut by_parent: BTreeMap<PathBuf, BTreeSet<&str>> = BTreeMap::new();
    for o in p.stages.iter().flat_map(|s| &s.outputs) {
        let rel = Path::new(o.path.trim_end_matches('/'));
        let (Some(parent), Some(name)) = (rel.parent(), rel.file_name().and_then(|n| n.to_str()))
        else {
            continue;
        };
        by_parent
            .entry(ws.root.join(parent))
            .or_default()
            .insert(name);
    }
    let mut removed = 0;
    for (dir, names) in &by_parent {
        removed += remove_matching(dir, |n| stray_of(n).is_some_and(|o| names.contains(o)))?;
    }
    removed += remove_matching(&ws.cache_path().join("tmp"), |_| true)?;
    Ok(removed)
}

fn remove_matching(dir: &Path, stray: impl Fn(&str) -> bool) -> io::Result<usize> {
    let entries = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::NotFound | io::ErrorKind::NotADirectory
            ) =>
        {
            return Ok(0);
        }
        Err(e) => return Err(with_path(e, dir)),
    };
    let mut removed = 0;
    for entry in entries {
        let entry = entry.map_err(|e| with_path(e, dir))?;
        if entry.file_name().to_str().is_some_and(&stray) {
            let path = entry.path();
            remove_any(&path).map_err(|e| with_path(e, &path))?;
            removed += 1;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::stray_of;

    #[test]
    fn strays_name_their_output() {
        assert_eq!(stray_of(".model.bin.mlp-tmp-12.345.0"), Some("model.bin"));
        assert_eq!(stray_of(".data.mlp-old-12.345.1"), Some("data"));
        // A name that itself contains a tag: the last one counts.
        assert_eq!(stray_of(".a.mlp-tmp-b.mlp-tmp-1.2.3"), Some("a.mlp-tmp-b"));
        assert_eq!(stray_of(".x.mlp-tmp-y.mlp-old-1.2.3"), Some("x.mlp-tmp-y"));
        assert_eq!(stray_of("model.bin"), None);
        assert_eq!(stray_of(".model.bin"), None);
        assert_eq!(stray_of(".mlp-tmp-1"), None);
    }
}
