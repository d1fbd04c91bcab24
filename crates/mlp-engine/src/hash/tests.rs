//! Hashing files, directories, globs and symlinks, and the stat cache's bookkeeping.

use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::*;
use crate::store::StatEntry;
use std::fs::{File, FileTimes};
use std::os::unix::fs::symlink;

/// Sets a file's mtime to long ago so the stat cache will keep it.
fn age(path: &Path) {
    let old = SystemTime::now() - Duration::from_secs(3600);
    let f = File::options().write(true).open(path).unwrap();
    f.set_times(FileTimes::new().set_modified(old)).unwrap();
}

fn write(root: &Path, rel: &str, data: &[u8]) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(&p, data).unwrap();
}

fn digest_of(c: &Content) -> Digest {
    *c.digest().unwrap()
}

#[test]
fn hex_round_trip() {
    let d: Digest = std::array::from_fn(|i| (i * 37) as u8);
    let h = hex(&d);
    assert_eq!(h.len(), 64);
    assert_eq!(parse_hex(&h), Some(d));
    assert_eq!(parse_hex(&h.to_uppercase()), Some(d));
    assert_eq!(parse_hex("abc"), None);
    assert_eq!(parse_hex(&"zz".repeat(32)), None);
    assert_eq!(parse_hex(&"é".repeat(32)), None);
}

#[test]
fn file_digest_is_blake3_and_changes_with_content() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", b"hello");
    let cache = StatCache::default();
    let h = Hasher::new(dir.path(), &cache);
    let c1 = h.path("a.txt").unwrap();
    assert_eq!(
        c1,
        Content::File {
            digest: *blake3::hash(b"hello").as_bytes(),
            size: 5
        }
    );
    write(dir.path(), "a.txt", b"hellp");
    let c2 = h.path("./a.txt").unwrap();
    assert_ne!(c1, c2);
    assert_eq!(h.path("nope.txt").unwrap(), Content::Missing);
    assert_eq!(h.path("a.txt/below").unwrap(), Content::Missing);
    assert!(h.path("../x").is_err());
    assert!(h.path("/etc/passwd").is_err());
}

#[test]
fn large_file_uses_mmap_path_and_matches() {
    let dir = tempfile::tempdir().unwrap();
    let data: Vec<u8> = (0..(3 << 20)).map(|i: u32| (i % 251) as u8).collect();
    write(dir.path(), "big.bin", &data);
    let (d, n) = hash_file(&dir.path().join("big.bin")).unwrap();
    assert_eq!(n, data.len() as u64);
    assert_eq!(d, *blake3::hash(&data).as_bytes());
}

#[test]
fn stat_unchanged_file_is_served_from_cache() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a.txt", b"one");
    age(&dir.path().join("a.txt"));
    let cache = StatCache::default();
    let h = Hasher::new(dir.path(), &cache);
    let c1 = h.path("a.txt").unwrap();
    assert_eq!((h.files_read(), h.files_cached()), (1, 0));
    assert_eq!(cache.len(), 1);
    assert_eq!(cache.dirty().len(), 1);
    let c2 = h.path("a.txt").unwrap();
    assert_eq!(c1, c2);
    assert_eq!((h.files_read(), h.files_cached()), (1, 1));

    // A cache loaded from the dirty entries (as after a restart) works too.
    let cache2 = StatCache::new(cache.dirty());
    assert!(cache2.dirty().is_empty());
    let h2 = Hasher::new(dir.path(), &cache2);
    assert_eq!(h2.path("a.txt").unwrap(), c1);
    assert_eq!((h2.files_read(), h2.files_cached()), (0, 1));

    // Rewriting the file (same size, old mtime forced back) still
    // changes ctime, so the entry is not trusted.
    write(dir.path(), "a.txt", b"two");
    age(&dir.path().join("a.txt"));
    let c3 = h.path("a.txt").unwrap();
    assert_ne!(c1, c3);
    assert_eq!(h.files_read(), 2);

    // A deleted file drops its entry.
    cache.mark_clean();
    fs::remove_file(dir.path().join("a.txt")).unwrap();
    assert_eq!(h.path("a.txt").unwrap(), Content::Missing);
    assert_eq!(cache.removed(), vec!["a.txt".to_string()]);
    assert!(cache.is_empty());
}

#[test]
fn racily_clean_files_are_not_cached() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "fresh.txt", b"new");
    let cache = StatCache::default();
    let h = Hasher::new(dir.path(), &cache);
    h.path("fresh.txt").unwrap();
    h.path("fresh.txt").unwrap();
    assert_eq!(h.files_read(), 2);
    assert!(cache.is_empty());
    assert!(cache.dirty().is_empty());
}

fn tree(root: &Path) {
    write(root, "d/a.txt", b"a");
    write(root, "d/sub/b.txt", b"bb");
    write(root, "d/sub/deeper/c.txt", b"ccc");
    fs::create_dir_all(root.join("d/empty")).unwrap();
}

fn dir_digest(root: &Path, rel: &str) -> Digest {
    let cache = StatCache::default();
    digest_of(&Hasher::new(root, &cache).path(rel).unwrap())
}

#[test]
fn dir_digest_tracks_changes() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    tree(root);
    let cache = StatCache::default();
    let h = Hasher::new(root, &cache);
    let c = h.path("d").unwrap();
    assert!(
        matches!(
            c,
            Content::Dir {
                files: 3,
                size: 6,
                ..
            }
        ),
        "{c:?}"
    );
    let base = digest_of(&c);

    // Empty directories do not count.
    fs::create_dir_all(root.join("d/empty2/x")).unwrap();
    assert_eq!(dir_digest(root, "d"), base);

    // Add.
    write(root, "d/new.txt", b"n");
    let added = dir_digest(root, "d");
    assert_ne!(added, base);
    // Remove.
    fs::remove_file(root.join("d/new.txt")).unwrap();
    assert_eq!(dir_digest(root, "d"), base);
    // Rename.
    fs::rename(root.join("d/a.txt"), root.join("d/a2.txt")).unwrap();
    let renamed = dir_digest(root, "d");
    assert_ne!(renamed, base);
    fs::rename(root.join("d/a2.txt"), root.join("d/a.txt")).unwrap();
    assert_eq!(dir_digest(root, "d"), base);
    // Content.
    write(root, "d/sub/b.txt", b"bB");
    let changed = dir_digest(root, "d");
    assert_ne!(changed, base);
    write(root, "d/sub/b.txt", b"bb");
    assert_eq!(dir_digest(root, "d"), base);
    // chmod +x.
    let p = root.join("d/sub/deeper/c.txt");
    fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
    let exec = dir_digest(root, "d");
    assert_ne!(exec, base);
    fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(dir_digest(root, "d"), base);

    // The manifest agrees with the digest.
    let m = h.manifest("d").unwrap().unwrap();
    let paths: Vec<&str> = m.iter().map(|e| e.path.as_str()).collect();
    assert_eq!(paths, ["a.txt", "sub/b.txt", "sub/deeper/c.txt"]);
    assert_eq!(manifest_digest(&m), base);
    assert_eq!(h.manifest("d/a.txt").unwrap(), None);
    assert_eq!(h.manifest("nope").unwrap(), None);
}

#[test]
fn same_tree_at_two_paths_has_same_digest() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    tree(a.path());
    tree(b.path().join("nested").as_path());
    assert_eq!(
        dir_digest(a.path(), "d"),
        dir_digest(&b.path().join("nested"), "d")
    );
    // Whole-workspace digests too (the .mlp dir never counts).
    write(a.path(), ".mlp/state/junk", b"x");
    assert_eq!(
        dir_digest(a.path(), ""),
        dir_digest(&b.path().join("nested"), ".")
    );
}

#[test]
fn symlinks_inside_followed_outside_hashed_by_target() {
    let ws = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let root = ws.path();
    write(root, "data/real.txt", b"real");
    write(outside.path(), "ext.txt", b"external");
    fs::create_dir_all(root.join("d")).unwrap();
    symlink(root.join("data/real.txt"), root.join("d/in.txt")).unwrap();
    symlink(outside.path().join("ext.txt"), root.join("d/out.txt")).unwrap();
    symlink("../data", root.join("d/datalink")).unwrap();
    let cache = StatCache::default();
    let h = Hasher::new(root, &cache);
    let m = h.manifest("d").unwrap().unwrap();
    let paths: Vec<(&str, bool)> = m.iter().map(|e| (e.path.as_str(), e.link)).collect();
    assert_eq!(
        paths,
        [
            ("datalink/real.txt", false),
            ("in.txt", false),
            ("out.txt", true)
        ]
    );
    assert_eq!(m[1].digest, *blake3::hash(b"real").as_bytes());
    let target = outside.path().join("ext.txt");
    assert_eq!(
        m[2].digest,
        *blake3::hash(target.as_os_str().as_bytes()).as_bytes()
    );
    // Changing the outside target's bytes does not change the digest.
    let before = dir_digest(root, "d");
    write(outside.path(), "ext.txt", b"changed");
    assert_eq!(dir_digest(root, "d"), before);
    // A top-level link to outside is a File of its target text.
    assert_eq!(
        h.path("d/out.txt").unwrap(),
        Content::File {
            digest: m[2].digest,
            size: target.as_os_str().len() as u64
        }
    );
    // A cycle is an error, not a hang.
    symlink("..", root.join("d/loop")).unwrap();
    assert!(h.path("d").is_err());
}

#[test]
fn glob_matches_sorted_relative() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    write(root, "data/b.csv", b"b");
    write(root, "data/a.csv", b"a");
    write(root, "data/c.txt", b"c");
    write(root, "data/.hidden.csv", b"h");
    write(root, "src/x.py", b"x");
    write(root, "src/pkg/y.py", b"y");
    write(root, "src/pkg/deep/z.py", b"z");
    write(root, ".mlp/cache/q.py", b"q");
    let cache = StatCache::default();
    let h = Hasher::new(root, &cache);
    let got = h.glob("data/*.csv").unwrap();
    let names: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["data/a.csv", "data/b.csv"]);
    assert_eq!(got[0].1, h.path("data/a.csv").unwrap());
    let got = h.glob("src/**/*.py").unwrap();
    let names: Vec<&str> = got.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(names, ["src/pkg/deep/z.py", "src/pkg/y.py", "src/x.py"]);
    let got = h.glob("**/*.py").unwrap();
    assert!(got.iter().all(|(p, _)| !p.starts_with(".mlp")), "{got:?}");
    assert!(h.glob("nothing/*").unwrap().is_empty());
    assert!(h.glob("../*").is_err());
    assert!(h.glob("data/[").is_err());
    // Directories match too.
    let got = h.glob("s*").unwrap();
    assert_eq!(got.len(), 1);
    assert!(got[0].1.is_dir());
}

#[test]
fn stat_cache_bookkeeping() {
    let e = |n: u8| StatEntry {
        size: 1,
        mtime_ns: 2,
        ctime_ns: 3,
        ino: 4,
        digest: [n; 32],
    };
    let c = StatCache::new(vec![("a".into(), e(1)), ("b".into(), e(2))]);
    assert_eq!(c.len(), 2);
    c.insert("a", e(1)); // unchanged: not dirty
    assert!(c.dirty().is_empty());
    c.insert("c", e(3));
    c.remove("b");
    c.remove("zz");
    assert_eq!(c.dirty(), vec![("c".to_string(), e(3))]);
    assert_eq!(c.removed(), vec!["b".to_string()]);
    c.mark_clean();
    assert!(c.dirty().is_empty() && c.removed().is_empty());
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "a", b"x");
    c.prune_missing(dir.path());
    assert_eq!(c.len(), 1);
    assert_eq!(c.removed(), vec!["c".to_string()]);
}

#[test]
fn content_serde() {
    let c = Content::File {
        digest: [1; 32],
        size: 3,
    };
    let v = serde_json::to_value(&c).unwrap();
    assert_eq!(v["digest"], serde_json::json!(hex(&[1; 32])));
    assert_eq!(serde_json::from_value::<Content>(v).unwrap(), c);
}

#[test]
fn a_big_fresh_file_is_vouched_for_after_it_settles() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("big.bin");
    let data = vec![3u8; SETTLE_MIN_SIZE as usize];
    fs::write(&p, &data).unwrap();
    let (d, size, stamp) = hash_file_stamped(&p).unwrap();
    assert_eq!(d, *blake3::hash(&data).as_bytes());
    assert_eq!(size, data.len() as u64);
    let stamp = stamp.expect("waited out SETTLE, then vouched");
    assert_eq!(stamp, Stamp::of(&fs::metadata(&p).unwrap()));
    // The stamp stands for these bytes only: a write moves the ctime on.
    std::thread::sleep(SETTLE * 2);
    fs::write(&p, b"other").unwrap();
    assert_ne!(stamp, Stamp::of(&fs::metadata(&p).unwrap()));
}
