//! Content hashing of files, directories and globs, with a stat cache.
//!
//! * A file's digest is blake3 of its bytes. Files of 1 MiB or more are
//!   streamed in 4 MiB chunks, each hashed on the rayon pool while the next
//!   is read, so hashing a gigabyte takes 8 MiB of memory (a whole-file mmap
//!   counted the file in the resident set); smaller files are read into a
//!   buffer.
//! * A directory's digest is blake3 over a canonical manifest of the regular
//!   files below it (see [`manifest_digest`]): relative '/'-separated path,
//!   executable bit and file digest, sorted by path. Empty directories,
//!   sockets, FIFOs and devices do not count, and the workspace's `.mlp/`
//!   directory is never part of a digest. Paths are relative, so the same
//!   tree at two absolute locations has the same digest.
//! * Symlinks are followed if they resolve to somewhere inside the workspace
//!   (a link to an ancestor directory is an error: a cycle). A link that
//!   points outside the workspace, or dangles, is not followed: its digest is
//!   blake3 of the link's target text, so re-pointing it changes the digest
//!   but changes to the outside target do not.
//! * The [`StatCache`] maps a workspace-relative path to the file's
//!   (size, mtime, ctime, inode) and digest; a file whose stat is unchanged is
//!   not read again. To avoid "racily clean" entries (a file modified again
//!   within the timestamp granularity right after being hashed), a digest is
//!   only put in the cache if the file's mtime is more than 2 s older than the
//!   moment hashing started; otherwise the digest is returned but not cached.
//! * A stage's outputs are hashed [`Hasher::vouching`] for them: the digests a file's
//!   [`Stamp`] vouches for ([`stamp`](self::stamp)'s rule) go to the object cache with
//!   the outputs, which then copies them without reading them again.

mod content;
mod hasher;
mod stamp;
mod stat;
#[cfg(test)]
mod tests;
mod walk;

pub use self::content::{
    Content, MMAP_THRESHOLD, ManifestEntry, dir_content, hash_file, hex, manifest_digest, parse_hex,
};
pub use self::hasher::{Hasher, RACY_WINDOW};
pub use self::stamp::{SETTLE, SETTLE_MIN_SIZE, Stamp, Stamps, hash_file_stamped};
pub use self::stat::StatCache;
pub use self::walk::{MLP_DIR, normalize_rel};
pub(crate) use self::walk::{NodeKind, walk, with_path};
pub use crate::store::Digest;
