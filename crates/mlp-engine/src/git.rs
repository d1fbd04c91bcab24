//! The git state a run record keeps: the commit checked out and whether the work tree
//! differs from it. Found without spawning `git` where possible: outside a repository
//! nothing is spawned, and the commit is read from `.git/HEAD` (and the ref it names);
//! only the dirty check runs `git status`.

use std::fs;
use std::path::{Path, PathBuf};

/// `(commit, dirty)` of the repository holding `root` (`None` outside git).
pub(crate) fn state(root: &Path) -> Option<(String, bool)> {
    let git_dir = find_git_dir(root)?;
    let commit = head_commit(&git_dir)
        .or_else(|| run_git(root, &["rev-parse", "HEAD"]).map(|s| s.trim().to_string()))?;
    let dirty = run_git(root, &["status", "--porcelain", "--untracked-files=no"])
        .is_some_and(|s| !s.trim().is_empty());
    Some((commit, dirty))
}

fn run_git(root: &Path, args: &[&str]) -> Option<String> {
    std::process::Command::new("git")
        .args(args)
        .current_dir(root)
        .stderr(std::process::Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
}

/// The `.git` directory of the repository holding `root` (a `.git` file of a worktree or
/// submodule is followed through its `gitdir:` line).
fn find_git_dir(root: &Path) -> Option<PathBuf> {
    let start = fs::canonicalize(root).ok()?;
    for dir in start.ancestors() {
        let dot = dir.join(".git");
        match fs::metadata(&dot) {
            Ok(m) if m.is_dir() => return Some(dot),
            Ok(_) => {
                let text = fs::read_to_string(&dot).ok()?;
                let target = text.strip_prefix("gitdir:")?.trim();
                return Some(dir.join(target));
            }
            Err(_) => {}
        }
    }
    None
}

fn is_hash(s: &str) -> bool {
    s.len() >= 40 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The commit `HEAD` names, read from the files (`None`: let `git` say).
fn head_commit(git_dir: &Path) -> Option<String> {
    let head = fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let head = head.trim();
    let Some(name) = head.strip_prefix("ref:").map(str::trim) else {
        return is_hash(head).then(|| head.to_string());
    };
    // A linked worktree keeps its refs in the common directory.
    let common = fs::read_to_string(git_dir.join("commondir"))
        .map(|c| git_dir.join(c.trim()))
        .unwrap_or_else(|_| git_dir.to_path_buf());
    for dir in [git_dir, common.as_path()] {
        if let Ok(v) = fs::read_to_string(dir.join(name)) {
            let v = v.trim();
            return is_hash(v).then(|| v.to_string());
        }
    }
    let packed = fs::read_to_string(common.join("packed-refs")).ok()?;
    packed.lines().find_map(|l| {
        let (hash, r) = l.split_once(' ')?;
        (r == name && is_hash(hash)).then(|| hash.to_string())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_commit_is_the_one_git_names() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let Some((commit, _)) = super::state(root) else {
            return; // not built from a git checkout
        };
        let by_git = super::run_git(root, &["rev-parse", "HEAD"]);
        if let Some(g) = by_git {
            assert_eq!(commit, g.trim());
        }
    }

    #[test]
    fn outside_git_there_is_no_state() {
        let dir = tempfile::tempdir().unwrap();
        if super::find_git_dir(dir.path()).is_none() {
            assert_eq!(super::state(dir.path()), None);
        }
    }
}
