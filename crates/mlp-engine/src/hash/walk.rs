//! Listing the files below a directory (the rules are in the `hash` module docs), shared
//! with the object cache; normalising workspace-relative paths.

use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Name of the workspace state directory, never part of a directory digest.
pub const MLP_DIR: &str = ".mlp";

/// What a walk found.
pub(crate) enum NodeKind {
    /// A regular file (possibly reached through an in-workspace symlink).
    File { meta: fs::Metadata },
    /// A symlink to outside the workspace (or dangling), with its target text.
    Link { target: Vec<u8> },
}

/// One file found by [`walk`].
pub(crate) struct Node {
    /// Path relative to the walked directory, '/'-separated.
    pub rel: String,
    /// Absolute (or root-joined) path to read.
    pub abs: PathBuf,
    pub kind: NodeKind,
}

pub(super) fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

pub(super) enum Resolved {
    Inside(PathBuf),
    Outside,
}

pub(super) fn resolve_link(abs: &Path, boundary: &Path) -> Resolved {
    match fs::canonicalize(abs) {
        Ok(c) if c.starts_with(boundary) => Resolved::Inside(c),
        _ => Resolved::Outside,
    }
}

/// Lists the files below `dir` (see the module docs for the rules), sorted
/// by relative path. `boundary` is the canonical workspace root: symlinks are
/// followed only if they resolve inside it, and `<boundary>/.mlp` is skipped.
pub(crate) fn walk(dir: &Path, boundary: &Path) -> io::Result<Vec<Node>> {
    let canon = fs::canonicalize(dir)?;
    let exclude = boundary.join(MLP_DIR);
    let mut out = Vec::new();
    let mut ancestors = vec![canon.clone()];
    walk_into(
        dir,
        &canon,
        "",
        boundary,
        &exclude,
        &mut ancestors,
        &mut out,
    )?;
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(out)
}

fn walk_into(
    dir: &Path,
    canon_dir: &Path,
    prefix: &str,
    boundary: &Path,
    exclude: &Path,
    ancestors: &mut Vec<PathBuf>,
    out: &mut Vec<Node>,
) -> io::Result<()> {
    let rd = fs::read_dir(dir).map_err(|e| with_path(e, dir))?;
    for entry in rd {
        let entry = entry.map_err(|e| with_path(e, dir))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "file name {:?} in {} is not valid UTF-8",
                    entry.file_name(),
                    dir.display()
                ),
            ));
        };
        let abs = dir.join(name);
        let rel = if prefix.is_empty() {
            name.to_string()
        } else {
            format!("{prefix}/{name}")
        };
        let ft = entry.file_type().map_err(|e| with_path(e, &abs))?;
        if ft.is_symlink() {
            match resolve_link(&abs, boundary) {
                Resolved::Outside => {
                    let target = fs::read_link(&abs).map_err(|e| with_path(e, &abs))?;
                    out.push(Node {
                        rel,
                        abs,
                        kind: NodeKind::Link {
                            target: target.as_os_str().as_bytes().to_vec(),
                        },
                    });
                }
                Resolved::Inside(target) => {
                    if target.starts_with(exclude) {
                        continue;
                    }
                    let meta = fs::metadata(&abs).map_err(|e| with_path(e, &abs))?;
                    if meta.is_dir() {
                        if ancestors.iter().any(|a| a == &target) {
                            return Err(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!(
                                    "symlink cycle: {} points to its own ancestor {}",
                                    abs.display(),
                                    target.display()
                                ),
                            ));
                        }
                        ancestors.push(target.clone());
                        walk_into(&abs, &target, &rel, boundary, exclude, ancestors, out)?;
                        ancestors.pop();
                    } else if meta.is_file() {
                        out.push(Node {
                            rel,
                            abs,
                            kind: NodeKind::File { meta },
                        });
                    }
                }
            }
        } else if ft.is_dir() {
            let canon = canon_dir.join(name);
            if canon == exclude {
                continue;
            }
            ancestors.push(canon.clone());
            walk_into(&abs, &canon, &rel, boundary, exclude, ancestors, out)?;
            ancestors.pop();
        } else if ft.is_file() {
            let meta = entry.metadata().map_err(|e| with_path(e, &abs))?;
            out.push(Node {
                rel,
                abs,
                kind: NodeKind::File { meta },
            });
        }
        // Sockets, FIFOs and devices are not content.
    }
    Ok(())
}

/// Adds the path to an I/O error's message.
pub(crate) fn with_path(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {e}", path.display()))
}

/// Normalises a workspace-relative path: drops `.` and empty components;
/// rejects absolute paths and `..`. The root itself is `""`.
pub fn normalize_rel(rel: &str) -> io::Result<String> {
    if rel.starts_with('/') {
        return Err(invalid(format!(
            "{rel:?} is absolute; paths must be relative to the workspace"
        )));
    }
    let mut parts = Vec::new();
    for p in rel.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                return Err(invalid(format!(
                    "{rel:?} contains '..'; paths must stay inside the workspace"
                )));
            }
            p => parts.push(p),
        }
    }
    Ok(parts.join("/"))
}
