//! A file version's [`Stamp`] (what its stat says about it), and digests known to belong
//! to one ([`Stamps`]), so that copying a just-hashed output into the object cache does
//! not read it a second time.
//!
//! A write changes a file's ctime, but to the kernel's coarse clock: a write in the same
//! clock tick as the stat leaves the stamp as it was. [`hash_file_stamped`] therefore
//! vouches for a digest only when hashing started more than [`SETTLE`] after the stamp's
//! ctime (every write carrying that ctime happened before the first byte was read; any
//! later write moves the ctime on) and the stamp is the same after the last byte. For a
//! big file still within `SETTLE` of its last write (a stage's fresh output), it waits
//! out the rest of `SETTLE` first: at most 20 ms against a second read of the file.
//! Filesystems with whole-second timestamps (nanoseconds always 0) are never vouched for.
//! Writes through a shared memory map that do not fault a page are not seen by any stat;
//! `mlp cache verify` re-hashes every object.

use std::collections::HashMap;
use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::content::hash_open;
use crate::store::Digest;

/// Longer than a tick of the kernel's coarse clock (1–10 ms), with margin.
pub const SETTLE: Duration = Duration::from_millis(20);

/// Files from this size on wait for [`SETTLE`] rather than go unvouched (below it a
/// second read costs less than the wait).
pub const SETTLE_MIN_SIZE: u64 = 16 << 20;

/// What identifies a file's content version without reading it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stamp {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    pub mtime: (i64, i64),
    pub ctime: (i64, i64),
}

impl Stamp {
    pub fn of(m: &fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// The same file with the same bytes, though its ctime moved (a new hard link
    /// changes the ctime, not the content).
    pub fn same_but_ctime(&self, other: &Stamp) -> bool {
        Stamp {
            ctime: other.ctime,
            ..*self
        } == *other
    }

    fn ctime_ns(&self) -> i128 {
        i128::from(self.ctime.0) * 1_000_000_000 + i128::from(self.ctime.1)
    }

    /// Whether the filesystem keeps sub-second times (whole seconds: never vouched for).
    fn fine(&self) -> bool {
        self.ctime.1 != 0 || self.mtime.1 != 0
    }
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i128::try_from(d.as_nanos()).unwrap_or(i128::MAX))
}

/// blake3 of the file at `path`, its size, and the stamp the digest is vouched for (see
/// the module's text; `None` when it cannot be).
pub fn hash_file_stamped(path: &Path) -> io::Result<(Digest, u64, Option<Stamp>)> {
    let mut file = fs::File::open(path)?;
    let before = Stamp::of(&file.metadata()?);
    let settled_at = before.ctime_ns() + SETTLE.as_nanos() as i128;
    let wait = settled_at - now_ns();
    if before.fine() && before.size >= SETTLE_MIN_SIZE && wait > 0 {
        std::thread::sleep(Duration::from_nanos(wait as u64 + 1));
    }
    let started = now_ns();
    let (digest, size) = hash_open(&mut file, before.size)?;
    let after = Stamp::of(&file.metadata()?);
    let vouched = before.fine() && started > settled_at && before == after && size == before.size;
    Ok((digest, size, vouched.then_some(before)))
}

/// Digests vouched for by a file version's [`Stamp`], by (device, inode): gathered while a
/// stage's outputs are hashed, handed to the object cache with them.
#[derive(Debug, Default)]
pub struct Stamps {
    known: Mutex<HashMap<(u64, u64), (Stamp, Digest)>>,
}

impl Stamps {
    pub fn insert(&self, stamp: Stamp, digest: Digest) {
        let mut known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known.insert((stamp.dev, stamp.ino), (stamp, digest));
    }

    /// The vouched digest of the file version `meta` describes, if any.
    pub fn get(&self, meta: &fs::Metadata) -> Option<(Stamp, Digest)> {
        let known = self.known.lock().unwrap_or_else(|p| p.into_inner());
        known
            .get(&(meta.dev(), meta.ino()))
            .filter(|(s, _)| *s == Stamp::of(meta))
            .copied()
    }

    pub fn is_empty(&self) -> bool {
        self.known
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty()
    }
}
