//! Putting a file's bytes at a new path without passing them through user memory: a
//! reflink (`FICLONE`, through the `reflink-copy` crate) where the filesystem shares
//! extents (XFS, btrfs), else a kernel-side copy (`std::io::copy` between two files is
//! `copy_file_range` on Linux, which ext4 serves in the kernel), or a hard link in link
//! mode. The source is stat'ed through its open descriptor before and after, so that a
//! source changed during the copy is noticed.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::hash::Stamp;

/// How a file got to its new path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placed {
    /// Shares the source's extents (copy on write).
    Reflink,
    /// A kernel-side copy of the bytes.
    Copy,
    /// A second name for the same inode.
    Link,
}

/// Copies (reflink, else kernel copy) `src` to `dst`, which must not exist; `dst` gets
/// mode 0o644 (the caller sets the final mode). Returns how, and `src`'s stamp if it
/// stayed the same (by its stat) throughout and `dst` got all of it.
pub(super) fn clone_or_copy(src: &Path, dst: &Path) -> io::Result<(Placed, Option<Stamp>)> {
    let mut from = fs::File::open(src)?;
    let before = Stamp::of(&from.metadata()?);
    let mut to = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(dst)?;
    let placed = if reflink_copy::reflink_file(&from, &to).is_ok() {
        Placed::Reflink
    } else {
        // A failed FICLONE writes nothing. Truncating the new, empty file anyway would
        // make ext4 (`auto_da_alloc`) flush all of it when it is closed: 0.5 s a GiB.
        if to.metadata()?.len() != 0 {
            to.set_len(0)?;
        }
        io::copy(&mut from, &mut to)?;
        Placed::Copy
    };
    let after = Stamp::of(&from.metadata()?);
    let whole = before == after && after.size == to.metadata()?.len();
    Ok((placed, whole.then_some(before)))
}

/// Whether a hard link to `src` may stand for a copy in link mode: a plain regular file,
/// not executable (the object's mode is the verified mark, 0o444), with no other name
/// (making it read-only would change those too).
pub(super) fn linkable(meta: &fs::Metadata) -> bool {
    meta.is_file() && meta.mode() & 0o111 == 0 && meta.nlink() == 1
}
