//! Storing and restoring files and directories, and what a corrupt, tampered or changed
//! object does.

use super::*;
use crate::hash::{Hasher, StatCache};

struct Ws {
    _dir: tempfile::TempDir,
    root: PathBuf,
    cache: ObjectCache,
}

fn ws() -> Ws {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let cache = ObjectCache::open(&root.join(".mlp/cache")).unwrap();
    assert_eq!(cache.workspace.as_deref(), Some(root.as_path()));
    Ws {
        _dir: dir,
        root,
        cache,
    }
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, data).unwrap();
}

fn content(root: &Path, rel: &str) -> Content {
    let sc = StatCache::default();
    Hasher::new(root, &sc).path(rel).unwrap()
}

fn mode(p: &Path) -> u32 {
    fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn file_round_trip() {
    let w = ws();
    let data: Vec<u8> = (0..(2 << 20)).map(|i: u32| (i % 253) as u8).collect();
    write(&w.root, "out/model.bin", &data);
    let c = content(&w.root, "out/model.bin");
    assert!(!w.cache.contains(&c));
    w.cache
        .put(&w.root.join("out/model.bin"), &c, &Stamps::default())
        .unwrap();
    assert!(w.cache.contains(&c));
    let blob = w.cache.blob_path(c.digest().unwrap());
    assert_eq!(mode(&blob), 0o444);
    // Putting again is a no-op.
    w.cache
        .put(&w.root.join("out/model.bin"), &c, &Stamps::default())
        .unwrap();

    fs::remove_dir_all(w.root.join("out")).unwrap();
    w.cache.restore(&c, &w.root.join("out/model.bin")).unwrap();
    assert_eq!(fs::read(w.root.join("out/model.bin")).unwrap(), data);
    assert_eq!(mode(&w.root.join("out/model.bin")), 0o644);
    // Restoring over an existing (different) file replaces it.
    write(&w.root, "out/model.bin", b"junk");
    w.cache.restore(&c, &w.root.join("out/model.bin")).unwrap();
    assert_eq!(fs::read(w.root.join("out/model.bin")).unwrap(), data);
    // No temp files are left behind.
    let names: Vec<_> = fs::read_dir(w.root.join("out")).unwrap().collect();
    assert_eq!(names.len(), 1);
    assert_eq!(fs::read_dir(w.cache.root().join("tmp")).unwrap().count(), 0);

    let objs = w.cache.objects().unwrap();
    assert_eq!(objs, vec![(*c.digest().unwrap(), data.len() as u64)]);
    w.cache.remove(c.digest().unwrap()).unwrap();
    assert!(!w.cache.contains(&c));
    assert!(w.cache.objects().unwrap().is_empty());
    assert!(matches!(
        w.cache.restore(&c, &w.root.join("out/model.bin")),
        Err(CacheError::Missing { .. })
    ));
}

#[test]
fn tampered_object_is_corrupt_and_deleted() {
    let w = ws();
    write(&w.root, "a.txt", b"precious");
    let c = content(&w.root, "a.txt");
    w.cache
        .put(&w.root.join("a.txt"), &c, &Stamps::default())
        .unwrap();
    let blob = w.cache.blob_path(c.digest().unwrap());
    fs::set_permissions(&blob, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&blob, b"tampered").unwrap();
    let dst = w.root.join("restored.txt");
    match w.cache.restore(&c, &dst) {
        Err(e @ CacheError::Corrupt { .. }) => {
            assert!(e.to_string().contains("re-run"), "{e}");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert!(!blob.exists());
    assert!(!dst.exists());
    assert!(!w.cache.contains(&c));
    assert_eq!(fs::read_dir(&w.root).unwrap().count(), 2); // a.txt, .mlp
}

#[test]
fn changed_source_is_not_stored() {
    let w = ws();
    write(&w.root, "a.txt", b"v1");
    let c = content(&w.root, "a.txt");
    write(&w.root, "a.txt", b"v2");
    assert!(matches!(
        w.cache.put(&w.root.join("a.txt"), &c, &Stamps::default()),
        Err(CacheError::Changed { .. })
    ));
    assert!(!w.cache.contains(&c));
    assert_eq!(fs::read_dir(w.cache.root().join("tmp")).unwrap().count(), 0);
}

#[test]
fn dir_round_trip_with_exec_bit() {
    let w = ws();
    write(&w.root, "out/a.txt", b"a");
    write(&w.root, "out/bin/run.sh", b"#!/bin/sh\necho hi\n");
    write(&w.root, "out/sub/deep/c.txt", b"c");
    write(&w.root, "out/dup.txt", b"a"); // same blob as a.txt
    fs::set_permissions(
        w.root.join("out/bin/run.sh"),
        fs::Permissions::from_mode(0o755),
    )
    .unwrap();
    std::os::unix::fs::symlink("/nonexistent/outside", w.root.join("out/ext")).unwrap();
    let c = content(&w.root, "out");
    w.cache
        .put(&w.root.join("out"), &c, &Stamps::default())
        .unwrap();
    assert!(w.cache.contains(&c));
    let m = w.cache.manifest(c.digest().unwrap()).unwrap().unwrap();
    assert_eq!(m.len(), 5);

    // Restore to a fresh place and over an existing, different tree.
    for dst in ["copy", "out"] {
        if dst == "out" {
            write(&w.root, "out/stale.txt", b"old");
            fs::remove_file(w.root.join("out/a.txt")).unwrap();
        }
        w.cache.restore(&c, &w.root.join(dst)).unwrap();
        assert_eq!(content(&w.root, dst), c);
        assert_eq!(mode(&w.root.join(dst).join("bin/run.sh")), 0o755);
        assert_eq!(mode(&w.root.join(dst).join("a.txt")), 0o644);
        assert!(!w.root.join(dst).join("stale.txt").exists());
        assert_eq!(
            fs::read_link(w.root.join(dst).join("ext")).unwrap(),
            Path::new("/nonexistent/outside")
        );
    }
    let leftovers: Vec<String> = fs::read_dir(&w.root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("mlp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Objects: 4 distinct blobs (a, run.sh, c, link text) + 1 manifest.
    assert_eq!(w.cache.objects().unwrap().len(), 5);

    // A missing blob makes the directory missing, and restore fails
    // without touching the destination.
    let blob = w
        .cache
        .blob_path(&m.iter().find(|e| e.path == "a.txt").unwrap().digest);
    fs::remove_file(&blob).unwrap();
    assert!(!w.cache.contains(&c));
    assert!(matches!(
        w.cache.restore(&c, &w.root.join("out")),
        Err(CacheError::Missing { .. })
    ));
    assert_eq!(content(&w.root, "out"), c);
    // put() heals it.
    w.cache
        .put(&w.root.join("out"), &c, &Stamps::default())
        .unwrap();
    assert!(w.cache.contains(&c));

    // An empty directory round-trips too.
    fs::create_dir_all(w.root.join("empty")).unwrap();
    let e = content(&w.root, "empty");
    w.cache
        .put(&w.root.join("empty"), &e, &Stamps::default())
        .unwrap();
    w.cache.restore(&e, &w.root.join("empty2")).unwrap();
    assert!(w.root.join("empty2").is_dir());
}

#[test]
fn corrupt_manifest_is_deleted() {
    let w = ws();
    write(&w.root, "out/a.txt", b"a");
    let c = content(&w.root, "out");
    w.cache
        .put(&w.root.join("out"), &c, &Stamps::default())
        .unwrap();
    let mpath = w.cache.manifest_path(c.digest().unwrap());
    fs::set_permissions(&mpath, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(
        &mpath,
        br#"[{"path":"../evil","exec":false,"digest":"00","size":1}]"#,
    )
    .unwrap();
    assert!(matches!(
        w.cache.restore(&c, &w.root.join("copy")),
        Err(CacheError::Corrupt { .. })
    ));
    assert!(!mpath.exists());
    assert!(!w.root.join("copy").exists());
}

#[test]
fn editing_restored_file_leaves_object_intact() {
    let w = ws();
    write(&w.root, "m.bin", b"weights");
    let c = content(&w.root, "m.bin");
    w.cache
        .put(&w.root.join("m.bin"), &c, &Stamps::default())
        .unwrap();
    fs::remove_file(w.root.join("m.bin")).unwrap();
    w.cache.restore(&c, &w.root.join("m.bin")).unwrap();
    // Edit in place (same inode), as an editor or `>>` would.
    let mut f = fs::OpenOptions::new()
        .append(true)
        .open(w.root.join("m.bin"))
        .unwrap();
    io::Write::write_all(&mut f, b" edited").unwrap();
    drop(f);
    let blob = w.cache.blob_path(c.digest().unwrap());
    assert_eq!(fs::read(&blob).unwrap(), b"weights");
    w.cache.restore(&c, &w.root.join("m.bin")).unwrap();
    assert_eq!(fs::read(w.root.join("m.bin")).unwrap(), b"weights");
}

#[test]
fn missing_content_restores_to_nothing() {
    let w = ws();
    write(&w.root, "gone/x", b"x");
    assert!(w.cache.contains(&Content::Missing));
    w.cache
        .put(&w.root.join("nope"), &Content::Missing, &Stamps::default())
        .unwrap();
    w.cache
        .restore(&Content::Missing, &w.root.join("gone"))
        .unwrap();
    assert!(!w.root.join("gone").exists());
}

#[test]
fn symlink_to_outside_is_uncacheable_as_a_file() {
    let w = ws();
    let other = tempfile::tempdir().unwrap();
    write(other.path(), "t.txt", b"target");
    std::os::unix::fs::symlink(other.path().join("t.txt"), w.root.join("l")).unwrap();
    let c = content(&w.root, "l");
    assert!(matches!(
        w.cache.put(&w.root.join("l"), &c, &Stamps::default()),
        Err(CacheError::Uncacheable { .. })
    ));
}

#[test]
fn clean_tmp_removes_old_files() {
    let w = ws();
    write(w.cache.root(), "tmp/stale", b"x");
    w.cache.clean_tmp(Duration::from_secs(3600)).unwrap();
    assert!(w.cache.root().join("tmp/stale").exists());
    w.cache.clean_tmp(Duration::ZERO).unwrap();
    assert!(!w.cache.root().join("tmp/stale").exists());
}

/// Hashes `rel` as a worker hashes a stage's outputs, noting what stamps vouch for.
fn vouched(root: &Path, rel: &str, stamps: &Stamps) -> Content {
    let sc = StatCache::default();
    Hasher::new(root, &sc).vouching(stamps).path(rel).unwrap()
}

/// Files are "settled" (see `hash::stamp`): their last write is older than `SETTLE`.
fn settle() {
    std::thread::sleep(crate::hash::SETTLE * 2);
}

#[test]
fn a_vouched_digest_is_not_read_again() {
    let w = ws();
    write(&w.root, "a.bin", &[1u8; 5000]);
    settle();
    let stamps = Stamps::default();
    vouched(&w.root, "a.bin", &stamps);
    assert!(!stamps.is_empty(), "a settled file is vouched for");
    // The cache takes the stamp at its word: vouched for a digest the bytes do not have,
    // it names them by that digest (what shows that the copy was not hashed).
    let meta = fs::metadata(w.root.join("a.bin")).unwrap();
    let lie = Stamps::default();
    lie.insert(Stamp::of(&meta), [9u8; 32]);
    let c = Content::File {
        digest: [9u8; 32],
        size: 5000,
    };
    w.cache.put(&w.root.join("a.bin"), &c, &lie).unwrap();
    assert_eq!(
        fs::read(w.cache.blob_path(&[9u8; 32])).unwrap(),
        [1u8; 5000]
    );
    // Without it the copy is hashed, and the lie is caught.
    let w2 = ws();
    write(&w2.root, "a.bin", &[1u8; 5000]);
    assert!(matches!(
        w2.cache.put(&w2.root.join("a.bin"), &c, &Stamps::default()),
        Err(CacheError::Changed { .. })
    ));
}

#[test]
fn a_file_written_after_it_was_vouched_for_is_hashed_and_refused() {
    for mode in [CacheMode::Copy, CacheMode::Link] {
        let w = ws();
        let cache = w.cache.with_mode(mode);
        write(&w.root, "out/a.bin", &[1u8; 5000]);
        write(&w.root, "out/d/x.bin", &[2u8; 5000]);
        settle();
        let stamps = Stamps::default();
        let file = vouched(&w.root, "out/a.bin", &stamps);
        let dir = vouched(&w.root, "out/d", &stamps);
        // Same size, other bytes: only the stat (ctime) tells.
        let f = fs::OpenOptions::new()
            .write(true)
            .open(w.root.join("out/a.bin"))
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"changed", 100).unwrap();
        let f = fs::OpenOptions::new()
            .write(true)
            .open(w.root.join("out/d/x.bin"))
            .unwrap();
        std::os::unix::fs::FileExt::write_all_at(&f, b"changed", 100).unwrap();
        for (rel, c) in [("out/a.bin", &file), ("out/d", &dir)] {
            let r = cache.put(&w.root.join(rel), c, &stamps);
            assert!(
                matches!(r, Err(CacheError::Changed { .. })),
                "{mode:?} {rel}: {r:?}"
            );
            assert!(!cache.contains(c));
        }
    }
}

#[test]
fn vouched_outputs_round_trip_in_both_modes() {
    for mode in [CacheMode::Copy, CacheMode::Link] {
        let w = ws();
        let cache = w.cache.with_mode(mode);
        let data: Vec<u8> = (0..(3 << 20)).map(|i: u32| (i % 251) as u8).collect();
        write(&w.root, "out/m.bin", &data);
        write(&w.root, "out/d/x.bin", b"x");
        settle();
        let stamps = Stamps::default();
        let c = vouched(&w.root, "out/m.bin", &stamps);
        let d = vouched(&w.root, "out/d", &stamps);
        cache.put(&w.root.join("out/m.bin"), &c, &stamps).unwrap();
        cache.put(&w.root.join("out/d"), &d, &stamps).unwrap();
        fs::remove_dir_all(w.root.join("out")).unwrap();
        cache.restore(&c, &w.root.join("out/m.bin")).unwrap();
        cache.restore(&d, &w.root.join("out/d")).unwrap();
        assert_eq!(
            fs::read(w.root.join("out/m.bin")).unwrap(),
            data,
            "{mode:?}"
        );
        assert_eq!(fs::read(w.root.join("out/d/x.bin")).unwrap(), b"x");
        assert!(cache.verify(true).unwrap().removed.is_empty(), "{mode:?}");
    }
}
