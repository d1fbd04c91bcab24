//! The verified mark: an object whose bytes were hashed and found to match its name is
//! made read-only and given the modification time [`MARK`]. A later restore that finds
//! the mark (and the size its record names) serves the object without reading it.
//!
//! Why this is enough: writing to the object changes its mtime (the kernel sets it on
//! every write), and a write needs the write bit, which is off, so the person or program
//! has to `chmod` first, and that leaves the mode changed unless they put it back. Only
//! a deliberate `chmod u+w`, write, `chmod a-w`, `touch -d @1` passes for marked, and
//! `mlp cache verify` (which reads every byte) finds that too. The change time (ctime)
//! is not part of the mark: link mode hard-links objects into the workspace, and every
//! link and unlink moves an object's ctime without touching its bytes.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The modification time of a verified object: 1970-01-01T00:00:01Z.
pub(super) const MARK_SECS: i64 = 1;

fn mark_time() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(MARK_SECS.unsigned_abs())
}

/// Whether `meta` (of an object) carries the mark and has `size` bytes.
pub(super) fn is_marked(meta: &fs::Metadata, size: Option<u64>) -> bool {
    meta.is_file()
        && meta.mode() & 0o222 == 0
        && meta.mtime() == MARK_SECS
        && meta.mtime_nsec() == 0
        && size.is_none_or(|s| s == meta.len())
}

/// Makes `path` read-only and sets the mark's modification time.
pub(super) fn set_mark(path: &Path) -> io::Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.mode() & 0o7777 != 0o444 {
        fs::set_permissions(path, fs::Permissions::from_mode(0o444))?;
    }
    // futimens with explicit times needs ownership, not write access: a read-only
    // descriptor is enough.
    fs::File::open(path)?.set_modified(mark_time())
}
