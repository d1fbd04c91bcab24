//! Whether the disk a stage wrote to is full: a command that fails on a full disk says so
//! in its own words, and often cannot even write them (its log is on the same disk), so a
//! failed stage gets a note when the workspace's filesystem has (almost) no room left.

use std::path::Path;

/// Below this many free bytes the disk counts as full.
const FULL_BELOW: u64 = 256 * 1024;

/// A note for a stage that failed in `dir`, when the filesystem holding it is full.
pub(crate) fn full_note(dir: &Path) -> Option<String> {
    let st = nix::sys::statvfs::statvfs(dir).ok()?;
    let free = st.blocks_available().saturating_mul(st.fragment_size());
    (free < FULL_BELOW).then(|| {
        format!(
            "the disk holding `{}` is full ({free} bytes free): No space left on device",
            dir.display()
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn no_note_without_an_answer() {
        // A path that cannot be asked about gives no note (tests/it/full_disk.rs fills one).
        let d = tempfile::tempdir().unwrap();
        assert_eq!(super::full_note(&d.path().join("missing")), None);
    }
}
